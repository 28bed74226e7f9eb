//! The shared backend suite: one set of cases, run on every backend this build has and this
//! machine can start — the CPU backend always (f32 on 2 threads and 1, and f16); the CUDA backend in f32 and f16 with
//! `cargo test -p brenier-tests --features cuda` on a machine with a GPU (elsewhere it prints why
//! it is skipped). Every case compares against the CPU reference kernels or the oracle
//! networks' closed form, with the tolerance stated where it is asserted.
//!
//! Inputs to the OT kernels are f16-representable on purpose: the CUDA backend's GEMM reads
//! queries in f16, so on such inputs every backend must agree with the f32 reference up to
//! summation order.

use brenier::backend::{Backend, CpuBackend, Precision};
use brenier::bundle::Bundle;
use brenier::ot;
use brenier::pipeline::{NetTime, Silent, TranslateMethod, TranslateOptions};
use brenier::rng::NoiseStream;
use brenier::sched::{ddim_update, DdimCoeffs};
use brenier::{Engine, Error, NetKey};
use brenier_export::gaussian::{matvec, spd_inverse};
use brenier_tests::*;
use half::f16;

/// Every backend present, with its label.
fn backends() -> Vec<(String, Box<dyn Backend>)> {
    // The CPU twice more: one thread (results must not depend on the thread count) and f16
    // (tract's f32→f16 translation, the precision a Jetson runs).
    let mut out: Vec<(String, Box<dyn Backend>)> = vec![
        ("cpu f32".into(), Box::new(CpuBackend::new(2).unwrap())),
        ("cpu f32 1 thread".into(), Box::new(CpuBackend::new(1).unwrap())),
        ("cpu f16".into(), Box::new(CpuBackend::with_precision(2, Precision::F16).unwrap())),
    ];
    out.extend(cuda_backends());
    out
}

#[cfg(feature = "cuda")]
fn cuda_backends() -> Vec<(String, Box<dyn Backend>)> {
    let mut out: Vec<(String, Box<dyn Backend>)> = vec![];
    for p in [Precision::F32, Precision::F16] {
        match brenier::backend::cuda::CudaBackend::new(p) {
            Ok(b) => out.push((format!("cuda {p}"), Box::new(b))),
            Err(e) => eprintln!("backend suite: cuda {p} skipped: {e}"),
        }
    }
    out
}

