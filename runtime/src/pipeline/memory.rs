//! Memory footprint of running a bundle: what `--memory-budget` checks before any work starts
//! and `brenier bench --memory` sets beside the peak a real run reaches.
//!
//! A static count of tensors misses most of it: tract's convolution scratch (im2col buffers)
//! lives inside its ops, and the runtime's own copies of the weights are larger than the
//! initializers (measured on the demo: the static count said 2.7 MiB of activations at batch 4,
//! the process grew 14 MiB). So where the kernel reports peak RSS (Linux, as on Jetson) the
//! estimate is measured, and predictive: every network runs once on one image and once on two,
//! and the process peak after each ([`MemoryProbe`]) gives a base and a cost per image in flight.
//! The estimate for a batch of B extrapolates linearly in the images the backend keeps in flight
//! at B ([`EpsNet::images_in_flight`](crate::backend::EpsNet::images_in_flight)), plus the
//! largest OT map's pages (a run reads one map; the probe reads none) and the pipeline's
//! buffers. Nothing larger than two images runs before the budget is checked. Off Linux the
//! static count is the estimate, with the whole bundle file counted.

use super::engine::Engine;
pub use crate::backend::memory::{peak_rss_bytes, reset_peak_rss, system_available_bytes, Available};
use crate::backend::EpsNet;
use crate::bundle::NetKey;
use crate::error::{Error, Result};

const MIB: f64 = 1024.0 * 1024.0;

/// What the probe runs measured, from which [`Engine::estimate_memory`] extrapolates.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct MemoryProbe {
    /// Process peak RSS while every network ran on one image (0 when not measured).
    pub peak_one: u64,
    /// The same on two images.
    pub peak_two: u64,
    /// Images in flight at those two batches (the slope's denominator).
    pub in_flight_one: usize,
    pub in_flight_two: usize,
    /// Device memory the probe runs added (all processes: the driver has no finer figure).
    pub device_one: u64,
    pub device_two: u64,
    /// Whether the peak could be reset before the probe, so earlier peaks of this process do not
    /// count (Linux `clear_refs`); when not, the base is the process's peak so far.
    pub reset: bool,
    pub measured: bool,
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct MemoryEstimate {
    pub batch: usize,
    /// The bundle file (counted whole only where nothing is measured: mapped pages become
    /// resident as they are used).
    pub bundle_bytes: u64,
    /// The largest OT map's targets and heights: the pages of the bundle a run reads besides
    /// the networks, which the probe has already read.
    pub ot_map_bytes: u64,
    /// Every network's weights as the initializers count them: both ε-networks and any neural maps.
    pub weight_bytes: u64,
    /// Images whose activations are alive at once at this batch.
    pub images_in_flight: usize,
    /// Measured: the process peak with one image in flight, and the growth per further image.
    pub base_bytes: u64,
    pub per_image_bytes: u64,
    /// Counted from the plans' tensors (the estimate where nothing is measured).
    pub activation_bytes: u64,
    /// Device memory: weights plus the probe's growth, extrapolated like the host's.
    pub device_bytes: u64,
    /// The pipeline's own buffers: image, ε, noise and latents of the batch.
    pub working_bytes: u64,
    pub measured: bool,
    pub total_bytes: u64,
}

impl MemoryEstimate {
    /// How the total was made, for messages.
    pub fn detail(&self) -> String {
        let mib = |b: u64| b as f64 / MIB;
        let how = if self.measured {
            format!(
                "measured peak {:.1} MiB with one image in flight + {:.1} MiB for each of {} more",
                mib(self.base_bytes),
                mib(self.per_image_bytes),
                self.images_in_flight.saturating_sub(1)
            )
        } else {
            format!("weights {:.1} MiB + activations {:.1} MiB", mib(self.weight_bytes), mib(self.activation_bytes))
        };
        let device =
            if self.device_bytes > 0 { format!(" + device {:.1} MiB", mib(self.device_bytes)) } else { String::new() };
        let file = if self.measured {
            format!("OT map {:.1} MiB of the bundle", mib(self.ot_map_bytes))
        } else {
            format!("bundle {:.1} MiB", mib(self.bundle_bytes))
        };
        format!("{how}{device} + {file} + buffers {:.1} MiB at batch {}", mib(self.working_bytes), self.batch)
    }
}

impl Engine {
    /// Every network the bundle ships — both ε-networks and its neural maps, so any method fits.
    fn all_nets(&self) -> Result<Vec<&dyn EpsNet>> {
        let mut nets = vec![self.net(NetKey::A)?, self.net(NetKey::B)?];
        for i in 0..self.bundle().manifest().neural_maps.len() {
            nets.push(self.neural_map(i)?.1);
        }
        Ok(nets)
    }

