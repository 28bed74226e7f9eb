//! Schedule, grid and DDIM step against independent formulas.

use super::*;

#[test]
fn linear_schedule_matches_ddpm_endpoints() {
    let s = Schedule::new(&ScheduleSpec::default()).unwrap();
    assert_eq!(s.n_train(), 1000);
    assert_eq!(s.alpha_bar(-1), 1.0);
    assert!((s.alpha_bar(0) - (1.0 - 1e-4)).abs() < 1e-15);
    // ᾱ_999 = Π(1 − β_i), β linear 1e-4 → 0.02: the known DDPM value is ≈ 4.04e-5.
    assert!((s.alpha_bar(999) - 4.035e-5).abs() < 1e-7, "{}", s.alpha_bar(999));
    let explicit = Schedule::new(&ScheduleSpec::Betas { betas: ScheduleSpec::default().betas() }).unwrap();
    assert_eq!(explicit.alpha_bar(500), s.alpha_bar(500));
}

#[test]
fn grid_follows_the_design_convention() {
    assert_eq!(grid(999, 1000).unwrap(), (-1..=999).collect::<Vec<i64>>());
    assert_eq!(grid(500, 1).unwrap(), vec![-1, 500]);
    // round(k·501/4) − 1 with halves up: 125.25→125, 250.5→251, 375.75→376.
    assert_eq!(grid(500, 4).unwrap(), vec![-1, 124, 250, 375, 500]);
    for (t, k) in [(500, 25), (999, 100), (10, 11), (7, 3)] {
        let g = grid(t, k).unwrap();
        assert_eq!(g.len(), k + 1);
        assert_eq!((g[0], g[k]), (-1, t as i64));
        assert!(g.windows(2).all(|w| w[0] < w[1]), "{g:?}");
    }
    assert!(grid(10, 12).is_err() && grid(10, 0).is_err());
}

/// The affine coefficients against the textbook form x̂0 → x_s, computed here in f64.
#[test]
fn ddim_step_matches_textbook_formula() {
    let s = Schedule::new(&ScheduleSpec::default()).unwrap();
    let (x, e, z) = (0.7f64, -1.3f64, 0.4f64);
    for (t, to, eta) in
        [(500i64, 480i64, 0.0f64), (500, 480, 1.0), (20, -1, 0.5), (-1, 19, 0.0), (0, 40, 0.0), (999, 0, 0.3)]
    {
        let (at, as_) = (s.alpha_bar(t), s.alpha_bar(to));
        let x0 = (x - (1.0 - at).sqrt() * e) / at.sqrt();
        let sigma = if to < t { eta * ((1.0 - as_) / (1.0 - at)).sqrt() * (1.0 - at / as_).sqrt() } else { 0.0 };
        let want = as_.sqrt() * x0 + (1.0 - as_ - sigma * sigma).max(0.0).sqrt() * e + sigma * z;
        let c = DdimCoeffs::new(&s, t, to, eta);
        let mut v = [x as f32];
        ddim_update(&mut v, &[e as f32], Some(&[z as f32]), c);
        assert!((v[0] as f64 - want).abs() < 1e-4 * want.abs().max(1.0), "t {t}→{to} η {eta}: {} vs {want}", v[0]);
    }
}
