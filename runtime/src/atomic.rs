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

/// Writes a set of files into the folder `dir` so that a failure part-way leaves no partial
/// set: every file is written (and fsynced) into a temporary folder first, and only when all of
/// them are complete do they move into place.
/// - `dir` does not exist: the temporary folder is a sibling of `dir` and is renamed to it, one
///   atomic step; a reader sees no folder or the whole set.
/// - `dir` exists: the temporary folder is made inside it (so on its file system, whatever is
///   mounted where) and each file is renamed from there into `dir`, replacing a file of the same
///   name; other files in `dir` are left alone. These renames stay within one folder of one file
///   system and need no space; a name already taken by a folder is refused before any of them.
///   Only a kill during this last pass can leave part of the new set in place, the rest staying
///   in the temporary folder, which the next write into `dir` removes.
///
/// `fill(i, w)` writes file `i` of `names`; an error from it (or from the file system) removes
/// the temporary folder and leaves `dir` as it was.
pub fn write_folder_atomic(
    dir: &Path,
    names: &[String],
    mut fill: impl FnMut(usize, &mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    if let Some(bad) = names.iter().find(|n| n.is_empty() || n.contains(['/', '\\']) || n.starts_with('.')) {
        return Err(Error::input(dir, format!("output file name `{bad}` is not a plain file name")));
    }
    let exists = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => true,
        Ok(_) => return Err(Error::input(dir, "exists and is not a folder; give a folder, a .npy or a .png")),
        Err(_) => false,
    };
    let (home, stem) = if exists {
        if let Some(taken) = names.iter().find(|n| dir.join(n).is_dir()) {
            return Err(Error::input(dir.join(taken), "is a folder; an output image cannot replace it"));
        }
        (dir.to_path_buf(), "brenier-output".to_string())
    } else {
        let name = dir.file_name().ok_or_else(|| Error::input(dir, "output folder has no name"))?;
        let parent = parent_dir(dir);
        std::fs::create_dir_all(parent).map_err(|e| write_error(dir, e, 0))?;
        (parent.to_path_buf(), name.to_string_lossy().into_owned())
    };
    remove_stale_temporaries(&home, &stem);
    let staging = TempDir::create(home.join(format!(
        "{}{}-{}",
        temp_prefix(&stem),
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    )))
    .map_err(|e| write_error(dir, e, 0))?;
    let mut written = 0u64;
    for (i, file_name) in names.iter().enumerate() {
        let path = staging.path.join(file_name);
        let fail = |e, written| write_error(&dir.join(file_name), e, written);
        let file = File::create(&path).map_err(|e| fail(e, written))?;
        let mut counting = Counting { inner: &mut BufWriter::with_capacity(BUFFER, file), written: 0 };
        let outcome = fill(i, &mut counting).and_then(|_| counting.flush());
        written += counting.written;
        outcome.map_err(|e| fail(e, written))?;
        counting.inner.get_ref().sync_all().map_err(|e| fail(e, written))?;
    }
    if exists {
        for file_name in names {
            std::fs::rename(staging.path.join(file_name), dir.join(file_name))
                .map_err(|e| write_error(&dir.join(file_name), e, written))?;
        }
    } else {
        std::fs::rename(&staging.path, dir).map_err(|e| write_error(dir, e, written))?;
        staging.keep();
    }
    if let Ok(d) = File::open(&home) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A temporary folder removed (with what it holds) when dropped, unless kept.
struct TempDir {
    path: PathBuf,
    keep: std::cell::Cell<bool>,
}

impl TempDir {
    fn create(path: PathBuf) -> std::io::Result<TempDir> {
        std::fs::create_dir(&path)?;
        Ok(TempDir { path, keep: std::cell::Cell::new(false) })
    }
    /// It was renamed into place: nothing to remove.
    fn keep(&self) {
        self.keep.set(true);
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep.get() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
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

/// Removes `.<name>.tmp-<pid>-<n>` files (and folders, from [`write_folder_atomic`]) whose
/// writer process no longer exists: what a writer killed mid-write leaves behind. Those of live
/// processes (including this one) are kept.
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
            let path = entry.path();
            let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
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

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{i:04}.png")).collect()
    }

    #[test]
    fn a_folder_write_failing_part_way_leaves_no_folder_and_an_existing_one_unchanged() {
        let root = tempfile::tempdir().unwrap();
        let fresh = root.path().join("out");
        let existing = root.path().join("kept");
        std::fs::create_dir(&existing).unwrap();
        std::fs::write(existing.join("0002.png"), b"old").unwrap();
        std::fs::write(existing.join("other.txt"), b"mine").unwrap();
        for dir in [&fresh, &existing] {
            // File 5 of 8 fails after writing some bytes, as a full disk would.
            let err = write_folder_atomic(dir, &names(8), |i, w| {
                w.write_all(b"partial")?;
                if i == 4 {
                    return Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "injected"));
                }
                w.write_all(b" image")
            })
            .unwrap_err();
            assert!(matches!(err, Error::NoSpace { ref path, .. } if path.ends_with("0004.png")), "{err:?}");
        }
        assert!(!fresh.exists(), "a failed write created the folder");
        let mut kept: Vec<_> = std::fs::read_dir(&existing).unwrap().map(|e| e.unwrap().file_name()).collect();
        kept.sort();
        assert_eq!(kept, ["0002.png", "other.txt"]);
        assert_eq!(std::fs::read(existing.join("0002.png")).unwrap(), b"old");
        let left: Vec<_> = std::fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 1, "temporary folder left behind: {left:?}");
        assert_eq!(std::fs::read_dir(&existing).unwrap().count(), 2, "temporary folder left inside");

        // Without a fault the whole set lands, in a new folder and beside the old files.
        for dir in [&fresh, &existing] {
            write_folder_atomic(dir, &names(8), |i, w| write!(w, "image {i}")).unwrap();
            assert_eq!(std::fs::read(dir.join("0004.png")).unwrap(), b"image 4");
        }
        assert_eq!(std::fs::read_dir(&existing).unwrap().count(), 9);
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 2, "temporary folder left behind");
    }

    #[test]
    fn a_folder_write_into_an_existing_folder_stages_inside_it_and_cleans_up_after_a_killed_one() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out");
        std::fs::create_dir(&dir).unwrap();
        // What a writer killed mid-way leaves: its temporary folder, named for a dead process.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = dir.join(format!(".brenier-output.tmp-{dead}-0"));
        std::fs::create_dir(&stale).unwrap();
        std::fs::write(stale.join("0000.png"), b"partial").unwrap();
        // A path with no file name of its own (`.`) is an existing folder: fine.
        let dot = dir.join(".");
        write_folder_atomic(&dot, &names(2), |i, w| write!(w, "image {i}")).unwrap();
        assert!(!stale.exists(), "the killed writer's temporary folder was kept");
        let mut left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        left.sort();
        assert_eq!(left, ["0000.png", "0001.png"]);
        // An output name taken by a folder is refused before anything moves.
        std::fs::create_dir(dir.join("0002.png")).unwrap();
        let err = write_folder_atomic(&dir, &names(3), |_, w| w.write_all(b"new")).unwrap_err();
        assert!(err.to_string().contains("is a folder"), "{err}");
        assert_eq!(std::fs::read(dir.join("0000.png")).unwrap(), b"image 0", "an earlier file was replaced");
    }

    #[test]
    fn a_folder_write_refuses_names_that_leave_the_folder_and_a_file_in_its_place() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out");
        for bad in ["../x.png", "", ".hidden"] {
            assert!(write_folder_atomic(&dir, &[bad.to_string()], |_, _| Ok(())).is_err(), "{bad}");
        }
        std::fs::write(&dir, b"a file").unwrap();
        let err = write_folder_atomic(&dir, &names(1), |_, _| Ok(())).unwrap_err();
        assert!(err.to_string().contains("not a folder"), "{err}");
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
