//! Gaussian oracles: for data N(m, Σ) the optimal ε-predictor is closed-form,
//! ε*(x,t) = √(1−ᾱ_t) Σ_t⁻¹ (x − √ᾱ_t m) with Σ_t = ᾱ_t Σ + (1−ᾱ_t) I, and the probability-flow
//! map between times is affine. These give exact references for the whole pipeline and a real
//! ONNX network (Gather / MatMul / Sub per-t tables) that needs no training.

use brenier::bundle::{ImageSpec, TimeDtype};
use brenier::linalg::{cholesky, matmul, matvec, reconstruct, spd_inverse, sym_eigen};
use brenier::sched::Schedule;
use tract_onnx::pb;

use crate::onnx_build::*;

/// A Gaussian in D dimensions (covariance row-major D×D, symmetric positive definite).
#[derive(Debug, Clone)]
pub struct Gaussian {
    pub mean: Vec<f64>,
    pub cov: Vec<f64>,
}

impl Gaussian {
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Covariance of the latent at step t: ᾱ Σ + (1−ᾱ) I.
    pub fn cov_at(&self, alpha_bar: f64) -> Vec<f64> {
        let d = self.dim();
        let mut c: Vec<f64> = self.cov.iter().map(|v| v * alpha_bar).collect();
        (0..d).for_each(|i| c[i * d + i] += 1.0 - alpha_bar);
        c
    }

