//! Memory footprint of running a bundle: what `--memory-budget` checks before any work starts
//! and `brenier bench --memory` sets beside the peak a real run reaches.
//!
//! A static count of tensors misses much of it: tract's operators keep scratch of their own, the
//! allocator keeps freed memory, and the runtime's own copies of the weights are larger than the
//! initializers (docs/DESIGN.md, "Backends", memory, has the demo's figures). So where the kernel
//! reports peak RSS (Linux, as on Jetson) the estimate is measured, and predictive: every network
//! runs on one image and on the smallest batches that put one and two more images in flight, and
//! the process peaks after them ([`MemoryProbe`]) give a base and the cost of each further image in
//! flight. The estimate for a batch of B follows those points in the images the backend keeps in
//! flight at B ([`Network::images_in_flight`](crate::backend::Network::images_in_flight)), plus the
//! largest OT map's pages (a run reads one map; the probe reads none) and the buffers the pipeline
//! and the command hold per image. Nothing larger than the probe's batches runs before the budget
//! is checked. Off Linux the static count is the estimate, with the whole bundle file.

use super::engine::{Engine, NetSlot};
pub use crate::backend::memory::{
    current_rss_bytes, peak_rss_bytes, reset_peak_rss, system_available_bytes, Available,
};
use crate::backend::Network;
use crate::bundle::NetKey;
use crate::error::{Error, Result};

const MIB: f64 = 1024.0 * 1024.0;

/// Image-sized f32 arrays a run holds per image besides what the networks hold in flight: the
/// command's input and output, the pipeline's latents, ε, noise and encoded output, a network
/// run's pieces and their concatenation, and what the allocator keeps of freed ones. Measured,
/// not counted: docs/DESIGN.md ("Backends", memory) has the runs.
const WORKING_ARRAYS: usize = 10;

/// One probe run: every network on `batch` images.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ProbePoint {
    pub batch: usize,
    /// Images the backend held in flight at that batch.
    pub in_flight: usize,
    /// Process peak RSS after the run.
    pub peak: u64,
    /// Device memory the probe had added by then (all processes: the driver has no finer figure).
    pub device: u64,
}

/// What the probe runs measured, from which [`Engine::estimate_memory`] extrapolates: one image,
/// then the smallest batches that put one and two more images in flight (where the backend can
/// hold that many). The last segment's slope is the cost per further image; the first is kept
/// apart because a backend's first extra image may cost more than later ones. On the CPU each
/// image in flight is one more thread's allocations, and the segments are even because the
/// backend gives pieces to fixed threads (`backend/cpu.rs`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MemoryProbe {
    pub points: Vec<ProbePoint>,
    /// Whether the peak could be reset before the probe, so earlier peaks of this process do not
    /// count (Linux `clear_refs`); when not, the base is the process's peak so far.
    pub reset: bool,
    /// The backend has a device (its memory is counted besides the host's), and whether that
    /// device shares the system memory (Jetson).
    pub has_device: bool,
    pub unified: bool,
    pub measured: bool,
}

impl MemoryProbe {
    /// Growth over the first point at `in_flight` images, of host peak (`device` false) or
    /// device memory: linear between the points, the last segment's slope beyond them. Also
    /// returns that slope (per image in flight).
    fn growth(&self, in_flight: usize, device: bool) -> (u64, u64) {
        let value = |p: &ProbePoint| if device { p.device } else { p.peak };
        let Some(first) = self.points.first() else { return (0, 0) };
        let mut slope = 0f64;
        let mut at = (first.in_flight as f64, value(first) as f64);
        let mut growth = 0f64;
        for p in &self.points[1..] {
            let next = (p.in_flight as f64, value(p) as f64);
            if next.0 <= at.0 {
                continue;
            }
            slope = ((next.1 - at.1) / (next.0 - at.0)).max(0.0);
            if (in_flight as f64) <= next.0 {
                growth += slope * (in_flight as f64 - at.0).max(0.0);
                return (growth as u64, slope as u64);
            }
            growth += (next.1 - at.1).max(0.0);
            at = next;
        }
        growth += slope * (in_flight as f64 - at.0).max(0.0);
        (growth as u64, slope as u64)
    }
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
    /// Images whose activations are alive at once at this batch, and at one image (the base).
    pub images_in_flight: usize,
    pub base_in_flight: usize,
    /// Measured: the process peak with one image's piece in flight, the growth to this batch's
    /// images in flight, and the growth per image beyond the probe's points.
    pub base_bytes: u64,
    pub growth_bytes: u64,
    pub per_image_bytes: u64,
    /// Counted from the plans' tensors (the estimate where nothing is measured).
    pub activation_bytes: u64,
    /// Device memory: weights plus the probe's growth, extrapolated like the host's.
    pub device_bytes: u64,
    /// The pipeline's own buffers: [`WORKING_ARRAYS`] image-sized f32 arrays per image.
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
                "measured peak {:.1} MiB with one image's piece in flight + {:.1} MiB for {} more in flight",
                mib(self.base_bytes),
                mib(self.growth_bytes),
                self.images_in_flight.saturating_sub(self.base_in_flight)
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
    fn all_nets(&self) -> Result<Vec<&dyn Network>> {
        let maps = (0..self.bundle().manifest().neural_maps.len()).map(NetSlot::NeuralMap);
        let slots: Vec<NetSlot> =
            [NetSlot::Domain(NetKey::A), NetSlot::Domain(NetKey::B)].into_iter().chain(maps).collect();
        self.prepare(&slots)?;
        slots.into_iter().map(|s| self.slot_net(s)).collect()
    }

