//! A real ONNX ε-network that turns non-finite at chosen train steps, for tests of how the
//! pipelines stop: ε(x, t) = 0.1 · x · √a[t] / b[t], with a[t] = −1 giving NaN and b[t] = 0 giving
//! Inf. The weights themselves are finite, so the exporter's weight check lets it through; its
//! probe (run at the bundle's T) only passes if the net is finite there.

use brenier::bundle::ImageSpec;
use brenier_export::onnx_build::pb_types as pb;
use brenier_export::onnx_build::*;

/// What the network outputs at one train step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Finite,
    Nan,
    Inf,
}

/// The network's ONNX bytes for a 1000-step schedule; `at(t)` says what it outputs at step t.
pub fn eps_net(image: ImageSpec, at: impl Fn(usize) -> Output) -> Vec<u8> {
    let n = 1000usize;
    let a: Vec<f32> = (0..n).map(|t| if at(t) == Output::Nan { -1.0 } else { 1.0 }).collect();
    let b: Vec<f32> = (0..n).map(|t| if at(t) == Output::Inf { 0.0 } else { 10.0 }).collect();
    let (c, h, w) = (image.channels as i64, image.height as i64, image.width as i64);
    let graph = pb::GraphProto {
        name: "faulty_eps".into(),
        node: vec![
            node("Gather", "pick_a", &["table_a", "t"], &["ga"], vec![attr_int("axis", 0)]),
            node("Gather", "pick_b", &["table_b", "t"], &["gb"], vec![attr_int("axis", 0)]),
            node("Sqrt", "root", &["ga"], &["ra"], vec![]),
            node("Div", "ratio", &["ra", "gb"], &["v"], vec![]),
            node("Reshape", "col", &["v", "shape"], &["vc"], vec![]),
            node("Mul", "scale", &["x", "vc"], &["eps"], vec![]),
        ],
        initializer: vec![
            tensor_f32("table_a", &[n as i64], &a),
            tensor_f32("table_b", &[n as i64], &b),
            tensor_i64("shape", &[4], &[-1, 1, 1, 1]),
        ],
        input: vec![value_info("x", FLOAT, &[None, Some(c), Some(h), Some(w)]), value_info("t", INT64, &[None])],
        output: vec![value_info("eps", FLOAT, &[None, Some(c), Some(h), Some(w)])],
        ..Default::default()
    };
    to_bytes(&model(graph, 17, "brenier-tests"))
}
