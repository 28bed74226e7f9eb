//! `brenier export` under faults: into a file system that fills up, and killed at arbitrary
//! moments. The target path holds the old bundle or a complete new one, never a partial file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use brenier::bundle::Bundle;
use brenier_tests::bundle_edit::without_ot_maps;
use brenier_tests::faults::{strays, SmallFs};
use brenier_tests::oracle_bundle;

/// The oracle bundle's two networks as ONNX files in `dir`.
fn nets(dir: &Path) -> (PathBuf, PathBuf) {
    let b = Bundle::open(&oracle_bundle().0).unwrap();
    let (a, bb) = (dir.join("a.onnx"), dir.join("b.onnx"));
    std::fs::write(&a, b.net_bytes(brenier::NetKey::A).unwrap()).unwrap();
    std::fs::write(&bb, b.net_bytes(brenier::NetKey::B).unwrap()).unwrap();
    (a, bb)
}

fn export(a: &Path, b: &Path, out: &Path, stderr: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_brenier"))
        .args(["export", "--net-a"])
        .arg(a)
        .arg("--net-b")
        .arg(b)
        .arg("-o")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

#[test]
fn export_command_into_a_full_file_system_says_so() {
    let Some(fs) = SmallFs::mount_or_skip(256, "export_command_into_a_full_file_system_says_so") else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = nets(dir.path());
    let out = fs.path().join("model.brn");
    let o = export(&a, &b, &out, Stdio::piped()).wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && !text.contains("panicked"), "{text}");
    assert!(text.contains("no space left") && text.contains("left unchanged"), "{text}");
    assert!(!out.exists() && strays(fs.path(), &[]).is_empty(), "a partial file was left");
}

/// `brenier export` SIGKILLed while its temporary file exists — the window in which the new
/// bundle is being written — leaves the old bundle or a complete new one, never a partial file;
/// the dead writer's temporary file is removed by the next export to the same path.
#[test]
fn export_command_killed_while_writing_leaves_old_or_complete_new() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = nets(dir.path());
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("model.brn");
    let old = without_ot_maps(&std::fs::read(&oracle_bundle().0).unwrap());
    let temporary = || {
        std::fs::read_dir(out_dir.path())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".model.brn.tmp-"))
    };
    let (mut mid_write, mut kept_old, mut got_new) = (0, 0, 0);
    for _ in 0..6 {
        std::fs::write(&target, &old).unwrap();
        let mut child = export(&a, &b, &target, Stdio::null());
        // Validation, freezing and the probe runs come first; the write is the last moment. As
        // soon as the temporary file appears the writer is frozen (SIGSTOP), so whether the kill
        // lands mid-write is decided by looking, not by timing.
        let seen = loop {
            if temporary() {
                // SAFETY: sends a signal to our own child, which has not been waited for.
                unsafe { libc::kill(child.id() as i32, libc::SIGSTOP) };
                break temporary();
            }
            if child.try_wait().unwrap().is_some() {
                break false;
            }
            std::thread::sleep(std::time::Duration::from_micros(50));
        };
        let _ = child.kill();
        let _ = child.wait();
        mid_write += seen as usize;
        let now = std::fs::read(&target).unwrap();
        if now == old {
            kept_old += 1;
        } else {
            // Not the old file: it must be a complete new bundle (the kill came after the rename).
            Bundle::from_bytes(&now).expect("a partial bundle was left at the target path");
            got_new += 1;
        }
    }
    println!("export killed 6 times: {mid_write} while writing, old kept {kept_old}, complete new {got_new}");
    assert!(mid_write >= 1, "no kill landed while the temporary file existed");
    // A writer killed while its temporary file existed had not renamed it: the old file stays.
    assert!(kept_old >= mid_write, "{mid_write} kills mid-write but only {kept_old} old bundles kept");
    // A full export afterwards replaces the bundle and removes every dead writer's temporary.
    assert!(export(&a, &b, &target, Stdio::null()).wait().unwrap().success());
    Bundle::from_bytes(&std::fs::read(&target).unwrap()).unwrap();
    assert!(strays(out_dir.path(), &[&target]).is_empty(), "{:?}", strays(out_dir.path(), &[&target]));
}

/// A folder output that runs out of space part-way (a tmpfs that holds four of the eight
/// images): the command fails saying so, and no folder, no partial set, no temporary is left.
#[test]
fn translate_into_a_folder_that_fills_up_leaves_no_partial_set() {
    let Some(fs) = SmallFs::mount_or_skip(16, "translate_into_a_folder_that_fills_up_leaves_no_partial_set") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x.npy");
    brenier::io::npy::write(&x, &[8, 1, 2, 3], &brenier::rng::NoiseStream::new(1, 0).normal(48)).unwrap();
    let out = fs.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_brenier"))
        .args(["translate", "--quiet", "--steps", "2", "--bundle"])
        .arg(&oracle_bundle().0)
        .arg("--input")
        .arg(&x)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && !text.contains("panicked"), "{text}");
    assert!(text.contains("no space left"), "{text}");
    assert!(!out.exists(), "a partial output folder was left");
    assert!(strays(fs.path(), &[]).is_empty(), "temporary files left: {:?}", strays(fs.path(), &[]));
}
