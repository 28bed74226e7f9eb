//! Calibration of the shipped demo bundle (a copy): the record and its references land in the
//! bundle without touching the other sections, selftest passes on it, and fails — naming the
//! check — when a reference is wrong. Reduced precision is left out here: tract emulates f16 on
//! x86_64 (two orders of magnitude slower); `brenier calibrate` measures it.

use std::path::{Path, PathBuf};

use brenier::bundle::calibration::{
    QUICK_EPS_SECTION, QUICK_INPUTS_SECTION, QUICK_LATENTS_SECTION, QUICK_NEURAL_SECTION, QUICK_OUTPUTS_SECTION,
};
use brenier::bundle::{rewrite_sections, Section};
use brenier::bundle::{Bundle, SectionKind};
use brenier::Engine;
use brenier_calibration::selftest::{selftest, Status};
use brenier_calibration::{calibrate, CalibrateOptions};

fn asset(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets").join(name)
}

/// A copy of the demo bundle with its calibration set beside it, as a user would lay it out.
fn demo_copy(dir: &Path) -> PathBuf {
    let path = dir.join("demo.brn");
    std::fs::copy(asset("demo.brn"), &path).unwrap();
    let set = dir.join("demo.calib");
    std::fs::create_dir_all(&set).unwrap();
    // The set folder alone: it holds its classifier.
    for f in ["calib.json", "sources.npy", "references.npy", "classifier.onnx"] {
        std::fs::copy(asset("demo.calib").join(f), set.join(f)).unwrap();
    }
    path
}

fn quick_options() -> CalibrateOptions {
    CalibrateOptions { quick: true, reduced: vec![], threads: 2, parity_count: 8, ..CalibrateOptions::default() }
}

fn engine(path: &Path) -> Engine {
    let backend = brenier::backend::CpuBackend::new(2).unwrap();
    Engine::new(Bundle::open(path).unwrap(), Box::new(backend)).unwrap()
}

fn payloads(path: &Path) -> Vec<(String, Vec<u8>)> {
    let b = Bundle::open(path).unwrap();
    b.sections().iter().map(|s| (s.name.clone(), b.bytes(&s.name).unwrap().to_vec())).collect()
}

