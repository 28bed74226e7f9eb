//! Property tests (proptest) of the DDIM step and the bundle format, on random inputs:
//! - a DDIM step lands exactly where the (x̂0, ε) decomposition says, in both directions;
//! - encode then decode with the exact ε-network of a Gaussian is the identity up to
//!   discretisation, and that error shrinks as K grows (a consistent integrator);
//! - any set of sections, of random shapes and dtypes, is read back exactly as written.
//!
//! The OT map's properties live beside its kernel (runtime/src/ot/tests.rs).

use brenier::bundle::format::{Header, SectionEntry, ENTRY_LEN, HEADER_LEN};
use brenier::bundle::Section;
use brenier::bundle::{Bundle, Dtype, SectionKind};
use brenier::sched::{ddim_update, encode_eval_t, grid, DdimCoeffs, Schedule, ScheduleSpec};
use brenier_tests::bundle_edit::{encode, sections_of};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

fn schedule() -> Schedule {
    Schedule::new(&ScheduleSpec::default()).unwrap()
}

/// The exact ε-network of data ~ N(mean, diag(var)): at step t the marginal is
/// N(√ᾱ·mean, ᾱ·var + 1 − ᾱ), whose score gives ε = √(1−ᾱ)(x − √ᾱ·mean)/(ᾱ·var + 1 − ᾱ).
fn gaussian_eps(x: &[f32], mean: &[f32], var: &[f32], ab: f64) -> Vec<f32> {
    x.iter()
        .zip(mean.iter().zip(var))
        .map(|(&x, (&m, &v))| {
            ((1.0 - ab).sqrt() * (x as f64 - ab.sqrt() * m as f64) / (ab * v as f64 + 1.0 - ab)) as f32
        })
        .collect()
}

/// Encodes x to T and decodes back with K η = 0 steps each way; returns the max error.
fn round_trip_error(x: &[f32], mean: &[f32], var: &[f32], t_end: usize, k: usize) -> f64 {
    let s = schedule();
    let g = grid(t_end, k).unwrap();
    let mut z = x.to_vec();
    for i in 1..g.len() {
        let e = gaussian_eps(&z, mean, var, s.alpha_bar(encode_eval_t(g[i - 1])));
        ddim_update(&mut z, &e, None, DdimCoeffs::new(&s, g[i - 1], g[i], 0.0));
    }
    for i in (1..g.len()).rev() {
        let e = gaussian_eps(&z, mean, var, s.alpha_bar(g[i]));
        ddim_update(&mut z, &e, None, DdimCoeffs::new(&s, g[i], g[i - 1], 0.0));
    }
    z.iter().zip(x).map(|(a, b)| (a - b).abs() as f64).fold(0.0, f64::max)
}

fn gaussian_case() -> impl Strategy<Value = (Vec<f32>, Vec<f32>, Vec<f32>)> {
    (1usize..9).prop_flat_map(|d| {
        (
            proptest::collection::vec(-1.0f32..1.0, d),
            proptest::collection::vec(-0.5f32..0.5, d),
            proptest::collection::vec(0.05f32..1.0, d),
        )
    })
}

