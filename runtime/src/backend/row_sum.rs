//! An f32 sum over the last axis with independent vector lanes, taking the place of tract's
//! `Reduce<Sum>` there.
//!
//! Why: tract-linalg 0.23.9 has no x86_64 kernel for an f32 sum; it runs its generic one,
//! `x.iter().sum()`, one add waiting on the last. An ONNX `InstanceNormalization` (how torch
//! exports GroupNorm) becomes a last-axis `Reduce<Sum>` for the mean, and that serial sum was
//! 5.8 % of the demo UNet's step in `perf` (the sum of squares beside it, tract's SIMD `RmsNorm`,
//! 0.5 %). Sixteen partial sums, added at the end, let the compiler keep several vector adds in
//! flight in every x86_64 build, the baseline one included. Other targets keep tract's sum:
//! tract-linalg has SIMD sums for aarch64, wasm and riscv64, and this one is measured on x86_64
//! only (the CPU backend rewrites on x86_64 alone).
//!
//! The result rounds differently from tract's serial sum (another order of the same additions);
//! the tests hold it to an f64 sum.

use tract_linalg::multithread::par_chunks_mut;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::nn::{Reduce, Reducer};

/// Partial sums kept apart: enough independent adds to cover an add's latency with 4- to
/// 16-lane vectors.
const LANES: usize = 16;

/// The sum of `x`, in `LANES` partial sums.
pub fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    // Pairwise, halving: the same tree on every build.
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            acc[i] += acc[i + width];
        }
    }
    acc[0] + chunks.remainder().iter().sum::<f32>()
}

/// `Reduce<Sum>` over the last axis of an f32 tensor: the output keeps the axis, with length 1.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RowSum;

impl Op for RowSum {
    fn name(&self) -> StaticName {
        "RowSum".into()
    }

    /// Not bit-equal to tract's `Reduce<Sum>`: the additions run in another order.
    fn validation(&self) -> Validation {
        Validation::Rounding
    }

    op_as_typed_op!();
}