    /// Samples `n` points at step t (ᾱ) from standard normals `z` (n×D).
    pub fn sample_at(&self, alpha_bar: f64, z: &[f32]) -> Vec<f32> {
        let d = self.dim();
        let l = cholesky(&self.cov_at(alpha_bar), d);
        let s = alpha_bar.sqrt();
        z.chunks_exact(d)
            .flat_map(|z| {
                (0..d)
                    .map(|i| (s * self.mean[i] + (0..=i).map(|j| l[i * d + j] * z[j] as f64).sum::<f64>()) as f32)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The probability-flow map from clean data to step t (ᾱ): affine, x ↦ A x + b. In Σ's
    /// eigenbasis each direction scales by √(ᾱλ + 1 − ᾱ)/√λ.
    pub fn flow_to(&self, alpha_bar: f64) -> (Vec<f64>, Vec<f64>) {
        let d = self.dim();
        let (vals, vecs) = sym_eigen(&self.cov, d);
        let scale: Vec<f64> = vals.iter().map(|&l| ((alpha_bar * l + 1.0 - alpha_bar) / l).sqrt()).collect();
        let a = reconstruct(&vecs, &scale, d);
        let am = matvec(&a, &self.mean, d);
        let b = (0..d).map(|i| alpha_bar.sqrt() * self.mean[i] - am[i]).collect();
        (a, b)
    }
}

/// ONNX ε-network computing ε* for `g` at every train step of `schedule`: per-t tables of
/// A_t = √(1−ᾱ_t) Σ_t⁻¹ and b_t = √ᾱ_t A_t m, looked up by Gather on t.
pub fn eps_network(
    g: &Gaussian,
    image: ImageSpec,
    schedule: &Schedule,
    t_dtype: TimeDtype,
    batch: Option<usize>,
) -> pb::ModelProto {
    let d = g.dim();
    assert_eq!(d, image.elems(), "Gaussian dimension must equal C·H·W");
    let n = schedule.n_train();
    let mut a_table = Vec::with_capacity(n * d * d);
    let mut b_table = Vec::with_capacity(n * d);
    for t in 0..n {
        let ab = schedule.alpha_bar(t as i64);
        let inv = spd_inverse(&g.cov_at(ab), d);
        let a: Vec<f64> = inv.iter().map(|v| v * (1.0 - ab).sqrt()).collect();
        let am = matvec(&a, &g.mean, d);
        a_table.extend(a.iter().map(|&v| v as f32));
        b_table.extend(am.iter().map(|&v| (v * ab.sqrt()) as f32));
    }
    let (c, h, w) = (image.channels as i64, image.height as i64, image.width as i64);
    let bdim = batch.map(|b| b as i64);
    let mut nodes = Vec::new();
    let t_idx = match t_dtype {
        TimeDtype::Int64 => "t",
        TimeDtype::Float => {
            nodes.push(node("Cast", "t_to_index", &["t"], &["t_index"], vec![attr_int("to", INT64 as i64)]));
            "t_index"
        }
    };
    nodes.extend([
        node("Reshape", "x_rows", &["x", "shape_rows"], &["x_rows"], vec![]),
        node("Gather", "gather_a", &["a_table", t_idx], &["a_t"], vec![attr_int("axis", 0)]),
        node("MatMul", "apply_a", &["x_rows", "a_t"], &["ax"], vec![]),
        node("Reshape", "ax_flat", &["ax", "shape_flat"], &["ax_flat"], vec![]),
        node("Gather", "gather_b", &["b_table", t_idx], &["b_t"], vec![attr_int("axis", 0)]),
        node("Sub", "centre", &["ax_flat", "b_t"], &["eps_flat"], vec![]),
        node("Reshape", "eps_image", &["eps_flat", "shape_image"], &["eps"], vec![]),
    ]);
    let t_elem = if t_dtype == TimeDtype::Int64 { INT64 } else { FLOAT };
    let graph = pb::GraphProto {
        name: "gaussian_oracle".into(),
        node: nodes,
        initializer: vec![
            tensor_f32("a_table", &[n as i64, d as i64, d as i64], &a_table),
            tensor_f32("b_table", &[n as i64, d as i64], &b_table),
            tensor_i64("shape_rows", &[3], &[-1, 1, d as i64]),
            tensor_i64("shape_flat", &[2], &[-1, d as i64]),
            tensor_i64("shape_image", &[4], &[-1, c, h, w]),
        ],
        input: vec![value_info("x", FLOAT, &[bdim, Some(c), Some(h), Some(w)]), value_info("t", t_elem, &[bdim])],
        output: vec![value_info("eps", FLOAT, &[bdim, Some(c), Some(h), Some(w)])],
        ..Default::default()
    };
    model(graph, 17, "brenier-gaussian-oracle")
}

/// The optimal transport map between the latents of `from` and `to` at step t (ᾱ), both
/// Gaussian: x ↦ A x + c with A = S^{-1/2} (S^{1/2} Σ S^{1/2})^{1/2} S^{-1/2} for the latent
/// covariances S (source) and Σ (target), c = √ᾱ·m_to − A·√ᾱ·m_from.
pub fn ot_map_between(from: &Gaussian, to: &Gaussian, alpha_bar: f64) -> (Vec<f64>, Vec<f64>) {
    let d = from.dim();
    let (s, sigma) = (from.cov_at(alpha_bar), to.cov_at(alpha_bar));
    let (vals, vecs) = sym_eigen(&s, d);
    let s_half = reconstruct(&vecs, &vals.iter().map(|v| v.sqrt()).collect::<Vec<_>>(), d);
    let s_inv_half = reconstruct(&vecs, &vals.iter().map(|v| 1.0 / v.sqrt()).collect::<Vec<_>>(), d);
    let inner = matmul(&matmul(&s_half, &sigma, d), &s_half, d);
    let (ivals, ivecs) = sym_eigen(&inner, d);
    let inner_half = reconstruct(&ivecs, &ivals.iter().map(|v| v.max(0.0).sqrt()).collect::<Vec<_>>(), d);
    let a = matmul(&matmul(&s_inv_half, &inner_half, d), &s_inv_half, d);
    let r = alpha_bar.sqrt();
    let am = matvec(&a, &from.mean.iter().map(|m| r * m).collect::<Vec<_>>(), d);
    let c = (0..d).map(|i| r * to.mean[i] - am[i]).collect();
    (a, c)
}

/// ONNX network x ↦ A x + c on images (the neural-map signature: inputs `x` and `t`, output
/// `y`; `t` is accepted and not used), e.g. a closed-form map standing where a trained one goes.
pub fn affine_map_network(a: &[f64], c: &[f64], image: ImageSpec) -> pb::ModelProto {
    let d = image.elems();
    assert_eq!(a.len(), d * d, "A must be D×D");
    assert_eq!(c.len(), d, "c must have D entries");
    // Rows of x multiply Aᵀ.
    let at: Vec<f32> = (0..d).flat_map(|i| (0..d).map(move |j| (i, j))).map(|(i, j)| a[j * d + i] as f32).collect();
    let cf: Vec<f32> = c.iter().map(|&v| v as f32).collect();
    let (ch, h, w) = (image.channels as i64, image.height as i64, image.width as i64);
    let graph = pb::GraphProto {
        name: "affine_map".into(),
        node: vec![
            node("Reshape", "x_rows", &["x", "shape_flat"], &["x_rows"], vec![]),
            node("MatMul", "apply_a", &["x_rows", "a_t"], &["ax"], vec![]),
            node("Add", "shift", &["ax", "c"], &["y_flat"], vec![]),
            node("Reshape", "y_image", &["y_flat", "shape_image"], &["y"], vec![]),
        ],
        initializer: vec![
            tensor_f32("a_t", &[d as i64, d as i64], &at),
            tensor_f32("c", &[d as i64], &cf),
            tensor_i64("shape_flat", &[2], &[-1, d as i64]),
            tensor_i64("shape_image", &[4], &[-1, ch, h, w]),
        ],
        input: vec![value_info("x", FLOAT, &[None, Some(ch), Some(h), Some(w)]), value_info("t", INT64, &[None])],
        output: vec![value_info("y", FLOAT, &[None, Some(ch), Some(h), Some(w)])],
        ..Default::default()
    };
    model(graph, 17, "brenier-affine-map")
}
