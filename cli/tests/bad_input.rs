//! Bad input through the real binary: each case exits non-zero with a message naming the
//! problem and the fix, never panics, and leaves no output file behind.

mod common;

use brenier::io::npy;
use brenier_export::onnx_build::to_bytes;
use brenier_export::ExportSpec;
use brenier_tests::oracle_bundle;
use common::{brenier, fails_with, input_npy, s, translate};

#[test]
fn damaged_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(&oracle_bundle().0).unwrap();
    let x = input_npy(dir.path(), &[1, 1, 2, 3], 0.1);
    let out = dir.path().join("y.npy");
    let truncated = dir.path().join("trunc.brn");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    fails_with(
        &["translate", "--bundle", s(&truncated), "--input", s(&x), "--output", s(&out)],
        &["truncated", "copy"],
        Some(&out),
    );
    let mut bad = good.clone();
    let b = brenier::Bundle::from_bytes(&good).unwrap();
    let e = b.entry("net.a").unwrap();
    bad[(e.offset + 100) as usize] ^= 0xff;
    let corrupted = dir.path().join("corrupt.brn");
    std::fs::write(&corrupted, &bad).unwrap();
    fails_with(
        &["translate", "--bundle", s(&corrupted), "--input", s(&x), "--output", s(&out)],
        &["checksum", "net.a"],
        Some(&out),
    );
    fails_with(&["inspect", s(&corrupted)], &["net.a", "damaged"], None);
    let mut newer = good.clone();
    newer[8..12].copy_from_slice(&9u32.to_le_bytes());
    let newer_p = dir.path().join("newer.brn");
    std::fs::write(&newer_p, &newer).unwrap();
    fails_with(&["inspect", s(&newer_p)], &["version 9", "upgrade"], None);
    fails_with(&["inspect", s(&dir.path().join("missing.brn"))], &["missing.brn", "no such file"], None);
}

#[test]
fn wrong_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = &oracle_bundle().0;
    let out = dir.path().join("y.npy");
    let wrong = input_npy(dir.path(), &[2, 1, 4, 4], 0.1);
    fails_with(
        &["translate", "--bundle", s(bundle), "--input", s(&wrong), "--output", s(&out)],
        &["shape", "[0, 1, 2, 3]"],
        Some(&out),
    );
    let nan = dir.path().join("nan.npy");
    npy::write(&nan, &[1, 1, 2, 3], &[0.0, f32::NAN, 0.0, 0.0, 0.0, 0.0]).unwrap();
    fails_with(
        &["translate", "--bundle", s(bundle), "--input", s(&nan), "--output", s(&out)],
        &["non-finite", "index 1"],
        Some(&out),
    );
    let ok = input_npy(dir.path(), &[1, 1, 2, 3], 0.1);
    fails_with(
        &["translate", "--bundle", s(bundle), "--t", "300", "--input", s(&ok), "--output", s(&out)],
        &["t = 500"],
        Some(&out),
    );
    let (good, text) =
        brenier(&["translate", "--bundle", s(bundle), "--input", s(&ok), "--output", s(&out), "--quiet"]);
    assert!(good && out.exists(), "{text}");
}

/// Nothing to translate is a typed error naming the input, never a panic in the batching.
#[test]
fn empty_inputs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = &oracle_bundle().0;
    let out = dir.path().join("y");
    let empty_npy = dir.path().join("empty.npy");
    npy::write(&empty_npy, &[0, 1, 2, 3], &[]).unwrap();
    fails_with(&translate(bundle, &empty_npy, &out, &[]), &["empty.npy", "no images"], Some(&out));
    let empty_dir = dir.path().join("none");
    std::fs::create_dir(&empty_dir).unwrap();
    fails_with(&translate(bundle, &empty_dir, &out, &[]), &["none", "holds no .png, .jpg or .jpeg files"], Some(&out));
    let zero = dir.path().join("zero.png");
    std::fs::write(&zero, b"").unwrap();
    fails_with(&translate(bundle, &zero, &out, &[]), &["zero.png", "0 bytes"], Some(&out));
}

/// Grid(500, 5) is [−1, 99, 199, 300, 400, 500]; encode step 4 evaluates ε at t = 300.
/// A network that is finite at t < 300 and emits NaN from t = 300 on: translation must stop
/// naming the network and the step.
fn nan_after_300() -> Vec<u8> {
    use brenier_tests::faulty_net::{eps_net, Output};
    eps_net(brenier_tests::IMAGE, |t| if t < 300 { Output::Finite } else { Output::Nan })
}

