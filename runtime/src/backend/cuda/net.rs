//! ε-networks on the GPU through tract's CUDA runtime, after tract's f32→f16 translation when the
//! backend runs in f16. Nodes tract cannot run on CUDA stay on the CPU inside the same plan
//! (tract inserts the copies); `super::fallback` names them for `inspect --backend cuda`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tract_onnx::prelude::*;

use crate::backend::graph::Graph;
use crate::backend::{Network, Precision};
use crate::error::{Error, Result};

/// tract's CUDA runtime. Naming `tract_cuda` here also keeps its runtime registration linked in.
pub fn runtime() -> Result<&'static dyn Runtime> {
    let _linked = tract_cuda::CudaTransform;
    runtime_for_name("cuda").ok().flatten().ok_or_else(|| Error::CudaUnavailable {
        problem: "tract's CUDA runtime is not registered in this build".into(),
        fix: "rebuild with `--features cuda`".into(),
    })
}

pub struct CudaNet {
    graph: Graph,
    precision: Precision,
    /// One plan per batch size seen (concrete shapes: tract's GPU kernels are chosen per shape).
    plans: Mutex<HashMap<usize, Arc<Box<dyn Runnable>>>>,
    weight_bytes: usize,
    /// Output bytes of every node for one image: an upper bound of the activations (tract's
    /// device allocator reuses buffers, so the real peak is lower).
    activation_bytes_per_image: usize,
}

impl CudaNet {
    pub fn load(graph: Graph, precision: Precision) -> Result<CudaNet> {
        let elem = if precision == Precision::F16 { 2 } else { 4 };
        // The batch-1 model serves both the activation estimate and the first plan.
        let typed = graph.typed(1, precision)?;
        let activation_bytes_per_image = typed
            .nodes()
            .iter()
            .flat_map(|n| &n.outputs)
            .map(|o| {
                o.fact.shape.as_concrete().map_or(0, |s| s.iter().product::<usize>()) * o.fact.datum_type.size_of()
            })
            .sum();
        let first = prepare(&graph.label, typed, 1)?;
        Ok(CudaNet {
            weight_bytes: graph.params * elem,
            graph,
            precision,
            plans: Mutex::new(HashMap::from([(1, first)])),
            activation_bytes_per_image,
        })
    }

    fn plan(&self, batch: usize) -> Result<Arc<Box<dyn Runnable>>> {
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = plans.get(&batch) {
            return Ok(p.clone());
        }
        let plan = prepare(&self.graph.label, self.graph.typed(batch, self.precision)?, batch)?;
        plans.insert(batch, plan.clone());
        Ok(plan)
    }
}

fn prepare(label: &str, typed: TypedModel, batch: usize) -> Result<Arc<Box<dyn Runnable>>> {
    let plan = runtime()?
        .prepare(typed)
        .map_err(|e| Error::tract(format!("preparing {label} for CUDA at batch {batch}"), e))?;
    log::debug!("{label}: CUDA plan ready for batch {batch}");
    Ok(Arc::new(plan))
}

impl Network for CudaNet {
    fn run(&self, x: &[f32], batch: usize, t: i64) -> Result<Vec<f32>> {
        self.graph.check_input(x, batch)?;
        let plan = self.plan(batch)?;
        let inputs = self.graph.inputs(x, batch, t, self.precision)?;
        let out = plan
            .run(inputs)
            .map_err(|e| Error::tract(format!("running {} on CUDA at t = {t}", self.graph.label), e))?;
        self.graph.output(&out[0], batch, self.precision)
    }

    fn label(&self) -> &str {
        &self.graph.label
    }

    fn weight_bytes(&self) -> usize {
        self.weight_bytes
    }

    fn activation_bytes(&self, batch: usize) -> usize {
        self.activation_bytes_per_image * batch
    }
}
