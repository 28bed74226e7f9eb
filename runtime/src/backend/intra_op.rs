//! How a CPU network spends its threads on a run that is one piece (a batch of one image on a
//! plan of batch 1): inside tract's operators (intra-op: matrix products, packing and elementwise
//! kernels split across the pool) or not at all. Batches of several pieces always go data
//! parallel, one piece per thread, which needs no splitting inside an operator.
//!
//! Intra-op splitting pays only when each product is large enough to amortise the dispatch
//! (a few µs per split product). Batch 1 on 2 threads, split against one thread
//! (`benches/peers/intra_op.sh` → `benches/results/intra-op.json`): the 64×64 ADM UNet (6.0 G
//! multiply-adds per image) takes 0.62–0.67× the time, the 28×28 demo UNet (0.133 G) 1.25–1.40×.
//! The gate is the plan's multiply-adds per image; `BRENIER_INTRA_OP=on|off` overrides it
//! for measuring other networks and hardware. Bit-identical either way: tract splits products
//! by output tiles and elementwise kernels by blocks, never a reduction.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::Cost;

/// Multiply-adds per image at or above which a one-piece run splits its operators across the
/// pool: between the two networks measured (0.133 G loses, 6.0 G wins, module docs), on the
/// geometric scale. Networks near it are unmeasured: the override is there to measure them.
pub const MIN_FMA_PER_IMAGE: u64 = 1_000_000_000;

/// Whether one-piece runs split inside tract's operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IntraOpPolicy {
    /// By the network's size ([`MIN_FMA_PER_IMAGE`]).
    #[default]
    Auto,
    On,
    Off,
}

impl IntraOpPolicy {
    /// `BRENIER_INTRA_OP=on|off|auto` (unset: auto; anything else: auto with a warning).
    pub fn from_env() -> IntraOpPolicy {
        match std::env::var("BRENIER_INTRA_OP").as_deref() {
            Ok("on") => IntraOpPolicy::On,
            Ok("off") => IntraOpPolicy::Off,
            Ok("auto") | Ok("") | Err(_) => IntraOpPolicy::Auto,
            Ok(other) => {
                log::warn!("BRENIER_INTRA_OP={other} is not on, off or auto; deciding by network size");
                IntraOpPolicy::Auto
            }
        }
    }
}

/// The decision for one network, with what it was made from (logged at load).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntraOp {
    pub enabled: bool,
    pub fma_per_image: u64,
}

impl IntraOp {
    /// Decides from the typed (not yet optimised) model for `batch` images and the pool size;
    /// one thread never splits.
    pub fn decide(model: &TypedModel, batch: usize, threads: usize, policy: IntraOpPolicy) -> IntraOp {
        let fma_per_image = fma_count(model) / batch.max(1) as u64;
        let enabled = threads > 1
            && match policy {
                IntraOpPolicy::Auto => fma_per_image >= MIN_FMA_PER_IMAGE,
                IntraOpPolicy::On => true,
                IntraOpPolicy::Off => false,
            };
        IntraOp { enabled, fma_per_image }
    }
}

/// Multiply-adds of one run of `model`, as its operators count them (convolutions and matrix
/// products; elementwise work is not counted). Symbolic or uncountable costs count as zero.
pub fn fma_count(model: &TypedModel) -> u64 {
    model
        .nodes()
        .iter()
        .filter_map(|node| {
            let facts = model.node_input_facts(node.id).ok()?;
            let costs = node.op.cost(&facts).ok()?;
            Some(
                costs
                    .iter()
                    .filter(|(kind, _)| matches!(kind, Cost::FMA(_)))
                    .filter_map(|(_, n)| n.to_i64().ok())
                    .map(|n| n.max(0) as u64)
                    .sum::<u64>(),
            )
        })
        .sum()
}
