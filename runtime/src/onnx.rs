//! Reading an ε-network's ONNX signature: which input is the image, which is the timestep, their
//! dtypes and whether the batch is fixed; finding operators tract cannot run before tract fails
//! on them with a less helpful message; and widening the exporter's f16 weights before tract
//! parses the graph.

use prost::Message;
use tract_onnx::pb;

use crate::bundle::manifest::{Fp16Report, NetSpec};
use crate::bundle::{ImageSpec, TimeDtype};
use crate::error::{Error, Result};

/// ONNX TensorProto element types we meet.
const ONNX_FLOAT: i32 = 1;
const ONNX_INT32: i32 = 6;
const ONNX_INT64: i32 = 7;
const ONNX_FLOAT16: i32 = 10;
const ONNX_DOUBLE: i32 = 11;

/// Names PyTorch code commonly gives the timestep input.
const TIME_NAMES: &[&str] = &["t", "timestep", "timesteps", "time", "ts", "sigma", "noise_level"];

/// What the runtime needs to know to call an ε-network.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    pub x_input: String,
    pub t_input: String,
    pub t_dtype: TimeDtype,
    pub output: String,
    /// Fixed batch size, or `None` when the batch dimension is symbolic.
    pub batch: Option<usize>,
    /// `[C, H, W]` as declared (0 where symbolic).
    pub image_dims: [usize; 3],
    pub opset: i64,
}

pub fn decode(bytes: &[u8], net: &str) -> Result<pb::ModelProto> {
    pb::ModelProto::decode(bytes)
        .map_err(|e| Error::Onnx { net: net.into(), problem: format!("not a valid ONNX protobuf: {e}") })
}

fn dims(v: &pb::ValueInfoProto) -> Option<Vec<Option<usize>>> {
    use pb::type_proto::Value;
    let Some(Value::TensorType(t)) = v.r#type.as_ref()?.value.as_ref() else { return None };
    let shape = t.shape.as_ref()?;
    Some(
        shape
            .dim
            .iter()
            .map(|d| match d.value {
                Some(pb::tensor_shape_proto::dimension::Value::DimValue(n)) if n > 0 => Some(n as usize),
                _ => None,
            })
            .collect(),
    )
}

fn elem_type(v: &pb::ValueInfoProto) -> i32 {
    use pb::type_proto::Value;
    match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(Value::TensorType(t)) => t.elem_type,
        _ => 0,
    }
}

/// Identifies the image and timestep inputs: the image is the rank-4 float input; the timestep
/// is found by name, else as the remaining input of rank 0 or 1.
pub fn signature(model: &pb::ModelProto, net: &str) -> Result<Signature> {
    let bad = |problem: String| Error::Onnx { net: net.into(), problem };
    let graph = model.graph.as_ref().ok_or_else(|| bad("the model has no graph".into()))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .unwrap_or(0);
    let inits: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&pb::ValueInfoProto> = graph.input.iter().filter(|i| !inits.contains(i.name.as_str())).collect();
    let describe = || inputs.iter().map(|i| format!("{} {:?}", i.name, dims(i))).collect::<Vec<_>>().join(", ");
    if inputs.len() != 2 {
        return Err(bad(format!(
            "an ε-network takes exactly two inputs (image x [N,C,H,W] and timestep t [N]); this one has {}: {}",
            inputs.len(),
            describe()
        )));
    }
    let is_float = |e: i32| matches!(e, ONNX_FLOAT | ONNX_FLOAT16 | ONNX_DOUBLE);
    let x = inputs
        .iter()
        .find(|i| dims(i).is_some_and(|d| d.len() == 4) && is_float(elem_type(i)))
        .ok_or_else(|| bad(format!("no float input of rank 4 (the image x [N,C,H,W]); inputs: {}", describe())))?;
    let t = inputs
        .iter()
        .find(|i| i.name != x.name && TIME_NAMES.contains(&i.name.to_ascii_lowercase().as_str()))
        .or_else(|| inputs.iter().find(|i| i.name != x.name && dims(i).is_some_and(|d| d.len() <= 1)))
        .ok_or_else(|| bad(format!("no timestep input (named t/timestep, or of rank 0/1); inputs: {}", describe())))?;
    let t_dtype = match elem_type(t) {
        ONNX_INT64 | ONNX_INT32 => TimeDtype::Int64,
        e if is_float(e) => TimeDtype::Float,
        e => {
            return Err(bad(format!("timestep input `{}` has ONNX element type {e}; expected int64 or float", t.name)))
        }
    };
    if elem_type(t) == ONNX_INT32 {
        return Err(bad(format!("timestep input `{}` is int32; export it as int64 or float", t.name)));
    }
    if elem_type(x) != ONNX_FLOAT {
        return Err(bad(format!("image input `{}` must be float32 (export the model in f32)", x.name)));
    }
    let xd = dims(x).unwrap_or_default();
    let output = graph.output.first().ok_or_else(|| bad("the model has no output".into()))?.name.clone();
    if graph.output.len() != 1 {
        log::warn!("network {net}: {} outputs, using the first (`{output}`) as ε", graph.output.len());
    }
    Ok(Signature {
        x_input: x.name.clone(),
        t_input: t.name.clone(),
        t_dtype,
        output,
        batch: xd[0],
        image_dims: [xd[1].unwrap_or(0), xd[2].unwrap_or(0), xd[3].unwrap_or(0)],
        opset,
    })
}