#[test]
fn quick_calibration_is_recorded_and_selftest_passes_then_catches_wrong_references() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo_copy(dir.path());
    let before = payloads(&path);
    let out = calibrate(&path, &quick_options(), &mut |_| {}).unwrap();

    // Every other section is still there, byte for byte (a calibrated bundle's old record is
    // replaced); the record reads back as written.
    let after = payloads(&path);
    let is_record = |n: &str| n.starts_with("calibration");
    for (name, bytes) in before.iter().filter(|(n, _)| !is_record(n)) {
        let now = after.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} lost"));
        assert!(&now.1 == bytes, "section {name} changed");
    }
    // The demo ships neural maps both ways, so their outputs are the fifth reference tensor.
    assert_eq!(after.iter().filter(|(n, _)| is_record(n)).count(), 6, "record + five reference tensors");
    assert_eq!(after.len(), before.iter().filter(|(n, _)| !is_record(n)).count() + 6);
    let b = Bundle::open(&path).unwrap();
    assert_eq!(b.entry("calibration").unwrap().kind, SectionKind::Calibration);
    assert_eq!(b.calibration().unwrap().unwrap(), out.record);
    let q = &out.record.quick;
    // The quick check runs OT-ALD at the recommended point, whichever method won (a quick run
    // keeps an earlier full run's sweep and recommendation), else at the bundle's defaults.
    let (t, k) = out.record.recommended.first().map_or((500, 25), |r| (r.t, r.k));
    assert_eq!((q.count, q.t, q.k), (8, t, k));
    let want_map = if t == 500 { "a->b".to_string() } else { format!("a->b@t{t}") };
    assert_eq!(q.map.as_deref(), Some(want_map.as_str()));
    assert_eq!(q.assignments.len(), 8);
    assert_eq!(q.neural_maps, ["a->b", "b->a"]);
    // Kernel-level agreement with f16-rounded queries, and soft (τ = 1) vs hard, are measured.
    let comparisons: Vec<&str> = out.record.ot_agreement.iter().map(|a| a.comparison.as_str()).collect();
    assert!(comparisons.contains(&"f16-queries") && comparisons.contains(&"soft-vs-hard"), "{comparisons:?}");
    assert!(out.record.ot_agreement.iter().all(|a| (0.0..=1.0).contains(&a.agree) && a.queries == 8));

    let (_, checks) = selftest(&engine(&path)).unwrap();
    assert!(checks.iter().all(|c| matches!(c.status, Status::Pass | Status::Info)), "{checks:#?}");
    assert!(checks.len() >= 6);
    assert!(checks.iter().any(|c| c.name.starts_with("neural map parity")), "{checks:#?}");

    // A wrong output reference: the translation check fails and says so.
    let shape: Vec<usize> = b.entry(QUICK_OUTPUTS_SECTION).unwrap().shape.iter().map(|&d| d as usize).collect();
    let shifted: Vec<f32> = b.f32_tensor(QUICK_OUTPUTS_SECTION).unwrap().iter().map(|v| v + 0.1).collect();
    let eps_shape: Vec<usize> = b.entry(QUICK_EPS_SECTION).unwrap().shape.iter().map(|&d| d as usize).collect();
    let eps_scaled: Vec<f32> = b.f32_tensor(QUICK_EPS_SECTION).unwrap().iter().map(|v| v * 1.01).collect();
    let neural_shape: Vec<usize> = b.entry(QUICK_NEURAL_SECTION).unwrap().shape.iter().map(|&d| d as usize).collect();
    let neural_scaled: Vec<f32> = b.f32_tensor(QUICK_NEURAL_SECTION).unwrap().iter().map(|v| v * 1.01).collect();
    drop(b);
    rewrite_sections(&path, vec![Section::f32_tensor(QUICK_OUTPUTS_SECTION, &shape, &shifted)], &[]).unwrap();
    let (_, checks) = selftest(&engine(&path)).unwrap();
    let failed: Vec<&str> = checks.iter().filter(|c| c.failed()).map(|c| c.name.as_str()).collect();
    assert_eq!(failed.len(), 1, "{checks:#?}");
    assert!(failed[0].starts_with("OT-ALD output"), "{failed:?}");

    // A neural map's outputs 1 % off the reference: ten times the f32 tolerance, and only that
    // check fails besides the output one already broken above.
    rewrite_sections(&path, vec![Section::f32_tensor(QUICK_NEURAL_SECTION, &neural_shape, &neural_scaled)], &[])
        .unwrap();
    let (_, checks) = selftest(&engine(&path)).unwrap();
    let failed: Vec<&str> = checks.iter().filter(|c| c.failed()).map(|c| c.name.as_str()).collect();
    assert_eq!(failed.len(), 2, "{checks:#?}");
    assert!(failed.iter().any(|n| n.starts_with("neural map parity")), "{failed:?}");

    // ε 1 % off the reference is ten times the f32 tolerance.
    rewrite_sections(&path, vec![Section::f32_tensor(QUICK_EPS_SECTION, &eps_shape, &eps_scaled)], &[]).unwrap();
    let (_, checks) = selftest(&engine(&path)).unwrap();
    assert!(checks.iter().any(|c| c.failed() && c.name.starts_with("ε parity")), "{checks:#?}");

    // Every reference of the wrong size is refused when the record is read, naming the
    // section, not compared as a prefix (an empty ε reference used to pass with error 0).
    let half = neural_scaled.len() / 2;
    let half_shape = [neural_shape[0] / 2, neural_shape[1], neural_shape[2], neural_shape[3]];
    for (section, shape, values) in [
        (QUICK_NEURAL_SECTION, half_shape.to_vec(), &neural_scaled[..half]),
        (QUICK_EPS_SECTION, vec![0, eps_shape[1], eps_shape[2], eps_shape[3]], &eps_scaled[..0]),
        (QUICK_OUTPUTS_SECTION, vec![1, shape[1], shape[2], shape[3]], &shifted[..shifted.len() / shape[0]]),
    ] {
        let fresh = dir.path().join("short.brn");
        std::fs::copy(&path, &fresh).unwrap();
        rewrite_sections(&fresh, vec![Section::f32_tensor(section, &shape, values)], &[]).unwrap();
        let e = selftest(&engine(&fresh)).expect_err("a short reference must be refused").to_string();
        assert!(e.contains(section) && e.contains("calibrate --quick"), "{section}: {e}");
    }
}

