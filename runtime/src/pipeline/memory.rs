//! Memory footprint of running a bundle: what `--memory-budget` checks before any work starts
//! and `brenier bench` prints next to the measured peak RSS.

use super::engine::Engine;
use crate::bundle::NetKey;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct MemoryEstimate {
    /// The bundle file: mapped pages are counted once touched, and every section is used.
    pub bundle_bytes: u64,
    /// Both networks' weights as the backend holds them.
    pub weight_bytes: u64,
    /// Peak intermediate tensors of one evaluation (networks run one at a time).
    pub activation_bytes: u64,
    /// The pipeline's own buffers: image, ε, noise and latents of the batch.
    pub working_bytes: u64,
    pub total_bytes: u64,
}

const MIB: f64 = 1024.0 * 1024.0;

impl Engine {
    /// Estimates the memory of running `batch` images (loads both networks).
    pub fn memory_estimate(&self, batch: usize) -> Result<MemoryEstimate> {
        let (a, b) = (self.net(NetKey::A)?, self.net(NetKey::B)?);
        let weight_bytes = (a.weight_bytes() + b.weight_bytes()) as u64;
        let activation_bytes = a.activation_bytes(batch).max(b.activation_bytes(batch)) as u64;
        let working_bytes = (4 * batch * self.dim() * std::mem::size_of::<f32>()) as u64;
        let bundle_bytes = self.bundle().file_len();
        Ok(MemoryEstimate {
            bundle_bytes,
            weight_bytes,
            activation_bytes,
            working_bytes,
            total_bytes: bundle_bytes + weight_bytes + activation_bytes + working_bytes,
        })
    }

    /// Refuses to go on when running `batch` images would need more than `budget_mib`.
    pub fn check_memory_budget(&self, budget_mib: f64, batch: usize) -> Result<MemoryEstimate> {
        let e = self.memory_estimate(batch)?;
        if e.total_bytes as f64 > budget_mib * MIB {
            return Err(Error::MemoryBudget {
                needed_mib: e.total_bytes as f64 / MIB,
                budget_mib,
                detail: format!(
                    "bundle {:.1} MiB + weights {:.1} MiB + activations {:.1} MiB + buffers {:.1} MiB at batch {batch}",
                    e.bundle_bytes as f64 / MIB,
                    e.weight_bytes as f64 / MIB,
                    e.activation_bytes as f64 / MIB,
                    e.working_bytes as f64 / MIB
                ),
            });
        }
        Ok(e)
    }
}
