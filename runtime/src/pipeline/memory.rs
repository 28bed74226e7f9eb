//! Memory footprint of running a bundle: what `--memory-budget` checks before any work starts
//! and `brenier bench` prints next to the measured peak RSS.
//!
//! A static count of tensors misses most of it: tract's convolution scratch (im2col buffers)
//! lives inside its ops, and the runtime's own copies of the weights are larger than the
//! initializers (measured on the demo: the static count said 2.7 MiB of activations at batch 4,
//! the process grew 14 MiB). So where the kernel reports peak RSS (Linux `/proc/self/status`,
//! as on Jetson) the estimate is measured: every network (both ε-networks and any neural maps)
//! runs once on a zero batch of the requested size, and the process's peak resident size after
//! that probe is the base; the static count is the fallback elsewhere.

use super::engine::Engine;
use crate::bundle::NetKey;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct MemoryEstimate {
    /// The bundle file, counted whole: mapped pages become resident as they are used.
    pub bundle_bytes: u64,
    /// Every network's weights as the initializers count them: both ε-networks and any neural maps.
    pub weight_bytes: u64,
    /// Peak of one evaluation at the batch size: measured by the probe, else counted from the
    /// plan's tensors (networks run one at a time).
    pub activation_bytes: u64,
    /// The pipeline's own buffers: image, ε, noise and latents of the batch.
    pub working_bytes: u64,
    /// Peak resident size of the process after the probe (0 when not measured).
    pub process_peak_bytes: u64,
    pub measured: bool,
    pub total_bytes: u64,
}

const MIB: f64 = 1024.0 * 1024.0;

/// Peak resident set size of this process, in bytes (Linux).
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

impl Engine {
    /// Estimates the memory of running `batch` images (loads every network the bundle ships —
    /// both ε-networks and its neural maps, so any method fits — and, where peak RSS can be
    /// read, runs each once on zeros to measure).
    pub fn memory_estimate(&self, batch: usize) -> Result<MemoryEstimate> {
        let mut nets = vec![self.net(NetKey::A)?, self.net(NetKey::B)?];
        for i in 0..self.bundle().manifest().neural_maps.len() {
            nets.push(self.neural_map(i)?.1);
        }
        let weight_bytes = nets.iter().map(|n| n.weight_bytes() as u64).sum();
        let working_bytes = (4 * batch * self.dim() * std::mem::size_of::<f32>()) as u64;
        let bundle_bytes = self.bundle().file_len();
        let counted = nets.iter().map(|n| n.activation_bytes(batch) as u64).max().unwrap_or(0);
        let probe = || -> Result<Option<(u64, u64)>> {
            let Some(before) = peak_rss_bytes() else { return Ok(None) };
            let zeros = vec![0f32; batch * self.dim()];
            for net in &nets {
                net.eps(&zeros, batch, 0)?;
            }
            Ok(peak_rss_bytes().map(|after| (after, after.saturating_sub(before))))
        };
        Ok(match probe()? {
            Some((peak, grown)) => MemoryEstimate {
                bundle_bytes,
                weight_bytes,
                activation_bytes: grown.max(counted),
                working_bytes,
                process_peak_bytes: peak,
                measured: true,
                // The peak already holds the weights, the probe's activations and whatever of
                // the bundle was touched; the bundle is added whole as the rest will be touched.
                total_bytes: peak + bundle_bytes + working_bytes,
            },
            None => MemoryEstimate {
                bundle_bytes,
                weight_bytes,
                activation_bytes: counted,
                working_bytes,
                process_peak_bytes: 0,
                measured: false,
                total_bytes: bundle_bytes + weight_bytes + counted + working_bytes,
            },
        })
    }

    /// Refuses to go on when running `batch` images would need more than `budget_mib`.
    pub fn check_memory_budget(&self, budget_mib: f64, batch: usize) -> Result<MemoryEstimate> {
        let e = self.memory_estimate(batch)?;
        if e.total_bytes as f64 > budget_mib * MIB {
            let how = if e.measured {
                format!("process peak {:.1} MiB after a probe run", e.process_peak_bytes as f64 / MIB)
            } else {
                format!(
                    "weights {:.1} MiB + activations {:.1} MiB",
                    e.weight_bytes as f64 / MIB,
                    e.activation_bytes as f64 / MIB
                )
            };
            return Err(Error::MemoryBudget {
                needed_mib: e.total_bytes as f64 / MIB,
                budget_mib,
                detail: format!(
                    "{how} + bundle {:.1} MiB + buffers {:.1} MiB at batch {batch}",
                    e.bundle_bytes as f64 / MIB,
                    e.working_bytes as f64 / MIB
                ),
            });
        }
        Ok(e)
    }
}
