//! The shared backend suite: one set of cases, one named test per backend and case
//! (`cpu_f32::ot_assign_matches_the_reference`, `cuda_f16::…`), so a failure says which device
//! failed and never hides the others. The CPU backend runs in f32 on 2 threads and on 1, and in
//! f16; the CUDA backend in f32 and f16 with `--features cuda`. Where a CUDA device cannot start,
//! its tests report themselves skipped on the terminal with the probe's reason, and fail instead
//! under `BRENIER_REQUIRE_CUDA=1` (scripts/gpu-check.sh sets it).
//!
//! Every case compares with a reference written here, separately from the runtime's code:
//! brute-force loops in f64 for the OT map and the DDIM step, the closed-form Gaussian ε for the
//! networks, and an f64 OT-ALD pipeline on that closed form for a whole translation, with the
//! schedule's ᾱ and the timestep grid written out again from their definitions. Tolerances
//! are stated where they are asserted. Inputs to the OT kernels are f16-representable on purpose:
//! the CUDA backend's GEMM reads queries in f16, so on such inputs every backend must agree with
//! the reference up to summation order.

use brenier::backend::{Backend, CpuBackend, Precision};
use brenier::bundle::Bundle;
use brenier::linalg::{matvec, spd_inverse};
use brenier::pipeline::{NetTime, Silent, TranslateMethod, TranslateOptions};
use brenier::rng::NoiseStream;
use brenier::sched::DdimCoeffs;
use brenier::{Engine, Error, NetKey};
use brenier_export::gaussian::Gaussian;
use brenier_tests::*;
use half::f16;

