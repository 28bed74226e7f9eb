//! The commands on the oracle bundle: determinism by seed, machine-readable outputs, shapes.

use std::path::Path;
use std::process::Command;

use brenier::io::npy;
use brenier_tests::oracle_bundle;

fn brenier(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_brenier")).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{args:?} failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn same_seed_same_bits_other_seed_other_bits() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = s(&oracle_bundle().0).to_string();
    let x = dir.path().join("x.npy");
    npy::write(&x, &[5, 1, 2, 3], &brenier::rng::NoiseStream::new(1, 0).normal(30)).unwrap();
    let run = |seed: &str, name: &str| {
        let out = dir.path().join(name);
        brenier(&[
            "translate",
            "--bundle",
            &bundle,
            "--eta",
            "0.7",
            "--seed",
            seed,
            "--quiet",
            "--input",
            s(&x),
            "--output",
            s(&out),
        ]);
        std::fs::read(out).unwrap()
    };
    let (a, b, c) = (run("4", "a.npy"), run("4", "b.npy"), run("5", "c.npy"));
    assert_eq!(a, b, "same seed must give identical bytes");
    assert_ne!(a, c, "η > 0 with another seed must give other samples");
    let g = |name: &str| {
        let out = dir.path().join(name);
        brenier(&["generate", "--bundle", &bundle, "--count", "6", "--seed", "9", "--quiet", "--output", s(&out)]);
        npy::read(&out).unwrap()
    };
    let (g1, g2) = (g("g1.npy"), g("g2.npy"));
    assert_eq!(g1.shape, vec![6, 1, 2, 3]);
    assert_eq!(g1.data, g2.data);
}

#[test]
fn inspect_and_bench_json_parse() {
    let bundle = s(&oracle_bundle().0).to_string();
    let v: serde_json::Value = serde_json::from_str(&brenier(&["inspect", &bundle, "--json"])).unwrap();
    assert!(v["sections"].as_array().unwrap().iter().all(|s| s["checksum_ok"] == true));
    assert_eq!(v["manifest"]["ot_maps"].as_array().unwrap().len(), 4);
    let b: serde_json::Value = serde_json::from_str(&brenier(&[
        "bench", "--bundle", &bundle, "--batch", "2", "--repeat", "3", "--steps", "5", "--json",
    ]))
    .unwrap();
    assert_eq!(b["end_to_end_nfe"], 10);
    assert!(b["network_eval"]["p50_ms"].as_f64().unwrap() > 0.0);
    assert!(b["ot_map"]["p99_ms"].as_f64().unwrap() > 0.0);
    assert!(b["peak_rss_mib"].as_f64().unwrap() > 1.0);
    // Open to first ε spans the open, the network's preparation and its first evaluation.
    let first = b["open_to_first_eps_ms"].as_f64().expect("open to first ε is measured without a memory budget");
    assert!(first > b["open_ms"].as_f64().unwrap(), "open to first ε {first} ms does not include the open");
}

#[test]
fn eps_writes_one_evaluation_of_the_input_shape() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = s(&oracle_bundle().0).to_string();
    let x = dir.path().join("x.npy");
    npy::write(&x, &[3, 1, 2, 3], &brenier::rng::NoiseStream::new(2, 0).normal(18)).unwrap();
    let out = dir.path().join("e.npy");
    brenier(&["eps", "--bundle", &bundle, "--net", "b", "--input", s(&x), "--t", "250", "--output", s(&out)]);
    let e = npy::read(&out).unwrap();
    assert_eq!(e.shape, vec![3, 1, 2, 3]);
    assert!(e.data.iter().all(|v| v.is_finite()) && e.data.iter().any(|&v| v != 0.0));
}

#[test]
fn demo_on_a_given_bundle_writes_the_grids() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = s(&oracle_bundle().0).to_string();
    let x = dir.path().join("x.npy");
    npy::write(&x, &[3, 1, 2, 3], &brenier::rng::NoiseStream::new(5, 0).normal(18)).unwrap();
    let out = dir.path().join("demo");
    let text = brenier(&["demo", "--bundle", &bundle, "--inputs", s(&x), "--out", s(&out), "--steps", "5"]);
    assert!(text.contains("ot-ald") && text.contains("ddib"), "{text}");
    for f in ["translate-grid.png", "generate-dpm-ot.png"] {
        let bytes = std::fs::read(out.join(f)).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{f}");
    }
}

