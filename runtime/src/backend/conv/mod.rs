//! brenier's own convolutions for the CPU backend, swapped in for tract's `Conv` during graph
//! preparation so the rest of the network stays tract's:
//! - 3×3: Winograd F(2×2, 3×3) (`winograd.rs`) for maps of [`MIN_TILES`] tiles and up, its 16
//!   products in the register-tiled loop of `tile.rs` where the CPU has AVX2 with FMA, or AVX-512
//!   (`matrixmultiply`'s elsewhere).
//! - 3×3: a direct register-tiled kernel (`direct.rs`) for the smaller maps, where Winograd's
//!   transforms cost more than its products save, for stride 2, and for
//!   thin convolutions (fewer than [`MIN_CHANNELS`] in or out) at any size up to
//!   [`MAX_DIRECT_SCRATCH`].
//! - 1×1: the same register-tiled loop (`tile.rs`) run straight off the image (`pointwise.rs`).
//!
//! The direct kernels need AVX2 and FMA or AVX-512; a CPU without keeps tract's convolutions.
//!
//! Why: on the UNets measured (benches/results/tract-levers.json), tract's matrix products
//! (mostly its convolutions; attention, Gemm and 1×1 convolutions too) took 70 % (28×28 demo)
//! and 88 % (64×64 ADM) of a network step, and 1.7× and 1.5× onnxruntime's Conv time. Winograd
//! needs 4 multiply-adds per output value and channel pair where the direct method needs 9; the
//! direct kernels need no patch matrix (tract's im2col packing was 8 % of the demo step).
//!
//! Which convolutions: f32, NCHW, OIHW constant weights, dilation 1, one group; 3×3 ones at
//! stride 1 (Winograd when at least [`MIN_CHANNELS`] in and out and [`MIN_TILES`] tiles, else
//! the direct kernel) or 2 (the direct kernel), 1×1 ones at stride 1 without padding. The bias
//! is a constant or, where tract has folded a per-channel add into it (an ADM block's time
//! embedding), a second input.
//!
//! When: the 3×3 ones after tract has decluttered the graph ([`rewrite`]), so that the folded
//! bias is there to take; the 1×1 ones before ([`rewrite_pointwise`]), because decluttering
//! turns a 1×1 convolution into a matrix product (`EinSum`) and splits one fed by a
//! concatenation into a product per input.
//!
//! `BRENIER_WINOGRAD=off`, `BRENIER_DIRECT=off` and `BRENIER_POINTWISE=off` keep the
//! convolutions each would take tract's, for measuring.

mod direct;
mod isa;
mod op;
mod pointwise;
mod split;
mod tile;
mod winograd;

use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};
use tract_onnx::tract_core::ops::nn::DataFormat;

pub use direct::DirectFilter;
pub use op::{ConvOp, DirectConv, Kernel, PointwiseConv, WinogradConv};
pub use pointwise::PointwiseFilter;
pub use split::Split;
pub use winograd::{Filter, Geometry};

/// Fewest input and output channels Winograd needs to take a convolution; thinner ones (a
/// UNet's first and last, with 1–3 image channels) go to the direct kernel, whose cost per
/// product does not depend on the channel count.
pub const MIN_CHANNELS: usize = 8;

/// Fewest 2×2 output tiles per image (output maps of 13×13 and up) Winograd needs to take a
/// convolution; smaller maps go to the direct kernel, where the transforms cost more than the
/// products save. Set between the two kernels on the demo UNet's maps once the products ran in
/// `tile.rs`'s loop (6f73534): per-node times of `brenier bench --eval-only --profile` (net a,
/// batch 1, one thread, `--repeat 300`; development runs, not committed), Winograd against the
/// direct kernel, 14×14 (49 tiles) 0.26 against 0.31 ms and 0.145–0.147 against 0.159–0.160 ms;
/// 7×7 (16 tiles) 0.077–0.078 against 0.048–0.050 ms. (Before, with `matrixmultiply`'s packed
/// products, the gate was 64 tiles, set against tract's convolution.)
pub const MIN_TILES: usize = 49;

