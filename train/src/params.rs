//! Moving parameters between a burn module and flat host vectors (in the module's visiting
//! order): for EMA weights, checkpoints and loading EMA weights for export.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
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

struct Rekey {
    base: u64,
    next: u64,
}

impl ModuleMapper for Rekey {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (_, value, mapper) = param.consume();
        self.next += 1;
        Param::from_mapped_value(ParamId::from(self.base + self.next), value, mapper)
    }
}

/// Gives every float parameter the id `base` + its position in visiting order. burn draws ids at
/// random and keys optimizer state by them, so without this a resumed run's freshly built module
/// matches none of the saved Adam moments and the optimizer silently starts over.
pub fn stable_ids<M: Module>(m: M, base: u64) -> M {
    m.map(&mut Rekey { base, next: 0 })
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