/// `inspect` on the shipped bundle speaks the user's words: domains with their names, no Rust
/// debug syntax, and the fp16 record of the export that froze the ε-networks (29 weight tensors,
/// 579 584 parameters in the demo UNet).
#[test]
fn inspect_shows_named_domains_and_the_real_fp16_record() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/demo.brn");
    let text = brenier(&["inspect", s(&demo)]);
    for want in [
        "a (sneaker), b (ankle-boot)",
        "a (sneaker) → b (ankle-boot)",
        "b (ankle-boot) → a (sneaker)",
        "N(0, I) → b (ankle-boot)",
        "29 weight tensors (579584 params) stored fp16",
        "linear β",
    ] {
        assert!(text.contains(want), "`{want}` not in:\n{text}");
    }
    for debug in ["Domain {", "Linear {", "Gaussian", "Int64", "tensors 0"] {
        assert!(!text.contains(debug), "debug syntax `{debug}` in:\n{text}");
    }
}

/// Output cut short by the reader (`brenier inspect … | head -1`) ends the command quietly, as
/// SIGPIPE ends other Unix tools. The pipe's reading end is closed before the command starts,
/// so its first line of output meets the closed pipe.
#[test]
fn a_closed_pipe_ends_the_command_without_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_brenier"))
        .args(["inspect", s(&oracle_bundle().0)])
        .stdout(writer)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.signal(), Some(13), "not ended by SIGPIPE: {:?} {err}", out.status);
}

/// `bench --eval-only --profile` times every node of the plan once per run and sums them per
/// operator; on the shipped demo UNet its convolutions run as brenier's own operators (Winograd
/// on the 28×28 and 14×14 maps, the direct kernel on the 7×7, strided and thin ones, the 1×1 kernel)
/// where the CPU has AVX2 and FMA, and the
/// convolutions take most of the time, as onnxruntime's profile of the same file says
/// (benches/results/op-profile.json).
#[test]
fn bench_profile_attributes_the_run_to_its_operators() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/demo.brn");
    let v: serde_json::Value = serde_json::from_str(&brenier(&[
        "bench",
        "--bundle",
        s(&demo),
        "--threads",
        "1",
        "--repeat",
        "5",
        "--eval-only",
        "--profile",
        "--json",
    ]))
    .unwrap();
    let p = &v["op_profile"];
    assert_eq!(p["runs"], 5);
    let (ops, nodes) = (p["ops"].as_array().unwrap(), p["nodes"].as_array().unwrap());
    let ms = |list: &[serde_json::Value]| list.iter().map(|o| o["ms"].as_f64().unwrap()).sum::<f64>();
    let ops_ms = p["ops_ms"].as_f64().unwrap();
    assert!((ms(ops) - ops_ms).abs() <= 1e-6 * ops_ms && (ms(nodes) - ops_ms).abs() <= 1e-6 * ops_ms, "{p}");
    assert!(ops_ms > 0.0 && ops_ms <= p["run_ms"].as_f64().unwrap(), "{p}");
    let count: u64 = ops.iter().map(|o| o["nodes"].as_u64().unwrap()).sum();
    assert_eq!(count as usize, nodes.len());
    let names: std::collections::HashSet<&str> = nodes.iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), nodes.len(), "a node is listed twice");
    assert!(nodes.windows(2).all(|w| w[0]["ms"].as_f64() >= w[1]["ms"].as_f64()), "nodes are not slowest first");
    let conv_ms: f64 =
        ms(&nodes.iter().filter(|n| n["name"].as_str().unwrap().starts_with("conv_")).cloned().collect::<Vec<_>>());
    assert!(conv_ms > 0.5 * ops_ms, "convolutions take {conv_ms} of {ops_ms} ms");
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        for op in ["WinogradConv", "DirectConv", "PointwiseConv"] {
            assert!(ops.iter().any(|o| o["op"] == op), "no {op} in {p}");
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_brenier"))
        .args(["bench", "--bundle", s(&demo), "--profile"])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--eval-only"));
}
