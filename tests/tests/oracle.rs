//! Oracle tests: exact Gaussian ε-networks (real ONNX through tract) against closed forms.

use brenier::linalg::{matvec, spd_inverse};
use brenier::pipeline::{NetTime, Silent, TranslateMethod, TranslateOptions};
use brenier::rng::NoiseStream;
use brenier::NetKey;
use brenier_tests::*;

/// The exported network computes ε*(x,t) = √(1−ᾱ) Σ_t⁻¹ (x − √ᾱ m) (f32 tables: 1e-4 relative).
#[test]
fn oracle_network_matches_closed_form_eps() {
    let (path, pair) = oracle_bundle();
    let engine = engine(path);
    let d = IMAGE.elems();
    let x = NoiseStream::new(3, 0).normal(4 * d);
    for t in [0usize, 10, 250, 500, 999] {
        let ab = engine.schedule().alpha_bar(t as i64);
        for key in [NetKey::A, NetKey::B] {
            let g = pair.domain(key);
            let e = engine.eps(key, &x, 4, t as i64, "test", &mut NetTime::default()).unwrap();
            let inv = spd_inverse(&g.cov_at(ab), d);
            for (row, er) in x.chunks(d).zip(e.chunks(d)) {
                let centred: Vec<f64> = row.iter().zip(&g.mean).map(|(&v, m)| v as f64 - ab.sqrt() * m).collect();
                let want: Vec<f64> = matvec(&inv, &centred, d).iter().map(|v| v * (1.0 - ab).sqrt()).collect();
                let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                let err = er.iter().zip(&want).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
                assert!(err <= 1e-4 * scale.max(1.0), "net {key:?} t={t}: err {err} scale {scale}");
            }
        }
    }
}

/// Encode→decode with the same network returns the input: the probability-flow ODE is
/// invertible and DDIM with η = 0 discretises it symmetrically up to O(1/K) error.
#[test]
fn encode_decode_with_one_net_is_identity() {
    let (path, pair) = oracle_bundle();
    let engine = engine(path);
    let d = IMAGE.elems();
    let x0 = pair.a.sample_at(1.0, &NoiseStream::new(4, 0).normal(64 * d));
    let mut errs = vec![];
    for k in [50usize, 100, 500] {
        let mut x = x0.clone();
        engine.encode(NetKey::A, &mut x, 500, k, &Silent, &mut NetTime::default()).unwrap();
        engine.decode(NetKey::A, &mut x, 500, k, 0.0, 0, &Silent, &mut NetTime::default()).unwrap();
        let err = x.iter().zip(&x0).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        errs.push(err);
    }
    println!("encode→decode max error at K=50/100/500: {errs:?}");
    assert!(errs[2] < 0.01, "K=500 round trip error {}", errs[2]);
    assert!(errs[0] > errs[1] && errs[1] > errs[2], "error must shrink with K: {errs:?}");
}

