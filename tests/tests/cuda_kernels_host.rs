//! The CUDA kernels' logic, checked on the CPU: runtime/src/backend/cuda/kernels.cu compiled as
//! C++ against a host shim (tests/cuda_host/, built by tests/build.rs) runs every thread of a
//! block as an OS thread with a real barrier, and its results are compared with the runtime's CPU
//! reference kernels on random and edge shapes. What a GPU adds on top — the cuBLAS GEMM, device
//! memory, NVRTC — is covered by the cuda rows of tests/tests/backend_suite.rs on a device
//! (scripts/gpu-check.sh) and by the NVRTC compile test.

use brenier::ot;
use brenier::rng::NoiseStream;
use brenier::sched::{ddim_update, DdimCoeffs};
use half::f16;

use brenier_tests::cuda_host as k;

/// Deterministic test data (the runtime's own counter-based generator).
fn normal(n: usize, seed: u64) -> Vec<f32> {
    NoiseStream::new(seed, 99).normal(n)
}

struct Case {
    batch: usize,
    n: usize,
    d: usize,
    queries: Vec<f32>,
    targets: Vec<f16>,
    heights: Vec<f32>,
}

impl Case {
    fn random(batch: usize, n: usize, d: usize, seed: u64) -> Case {
        let queries = normal(batch * d, seed);
        let targets = normal(n * d, seed + 1).into_iter().map(f16::from_f32).collect();
        let heights = normal(n, seed + 2).into_iter().map(|h| h * 0.5).collect();
        Case { batch, n, d, queries, targets, heights }
    }

    /// The queries as the device's f16 GEMM sees them.
    fn queries_f16(&self) -> Vec<f32> {
        self.queries.iter().map(|&v| f16::from_f32(v).to_f32()).collect()
    }

    /// Q·Yᵀ (batch×n) as cuBLAS GemmEx computes it: f16 inputs, products summed in wide precision.
    fn gemm(&self) -> Vec<f32> {
        let q = self.queries_f16();
        let mut s = vec![0f32; self.batch * self.n];
        for b in 0..self.batch {
            for i in 0..self.n {
                let y = &self.targets[i * self.d..(i + 1) * self.d];
                let dot: f64 =
                    q[b * self.d..(b + 1) * self.d].iter().zip(y).map(|(&a, &y)| a as f64 * y.to_f64()).sum();
                s[b * self.n + i] = dot as f32;
            }
        }
        s
    }

    fn argmax(&self, block: u32) -> Vec<(i32, f32)> {
        let scores = self.gemm();
        let (mut idx, mut best) = (vec![0i32; self.batch], vec![0f32; self.batch]);
        k::ot_argmax(&scores, &self.heights, self.batch, block, &mut idx, &mut best);
        idx.into_iter().zip(best).collect()
    }

    /// Soft map through the two kernels; `None` for a row the kernel flags as non-finite.
    fn soft_map(&self, tau: f32, block: u32) -> (Vec<f32>, Vec<i32>) {
        let mut w = self.gemm();
        let mut status = vec![0i32; self.batch];
        let mut out = vec![0f32; self.batch * self.d];
        let bits: Vec<u16> = self.targets.iter().map(|v| v.to_bits()).collect();
        k::ot_softmax_rows(&mut w, &self.heights, self.batch, tau, block, &mut status);
        k::ot_weighted_sum(&w, &bits, self.batch, self.d, block, &mut out);
        (out, status)
    }
}

fn scale(v: &[f32]) -> f32 {
    v.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6)
}

/// Shapes around the tile edges: N not a multiple of the block, D odd, batch 1, N < block.
const SHAPES: &[(usize, usize, usize)] =
    &[(1, 1, 1), (1, 7, 3), (3, 255, 17), (2, 256, 16), (4, 257, 33), (1, 1000, 784), (16, 613, 9), (5, 4099, 5)];

#[test]
fn argmax_matches_the_cpu_reference_on_f16_queries() {
    for (k, &(batch, n, d)) in SHAPES.iter().enumerate() {
        let case = Case::random(batch, n, d, 10 * k as u64);
        let reference = ot::assign(&case.queries_f16(), d, &case.targets, &case.heights).unwrap();
        let ref_scores = case.gemm();
        for block in [256, 64, 32] {
            for (q, (&(idx, best), r)) in case.argmax(block).iter().zip(&reference).enumerate() {
                let tol = 1e-5 * (1.0 + r.score.abs());
                // Both sides sum the same products in different orders; an index may differ only
                // on a near-tie, and then the kernel's pick must score within rounding of the best.
                if idx as usize != r.index {
                    let picked = ref_scores[q * n + idx as usize] + case.heights[idx as usize];
                    assert!((picked - r.score).abs() <= tol, "shape {batch}×{n}×{d} block {block} query {q}: kernel picked {idx} ({picked}), reference {} ({})", r.index, r.score);
                }
                assert!(
                    (best - r.score).abs() <= tol,
                    "shape {batch}×{n}×{d} block {block} query {q}: score {best} vs {}",
                    r.score
                );
            }
        }
    }
}

