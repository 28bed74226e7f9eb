//! The T×K sweep: quality of DDIB and OT-ALD at each encode time T and step count K, against the
//! latency measured here. Encoding is shared: both methods start from the same latents at T.

use std::time::Instant;

use brenier::bundle::calibration::SweepPoint;
use brenier::bundle::{Manifest, OtSource};
use brenier::pipeline::{NetTime, Silent};
use brenier::{Engine, NetKey};

use crate::classify::{evaluate, ClassifierRunner};
use crate::error::Result;
use crate::set::CalibSet;

/// Encode times of the full sweep (T = 999 is the papers' "T = 1000").
pub const SWEEP_T: [usize; 5] = [100, 250, 500, 750, 999];
/// Step counts K (each of encode and decode) of the full sweep.
pub const SWEEP_K: [usize; 5] = [5, 10, 25, 50, 100];

pub struct SweepConfig<'a> {
    pub ts: &'a [usize],
    pub ks: &'a [usize],
    pub eta: f32,
    pub seed: u64,
}

/// How many points the sweep measures at `t` for each K: DDIB, plus OT-ALD where the bundle
/// has an A→B OT map at `t`, plus the neural map where it has an A→B one at `t`.
pub fn methods_at(m: &Manifest, t: usize) -> usize {
    let source = OtSource::Domain { domain: "a".into() };
    1 + usize::from(m.find_map_at(&source, NetKey::B, t).is_some())
        + usize::from(m.find_neural_map(NetKey::A, Some(t)).is_some())
}

/// Runs every (T, K) for DDIB, for OT-ALD where the bundle has an A→B map at that T (maps are
/// solved between latents at one T; `brenier-train ot --t` adds more) and for the neural map
/// where it has one at that T. `on_point` sees each point as it is measured.
pub fn sweep(
    engine: &Engine,
    set: &CalibSet,
    runner: &ClassifierRunner,
    cfg: &SweepConfig,
    mut on_point: impl FnMut(&SweepPoint),
) -> Result<Vec<SweepPoint>> {
    let n = engine.check_batch(&set.sources, "calibration sources")?;
    let m = engine.bundle().manifest();
    let source = OtSource::Domain { domain: "a".into() };
    let mut points = vec![];
    // Untimed: the first runs of a tract plan allocate its scratch space.
    if let Some(&t) = cfg.ts.first() {
        let mut x = set.sources[..engine.dim()].to_vec();
        engine.encode(NetKey::A, &mut x, t, 1, &Silent, &mut NetTime::default())?;
        engine.decode(NetKey::B, &mut x, t, 1, cfg.eta, cfg.seed, &Silent, &mut NetTime::default())?;
    }
    for &t in cfg.ts {
        let map = m.find_map_at(&source, NetKey::B, t);
        let neural = m.find_neural_map(NetKey::A, Some(t)).map(|(i, _)| i);
        for &k in cfg.ks.iter().filter(|&&k| k <= t + 1) {
            let mut latents = set.sources.clone();
            let t0 = Instant::now();
            engine.encode(NetKey::A, &mut latents, t, k, &Silent, &mut NetTime::default())?;
            let encode_s = t0.elapsed().as_secs_f64();
            let mut finish = |method: &str, mut x: Vec<f32>, extra_s: f64| -> Result<()> {
                let t1 = Instant::now();
                engine.decode(NetKey::B, &mut x, t, k, cfg.eta, cfg.seed, &Silent, &mut NetTime::default())?;
                let seconds = encode_s + extra_s + t1.elapsed().as_secs_f64();
                let quality = evaluate(runner, &x, Some(&set.sources), &set.references, set.spec.target_class)?;
                let p = SweepPoint {
                    method: method.into(),
                    t,
                    k,
                    nfe: 2 * k,
                    ms_per_image: seconds / n as f64 * 1e3,
                    quality,
                };
                on_point(&p);
                points.push(p);
                Ok(())
            };
            finish("ddib", latents.clone(), 0.0)?;
            if let Some(index) = neural {
                let mut x = latents.clone();
                // The map's own time, as translate and the quality report count it (the
                // nearest-target figure it also computes is a diagnostic, not translation work).
                let map_s = engine.apply_neural_map(index, &mut x)?.seconds;
                finish("neural-ot", x, map_s)?;
            }
            if let Some(spec) = map {
                let t2 = Instant::now();
                engine.apply_map(spec, &mut latents, None)?;
                let map_s = t2.elapsed().as_secs_f64();
                finish("ot-ald", latents, map_s)?;
            }
        }
    }
    engine.bundle().check_unchanged()?;
    Ok(points)
}
