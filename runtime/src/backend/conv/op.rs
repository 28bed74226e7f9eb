//! brenier's convolutions as a tract operator: it takes the place of a `Conv` node in the typed
//! graph, holding the filters laid out for its kernel, so the rest of the network stays tract's.

use std::sync::Arc;

use tract_linalg::multithread::{current_tract_executor, Executor};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

use super::direct::DirectFilter;
use super::pointwise::PointwiseFilter;
use super::split::Split;
use super::winograd::{Filter, Geometry};
use crate::backend::crew::Crew;

/// A convolution kernel with its weights prepared at load.
pub trait Kernel: std::fmt::Debug + Clone + PartialEq + Eq + Send + Sync + 'static {
    const NAME: &'static str;
    fn geo(&self) -> Geometry;
    /// Convolves `n` images `x` into `y`, adding `bias`, sharing its pieces out as `split` says.
    fn run(&self, x: &[f32], n: usize, bias: &[f32], y: &mut [f32], split: Split);
    /// Multiply-adds per image that the kernel performs, work it drops included.
    fn fma(&self) -> usize;
}

impl Kernel for Filter {
    const NAME: &'static str = "WinogradConv";
    fn geo(&self) -> Geometry {
        self.geo
    }
    fn run(&self, x: &[f32], n: usize, bias: &[f32], y: &mut [f32], split: Split) {
        Filter::run(self, x, n, bias, y, split)
    }
    fn fma(&self) -> usize {
        self.fma_per_image()
    }
}

impl Kernel for DirectFilter {
    const NAME: &'static str = "DirectConv";
    fn geo(&self) -> Geometry {
        self.geo
    }
    fn run(&self, x: &[f32], n: usize, bias: &[f32], y: &mut [f32], split: Split) {
        DirectFilter::run(self, x, n, bias, y, split)
    }
    fn fma(&self) -> usize {
        self.fma_per_image()
    }
}

impl Kernel for PointwiseFilter {
    const NAME: &'static str = "PointwiseConv";
    fn geo(&self) -> Geometry {
        self.geo
    }
    fn run(&self, x: &[f32], n: usize, bias: &[f32], y: &mut [f32], split: Split) {
        PointwiseFilter::run(self, x, n, bias, y, split)
    }
    fn fma(&self) -> usize {
        self.fma_per_image()
    }
}

/// Inputs: the images, then the bias when it is not a constant (tract folds a following
/// per-channel add, such as a UNet's time embedding, into the convolution's bias).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvOp<K: Kernel> {
    pub filter: Arc<K>,
    /// The bias, one per output channel, when it is a constant.
    pub bias: Option<Arc<Tensor>>,
}

/// Winograd F(2×2, 3×3) (`winograd.rs`), for maps of [`super::MIN_TILES`] tiles and up.
pub type WinogradConv = ConvOp<Filter>;
/// The direct kernel (`direct.rs`), for smaller maps, stride 2 and thin convolutions.
pub type DirectConv = ConvOp<DirectFilter>;
/// The 1×1 kernel (`pointwise.rs`).
pub type PointwiseConv = ConvOp<PointwiseFilter>;

impl<K: Kernel> Op for ConvOp<K> {
    fn name(&self) -> StaticName {
        K::NAME.into()
    }

    /// Not promised bit-equal to tract's convolution: Winograd's transforms round differently,
    /// and the 1×1 kernel starts each sum from the bias (the direct kernel happens to sum in
    /// tract's order).
    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let g = self.filter.geo();
        Ok(vec![format!("{}→{} channels, {}×{} → {}×{}", g.c, g.k, g.h, g.w, g.out_h, g.out_w)])
    }

    op_as_typed_op!();
}

impl<K: Kernel> EvalOp for ConvOp<K> {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let g = self.filter.geo();
        let x = &inputs[0];
        let bias = match (&self.bias, inputs.get(1)) {
            (Some(b), _) => b.as_ref(),
            (None, Some(b)) => &**b,
            (None, None) => bail!("{} without a bias input", K::NAME),
        };
        let bias_plain = bias.try_as_plain_ram()?;
        let bias = bias_plain.as_slice::<f32>()?;
        ensure!(bias.len() == g.k, "{} bias of {} values for {} channels", K::NAME, bias.len(), g.k);
        let shape = x.shape();
        ensure!(
            shape.len() == 4 && shape[1..] == [g.c, g.h, g.w],
            "{} built for [N,{},{},{}] got {shape:?}",
            K::NAME,
            g.c,
            g.h,
            g.w
        );
        let n = shape[0];
        let input = x.try_as_plain_ram()?;
        // Safety: the kernel writes every output value (kernel tests fill the output with NaN first).
        let mut y = unsafe { Tensor::uninitialized::<f32>(&[n, g.k, g.out_h, g.out_w])? };
        {
            let mut out = y.try_as_plain_ram_mut()?;
            // The pool where tract's own products split (one-piece runs under
            // `BRENIER_INTRA_OP=on`), else the crew on shift (one-piece runs by default), else
            // this thread (data-parallel runs, one thread): intra_op.rs.
            let (x, y) = (input.as_slice::<f32>()?, out.as_slice_mut::<f32>()?);
            match current_tract_executor() {
                Executor::MultiThread(pool) => self.filter.run(x, n, bias, y, Split::Pool(&pool)),
                _ => Crew::current(|crew| self.filter.run(x, n, bias, y, crew.map_or(Split::Serial, Split::Crew))),
            }
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

impl<K: Kernel> TypedOp for ConvOp<K> {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let g = self.filter.geo();
        let n = inputs[0].shape[0].clone();
        Ok(tvec!(f32::fact([n, g.k.into(), g.out_h.into(), g.out_w.into()])))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let per_image = self.filter.fma() as i64;
        Ok(tvec!((Cost::FMA(f32::datum_type()), inputs[0].shape[0].clone() * per_image)))
    }
}