/// Winograd's gate where its products are `matrixmultiply`'s (no AVX2 with FMA, nor AVX-512;
/// aarch64): set against tract's convolution, which takes the smaller maps there (the direct
/// kernel needs those sets). Development runs (not committed) of `brenier bench --eval-only`,
/// one thread, batch 1, net a, Winograd taking every size against this gate: demo 6.56 → 5.81
/// ms, 64×64 ADM 123.5 → 117.2 ms.
pub const MIN_TILES_PACKED: usize = 64;

/// The gate for this CPU: [`MIN_TILES`] where the products run in `tile.rs`'s loop, which needs
/// the same instruction sets as the direct kernel the gate was set against.
fn min_tiles() -> usize {
    if DirectFilter::available() {
        MIN_TILES
    } else {
        MIN_TILES_PACKED
    }
}

/// Most scratch one thread may keep for a direct 3×3 convolution: every input channel's padded
/// plane (four phases at stride 2) for one image. Only thin and strided convolutions on large
/// maps come near it (a 128→3 one on 256×256 would keep 34 MiB); those stay tract's, whose
/// lazy im2col keeps no copy of the input, rather than spend a small device's memory.
pub const MAX_DIRECT_SCRATCH: usize = 8 << 20;

/// Which of brenier's kernels may take convolutions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernels {
    pub winograd: bool,
    pub direct: bool,
    pub pointwise: bool,
}

impl Kernels {
    /// All, unless `BRENIER_WINOGRAD=off`, `BRENIER_DIRECT=off` or `BRENIER_POINTWISE=off`.
    pub fn from_env() -> Kernels {
        Kernels {
            winograd: switch("BRENIER_WINOGRAD"),
            direct: switch("BRENIER_DIRECT"),
            pointwise: switch("BRENIER_POINTWISE"),
        }
    }
}

/// An on/off environment switch, on when unset.
fn switch(name: &str) -> bool {
    match std::env::var(name).as_deref() {
        Ok("off") => false,
        Ok("on") | Ok("") | Err(_) => true,
        Ok(other) => {
            log::warn!("{name}={other} is not on or off; leaving it on");
            true
        }
    }
}

/// What a rewrite did, with the memory it adds that tract's own accounting cannot see.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rewritten {
    /// Convolutions Winograd took.
    pub winograd: usize,
    /// 3×3 convolutions the direct kernel took.
    pub direct: usize,
    /// 1×1 convolutions the pointwise kernel took.
    pub pointwise: usize,
    /// Bytes the transformed filters hold beyond the weights they replace (16 against 9 values
    /// per channel pair, and the output channels rounded up to 4 where `tile.rs` runs the
    /// products).
    pub extra_weight_bytes: usize,
    /// The scratch one thread keeps: the largest of each kernel's (each keeps its own, per
    /// thread, between calls).
    pub scratch_bytes: usize,
}

impl Rewritten {
    /// Convolutions taken by any kernel.
    pub fn count(&self) -> usize {
        self.winograd + self.direct + self.pointwise
    }

    /// Both rewrites' counts and memory (they take disjoint convolutions and keep separate
    /// scratch).
    pub fn and(self, other: Rewritten) -> Rewritten {
        Rewritten {
            winograd: self.winograd + other.winograd,
            direct: self.direct + other.direct,
            pointwise: self.pointwise + other.pointwise,
            extra_weight_bytes: self.extra_weight_bytes + other.extra_weight_bytes,
            scratch_bytes: self.scratch_bytes + other.scratch_bytes,
        }
    }
}

/// Replaces every eligible 3×3 `Conv` of a decluttered f32 model by the kernels `use_kernels`
/// allows.
pub fn rewrite(model: &mut TypedModel, use_kernels: Kernels) -> TractResult<Rewritten> {
    let mut done = Rewritten::default();
    let (mut winograd_scratch, mut direct_scratch) = (0, 0);
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(plain) = plain_conv(model, node, 3)? else { continue };
        let Some(taken) = take_3x3(plain, use_kernels)? else { continue };
        let patch = match taken {
            Taken::Winograd(op) => {
                done.winograd += 1;
                let geo = op.filter.geo;
                done.extra_weight_bytes +=
                    op.filter.transformed_bytes() - 9 * geo.k * geo.c * std::mem::size_of::<f32>();
                winograd_scratch = geo.block_scratch_bytes().max(winograd_scratch);
                replace(model, node, op)?
            }
            Taken::Direct(op) => {
                done.direct += 1;
                direct_scratch = op.filter.scratch_bytes().max(direct_scratch);
                replace(model, node, op)?
            }
        };
        patch.apply(model)?;
    }
    done.scratch_bytes = winograd_scratch + direct_scratch;
    if done.count() > 0 {
        // Drops the replaced nodes' weight and bias constants, now unused.
        model.compact()?;
    }
    Ok(done)
}

