//! Which nodes of a bundle's networks tract keeps on the CPU under its CUDA runtime, for
//! `brenier inspect --backend cuda`: tract's own CUDA transform is applied and every node it did
//! not translate is named.

use tract_onnx::tract_core::transform::ModelTransform;

use crate::backend::graph::Graph;
use crate::backend::Precision;
use crate::error::{Error, Result};

/// One node of a network that tract keeps on the CPU under the CUDA runtime.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FallbackNode {
    pub node: String,
    pub op: String,
}

/// The nodes of `graph` that tract's CUDA transform leaves on the CPU. Needs a device (the
/// transform initialises a CUDA context): call after [`super::probe`] succeeded.
pub fn cpu_fallback_nodes(graph: &Graph, precision: Precision) -> Result<Vec<FallbackNode>> {
    let mut typed = graph.typed(1, precision)?;
    tract_cuda::CudaTransform
        .transform(&mut typed)
        .map_err(|e| Error::tract(format!("translating {} for CUDA", graph.label), e))?;
    Ok(typed
        .nodes()
        .iter()
        .filter_map(|n| {
            let op = n.op.name().to_string();
            let on_device = ["Cuda", "Gpu", "DeviceSync"].iter().any(|p| op.starts_with(p));
            (!on_device && op != "Source" && op != "Const").then(|| FallbackNode { node: n.name.clone(), op })
        })
        .collect())
}

/// [`cpu_fallback_nodes`] for both networks of a bundle, by label. Probes the machine first.
pub fn bundle_fallback(
    bundle: &crate::bundle::Bundle,
    precision: Precision,
) -> Result<Vec<(String, Vec<FallbackNode>)>> {
    super::probe::probe()?;
    let m = bundle.manifest();
    [crate::NetKey::A, crate::NetKey::B]
        .into_iter()
        .map(|key| {
            let label = format!("net {} ({})", key.as_str(), m.domain_name(key));
            let graph = Graph::parse(bundle.net_bytes(key)?, m.net(key), m.image, &label)?;
            Ok((label, cpu_fallback_nodes(&graph, precision)?))
        })
        .collect()
}