/// Reports a backend this build or machine cannot start: visibly (past the test harness's
/// output capture), or as a failure where `BRENIER_REQUIRE_CUDA=1`.
#[allow(dead_code)]
fn skipped(backend: &str, why: &str) -> Option<Box<dyn Backend>> {
    if std::env::var_os("BRENIER_REQUIRE_CUDA").is_some_and(|v| v == "1") {
        panic!("{backend}: {why}, and BRENIER_REQUIRE_CUDA=1 requires it");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED backend {backend}: {why}");
    None
}

#[cfg(feature = "cuda")]
fn cuda(p: Precision) -> Option<Box<dyn Backend>> {
    match brenier::backend::cuda::CudaBackend::new(p) {
        Ok(b) => Some(Box::new(b)),
        Err(e) => skipped(&format!("cuda {p}"), &e.to_string()),
    }
}

/// One test per (backend, case): `suite!(backend => start; case, case, …)`.
macro_rules! suite {
    ($($(#[$attr:meta])* $backend:ident => $start:expr;)*) => {$(
        $(#[$attr])*
        mod $backend {
            use super::*;
            fn start() -> Option<Box<dyn Backend>> {
                $start
            }
            suite!(@cases ot_assign_matches_the_reference, ot_soft_map_matches_the_reference,
                ot_rejects_bad_shapes_and_non_finite_queries, ddim_update_matches_the_reference_with_the_same_noise,
                networks_match_the_closed_form, translation_matches_the_closed_form_pipeline);
        }
    )*};
    (@cases $($case:ident),*) => {$(
        #[test]
        fn $case() {
            if let Some(b) = start() {
                super::$case(stringify!($case), b);
            }
        }
    )*};
}

suite! {
    cpu_f32 => Some(Box::new(CpuBackend::new(2).unwrap()));
    // Results must not depend on the thread count.
    cpu_f32_1_thread => Some(Box::new(CpuBackend::new(1).unwrap()));
    // tract's f32→f16 translation, the precision a Jetson runs.
    cpu_f16 => Some(Box::new(CpuBackend::with_precision(2, Precision::F16).unwrap()));
    #[cfg(feature = "cuda")]
    cuda_f32 => cuda(Precision::F32);
    #[cfg(feature = "cuda")]
    cuda_f16 => cuda(Precision::F16);
}

fn f16_round(v: Vec<f32>) -> Vec<f32> {
    v.into_iter().map(|x| f16::from_f32(x).to_f32()).collect()
}

struct OtCase {
    queries: Vec<f32>,
    targets: Vec<f16>,
    heights: Vec<f32>,
}

fn ot_case(batch: usize, n: usize, d: usize, seed: u64) -> OtCase {
    OtCase {
        queries: f16_round(NoiseStream::new(seed, 1).normal(batch * d)),
        targets: NoiseStream::new(seed, 2).normal(n * d).into_iter().map(f16::from_f32).collect(),
        heights: NoiseStream::new(seed, 3).normal(n).into_iter().map(|h| h * 0.5).collect(),
    }
}

/// ⟨x, y_i⟩ + h_i in f64 for every target, one query.
fn naive_scores(c: &OtCase, q: usize, d: usize) -> Vec<f64> {
    let x = &c.queries[q * d..(q + 1) * d];
    c.targets
        .chunks(d)
        .zip(&c.heights)
        .map(|(y, &h)| x.iter().zip(y).map(|(&a, b)| a as f64 * b.to_f64()).sum::<f64>() + h as f64)
        .collect()
}

/// Batch 1, N below / at / above a 256-thread block and the CPU tile of 64, D odd.
const SHAPES: &[(usize, usize, usize)] = &[(1, 1, 1), (1, 63, 7), (3, 257, 17), (16, 1000, 33), (2, 4099, 784)];

fn ot_assign_matches_the_reference(name: &str, b: Box<dyn Backend>) {
    for (k, &(batch, n, d)) in SHAPES.iter().enumerate() {
        let c = ot_case(batch, n, d, k as u64);
        let got = b.ot_assign(&c.queries, d, &c.targets, &c.heights).unwrap();
        assert_eq!(got.len(), batch);
        for (q, g) in got.iter().enumerate() {
            let scores = naive_scores(&c, q, d);
            let best = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            // f32 summation against f64: 1e-5 relative per √D terms. The index may differ from
            // the f64 argmax only on a near-tie: the picked target must score within that of it.
            let tol = 1e-5 * (1.0 + best.abs()) * (d as f64).sqrt();
            assert!((g.score as f64 - best).abs() <= tol, "{name} {batch}×{n}×{d} q{q}: {} vs {best}", g.score);
            assert!(
                g.index < n && (scores[g.index] - best).abs() <= tol,
                "{name} q{q}: picked {} not a near-tie",
                g.index
            );
        }
    }
}

fn ot_soft_map_matches_the_reference(name: &str, b: Box<dyn Backend>) {
    for (k, &(batch, n, d)) in SHAPES.iter().enumerate() {
        let c = ot_case(batch, n, d, 50 + k as u64);
        for tau in [1.0f64, 0.1] {
            let got = b.ot_soft_map(&c.queries, d, &c.targets, &c.heights, tau as f32).unwrap();
            let mut want = vec![0f64; batch * d];
            for q in 0..batch {
                let s = naive_scores(&c, q, d);
                let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let w: Vec<f64> = s.iter().map(|v| ((v - max) / tau).exp()).collect();
                let sum: f64 = w.iter().sum();
                for (i, y) in c.targets.chunks(d).enumerate() {
                    for (o, v) in want[q * d..(q + 1) * d].iter_mut().zip(y) {
                        *o += w[i] / sum * v.to_f64();
                    }
                }
            }
            let scale = want.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
            let err = got.iter().zip(&want).fold(0f64, |m, (a, b)| m.max((*a as f64 - b).abs()));
            // exp of f32 scores against f64: 1e-3 of the output scale.
            assert!(err <= 1e-3 * scale, "{name} {batch}×{n}×{d} τ {tau}: error {err} (scale {scale})");
        }
    }
}

fn ot_rejects_bad_shapes_and_non_finite_queries(name: &str, b: Box<dyn Backend>) {
    let c = ot_case(2, 100, 5, 9);
    let bad = b.ot_assign(&c.queries[..7], 5, &c.targets, &c.heights).unwrap_err();
    assert!(matches!(bad, Error::InvalidArgument(_)), "{name}: {bad}");
    let mut q = c.queries.clone();
    q[6] = f32::NAN;
    let e = b.ot_assign(&q, 5, &c.targets, &c.heights).unwrap_err();
    assert!(matches!(e, Error::NonFinite { index: 1, .. }), "{name}: {e}");
    let e = b.ot_soft_map(&q, 5, &c.targets, &c.heights, 1.0).unwrap_err();
    assert!(matches!(e, Error::NonFinite { index: 1, .. }), "{name}: {e}");
    assert!(b.ot_soft_map(&c.queries, 5, &c.targets, &c.heights, 0.0).is_err(), "{name}: τ = 0 accepted");
}

fn ddim_update_matches_the_reference_with_the_same_noise(name: &str, b: Box<dyn Backend>) {
    let c = DdimCoeffs { c_x: 0.97, c_eps: 0.4, sigma: 0.2 };
    for n in [1usize, 785, 6 * 784] {
        let (x0, eps) = (NoiseStream::new(1, 1).normal(n), NoiseStream::new(1, 2).normal(n));
        let stream = NoiseStream::new(5, 6);
        for (sigma, noise) in [(0.0, None), (c.sigma, Some(stream))] {
            let c = DdimCoeffs { sigma, ..c };
            // x ← c_x·x + c_ε·ε + σ·z, z value i of the stream, in f64.
            let z = noise.map(|s| s.normal(n));
            let want: Vec<f64> = (0..n)
                .map(|i| {
                    let zi = z.as_ref().map_or(0.0, |z| z[i] as f64);
                    c.c_x as f64 * x0[i] as f64 + c.c_eps as f64 * eps[i] as f64 + sigma as f64 * zi
                })
                .collect();
            let mut got = x0.clone();
            b.ddim_update(&mut got, &eps, noise, c).unwrap();
            let err = got.iter().zip(&want).fold(0f64, |m, (a, b)| m.max((*a as f64 - b).abs()));
            // Three f32 products and two sums against f64: 1e-6 on values of order 5.
            assert!(err <= 1e-6, "{name} n {n} σ {sigma}: error {err}");
        }
    }
}

/// ε*(x, t) = √(1−ᾱ) Σ_t⁻¹ (x − √ᾱ m) of a Gaussian domain, in f64.
fn closed_form_eps(g: &Gaussian, x: &[f64], ab: f64) -> Vec<f64> {
    let d = g.dim();
    let inv = spd_inverse(&g.cov_at(ab), d);
    let centred: Vec<f64> = x.iter().zip(&g.mean).map(|(&v, m)| v - ab.sqrt() * m).collect();
    matvec(&inv, &centred, d).iter().map(|v| v * (1.0 - ab).sqrt()).collect()
}

/// The oracle networks (exact Gaussian ε, real ONNX) against the closed form: f32 within 1e-4 of
/// the output scale, f16 within 1e-2.
fn networks_match_the_closed_form(name: &str, b: Box<dyn Backend>) {
    let (path, pair) = oracle_bundle();
    let d = IMAGE.elems();
    let x = NoiseStream::new(3, 0).normal(4 * d);
    let tol = if b.precision() == Precision::F16 { 1e-2 } else { 1e-4 };
    let engine = Engine::new(Bundle::open(path).unwrap(), b).unwrap();
    for t in [0i64, 250, 999] {
        let ab = alpha_bar(t);
        for key in [NetKey::A, NetKey::B] {
            let e = engine.eps(key, &x, 4, t, "suite", &mut NetTime::default()).unwrap();
            for (row, er) in x.chunks(d).zip(e.chunks(d)) {
                let row: Vec<f64> = row.iter().map(|&v| v as f64).collect();
                let want = closed_form_eps(pair.domain(key), &row, ab);
                let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
                let err = er.iter().zip(&want).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
                assert!(err <= tol * scale, "{name} net {key:?} t={t}: error {err} (scale {scale})");
            }
        }
    }
}

/// ᾱ_t of the oracle bundle's schedule (linear β from 1e-4 to 0.02 over 1000 steps), written out
/// here in f64: ᾱ_t = Π_{s≤t}(1 − β_s), ᾱ_{−1} = 1.
fn alpha_bar(t: i64) -> f64 {
    (0..=t).map(|s| 1.0 - (1e-4 + (0.02 - 1e-4) * s as f64 / 999.0)).product()
}

/// The K-step grid to T written out: t_0 = −1, t_k = round(k·(T+1)/K) − 1, halves rounded up.
fn grid(t: usize, k: usize) -> Vec<i64> {
    (0..=k).map(|i| ((i * (t + 1)) as f64 / k as f64 + 0.5).floor() as i64 - 1).collect()
}

/// One η = 0 DDIM step from t to s with ε, in f64: x̂0 = (x − √(1−ᾱt)·ε)/√ᾱt, then
/// x_s = √ᾱs·x̂0 + √(1−ᾱs)·ε.
fn naive_step(x: &mut [f64], eps: &[f64], ab_t: f64, ab_s: f64) {
    for (v, e) in x.iter_mut().zip(eps) {
        let x0 = (*v - (1.0 - ab_t).sqrt() * e) / ab_t.sqrt();
        *v = ab_s.sqrt() * x0 + (1.0 - ab_s).sqrt() * e;
    }
}

/// A whole OT-ALD translation against the same pipeline written out in f64 on the closed-form
/// ε (encode with A, assign by brute force to the bundle's targets, decode with B): images
/// whose assignment matches within 1e-3 RMS in f32 and 5e-2 in f16 (latents are O(1)), and at
/// most one of 16 assigned elsewhere (a near-tie the networks' rounding may flip).
fn translation_matches_the_closed_form_pipeline(name: &str, b: Box<dyn Backend>) {
    let (path, pair) = oracle_bundle();
    let d = IMAGE.elems();
    let (t, k) = (500usize, 10usize);
    let images = pair.a.sample_at(1.0, &NoiseStream::new(8, 0).normal(16 * d));
    let tol = if b.precision() == Precision::F16 { 5e-2 } else { 1e-3 };
    let engine = Engine::new(Bundle::open(path).unwrap(), b).unwrap();
    let opts = TranslateOptions {
        method: TranslateMethod::OtAld,
        t: Some(t),
        steps: Some(k),
        eta: Some(0.0),
        seed: 3,
        ..TranslateOptions::default()
    };
    let out = engine.translate(&images, &opts, &Silent).unwrap();
    let got_assign = out.map.as_ref().unwrap().assignments.clone();

    let m = engine.bundle().manifest();
    assert_eq!(m.schedule, brenier::sched::ScheduleSpec::default(), "alpha_bar() above assumes the default schedule");
    let spec = m.find_map_at(&brenier::bundle::OtSource::Domain { domain: NetKey::A }, NetKey::B, t).unwrap();
    let (heights, targets) = engine.bundle().ot_map(spec).unwrap();
    let g = grid(t, k);
    let (mut matched, mut moved) = (0, 0);
    for (i, x) in images.chunks(d).enumerate() {
        let mut z: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        for w in g.windows(2) {
            let eps = closed_form_eps(&pair.a, &z, alpha_bar(w[0].max(0)));
            naive_step(&mut z, &eps, alpha_bar(w[0]), alpha_bar(w[1]));
        }
        let score = |j: usize| {
            let y = &targets[j * d..(j + 1) * d];
            z.iter().zip(y).map(|(a, b)| a * b.to_f64()).sum::<f64>() + heights[j] as f64
        };
        let best = (0..heights.len()).max_by(|&a, &b| score(a).total_cmp(&score(b))).unwrap();
        if best != got_assign[i] {
            moved += 1;
            continue;
        }
        let mut y: Vec<f64> = targets[best * d..(best + 1) * d].iter().map(|v| v.to_f64()).collect();
        for w in g.windows(2).rev() {
            let eps = closed_form_eps(&pair.b, &y, alpha_bar(w[1]));
            naive_step(&mut y, &eps, alpha_bar(w[1]), alpha_bar(w[0]));
        }
        let o = &out.images[i * d..(i + 1) * d];
        let rms = (o.iter().zip(&y).map(|(a, b)| (*a as f64 - b).powi(2)).sum::<f64>() / d as f64).sqrt();
        assert!(rms <= tol, "{name} image {i}: RMS {rms} from the closed-form pipeline");
        matched += 1;
    }
    assert!(moved <= 1 && matched + moved == 16, "{name}: {moved} of 16 assigned elsewhere than the reference");
}