    fn in_flight(nets: &[&dyn EpsNet], batch: usize) -> usize {
        nets.iter().map(|n| n.images_in_flight(batch)).max().unwrap_or(batch).max(1)
    }

    /// Runs every network on one image, then on two, measuring the process peak after each
    /// (loads the networks first). Resets the process's peak RSS (see [`reset_peak_rss`]).
    pub fn memory_probe(&self) -> Result<MemoryProbe> {
        let nets = self.all_nets()?;
        let mut p = MemoryProbe {
            in_flight_one: Self::in_flight(&nets, 1),
            in_flight_two: Self::in_flight(&nets, 2),
            ..MemoryProbe::default()
        };
        if peak_rss_bytes().is_none() {
            return Ok(p);
        }
        p.reset = reset_peak_rss();
        let device_before = self.backend().device_memory_used();
        let run = |batch: usize| -> Result<(u64, u64)> {
            let zeros = vec![0f32; batch * self.dim()];
            for net in &nets {
                net.eps(&zeros, batch, 0)?;
            }
            let device = match (device_before, self.backend().device_memory_used()) {
                (Some(b), Some(a)) => a.saturating_sub(b),
                _ => 0,
            };
            Ok((peak_rss_bytes().unwrap_or(0), device))
        };
        (p.peak_one, p.device_one) = run(1)?;
        (p.peak_two, p.device_two) = run(2)?;
        p.measured = true;
        Ok(p)
    }

    /// The memory of running batches of `batch` images, extrapolated from `probe`.
    pub fn estimate_memory(&self, probe: &MemoryProbe, batch: usize) -> Result<MemoryEstimate> {
        let nets = self.all_nets()?;
        let weight_bytes: u64 = nets.iter().map(|n| n.weight_bytes() as u64).sum();
        let in_flight = Self::in_flight(&nets, batch);
        let bundle = self.bundle();
        let section_len = |name: &str| bundle.entry(name).map_or(0, |e| e.len);
        let ot_map_bytes =
            bundle.manifest().ot_maps.iter().map(|m| section_len(&m.targets) + section_len(&m.heights)).max();
        let mut e = MemoryEstimate {
            batch,
            bundle_bytes: bundle.file_len(),
            ot_map_bytes: ot_map_bytes.unwrap_or(0),
            weight_bytes,
            images_in_flight: in_flight,
            activation_bytes: nets.iter().map(|n| n.activation_bytes(batch) as u64).max().unwrap_or(0),
            working_bytes: (4 * batch * self.dim() * std::mem::size_of::<f32>()) as u64,
            measured: probe.measured,
            ..MemoryEstimate::default()
        };
        let more = in_flight.saturating_sub(probe.in_flight_one) as u64;
        let step = probe.in_flight_two.saturating_sub(probe.in_flight_one) as u64;
        if probe.measured {
            // No second image in flight at two images (one CPU thread): the backend never holds
            // more than the base, whatever the batch.
            let slope = |one: u64, two: u64| two.saturating_sub(one).checked_div(step).unwrap_or(0);
            e.base_bytes = probe.peak_one;
            e.per_image_bytes = slope(probe.peak_one, probe.peak_two);
            if probe.device_one > 0 || probe.device_two > 0 {
                let per_image = slope(probe.device_one, probe.device_two);
                e.device_bytes = weight_bytes + probe.device_one + per_image * more;
            }
            // The peak already holds the weights, the probe's activations and the networks' pages
            // of the bundle; a run adds the pages of the OT map it reads.
            e.total_bytes = e.base_bytes + e.per_image_bytes * more + e.ot_map_bytes + e.working_bytes + e.device_bytes;
        } else {
            e.total_bytes = e.bundle_bytes + weight_bytes + e.activation_bytes + e.working_bytes;
        }
        Ok(e)
    }

    /// Estimates the memory of running `batch` images: [`Engine::memory_probe`] then
    /// [`Engine::estimate_memory`].
    pub fn memory_estimate(&self, batch: usize) -> Result<MemoryEstimate> {
        let probe = self.memory_probe()?;
        self.estimate_memory(&probe, batch)
    }

    /// Refuses to go on when running `batch` images would need more than `budget_mib`, or more
    /// than the machine has available (see [`Available`]). Runs nothing larger than two images.
    pub fn check_memory_budget(&self, budget_mib: f64, batch: usize) -> Result<MemoryEstimate> {
        let e = self.memory_estimate(batch)?;
        if e.total_bytes as f64 > budget_mib * MIB {
            return Err(Error::MemoryBudget { needed_mib: e.total_bytes as f64 / MIB, budget_mib, detail: e.detail() });
        }
        self.backend().memory_available().check(e.total_bytes, e.device_bytes, &e.detail())?;
        Ok(e)
    }
}