/// Replaces every eligible 1×1 `Conv` of a typed f32 model, before it is decluttered, by the
/// pointwise kernel (when `use_kernels` allows it and the CPU runs it).
pub fn rewrite_pointwise(model: &mut TypedModel, use_kernels: Kernels) -> TractResult<Rewritten> {
    let mut done = Rewritten::default();
    if !use_kernels.pointwise {
        return Ok(done);
    }
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(plain) = plain_conv(model, node, 1)? else { continue };
        let geo = plain.geo;
        if plain.stride != 1 || geo.pad_top != 0 || geo.pad_left != 0 || geo.out_h != geo.h || geo.out_w != geo.w {
            continue;
        }
        let weights = plain.weights.try_as_plain_ram()?;
        let Some(filter) = PointwiseFilter::new(geo, weights.as_slice::<f32>()?) else { return Ok(done) };
        done.pointwise += 1;
        done.scratch_bytes = filter.scratch_bytes().max(done.scratch_bytes);
        let patch = replace(model, node, PointwiseConv { filter: Arc::new(filter), bias: plain.bias })?;
        patch.apply(model)?;
    }
    if done.count() > 0 {
        model.compact()?;
    }
    Ok(done)
}

/// The patch putting `op` in `node`'s place. Conv's inputs are (images, weights, bias); the
/// weights are in the op now, and so is the bias when it is a constant.
fn replace<K: Kernel>(model: &TypedModel, node: &TypedNode, op: ConvOp<K>) -> TractResult<TypedModelPatch> {
    let inputs = if op.bias.is_some() { vec![node.inputs[0]] } else { vec![node.inputs[0], node.inputs[2]] };
    TypedModelPatch::replace_single_op(model, node, &inputs, op)
}

/// Which of brenier's 3×3 kernels takes a convolution.
enum Taken {
    Winograd(WinogradConv),
    Direct(DirectConv),
}

/// A convolution any of brenier's kernels could take, read off the graph.
struct PlainConv {
    geo: Geometry,
    /// 1 or 2, the same both ways.
    stride: usize,
    /// OIHW.
    /// OIHW, the graph's own constant (read, not copied: the kernels lay it out afresh).
    weights: Arc<Tensor>,
    /// One per output channel when constant; `None` when it is the node's third input.
    bias: Option<Arc<Tensor>>,
}

/// `node`'s convolution if it is an f32 NCHW one with a `size`×`size` kernel, stride 1 or 2,
/// dilation 1, one group, constant weights, and a constant or per-channel bias.
fn plain_conv(model: &TypedModel, node: &TypedNode, size: usize) -> TractResult<Option<PlainConv>> {
    let Some(conv) = node.op_as::<Conv>() else { return Ok(None) };
    let spec = &conv.pool_spec;
    let plain = conv.q_params.is_none()
        && conv.group == 1
        && conv.kernel_fmt == KernelFormat::OIHW
        && spec.data_format == DataFormat::NCHW
        && spec.kernel_shape[..] == [size, size]
        && spec.strides().iter().all(|&s| s == spec.strides()[0] && (s == 1 || s == 2))
        && spec.dilations().iter().all(|&d| d == 1)
        && node.inputs.len() == 3;
    if !plain {
        return Ok(None);
    }
    let facts = model.node_input_facts(node.id)?;
    let (x, weights, bias) = (facts[0], facts[1], facts[2]);
    let Some(dims) = x.shape.as_concrete() else { return Ok(None) };
    if x.datum_type != f32::datum_type() || dims.len() != 4 || dims[1] != spec.input_channels {
        return Ok(None);
    }
    let Some(w) = &weights.konst else { return Ok(None) };
    let (c, k, h, wd) = (spec.input_channels, spec.output_channels, dims[2], dims[3]);
    if w.datum_type() != f32::datum_type() || w.shape() != [k, c, size, size] || bias.datum_type != f32::datum_type() {
        return Ok(None);
    }
    // A constant bias is broadcast to one value per channel here; a computed one must already
    // be one per channel (batch-1 plans: tract folds the time embedding's add into it).
    let bias = match &bias.konst {
        Some(b) if b.len() == 1 => Some(Arc::new(tensor1(&vec![b.cast_to_scalar::<f32>()?; k]))),
        Some(b) if b.len() == k => Some(Arc::new(b.as_ref().clone().into_shape(&[k])?)),
        None if bias.shape.as_concrete().is_some_and(|s| s.iter().product::<usize>() == k) => None,
        _ => return Ok(None),
    };
    // Every padding spec comes down to zeros before and an output size; the kernels read zeros
    // past the input's end, which is the padding after.
    let padding = spec.computed_padding(&dims[2..]);
    let geo = Geometry {
        c,
        k,
        h,
        w: wd,
        pad_top: padding[0].pad_before,
        pad_left: padding[1].pad_before,
        out_h: padding[0].convoluted,
        out_w: padding[1].convoluted,
    };
    Ok(Some(PlainConv { geo, stride: spec.strides()[0], weights: w.clone(), bias }))
}

