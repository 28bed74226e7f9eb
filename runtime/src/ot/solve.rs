//! Heights of the semi-discrete OT map (DESIGN.md, "Semi-discrete OT map"): minimise the convex
//! E(h) = E_μ[max_i(⟨x,y_i⟩+h_i)] − Σ ν_i h_i, ν_i = 1/N, whose gradient is g_i = μ(cell_i) − ν_i,
//! estimated by Monte Carlo with the same assignment kernel the runtime maps with. Adam, mean-zero
//! h, and restarts that double the sample count and shrink the step when ‖g‖ stalls.

use half::f16;

use super::map::assign;
use crate::error::Result;

#[derive(Debug, Clone)]
pub struct SolveConfig {
    pub lr: f32,
    pub beta1: f32,
    /// 0.999 (Adam's default) or 0.5 as in the later OT papers.
    pub beta2: f32,
    pub max_iters: usize,
    /// Stop when the RMS relative error of the cell masses, ‖g‖₂·√N, falls below this (and no
    /// cell is empty). Relative, so one value fits any N: 0.1 means cells within ~10% of 1/N.
    /// The Monte-Carlo estimate has a floor of about 1/√(n_mc/N), which the restarts lower.
    pub grad_tol: f32,
    /// Source samples per iteration; 0 means 10·N (DESIGN.md's starting point).
    pub n_mc: usize,
    /// Iterations without ‖g‖ improving before a restart.
    pub patience: usize,
    pub max_restarts: usize,
}

impl Default for SolveConfig {
    fn default() -> Self {
        SolveConfig {
            lr: 0.05,
            beta1: 0.9,
            beta2: 0.999,
            max_iters: 2000,
            grad_tol: 0.1,
            n_mc: 0,
            patience: 50,
            max_restarts: 5,
        }
    }
}

/// Convergence trace of one solve.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SolveReport {
    pub iterations: usize,
    pub converged: bool,
    pub energy: Vec<f32>,
    pub grad_norm: Vec<f32>,
    pub empty_cells: Vec<usize>,
    pub restarts: usize,
    pub final_n_mc: usize,
}

/// Solves the heights for `targets` (N×D f16). `sample(iter, out)` fills `out` (a multiple of D
/// values) with fresh samples of the source measure μ for iteration `iter`.
pub fn solve_heights(
    targets: &[f16],
    d: usize,
    mut sample: impl FnMut(usize, &mut [f32]),
    cfg: &SolveConfig,
    mut on_iter: impl FnMut(usize, f32, f32, usize),
) -> Result<(Vec<f32>, SolveReport)> {
    let n = targets.len() / d;
    let mut h = vec![0f32; n];
    let (mut m, mut v) = (vec![0f32; n], vec![0f32; n]);
    let mut n_mc = if cfg.n_mc == 0 { 10 * n } else { cfg.n_mc };
    let mut lr = cfg.lr;
    let mut report = SolveReport::default();
    let (mut best, mut since_best, mut adam_t) = (f32::INFINITY, 0usize, 0i32);
    // Samples are assigned in blocks so memory stays bounded whatever n_mc grows to.
    const BLOCK: usize = 1024;
    let mut buf = vec![0f32; BLOCK * d];
    for iter in 0..cfg.max_iters {
        let mut counts = vec![0u64; n];
        let mut energy = 0f64;
        let mut drawn = 0;
        let mut block = 0;
        while drawn < n_mc {
            let b = BLOCK.min(n_mc - drawn);
            sample(iter * 1_000_003 + block, &mut buf[..b * d]);
            for a in assign(&buf[..b * d], d, targets, &h)? {
                counts[a.index] += 1;
                energy += a.score as f64;
            }
            drawn += b;
            block += 1;
        }
        let nu = 1.0 / n as f32;
        let g: Vec<f32> = counts.iter().map(|&c| c as f32 / n_mc as f32 - nu).collect();
        let gnorm = g.iter().map(|x| x * x).sum::<f32>().sqrt();
        let empty = counts.iter().filter(|&&c| c == 0).count();
        let e = (energy / n_mc as f64) as f32 - h.iter().sum::<f32>() * nu;
        report.energy.push(e);
        report.grad_norm.push(gnorm);
        report.empty_cells.push(empty);
        report.iterations = iter + 1;
        on_iter(iter, e, gnorm, empty);
        if gnorm * (n as f32).sqrt() < cfg.grad_tol && empty == 0 {
            report.converged = true;
            break;
        }
        if gnorm < best {
            best = gnorm;
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= cfg.patience && report.restarts < cfg.max_restarts {
                n_mc *= 2;
                lr *= 0.8;
                report.restarts += 1;
                since_best = 0;
                best = f32::INFINITY;
                log::info!("OT solver: ‖g‖ stalled, restart {} with n_mc = {n_mc}, lr = {lr}", report.restarts);
            }
        }
        adam_t += 1;
        let (b1, b2) = (cfg.beta1, cfg.beta2);
        let (c1, c2) = (1.0 - b1.powi(adam_t), 1.0 - b2.powi(adam_t));
        for i in 0..n {
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            h[i] -= lr * (m[i] / c1) / ((v[i] / c2).sqrt() + 1e-8);
        }
        let mean = h.iter().sum::<f32>() / n as f32;
        h.iter_mut().for_each(|x| *x -= mean);
    }
    report.final_n_mc = n_mc;
    Ok((h, report))
}
