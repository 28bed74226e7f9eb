//! fp16 freezing: weight initializers of Conv/ConvTranspose/Gemm/MatMul are stored as FLOAT16
//! followed by a Cast to FLOAT, so the bundled ONNX is still a standard model at half the size
//! (a runtime folds the casts into f32 constants at load; brenier's CPU backend widens them in
//! bulk before tract parses the graph, `brenier::onnx::widen_frozen_weights`, which the tests
//! below hold to undoing exactly what this writes). Small tensors and anything feeding other
//! ops stay f32: timestep frequencies, norm scales and Resize scales are precision-critical and
//! tiny (an fp16 frequency at t = 999 would shift the embedding phase by up to half a radian).

use std::collections::{HashMap, HashSet};

use brenier::bundle::manifest::Fp16Report;
use half::f16;
use tract_onnx::pb;

use crate::error::{ExportError, Result};
use crate::onnx_build::{attr_int, f32_values, node, tensor_f16, FLOAT, FLOAT16};

/// Tensors smaller than this stay f32: they cost nothing and are often scales or frequencies.
const MIN_ELEMS: usize = 1024;
const WEIGHT_OPS: &[&str] = &["Conv", "ConvTranspose", "Gemm", "MatMul"];

/// Fails on NaN/Inf in any float initializer or on external data, naming the tensor.
pub fn check_weights(model: &pb::ModelProto, net: &str) -> Result<()> {
    let graph =
        model.graph.as_ref().ok_or_else(|| ExportError::invalid(format!("{net}: the ONNX model has no graph")))?;
    for t in &graph.initializer {
        if t.data_location == Some(pb::tensor_proto::DataLocation::External as i32) {
            return Err(ExportError::invalid(format!(
                "{net}: initializer `{}` lives in an external data file; re-export with the weights inside the .onnx (onnx.save(model, path, save_as_external_data=False))",
                t.name
            )));
        }
        if let Some(v) = f32_values(t) {
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(ExportError::invalid(format!(
                    "{net}: weight `{}` holds a non-finite value at index {i}; the trained checkpoint is broken",
                    t.name
                )));
            }
        }
    }
    Ok(())
}

/// Weight tensors already stored fp16 behind a Cast to FLOAT (how this freezer writes them, so
/// a network extracted from a bundle has them): their count and values.
pub fn prefrozen(model: &pb::ModelProto) -> (usize, usize) {
    let Some(graph) = model.graph.as_ref() else { return (0, 0) };
    let widened: HashSet<&str> = graph
        .node
        .iter()
        .filter(|n| n.op_type == "Cast" && n.attribute.iter().any(|a| a.name == "to" && a.i == FLOAT as i64))
        .filter_map(|n| n.input.first().map(String::as_str))
        .collect();
    graph
        .initializer
        .iter()
        .filter(|t| t.data_type == FLOAT16 && widened.contains(t.name.as_str()))
        .fold((0, 0), |(n, p), t| (n + 1, p + t.dims.iter().map(|&d| d.max(0) as usize).product::<usize>()))
}

