//! Gives every constant of an optimised tract model the natural (row-major) strides of its shape.
//!
//! Why: tract 0.23.9 folds an `AxisOp::Add` on a constant with `Tensor::insert_axis`, which
//! leaves the new unit axis with a copied stride (a `[C,1,1]` per-channel scale broadcast to
//! `[1,C,1,1]` gets strides `[1,1,1,1]`, not `[C,1,1,1]`). Its elementwise kernels (`OptBinChain`,
//! `OptBinUnicast`, `OptBinByScalar`) take their SIMD paths only for operands with natural
//! strides and fall back to ndarray's per-element broadcasting otherwise. Every GroupNorm
//! exported as torch writes it (InstanceNormalization, then a `[C,1,1]` scale and shift) hit that
//! fallback: 13 % of the demo UNet's step (`benches/results/tract-levers.json`, `OptBinChain`).
//!
//! Only strides of unit axes are rewritten: an index along a unit axis is always 0, so those
//! strides never enter an element's offset, and the bytes already are the natural layout. A
//! constant whose other strides differ is left as it is: tract builds none, and such strides
//! would say something this pass does not understand (the count, logged, would show one).

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::konst::Const;

/// What [`naturalise`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Naturalised {
    /// Constants given natural strides.
    pub fixed: usize,
    /// Constants with non-natural strides on an axis longer than one, left alone.
    pub left: usize,
}