/// DDIB converges to the closed-form probability-flow map (A's flow to T, then B's inverse)
/// as K grows. With non-commuting covariances that map differs from the Brenier (OT) map; the
/// test shows the gap.
#[test]
fn ddib_converges_to_closed_form_flow_map() {
    let (path, pair) = oracle_bundle();
    let engine = engine(path);
    let d = IMAGE.elems();
    let t = 999usize;
    let ab = engine.schedule().alpha_bar(t as i64);
    let x0 = pair.a.sample_at(1.0, &NoiseStream::new(5, 0).normal(32 * d));
    let (fa, ba) = pair.a.flow_to(ab);
    let (fb, bb) = pair.b.flow_to(ab);
    let fb_inv = spd_inverse(&fb, d); // B's flow matrix is symmetric positive definite
    let closed: Vec<f64> = x0
        .chunks(d)
        .flat_map(|x| {
            let xv: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let xt: Vec<f64> = matvec(&fa, &xv, d).iter().zip(&ba).map(|(a, b)| a + b).collect();
            let c: Vec<f64> = xt.iter().zip(&bb).map(|(a, b)| a - b).collect();
            matvec(&fb_inv, &c, d)
        })
        .collect();
    let mut errs = vec![];
    for k in [50usize, 100, 1000] {
        let opts = TranslateOptions { method: TranslateMethod::Ddib, t: Some(t), steps: Some(k), ..Default::default() };
        let r = engine.translate(&x0, &opts, &Silent).unwrap();
        let err = r.images.iter().zip(&closed).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
        errs.push(err);
    }
    println!("DDIB vs closed-form flow map, max abs error at K=50/100/1000: {errs:?}");
    assert!(errs[2] < 0.02, "K=1000 error {}", errs[2]);
    assert!(errs[0] > errs[1] && errs[1] > errs[2], "error must shrink with K: {errs:?}");
    // The Brenier map between N(mA,ΣA) and N(mB,ΣB) is x ↦ mB + A(x − mA) with
    // A = ΣA^{-1/2}(ΣA^{1/2} ΣB ΣA^{1/2})^{1/2} ΣA^{-1/2}; DDIB's map differs when ΣA, ΣB do not commute.
    use brenier::linalg::{matmul, reconstruct, sym_eigen};
    let sqrt = |m: &[f64]| {
        let (v, q) = sym_eigen(m, d);
        reconstruct(&q, &v.iter().map(|x| x.sqrt()).collect::<Vec<_>>(), d)
    };
    let sa = sqrt(&pair.a.cov);
    let sa_inv = spd_inverse(&sa, d);
    let mid = sqrt(&matmul(&matmul(&sa, &pair.b.cov, d), &sa, d));
    let brenier = matmul(&matmul(&sa_inv, &mid, d), &sa_inv, d);
    let ddib_lin = matmul(&fb_inv, &fa, d);
    let gap = brenier.iter().zip(&ddib_lin).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    let commutator = max_abs_diff(&matmul(&pair.a.cov, &pair.b.cov, d), &matmul(&pair.b.cov, &pair.a.cov, d));
    println!("non-commuting covariances (‖ΣAΣB − ΣBΣA‖max = {commutator:.3}): DDIB linear map differs from Brenier's by {gap:.3} (max entry)");
    assert!(commutator > 0.01 && gap > 0.01, "the oracle must exercise the non-commuting case");
}

/// OT-ALD's encoded-and-mapped latents follow B's latent law at T (mean and covariance), up to
/// the finite target set: the hard map returns targets, whose cell masses the solver equalised.
#[test]
fn ot_ald_latents_have_target_latent_moments() {
    let (path, pair) = oracle_bundle();
    let engine = engine(path);
    let d = IMAGE.elems();
    let m = engine.bundle().manifest().clone();
    let spec = m.ot_maps.iter().find(|s| s.name == "a->b").unwrap().clone();
    let ab = engine.schedule().alpha_bar(spec.t as i64);
    let n = 4096;
    let mut x = pair.a.sample_at(1.0, &NoiseStream::new(6, 0).normal(n * d));
    engine.encode(NetKey::A, &mut x, spec.t, 100, &Silent, &mut NetTime::default()).unwrap();
    let before = moments(&x, d);
    let stats = engine.apply_map(&spec, &mut x, None).unwrap();
    let (mean, cov) = moments(&x, d);
    let (tm, tc) = latent_moments(&pair.b, ab);
    let (em, ec) = (max_abs_diff(&mean, &tm), max_abs_diff(&cov, &tc));
    let (bm, bc) = (max_abs_diff(&before.0, &tm), max_abs_diff(&before.1, &tc));
    println!("mapped latents vs B at T: mean err {em:.3}, cov err {ec:.3} (unmapped A latents: {bm:.3}, {bc:.3})");
    // 256 targets: the mapped law is the empirical target measure; its moments deviate from the
    // Gaussian's by sampling error O(1/√256) ≈ 0.06 per unit variance.
    assert!(em < 0.15 && ec < 0.2, "mean err {em}, cov err {ec}");
    assert!(bm > 2.0 * em, "the map must move A's latents toward B's (before {bm}, after {em})");
    // Every cell receives mass close to 1/N.
    let mut counts = vec![0usize; spec.count];
    stats.assignments.iter().for_each(|&i| counts[i] += 1);
    let empty = counts.iter().filter(|&&c| c == 0).count();
    assert!(empty < spec.count / 10, "{empty} of {} cells empty", spec.count);
}