/// The 3×3 kernel for `conv`, by its stride, channels and map size, if `use_kernels` allows it
/// and the CPU runs it.
fn take_3x3(conv: PlainConv, use_kernels: Kernels) -> TractResult<Option<Taken>> {
    let PlainConv { geo, stride, weights, bias } = conv;
    // Both kernels assert it at stride 1; a graph that breaks it keeps tract's convolution.
    if stride == 1 && !geo.padding_after_is_whole() {
        return Ok(None);
    }
    let weights = weights.try_as_plain_ram()?;
    let weights = weights.as_slice::<f32>()?;
    let thick = geo.c >= MIN_CHANNELS && geo.k >= MIN_CHANNELS;
    if stride == 1 && thick && geo.tiles() >= min_tiles() {
        return Ok(use_kernels
            .winograd
            .then(|| Taken::Winograd(WinogradConv { filter: Arc::new(Filter::new(geo, weights)), bias })));
    }
    if !use_kernels.direct {
        return Ok(None);
    }
    Ok(DirectFilter::new(geo, stride, weights)
        .filter(|f| f.scratch_bytes() <= MAX_DIRECT_SCRATCH)
        .map(|f| Taken::Direct(DirectConv { filter: Arc::new(f), bias })))
}

#[cfg(test)]
mod tests {
    use tract_onnx::tract_core::internal::*;
    use tract_onnx::tract_core::ops::cnn::{PaddingSpec, PoolSpec};

    use super::*;
    use crate::rng::NoiseStream;

    /// One convolution on a `[1, c, size, size]` source, with constant weights and bias.
    struct Case {
        c: usize,
        k: usize,
        size: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        group: usize,
        pad: (usize, usize),
    }

    impl Case {
        fn same(c: usize, k: usize, size: usize) -> Case {
            Case { c, k, size, kernel: 3, stride: 1, dilation: 1, group: 1, pad: (1, 1) }
        }

        fn model(&self) -> TypedModel {
            let mut model = TypedModel::default();
            let x = model.add_source("x", f32::fact([1, self.c, self.size, self.size])).unwrap();
            let shape = [self.k, self.c / self.group, self.kernel, self.kernel];
            let w = NoiseStream::new(3, 0).normal(shape.iter().product());
            let w = model.add_const("w", Tensor::from_shape(&shape, &w).unwrap()).unwrap();
            let b = model.add_const("b", tensor1(&NoiseStream::new(3, 1).normal(self.k))).unwrap();
            let conv = Conv {
                pool_spec: PoolSpec {
                    data_format: DataFormat::NCHW,
                    kernel_shape: tvec![self.kernel, self.kernel],
                    padding: PaddingSpec::Explicit(tvec![self.pad.0; 2], tvec![self.pad.1; 2]),
                    dilations: Some(tvec![self.dilation; 2]),
                    strides: Some(tvec![self.stride; 2]),
                    input_channels: self.c,
                    output_channels: self.k,
                },
                kernel_fmt: KernelFormat::OIHW,
                group: self.group,
                q_params: None,
            };
            let y = model.wire_node("conv", conv, &[x, w, b]).unwrap();
            model.select_output_outlets(&y).unwrap();
            model
        }

