//! Fault injection for the write path: a writer that fails after a given number of bytes with
//! a chosen error (a full disk, a yanked SD card, an I/O error), a really full file system, and
//! the listing of what a failed write left behind.

use std::io::{Error, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct FailAfter<'a> {
    inner: &'a mut dyn Write,
    left: u64,
    kind: ErrorKind,
}

impl<'a> FailAfter<'a> {
    /// Passes `limit` bytes through to `inner`, then fails every write with `kind`.
    pub fn new(inner: &'a mut dyn Write, limit: u64, kind: ErrorKind) -> Self {
        FailAfter { inner, left: limit, kind }
    }
}

impl Write for FailAfter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(Error::new(self.kind, "injected fault"));
        }
        // A short write up to the limit, as a real device does before it fills up.
        let n = buf.len().min(self.left as usize);
        let n = self.inner.write(&buf[..n])?;
        self.left -= n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A tmpfs of a few KiB mounted for the life of the value: a file system that really fills up.
/// Mounting needs root; `mount` returns `None` where that is not allowed.
pub struct SmallFs(tempfile::TempDir);

impl SmallFs {
    pub fn mount(kib: usize) -> Option<SmallFs> {
        let dir = tempfile::tempdir().ok()?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(SmallFs(dir))
    }
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// Every entry of `dir` other than `keep`: what a failed write left behind.
pub fn strays(dir: &Path, keep: &[&Path]) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| !keep.iter().any(|k| k == p)).collect())
        .unwrap_or_default()
}
