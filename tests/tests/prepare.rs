//! `Engine::prepare` and first use: a job's networks are prepared side by side where the backend
//! allows it, one after another where it does not, each once even when threads race for it, and
//! a failure names the network that failed and stops further preparation.
//! The networks are the oracle bundle's real ONNX graphs on the CPU backend; a wrapper around it
//! watches how many `load_net` calls are in flight at once.

use std::path::Path;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use brenier::backend::{Backend, CpuBackend, Network};
use brenier::bundle::{Bundle, ImageSpec, NetSpec};
use brenier::ot::Assignment;
use brenier::pipeline::{NetSlot, Silent, TranslateMethod, TranslateOptions};
use brenier::rng::NoiseStream;
use brenier::sched::DdimCoeffs;
use brenier::{Engine, Error, NetKey, Result};
use brenier_tests::{oracle_bundle, write_neural_map_bundle};
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
/// label contains one of `fail` fails.
struct Watched {
    cpu: CpuBackend,
    concurrent: usize,
    overlap_wait: Duration,
    fail: &'static [&'static str],
    /// How long a load that does not fail takes beyond the CPU backend's own.
    success_delay: Duration,
    loads: Mutex<Loads>,
    changed: Condvar,
}

impl Watched {
    fn new(concurrent: usize, overlap_wait: Duration, fail: &'static [&'static str]) -> Watched {
        Watched {
            cpu: CpuBackend::new(2).expect("cpu"),
            concurrent,
            overlap_wait,
            fail,
            success_delay: Duration::ZERO,
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
        let net = if self.fail.iter().any(|f| label.contains(f)) {
            Err(Error::Onnx { net: label.into(), problem: "refused by the test".into() })
        } else {
            std::thread::sleep(self.success_delay);
            self.cpu.load_net(onnx, spec, image, label)
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

fn watched_engine(backend: Watched) -> (Engine, &'static Watched) {
    watched_engine_on(&oracle_bundle().0, backend)
}

fn watched_engine_on(bundle: &Path, backend: Watched) -> (Engine, &'static Watched) {
    let backend: &'static Watched = Box::leak(Box::new(backend));
    let bundle = Bundle::open(bundle).expect("open");
    (Engine::new(bundle, Box::new(backend)).expect("engine"), backend)
}

const BOTH: [NetSlot; 2] = [NetSlot::Domain(NetKey::A), NetSlot::Domain(NetKey::B)];

fn label_count(w: &Watched, prefix: &str) -> usize {
    w.loads.lock().unwrap().labels.iter().filter(|l| l.starts_with(prefix)).count()
}

#[test]
fn a_translations_two_networks_are_prepared_side_by_side_once() {
    // Loaded one after the other, the first load waits out the 10 s and is alone in flight.
    let (engine, w) = watched_engine(Watched::new(2, Duration::from_secs(10), &[]));
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
    let (engine, w) = watched_engine(Watched::new(1, Duration::from_millis(300), &[]));
    engine.prepare(&BOTH).expect("prepare");
    assert_eq!(w.loads.lock().unwrap().most_at_once, 1);
    assert_eq!(w.loads.lock().unwrap().labels.len(), 2);
}

#[test]
fn threads_racing_for_a_network_share_one_preparation() {
    // Each load waits up to 2 s for a second to start: with one preparation per racer, the
    // racers' loads overlap and two are counted.
    let (engine, w) = watched_engine(Watched::new(2, Duration::from_secs(2), &[]));
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| engine.net(NetKey::A).expect("net a"));
        }
        s.spawn(|| engine.prepare(&[NetSlot::Domain(NetKey::A), NetSlot::Domain(NetKey::A)]).expect("prepare"));
    });
    assert_eq!(label_count(w, "net a"), 1, "{:?}", w.loads.lock().unwrap().labels);
}

#[test]
fn a_failure_stops_further_preparation_and_is_reported_for_its_network() {
    // One at a time: net a fails, net b is never started.
    let (engine, w) = watched_engine(Watched::new(1, Duration::ZERO, &["net a"]));
    let err = engine.prepare(&BOTH).expect_err("net a was refused");
    assert!(matches!(&err, Error::Onnx { net, .. } if net.starts_with("net a")), "{err}");
    assert_eq!(label_count(w, "net b"), 0, "a preparation started after one had failed");

    // Side by side, both under way: net b's preparation finishes and is kept.
    let (engine, w) = watched_engine(Watched::new(2, Duration::from_secs(10), &["net a"]));
    let err = engine.prepare(&BOTH).expect_err("net a was refused");
    assert!(matches!(&err, Error::Onnx { net, .. } if net.starts_with("net a")), "{err}");
    assert_eq!(label_count(w, "net b"), 1, "net b was not prepared beside net a");
    engine.net(NetKey::B).expect("net b");
    assert_eq!(label_count(w, "net b"), 1, "net b was prepared again on first use");
}

#[test]
fn side_by_side_no_preparation_starts_after_one_fails() {
    // net a and net b start together; net a fails at once while net b takes 0.5 s more, so the
    // thread that prepared net a is free long before net b is done and must not take the map.
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, ..) = write_neural_map_bundle(dir.path());
    let mut watched = Watched::new(2, Duration::from_secs(10), &["net a"]);
    watched.success_delay = Duration::from_millis(500);
    let (engine, w) = watched_engine_on(&path, watched);
    let slots = [BOTH[0], BOTH[1], NetSlot::NeuralMap(0)];
    let err = engine.prepare(&slots).expect_err("net a was refused");
    assert!(matches!(&err, Error::Onnx { net, .. } if net.starts_with("net a")), "{err}");
    assert_eq!(label_count(w, "net b"), 1);
    assert_eq!(label_count(w, "neural map"), 0, "a preparation started after one had failed");
    // Without the failure, all three are prepared, two at a time.
    let (engine, w) = watched_engine_on(&path, Watched::new(2, Duration::from_secs(10), &[]));
    engine.prepare(&slots).expect("prepare");
    assert_eq!(w.loads.lock().unwrap().labels.len(), 3);
    engine.neural_map(0).expect("the map was prepared");
    assert_eq!(w.loads.lock().unwrap().labels.len(), 3);
}

#[test]
fn when_both_fail_the_error_is_the_first_slots() {
    for (slots, first) in [(BOTH, "net a"), ([BOTH[1], BOTH[0]], "net b")] {
        let (engine, _) = watched_engine(Watched::new(2, Duration::from_secs(10), &["net a", "net b"]));
        let err = engine.prepare(&slots).expect_err("both refused");
        assert!(matches!(&err, Error::Onnx { net, .. } if net.starts_with(first)), "{slots:?}: {err}");
    }
}

#[test]
fn an_unknown_neural_map_is_refused_before_anything_is_prepared() {
    let (engine, w) = watched_engine(Watched::new(2, Duration::ZERO, &[]));
    let err = engine.prepare(&[NetSlot::Domain(NetKey::A), NetSlot::NeuralMap(99)]).expect_err("no such map");
    assert!(err.to_string().contains("neural map number 99"), "{err}");
    assert!(w.loads.lock().unwrap().labels.is_empty());
}
