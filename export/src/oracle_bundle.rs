//! A complete bundle with no training: two Gaussian domains with non-commuting covariances,
//! their exact ε-networks, and OT maps (A→B, B→A, noise→B) whose heights are solved here with the
//! exporter's solver. Used by the oracle tests and by `brenier demo` until a trained bundle ships.

use crate::ot::{solve_heights, FnSampler, SolveConfig, SolveReport};
use brenier::bundle::manifest::OtSource;
use brenier::bundle::{ImageSpec, NetKey, TimeDtype};
use brenier::rng::NoiseStream;
use brenier::sched::{Schedule, ScheduleSpec};
use half::f16;

use crate::bundle::{ExportSpec, MapInput};
use crate::error::Result;
use crate::gaussian::{eps_network, Gaussian};
use crate::onnx_build::to_bytes;

/// Two Gaussian domains over one image shape.
#[derive(Debug, Clone)]
pub struct OraclePair {
    pub a: Gaussian,
    pub b: Gaussian,
    pub image: ImageSpec,
}

/// Random SPD covariance L Lᵀ/D + 0.05·I with a seeded L, and a seeded mean.
fn random_gaussian(d: usize, seed: u64, mean_shift: f64) -> Gaussian {
    let z = NoiseStream::new(seed, 0).normal(d * d + d);
    let mut cov = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..d {
            cov[i * d + j] = (0..d).map(|k| z[i * d + k] as f64 * z[j * d + k] as f64).sum::<f64>() / d as f64 * 0.25;
        }
        cov[i * d + i] += 0.05;
    }
    let mean = (0..d).map(|i| mean_shift + 0.3 * z[d * d + i] as f64).collect();
    Gaussian { mean, cov }
}

impl OraclePair {
    pub fn new(image: ImageSpec, seed: u64) -> OraclePair {
        let d = image.elems();
        OraclePair { a: random_gaussian(d, seed, 0.4), b: random_gaussian(d, seed + 1, -0.3), image }
    }

    pub fn domain(&self, key: brenier::NetKey) -> &Gaussian {
        match key {
            brenier::NetKey::A => &self.a,
            brenier::NetKey::B => &self.b,
        }
    }
}

/// Solves the heights of the map from `source` samples to `targets` (N×D) with the exporter's
/// solver; `source(block, out)` fills `out` with fresh samples for each block number.
pub fn solve_map(
    targets: &[f32],
    d: usize,
    source: impl Fn(u64, &mut [f32]) + Sync,
    cfg: &SolveConfig,
) -> Result<(Vec<f32>, SolveReport)> {
    let t16: Vec<f16> = targets.iter().map(|&v| f16::from_f32(v)).collect();
    // Streams are kept apart by block number: held-out blocks never repeat fit blocks.
    let sampler = FnSampler {
        d,
        f: move |stream: u64, block: u64, out: &mut [f32]| source(stream.wrapping_mul(1 << 32) + block, out),
        what: "oracle Gaussian".into(),
    };
    solve_heights(&t16, &sampler, cfg, None, |_| {})
}

/// The full export spec of the oracle bundle: targets are `n_targets` samples of each domain's
/// latent at step `t`; maps A→B, B→A (domain sources), noise→B (N(0, I) source, for DPM-OT) and
/// prior→B (N(0, I) to B diffused to the last train step, for prior-OT).
pub fn oracle_spec(pair: &OraclePair, t: usize, steps: usize, n_targets: usize, seed: u64) -> Result<ExportSpec> {
    let spec = ScheduleSpec::default();
    let schedule = Schedule::new(&spec)?;
    let ab = schedule.alpha_bar(t as i64);
    let d = pair.image.elems();
    let net = |g: &Gaussian, dt| to_bytes(&eps_network(g, pair.image, &schedule, dt, None));
    let latents = |g: &Gaussian, stream: u64, n: usize| g.sample_at(ab, &NoiseStream::new(seed, stream).normal(n * d));
    let cfg = SolveConfig { tol: 0.15, ..SolveConfig::default() };
    let y_a = latents(&pair.a, 1, n_targets);
    let y_b = latents(&pair.b, 2, n_targets);
    let (h_ab, _) = solve_map(
        &y_b,
        d,
        |i, out: &mut [f32]| {
            out.copy_from_slice(&pair.a.sample_at(ab, &NoiseStream::new(seed ^ 0xA, i).normal(out.len())))
        },
        &cfg,
    )?;
    let (h_ba, _) = solve_map(
        &y_a,
        d,
        |i, out: &mut [f32]| {
            out.copy_from_slice(&pair.b.sample_at(ab, &NoiseStream::new(seed ^ 0xB, i).normal(out.len())))
        },
        &cfg,
    )?;
    let (h_nb, _) = solve_map(&y_b, d, |i, out: &mut [f32]| NoiseStream::new(seed ^ 0xC, i).fill_normal(out), &cfg)?;
    let last = schedule.n_train() - 1;
    let y_prior = pair.b.sample_at(schedule.alpha_bar(last as i64), &NoiseStream::new(seed, 3).normal(n_targets * d));
    let (h_prior, _) =
        solve_map(&y_prior, d, |i, out: &mut [f32]| NoiseStream::new(seed ^ 0xD, i).fill_normal(out), &cfg)?;
    let mut export = ExportSpec::new(net(&pair.a, TimeDtype::Int64), net(&pair.b, TimeDtype::Float));
    export.image = Some(pair.image);
    export.schedule = spec;
    export.t_encode = t;
    export.steps = steps;
    export.name_a = "gauss-a".into();
    export.name_b = "gauss-b".into();
    // The oracle tables are consumed by Gather, so fp16 freezing leaves them f32 anyway.
    export.fp16 = true;
    export.provenance = serde_json::json!({ "oracle": "gaussian", "seed": seed, "n_targets": n_targets });
    let dom = |k: NetKey| OtSource::Domain { domain: k };
    export.maps = vec![
        MapInput {
            name: "a->b".into(),
            source: dom(NetKey::A),
            target: NetKey::B,
            t,
            heights: h_ab,
            targets: y_b.clone(),
            solve: None,
        },
        MapInput {
            name: "b->a".into(),
            source: dom(NetKey::B),
            target: NetKey::A,
            t,
            heights: h_ba,
            targets: y_a,
            solve: None,
        },
        MapInput {
            name: "noise->b".into(),
            source: OtSource::Gaussian,
            target: NetKey::B,
            t,
            heights: h_nb,
            targets: y_b,
            solve: None,
        },
        MapInput {
            name: "prior->b".into(),
            source: OtSource::Gaussian,
            target: NetKey::B,
            t: last,
            heights: h_prior,
            targets: y_prior,
            solve: None,
        },
    ];
    Ok(export)
}
