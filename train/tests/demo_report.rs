//! The committed quality report is what the committed bundle produces: every row — DDIB at both
//! settings, OT-ALD hard and soft, neural OT, DPM-OT and plain DDIM generation — is recomputed on
//! its first images (the report records them per row: the shipped demo inputs are the first
//! held-out test sneakers, and generation takes the first samples of its seeded noise) and
//! compared with the report.

use std::path::PathBuf;

use brenier::backend::CpuBackend;
use brenier::io::png;
use brenier::pipeline::{GenerateMethod, GenerateOptions, NetTime, Silent, TranslateMethod, TranslateOptions};
use brenier::rng::NoiseStream;
use brenier::{Bundle, Engine, NetKey};
use brenier_calibration::classify::ClassifierRunner;
use brenier_calibration::metrics::rms;
use brenier_train::report::{Report, SubsetRecord};

fn asset(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets").join(name)
}

struct Check<'a> {
    runner: &'a ClassifierRunner,
    d: usize,
}

impl Check<'_> {
    /// Outputs recomputed here against a row's record. Each image runs alone through the
    /// networks whatever the batch, so without an OT map every image must match. With one, the
    /// encoder's rounding may differ with the thread count; an input whose two best OT cells
    /// score within that rounding may flip to another target: one such image may differ, and
    /// is then left out of the comparison.
    fn row(&self, what: &str, out: &[f32], sources: Option<&[f32]>, assign: &[usize], want: &SubsetRecord) {
        let k = want.predicted.len();
        assert!(k > 0, "{what}: the report records no images");
        let d = self.d;
        let (_, _, pred) = self.runner.run(&out[..k * d]).unwrap();
        let same = assign.iter().zip(&want.assignments).filter(|(a, b)| a == b).count();
        assert!(same + 1 >= want.assignments.len(), "{what}: assignments {assign:?} vs {:?}", want.assignments);
        for i in 0..k {
            if assign.get(i) != want.assignments.get(i) {
                continue;
            }
            assert_eq!(pred[i], want.predicted[i], "{what} image {i}: class {pred:?} vs report {:?}", want.predicted);
            let image = &out[i * d..(i + 1) * d];
            // Same latents decoded by the same DDIM: only float rounding differs.
            let mean = image.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
            assert!((mean - want.mean[i]).abs() < 0.01, "{what} image {i}: mean {mean} vs report {}", want.mean[i]);
            if let (Some(src), Some(&r)) = (sources, want.rms_to_source.get(i)) {
                let got = rms(&src[i * d..(i + 1) * d], image);
                assert!((got - r).abs() < 0.02, "{what} image {i}: RMS to source {got} vs report {r}");
            }
        }
    }
}

#[test]
fn every_row_of_the_shipped_report_recomputes_from_the_shipped_bundle() {
    let report: Report = serde_json::from_slice(&std::fs::read(asset("demo-report.json")).unwrap()).unwrap();
    let engine = Engine::new(Bundle::open(asset("demo.brn")).unwrap(), Box::new(CpuBackend::new(0).unwrap())).unwrap();
    let m = engine.bundle().manifest().clone();
    let d = m.image.elems();
    let runner =
        ClassifierRunner::new(&std::fs::read(asset("demo.calib/classifier.onnx")).unwrap(), m.image, m.normalization)
            .unwrap();
    let check = Check { runner: &runner, d };
    let mut inputs: Vec<PathBuf> =
        std::fs::read_dir(asset("demo-inputs")).unwrap().map(|e| e.unwrap().path()).collect();
    inputs.sort();
    let k = report.config.subset;
    assert!(k > 0 && inputs.len() >= k, "{} inputs for a subset of {k}", inputs.len());
    let x: Vec<f32> = inputs[..k].iter().flat_map(|p| png::read(p, m.image, m.normalization).unwrap()).collect();
    let cfg = &report.config;
    assert!(report.translation.len() >= 4 && report.generation.len() == 2, "rows missing from the report");
    for row in &report.translation {
        let (method, tau) = match row.method.as_str() {
            "DDIB" => (TranslateMethod::Ddib, None),
            "OT-ALD" => (TranslateMethod::OtAld, None),
            "OT-ALD soft" => (TranslateMethod::OtAld, row.tau),
            "neural OT" => (TranslateMethod::NeuralOt, None),
            other => panic!("a report row this test does not know: {other}"),
        };
        let opts = TranslateOptions {
            method,
            from: NetKey::A,
            t: Some(row.t),
            steps: Some(row.steps),
            eta: None,
            tau,
            seed: cfg.seed,
        };
        let out = engine.translate(&x, &opts, &Silent).unwrap();
        let assign = out.map.as_ref().map_or(vec![], |m| m.assignments.clone());
        let what = format!("{} T={} K={}", row.method, row.t, row.steps);
        check.row(&what, &out.images, Some(&x), &assign, &row.subset);
    }
    let dpm = &report.generation[0];
    assert!(dpm.method.starts_with("DPM-OT"), "{}", dpm.method);
    let opts = GenerateOptions {
        method: GenerateMethod::DpmOt,
        domain: NetKey::B,
        count: k,
        nfe: cfg.gen_nfe,
        eta: 0.0,
        tau: None,
        seed: cfg.seed,
    };
    let g = engine.generate(&opts, &Silent).unwrap();
    check.row(&dpm.method, &g.images, None, &g.map.assignments, &dpm.subset);
    let ddim = &report.generation[1];
    assert!(ddim.method.starts_with("DDIM from N(0, I)"), "{}", ddim.method);
    let last = engine.schedule().n_train() - 1;
    // The report's noise for its whole batch; the first k images take its first k·D values.
    let mut z = NoiseStream::new(cfg.seed, u64::MAX).normal(k * d);
    engine
        .decode(NetKey::B, &mut z, last, cfg.gen_ddim_steps, 0.0, cfg.seed, &Silent, &mut NetTime::default())
        .unwrap();
    check.row(&ddim.method, &z, None, &[], &ddim.subset);
}