/// Rewrites every plain constant of `model` whose strides differ from its shape's natural ones
/// only on unit axes. Values, shapes and datum types are unchanged; only the stride metadata is.
pub fn naturalise(model: &mut TypedModel) -> TractResult<Naturalised> {
    let mut done = Naturalised::default();
    for id in 0..model.nodes.len() {
        let Some(konst) = model.node(id).op_as::<Const>() else { continue };
        if konst.exotic_fact().is_some() || !konst.val().is_plain() {
            continue;
        }
        let t = konst.val();
        let natural = Tensor::natural_strides(t.shape());
        if t.strides() == &*natural {
            continue;
        }
        let only_unit_axes =
            t.shape().iter().zip(t.strides().iter().zip(natural.iter())).all(|(&d, (s, n))| d == 1 || s == n);
        if !only_unit_axes || t.len() != t.shape().iter().product::<usize>() {
            done.left += 1;
            continue;
        }
        // tract's `Tensor::clone` allocates with natural strides and copies the bytes as they
        // lie; tract reads every tensor's bytes row-major anyway (its array views are built
        // from the shape alone), so no value moves. `broadcast_into_rank` at the tensor's own
        // rank recomputes strides and length whatever the clone did.
        let rank = t.rank();
        let fresh = Arc::new(t.as_ref().clone().broadcast_into_rank(rank)?);
        let node = model.node_mut(id);
        node.op = Box::new(Const::new(fresh.clone())?);
        node.outputs[0].fact.konst = Some(fresh);
        done.fixed += 1;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::tract_core::ops::change_axes::AxisOp;
    use tract_onnx::tract_core::ops::math;

    /// x [1,C,H,W] · gamma + beta, with gamma and beta `[C,1,1]` constants raised to rank 4 by an
    /// `AxisOp::Add`, as tract sees a torch GroupNorm's affine tail.
    fn affine_model(c: usize, hw: usize) -> TractResult<(TypedModel, Tensor)> {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([1, c, hw, hw]))?;
        let gamma: Vec<f32> = (0..c).map(|i| 0.5 + i as f32 * 0.25).collect();
        let beta: Vec<f32> = (0..c).map(|i| i as f32 - 1.5).collect();
        let g = model.add_const("gamma", Tensor::from_shape(&[c, 1, 1], &gamma)?)?;
        let b = model.add_const("beta", Tensor::from_shape(&[c, 1, 1], &beta)?)?;
        let g = model.wire_node("gamma.rank4", AxisOp::Add(0), &[g])?[0];
        let b = model.wire_node("beta.rank4", AxisOp::Add(0), &[b])?[0];
        let m = model.wire_node("scale", math::mul(), &[x, g])?[0];
        let y = model.wire_node("shift", math::add(), &[m, b])?[0];
        model.select_output_outlets(&[y])?;
        let xs: Vec<f32> = (0..c * hw * hw).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
        Ok((model, Tensor::from_shape(&[1, c, hw, hw], &xs)?))
    }

    fn consts_natural(model: &TypedModel) -> bool {
        model.nodes.iter().filter_map(|n| n.op_as::<Const>()).all(|k| {
            let t = k.val();
            t.strides() == &*Tensor::natural_strides(t.shape())
        })
    }

    #[test]
    fn the_folded_affine_constants_come_out_of_tract_with_unnatural_strides_and_leave_natural() -> TractResult<()> {
        let (model, x) = affine_model(8, 6)?;
        let mut optimised = model.into_optimized()?;
        // The premise: tract's folding leaves the strides this pass exists for. If a tract
        // update stops doing so, this fails and the pass can go.
        assert!(!consts_natural(&optimised), "tract now folds constants with natural strides");
        let expected = optimised.clone().into_runnable()?.run(tvec![x.clone().into()])?;
        let done = naturalise(&mut optimised)?;
        assert_eq!(done, Naturalised { fixed: 2, left: 0 });
        assert!(consts_natural(&optimised));
        let got = optimised.into_runnable()?.run(tvec![x.clone().into()])?;
        // Reference: the affine map computed here, per channel, in f32 as tract does.
        let values =
            |t: &Tensor| -> TractResult<Vec<f32>> { Ok(t.to_plain_array_view::<f32>()?.iter().copied().collect()) };
        let xv = values(&x)?;
        let reference: Vec<f32> = xv
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let ch = i / 36;
                v * (0.5 + ch as f32 * 0.25) + (ch as f32 - 1.5)
            })
            .collect();
        assert_eq!(values(&got[0])?, reference);
        assert_eq!(values(&got[0])?, values(&expected[0])?);
        Ok(())
    }

    /// The premise of this pass and of `row_sum`, on a real torch export (the repository's UNet
    /// fixture: GroupNorm as InstanceNormalization, `[C,1,1]` scale and shift): tract's optimised
    /// model has constants with unnatural strides and last-axis f32 sums, and taking both
    /// leaves ε within 1e-5 of tract's own. If a tract update changes either, this fails.
    #[test]
    fn a_torch_unet_gives_both_passes_work_and_keeps_its_output() -> TractResult<()> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/unet/unet_t_int64.onnx");
        let mut model = tract_onnx::onnx().model_for_path(path)?;
        model.set_input_fact(0, f32::fact([1, 3, 16, 16]).into())?;
        model.set_input_fact(1, i64::fact([1]).into())?;
        let optimised = model.into_optimized()?;
        let x: Vec<f32> = (0..3 * 256).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
        let inputs = || -> TractResult<TVec<TValue>> {
            Ok(tvec![Tensor::from_shape(&[1, 3, 16, 16], &x)?.into(), tensor1(&[500i64]).into()])
        };
        let want = optimised.clone().into_runnable()?.run(inputs()?)?;
        let mut rewritten = optimised;
        assert!(naturalise(&mut rewritten)?.fixed > 0, "no constant with unnatural strides");
        assert!(crate::backend::row_sum::rewrite(&mut rewritten)? > 0, "no last-axis sum");
        let got = rewritten.into_runnable()?.run(inputs()?)?;
        let (got, want) = (got[0].to_plain_array_view::<f32>()?, want[0].to_plain_array_view::<f32>()?);
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = got.iter().zip(want.iter()).map(|(g, w)| (g - w).abs()).fold(0f32, f32::max);
        // The strides change no value; the row sums round differently, a few ulps of a mean.
        assert!(worst <= 1e-5 * scale, "max error {worst:e} against scale {scale}");
        Ok(())
    }

    #[test]
    fn a_constant_with_a_long_axis_out_of_order_is_left_alone() -> TractResult<()> {
        let mut model = TypedModel::default();
        let t = Tensor::from_shape(&[2, 3], &[1f32, 2., 3., 4., 5., 6.])?;
        // A transposed view's strides: natural for [3,2] would be [2,1].
        let mut odd = t.clone().into_shape(&[3, 2])?;
        unsafe { odd.set_geometry_unchecked(&[3, 2], &[1, 3]) };
        let odd = Arc::new(odd);
        let id = model.wire_node("odd", Const::new(odd.clone())?, &[])?[0].node;
        assert_eq!(model.node(id).op_as::<Const>().map(|k| k.val().strides()), Some(odd.strides()));
        let done = naturalise(&mut model)?;
        assert_eq!(done, Naturalised { fixed: 0, left: 1 });
        assert_eq!(model.node(id).op_as::<Const>().map(|k| k.val().strides()), Some(odd.strides()));
        Ok(())
    }
}