    fn in_flight(nets: &[&dyn Network], batch: usize) -> usize {
        nets.iter().map(|n| n.images_in_flight(batch)).max().unwrap_or(batch).max(1)
    }

    /// Runs every network on one image, then on the smallest batches that put one and two more
    /// images in flight (two and three images on the CPU with enough threads; further pieces of
    /// a fixed-batch graph), measuring the process peak after each (loads the networks first).
    /// Resets the process's peak RSS (see [`reset_peak_rss`]).
    pub fn memory_probe(&self) -> Result<MemoryProbe> {
        let nets = self.all_nets()?;
        let mut batches = vec![1usize];
        let mut newest = 1usize;
        for _ in 0..2 {
            let last = Self::in_flight(&nets, newest);
            match (2..=64).find(|&b| Self::in_flight(&nets, b) > last) {
                Some(b) => {
                    batches.push(b);
                    newest = b;
                }
                None => break,
            }
        }
        let mut p = MemoryProbe { unified: self.backend().memory_available().unified, ..MemoryProbe::default() };
        if peak_rss_bytes().is_none() {
            p.points = batches
                .iter()
                .map(|&b| ProbePoint { batch: b, in_flight: Self::in_flight(&nets, b), ..ProbePoint::default() })
                .collect();
            return Ok(p);
        }
        p.reset = reset_peak_rss();
        let rss_start = current_rss_bytes().unwrap_or(0);
        let device_before = self.backend().device_memory_used();
        p.has_device = device_before.is_some();
        for batch in batches {
            let zeros = vec![0f32; batch * self.dim()];
            for net in &nets {
                net.run(&zeros, batch, 0)?;
            }
            let peak = peak_rss_bytes().unwrap_or(0);
            let device = match (device_before, self.backend().device_memory_used()) {
                // On a Jetson the driver reports the whole system's memory in use, the process's
                // own host growth included: what the peak RSS did not see is the GPU's part.
                (Some(b), Some(a)) if p.unified => a.saturating_sub(b).saturating_sub(peak.saturating_sub(rss_start)),
                (Some(b), Some(a)) => a.saturating_sub(b),
                _ => 0,
            };
            p.points.push(ProbePoint { batch, in_flight: Self::in_flight(&nets, batch), peak, device });
        }
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
        let first = probe.points.first().copied().unwrap_or_default();
        let mut e = MemoryEstimate {
            batch,
            bundle_bytes: bundle.file_len(),
            ot_map_bytes: ot_map_bytes.unwrap_or(0),
            weight_bytes,
            images_in_flight: in_flight,
            base_in_flight: first.in_flight.max(1),
            activation_bytes: nets.iter().map(|n| n.activation_bytes(batch) as u64).max().unwrap_or(0),
            working_bytes: (WORKING_ARRAYS * batch * self.dim() * std::mem::size_of::<f32>()) as u64,
            measured: probe.measured,
            ..MemoryEstimate::default()
        };
        if probe.measured {
            e.base_bytes = first.peak;
            (e.growth_bytes, e.per_image_bytes) = probe.growth(in_flight, false);
            if probe.has_device {
                // The weights are on the device since load; its activations grow as the probe
                // measured (on a Jetson, the part of the system's growth that the process's RSS
                // did not see: see `memory_probe`).
                e.device_bytes = weight_bytes + first.device + probe.growth(in_flight, true).0;
            }
            // The peaks already hold the weights, the probe's activations and the networks'
            // pages of the bundle; a run adds the pages of the OT map it reads.
            e.total_bytes = e.base_bytes + e.growth_bytes + e.ot_map_bytes + e.working_bytes + e.device_bytes;
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
    /// than the machine has available beyond what this process already holds (see
    /// [`Available`]). Runs nothing larger than the probe's two small batches.
    pub fn check_memory_budget(&self, budget_mib: f64, batch: usize) -> Result<MemoryEstimate> {
        let e = self.memory_estimate(batch)?;
        if e.total_bytes as f64 > budget_mib * MIB {
            return Err(Error::MemoryBudget { needed_mib: e.total_bytes as f64 / MIB, budget_mib, detail: e.detail() });
        }
        // What is resident now (weights, plans, the bundle pages read) is not needed again.
        let resident = current_rss_bytes().unwrap_or(0);
        let device_resident = if e.device_bytes > 0 { e.weight_bytes } else { 0 };
        let host = e.total_bytes - e.device_bytes;
        self.backend().memory_available().check(
            host.saturating_sub(resident),
            e.device_bytes.saturating_sub(device_resident),
            &e.detail(),
        )?;
        Ok(e)
    }
}