/// Converts eligible weights to fp16 in place and reports the rounding error.
pub fn freeze_fp16(model: &mut pb::ModelProto) -> Fp16Report {
    let mut report = Fp16Report::default();
    let Some(graph) = model.graph.as_mut() else { return report };
    let mut consumers: HashMap<&str, Vec<&str>> = HashMap::new();
    for n in &graph.node {
        for (slot, i) in n.input.iter().enumerate() {
            // Only the weight/bias slots of weight ops count; input 0 is the activation.
            let op = if WEIGHT_OPS.contains(&n.op_type.as_str()) && slot > 0 { n.op_type.as_str() } else { "other" };
            consumers.entry(i.as_str()).or_default().push(op);
        }
    }
    let eligible: HashSet<String> = graph
        .initializer
        .iter()
        .filter(|t| t.data_type == FLOAT && t.dims.iter().product::<i64>() as usize >= MIN_ELEMS)
        .filter(|t| consumers.get(t.name.as_str()).is_some_and(|c| c.iter().all(|op| *op != "other")))
        .map(|t| t.name.clone())
        .collect();
    let mut casts = Vec::new();
    for t in graph.initializer.iter_mut().filter(|t| eligible.contains(&t.name)) {
        let Some(values) = f32_values(t) else { continue };
        let half: Vec<f16> = values.iter().map(|&v| f16::from_f32(v)).collect();
        for (&v, h) in values.iter().zip(&half) {
            let err = (h.to_f32() - v).abs();
            report.max_abs_err = report.max_abs_err.max(err);
            // Relative error is meaningful in fp16's normal range; below it (|v| < 6.1e-5) values
            // go subnormal and only the absolute error (≤ 3e-8) is reported.
            if v.abs() >= f16::MIN_POSITIVE.to_f32() {
                report.max_rel_err = report.max_rel_err.max(err / v.abs());
            }
        }
        report.tensors += 1;
        report.params += values.len();
        let stored = format!("{}__fp16", t.name);
        casts.push(node(
            "Cast",
            &format!("{}__cast", t.name),
            &[&stored],
            &[&t.name],
            vec![attr_int("to", FLOAT as i64)],
        ));
        *t = tensor_f16(&stored, &t.dims, &half);
    }
    // Older exporters list initializers among the graph inputs; a converted one must not
    // become a free input.
    graph.input.retain(|i| !eligible.contains(&i.name));
    casts.append(&mut graph.node);
    graph.node = casts;
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx_build::{model, tensor_f32, value_info};
    use brenier::onnx::widen_frozen_weights;
    use tract_onnx::prelude::*;

    /// `y = x · W` with a [64, 32] weight, as a trained network's file has it (f32), and frozen
    /// by `freeze_fp16` as a bundle stores it.
    fn plain_and_frozen() -> (pb::ModelProto, pb::ModelProto) {
        let w: Vec<f32> = (0..64 * 32).map(|i| ((i * 37 % 101) as f32 - 50.0) / 77.0).collect();
        let graph = pb::GraphProto {
            node: vec![node("MatMul", "mm", &["x", "w"], &["y"], vec![])],
            initializer: vec![tensor_f32("w", &[64, 32], &w)],
            input: vec![value_info("x", FLOAT, &[Some(2), Some(64)])],
            output: vec![value_info("y", FLOAT, &[Some(2), Some(32)])],
            ..Default::default()
        };
        let plain = model(graph, 17, "test");
        let mut frozen = plain.clone();
        assert_eq!(freeze_fp16(&mut frozen).tensors, 1);
        (plain, frozen)
    }

    fn run(model: &pb::ModelProto) -> Vec<u32> {
        let plan =
            tract_onnx::onnx().model_for_proto_model(model).unwrap().into_optimized().unwrap().into_runnable().unwrap();
        let x: Vec<f32> = (0..128).map(|i| (i as f32 * 0.37).sin()).collect();
        let y = plan.run(tvec![Tensor::from_shape(&[2, 64], &x).unwrap().into()]).unwrap();
        y[0].to_plain_array_view::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
    }

    /// What the freezer writes, the runtime's widening undoes exactly: the f16 values as f32,
    /// the cast gone, and the same output bits through tract.
    #[test]
    fn the_runtime_widens_frozen_weights_exactly() {
        let (_, frozen) = plain_and_frozen();
        let stored = f16_of(&frozen);
        let mut widened = frozen.clone();
        assert_eq!(widen_frozen_weights(&mut widened), 1);
        let graph = widened.graph.as_ref().unwrap();
        assert!(graph.node.iter().all(|n| n.op_type != "Cast"), "the cast is dropped");
        let [t] = &graph.initializer[..] else { panic!("one initializer: {:?}", graph.initializer) };
        assert_eq!((t.name.as_str(), t.data_type, &t.dims[..]), ("w", FLOAT, &[64i64, 32][..]));
        assert_eq!(f32_values(t).unwrap(), stored.iter().map(|v| v.to_f32()).collect::<Vec<_>>());
        assert_eq!(run(&widened), run(&frozen));
    }

    fn graph(m: &mut pb::ModelProto) -> &mut pb::GraphProto {
        m.graph.as_mut().unwrap()
    }

    fn f16_of(model: &pb::ModelProto) -> Vec<f16> {
        let t = &model.graph.as_ref().unwrap().initializer[0];
        assert_eq!(t.data_type, FLOAT16);
        t.raw_data.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]])).collect()
    }

    #[test]
    fn weights_read_elsewhere_or_exposed_or_cast_elsewhere_stay() {
        // Each case leaves the model exactly as it was: nothing widened, nothing dropped.
        let unchanged = |mut model: pb::ModelProto| {
            let before = model.clone();
            assert_eq!(widen_frozen_weights(&mut model), 0);
            assert_eq!(model, before);
        };
        let frozen = || plain_and_frozen().1;
        // The f16 tensor read by a second node.
        let mut m = frozen();
        graph(&mut m).node.push(node("Cast", "second", &["w__fp16"], &["w2"], vec![attr_int("to", FLOAT as i64)]));
        unchanged(m);
        // A cast to something other than FLOAT (DOUBLE).
        let mut m = frozen();
        graph(&mut m).node[0].attribute[0].i = 11;
        unchanged(m);
        // The f16 tensor also declared a graph input, which a caller may feed.
        let mut m = frozen();
        graph(&mut m).input.push(value_info("w__fp16", FLOAT16, &[Some(64), Some(32)]));
        unchanged(m);
        // Dims that do not match the data.
        let mut m = frozen();
        graph(&mut m).initializer[0].dims = vec![64, 64];
        unchanged(m);
        // The cast's output already an initializer's name.
        let mut m = frozen();
        let mut clash = graph(&mut m).initializer[0].clone();
        clash.name = "w".into();
        graph(&mut m).initializer.push(clash);
        unchanged(m);
    }
}
