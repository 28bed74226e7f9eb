//! fp16 freezing: weight initializers of Conv/ConvTranspose/Gemm/MatMul are stored as FLOAT16
//! followed by a Cast to FLOAT, so the bundled ONNX is still a standard model (a runtime folds the
//! casts into f32 constants at load; brenier's tract backends widen them in bulk before tract
//! parses the graph, `brenier::onnx::widen_frozen_weights`) at half the size. Small tensors and anything feeding other
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
