//! The engine: a validated bundle, a backend, the schedule, and the networks, each prepared at
//! its first use or ahead of it ([`Engine::prepare`]). It owns the DDIM loops (encode to T,
//! decode from T) every pipeline is built from.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use once_cell::sync::OnceCell;

use crate::backend::{Backend, Network};
use crate::bundle::{Bundle, NetKey, NetSpec, NeuralMapSpec};
use crate::error::{check_finite, Error, Result};
use crate::rng::NoiseStream;
use crate::sched::{encode_eval_t, grid, DdimCoeffs, Schedule};

/// Receives progress from long loops (the CLI draws bars; libraries pass [`Silent`]).
pub trait Observer: Sync {
    fn stage(&self, _name: &str, _steps: usize) {}
    fn step(&self) {}
    fn done(&self) {}
}

pub struct Silent;
impl Observer for Silent {}

/// Counts and times network evaluations.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct NetTime {
    pub nfe: usize,
    pub seconds: f64,
}

/// A network the engine prepares on first use, or ahead of it with [`Engine::prepare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetSlot {
    /// The ε-network of a domain.
    Domain(NetKey),
    /// The manifest's neural map of this index.
    NeuralMap(usize),
}

pub struct Engine {
    bundle: Bundle,
    backend: Box<dyn Backend>,
    schedule: Schedule,
    nets: [OnceCell<Box<dyn Network>>; 2],
    /// The manifest's neural maps, in its order, each loaded on first use.
    neural_maps: Vec<OnceCell<Box<dyn Network>>>,
}