        fn run(&self, model: TypedModel) -> Vec<f32> {
            let x = NoiseStream::new(4, 0).normal(self.c * self.size * self.size);
            let x = Tensor::from_shape(&[1, self.c, self.size, self.size], &x).unwrap();
            let out = model.into_runnable().unwrap().run(tvec![x.into()]).unwrap();
            out[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect()
        }
    }

    const BOTH: Kernels = Kernels { winograd: true, direct: true, pointwise: true };

    /// Rewrites `case`'s model, checks that `op` took its convolution, and compares the result
    /// with tract's.
    fn taken_by<K: Kernel>(case: Case) {
        let mut model = case.model();
        let want = case.run(model.clone());
        assert_eq!(rewrite(&mut model, BOTH).unwrap().count(), 1);
        assert!(model.nodes().iter().any(|n| n.op_is::<ConvOp<K>>()), "{}", K::NAME);
        assert!(!model.nodes().iter().any(|n| n.op_is::<Conv>()));
        let got = case.run(model);
        assert_eq!(got.len(), want.len());
        assert!(got.iter().all(|v| v.is_finite()));
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0f32, f32::max);
        assert!(worst <= 1e-5 * scale, "max error {worst:e} against scale {scale}");
    }

    #[test]
    fn takes_a_plain_3x3_and_matches_tracts_conv() {
        // Pads 2/2 make the output larger than the input: the kernel's zeros past the edge.
        taken_by::<Filter>(Case::same(8, 16, 32));
        taken_by::<Filter>(Case { pad: (2, 2), ..Case::same(8, 8, 16) });
    }

    #[test]
    fn small_maps_take_the_direct_kernel_where_the_cpu_has_it() {
        if !DirectFilter::available() {
            // Neither AVX2 with FMA nor AVX-512: Winograd's products are matrixmultiply's, its
            // gate is 64 tiles (15×15), and tract keeps the smaller maps (checked below too).
            taken_by::<Filter>(Case::same(8, 8, 15));
            assert_eq!(rewrite(&mut Case::same(8, 8, 14).model(), BOTH).unwrap().count(), 0, "14×14, packed products");
            return;
        }
        taken_by::<DirectFilter>(Case::same(16, 16, 8));
        // The gate where the products are tile.rs's: 13×13 is 49 tiles (Winograd's), 12×12 is 36.
        taken_by::<Filter>(Case::same(8, 8, 13));
        taken_by::<DirectFilter>(Case::same(8, 8, 12));
        taken_by::<DirectFilter>(Case { pad: (2, 2), ..Case::same(8, 12, 7) });
    }

    #[test]
    fn thin_convolutions_on_maps_too_large_for_the_scratch_stay_tracts() {
        // 64 → 3 on 200×200: 64 padded planes of 202×202 floats, 10 MiB.
        let case = Case::same(64, 3, 200);
        assert_eq!(rewrite(&mut case.model(), BOTH).unwrap().count(), 0);
        // The same on 100×100 (2.6 MiB) is taken.
        let expected = usize::from(DirectFilter::available());
        assert_eq!(rewrite(&mut Case::same(64, 3, 100).model(), BOTH).unwrap().direct, expected);
    }

    #[test]
    fn strided_and_thin_convolutions_take_the_direct_kernel() {
        let cases = || {
            [
                ("stride 2", Case { stride: 2, ..Case::same(16, 16, 32) }),
                ("stride 2, odd map", Case { stride: 2, ..Case::same(8, 12, 15) }),
                ("1 input channel", Case::same(1, 16, 28)),
                ("3 output channels", Case::same(16, 3, 32)),
            ]
        };
        if !DirectFilter::available() {
            for (what, case) in cases() {
                assert_eq!(rewrite(&mut case.model(), BOTH).unwrap().count(), 0, "{what}");
            }
            return;
        }
        for (_, case) in cases() {
            taken_by::<DirectFilter>(case);
        }
        let direct_off = Kernels { direct: false, ..BOTH };
        for (what, case) in cases() {
            assert_eq!(rewrite(&mut case.model(), direct_off).unwrap().count(), 0, "{what}, direct off");
        }
    }