#[test]
fn argmax_breaks_ties_low_and_never_picks_nan() {
    let (batch, n, d) = (2, 300, 4);
    let mut case = Case::random(batch, n, d, 7);
    case.queries = vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
    case.heights = vec![0.0; n];
    for v in case.targets.iter_mut() {
        *v = f16::from_f32(v.to_f32().clamp(-1.0, 1.0));
    }
    // Equal best rows far apart (different threads, different reduction levels): the lower wins.
    for i in [37, 201, 299] {
        case.targets[i * d..(i + 1) * d].copy_from_slice(&[f16::from_f32(4.0), f16::ZERO, f16::ZERO, f16::ZERO]);
    }
    for block in [256, 64, 32] {
        assert!(
            case.argmax(block).iter().all(|&(i, s)| i == 37 && s == 4.0),
            "block {block}: {:?}",
            case.argmax(block)
        );
    }
    // A NaN height makes its target unpickable, even when it would otherwise win.
    case.heights[37] = f32::NAN;
    assert!(case.argmax(64).iter().all(|&(i, _)| i == 201));
    let reference = ot::assign(&case.queries_f16(), d, &case.targets, &case.heights).unwrap();
    assert!(reference.iter().all(|a| a.index == 201));
    // A NaN query scores NaN everywhere: no winner (-1), which the host turns into the same
    // typed error the CPU reference returns.
    case.queries[5] = f32::NAN;
    let out = case.argmax(64);
    assert_eq!(out[0].0, 201);
    assert_eq!(out[1].0, -1);
    assert!(ot::assign(&case.queries, d, &case.targets, &case.heights).is_err());
}

#[test]
fn soft_map_matches_the_cpu_reference() {
    for (k, &(batch, n, d)) in SHAPES.iter().enumerate() {
        let case = Case::random(batch, n, d, 100 + k as u64);
        for tau in [1.0f32, 0.05] {
            let reference = ot::soft_map(&case.queries_f16(), d, &case.targets, &case.heights, tau).unwrap();
            for block in [256, 32] {
                let (out, status) = case.soft_map(tau, block);
                assert!(status.iter().all(|&s| s == 0));
                let tol = 2e-4 * scale(&reference);
                let err = out.iter().zip(&reference).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(err <= tol, "shape {batch}×{n}×{d} τ {tau} block {block}: max error {err} > {tol}");
            }
        }
    }
}

#[test]
fn soft_map_flags_non_finite_rows() {
    let mut case = Case::random(3, 129, 5, 5);
    case.queries[5..10].fill(f32::NAN);
    let (out, status) = case.soft_map(1.0, 64);
    assert_eq!(status, vec![0, 1, 0]);
    assert!(ot::soft_map(&case.queries, 5, &case.targets, &case.heights, 1.0).is_err());
    let clean = Case { queries: case.queries[10..15].to_vec(), batch: 1, ..Case::random(1, 129, 5, 5) };
    let reference = ot::soft_map(&clean.queries_f16(), 5, &case.targets, &case.heights, 1.0).unwrap();
    let err = out[10..15].iter().zip(&reference).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(err <= 2e-4 * scale(&reference), "row 2 error {err}");
}

#[test]
fn noise_is_the_cpu_stream_value_for_value() {
    for (seed, stream, n) in [(0u64, 0u64, 1usize), (7, 3, 784), (42, 9, 12_545)] {
        let s = NoiseStream::new(seed, stream);
        let reference = s.normal(n);
        let mut out = vec![0f32; n];
        k::gaussian_f32(&mut out, s.key());
        // Same f64 Box–Muller on both sides; 1e-6 leaves room for a device libm's last ulp.
        let err = out.iter().zip(&reference).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(err <= 1e-6, "seed {seed} stream {stream} n {n}: max error {err}");
    }
}

#[test]
fn ddim_step_matches_the_reference_update() {
    let c = DdimCoeffs { c_x: 1.02, c_eps: -0.31, sigma: 0.17 };
    for n in [1usize, 2, 785, 4 * 784] {
        let (x0, eps) = (normal(n, 1), normal(n, 2));
        let stream = NoiseStream::new(3, 4);
        for sigma in [0.0, c.sigma] {
            let c = DdimCoeffs { sigma, ..c };
            let mut reference = x0.clone();
            ddim_update(&mut reference, &eps, Some(&stream.normal(n)), c);
            let mut x = x0.clone();
            k::ddim_step_f32(&mut x, &eps, c, stream.key());
            let err = x.iter().zip(&reference).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(err <= 1e-6, "f32 n {n} σ {sigma}: max error {err}");

            // f16 storage, f32 math: the reference on the widened values, rounded once.
            let xh: Vec<u16> = x0.iter().map(|&v| f16::from_f32(v).to_bits()).collect();
            let eh: Vec<u16> = eps.iter().map(|&v| f16::from_f32(v).to_bits()).collect();
            let mut reference: Vec<f32> = xh.iter().map(|&b| f16::from_bits(b).to_f32()).collect();
            let ew: Vec<f32> = eh.iter().map(|&b| f16::from_bits(b).to_f32()).collect();
            ddim_update(&mut reference, &ew, Some(&stream.normal(n)), c);
            let mut x = xh.clone();
            k::ddim_step_f16(&mut x, &eh, c, stream.key());
            for (i, (&got, &want)) in x.iter().zip(&reference).enumerate() {
                let want = f16::from_f32(want);
                // At most one f16 ulp apart (the f32 sums differ only by their rounding).
                assert!(
                    got.abs_diff(want.to_bits()) <= 1,
                    "f16 n {n} σ {sigma} [{i}]: {} vs {want}",
                    f16::from_bits(got)
                );
            }
        }
    }
}
