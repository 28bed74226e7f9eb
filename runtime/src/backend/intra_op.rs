//! How a CPU network spends its threads on a run that is one piece (one image on a plan of
//! batch 1, or one padded piece of a fixed-batch plan), which has no batch to share out. Runs of
//! several pieces always go data parallel, the pieces shared out among the threads, which needs
//! no splitting inside an operator. One piece runs one of three ways ([`OnePiece`]):
//! - kernels: brenier's convolutions (`conv/`) share their blocks with a crew of helper threads
//!   that stay awake through the run (`crew.rs`); tract's other operators run on the calling
//!   thread. The default wherever brenier's convolutions took any of the network's: they are
//!   most of its time (four fifths of the demo UNet's step), and handing a convolution's pieces
//!   to a spinning helper costs well under a microsecond.
//! - all: every operator split across the rayon pool under tract's `multithread-mm` executor
//!   (matrix products by output tiles, elementwise kernels by blocks, brenier's convolutions by
//!   their own pieces). Each operator wakes the pool's sleeping threads, which pays only when
//!   the products are large: the default for a network brenier's convolutions left alone (f16)
//!   of at least [`MIN_FMA_PER_PIECE`] multiply-adds.
//! - serial: one thread (one thread, or a small network brenier's convolutions left alone).
//!
//! Measured at batch 1 on 2 threads (`ROUNDS=6 benches/peers/intra_op.sh` →
//! `benches/results/intra-op.json`, which records each mode's time and the gate's choice).
//! `BRENIER_INTRA_OP=on|kernels|off|auto` overrides the choice (one thread never splits).
//! Bit-identical every way: tract splits products by output tiles and elementwise kernels by
//! blocks, brenier's convolutions by output rows or channels, never a reduction.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::Cost;

pub use super::OnePiece;

/// For a network brenier's convolutions left alone (f16): the multiply-adds of one piece at
/// or above which its run splits tract's operators across the pool. Set on the geometric scale
/// between the two f32 networks measured before the crew, with tract's convolutions or
/// brenier's on the pool (0.133 G lost, 1.10–1.12× one thread; 6.0 G won, 0.79–0.80×:
/// `git show f188589:benches/results/intra-op.json`). Nothing measures it on an f16 network:
/// the override is there to measure one.
pub const MIN_FMA_PER_PIECE: u64 = 1_000_000_000;

/// How one-piece runs spend their threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IntraOpPolicy {
    /// By the network's size ([`MIN_FMA_PER_PIECE`]).
    #[default]
    Auto,
    /// [`OnePiece::All`].
    On,
    /// [`OnePiece::Kernels`].
    Kernels,
    /// [`OnePiece::Serial`].
    Off,
}

impl IntraOpPolicy {
    /// `BRENIER_INTRA_OP=on|kernels|off|auto` (unset: auto; anything else: auto with a warning).
    pub fn from_env() -> IntraOpPolicy {
        Self::parse(std::env::var("BRENIER_INTRA_OP").ok().as_deref())
    }

    fn parse(value: Option<&str>) -> IntraOpPolicy {
        match value {
            Some("on") => IntraOpPolicy::On,
            Some("kernels") => IntraOpPolicy::Kernels,
            Some("off") => IntraOpPolicy::Off,
            None | Some("auto") | Some("") => IntraOpPolicy::Auto,
            Some(other) => {
                log::warn!("BRENIER_INTRA_OP={other} is not on, kernels, off or auto; deciding by the network");
                IntraOpPolicy::Auto
            }
        }
    }

    /// How a piece of `fma` multiply-adds with `convs` of brenier's convolutions runs on
    /// `threads` threads.
    pub fn one_piece(self, fma: u64, convs: usize, threads: usize) -> OnePiece {
        if threads <= 1 {
            return OnePiece::Serial;
        }
        match self {
            IntraOpPolicy::Auto if convs > 0 => OnePiece::Kernels,
            IntraOpPolicy::Auto if fma >= MIN_FMA_PER_PIECE => OnePiece::All,
            IntraOpPolicy::Auto => OnePiece::Serial,
            IntraOpPolicy::On => OnePiece::All,
            IntraOpPolicy::Kernels => OnePiece::Kernels,
            IntraOpPolicy::Off => OnePiece::Serial,
        }
    }
}

/// The decision for one network, with what it was made from (logged at load).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntraOp {
    pub one_piece: OnePiece,
    /// Multiply-adds of one run of the plan (one piece).
    pub fma_per_piece: u64,
}

impl IntraOp {
    /// Decides from the multiply-adds of one piece ([`fma_count`] of its typed model before
    /// brenier's convolutions take their nodes), the number of those convolutions and the pool size.
    pub fn decide(fma_per_piece: u64, convs: usize, threads: usize, policy: IntraOpPolicy) -> IntraOp {
        IntraOp { one_piece: policy.one_piece(fma_per_piece, convs, threads), fma_per_piece }
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
    fn brenier_convolutions_take_the_crew_and_without_them_size_decides() {
        let auto = IntraOpPolicy::Auto;
        assert_eq!(auto.one_piece(MIN_FMA_PER_PIECE - 1, 3, 2), OnePiece::Kernels);
        assert_eq!(auto.one_piece(u64::MAX, 1, 2), OnePiece::Kernels);
        assert_eq!(auto.one_piece(MIN_FMA_PER_PIECE - 1, 0, 2), OnePiece::Serial);
        assert_eq!(auto.one_piece(MIN_FMA_PER_PIECE, 0, 2), OnePiece::All);
        assert_eq!(auto.one_piece(u64::MAX, 9, 1), OnePiece::Serial, "one thread has nothing to split across");
        assert_eq!(IntraOpPolicy::On.one_piece(0, 9, 2), OnePiece::All);
        assert_eq!(IntraOpPolicy::Kernels.one_piece(u64::MAX, 0, 2), OnePiece::Kernels);
        assert_eq!(IntraOpPolicy::On.one_piece(u64::MAX, 0, 1), OnePiece::Serial);
        assert_eq!(IntraOpPolicy::Off.one_piece(u64::MAX, 9, 8), OnePiece::Serial);
    }

    #[test]
    fn the_override_reads_each_mode() {
        assert_eq!(IntraOpPolicy::parse(Some("on")), IntraOpPolicy::On);
        assert_eq!(IntraOpPolicy::parse(Some("kernels")), IntraOpPolicy::Kernels);
        assert_eq!(IntraOpPolicy::parse(Some("off")), IntraOpPolicy::Off);
        assert_eq!(IntraOpPolicy::parse(Some("auto")), IntraOpPolicy::Auto);
        assert_eq!(IntraOpPolicy::parse(None), IntraOpPolicy::Auto);
        assert_eq!(IntraOpPolicy::parse(Some("yes")), IntraOpPolicy::Auto);
    }
}