    #[test]
    fn leaves_what_the_kernel_does_not_serve_to_tract() {
        let plain = || Case::same(16, 16, 32);
        for (what, case) in [
            ("stride 3", Case { stride: 3, ..plain() }),
            ("dilation 2", Case { dilation: 2, pad: (2, 2), ..plain() }),
            ("two groups", Case { group: 2, ..plain() }),
            ("a 1×1 kernel", Case { kernel: 1, pad: (0, 0), ..plain() }),
        ] {
            let mut model = case.model();
            assert_eq!(rewrite(&mut model, BOTH).unwrap().count(), 0, "{what}");
        }
        // Small maps without the direct kernel (`BRENIER_DIRECT=off`, or a CPU without AVX2).
        let mut model = Case::same(16, 16, 8).model();
        let expected = usize::from(DirectFilter::available());
        assert_eq!(rewrite(&mut model.clone(), BOTH).unwrap().direct, expected, "an 8×8 map");
        let direct_off = Kernels { winograd: true, direct: false, pointwise: true };
        assert_eq!(rewrite(&mut model, direct_off).unwrap().count(), 0, "an 8×8 map, direct off");
        // Large maps without Winograd.
        let winograd_off = Kernels { winograd: false, direct: true, pointwise: true };
        assert_eq!(rewrite(&mut plain().model(), winograd_off).unwrap().count(), 0, "Winograd off");
        // f16 networks keep tract's f16 convolutions.
        let case = plain();
        let mut model = case.model();
        use tract_onnx::tract_core::floats::FloatPrecisionTranslator;
        use tract_onnx::tract_core::transform::ModelTransform;
        FloatPrecisionTranslator::new(f32::datum_type(), half::f16::datum_type()).transform(&mut model).unwrap();
        assert_eq!(rewrite(&mut model, BOTH).unwrap().count(), 0, "f16");
    }

    /// The largest difference between two outputs, against the first's largest value.
    fn relative_error(want: &[f32], got: &[f32]) -> f32 {
        assert_eq!(got.len(), want.len());
        assert!(got.iter().all(|v| v.is_finite()));
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        got.iter().zip(want).map(|(g, w)| (g - w).abs()).fold(0f32, f32::max) / scale
    }

    #[test]
    fn takes_a_1x1_before_declutter_and_matches_tracts_conv() {
        if !DirectFilter::available() {
            return; // neither AVX2 nor AVX-512: tract keeps it (checked below)
        }
        // 14×14 = 196 positions: a tail past the last whole vector on both sets.
        let case = Case { kernel: 1, pad: (0, 0), ..Case::same(24, 20, 14) };
        let mut model = case.model();
        let want = case.run(model.clone());
        let done = rewrite_pointwise(&mut model, BOTH).unwrap();
        assert_eq!((done.pointwise, done.count()), (1, 1));
        assert!(done.scratch_bytes > 0);
        let model = model.into_decluttered().unwrap();
        assert!(model.nodes().iter().any(|n| n.op_is::<PointwiseConv>()));
        assert!(!model.nodes().iter().any(|n| n.op_is::<Conv>()));
        let err = relative_error(&want, &case.run(model));
        assert!(err <= 1e-5, "relative error {err:e}");
    }