#[test]
#[ignore = "prints the error table the bounds below were set from"]
fn print_round_trip_errors() {
    let (x, m, v) = (vec![0.9f32, -0.7, 0.1], vec![0.3f32, -0.2, 0.0], vec![0.05f32, 0.5, 1.0]);
    for t in [100, 500, 999] {
        let row: Vec<String> = [10, 25, 50, 100, 200, 400]
            .iter()
            .map(|&k| format!("{:.2e}", round_trip_error(&x, &m, &v, t, k.min(t + 1))))
            .collect();
        println!("T={t}: K=10,25,50,100,200,400 -> {}", row.join(" "));
    }
    // The worst error / h, h = (T+1)/(1000·K), over the property's input ranges, per step size.
    let mut rng = proptest::test_runner::TestRunner::deterministic();
    let mut cases: Vec<_> = (0..3000).map(|_| gaussian_case().new_tree(&mut rng).unwrap().current()).collect();
    for x in [-1.0f32, 1.0] {
        for m in [-0.5f32, 0.5] {
            for v in [0.05f32, 1.0] {
                cases.push((vec![x], vec![m], vec![v]));
            }
        }
    }
    for (t, k) in [(999, 4), (999, 8), (999, 16), (500, 4), (500, 10), (100, 4), (100, 10), (40, 20), (990, 60)] {
        let h = (t + 1) as f64 / (1000.0 * k as f64);
        let worst = cases.iter().map(|(x, m, v)| round_trip_error(x, m, v, t, k)).fold(0.0, f64::max);
        println!("T={t} K={k}: h {h:.4}, worst error {worst:.3e}, worst / h {:.2}", worst / h);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε and a network answering that ε: one η = 0 step to any s
    /// (decoding s < t or encoding s > t, clean data −1 included) lands on
    /// √ᾱ_s·x0 + √(1−ᾱ_s)·ε, up to f32 rounding scaled by the step's gain.
    #[test]
    fn a_ddim_step_preserves_the_x0_eps_decomposition(
        x0 in proptest::collection::vec(-2.0f32..2.0, 1..16),
        seed in any::<u64>(),
        t in -1i64..1000,
        s in -1i64..1000,
    ) {
        prop_assume!(t != s);
        let sch = schedule();
        let eps: Vec<f32> = brenier::rng::NoiseStream::new(seed, 0).normal(x0.len());
        let mix = |ab: f64| -> Vec<f64> {
            x0.iter().zip(&eps).map(|(&a, &e)| ab.sqrt() * a as f64 + (1.0 - ab).sqrt() * e as f64).collect()
        };
        let mut x: Vec<f32> = mix(sch.alpha_bar(t)).into_iter().map(|v| v as f32).collect();
        let c = DdimCoeffs::new(&sch, t, s, 0.0);
        ddim_update(&mut x, &eps, None, c);
        let gain = 1.0 + c.c_x.abs() as f64 + c.c_eps.abs() as f64;
        for (got, want) in x.iter().zip(mix(sch.alpha_bar(s))) {
            prop_assert!((*got as f64 - want).abs() <= 4e-6 * gain * (1.0 + want.abs()), "t {t} → s {s}: {got} vs {want}");
        }
    }

    /// Encode∘decode with the exact Gaussian ε-network is the identity up to discretisation: with
    /// h = (T+1)/(1000·K) ≤ 0.05 the error is below 24h/(1 + 8h) (the ignored test above prints
    /// the worst error over these input ranges: 16.1·h at h = 0.017, 13.5·h at h = 0.05, so the
    /// bound keeps a margin of at least 1.27 there), and at least a third smaller when K doubles
    /// with steps of at most 60 train steps (first-order convergence).
    #[test]
    fn encode_then_decode_returns_to_the_input((x, mean, var) in gaussian_case(), t_end in 20usize..1000, k in 4usize..200) {
        let k = k.min(t_end.div_ceil(2));
        let e1 = round_trip_error(&x, &mean, &var, t_end, k);
        let e2 = round_trip_error(&x, &mean, &var, t_end, 2 * k);
        let h = (t_end + 1) as f64 / (1000.0 * k as f64);
        let bound = 24.0 * h / (1.0 + 8.0 * h) + 1e-3;
        // Above h = 0.05 the bound passes 0.86, where an output that forgot its input (the mean,
        // |x − m| ≤ 1.5) could meet it: only the steps short enough for it to say something.
        if h <= 0.05 {
            prop_assert!(e1 <= bound, "T {t_end} K {k}: error {e1} above {bound}");
        }
        // First order holds once the steps are short enough: the ratio e(2K)/e(K) nears ½ as
        // T/K falls. Worst ratio over x, mean and variance (down to the stiff 0.05) measured at
        // T/K ≈ 60: 0.58; at T/K ≈ 110 (T 990, K 9, found by proptest) it is 0.66, and at K = 4
        // a stiff case drops only 34 %.
        if k >= 8 && t_end <= 60 * k {
            prop_assert!(e2 <= 0.65 * e1 + 1e-4, "T {t_end}: K {k} → {e1}, 2K → {e2}: not converging");
        }
    }
}

/// A random extra section: kind, dtype, shape and bytes consistent with each other.
fn extra_section() -> impl Strategy<Value = (SectionKind, Dtype, Vec<u64>)> {
    (
        prop_oneof![Just(SectionKind::Tensor), Just(SectionKind::Calibration), Just(SectionKind::Onnx)],
        prop_oneof![Just(Dtype::U8), Just(Dtype::F16), Just(Dtype::F32)],
        proptest::collection::vec(0u64..7, 0..=4),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any set of sections, of any shape and dtype, in any order, reads back exactly as written:
    /// same table rows, same bytes, same typed values.
    #[test]
    fn bundle_write_read_round_trip(
        extras in proptest::collection::vec(extra_section(), 0..6),
        seed in any::<u64>(),
        order_seed in any::<u64>(),
    ) {
        let base = sections_of(&Bundle::open(&brenier_tests::oracle_bundle().0).unwrap());
        let mut sections = base.clone();
        for (i, (kind, dtype, shape)) in extras.iter().enumerate() {
            let len = shape.iter().product::<u64>() * dtype.size();
            let bytes: Vec<u8> = brenier::rng::NoiseStream::new(seed, i as u64)
                .normal(len as usize)
                .iter()
                .map(|v| (v * 40.0) as i8 as u8)
                .collect();
            sections.push(Section { name: format!("extra.{i}"), kind: *kind, dtype: *dtype, shape: shape.clone(), bytes });
        }
        // Payloads may come in any order (FORMAT.md): shuffle deterministically.
        let mut rng = order_seed;
        for i in (1..sections.len()).rev() {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            sections.swap(i, (rng >> 33) as usize % (i + 1));
        }
        let bytes = encode(&sections);
        let header = Header::decode(&bytes[..HEADER_LEN]).unwrap();
        prop_assert_eq!(header.file_len, bytes.len() as u64);
        prop_assert_eq!(header.section_count as usize, sections.len());
        let b = Bundle::from_bytes(&bytes).unwrap();
        for (i, s) in sections.iter().enumerate() {
            let row = SectionEntry::decode(&bytes[HEADER_LEN + i * ENTRY_LEN..HEADER_LEN + (i + 1) * ENTRY_LEN], i).unwrap();
            prop_assert_eq!(&row, b.entry(&s.name).unwrap());
            prop_assert_eq!((row.kind, row.dtype, &row.shape), (s.kind, s.dtype, &s.shape));
            prop_assert_eq!(b.bytes(&s.name).unwrap(), &s.bytes[..]);
            if s.kind == SectionKind::Tensor && s.dtype == Dtype::F32 {
                let want: Vec<f32> = s.bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
                let got = b.f32_tensor(&s.name).unwrap();
                prop_assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()));
            }
            if s.kind == SectionKind::Tensor && s.dtype == Dtype::F16 {
                let got = b.f16_tensor(&s.name).unwrap();
                prop_assert!(got.iter().zip(s.bytes.chunks_exact(2)).all(|(a, c)| a.to_le_bytes() == [c[0], c[1]]));
            }
        }
    }
}
