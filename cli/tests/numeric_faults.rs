//! Numerical faults through the real binary. A network turning NaN or Inf mid-trajectory stops
//! the run with an error naming the network, the step and t, and writes nothing. Extreme but
//! finite inputs behave as the README documents: all-black and all-white images translate;
//! values outside the model range are accepted with a warning; a run whose arithmetic overflows
//! stops with a non-finite error instead of writing Inf.

mod common;

use std::path::{Path, PathBuf};

use brenier::bundle::Normalization;
use brenier::io::npy;
use brenier_export::ExportSpec;
use brenier_tests::faulty_net::{eps_net, Output};
use brenier_tests::{oracle_bundle, IMAGE};
use common::{brenier, fails_with, s, translate};

fn npy_input(dir: &Path, name: &str, values: &[f32]) -> PathBuf {
    let p = dir.join(name);
    npy::write(&p, &[1, IMAGE.channels, IMAGE.height, IMAGE.width], values).unwrap();
    p
}

/// A DDIB bundle whose net B is `fault` for t in `range` and finite elsewhere (net A finite).
fn bundle_with_faulty_b(dir: &Path, range: std::ops::Range<usize>, fault: Output) -> PathBuf {
    let good = eps_net(IMAGE, |_| Output::Finite);
    let bad = eps_net(IMAGE, |t| if range.contains(&t) { fault } else { Output::Finite });
    let path = dir.join(format!("faulty-{fault:?}.brn"));
    brenier_export::export(&ExportSpec::new(good, bad), &path).unwrap();
    path
}

#[test]
fn net_b_turning_non_finite_mid_decode_names_net_step_and_t() {
    let dir = tempfile::tempdir().unwrap();
    let x = npy_input(dir.path(), "x.npy", &[0.1; 6]);
    let out = dir.path().join("y.npy");
    // Grid(500, 5) = [−1, 99, 199, 300, 400, 500]; decode step k evaluates ε at t_{6−k}.
    for (range, fault, step, t) in
        [(150..250, Output::Nan, "decode step 4/5", "t = 199"), (350..450, Output::Inf, "decode step 2/5", "t = 400")]
    {
        let bundle = bundle_with_faulty_b(dir.path(), range, fault);
        let ddib = ["--method", "ddib", "--t", "500", "--steps", "5"];
        fails_with(&translate(&bundle, &x, &out, &ddib), &["net b", "non-finite", step, t], Some(&out));
    }
}

#[test]
fn black_and_white_images_translate() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = &oracle_bundle().0;
    let norm = Normalization::default();
    for (name, v) in [("black", norm.low), ("white", norm.high)] {
        let input = dir.path().join(format!("{name}.png"));
        std::fs::write(&input, brenier::io::png::encode(&[v; 6], IMAGE, norm, &[]).unwrap()).unwrap();
        let out = dir.path().join(format!("{name}-out.npy"));
        let (ok, text) =
            brenier(&["translate", "--bundle", s(bundle), "--input", s(&input), "--output", s(&out), "--quiet"]);
        assert!(ok, "{name}: {text}");
        assert!(!text.contains("outside the bundle's model range"), "{name}: in-range input warned: {text}");
        assert!(npy::read(&out).unwrap().data.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn out_of_range_inputs_warn_and_overflow_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = &oracle_bundle().0;
    // Pixels 0..255 passed as model space: accepted, with a warning that says what is likely wrong.
    let pixels = npy_input(dir.path(), "pixels.npy", &[0.0, 51.0, 102.0, 153.0, 204.0, 255.0]);
    let out = dir.path().join("pixels-out.npy");
    let (ok, text) =
        brenier(&["translate", "--bundle", s(bundle), "--input", s(&pixels), "--output", s(&out), "--quiet"]);
    assert!(ok, "{text}");
    for needle in ["5 of 6 input values lie outside", "[-1, 1]", "max 255", "0..255"] {
        assert!(text.contains(needle), "`{needle}` not in {text}");
    }
    assert!(npy::read(&out).unwrap().data.iter().all(|v| v.is_finite()));
    // Values near f32's limit: the arithmetic overflows in the first encode steps. The run stops
    // with a non-finite error naming the network and the step, and writes nothing.
    let huge = npy_input(dir.path(), "huge.npy", &[3e38; 6]);
    let out = dir.path().join("huge-out.npy");
    let (ok, text) =
        brenier(&["translate", "--bundle", s(bundle), "--input", s(&huge), "--output", s(&out), "--quiet"]);
    assert!(!ok, "{text}");
    for needle in ["net a", "non-finite", "encode step", "far outside the model range"] {
        assert!(text.contains(needle), "`{needle}` not in {text}");
    }
    assert!(!out.exists());
    println!("3e38 input: {}", text.lines().find(|l| l.contains("error")).unwrap_or("translated to finite output"));
}