#[cfg(not(feature = "cuda"))]
fn cuda_backends() -> Vec<(String, Box<dyn Backend>)> {
    eprintln!("backend suite: built without the `cuda` feature; CPU backends only");
    vec![]
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

/// Batch 1, N below / at / above a 256-thread block and the CPU tile of 64, D odd.
const SHAPES: &[(usize, usize, usize)] = &[(1, 1, 1), (1, 63, 7), (3, 257, 17), (16, 1000, 33), (2, 4099, 784)];

#[test]
fn ot_assign_matches_the_reference() {
    for (name, b) in backends() {
        for (k, &(batch, n, d)) in SHAPES.iter().enumerate() {
            let c = ot_case(batch, n, d, k as u64);
            let want = ot::assign(&c.queries, d, &c.targets, &c.heights).unwrap();
            let got = b.ot_assign(&c.queries, d, &c.targets, &c.heights).unwrap();
            for (q, (g, w)) in got.iter().zip(&want).enumerate() {
                // Scores agree to summation order (relative 1e-5); an index may differ only on a
                // near-tie, where the picked target's reference score equals the best.
                let tol = 1e-5 * (1.0 + w.score.abs()) * (d as f32).sqrt();
                assert!((g.score - w.score).abs() <= tol, "{name} {batch}×{n}×{d} q{q}: {} vs {}", g.score, w.score);
                if g.index != w.index {
                    let y = &c.targets[g.index * d..(g.index + 1) * d];
                    let s: f32 = c.queries[q * d..(q + 1) * d].iter().zip(y).map(|(a, y)| a * y.to_f32()).sum::<f32>()
                        + c.heights[g.index];
                    assert!(
                        (s - w.score).abs() <= tol,
                        "{name} {batch}×{n}×{d} q{q}: picked {} not a near-tie",
                        g.index
                    );
                }
            }
        }
    }
}

#[test]
fn ot_soft_map_matches_the_reference() {
    for (name, b) in backends() {
        for (k, &(batch, n, d)) in SHAPES.iter().enumerate() {
            let c = ot_case(batch, n, d, 50 + k as u64);
            for tau in [1.0f32, 0.1] {
                let want = ot::soft_map(&c.queries, d, &c.targets, &c.heights, tau).unwrap();
                let got = b.ot_soft_map(&c.queries, d, &c.targets, &c.heights, tau).unwrap();
                let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
                let err = got.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                // exp of scores whose summation order differs: 1e-3 of the output scale.
                assert!(err <= 1e-3 * scale, "{name} {batch}×{n}×{d} τ {tau}: error {err} (scale {scale})");
            }
        }
    }
}

#[test]
fn ot_rejects_bad_shapes_and_non_finite_queries() {
    for (name, b) in backends() {
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
}

#[test]
fn ddim_update_matches_the_reference_with_the_same_noise() {
    let c = DdimCoeffs { c_x: 0.97, c_eps: 0.4, sigma: 0.2 };
    for (name, b) in backends() {
        for n in [1usize, 785, 6 * 784] {
            let (x0, eps) = (NoiseStream::new(1, 1).normal(n), NoiseStream::new(1, 2).normal(n));
            let stream = NoiseStream::new(5, 6);
            for (sigma, noise) in [(0.0, None), (c.sigma, Some(stream))] {
                let c = DdimCoeffs { sigma, ..c };
                let mut want = x0.clone();
                ddim_update(&mut want, &eps, noise.map(|s| s.normal(n)).as_deref(), c);
                let mut got = x0.clone();
                b.ddim_update(&mut got, &eps, noise, c).unwrap();
                let err = got.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                // Same values, one fused multiply-add of difference at most: 1e-6.
                assert!(err <= 1e-6, "{name} n {n} σ {sigma}: error {err}");
            }
        }
    }
}

/// The oracle networks (exact Gaussian ε, real ONNX) on each backend against the closed form:
/// f32 within 1e-4 of the output scale, f16 within 1e-2.
#[test]
fn networks_match_the_closed_form() {
    let (path, pair) = oracle_bundle();
    let d = IMAGE.elems();
    let x = NoiseStream::new(3, 0).normal(4 * d);
    for (name, b) in backends() {
        let tol = if b.precision() == Precision::F16 { 1e-2 } else { 1e-4 };
        let engine = Engine::new(Bundle::open(path).unwrap(), b).unwrap();
        for t in [0i64, 250, 999] {
            let ab = engine.schedule().alpha_bar(t);
            for key in [NetKey::A, NetKey::B] {
                let g = pair.domain(key);
                let e = engine.eps(key, &x, 4, t, "suite", &mut NetTime::default()).unwrap();
                let inv = spd_inverse(&g.cov_at(ab), d);
                for (row, er) in x.chunks(d).zip(e.chunks(d)) {
                    let centred: Vec<f64> = row.iter().zip(&g.mean).map(|(&v, m)| v as f64 - ab.sqrt() * m).collect();
                    let want: Vec<f64> = matvec(&inv, &centred, d).iter().map(|v| v * (1.0 - ab).sqrt()).collect();
                    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
                    let err = er.iter().zip(&want).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
                    assert!(err <= tol * scale, "{name} net {key:?} t={t}: error {err} (scale {scale})");
                }
            }
        }
    }
}

/// A whole OT-ALD translation on each backend lands where the CPU f32 backend's does: f32
/// within 1e-3 RMS, f16 within 5e-2 (the oracle latents are O(1)).
#[test]
fn translation_agrees_with_the_cpu_backend() {
    let (path, pair) = oracle_bundle();
    let d = IMAGE.elems();
    let images = pair.a.sample_at(1.0, &NoiseStream::new(8, 0).normal(16 * d));
    let opts = TranslateOptions {
        method: TranslateMethod::OtAld,
        t: Some(500),
        steps: Some(10),
        eta: Some(0.0),
        seed: 3,
        ..TranslateOptions::default()
    };
    let mut reference: Option<Vec<f32>> = None;
    for (name, b) in backends() {
        let tol = if b.precision() == Precision::F16 { 5e-2 } else { 1e-3 };
        let engine = Engine::new(Bundle::open(path).unwrap(), b).unwrap();
        let out = engine.translate(&images, &opts, &Silent).unwrap().images;
        match &reference {
            None => reference = Some(out),
            Some(r) => {
                let rms = (out.iter().zip(r).map(|(a, b)| (a - b) * (a - b)).sum::<f32>() / out.len() as f32).sqrt();
                assert!(rms <= tol, "{name}: RMS {rms} from the CPU backend's translation");
            }
        }
    }
}
