//! The committed quality report is what the committed bundle produces: OT-ALD (T and K as the
//! report records) on the shipped demo inputs — the first held-out test sneakers, the same
//! images the report's subset records — recomputed and compared with the report.

use std::path::PathBuf;

use brenier::backend::CpuBackend;
use brenier::io::png;
use brenier::pipeline::{Silent, TranslateMethod, TranslateOptions};
use brenier::{Bundle, Engine, NetKey};
use brenier_calibration::classify::ClassifierRunner;
use brenier_calibration::metrics::rms;
use brenier_train::report::Report;

fn asset(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets").join(name)
}

#[test]
fn shipped_report_subset_recomputes_from_the_shipped_bundle() {
    let report: Report = serde_json::from_slice(&std::fs::read(asset("demo-report.json")).unwrap()).unwrap();
    let engine = Engine::new(Bundle::open(asset("demo.brn")).unwrap(), Box::new(CpuBackend::new(0).unwrap())).unwrap();
    let m = engine.bundle().manifest().clone();
    let mut inputs: Vec<PathBuf> =
        std::fs::read_dir(asset("demo-inputs")).unwrap().map(|e| e.unwrap().path()).collect();
    inputs.sort();
    let sub = &report.ot_ald_subset;
    let k = sub.assignments.len();
    assert!(k > 0 && inputs.len() >= k, "{} inputs for a subset of {k}", inputs.len());
    let x: Vec<f32> = inputs[..k].iter().flat_map(|p| png::read(p, m.image, m.normalization).unwrap()).collect();
    let opts = TranslateOptions {
        method: TranslateMethod::OtAld,
        from: NetKey::A,
        t: Some(report.config.t),
        steps: Some(report.config.steps),
        seed: report.config.seed,
        ..TranslateOptions::default()
    };
    let out = engine.translate(&x, &opts, &Silent).unwrap();
    let got = out.map.unwrap().assignments;
    // Thread count and batch size change the encoder's rounding; an input whose two best
    // cells score within that rounding may flip, so allow one in the subset.
    let same = got.iter().zip(&sub.assignments).filter(|(a, b)| a == b).count();
    assert!(same + 1 >= k, "assignments {got:?} vs report {:?}", sub.assignments);
    let runner =
        ClassifierRunner::new(&std::fs::read(asset("fashion-classifier.onnx")).unwrap(), m.image, m.normalization)
            .unwrap();
    let (_, _, pred) = runner.run(&out.images).unwrap();
    let agree = pred.iter().zip(&sub.predicted).filter(|(a, b)| a == b).count();
    assert!(agree + 1 >= k, "classes {pred:?} vs report {:?}", sub.predicted);
    let d = m.image.elems();
    for i in 0..k {
        if got[i] != sub.assignments[i] {
            continue;
        }
        let r = rms(&x[i * d..(i + 1) * d], &out.images[i * d..(i + 1) * d]);
        // Same target latent decoded by the same DDIM: only float rounding differs.
        assert!(
            (r - sub.rms_to_source[i]).abs() < 0.02,
            "image {i}: RMS to source {r} vs report {}",
            sub.rms_to_source[i]
        );
    }
}
