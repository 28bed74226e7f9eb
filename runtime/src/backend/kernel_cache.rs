//! On-disk cache of compiled device kernels. A GPU build compiles its kernels with NVRTC at first
//! use (seconds on a Jetson); the binary is kept under a key made of the kernel source hash, the
//! device architecture and the NVRTC version, so a new source, another GPU or another NVRTC never
//! reuses it. Each entry carries its length and CRC32: a truncated or corrupted entry is rebuilt
//! and replaced, never loaded. Plain Rust, so it is tested without a GPU.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::io::write_atomic;

const MAGIC: &[u8; 8] = b"BRNKERN1";
const HEADER: usize = 8 + 8 + 4;

/// 64-bit FNV-1a: a hash that is the same on every build and platform (unlike std's hasher),
/// so cache keys stay valid across releases.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// The default cache folder: `$BRENIER_KERNEL_CACHE`, else `$XDG_CACHE_HOME/brenier/kernels`,
/// else `~/.cache/brenier/kernels`, else the system temp folder.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BRENIER_KERNEL_CACHE") {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("brenier").join("kernels")
}

/// Where an entry lives. `arch` is like `sm_87`, `compiler` like `nvrtc-12.6`.
pub fn entry_path(dir: &Path, source: &str, arch: &str, compiler: &str) -> PathBuf {
    dir.join(format!("{:016x}-{arch}-{compiler}.cubin", fnv1a64(source.as_bytes())))
}

/// What [`load_or_build`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Built,
    /// An entry was there but failed its checks; it was rebuilt and replaced.
    Rebuilt,
}

/// The cached binary at `path`, or `build()`'s, stored for next time. A cache that cannot be
/// written (read-only disk) costs a warning, not the run.
pub fn load_or_build(path: &Path, build: impl FnOnce() -> Result<Vec<u8>>) -> Result<(Vec<u8>, CacheOutcome)> {
    let outcome = match std::fs::read(path) {
        Ok(bytes) => match decode(&bytes) {
            Some(payload) => return Ok((payload.to_vec(), CacheOutcome::Hit)),
            None => {
                log::warn!("kernel cache entry {} is corrupted; rebuilding it", path.display());
                CacheOutcome::Rebuilt
            }
        },
        Err(_) => CacheOutcome::Built,
    };
    let binary = build()?;
    let stored = std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
        .map_err(|e| crate::Error::io(path, e))
        .and_then(|_| write_atomic(path, &encode(&binary)));
    if let Err(e) = stored {
        log::warn!("could not store compiled kernels in the cache ({e}); they will be compiled again next run");
    }
    Ok((binary, outcome))
}

fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fn decode(bytes: &[u8]) -> Option<&[u8]> {
    let (head, payload) = bytes.split_at_checked(HEADER)?;
    let len = u64::from_le_bytes(head[8..16].try_into().ok()?);
    let crc = u32::from_le_bytes(head[16..20].try_into().ok()?);
    (&head[..8] == MAGIC && len == payload.len() as u64 && crc32fast::hash(payload) == crc && !payload.is_empty())
        .then_some(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_once_then_hits_and_rebuilds_what_is_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let path = entry_path(dir.path(), "kernel source", "sm_87", "nvrtc-12.6");
        let bin = b"\x7fELF compiled".to_vec();
        let (got, o) = load_or_build(&path, || Ok(bin.clone())).unwrap();
        assert_eq!((got.as_slice(), o), (bin.as_slice(), CacheOutcome::Built));
        let (got, o) = load_or_build(&path, || panic!("a valid entry must not be rebuilt")).unwrap();
        assert_eq!((got.as_slice(), o), (bin.as_slice(), CacheOutcome::Hit));

        // Every kind of damage is caught: a flipped payload bit, truncation, an empty file.
        let good = std::fs::read(&path).unwrap();
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        for damaged in [flipped, good[..good.len() - 3].to_vec(), vec![]] {
            std::fs::write(&path, damaged).unwrap();
            let (got, o) = load_or_build(&path, || Ok(bin.clone())).unwrap();
            assert_eq!((got.as_slice(), o), (bin.as_slice(), CacheOutcome::Rebuilt));
            assert_eq!(std::fs::read(&path).unwrap(), good, "the damaged entry is replaced");
        }
    }

    #[test]
    fn keys_separate_source_arch_and_compiler() {
        let d = Path::new("/c");
        let p = entry_path(d, "a", "sm_87", "nvrtc-12.6");
        assert_ne!(p, entry_path(d, "b", "sm_87", "nvrtc-12.6"));
        assert_ne!(p, entry_path(d, "a", "sm_72", "nvrtc-12.6"));
        assert_ne!(p, entry_path(d, "a", "sm_87", "nvrtc-12.8"));
        // FNV-1a reference values (the published test vectors).
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn a_failed_build_leaves_no_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = entry_path(dir.path(), "s", "sm_90", "nvrtc-12.6");
        let err =
            load_or_build(&path, || Err(crate::Error::KernelCompile { arch: "sm_90".into(), log: "boom".into() }));
        assert!(err.is_err());
        assert!(!path.exists());
    }
}
