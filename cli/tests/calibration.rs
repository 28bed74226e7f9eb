//! `calibrate`, `selftest`, `inspect --extract` and `--memory-budget` through the real binary:
//! exit codes and messages.

mod common;

use common::{brenier, fails_with, s};

fn asset(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets").join(name)
}

#[test]
fn selftest_of_a_bundle_without_a_record_fails_and_says_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.brn");
    std::fs::copy(asset("demo.brn"), &plain).unwrap();
    let (_, text) = brenier(&["inspect", s(&plain), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let names: Vec<String> =
        v["sections"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap().to_string()).collect();
    let record: Vec<&str> = names.iter().map(String::as_str).filter(|n| n.starts_with("calibration")).collect();
    brenier::bundle::rewrite_sections(&plain, vec![], &record).unwrap();
    fails_with(&["selftest", "--bundle", s(&plain)], &["no calibration record", "brenier calibrate"], None);
}

#[test]
fn the_shipped_bundle_is_calibrated_and_passes_its_selftest() {
    let (ok, text) = brenier(&["selftest", "--bundle", s(&asset("demo.brn")), "--threads", "2"]);
    assert!(ok, "{text}");
    // Six judged checks (the shipped bundle's neural maps add theirs) and latency for
    // information; in f32 nothing is skipped.
    assert!(text.contains("all 6 checks passed") && !text.contains("FAIL") && !text.contains("SKIP"), "{text}");
    assert!(text.contains("INFO  latency"), "{text}");
    assert!(text.contains("PASS  neural map parity (f32) vs f32 reference: a->b, b->a"), "{text}");
    let (ok, text) = brenier(&["inspect", s(&asset("demo.brn"))]);
    assert!(ok && text.contains("recommended on cpu-x86_64"), "{text}");
}

#[test]
fn a_memory_budget_below_the_estimate_refuses_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.png");
    let input = asset("demo-inputs").join("7-000.png");
    let (bundle, input_s, out_s) = (s(&asset("demo.brn")).to_string(), s(&input).to_string(), s(&out).to_string());
    let translate = |extra: &[&str]| -> Vec<String> {
        let base = ["translate", "--bundle", &bundle, "--input", &input_s, "--output", &out_s];
        base.iter().chain(extra).map(|a| a.to_string()).collect()
    };
    let refused = translate(&["--memory-budget", "2"]);
    fails_with(
        &refused.iter().map(String::as_str).collect::<Vec<_>>(),
        &["needs about", "memory budget is 2.0 MiB", "bundle", "--batch"],
        Some(&out),
    );
    let allowed = translate(&["--memory-budget", "4096", "--steps", "2"]);
    let (ok, text) = brenier(&allowed.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok && out.exists(), "{text}");
}

#[test]
fn extract_writes_the_verified_section_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.onnx");
    let (ok, text) = brenier(&["inspect", s(&asset("demo.brn")), "--extract", "net.a", "--output", s(&out)]);
    assert!(ok, "{text}");
    let b = brenier::Bundle::open(asset("demo.brn")).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), b.bytes("net.a").unwrap());
    fails_with(
        &["inspect", s(&asset("demo.brn")), "--extract", "no.such", "--output", s(&dir.path().join("x"))],
        &["no section `no.such`"],
        Some(&dir.path().join("x")),
    );
}
