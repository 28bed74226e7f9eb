//! The neural OT map on 2-D measures: the exact discrete OT solver against brute force and the
//! 1-D sorted matching, V's hand-written derivatives against finite differences, and DIOTM
//! training against the closed-form Gaussian map and the exact plan of 8 Gaussians.

use brenier::rng::NoiseStream;
use brenier_train::neural_map::eval::evaluate_toy;
use brenier_train::neural_map::exact_ot::{assignment, ot_pairing, ExactOtError};
use brenier_train::neural_map::{train, DiotmConfig, MlpMap, Toy, ValueNet};
use brenier_train::params::host;
use burn::tensor::{Device, Tensor, TensorData};

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    permutations(n - 1)
        .into_iter()
        .flat_map(|p| {
            (0..n).map(move |i| {
                let mut q = p.clone();
                q.insert(i, n - 1);
                q
            })
        })
        .collect()
}

fn total(cost: &[f64], n: usize, p: &[usize]) -> f64 {
    p.iter().enumerate().map(|(i, &j)| cost[i * n + j]).sum()
}

#[test]
fn assignment_matches_brute_force() {
    for n in 1..=7 {
        for trial in 0..20u64 {
            let z = NoiseStream::new(trial, n as u64).normal(n * n);
            // Integer-valued costs in some trials make ties common.
            let cost: Vec<f64> =
                z.iter().map(|&v| if trial % 2 == 0 { v as f64 } else { (v * 2.0).round() as f64 }).collect();
            let got = assignment(&cost, n).unwrap();
            let mut seen = vec![false; n];
            got.iter().for_each(|&j| seen[j] = true);
            assert!(seen.iter().all(|&s| s), "not a permutation: {got:?}");
            let best = permutations(n).iter().map(|p| total(&cost, n, p)).fold(f64::INFINITY, f64::min);
            assert!((total(&cost, n, &got) - best).abs() < 1e-9, "n {n} trial {trial}: {got:?} is not optimal");
        }
    }
}

#[test]
fn one_dimensional_ot_is_the_sorted_matching() {
    let n = 300;
    let xs = NoiseStream::new(3, 0).normal(n);
    let ys: Vec<f32> = NoiseStream::new(3, 1).normal(n).iter().map(|v| 2.0 * v + 1.0).collect();
    let pair = ot_pairing(&xs, &ys, 1).unwrap();
    let rank = |v: &[f32]| {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        let mut r = vec![0; v.len()];
        idx.iter().enumerate().for_each(|(k, &i)| r[i] = k);
        (idx, r)
    };
    let (ys_sorted, _) = rank(&ys);
    let (_, xr) = rank(&xs);
    for i in 0..n {
        assert_eq!(pair[i], ys_sorted[xr[i]], "x[{i}] should go to the y of the same rank");
    }
}

#[test]
fn exact_ot_rejects_bad_input() {
    assert_eq!(assignment(&[1.0, 2.0, 3.0], 2), Err(ExactOtError::Shape { n: 2, got: 3 }));
    assert!(matches!(assignment(&[1.0, f64::NAN, 3.0, 4.0], 2), Err(ExactOtError::NonFinite { row: 0, col: 1, .. })));
    assert!(matches!(ot_pairing(&[0.0; 6], &[0.0; 4], 2), Err(ExactOtError::Samples { a: 3, b: 2, d: 2 })));
}

#[test]
fn value_derivatives_match_finite_differences() {
    let device = Device::flex();
    let (n, d) = (5, 3);
    let v = ValueNet::new(d, &[16, 16], 2, &device);
    let y0 = NoiseStream::new(1, 0).normal(n * d);
    let t0: Vec<f32> = (0..n).map(|i| 0.1 + 0.17 * i as f32).collect();
    let y = |v: &[f32]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [n, d]), &device);
    let t = |v: &[f32]| Tensor::<1>::from_floats(v, &device);
    let derivs = v.derivs(y(&y0), t(&t0));
    let (grad, dt) = (host(derivs.grad_y), host(derivs.dt));
    let value = |yy: &[f32], tt: &[f32]| host(v.value(y(yy), t(tt)));
    let h = 1e-2f32;
    for k in 0..d {
        let (mut up, mut down) = (y0.clone(), y0.clone());
        for i in 0..n {
            up[i * d + k] += h;
            down[i * d + k] -= h;
        }
        let (vu, vd) = (value(&up, &t0), value(&down, &t0));
        for i in 0..n {
            let fd = (vu[i] - vd[i]) / (2.0 * h);
            assert!(
                (fd - grad[i * d + k]).abs() < 2e-3 * (1.0 + fd.abs()),
                "∂V/∂y{k} row {i}: {fd} vs {}",
                grad[i * d + k]
            );
        }
    }
    let (tu, td): (Vec<f32>, Vec<f32>) = t0.iter().map(|t| (t + h, t - h)).unzip();
    let (vu, vd) = (value(&y0, &tu), value(&y0, &td));
    for i in 0..n {
        let fd = (vu[i] - vd[i]) / (2.0 * h);
        assert!((fd - dt[i]).abs() < 2e-3 * (1.0 + fd.abs()), "∂V/∂t row {i}: {fd} vs {}", dt[i]);
    }
}

#[test]
fn exact_plan_approaches_the_closed_form_gaussian_map() {
    // The discrete plan converges to the continuous map as the samples grow: an oracle for the
    // solver and for the closed form together.
    let toy = Toy::gaussian();
    let floor = |n: usize| {
        let m = MlpMap::new(2, &[4], &Device::flex());
        evaluate_toy(toy, &m, &m, n, 9).unwrap().plan_vs_closed_form.unwrap()
    };
    let (small, large) = (floor(64), floor(512));
    assert!(large < 0.6 * small, "plan error should shrink with n: {small} at 64, {large} at 512");
}

fn toy_config(hjb: f32, steps: usize) -> DiotmConfig {
    DiotmConfig {
        hjb,
        steps,
        batch: 256,
        value_hidden: vec![64, 64],
        checkpoint_every: steps,
        ..DiotmConfig::default()
    }
}

#[test]
fn diotm_learns_the_gaussian_map() {
    let toy = Toy::gaussian();
    let dir = tempfile::tempdir().unwrap();
    let cfg = toy_config(1.0, 600);
    let trained = train(&toy, &cfg, |dev| MlpMap::new(2, &[64, 64], dev), dir.path(), false, |_| {}).unwrap();
    let e = evaluate_toy(toy, &trained.forward, &trained.backward, 512, 1).unwrap();
    println!("{e:?} in {:.1} s", trained.seconds);
    // At the saddle point the objective equals α·W2²(μ, ν), here in closed form:
    // ‖m‖² + tr(I + Σ − 2Σ^{1/2}).
    let Toy::Gaussian { mean, cov } = toy else { unreachable!() };
    let root = brenier_train::neural_map::toy::sqrt_spd2(cov);
    let w2 = mean[0].powi(2) + mean[1].powi(2) + 2.0 + cov[0] + cov[2] - 2.0 * (root[0] + root[2]);
    let tail = &trained.log[trained.log.len() - 100..];
    let objective = tail.iter().map(|l| l.objective).sum::<f32>() / tail.len() as f32;
    assert!((objective - w2).abs() < 0.1 * w2, "objective {objective} should approach W2² = {w2}");
    let err = e.closed_form_forward.unwrap();
    assert!(
        err < 0.05 * e.w2_source_target,
        "forward map is {err} from the closed form (scale {})",
        e.w2_source_target
    );
    assert!(e.l2_backward < 0.1 * e.w2_source_target, "backward L2 {}", e.l2_backward);
}