impl Engine {
    pub fn new(bundle: Bundle, backend: Box<dyn Backend>) -> Result<Engine> {
        let schedule = Schedule::new(&bundle.manifest().schedule)?;
        let neural_maps = bundle.manifest().neural_maps.iter().map(|_| OnceCell::new()).collect();
        Ok(Engine { bundle, backend, schedule, nets: [OnceCell::new(), OnceCell::new()], neural_maps })
    }

    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }
    /// Values per image.
    pub fn dim(&self) -> usize {
        self.bundle.manifest().image.elems()
    }

    /// The network of a domain, prepared on first use.
    pub fn net(&self, key: NetKey) -> Result<&dyn Network> {
        let m = self.bundle.manifest();
        self.load_once(&self.nets[key as usize], || {
            Ok((self.bundle.net_bytes(key)?, m.net(key), format!("net {} ({})", key.as_str(), m.domain_name(key))))
        })
    }

    /// The manifest's neural map number `index` and its network, prepared on first use.
    pub fn neural_map(&self, index: usize) -> Result<(&NeuralMapSpec, &dyn Network)> {
        let spec = self.bundle.manifest().neural_maps.get(index).ok_or_else(|| no_neural_map(index))?;
        let net = self.load_once(self.cell(NetSlot::NeuralMap(index))?, || {
            Ok((self.bundle.neural_map_bytes(spec)?, &spec.net, format!("neural map {}", spec.name)))
        })?;
        Ok((spec, net))
    }

    /// Prepares the networks in `slots` now rather than at their first use, those not yet
    /// prepared side by side on up to [`Backend::concurrent_loads`] threads: tract prepares a
    /// graph on one thread (about 0.3 s for the 64×64 ADM UNet of `benches/byo`), so on two
    /// cores a translation's two networks are ready in the time of one. An unknown neural map
    /// is refused before anything is prepared. Once a failure is seen no other preparation
    /// starts (those under way finish), and the error returned is that of the first failed slot
    /// in `slots`.
    pub fn prepare(&self, slots: &[NetSlot]) -> Result<()> {
        let mut pending: Vec<NetSlot> = vec![];
        for &s in slots {
            if self.cell(s)?.get().is_none() && !pending.contains(&s) {
                pending.push(s);
            }
        }
        let (next, failed) = (AtomicUsize::new(0), AtomicBool::new(false));
        let worker = || {
            let mut done = vec![];
            while !failed.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&s) = pending.get(i) else { break };
                let r = self.slot_net(s).map(|_| ());
                failed.fetch_or(r.is_err(), Ordering::Relaxed);
                done.push((i, r));
            }
            done
        };
        let helpers = self.backend.concurrent_loads().min(pending.len()).saturating_sub(1);
        let results = std::thread::scope(|scope| {
            // A thread the system refuses is no error: this thread prepares what is left.
            let spawned: Vec<_> = (0..helpers)
                .map_while(|i| {
                    std::thread::Builder::new().name(format!("brenier-load-{i}")).spawn_scoped(scope, worker).ok()
                })
                .collect();
            let mut results = worker();
            for h in spawned {
                // A panic while preparing stays a panic, as it would be on the calling thread.
                results.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            }
            results
        });
        first_failure(results)
    }

    /// The network in `slot`, prepared on first use.
    pub(crate) fn slot_net(&self, slot: NetSlot) -> Result<&dyn Network> {
        match slot {
            NetSlot::Domain(key) => self.net(key),
            NetSlot::NeuralMap(i) => self.neural_map(i).map(|(_, net)| net),
        }
    }

    fn cell(&self, slot: NetSlot) -> Result<&OnceCell<Box<dyn Network>>> {
        match slot {
            NetSlot::Domain(key) => Ok(&self.nets[key as usize]),
            NetSlot::NeuralMap(i) => self.neural_maps.get(i).ok_or_else(|| no_neural_map(i)),
        }
    }

    /// The network in `cell`, prepared from `source` (ONNX bytes, spec, label) on first use.
    /// Concurrent first uses (threads sharing an engine through the C or Python interface) wait
    /// for one preparation rather than each making its own copy.
    fn load_once<'a>(
        &'a self,
        cell: &'a OnceCell<Box<dyn Network>>,
        source: impl FnOnce() -> Result<(&'a [u8], &'a NetSpec, String)>,
    ) -> Result<&'a dyn Network> {
        let net = cell.get_or_try_init(|| {
            let (bytes, spec, label) = source()?;
            let t0 = Instant::now();
            let net = self.backend.load_net(bytes, spec, self.bundle.manifest().image, &label)?;
            log::info!("{label} loaded on {} in {:.1} ms", self.backend.name(), t0.elapsed().as_secs_f64() * 1e3);
            Ok::<_, Error>(net)
        })?;
        Ok(net.as_ref())
    }

    /// The K-step grid between data and `t`, refusing a `t` the schedule does not have (every
    /// caller — translate, generate, calibration sweeps — goes through here).
    fn path(&self, t: usize, steps: usize) -> Result<Vec<i64>> {
        let n = self.schedule.n_train();
        if t >= n {
            return Err(Error::InvalidArgument(format!(
                "T = {t} is beyond the bundle's schedule: train steps are 0..={} (the papers' T = 1000 is {} here)",
                n - 1,
                n - 1
            )));
        }
        grid(t, steps)
    }

    /// Checks a batch of model-space images against the bundle's shape and for NaN/Inf.
    pub fn check_batch(&self, x: &[f32], what: &str) -> Result<usize> {
        let d = self.dim();
        if x.is_empty() || !x.len().is_multiple_of(d) {
            let img = self.bundle.manifest().image;
            return Err(Error::Shape {
                what: what.into(),
                expected: vec![img.channels, img.height, img.width],
                found: vec![x.len()],
                hint: format!(" per image ({d} values); resize the input or use a bundle for this size"),
            });
        }
        check_finite(x, what, "")?;
        Ok(x.len() / d)
    }

    /// One network evaluation with its output checked for NaN/Inf.
    pub fn eps(
        &self,
        key: NetKey,
        x: &[f32],
        batch: usize,
        t: i64,
        stage: &str,
        time: &mut NetTime,
    ) -> Result<Vec<f32>> {
        let net = self.net(key)?;
        let t0 = Instant::now();
        let e = net.run(x, batch, t)?;
        time.seconds += t0.elapsed().as_secs_f64();
        time.nfe += 1;
        if e.iter().any(|v| !v.is_finite()) {
            return Err(Error::NetworkNonFinite { net: net.label().into(), stage: format!("{stage}, t = {t}") });
        }
        Ok(e)
    }

    /// Deterministic DDIM encoding (η = 0) of `x` from clean data to `t_end` in `steps` steps.
    pub fn encode(
        &self,
        key: NetKey,
        x: &mut [f32],
        t_end: usize,
        steps: usize,
        obs: &dyn Observer,
        time: &mut NetTime,
    ) -> Result<()> {
        let batch = self.check_batch(x, "encoder input")?;
        let g = self.path(t_end, steps)?;
        obs.stage(&format!("encode {}", self.bundle.manifest().domain_name(key)), steps);
        for k in 1..g.len() {
            let (from, to) = (g[k - 1], g[k]);
            let stage = format!("encode step {k}/{steps}");
            let e = self.eps(key, x, batch, encode_eval_t(from), &stage, time)?;
            self.backend.ddim_update(x, &e, None, DdimCoeffs::new(&self.schedule, from, to, 0.0))?;
            obs.step();
        }
        obs.done();
        Ok(())
    }

    /// DDIM decoding of latents at `t_start` back to data in `steps` steps. With η > 0 the
    /// noise of step k comes from stream (seed, k), so the same seed reproduces the output.
    #[allow(clippy::too_many_arguments)]
    pub fn decode(
        &self,
        key: NetKey,
        x: &mut [f32],
        t_start: usize,
        steps: usize,
        eta: f32,
        seed: u64,
        obs: &dyn Observer,
        time: &mut NetTime,
    ) -> Result<()> {
        let batch = self.check_batch(x, "decoder input")?;
        let g = self.path(t_start, steps)?;
        obs.stage(&format!("decode {}", self.bundle.manifest().domain_name(key)), steps);
        for k in (1..g.len()).rev() {
            let (from, to) = (g[k], g[k - 1]);
            let stage = format!("decode step {}/{steps}", steps + 1 - k);
            let e = self.eps(key, x, batch, from, &stage, time)?;
            let c = DdimCoeffs::new(&self.schedule, from, to, eta as f64);
            self.backend.ddim_update(x, &e, Some(NoiseStream::new(seed, k as u64)), c)?;
            obs.step();
        }
        obs.done();
        check_finite(x, "decoded output", "after the last DDIM step")?;
        Ok(())
    }
}

fn no_neural_map(index: usize) -> Error {
    Error::InvalidArgument(format!("the bundle has no neural map number {index}"))
}

/// The error of the lowest-numbered failed slot, whichever worker met it first.
fn first_failure(mut results: Vec<(usize, Result<()>)>) -> Result<()> {
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().try_for_each(|(_, r)| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_is_the_lowest_slots_not_the_first_reported() {
        let fail = |what: &str| Err(Error::InvalidArgument(what.into()));
        let reported = vec![(2, Ok(())), (1, fail("second")), (0, fail("first")), (3, fail("fourth"))];
        assert!(matches!(first_failure(reported), Err(Error::InvalidArgument(m)) if m == "first"));
        assert!(first_failure(vec![(1, Ok(())), (0, Ok(()))]).is_ok());
        assert!(first_failure(vec![]).is_ok());
    }
}
