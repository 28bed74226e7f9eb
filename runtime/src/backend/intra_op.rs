//! How a CPU network spends its threads on a run that is one piece (one image on a plan of
//! batch 1, or one padded piece of a fixed-batch plan): inside tract's operators (intra-op:
//! matrix products, packing and elementwise kernels split across the pool) or not at all. Runs of
//! several pieces always go data parallel, the pieces shared out among the threads, which needs
//! no splitting inside an operator.
//!
//! Intra-op splitting pays only when each product is large enough to amortise the dispatch
//! (a few µs per split product). Batch 1 on 2 threads, split against one thread
//! (`ROUNDS=6 benches/peers/intra_op.sh` → `benches/results/intra-op.json`): the 64×64 ADM UNet
//! (6.0 G multiply-adds per image) takes 0.79–0.80× the time, the 28×28 demo UNet (0.133 G)
//! 1.10–1.12×.
//! The gate is the multiply-adds of one run of the plan (one piece); `BRENIER_INTRA_OP=on|off`
//! overrides it for measuring other networks and hardware (one thread never splits). Bit-identical either way: tract splits products
//! by output tiles and elementwise kernels by blocks, never a reduction.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::Cost;

/// Multiply-adds of one piece at or above which its run splits its operators across the pool:
/// between the two networks measured (0.133 G loses, 6.0 G wins, module docs), on the
/// geometric scale. Networks near it are unmeasured: the override is there to measure them.
pub const MIN_FMA_PER_PIECE: u64 = 1_000_000_000;

/// Whether one-piece runs split inside tract's operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IntraOpPolicy {
    /// By the network's size ([`MIN_FMA_PER_PIECE`]).
    #[default]
    Auto,
    On,
    Off,
}

impl IntraOpPolicy {
    /// `BRENIER_INTRA_OP=on|off|auto` (unset: auto; anything else: auto with a warning).
    pub fn from_env() -> IntraOpPolicy {
        Self::parse(std::env::var("BRENIER_INTRA_OP").ok().as_deref())
    }

    fn parse(value: Option<&str>) -> IntraOpPolicy {
        match value {
            Some("on") => IntraOpPolicy::On,
            Some("off") => IntraOpPolicy::Off,
            None | Some("auto") | Some("") => IntraOpPolicy::Auto,
            Some(other) => {
                log::warn!("BRENIER_INTRA_OP={other} is not on, off or auto; deciding by network size");
                IntraOpPolicy::Auto
            }
        }
    }

    /// Whether a piece of `fma` multiply-adds splits on `threads` threads.
    pub fn splits(self, fma: u64, threads: usize) -> bool {
        threads > 1
            && match self {
                IntraOpPolicy::Auto => fma >= MIN_FMA_PER_PIECE,
                IntraOpPolicy::On => true,
                IntraOpPolicy::Off => false,
            }
    }
}

/// The decision for one network, with what it was made from (logged at load).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntraOp {
    pub enabled: bool,
    /// Multiply-adds of one run of the plan (one piece).
    pub fma_per_piece: u64,
}

impl IntraOp {
    /// Decides from the typed (not yet optimised) model of one piece and the pool size.
    pub fn decide(model: &TypedModel, threads: usize, policy: IntraOpPolicy) -> IntraOp {
        let fma_per_piece = fma_count(model);
        IntraOp { enabled: policy.splits(fma_per_piece, threads), fma_per_piece }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_splits_large_pieces_on_several_threads_only() {
        let auto = IntraOpPolicy::Auto;
        assert!(!auto.splits(MIN_FMA_PER_PIECE - 1, 2));
        assert!(auto.splits(MIN_FMA_PER_PIECE, 2));
        assert!(!auto.splits(u64::MAX, 1), "one thread has nothing to split across");
        assert!(IntraOpPolicy::On.splits(0, 2));
        assert!(!IntraOpPolicy::On.splits(u64::MAX, 1));
        assert!(!IntraOpPolicy::Off.splits(u64::MAX, 8));
    }

    #[test]
    fn the_override_reads_on_off_and_auto() {
        assert_eq!(IntraOpPolicy::parse(Some("on")), IntraOpPolicy::On);
        assert_eq!(IntraOpPolicy::parse(Some("off")), IntraOpPolicy::Off);
        assert_eq!(IntraOpPolicy::parse(Some("auto")), IntraOpPolicy::Auto);
        assert_eq!(IntraOpPolicy::parse(None), IntraOpPolicy::Auto);
        assert_eq!(IntraOpPolicy::parse(Some("yes")), IntraOpPolicy::Auto);
    }
}
