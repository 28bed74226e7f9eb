//! Atomic file replacement, the one write path for every file brenier produces (bundles, images,
//! arrays, reports). The bytes go to a temporary file in the target's directory, which is
//! fsynced and then renamed over the target, and the directory is fsynced. A reader of the
//! target sees the old file or the new one, never a mix, whatever happens to the writer.
//!
//! Failure cases and what each leaves on disk:
//! - an error while writing (full disk, I/O error, a failing producer): the temporary file is
//!   removed and the target is untouched;
//! - the writer killed outright (SIGKILL, power loss): the target is untouched, but the
//!   temporary file `.<name>.tmp-<pid>-<n>` stays. The next write of the same target removes
//!   such leftovers when their process is gone (checked through `/proc`, so on Linux only).
//!
//! Replacing by rename also keeps a bundle that another process has memory-mapped intact: the
//! mapping holds the old inode, which lives until it is unmapped.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Distinguishes temporary files of concurrent writes from one process.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Large sequential writes go through one buffer of this size.
const BUFFER: usize = 1 << 20;

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes)).map(|_| ())
}

/// Replaces `path` atomically with what `fill` writes, and returns the number of bytes written.
/// `fill` sees a buffered writer; an error from it (or from the file system) aborts the write
/// and leaves `path` as it was.
pub fn write_atomic_with(path: &Path, fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<u64> {
    let mut file = AtomicFile::create(path)?;
    let mut counting = Counting { inner: &mut file.writer, written: 0 };
    let outcome = fill(&mut counting);
    let written = counting.written;
    if let Err(e) = outcome {
        return Err(write_error(path, e, written));
    }
    file.commit(written)?;
    Ok(written)
}

/// A temporary file that becomes `path` on [`commit`](AtomicFile::commit) and disappears if
/// dropped before that.
struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    writer: BufWriter<File>,
    committed: bool,
}

impl AtomicFile {
    fn create(path: &Path) -> Result<AtomicFile> {
        let dir = parent_dir(path);
        let name = path
            .file_name()
            .ok_or_else(|| Error::input(path, "output path has no file name"))?
            .to_string_lossy()
            .into_owned();
        remove_stale_temporaries(dir, &name);
        let tmp = dir.join(format!(
            "{}{}-{}",
            temp_prefix(&name),
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        ));
        let file = File::create(&tmp).map_err(|e| write_error(path, e, 0))?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            tmp,
            writer: BufWriter::with_capacity(BUFFER, file),
            committed: false,
        })
    }

    fn commit(mut self, written: u64) -> Result<()> {
        let path = self.path.clone();
        let fail = |e| write_error(&path, e, written);
        self.writer.flush().map_err(fail)?;
        // fsync before rename: otherwise a crash right after the rename can leave the new name
        // pointing at a file whose data never reached the disk.
        self.writer.get_ref().sync_all().map_err(fail)?;
        std::fs::rename(&self.tmp, &self.path).map_err(fail)?;
        self.committed = true;
        // Makes the rename itself durable. Some file systems cannot fsync a directory; the
        // file is complete either way, so that failure is not the user's problem.
        if let Ok(d) = File::open(parent_dir(&self.path)) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Counts what the producer wrote, for the "ran out after N bytes" message.
struct Counting<'a, W: Write> {
    inner: &'a mut W,
    written: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

fn temp_prefix(name: &str) -> String {
    format!(".{name}.tmp-")
}

/// Removes `.<name>.tmp-<pid>-<n>` files whose writer process no longer exists: what a writer
/// killed mid-write leaves behind. Files of live processes (including this one) are kept.
fn remove_stale_temporaries(dir: &Path, name: &str) {
    if !Path::new("/proc/self").exists() {
        return; // no way to tell dead writers from live ones
    }
    let prefix = temp_prefix(name);
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            log::info!("removing {} left by an interrupted write", entry.path().display());
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A full device gets its own error: the user's fix (free space) differs from an I/O fault.
fn write_error(path: &Path, e: std::io::Error, written: u64) -> Error {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge => {
            Error::NoSpace { path: path.to_path_buf(), written, source: e }
        }
        _ => Error::Write { path: path.to_path_buf(), source: e },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_temporaries_of_dead_writers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("model.brn");
        // A process that has exited: its pid names no live process any more.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = dir.path().join(format!(".model.brn.tmp-{dead}-0"));
        let live = dir.path().join(format!(".model.brn.tmp-{}-999", std::process::id()));
        let other_target = dir.path().join(format!(".other.brn.tmp-{dead}-0"));
        for p in [&stale, &live, &other_target] {
            std::fs::write(p, b"partial").unwrap();
        }
        write_atomic(&target, b"complete").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"complete");
        assert!(!stale.exists(), "a dead writer's temporary file was kept");
        assert!(live.exists(), "a live writer's temporary file was removed");
        assert!(other_target.exists(), "another target's temporary file was touched");
    }

    #[test]
    fn a_failing_producer_leaves_nothing_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.npy");
        let err = write_atomic_with(&target, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("producer failed"))
        })
        .unwrap_err();
        assert!(matches!(err, Error::Write { ref path, .. } if *path == target), "{err:?}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
