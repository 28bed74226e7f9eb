//! The OT kernels against brute force (f64 dot products over the f16 targets).

use half::f16;

use super::map::*;
use crate::rng::NoiseStream;

fn data(b: usize, n: usize, d: usize, seed: u64) -> (Vec<f32>, Vec<f16>, Vec<f32>) {
    let q = NoiseStream::new(seed, 0).normal(b * d);
    let y: Vec<f16> = NoiseStream::new(seed, 1).normal(n * d).into_iter().map(f16::from_f32).collect();
    let h = NoiseStream::new(seed, 2).normal(n);
    (q, y, h)
}

fn brute(q: &[f32], d: usize, y: &[f16], h: &[f32]) -> Vec<(usize, f64)> {
    q.chunks(d)
        .map(|x| {
            (0..h.len())
                .map(|i| (i, (0..d).map(|k| x[k] as f64 * y[i * d + k].to_f64()).sum::<f64>() + h[i] as f64))
                .fold((usize::MAX, f64::NEG_INFINITY), |a, b| if b.1 > a.1 { b } else { a })
        })
        .collect()
}

#[test]
fn hard_map_equals_brute_force_on_edge_shapes() {
    // N not a multiple of the tile or chunk, D odd, batch 1.
    for &(b, n, d) in &[(1, 1, 1), (1, 65, 7), (3, 1025, 33), (17, 2000, 5), (64, 130, 784), (600, 70, 3)] {
        let (q, y, h) = data(b, n, d, (b * n * d) as u64);
        let got = assign(&q, d, &y, &h).unwrap();
        for (g, (i, s)) in got.iter().zip(brute(&q, d, &y, &h)) {
            // A different index is only acceptable for a numerical tie (f32 vs f64 sums).
            assert!(
                g.index == i || (g.score as f64 - s).abs() < 1e-4 * s.abs().max(1.0),
                "b{b} n{n} d{d}: {g:?} vs {i} {s}"
            );
            assert!((g.score as f64 - s).abs() <= 1e-4 * s.abs().max(1.0));
        }
    }
}

#[test]
fn constant_height_shift_changes_nothing_and_threads_agree() {
    let (q, y, h) = data(9, 700, 12, 3);
    let base = assign(&q, 12, &y, &h).unwrap();
    let shifted: Vec<f32> = h.iter().map(|v| v + 3.5).collect();
    let a: Vec<usize> = assign(&q, 12, &y, &shifted).unwrap().iter().map(|a| a.index).collect();
    assert_eq!(a, base.iter().map(|a| a.index).collect::<Vec<_>>());
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let single = one.install(|| assign(&q, 12, &y, &h).unwrap());
    assert_eq!(single, base, "result must not depend on the thread count");
}

#[test]
fn soft_map_is_convex_combination_and_tends_to_hard_map() {
    let (q, y, h) = data(5, 300, 6, 4);
    let (hard, _) = hard_map(&q, 6, &y, &h).unwrap();
    let mut last = f32::INFINITY;
    for tau in [1.0f32, 0.1, 0.01, 0.001] {
        let soft = soft_map(&q, 6, &y, &h, tau).unwrap();
        let err = soft.iter().zip(&hard).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(err <= last + 1e-6, "τ={tau}: {err} > {last}");
        last = err;
    }
    assert!(last < 1e-3, "τ=0.001 soft map still {last} from the hard map");
    // Large τ: the weights flatten; every coordinate stays inside the targets' range.
    let soft = soft_map(&q, 6, &y, &h, 1e6).unwrap();
    for k in 0..6 {
        let col: Vec<f32> = (0..300).map(|i| y[i * 6 + k].to_f32()).collect();
        let (lo, hi) = col.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let mean = col.iter().sum::<f32>() / 300.0;
        for r in 0..5 {
            let v = soft[r * 6 + k];
            assert!(v >= lo && v <= hi);
            assert!((v - mean).abs() < 1e-3, "τ→∞ gives the plain mean");
        }
    }
}

#[test]
fn nearest_target_equals_brute_force() {
    let (q, y, _) = data(7, 500, 9, 5);
    for ((i, r), x) in nearest_target(&q, 9, &y).unwrap().into_iter().zip(q.chunks(9)) {
        let dist = |j: usize| (0..9).map(|k| (x[k] as f64 - y[j * 9 + k].to_f64()).powi(2)).sum::<f64>().sqrt();
        let best = (0..500).map(dist).fold(f64::INFINITY, f64::min);
        assert!((dist(i) - best).abs() < 1e-3 && (r as f64 - best).abs() < 1e-3, "{r} vs {best}");
    }
}

#[test]
fn nan_query_is_an_error_not_a_silent_index() {
    let (mut q, y, h) = data(2, 50, 4, 6);
    q[5] = f32::NAN;
    let err = assign(&q, 4, &y, &h).unwrap_err().to_string();
    assert!(err.contains("NaN") && err.contains("index 1"), "{err}");
}

mod properties {
    //! Invariants of the map on random shapes (N across tile and chunk boundaries, odd D,
    //! batch 1..5), each against an f64 brute force over the same f16 targets.

    use half::f16;
    use proptest::prelude::*;

    use super::brute;
    use crate::ot::map::*;