    #[test]
    fn a_1x1_fed_by_a_skip_concatenation_stays_one_operator() {
        if !DirectFilter::available() {
            return;
        }
        // A UNet's up block: [h, skip] concatenated on channels, then the 1×1 skip projection.
        // Decluttered, tract splits it into a product per concatenated input.
        let (c1, c2, k, size) = (16, 8, 12, 9);
        let mut model = TypedModel::default();
        let a = model.add_source("a", f32::fact([1, c1, size, size])).unwrap();
        let b = model.add_source("b", f32::fact([1, c2, size, size])).unwrap();
        let cat = model.wire_node("cat", tract_onnx::tract_core::ops::array::TypedConcat::new(1), &[a, b]).unwrap();
        let case = Case { kernel: 1, pad: (0, 0), ..Case::same(c1 + c2, k, size) };
        let conv = case.model();
        let conv_node = conv.nodes().iter().find(|n| n.op_is::<Conv>()).unwrap();
        let w = model.add_const("w", conv.node_input_facts(conv_node.id).unwrap()[1].konst.clone().unwrap()).unwrap();
        let bias = model.add_const("b", tensor1(&NoiseStream::new(3, 1).normal(k))).unwrap();
        let y = model.wire_node("conv", conv_node.op.clone(), &[cat[0], w, bias]).unwrap();
        model.select_output_outlets(&y).unwrap();
        let inputs = || {
            let x =
                |seed, c| Tensor::from_shape(&[1, c, size, size], &NoiseStream::new(seed, 0).normal(c * size * size));
            tvec![x(5, c1).unwrap().into(), x(6, c2).unwrap().into()]
        };
        let run = |m: TypedModel| -> Vec<f32> {
            let out = m.into_runnable().unwrap().run(inputs()).unwrap();
            out[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect()
        };
        let tracts = model.clone().into_decluttered().unwrap();
        // The premise: tract makes it a product per concatenated input.
        use tract_onnx::tract_core::ops::einsum::EinSum;
        assert_eq!(tracts.nodes().iter().filter(|n| n.op_is::<EinSum>()).count(), 2, "tract's split");
        let want = run(tracts);
        assert_eq!(rewrite_pointwise(&mut model, BOTH).unwrap().pointwise, 1);
        let model = model.into_decluttered().unwrap();
        assert!(!model.nodes().iter().any(|n| n.op_is::<EinSum>()), "no product left");
        let err = relative_error(&want, &run(model));
        assert!(err <= 1e-5, "relative error {err:e}");
    }

    #[test]
    fn leaves_the_1x1_convolutions_the_kernel_does_not_serve_to_tract() {
        let plain = || Case { kernel: 1, pad: (0, 0), ..Case::same(16, 16, 8) };
        for (what, case) in [
            ("stride 2", Case { stride: 2, ..plain() }),
            ("padding 1", Case { pad: (1, 1), ..plain() }),
            ("two groups", Case { group: 2, ..plain() }),
            ("a 3×3 kernel", Case::same(16, 16, 8)),
        ] {
            assert_eq!(rewrite_pointwise(&mut case.model(), BOTH).unwrap().count(), 0, "{what}");
        }
        let expected = usize::from(DirectFilter::available());
        assert_eq!(rewrite_pointwise(&mut plain().model(), BOTH).unwrap().pointwise, expected, "plain");
        // Thin ones are taken (a projection to 3 image channels).
        let thin = Case { k: 3, ..plain() };
        assert_eq!(rewrite_pointwise(&mut thin.model(), BOTH).unwrap().pointwise, expected, "3 out");
        let off = Kernels { pointwise: false, ..BOTH };
        assert_eq!(rewrite_pointwise(&mut plain().model(), off).unwrap().count(), 0, "pointwise off");
    }

    #[test]
    fn a_1x1_with_a_computed_bias_takes_it_as_an_input() {
        if !DirectFilter::available() {
            return;
        }
        // ONNX's bias reaches the typed model behind a Cast, whose value tract computes only
        // for fewer than 16 values: before declutter a wider bias is an input, not a constant.
        let (c, k, size) = (16, 20, 6);
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([1, c, size, size])).unwrap();
        let b = model.add_source("b", f32::fact([k])).unwrap();
        let case = Case { kernel: 1, pad: (0, 0), ..Case::same(c, k, size) };
        let conv = case.model();
        let conv_node = conv.nodes().iter().find(|n| n.op_is::<Conv>()).unwrap();
        let w = model.add_const("w", conv.node_input_facts(conv_node.id).unwrap()[1].konst.clone().unwrap()).unwrap();
        let y = model.wire_node("conv", conv_node.op.clone(), &[x, w, b]).unwrap();
        model.select_output_outlets(&y).unwrap();
        let inputs = || {
            let x = Tensor::from_shape(&[1, c, size, size], &NoiseStream::new(7, 0).normal(c * size * size)).unwrap();
            tvec![x.into(), tensor1(&NoiseStream::new(7, 1).normal(k)).into()]
        };
        let run = |m: TypedModel| -> Vec<f32> {
            let out = m.into_runnable().unwrap().run(inputs()).unwrap();
            out[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect()
        };
        let want = run(model.clone());
        assert_eq!(rewrite_pointwise(&mut model, BOTH).unwrap().pointwise, 1);
        let op = model.nodes().iter().find_map(|n| n.op_as::<PointwiseConv>()).unwrap();
        assert!(op.bias.is_none(), "the bias is the operator's second input");
        let err = relative_error(&want, &run(model.into_decluttered().unwrap()));
        assert!(err <= 1e-5, "relative error {err:e}");
    }
}
