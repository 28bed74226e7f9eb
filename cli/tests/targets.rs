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