    /// Queries, f16 targets and heights of the given shape, values in a few units.
    fn problem() -> impl Strategy<Value = (usize, Vec<f32>, Vec<f16>, Vec<f32>)> {
        (1usize..6, prop_oneof![1usize..80, 1000usize..1100], 1usize..24).prop_flat_map(|(b, n, d)| {
            (
                Just(d),
                proptest::collection::vec(-3.0f32..3.0, b * d),
                proptest::collection::vec((-3.0f32..3.0).prop_map(f16::from_f32), n * d),
                proptest::collection::vec(-5.0f32..5.0, n),
            )
        })
    }

    /// The score gap between the best and the second-best target of each query (f64).
    fn margins(q: &[f32], d: usize, y: &[f16], h: &[f32]) -> Vec<f64> {
        q.chunks(d)
            .map(|x| {
                let mut s: Vec<f64> = (0..h.len())
                    .map(|i| (0..d).map(|k| x[k] as f64 * y[i * d + k].to_f64()).sum::<f64>() + h[i] as f64)
                    .collect();
                s.sort_by(|a, b| b.total_cmp(a));
                if s.len() > 1 {
                    s[0] - s[1]
                } else {
                    f64::INFINITY
                }
            })
            .collect()
    }

    /// f32 accumulation error allowed on a score of magnitude ~|s| (sums of ≤ 24 terms).
    fn tol(s: f64) -> f64 {
        1e-5 * s.abs().max(1.0) * 8.0
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn argmax_is_the_brute_force_maximum((d, q, y, h) in problem()) {
            let got = assign(&q, d, &y, &h).unwrap();
            for (g, (_, best)) in got.iter().zip(brute(&q, d, &y, &h)) {
                // The chosen target's score is the maximum, up to f32 summation error (a
                // different index is only possible for a numerical tie).
                prop_assert!((g.score as f64 - best).abs() <= tol(best), "{g:?} vs best {best}");
            }
        }

        #[test]
        fn adding_a_constant_to_all_heights_changes_no_assignment((d, q, y, h) in problem(), c in -50.0f32..50.0) {
            let shifted: Vec<f32> = h.iter().map(|v| v + c).collect();
            let a = assign(&q, d, &y, &h).unwrap();
            let b = assign(&q, d, &y, &shifted).unwrap();
            for ((a, b), m) in a.iter().zip(&b).zip(margins(&q, d, &y, &h)) {
                // Rounding of h + c may only flip a choice between near-tied targets.
                if m > tol(a.score as f64 + c.abs() as f64) * 4.0 {
                    prop_assert_eq!(a.index, b.index);
                }
                prop_assert!(((b.score - a.score) as f64 - c as f64).abs() <= tol(a.score as f64 + c.abs() as f64) * 4.0);
            }
        }

        #[test]
        fn soft_map_is_the_softmax_weighted_convex_combination((d, q, y, h) in problem(), tau in 0.05f32..20.0) {
            let got = soft_map(&q, d, &y, &h, tau).unwrap();
            let n = h.len();
            for (x, out) in q.chunks(d).zip(got.chunks(d)) {
                let s: Vec<f64> = (0..n)
                    .map(|i| ((0..d).map(|k| x[k] as f64 * y[i * d + k].to_f64()).sum::<f64>() + h[i] as f64) / tau as f64)
                    .collect();
                let top = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let w: Vec<f64> = s.iter().map(|v| (v - top).exp()).collect();
                let z: f64 = w.iter().sum();
                for k in 0..d {
                    let want: f64 = (0..n).map(|i| w[i] / z * y[i * d + k].to_f64()).sum();
                    let (lo, hi) = (0..n).map(|i| y[i * d + k].to_f64()).fold((f64::INFINITY, f64::NEG_INFINITY), |(l, u), v| (l.min(v), u.max(v)));
                    // Inside the targets' bounding box (a convex combination), and equal to
                    // the softmax-weighted sum.
                    prop_assert!(out[k] as f64 >= lo - 1e-4 && out[k] as f64 <= hi + 1e-4);
                    prop_assert!((out[k] as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()), "{} vs {want}", out[k]);
                }
            }
        }
    }
}

#[test]
fn top_k_equals_the_brute_force_ranking() {
    for &(b, n, d, k) in &[(1, 1, 1, 4), (3, 65, 7, 5), (300, 130, 33, 16), (2, 1025, 5, 64)] {
        let (q, y, h) = data(b, n, d, (b + n + d + k) as u64);
        let got = top_k(&q, d, &y, &h, k).unwrap();
        let k = k.min(n);
        assert_eq!((got.k, got.index.len()), (k, b * k));
        for (j, x) in q.chunks(d).enumerate() {
            let mut all: Vec<(usize, f64)> = (0..n)
                .map(|i| (i, (0..d).map(|c| x[c] as f64 * y[i * d + c].to_f64()).sum::<f64>() + h[i] as f64))
                .collect();
            all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            for (r, want) in all.iter().take(k).enumerate() {
                let (gi, gs) = (got.index[j * k + r] as usize, got.score[j * k + r] as f64);
                // Same ranks up to f32-vs-f64 near-ties: the score at each rank must agree.
                assert!((gs - want.1).abs() <= 1e-4 * want.1.abs().max(1.0), "b{b} n{n} k{k} q{j} rank {r}");
                let exact = (0..d).map(|c| x[c] as f64 * y[gi * d + c].to_f64()).sum::<f64>() + h[gi] as f64;
                assert!((exact - gs).abs() <= 1e-4 * gs.abs().max(1.0), "index {gi} carries another target's score");
            }
        }
    }
}