#[test]
fn network_nan_names_the_step_and_ddib_only_bundle_refuses_ot() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = ExportSpec::new(nan_after_300(), nan_after_300());
    spec.t_encode = 100; // the exporter's probe runs at t = 100, where the net is finite
    let bundle = dir.path().join("nan.brn");
    brenier_export::export(&spec, &bundle).unwrap();
    let x = input_npy(dir.path(), &[1, 1, 2, 3], 0.1);
    let out = dir.path().join("y.npy");
    fails_with(
        &translate(&bundle, &x, &out, &["--method", "ddib", "--t", "500", "--steps", "5"]),
        &["net a", "non-finite", "encode step 4/5", "t = 300"],
        Some(&out),
    );
    fails_with(
        &["translate", "--bundle", s(&bundle), "--method", "ot-ald", "--input", s(&x), "--output", s(&out)],
        &["no OT map a->b", "method `ddib`"],
        Some(&out),
    );
    // The probe itself catches a net that is broken at the export's T.
    let mut spec = ExportSpec::new(nan_after_300(), nan_after_300());
    spec.t_encode = 500;
    let err = brenier_export::export(&spec, &dir.path().join("never.brn")).unwrap_err().to_string();
    assert!(err.contains("non-finite") && err.contains("t = 500"), "{err}");
    assert!(!dir.path().join("never.brn").exists());
}

#[test]
fn unknown_onnx_op_is_named_at_export() {
    let dir = tempfile::tempdir().unwrap();
    let mut proto = brenier::onnx::decode(&nan_after_300(), "t").unwrap();
    let graph = proto.graph.as_mut().unwrap();
    graph.node.iter_mut().find(|n| n.name == "root").unwrap().op_type = "FancyNorm".into();
    let bad = dir.path().join("bad.onnx");
    std::fs::write(&bad, to_bytes(&proto)).unwrap();
    let out = dir.path().join("m.brn");
    fails_with(
        &["export", "--net-a", s(&bad), "--net-b", s(&bad), "-o", s(&out)],
        &["FancyNorm", "node `root`", "supported opset"],
        Some(&out),
    );
    fails_with(
        &["export", "--net-a", s(&dir.path().join("nope.onnx")), "--net-b", s(&bad), "-o", s(&out)],
        &["nope.onnx"],
        Some(&out),
    );
}

#[test]
fn png_in_png_out_with_metadata_and_size_check() {
    use brenier::bundle::{ImageSpec, Normalization};
    let dir = tempfile::tempdir().unwrap();
    let bundle = &oracle_bundle().0;
    let img = ImageSpec { channels: 1, height: 2, width: 3 };
    let input = dir.path().join("in.png");
    let px = [-0.5f32, 0.0, 0.5, 0.25, -0.25, 0.75];
    std::fs::write(&input, brenier::io::png::encode(&px, img, Normalization::default(), &[]).unwrap()).unwrap();
    // Pixels survive the 8-bit round trip within half a grey level.
    let back = brenier::io::png::read(&input, img, Normalization::default()).unwrap();
    assert!(back.iter().zip(&px).all(|(a, b)| (a - b).abs() <= 1.0 / 255.0 + 1e-6), "{back:?}");
    let out = dir.path().join("out.png");
    let (ok, text) = brenier(&[
        "translate",
        "--bundle",
        s(bundle),
        "--seed",
        "3",
        "--input",
        s(&input),
        "--output",
        s(&out),
        "--quiet",
    ]);
    assert!(ok, "{text}");
    let bytes = std::fs::read(&out).unwrap();
    let text_chunks = String::from_utf8_lossy(&bytes);
    assert!(
        text_chunks.contains("brenier:method")
            && text_chunks.contains("ot-ald")
            && text_chunks.contains("brenier:seed")
    );
    let big = dir.path().join("big.png");
    std::fs::write(
        &big,
        brenier::io::png::encode(
            &[0.0; 16],
            ImageSpec { channels: 1, height: 4, width: 4 },
            Normalization::default(),
            &[],
        )
        .unwrap(),
    )
    .unwrap();
    fails_with(
        &["translate", "--bundle", s(bundle), "--input", s(&big), "--output", s(&dir.path().join("o2.png"))],
        &["[2, 3]", "[4, 4]", "resize"],
        Some(&dir.path().join("o2.png")),
    );
}
