//! Device profiles and backend selection through the real binary: `targets`, `--target`, a
//! profile's memory budget, and what a build without CUDA says when asked for it.

mod common;

use common::{brenier, fails_with, s};

fn argv(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn asset(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets").join(name)
}

#[test]
fn targets_lists_every_shipped_profile() {
    let (ok, text) = brenier(&["targets", "--json"]);
    assert!(ok, "{text}");
    let v: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = v.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["jetson-orin", "jetson-xavier", "x86-cuda", "cpu-aarch64", "cpu-x86_64"]);
    let (ok, text) = brenier(&["targets"]);
    assert!(ok && text.contains("sm_87") && text.contains("2.31"), "{text}");
}

#[test]
fn a_target_applies_its_settings_and_its_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.png");
    let input = asset("demo-inputs").join("7-000.png");
    let (bundle, input_s, out_s) = (s(&asset("demo.brn")).to_string(), s(&input).to_string(), s(&out).to_string());
    let run = |extra: &[&str]| -> Vec<String> {
        let base = ["translate", "--bundle", &bundle, "--input", &input_s, "--output", &out_s, "--steps", "2"];
        base.iter().chain(extra).map(|a| a.to_string()).collect()
    };
    let (ok, text) = brenier(&argv(&run(&["--target", "cpu-x86_64"])));
    assert!(ok && out.exists(), "{text}");
    std::fs::remove_file(&out).unwrap();

    // A board with 1 MiB: the profile's budget refuses before any work, naming the profile.
    let tiny = dir.path().join("tiny-board.toml");
    let profile = std::fs::read_to_string(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../targets/cpu-x86_64.toml"),
    )
    .unwrap()
    .replace("name = \"cpu-x86_64\"", "name = \"tiny-board\"")
    .replace("memory_budget_mib = 4096", "memory_budget_mib = 1");
    std::fs::write(&tiny, profile).unwrap();
    let refused = run(&["--target", s(&tiny)]);
    fails_with(&argv(&refused), &["target tiny-board", "needs about", "--batch"], Some(&out));
    // An explicit flag wins over the profile.
    let (ok, text) = brenier(&argv(&run(&["--target", s(&tiny), "--memory-budget", "4096"])));
    assert!(ok && out.exists(), "{text}");

    fails_with(&argv(&run(&["--target", "jetson-nano"])), &["unknown target `jetson-nano`", "jetson-orin"], None);
}

#[test]
fn cuda_requests_fail_or_fall_back_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.png");
    let input = asset("demo-inputs").join("7-000.png");
    let bundle = asset("demo.brn");
    let base = ["translate", "--bundle", s(&bundle), "--input", s(&input), "--output", s(&out), "--steps", "2"];
    let with = |extra: &[&'static str]| -> Vec<&str> { base.iter().copied().chain(extra.iter().copied()).collect() };
    // Without a usable CUDA (this build, or this machine) `cuda` is an error naming the cause
    // and the way out; `auto` runs on the CPU.
    fails_with(&with(&["--backend", "cuda"]), &["CUDA backend cannot start", "--backend cpu"], Some(&out));
    let (ok, text) = brenier(&with(&["--backend", "auto"]));
    assert!(ok && out.exists(), "{text}");
    assert!(text.contains("CUDA unavailable") && text.contains("running on the CPU"), "{text}");
}

/// A profile's f16 on a CPU that would only emulate it runs f32 and says so; an explicit
/// `--precision f16` is obeyed. (Checked where f16 is emulated: x86_64; on an aarch64 core with
/// FP16 the profile's f16 is used as it is.)
#[test]
fn a_profile_f16_on_a_cpu_without_f16_falls_back_to_f32() {
    if brenier::backend::cpu::f16_native() {
        use std::io::Write;
        let _ = writeln!(std::io::stderr().lock(), "SKIPPED a_profile_f16_…: this CPU has native f16");
        return;
    }
    let bundle = brenier_tests::oracle_bundle().0.clone();
    let run = |extra: &[&str]| {
        let mut args = vec!["bench", "--bundle", s(&bundle), "--eval-only", "--repeat", "1", "--json"];
        args.extend_from_slice(extra);
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_brenier"))
            .args(&args)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (v["precision"].as_str().unwrap().to_string(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let (p, log) = run(&["--target", "cpu-aarch64"]);
    assert_eq!(p, "f32", "{log}");
    assert!(log.contains("only emulates; running in f32"), "{log}");
    let (p, _) = run(&["--target", "cpu-aarch64", "--precision", "f16"]);
    assert_eq!(p, "f16");
}
