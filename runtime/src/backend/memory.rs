//! What the machine reports about memory: this process's peak resident size and what the system
//! (and a discrete GPU) can still give. The memory estimate (`pipeline::memory`) measures with
//! these; a backend says which pool it draws from ([`Available`]).

use crate::error::{Error, Result};

const MIB: f64 = 1024.0 * 1024.0;

/// Memory a run can still take, as the machine reports it. On the CPU and with a discrete GPU the
/// host's available memory and the device's free memory are separate pools. On a Jetson
/// (integrated GPU, `unified`) CPU and GPU share the system memory: the driver's free-memory
/// query there counts only pages free right now, not what the kernel can reclaim (page cache), so
/// the system's `MemAvailable` is the figure for both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Available {
    /// `MemAvailable` from /proc/meminfo (Linux).
    pub system: Option<u64>,
    /// Free device memory (discrete GPUs only).
    pub device_free: Option<u64>,
    pub unified: bool,
}

impl Available {
    /// Refuses a run that needs `host` more bytes of host memory and `device` more of device
    /// memory than this process holds already when they do not fit in what the machine has
    /// left; `detail` says how the estimate was made.
    pub fn check(&self, host: u64, device: u64, detail: &str) -> Result<()> {
        let (needed, have, what) = if self.unified {
            (host + device, self.system, "available memory (MemAvailable, shared by the CPU and the GPU)")
        } else {
            (host, self.system, "available memory (MemAvailable)")
        };
        let refuse = |needed: u64, have: u64, what: &str| Error::MemoryUnavailable {
            needed_mib: needed as f64 / MIB,
            available_mib: have as f64 / MIB,
            what: what.into(),
            detail: detail.into(),
        };
        if let Some(have) = have.filter(|&have| needed > have) {
            return Err(refuse(needed, have, what));
        }
        if let Some(have) = self.device_free.filter(|&have| !self.unified && device > have) {
            return Err(refuse(device, have, "free device memory"));
        }
        Ok(())
    }
}

/// Peak resident set size of this process, in bytes (Linux).
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib("VmHWM:")
}

/// Resident set size of this process now, in bytes (Linux).
pub fn current_rss_bytes() -> Option<u64> {
    status_kib("VmRSS:")
}

fn status_kib(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// Resets this process's peak RSS to its current RSS (Linux ≥ 4.0: `5` into clear_refs), so the
/// next [`peak_rss_bytes`] measures from now. False where the kernel does not allow it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", b"5").is_ok()
}

/// `MemAvailable` of /proc/meminfo: what the kernel can give without swapping (Linux).
pub fn system_available_bytes() -> Option<u64> {
    meminfo_available(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

fn meminfo_available(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_available_is_read_in_bytes() {
        let text = "MemTotal:       24576000 kB\nMemFree:          100000 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(meminfo_available(text), Some(20_000_000 * 1024));
        assert_eq!(meminfo_available("MemTotal: 1 kB\n"), None);
    }

    /// On a Jetson the device's free pages say little: MemAvailable decides, for host and device
    /// together. On a discrete GPU each pool is judged on its own.
    #[test]
    fn unified_memory_is_judged_by_the_system_figure_discrete_by_both_pools() {
        const GIB: u64 = 1 << 30;
        let jetson = Available { system: Some(3 * GIB), device_free: None, unified: true };
        assert!(jetson.check(2 * GIB, GIB, "test").is_ok());
        // Host and device together exceed the shared memory, though each alone would fit.
        let e = jetson.check(2 * GIB, 2 * GIB, "test").unwrap_err().to_string();
        assert!(e.contains("MemAvailable, shared by the CPU and the GPU") && e.contains("available"), "{e}");

        let discrete = Available { system: Some(3 * GIB), device_free: Some(GIB), unified: false };
        // 2.5 GiB of host and 1.5 GiB of device: the host fits, the device does not.
        let e = discrete.check(5 * GIB / 2, 3 * GIB / 2, "test").unwrap_err().to_string();
        assert!(e.contains("free device memory"), "{e}");
        assert!(discrete.check(5 * GIB / 2, GIB / 2, "test").is_ok());
        let e = discrete.check(4 * GIB, GIB / 2, "test").unwrap_err().to_string();
        assert!(e.contains("available memory (MemAvailable)"), "{e}");
        assert!(Available::default().check(100 * GIB, 0, "test").is_ok(), "nothing known, nothing refused");
    }
}