impl EvalOp for RowSum {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = &inputs[0];
        let (&row, lead) = x.shape().split_last().context("RowSum of a scalar")?;
        let out_shape: TVec<usize> = lead.iter().copied().chain([1]).collect();
        // tract lays every tensor out row-major (its views are built from the shape alone).
        let plain = x.try_as_plain_ram()?;
        let all = plain.as_slice::<f32>()?;
        // Rows of no elements keep their zero.
        let mut y = Tensor::zero::<f32>(&out_shape)?;
        if row > 0 {
            let mut y_plain = y.try_as_plain_ram_mut()?;
            // Rows split across tract's executor when a one-image run splits (intra_op.rs); each
            // row's sum stays on one thread, so the split does not change the result.
            par_chunks_mut(y_plain.as_slice_mut::<f32>()?, 1, all.len(), |first, o| {
                for (s, r) in o.iter_mut().zip(all[first * row..].chunks_exact(row)) {
                    *s = sum(r);
                }
                Ok(())
            })?;
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

impl TypedOp for RowSum {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let input = inputs[0];
        let dims = input.shape.dims();
        let lead = match dims.split_last() {
            Some((_, lead)) if input.datum_type == f32::datum_type() => lead,
            _ => bail!("RowSum takes an f32 tensor of rank 1 or more, got {input:?}"),
        };
        Ok(tvec!(f32::fact(lead.iter().cloned().chain([1.into()]).collect::<TVec<TDim>>())))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let count: TDim = inputs[0].shape.iter().product();
        Ok(tvec!((Cost::FMA(f32::datum_type()), count)))
    }
}

/// Replaces every f32 `Reduce<Sum>` over the last axis alone by [`RowSum`]; returns how many.
pub fn rewrite(model: &mut TypedModel) -> TractResult<usize> {
    let mut count = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(reduce) = node.op_as::<Reduce>() else { continue };
        let fact = model.outlet_fact(node.inputs[0])?;
        let last_axis_only = fact.rank() > 0 && reduce.axes[..] == [fact.rank() - 1];
        if reduce.reducer != Reducer::Sum || fact.datum_type != f32::datum_type() || !last_axis_only {
            continue;
        }
        let inputs = node.inputs.clone();
        TypedModelPatch::replace_single_op(model, node, &inputs, RowSum)?.apply(model)?;
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sum in f64, the reference.
    fn exact(x: &[f32]) -> f64 {
        x.iter().map(|&v| v as f64).sum()
    }

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n).map(|i| (((i * 7919 + seed * 104729) % 2003) as f32 - 1001.0) / 97.0 + 3.0).collect()
    }

    #[test]
    fn sums_match_an_f64_sum_at_every_length_around_the_lane_count() {
        for n in (0..70).chain([196, 784, 3136, 100_003]) {
            let x = values(n, n);
            let got = sum(&x) as f64;
            let scale: f64 = x.iter().map(|&v| v.abs() as f64).sum::<f64>().max(1.0);
            // Worst case: each value passes through at most n/LANES + log2(LANES) + LANES
            // roundings, each within an epsilon of the largest partial sum (≤ scale).
            let tol = scale * f32::EPSILON as f64 * (n / LANES + 4 + LANES) as f64;
            assert!((got - exact(&x)).abs() <= tol, "n = {n}: {got} against {}", exact(&x));
        }
    }

    #[test]
    fn every_element_counts_once() {
        // Powers of two are exact in f32: any element dropped or counted twice shows.
        for n in [1, 15, 16, 17, 31, 32, 33, 200] {
            for hole in 0..n {
                let x: Vec<f32> = (0..n).map(|i| if i == hole { 1024.0 } else { 1.0 }).collect();
                assert_eq!(sum(&x), 1023.0 + n as f32, "n = {n}, big value at {hole}");
            }
        }
    }

    /// One RowSum on a source of `shape`, run on `x`.
    fn row_sums(shape: &[usize], x: Tensor) -> TractResult<Vec<f32>> {
        let mut model = TypedModel::default();
        let src = model.add_source("x", f32::fact(shape))?;
        let y = model.wire_node("sum", RowSum, &[src])?;
        model.select_output_outlets(&y)?;
        let out = model.into_runnable()?.run(tvec![x.into()])?;
        let mut want_shape = shape.to_vec();
        *want_shape.last_mut().unwrap() = 1;
        assert_eq!(out[0].shape(), &want_shape[..]);
        Ok(out[0].to_plain_array_view::<f32>()?.iter().copied().collect())
    }

    #[test]
    fn rows_split_over_threads_give_the_serial_bits() -> TractResult<()> {
        use tract_linalg::multithread::{multithread_tract_scope, Executor};
        // Above tract's 32768-element threshold, so the rows do split.
        let (rows, n) = (37, 1500);
        let xs = values(rows * n, 9);
        let x = || Tensor::from_shape(&[rows, n], &xs);
        let serial = multithread_tract_scope(Executor::SingleThread, || row_sums(&[rows, n], x()?))?;
        let split = multithread_tract_scope(Executor::multithread(3), || row_sums(&[rows, n], x()?))?;
        let want: Vec<f32> = xs.chunks_exact(n).map(sum).collect();
        assert_eq!(serial, want);
        assert_eq!(split, want);
        Ok(())
    }

    #[test]
    fn rows_of_no_elements_sum_to_zero() -> TractResult<()> {
        let out = RowSum.eval(&EvalContext::out_of_plan(), tvec![Tensor::zero::<f32>(&[2, 0])?.into_tvalue()])?;
        assert_eq!(out[0].shape(), [2, 1]);
        assert_eq!(out[0].to_plain_array_view::<f32>()?.iter().copied().collect::<Vec<_>>(), [0., 0.]);
        Ok(())
    }

    #[test]
    fn sums_of_other_types_stay_tracts() -> TractResult<()> {
        for dt in [half::f16::datum_type(), f64::datum_type(), i32::datum_type()] {
            let mut model = TypedModel::default();
            let x = model.add_source("x", dt.fact([2, 40]))?;
            let y = model.wire_node("sum", Reduce::new(tvec![1], Reducer::Sum), &[x])?;
            model.select_output_outlets(&y)?;
            assert_eq!(rewrite(&mut model)?, 0, "{dt:?}");
            assert!(model.nodes.iter().any(|n| n.op_is::<Reduce>()), "{dt:?}");
        }
        Ok(())
    }

    /// x [2, 3, n] → Reduce<Sum> over axis 2, and over axis 1 (which stays tract's).
    fn model(n: usize) -> TractResult<TypedModel> {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([2, 3, n]))?;
        let last = model.wire_node("sum_last", Reduce::new(tvec![2], Reducer::Sum), &[x])?[0];
        let mid = model.wire_node("sum_mid", Reduce::new(tvec![1], Reducer::Sum), &[x])?[0];
        model.select_output_outlets(&[last, mid])?;
        Ok(model)
    }

    #[test]
    fn the_rewrite_takes_only_last_axis_sums_and_keeps_the_output_shape() -> TractResult<()> {
        let n = 41;
        let mut m = model(n)?;
        let xs = values(6 * n, 3);
        let x = Tensor::from_shape(&[2, 3, n], &xs)?;
        let before = m.clone().into_runnable()?.run(tvec![x.clone().into()])?;
        assert_eq!(rewrite(&mut m)?, 1);
        assert_eq!(m.nodes.iter().filter(|n| n.op_is::<RowSum>()).count(), 1);
        assert_eq!(m.nodes.iter().filter(|n| n.op_is::<Reduce>()).count(), 1);
        let after = m.into_runnable()?.run(tvec![x.into()])?;
        assert_eq!(after[0].shape(), [2, 3, 1]);
        let got: Vec<f32> = after[0].to_plain_array_view::<f32>()?.iter().copied().collect();
        for (r, g) in got.iter().enumerate() {
            // 41 multiples of 1/97, at most 14 in magnitude: f32 rounding is a few ulps of the
            // row's absolute sum (≈ 200), far below 1e-5 of it; a dropped or doubled nonzero
            // value is off by at least 1/97.
            let row = &xs[r * n..(r + 1) * n];
            let (want, scale) = (exact(row), row.iter().map(|v| v.abs() as f64).sum::<f64>());
            assert!((*g as f64 - want).abs() <= 1e-5 * scale, "row {r}: {g} against {want}");
        }
        // The other reduction is untouched, bit for bit.
        assert_eq!(after[1], before[1]);
        Ok(())
    }
}
