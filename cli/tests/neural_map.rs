//! The neural map through the command line: `export --neural-map` adds the closed-form Gaussian
//! OT map (as ONNX) to the oracle networks, `inspect` lists it, `translate --method neural-ot`
//! runs it, and a bad `--neural-map` argument is refused with its usage.

use std::path::Path;
use std::process::Command;

use brenier::io::npy;
use brenier_export::gaussian::{affine_map_network, ot_map_between};
use brenier_export::onnx_build::to_bytes;
use brenier_tests::{oracle_bundle, IMAGE};

fn brenier(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_brenier")).args(args).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn export_inspect_and_translate_with_a_neural_map() {
    let dir = tempfile::tempdir().unwrap();
    let (bundle, pair) = oracle_bundle();
    let b = s(bundle);
    for net in ["net.a", "net.b"] {
        let out = dir.path().join(format!("{net}.onnx"));
        let (ok, text) = brenier(&["inspect", b, "--extract", net, "--output", s(&out)]);
        assert!(ok, "{text}");
    }
    let ab = brenier::sched::Schedule::new(&Default::default()).unwrap().alpha_bar(500);
    let (a, c) = ot_map_between(&pair.a, &pair.b, ab);
    let map = dir.path().join("map-ab.onnx");
    std::fs::write(&map, to_bytes(&affine_map_network(&a, &c, IMAGE))).unwrap();
    let out = dir.path().join("neural.brn");
    let (net_a, net_b) = (dir.path().join("net.a.onnx"), dir.path().join("net.b.onnx"));
    let neural = format!("a->b={}", s(&map));
    let (ok, text) =
        brenier(&["export", "--net-a", s(&net_a), "--net-b", s(&net_b), "--neural-map", &neural, "-o", s(&out)]);
    assert!(ok, "{text}");
    assert!(text.contains("neural map a->b: t = 500 (map.ab@t500)"), "{text}");
    let (ok, text) = brenier(&["inspect", s(&out)]);
    assert!(ok && text.contains("neural map a->b") && text.contains("map.ab@t500"), "{text}");

    let x = dir.path().join("x.npy");
    npy::write(&x, &[4, 1, 2, 3], &brenier::rng::NoiseStream::new(1, 0).normal(24)).unwrap();
    let y = dir.path().join("y.npy");
    let (ok, text) = brenier(&[
        "translate",
        "--bundle",
        s(&out),
        "--method",
        "neural-ot",
        "--quiet",
        "--input",
        s(&x),
        "--output",
        s(&y),
    ]);
    assert!(ok, "{text}");
    assert_eq!(npy::read(&y).unwrap().shape, vec![4, 1, 2, 3]);
    // The oracle bundle has no neural map: the error says how to get one, and no output appears.
    let none = dir.path().join("none.npy");
    let (ok, text) =
        brenier(&["translate", "--bundle", b, "--method", "neural-ot", "--input", s(&x), "--output", s(&none)]);
    assert!(!ok && text.contains("no neural OT map a->b") && !none.exists(), "{text}");

    let (ok, text) = brenier(&[
        "export",
        "--net-a",
        s(&net_a),
        "--net-b",
        s(&net_b),
        "--neural-map",
        "a->c=x.onnx",
        "-o",
        s(&dir.path().join("bad.brn")),
    ]);
    assert!(!ok && text.contains("expected a->b=FILE"), "{text}");
}

#[test]
fn the_shipped_demo_runs_its_neural_maps() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bundle = root.join("assets/demo.brn");
    let (ok, text) = brenier(&["inspect", s(&bundle)]);
    assert!(ok && text.contains("neural map a->b") && text.contains("neural map b->a"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let inputs = root.join("assets/demo-inputs");
    let args = ["demo", "--bundle", s(&bundle), "--inputs", s(&inputs), "--out", s(&out), "--steps", "3"];
    let (ok, text) = brenier(&[&args[..], &["--generate", "1", "--threads", "2"]].concat());
    assert!(ok, "{text}");
    assert!(text.contains("neural-ot") && text.contains("rows: source | ddib | ot-ald | neural-ot"), "{text}");
    assert!(out.join("translate-grid.png").exists());
}
