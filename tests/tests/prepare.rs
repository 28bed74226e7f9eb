//! `Engine::prepare`: a job's networks are prepared side by side where the backend allows it, one
//! after another where it does not, each once, and a failure names the network that failed.
//! The networks are the oracle bundle's real ONNX graphs on the CPU backend; a wrapper around it
//! watches how many `load_net` calls are in flight at once.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use brenier::backend::{Backend, CpuBackend, Network};
use brenier::bundle::{Bundle, ImageSpec, NetSpec};
use brenier::ot::Assignment;
use brenier::pipeline::{NetSlot, Silent, TranslateMethod, TranslateOptions};
use brenier::rng::NoiseStream;
use brenier::sched::DdimCoeffs;
use brenier::{Engine, Error, NetKey, Result};
use brenier_tests::oracle_bundle;
use half::f16;

#[derive(Default)]
struct Loads {
    started: usize,
    in_flight: usize,
    most_at_once: usize,
    labels: Vec<String>,
}

/// The CPU backend, reporting `concurrent` as its concurrent loads. Each `load_net` waits up to
/// `overlap_wait` until a second load has started, so loads that can overlap do; a load whose
/// label contains `fail` fails.
struct Watched {
    cpu: CpuBackend,
    concurrent: usize,
    overlap_wait: Duration,
    fail: Option<&'static str>,
    loads: Mutex<Loads>,
    changed: Condvar,
}

impl Watched {
    fn new(concurrent: usize, overlap_wait: Duration, fail: Option<&'static str>) -> Watched {
        Watched {
            cpu: CpuBackend::new(2).expect("cpu"),
            concurrent,
            overlap_wait,
            fail,
            loads: Mutex::default(),
            changed: Condvar::new(),
        }
    }
}

impl Backend for &'static Watched {
    fn name(&self) -> &'static str {
        "watched-cpu"
    }
    fn threads(&self) -> usize {
        self.cpu.threads()
    }
    fn concurrent_loads(&self) -> usize {
        self.concurrent
    }
    fn load_net(&self, onnx: &[u8], spec: &NetSpec, image: ImageSpec, label: &str) -> Result<Box<dyn Network>> {
        {
            let mut l = self.loads.lock().unwrap();
            l.started += 1;
            l.in_flight += 1;
            l.most_at_once = l.most_at_once.max(l.in_flight);
            l.labels.push(label.to_string());
            self.changed.notify_all();
            // On what has started, not what is in flight: the other load may finish before
            // this thread wakes.
            drop(self.changed.wait_timeout_while(l, self.overlap_wait, |l| l.started < 2).unwrap());
        }
        let net = match self.fail {
            Some(f) if label.contains(f) => {
                Err(Error::Onnx { net: label.into(), problem: "refused by the test".into() })
            }
            _ => self.cpu.load_net(onnx, spec, image, label),
        };
        self.loads.lock().unwrap().in_flight -= 1;
        net
    }
    fn ot_assign(&self, queries: &[f32], d: usize, targets: &[f16], heights: &[f32]) -> Result<Vec<Assignment>> {
        self.cpu.ot_assign(queries, d, targets, heights)
    }
    fn ot_soft_map(&self, queries: &[f32], d: usize, targets: &[f16], heights: &[f32], tau: f32) -> Result<Vec<f32>> {
        self.cpu.ot_soft_map(queries, d, targets, heights, tau)
    }
    fn ddim_update(&self, x: &mut [f32], eps: &[f32], noise: Option<NoiseStream>, c: DdimCoeffs) -> Result<()> {
        self.cpu.ddim_update(x, eps, noise, c)
    }
}

fn engine(backend: Watched) -> (Engine, &'static Watched) {
    let backend: &'static Watched = Box::leak(Box::new(backend));
    let bundle = Bundle::open(&oracle_bundle().0).expect("open");
    (Engine::new(bundle, Box::new(backend)).expect("engine"), backend)
}

const BOTH: [NetSlot; 2] = [NetSlot::Domain(NetKey::A), NetSlot::Domain(NetKey::B)];

fn label_count(w: &Watched, prefix: &str) -> usize {
    w.loads.lock().unwrap().labels.iter().filter(|l| l.starts_with(prefix)).count()
}

#[test]
fn a_translations_two_networks_are_prepared_side_by_side_once() {
    // Sequential loads would each wait the whole 10 s and see one in flight.
    let (engine, w) = engine(Watched::new(2, Duration::from_secs(10), None));
    let x = vec![0.1f32; 2 * engine.dim()];
    let opts = TranslateOptions { method: TranslateMethod::Ddib, steps: Some(2), ..TranslateOptions::default() };
    engine.translate(&x, &opts, &Silent).expect("translate");
    engine.translate(&x, &opts, &Silent).expect("second translate");
    engine.prepare(&BOTH).expect("prepared again");
    assert_eq!(w.loads.lock().unwrap().most_at_once, 2, "the two networks were not prepared at the same time");
    assert_eq!((label_count(w, "net a"), label_count(w, "net b")), (1, 1), "each network is prepared once");
}

#[test]
fn one_load_at_a_time_where_the_backend_says_so() {
    let (engine, w) = engine(Watched::new(1, Duration::from_millis(300), None));
    engine
        .prepare(&[NetSlot::Domain(NetKey::A), NetSlot::Domain(NetKey::A), NetSlot::Domain(NetKey::B)])
        .expect("prepare");
    let l = w.loads.lock().unwrap();
    assert_eq!(l.most_at_once, 1);
    assert_eq!(l.labels.len(), 2, "a slot named twice is prepared once: {:?}", l.labels);
}

#[test]
fn a_failure_is_reported_in_slot_order_and_the_other_network_is_still_prepared() {
    for (fail, other) in [("net a", "net b"), ("net b", "net a")] {
        let (engine, w) = engine(Watched::new(2, Duration::from_secs(10), Some(fail)));
        let err = engine.prepare(&BOTH).expect_err("a load was refused");
        assert!(matches!(&err, Error::Onnx { net, .. } if net.starts_with(fail)), "{err}");
        let key = if other == "net a" { NetKey::A } else { NetKey::B };
        engine.net(key).expect("the other network was prepared");
        assert_eq!(label_count(w, other), 1, "{other} was prepared by prepare, not again on first use");
    }
}

#[test]
fn an_unknown_neural_map_is_an_error_not_a_panic() {
    let (engine, _) = engine(Watched::new(2, Duration::ZERO, None));
    let err = engine.prepare(&[NetSlot::Domain(NetKey::A), NetSlot::NeuralMap(99)]).expect_err("no such map");
    assert!(err.to_string().contains("neural map number 99"), "{err}");
}