/// The soft map's statistics: the target scale is the RMS of the targets' norms and each
/// nearest-target distance is the brute-force minimum, both computed here independently.
#[test]
fn soft_map_reports_target_scale_and_nearest_distances() {
    let (path, _) = oracle_bundle();
    let engine = engine(path);
    let d = IMAGE.elems();
    let spec = engine.bundle().manifest().ot_maps.iter().find(|s| s.name == "a->b").unwrap().clone();
    let (_, targets) = engine.bundle().ot_map(&spec).unwrap();
    let y: Vec<f32> = targets.iter().map(|v| v.to_f32()).collect();
    let mut x = NoiseStream::new(12, 0).normal(16 * d);
    let stats = engine.apply_map(&spec, &mut x, Some(0.5)).unwrap();
    let rms = (y.chunks(d).map(|r| r.iter().map(|v| v * v).sum::<f32>()).sum::<f32>() / spec.count as f32).sqrt();
    assert!((stats.target_rms - rms).abs() < 1e-3 * rms, "{} vs {rms}", stats.target_rms);
    for (p, &got) in x.chunks(d).zip(&stats.nearest_target_distance) {
        let want = y
            .chunks(d)
            .map(|r| r.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).sum::<f32>().sqrt())
            .fold(f32::INFINITY, f32::min);
        assert!((got - want).abs() < 1e-3 * (1.0 + want), "{got} vs {want}");
    }
}

/// DPM-OT (noise → B latents at t_M = 500, 10 reverse steps) and prior-OT (noise → B diffused to
/// t = 999, 25 reverse steps) both produce samples with B's moments. A plain DDIM from N(0, I)
/// at t = 500 with the same 10 steps starts from the wrong law (B's latent mean at t = 500 is
/// √ᾱ·m_B, not 0) and keeps part of that mean error; in 6 dimensions the gap is small.
#[test]
fn dpm_ot_and_prior_ot_generate_domain_b() {
    use brenier::pipeline::{GenerateMethod, GenerateOptions};
    let (path, pair) = oracle_bundle();
    let engine = engine(path);
    let d = IMAGE.elems();
    let n = 4096;
    let (tm, tc) = (pair.b.mean.clone(), pair.b.cov.clone());
    let mut report = vec![];
    for (method, nfe) in [(GenerateMethod::DpmOt, 10), (GenerateMethod::PriorOt, 25)] {
        let opts = GenerateOptions { method, domain: NetKey::B, count: n, nfe, eta: 0.0, tau: None, seed: 1 };
        let g = engine.generate(&opts, &Silent).unwrap();
        assert_eq!(g.nfe, nfe);
        let (m, c) = moments(&g.images, d);
        report.push((format!("{method:?}"), max_abs_diff(&m, &tm), max_abs_diff(&c, &tc)));
    }
    let mut x = NoiseStream::new(2, 0).normal(n * d);
    engine.decode(NetKey::B, &mut x, 500, 10, 0.0, 0, &Silent, &mut NetTime::default()).unwrap();
    let (m, c) = moments(&x, d);
    report.push(("plain DDIM from N(0,I) at t=500".into(), max_abs_diff(&m, &tm), max_abs_diff(&c, &tc)));
    println!("generation vs B's exact moments (max abs error of mean, covariance): {report:?}");
    for (name, em, ec) in &report[..2] {
        assert!(*em < 0.2 && *ec < 0.25, "{name}: mean err {em}, cov err {ec}");
    }
    assert!(report[2].1 > report[0].1, "DPM-OT must remove the prior's mean mismatch: {report:?}");
}
