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

    /// [`SmallFs::mount`] for a test that needs it. Where mounting is not allowed the test
    /// reports itself skipped on the terminal (written past the test harness's capture, so
    /// `cargo test` shows it even when the test passes) and returns `None`; with
    /// `BRENIER_REQUIRE_TMPFS=1` (as `.ci/run` sets) it fails instead, so CI cannot skip it.
    pub fn mount_or_skip(kib: usize, test: &str) -> Option<SmallFs> {
        if let Some(fs) = SmallFs::mount(kib) {
            return Some(fs);
        }
        let why = "cannot mount a tmpfs here (needs root)";
        if std::env::var_os("BRENIER_REQUIRE_TMPFS").is_some_and(|v| v == "1") {
            panic!("{test}: {why}, and BRENIER_REQUIRE_TMPFS=1 requires it");
        }
        use std::io::Write;
        let _ =
            writeln!(std::io::stderr().lock(), "SKIPPED {test}: {why}; BRENIER_REQUIRE_TMPFS=1 makes this a failure");
        None
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
