//! A bundle file that changes while it is memory-mapped. Truncating a mapped file makes every
//! read of the lost pages raise SIGBUS, and an in-place overwrite changes bytes that were already
//! validated. The reader re-checks the file (length and modification time) before every payload
//! access and before a pipeline returns, and answers with `ChangedOnDisk` instead; replacing
//! by rename (how brenier writes) is safe; `LoadMode::Read` (`--no-mmap`) is immune.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use brenier::backend::CpuBackend;
use brenier::bundle::{Bundle, LoadMode};
use brenier::pipeline::{TranslateMethod, TranslateOptions};
use brenier::{Engine, Error};
use brenier_tests::oracle_bundle;

fn copy_of_oracle(dir: &Path) -> (PathBuf, Vec<u8>) {
    let bytes = std::fs::read(&oracle_bundle().0).unwrap();
    let path = dir.join("model.brn");
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

fn truncate(path: &Path, len: u64) {
    OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

fn assert_changed(r: brenier::Result<impl std::fmt::Debug>, what: &str) {
    match r {
        Err(e @ Error::ChangedOnDisk { .. }) => {
            let text = e.to_string();
            assert!(text.contains("--no-mmap") && text.contains("renaming"), "{what}: {text}");
        }
        other => panic!("{what}: expected ChangedOnDisk, got {other:?}"),
    }
}

#[test]
fn truncated_while_mapped_is_a_typed_error_not_sigbus() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = copy_of_oracle(dir.path());
    let b = Bundle::open(&path).unwrap();
    let targets = b.manifest().ot_maps[0].targets.clone();
    truncate(&path, bytes.len() as u64 / 2);
    // Reading these pages through the mapping now would kill the process with SIGBUS.
    assert_changed(b.bytes(&targets), "section read after truncation");
    assert_changed(b.check_unchanged(), "explicit check");
}

#[test]
fn overwritten_in_place_at_the_same_size_is_noticed() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = copy_of_oracle(dir.path());
    let b = Bundle::open(&path).unwrap();
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(bytes.len() as u64 - 16)).unwrap();
    f.write_all(&[0x55; 16]).unwrap();
    // As cp or rsync --inplace would leave it; set explicitly so a coarse clock cannot hide it.
    f.set_modified(SystemTime::now() + Duration::from_secs(5)).unwrap();
    drop(f);
    assert_changed(b.verify("net.a"), "read after an in-place overwrite");
}

#[test]
fn replaced_by_rename_keeps_serving_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = copy_of_oracle(dir.path());
    let b = Bundle::open(&path).unwrap();
    let other = brenier_tests::bundle_edit::without_ot_maps(&bytes);
    brenier::io::write_atomic(&path, &other).unwrap();
    // The mapping holds the old inode: everything still reads, checksums and all.
    for s in b.sections() {
        b.verify(&s.name).unwrap();
    }
    b.check_unchanged().unwrap();
    assert_eq!(Bundle::open(&path).unwrap().manifest().ot_maps.len(), 0);
}

#[test]
fn read_into_memory_is_immune() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = copy_of_oracle(dir.path());
    let b = Bundle::open_with(&path, LoadMode::Read).unwrap();
    truncate(&path, 100);
    b.check_unchanged().unwrap();
    let original = Bundle::from_bytes(&bytes).unwrap();
    for s in b.sections() {
        assert_eq!(b.bytes(&s.name).unwrap(), original.bytes(&s.name).unwrap());
    }
}

#[test]
fn a_pipeline_refuses_results_from_a_file_truncated_mid_run() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = copy_of_oracle(dir.path());
    let engine = Engine::new(Bundle::open(&path).unwrap(), Box::new(CpuBackend::new(1).unwrap())).unwrap();
    let opts = TranslateOptions {
        method: TranslateMethod::OtAld,
        from: brenier::NetKey::A,
        t: None,
        steps: Some(2),
        eta: None,
        tau: None,
        seed: 0,
    };
    let x = vec![0.1f32; engine.dim()];
    engine.translate(&x, &opts, &brenier::pipeline::Silent).unwrap();
    truncate(&path, bytes.len() as u64 - 64);
    assert_changed(engine.translate(&x, &opts, &brenier::pipeline::Silent), "translate after truncation");
}
