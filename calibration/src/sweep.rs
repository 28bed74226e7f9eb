//! The T×K sweep: quality of DDIB and OT-ALD at each encode time T and step count K, against the
//! latency measured here. Encoding is shared: both methods start from the same latents at T.

use std::time::Instant;

use brenier::bundle::calibration::SweepPoint;
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
pub fn methods_at(engine: &Engine, t: usize) -> Result<usize> {
    Ok(engine.plans_at(NetKey::A, t, 1, 0.0, 0)?.len())
}

/// Runs every (T, K) for each plan [`Engine::plans_at`] gives: DDIB, OT-ALD where the bundle has
/// an A→B map at that T (maps are solved between latents at one T; `brenier-train ot --t` adds
/// more) and the neural map where it has one at that T. The methods share one encode (the same
/// network, T and K), timed once and counted in each. `on_point` sees each point as measured.
pub fn sweep(
    engine: &Engine,
    set: &CalibSet,
    runner: &ClassifierRunner,
    cfg: &SweepConfig,
    mut on_point: impl FnMut(&SweepPoint),
) -> Result<Vec<SweepPoint>> {
    let n = engine.check_batch(&set.sources, "calibration sources")?;
    let mut points = vec![];
    // Untimed: the first runs of a tract plan allocate its scratch space.
    if let Some(&t) = cfg.ts.first() {
        let warm = &engine.plans_at(NetKey::A, t, 1, cfg.eta, cfg.seed)?[0];
        let mut x = set.sources[..engine.dim()].to_vec();
        warm.encode(&mut x, &Silent, &mut NetTime::default())?;
        warm.decode(&mut x, &Silent, &mut NetTime::default())?;
    }
    for &t in cfg.ts {
        for &k in cfg.ks.iter().filter(|&&k| k <= t + 1) {
            let plans = engine.plans_at(NetKey::A, t, k, cfg.eta, cfg.seed)?;
            let mut latents = set.sources.clone();
            let t0 = Instant::now();
            plans[0].encode(&mut latents, &Silent, &mut NetTime::default())?;
            let encode_s = t0.elapsed().as_secs_f64();
            for plan in &plans {
                let mut x = latents.clone();
                // The map's own time, as translate and the quality report count it (the neural
                // map's nearest-target figure is a diagnostic, not translation work).
                let map_s = plan.map(&mut x)?.map_or(0.0, |s| s.seconds);
                let t1 = Instant::now();
                plan.decode(&mut x, &Silent, &mut NetTime::default())?;
                let seconds = encode_s + map_s + t1.elapsed().as_secs_f64();
                let quality = evaluate(runner, &x, Some(&set.sources), &set.references, set.spec.target_class)?;
                let p = SweepPoint {
                    method: plan.method.as_str().into(),
                    t,
                    k,
                    nfe: 2 * k,
                    ms_per_image: seconds / n as f64 * 1e3,
                    quality,
                };
                on_point(&p);
                points.push(p);
            }
        }
    }
    engine.bundle().check_unchanged()?;
    Ok(points)
}
