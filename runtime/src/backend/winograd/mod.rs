//! brenier's own 3×3 convolution for the CPU backend: Winograd F(2×2, 3×3) over
//! `matrixmultiply`'s products, swapped in for tract's `Conv` during graph preparation.
//!
//! Why: on the UNets measured (benches/results/tract-levers.json), tract's matrix products for
//! convolutions took 70 % (28×28 demo) and 88 % (64×64 ADM) of a network step, and 1.5–1.7×
//! onnxruntime's Conv time. Winograd needs 4 multiply-adds per output value and channel pair
//! where the direct method (tract's im2col + product) needs 9.
//!
//! Which convolutions: f32, NCHW, OIHW constant weights, 3×3, stride 1, dilation 1, one group,
//! at least [`MIN_CHANNELS`] channels in and out (the first and last convolutions of a UNet,
//! with 1–3 image channels, stay tract's) and [`MIN_TILES`] output tiles per image. The bias is
//! a constant or, where tract has folded a per-channel add into it (an ADM block's time
//! embedding), a second input. `BRENIER_WINOGRAD=off` keeps every convolution tract's, for
//! measuring.

mod kernel;
mod op;

use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};
use tract_onnx::tract_core::ops::nn::DataFormat;

pub use kernel::{Filter, Geometry};
pub use op::WinogradConv;

/// Fewest input and output channels a convolution needs to be taken.
pub const MIN_CHANNELS: usize = 8;

/// Fewest 2×2 output tiles per image (output maps of 15×15 and up) a convolution needs to be
/// taken. Below it the per-block packing of the 16 filter matrices and the transforms cost more
/// than the products save: one thread, batch 1, `brenier bench --eval-only`, net a, taking every
/// size against this gate: demo 6.56 → 5.81 ms (its 14×14 and 7×7 maps left to tract), 64×64
/// ADM 123.5 → 117.2 ms (its 8×8 maps left to tract); tract alone: 6.0 and 172 ms.
pub const MIN_TILES: usize = 64;

/// Whether the rewrite runs: on unless `BRENIER_WINOGRAD=off`.
pub fn enabled() -> bool {
    match std::env::var("BRENIER_WINOGRAD").as_deref() {
        Ok("off") => false,
        Ok("on") | Ok("") | Err(_) => true,
        Ok(other) => {
            log::warn!("BRENIER_WINOGRAD={other} is not on or off; leaving it on");
            true
        }
    }
}

/// Replaces every eligible `Conv` of a decluttered f32 model; returns how many it replaced.
pub fn rewrite(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(op) = eligible(model, node)? else { continue };
        // Conv's inputs are (images, weights, bias); the weights are in the filter now.
        let inputs = if op.bias.is_some() { vec![node.inputs[0]] } else { vec![node.inputs[0], node.inputs[2]] };
        let patch = TypedModelPatch::replace_single_op(model, node, &inputs, op)?;
        patch.apply(model)?;
        replaced += 1;
    }
    if replaced > 0 {
        // Drops the replaced nodes' weight and bias constants, now unused.
        model.compact()?;
    }
    Ok(replaced)
}

/// The operator for `node` if it is a convolution this kernel takes.
fn eligible(model: &TypedModel, node: &TypedNode) -> TractResult<Option<WinogradConv>> {
    let Some(conv) = node.op_as::<Conv>() else { return Ok(None) };
    let spec = &conv.pool_spec;
    let plain = conv.q_params.is_none()
        && conv.group == 1
        && conv.kernel_fmt == KernelFormat::OIHW
        && spec.data_format == DataFormat::NCHW
        && spec.kernel_shape[..] == [3, 3]
        && spec.strides().iter().all(|&s| s == 1)
        && spec.dilations().iter().all(|&d| d == 1)
        && spec.input_channels >= MIN_CHANNELS
        && spec.output_channels >= MIN_CHANNELS
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
    if w.datum_type() != f32::datum_type() || w.shape() != [k, c, 3, 3] || bias.datum_type != f32::datum_type() {
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
    // Every padding spec comes down to zeros before and an output size; the kernel reads zeros
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
    if geo.tiles() < MIN_TILES {
        return Ok(None);
    }
    let filter = Arc::new(Filter::new(geo, w.try_as_plain_ram()?.as_slice::<f32>()?));
    Ok(Some(WinogradConv { filter, bias }))
}