#[test]
fn selftest_without_a_record_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.brn");
    std::fs::copy(asset("demo.brn"), &path).unwrap();
    let record = [
        "calibration",
        QUICK_INPUTS_SECTION,
        QUICK_EPS_SECTION,
        QUICK_LATENTS_SECTION,
        QUICK_OUTPUTS_SECTION,
        QUICK_NEURAL_SECTION,
    ];
    let present: Vec<&str> = record.into_iter().filter(|n| Bundle::open(&path).unwrap().entry(n).is_ok()).collect();
    rewrite_sections(&path, vec![], &present).unwrap();
    let err = selftest(&engine(&path)).expect_err("no record left");
    let msg = err.to_string();
    assert!(msg.contains("no calibration record") && msg.contains("brenier calibrate"), "{msg}");
}

#[test]
fn a_missing_calibration_set_names_the_folder_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lonely.brn");
    std::fs::copy(asset("demo.brn"), &path).unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = calibrate(&path, &quick_options(), &mut |_| {}).err().unwrap().to_string();
    assert!(err.contains("lonely.calib") && err.contains("brenier-train calib-set"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "a failed calibration leaves the bundle as it was");
}

#[test]
fn a_set_without_its_classifier_says_where_it_looked_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo_copy(dir.path());
    std::fs::remove_file(dir.path().join("demo.calib/classifier.onnx")).unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = calibrate(&path, &quick_options(), &mut |_| {}).err().unwrap().to_string();
    for want in ["classifier.onnx", "relative to the set folder", "calib-set --classifier"] {
        assert!(err.contains(want), "`{want}` not in: {err}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn a_small_sweep_scores_both_methods_recommends_one_and_plots_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo_copy(dir.path());
    let opts = CalibrateOptions { quick: false, count: 16, ts: vec![500], ks: vec![5, 10], ..quick_options() };
    let out = calibrate(&path, &opts, &mut |_| {}).unwrap();
    let r = &out.record;
    let methods: Vec<(&str, usize, usize)> = r.sweep.iter().map(|p| (p.method.as_str(), p.t, p.k)).collect();
    assert_eq!(
        methods,
        [
            ("ddib", 500, 5),
            ("neural-ot", 500, 5),
            ("ot-ald", 500, 5),
            ("ddib", 500, 10),
            ("neural-ot", 500, 10),
            ("ot-ald", 500, 10)
        ]
    );
    for p in &r.sweep {
        assert_eq!(p.nfe, 2 * p.k);
        assert!(p.ms_per_image > 0.0 && p.quality.frechet.is_finite() && p.quality.count == 16, "{p:?}");
    }
    // OT-ALD lands in the target class far more often than DDIB at T = 500 (demo report: 0.98 vs 0.51).
    let acc = |m: &str, k: usize| r.sweep.iter().find(|p| p.method == m && p.k == k).unwrap().quality.target_accuracy;
    assert!(acc("ot-ald", 10) > acc("ddib", 10) + 0.2, "{:?}", r.sweep);
    let rec = &r.recommended[0];
    assert!(r.sweep.iter().any(|p| p.method == rec.method && p.t == rec.t && p.k == rec.k));
    // The quick check follows the recommended T and K (the demo has an OT map at every swept T).
    assert_eq!((r.quick.t, r.quick.k), (rec.t, rec.k));
    let files = brenier_calibration::report::write_report(r, &dir.path().join("report"), 25).unwrap();
    let names: Vec<String> = files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for want in ["calibration.json", "calibration.md", "quality-vs-nfe.png", "t-ablation-quality.png"] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
    for f in files.iter().filter(|f| f.extension().is_some_and(|e| e == "png")) {
        let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(f).unwrap()));
        let info = dec.read_info().unwrap().info().clone();
        assert_eq!((info.width, info.height), (900, 540), "{}", f.display());
    }
}

