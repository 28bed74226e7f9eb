//! Moving parameters between a burn module and flat host vectors (in the module's visiting
//! order): for EMA weights, checkpoints and loading EMA weights for export.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};

/// A tensor's values on the host as f32.
pub fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default()
}

struct Collect(Vec<Vec<f32>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(host(param.val()));
    }
}

struct Load<'a> {
    values: &'a [Vec<f32>],
    next: usize,
}

impl ModuleMapper for Load<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let v = self.values[self.next].clone();
        self.next += 1;
        param.map(|t| {
            let (shape, device, grad) = (t.dims(), t.device(), t.is_require_grad());
            // A fresh tensor is untracked; keep the parameter trainable as it was.
            Tensor::from_data(TensorData::new(v, shape), &device).set_require_grad(grad)
        })
    }
}

/// Every float parameter, flattened, in visiting order.
pub fn collect<M: Module>(m: &M) -> Vec<Vec<f32>> {
    let mut c = Collect(vec![]);
    m.visit(&mut c);
    c.0
}

/// Replaces every float parameter with `values` (same order and sizes as [`collect`]).
pub fn load<M: Module>(m: M, values: &[Vec<f32>]) -> Result<M, String> {
    let shapes = collect(&m);
    if shapes.len() != values.len() || shapes.iter().zip(values).any(|(a, b)| a.len() != b.len()) {
        return Err(format!(
            "parameter layout mismatch: module has {} tensors, checkpoint {}",
            shapes.len(),
            values.len()
        ));
    }
    Ok(m.map(&mut Load { values, next: 0 }))
}

/// ema ← decay·ema + (1 − decay)·current.
pub fn ema_update(ema: &mut [Vec<f32>], current: &[Vec<f32>], decay: f32) {
    for (e, c) in ema.iter_mut().zip(current) {
        e.iter_mut().zip(c).for_each(|(e, c)| *e = decay * *e + (1.0 - decay) * c);
    }
}
