//! How close a learned map is to the optimal one on a toy pair, measured as the DIOTM paper
//! does: against the exact discrete OT plan between fresh samples of both measures.

use anyhow::Result;

use super::exact_ot::{ot_pairing, sq_dist, w2_squared};
use super::nets::MapNet;
use super::toy::Toy;
use super::{apply, Measures};

/// Evaluation streams start far from the training ones (training uses 2·step, 2·step + 1).
const EVAL_STREAM: u64 = 1 << 40;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ToyEval {
    pub toy: Toy,
    /// Test points per measure.
    pub n: usize,
    /// L2 of the paper: mean ‖T(x_i) − y_σ(i)‖² over the exact OT pairing σ of the test samples.
    pub l2_forward: f64,
    /// The same for the backward map: mean ‖S(y_σ(i)) − x_i‖².
    pub l2_backward: f64,
    /// Exact W2² between T(x) and the target sample (how well T pushes μ onto ν).
    pub w2_forward: f64,
    /// Mean ‖x_i − y_σ(i)‖²: the W2² of the samples, the scale the errors compare to.
    pub w2_source_target: f64,
    /// Gaussian pair only: mean ‖T(x) − T*(x)‖² against the closed-form map.
    pub closed_form_forward: Option<f64>,
    /// Gaussian pair only: mean ‖y_σ(i) − T*(x_i)‖², how far the discrete plan itself is from the
    /// continuous map at this sample size (the floor of `l2_forward`).
    pub plan_vs_closed_form: Option<f64>,
}

fn mean_sq(a: &[f32], b: &[f32], d: usize) -> f64 {
    let n = a.len() / d;
    (0..n).map(|i| sq_dist(&a[i * d..(i + 1) * d], &b[i * d..(i + 1) * d])).sum::<f64>() / n.max(1) as f64
}

/// Evaluates `forward` (μ → ν) and `backward` (ν → μ) on `n` fresh points of each measure.
pub fn evaluate_toy<M: MapNet>(toy: Toy, forward: &M, backward: &M, n: usize, seed: u64) -> Result<ToyEval> {
    let d = toy.dim();
    let xs = toy.source(n, seed, EVAL_STREAM);
    let ys = toy.target(n, seed, EVAL_STREAM + 1);
    let pair = ot_pairing(&xs, &ys, d)?;
    let partner: Vec<f32> = pair.iter().flat_map(|&j| ys[j * d..(j + 1) * d].to_vec()).collect();
    let tx = apply(forward, &xs, d);
    let s_partner = apply(backward, &partner, d);
    let closed: Option<Vec<f32>> =
        xs.chunks_exact(2).map(|x| toy.closed_form_map([x[0], x[1]])).collect::<Option<Vec<_>>>().map(|v| v.concat());
    Ok(ToyEval {
        toy,
        n,
        l2_forward: mean_sq(&tx, &partner, d),
        l2_backward: mean_sq(&s_partner, &xs, d),
        w2_forward: w2_squared(&tx, &ys, d)?,
        w2_source_target: mean_sq(&xs, &partner, d),
        closed_form_forward: closed.as_ref().map(|c| mean_sq(&tx, c, d)),
        plan_vs_closed_form: closed.as_ref().map(|c| mean_sq(&partner, c, d)),
    })
}