/// In a reduced precision, a check whose figure the record lacks reports SKIP — never PASS or
/// FAIL against an invented limit. A record made here in f32 only (no parity table, no f16 quick
/// run) on the oracle bundle, then selftest in f16: every reduced-precision comparison skips,
/// the checks that need no figure still pass; in f32 every check is judged and passes.
#[test]
fn reduced_precision_checks_without_a_recorded_figure_skip() {
    use brenier::backend::{CpuBackend, Precision};
    use brenier::bundle::calibration::{CalibrationRecord, InputsInfo, MachineInfo, RECORD_VERSION};
    use brenier::rng::NoiseStream;
    use brenier_calibration::quick::{self, QuickPlan, QUICK_COUNT};
    use brenier_calibration::store::write_record;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oracle.brn");
    std::fs::copy(&brenier_tests::oracle_bundle().0, &path).unwrap();
    let pair = &brenier_tests::oracle_bundle().1;
    let open = |p: Precision| {
        Engine::new(Bundle::open(&path).unwrap(), Box::new(CpuBackend::with_precision(2, p).unwrap())).unwrap()
    };
    let e32 = open(Precision::F32);
    let d = e32.dim();
    let x = pair.a.sample_at(1.0, &NoiseStream::new(11, 0).normal(QUICK_COUNT * d));
    let plan = QuickPlan::new(&e32, None);
    let reference = quick::run(&e32, &plan, &x).unwrap();
    let record = CalibrationRecord {
        version: RECORD_VERSION,
        created_unix: 0,
        machine: MachineInfo {
            arch: "x86_64".into(),
            os: "linux".into(),
            cpu: "test".into(),
            threads: 2,
            backend: "cpu".into(),
            brenier_version: "0".into(),
        },
        precision: Precision::F32,
        inputs: InputsInfo { source: "oracle".into(), count: QUICK_COUNT, reference_count: 0, classifier: None },
        parity: vec![],
        ot_agreement: vec![],
        sweep: vec![],
        recommended: vec![],
        quick: quick::record(e32.bundle().manifest(), &plan, &reference, &[], d),
    };
    drop(e32);
    write_record(&path, &record, &plan, &reference, &x).unwrap();

    let (_, checks) = selftest(&open(Precision::F16)).unwrap();
    let status = |prefix: &str| checks.iter().find(|c| c.name.starts_with(prefix)).map(|c| c.status);
    assert!(checks.iter().all(|c| !c.failed()), "{checks:#?}");
    for skipped in ["ε parity", "OT assignments of encoded inputs", "OT-ALD output"] {
        assert_eq!(status(skipped), Some(Status::Skip), "{skipped}: {checks:#?}");
        let c = checks.iter().find(|c| c.name.starts_with(skipped)).unwrap();
        assert!(c.limit.contains("no f16 reference recorded") && c.limit.contains("calibrate --precision f16"));
    }
    assert_eq!(status("bundle integrity"), Some(Status::Pass));
    assert_eq!(status("OT assignment kernel"), Some(Status::Pass));
    let (_, checks) = selftest(&open(Precision::F32)).unwrap();
    assert!(checks.iter().all(|c| matches!(c.status, Status::Pass | Status::Info)), "{checks:#?}");
}
