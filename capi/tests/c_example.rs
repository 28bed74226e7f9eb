//! examples/c/translate.c, built with the system C compiler against the real library, shared and
//! static, and run on the shipped demo bundle and inputs (assets/demo-inputs, read into model
//! space as `brenier translate` reads them): its output is the Rust API's translation (the call
//! the CLI's `translate` makes) bit for bit. And, ignored by default for its minutes, the C
//! lifecycle's memory over 1 000 open → translate → close cycles (tests/leak.c).

use std::path::{Path, PathBuf};
use std::process::Command;

use runtime::backend::{self, BackendKind, Precision};
use runtime::bundle::Bundle;
use runtime::io::batch::{read_batch, ReadOptions};
use runtime::io::npy;
use runtime::pipeline::{Silent, TranslateOptions};
use runtime::Engine;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds libbrenier.so and libbrenier.a in this test run's profile and returns their paths as
/// cargo reports them: `cargo test` builds a package's library for its tests as an rlib only,
/// never its C artifacts. The build asks for the workspace's libraries and tests, as `cargo test
/// --workspace` does, so it resolves the same features and reuses every artifact that run
/// built; `-p brenier-capi` alone would resolve shared crates (half, log, smallvec, …) with
/// fewer features and compile tract a second time.
fn build_library() -> (PathBuf, PathBuf) {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args(["build", "--quiet", "--message-format=json", "--workspace", "--lib", "--tests"]).current_dir(root());
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cargo.arg("--release");
    }
    let out = run(&mut cargo);
    let files: Vec<PathBuf> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "brenier")
        .filter(|m| m["package_id"].as_str().is_some_and(|p| p.contains("/capi")))
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .collect();
    let find = |ext: &str| {
        files
            .iter()
            .find(|f| f.extension().is_some_and(|e| e == ext))
            .unwrap_or_else(|| panic!("cargo built no libbrenier.{ext}: {files:?}"))
            .clone()
    };
    (find("so"), find("a"))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed: {text}");
    text
}

#[test]
fn the_c_example_translates_the_demo_inputs_to_the_rust_apis_bits() {
    let (root, (shared_lib, archive)) = (root(), build_library());
    let lib = shared_lib.parent().unwrap().to_path_buf();
    let tmp = tempfile::tempdir().unwrap();
    let bundle_path = root.join("assets/demo.brn");
    let m = Bundle::open(&bundle_path).unwrap().manifest().clone();
    let inputs =
        read_batch(&root.join("assets/demo-inputs"), m.image, m.normalization, ReadOptions::default()).unwrap();
    let img = m.image;
    npy::write(&tmp.path().join("in.npy"), &[inputs.count, img.channels, img.height, img.width], &inputs.data).unwrap();

    let engine =
        Engine::new(Bundle::open(&bundle_path).unwrap(), backend::open(BackendKind::Cpu, Precision::F32, 0).unwrap())
            .unwrap();
    let want =
        engine.translate(&inputs.data, &TranslateOptions { steps: Some(10), ..Default::default() }, &Silent).unwrap();

    let lib_s = lib.to_str().unwrap();
    let rpath = format!("-Wl,-rpath,{lib_s}");
    let shared = vec!["-L", lib_s, "-lbrenier", rpath.as_str()];
    // The system libraries a Rust static library needs on linux-gnu (rustc --print native-static-libs).
    let mut static_ = vec![archive.to_str().unwrap()];
    static_.extend(["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl", "-lc"]);
    for (name, link) in [("shared", shared), ("static", static_)] {
        let exe = tmp.path().join(format!("translate-{name}"));
        run(Command::new("cc")
            .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(root.join("capi/include"))
            .arg(root.join("examples/c/translate.c"))
            .args(&link)
            .arg("-o")
            .arg(&exe));
        let out = tmp.path().join(format!("out-{name}.f32"));
        let said = run(Command::new(&exe).arg(&bundle_path).arg(tmp.path().join("in.npy")).arg(&out).arg("10"));
        assert!(said.contains(&format!("{} images, 20 NFE", inputs.count)), "{name}: {said}");
        let bytes = std::fs::read(&out).unwrap();
        let got: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        assert_eq!(got.len(), want.images.len(), "{name}: output size");
        let same = got.iter().zip(&want.images).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{name}: the C example's output differs from the Rust API's");
    }
}

/// 1 000 open → translate → close cycles through the shared library leave the resident set
/// where 200 warm-up cycles left it, within 1 MiB. Every cycle prepares both networks again, so
/// this takes minutes: `cargo test -p brenier-capi --test c_example -- --ignored`.
#[test]
#[ignore]
fn a_thousand_open_translate_close_cycles_leave_memory_flat() {
    let (root, (shared_lib, _)) = (root(), build_library());
    let lib = shared_lib.parent().unwrap().to_str().unwrap().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let exe = tmp.path().join("leak");
    run(Command::new("cc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(root.join("capi/include"))
        .arg(root.join("capi/tests/leak.c"))
        .args(["-L", &lib, "-lbrenier", &format!("-Wl,-rpath,{lib}"), "-o"])
        .arg(&exe));
    let said = run(Command::new(&exe).arg(root.join("assets/demo.brn")).arg("1000"));
    let kib: Vec<i64> = said.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    let [before, after] = kib[..] else { panic!("unexpected output: {said}") };
    eprintln!("resident set {before} KiB after the warm-up, {after} KiB after 1000 cycles");
    assert!(before > 0 && after - before <= 1024, "grew by {} KiB over 1000 cycles", after - before);
}