impl Signature {
    /// The manifest entry for a network with this signature stored in section `section`
    /// (no fp16 report yet: freezing fills it in).
    pub fn net_spec(&self, section: &str) -> NetSpec {
        NetSpec {
            section: section.into(),
            x_input: self.x_input.clone(),
            t_input: self.t_input.clone(),
            t_dtype: self.t_dtype,
            output: self.output.clone(),
            batch: self.batch,
            fp16: Fp16Report::default(),
        }
    }

    /// Checks declared image dims (where not symbolic) against the bundle's image shape.
    pub fn check_image(&self, image: ImageSpec, net: &str) -> Result<()> {
        let want = [image.channels, image.height, image.width];
        for (i, (&got, &w)) in self.image_dims.iter().zip(&want).enumerate() {
            if got != 0 && got != w {
                return Err(Error::Shape {
                    what: format!("network {net} input `{}` dimension {}", self.x_input, i + 1),
                    expected: want.to_vec(),
                    found: self.image_dims.to_vec(),
                    hint: " (C, H, W); export the network for the bundle's image size".into(),
                });
            }
        }
        Ok(())
    }
}

/// Widens the weights an exporter froze to f16 behind a `Cast` to FLOAT (brenier's own exporter
/// stores them so: export's `freeze.rs`) back into f32 initializers, in bulk, and drops their
/// casts. tract would fold each cast while decluttering, through a per-element conversion: about
/// 35 ms of opening the 64×64 ADM UNet (`perf`, a development profile). Exact, since every f16
/// is an f32, so the network computes the same bits. Only an f16 initializer read by nothing but
/// one such cast, not a graph input or output, is widened; a graph with subgraphs (which may read
/// outer names) is left alone. Returns how many were widened.
pub fn widen_frozen_weights(model: &mut pb::ModelProto) -> usize {
    use std::collections::{HashMap, HashSet};
    let Some(graph) = model.graph.as_mut() else { return 0 };
    if graph.node.iter().flat_map(|n| &n.attribute).any(|a| a.g.is_some() || !a.graphs.is_empty()) {
        return 0;
    }
    let mut readers: HashMap<&str, usize> = HashMap::new();
    for name in graph.node.iter().flat_map(|n| &n.input) {
        *readers.entry(name.as_str()).or_default() += 1;
    }
    let exposed: HashSet<&str> = graph.input.iter().chain(&graph.output).map(|v| v.name.as_str()).collect();
    let mut names: HashMap<&str, usize> = HashMap::new();
    for t in &graph.initializer {
        *names.entry(t.name.as_str()).or_default() += 1;
    }
    let halves: HashMap<&str, usize> = graph
        .initializer
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            t.data_type == ONNX_FLOAT16 && t.data_location != Some(pb::tensor_proto::DataLocation::External as i32)
        })
        // A name given twice (invalid ONNX) is left to tract's own resolution.
        .filter(|(_, t)| names.get(t.name.as_str()) == Some(&1))
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    // (cast node, f16 initializer) pairs.
    let pairs: Vec<(usize, usize)> = graph
        .node
        .iter()
        .enumerate()
        .filter_map(|(n, node)| {
            let widening = node.op_type == "Cast"
                && (node.domain.is_empty() || node.domain == "ai.onnx")
                && node.attribute.iter().any(|a| a.name == "to" && a.i == ONNX_FLOAT as i64)
                && node.input.len() == 1
                && node.output.len() == 1;
            let (input, output) = (node.input.first()?.as_str(), node.output.first()?.as_str());
            let init = *halves.get(input)?;
            let sole = readers.get(input) == Some(&1) && !exposed.contains(input) && !exposed.contains(output);
            (widening && sole && !output.is_empty() && !names.contains_key(output)).then_some((n, init))
        })
        .collect();
    let (mut casts, mut inits, mut widened) = (HashSet::new(), HashSet::new(), Vec::new());
    for (n, i) in pairs {
        let t = &graph.initializer[i];
        let Some(values) = f16_values(t) else { continue };
        let (name, dims, raw_data) = (graph.node[n].output[0].clone(), t.dims.clone(), widen(&values));
        widened.push(pb::TensorProto { name, dims, data_type: ONNX_FLOAT, raw_data, ..Default::default() });
        casts.insert(n);
        inits.insert(i);
    }
    remove_at(&mut graph.node, &casts);
    remove_at(&mut graph.initializer, &inits);
    let count = widened.len();
    graph.initializer.extend(widened);
    count
}

