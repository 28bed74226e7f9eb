//! Writes interrupted at any point leave the old bundle byte-identical, or no file, never a
//! partial one: a writer that fails after n bytes (every section boundary and every 4 KiB),
//! a real full file system (a small tmpfs), and a real child process SIGKILLed mid-write. The
//! same through the `brenier export` command: cli/tests/write_faults.rs.

use std::io::{BufRead, BufReader, ErrorKind};
use std::path::Path;
use std::process::{Command, Stdio};

use brenier::bundle::Bundle;
use brenier::bundle::Section;
use brenier::Error;
use brenier_tests::bundle_edit::{encode, sections_of, without_ot_maps};
use brenier_tests::faults::{strays, FailAfter, SmallFs};
use brenier_tests::oracle_bundle;

fn oracle_sections() -> Vec<Section> {
    sections_of(&Bundle::open(&oracle_bundle().0).unwrap())
}

fn old_bundle_bytes() -> Vec<u8> {
    without_ot_maps(&std::fs::read(&oracle_bundle().0).unwrap())
}

fn write_with_fault(path: &Path, sections: &[Section], limit: u64, kind: ErrorKind) -> brenier::Result<u64> {
    brenier::io::write_atomic_with(path, |w| {
        let mut f = FailAfter::new(w, limit, kind);
        brenier::bundle::write_to(&mut f, sections).map(|_| ()).map_err(|e| match e {
            Error::Stream(io) => io,
            other => std::io::Error::other(other.to_string()),
        })
    })
}

#[test]
fn failing_after_any_byte_count_leaves_the_old_file_or_none() {
    let sections = oracle_sections();
    let new_bytes = encode(&sections);
    let total = new_bytes.len() as u64;
    let mut cuts: Vec<u64> = (0..total).step_by(4096).collect();
    for e in Bundle::from_bytes(&new_bytes).unwrap().sections() {
        cuts.extend([e.offset - 1, e.offset, e.offset + 1, e.offset + e.len - 1]);
    }
    cuts.extend([1, 63, 64, 65, total - 1]);
    cuts.sort();
    cuts.dedup();
    let old = old_bundle_bytes();
    let dir = tempfile::tempdir().unwrap();
    let with_old = dir.path().join("model.brn");
    let fresh = dir.path().join("fresh.brn");
    std::fs::write(&with_old, &old).unwrap();
    for &n in &cuts {
        for (kind, disk_full) in [(ErrorKind::StorageFull, true), (ErrorKind::Other, false)] {
            for target in [&with_old, &fresh] {
                let err = write_with_fault(target, &sections, n, kind).unwrap_err();
                match (&err, disk_full) {
                    (Error::NoSpace { written, path, .. }, true) => {
                        assert_eq!(*written, n);
                        assert_eq!(path, target);
                        let text = err.to_string();
                        assert!(text.contains("free space") && text.contains("left unchanged"), "{text}");
                    }
                    (Error::Write { path, .. }, false) => assert_eq!(path, target),
                    _ => panic!("fault after {n} bytes ({kind:?}): wrong error {err:?}"),
                }
            }
            assert_eq!(std::fs::read(&with_old).unwrap(), old, "old bundle changed by a write failing at {n}");
            assert!(!fresh.exists(), "a write failing at {n} left {}", fresh.display());
            assert!(strays(dir.path(), &[&with_old]).is_empty(), "temporary files left after a failure at {n}");
        }
    }
    // And without a fault the same path writes the whole bundle.
    assert_eq!(write_with_fault(&with_old, &sections, u64::MAX, ErrorKind::Other).unwrap(), total);
    assert_eq!(std::fs::read(&with_old).unwrap(), new_bytes);
    println!("{} fault points × 2 error kinds × (old file, no file): old intact or none", cuts.len());
}

#[test]
fn a_full_file_system_is_a_typed_error_and_keeps_the_old_bundle() {
    const KIB: usize = 512;
    let Some(fs) = SmallFs::mount_or_skip(KIB, "a_full_file_system_is_a_typed_error_and_keeps_the_old_bundle") else {
        return;
    };
    let old = old_bundle_bytes();
    let sections = oracle_sections();
    let new_len = encode(&sections).len();
    // The old bundle fits; old and new together (the temporary file exists beside the old one
    // until the rename) do not.
    assert!(old.len() < KIB * 1024 && old.len() + new_len > KIB * 1024, "sizes do not exercise a full disk");
    let target = fs.path().join("model.brn");
    brenier::io::write_atomic(&target, &old).unwrap();
    let err = brenier::bundle::write_bundle(&target, &sections).unwrap_err();
    assert!(matches!(err, Error::NoSpace { .. }), "{err:?}");
    let text = format!("{:#}", anyhow_chain(&err));
    assert!(text.contains("no space left") && text.contains("model.brn"), "{text}");
    assert_eq!(std::fs::read(&target).unwrap(), old);
    assert!(strays(fs.path(), &[&target]).is_empty(), "temporary file left on the full file system");
    println!("ENOSPC on a {KIB} KiB tmpfs: {err}");
}

fn anyhow_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[test]
fn a_writer_killed_mid_write_leaves_the_old_file_and_the_next_write_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let src = &oracle_bundle().0;
    let new_bytes = std::fs::read(src).unwrap();
    let old = old_bundle_bytes();
    let target = dir.path().join("model.brn");
    // Kill points spread over the stream: in the header, the nets, the OT tensors.
    for kill_at in [8192u64, new_bytes.len() as u64 / 3, new_bytes.len() as u64 - 8192] {
        std::fs::write(&target, &old).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_slow_bundle_writer"))
            .arg(src)
            .arg(&target)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut reached = 0;
        while reached < kill_at {
            let line = lines.next().expect("writer ended early").unwrap();
            reached = line.strip_prefix("wrote ").and_then(|n| n.parse().ok()).unwrap_or(u64::MAX);
        }
        child.kill().unwrap(); // SIGKILL: no destructor, no cleanup runs
        let status = child.wait().unwrap();
        assert!(!status.success());
        assert_eq!(std::fs::read(&target).unwrap(), old, "killed after {reached} bytes: the old bundle changed");
        let leftovers = strays(dir.path(), &[&target]);
        assert_eq!(leftovers.len(), 1, "expected the killed writer's partial temporary file: {leftovers:?}");
        assert!(std::fs::metadata(&leftovers[0]).unwrap().len() >= reached.min(8192));
        // The next write of the same bundle removes the dead writer's temporary file.
        brenier::io::write_atomic(&target, &new_bytes).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), new_bytes);
        assert!(strays(dir.path(), &[&target]).is_empty(), "stale temporary file not cleaned up");
    }
}
