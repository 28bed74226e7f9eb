//! The networks of the DIOTM objective: transport maps x ↦ T(x) on flat `[batch, d]` points, and
//! the time-conditioned value function V(t, y) with its derivatives ∇_y V and ∂_t V written out
//! as tensor operations. burn's autodiff is first-order only, so the HJB regulariser, which
//! needs gradients of these derivatives with respect to V's weights, gets them by
//! differentiating the explicit backward pass.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{sigmoid, silu};
use burn::tensor::{Device, Tensor};

/// A transport map on flat points.
pub trait MapNet: Module {
    fn transport(&self, x: Tensor<2>) -> Tensor<2>;
}

/// T(x) = x + MLP(x), SiLU hidden layers: the residual form starts near the identity, which is
/// the right prior for a map between nearby measures.
#[derive(Module, Debug)]
pub struct MlpMap {
    pub layers: Vec<Linear>,
}

impl MlpMap {
    pub fn new(d: usize, hidden: &[usize], device: &Device) -> MlpMap {
        let widths: Vec<usize> = std::iter::once(d).chain(hidden.iter().copied()).chain(std::iter::once(d)).collect();
        MlpMap { layers: widths.windows(2).map(|w| LinearConfig::new(w[0], w[1]).init(device)).collect() }
    }
}

impl MapNet for MlpMap {
    fn transport(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        let mut h = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(h);
            if i < last {
                h = silu(h);
            }
        }
        x + h
    }
}

/// Time features of V: t and sin/cos(kπt) for k = 1..=harmonics, with their t-derivatives.
fn time_features(t: Tensor<1>, harmonics: usize) -> (Tensor<2>, Tensor<2>) {
    let n = t.dims()[0];
    let t = t.reshape([n, 1]);
    let mut f = vec![t.clone()];
    let mut df = vec![t.ones_like()];
    for k in 1..=harmonics {
        let w = std::f32::consts::PI * k as f32;
        let arg = t.clone().mul_scalar(w);
        f.push(arg.clone().sin());
        f.push(arg.clone().cos());
        df.push(arg.clone().cos().mul_scalar(w));
        df.push(arg.sin().mul_scalar(-w));
    }
    (Tensor::cat(f, 1), Tensor::cat(df, 1))
}

/// d silu(a) / da = σ(a)·(1 + a·(1 − σ(a))).
fn silu_grad(a: Tensor<2>) -> Tensor<2> {
    let s = sigmoid(a.clone());
    s.clone() * (a * (s.neg().add_scalar(1.0))).add_scalar(1.0)
}

/// V(t, y): an MLP on [y, time features] with SiLU hidden layers and a scalar output.
#[derive(Module, Debug)]
pub struct ValueNet {
    pub layers: Vec<Linear>,
    pub out: Linear,
    pub harmonics: usize,
    pub dim: usize,
}

/// V with its derivatives at a batch of points.
pub struct ValueDerivs {
    /// V(t, y), `[batch]`.
    pub value: Tensor<1>,
    /// ∇_y V, `[batch, d]`.
    pub grad_y: Tensor<2>,
    /// ∂_t V, `[batch]`.
    pub dt: Tensor<1>,
}

impl ValueNet {
    pub fn new(d: usize, hidden: &[usize], harmonics: usize, device: &Device) -> ValueNet {
        let input = d + 1 + 2 * harmonics;
        let widths: Vec<usize> = std::iter::once(input).chain(hidden.iter().copied()).collect();
        ValueNet {
            layers: widths.windows(2).map(|w| LinearConfig::new(w[0], w[1]).init(device)).collect(),
            out: LinearConfig::new(*widths.last().unwrap_or(&input), 1).init(device),
            harmonics,
            dim: d,
        }
    }

    fn input(&self, y: Tensor<2>, t: Tensor<1>) -> (Tensor<2>, Tensor<2>) {
        let (f, df) = time_features(t, self.harmonics);
        (Tensor::cat(vec![y, f], 1), df)
    }

    /// V(t, y), `[batch]`.
    pub fn value(&self, y: Tensor<2>, t: Tensor<1>) -> Tensor<1> {
        let n = y.dims()[0];
        let (mut h, _) = self.input(y, t);
        for layer in &self.layers {
            h = silu(layer.forward(h));
        }
        self.out.forward(h).reshape([n])
    }

    /// V, ∇_y V and ∂_t V, differentiable with respect to the weights.
    pub fn derivs(&self, y: Tensor<2>, t: Tensor<1>) -> ValueDerivs {
        let n = y.dims()[0];
        let (mut h, df) = self.input(y, t);
        let mut pre = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let a = layer.forward(h);
            h = silu(a.clone());
            pre.push(a);
        }
        let value = self.out.forward(h).reshape([n]);
        // Backward by hand: g holds ∂V/∂(layer output), starting from the output weights.
        let w_out = self.out.weight.val();
        let width = w_out.dims()[0];
        let mut g = w_out.reshape([1, width]).repeat_dim(0, n);
        for (layer, a) in self.layers.iter().zip(pre).rev() {
            g = (g * silu_grad(a)).matmul(layer.weight.val().transpose());
        }
        let e = 1 + 2 * self.harmonics;
        let grad_y = g.clone().narrow(1, 0, self.dim);
        let dt = (g.narrow(1, self.dim, e) * df).sum_dim(1).reshape([n]);
        ValueDerivs { value, grad_y, dt }
    }
}