/// Removes the items of `items` at the positions in `drop`, keeping the others' order.
fn remove_at<T>(items: &mut Vec<T>, drop: &std::collections::HashSet<usize>) {
    let mut at = 0;
    items.retain(|_| {
        at += 1;
        !drop.contains(&(at - 1))
    });
}

/// An FLOAT16 initializer's values (raw little-endian bytes, or one per `int32_data` entry as
/// ONNX allows), `None` if their count does not match the dims. Raw bytes are read in place
/// where they are aligned on a little-endian host (the common case: the bulk of a network).
fn f16_values(t: &pb::TensorProto) -> Option<std::borrow::Cow<'_, [half::f16]>> {
    use std::borrow::Cow;
    let n = t.dims.iter().try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?))?;
    let values: Cow<[half::f16]> = if t.raw_data.is_empty() {
        Cow::Owned(t.int32_data.iter().map(|&v| half::f16::from_bits(v as u16)).collect())
    } else if !t.raw_data.len().is_multiple_of(2) {
        return None;
    } else {
        match bytemuck::try_cast_slice::<u8, half::f16>(&t.raw_data) {
            Ok(values) if cfg!(target_endian = "little") => Cow::Borrowed(values),
            _ => Cow::Owned(t.raw_data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]])).collect()),
        }
    };
    (values.len() == n).then_some(values)
}

/// f16 values as the little-endian bytes of their f32 widening (ONNX's `raw_data`), converted
/// with `half`'s vectorised slice conversion.
fn widen(values: &[half::f16]) -> Vec<u8> {
    use half::slice::HalfFloatSliceExt;
    let mut raw = vec![0u8; 4 * values.len()];
    match bytemuck::try_cast_slice_mut::<u8, f32>(&mut raw) {
        Ok(wide) if cfg!(target_endian = "little") => values.convert_to_f32_slice(wide),
        _ => {
            let wide = values.to_f32_vec();
            raw = wide.iter().flat_map(|v| v.to_le_bytes()).collect();
        }
    }
    raw
}

/// Fails on the first node whose operator tract does not know, naming op and node.
pub fn check_ops(model: &pb::ModelProto, net: &str) -> Result<()> {
    let known = tract_onnx::onnx().op_register;
    let Some(graph) = model.graph.as_ref() else { return Ok(()) };
    for node in &graph.node {
        let foreign = !(node.domain.is_empty() || node.domain == "ai.onnx");
        if foreign || !known.0.contains_key(&node.op_type) {
            let op = if foreign { format!("{}::{}", node.domain, node.op_type) } else { node.op_type.clone() };
            return Err(Error::UnsupportedOp { net: net.into(), op, node: node.name.clone() });
        }
    }
    Ok(())
}
