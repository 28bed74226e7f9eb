//! f16 networks on the CPU against f32, the memory estimate behind `--memory-budget`, and maps
//! at several encode times in one bundle — on the oracle bundle (exact Gaussian ε-networks as
//! real ONNX graphs), so every comparison has a closed-form or f32 reference.

use brenier::backend::{CpuBackend, Precision};
use brenier::bundle::Bundle;
use brenier::pipeline::memory::MemoryProbe;
use brenier::pipeline::{Silent, TranslateMethod, TranslateOptions};
use brenier::rng::NoiseStream;
use brenier::{Engine, Error, NetKey};
use brenier_export::oracle_bundle::{oracle_spec, OraclePair};
use brenier_tests::{engine, oracle_bundle, IMAGE};

fn engine_in(path: &std::path::Path, precision: Precision) -> Engine {
    let backend = CpuBackend::with_precision(1, precision).unwrap();
    Engine::new(Bundle::open(path).unwrap(), Box::new(backend)).unwrap()
}

#[test]
fn f16_networks_match_f32_to_half_precision() {
    let (path, _) = oracle_bundle();
    let (e32, e16) = (engine_in(path, Precision::F32), engine_in(path, Precision::F16));
    assert_eq!(e16.backend().precision(), Precision::F16);
    let x = NoiseStream::new(3, 0).normal(5 * IMAGE.elems());
    for t in [0i64, 250, 999] {
        for key in [NetKey::A, NetKey::B] {
            let want = e32.net(key).unwrap().run(&x, 5, t).unwrap();
            let got = e16.net(key).unwrap().run(&x, 5, t).unwrap();
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) / scale;
            // f16 keeps 11 significant bits (2^-11 ≈ 4.9e-4 relative per rounding); a few
            // dozen ops deep that stays below 1 % of the output scale.
            assert!(err < 1e-2, "net {key:?} t = {t}: f16 max error {err:.2e} of scale {scale}");
            assert!(err > 0.0, "the f16 path ran in f32");
        }
    }
}

/// The estimate interpolates the probe's points in the images the backend keeps in flight and
/// extrapolates the last segment: on two CPU threads a batch of 8 holds two images' activations
/// at once, on one thread one. The probe figures are given here, so nothing depends on what else
/// this test process does (the measured figures are tested in their own process:
/// cli/tests/memory.rs).
#[test]
fn memory_estimate_follows_the_probe_points_in_images_in_flight() {
    use brenier::pipeline::memory::ProbePoint;
    const MIB: u64 = 1 << 20;
    let (path, _) = oracle_bundle();
    let point = |batch, in_flight, peak| ProbePoint { batch, in_flight, peak: peak * MIB, device: 0 };
    let probe = |points| MemoryProbe { points, measured: true, ..MemoryProbe::default() };
    let two_threads = engine(path);
    let e = two_threads.estimate_memory(&probe(vec![point(1, 1, 100), point(2, 2, 106)]), 8).unwrap();
    // Ten image-sized f32 arrays per image (pipeline/memory.rs's WORKING_ARRAYS, measured).
    let working = (10 * 8 * IMAGE.elems() * 4) as u64;
    assert_eq!(e.images_in_flight, 2);
    assert_eq!((e.base_bytes, e.growth_bytes, e.working_bytes), (100 * MIB, 6 * MIB, working));
    // The oracle bundle's maps: 256 targets of 6 f16 values and 256 f32 heights each.
    assert_eq!(e.ot_map_bytes, 256 * 6 * 2 + 256 * 4);
    assert_eq!(e.total_bytes, 106 * MIB + e.ot_map_bytes + working);
    assert_eq!(e.bundle_bytes, two_threads.bundle().file_len());
    assert!(e.detail().contains("batch 8") && e.detail().contains("OT map"), "{}", e.detail());

    // Three points: the first extra image costs 6 MiB, each later one 4; six in flight (a
    // backend with six threads) extrapolate the last segment: 100 + 6 + 4·4.
    let three = probe(vec![point(1, 1, 100), point(2, 2, 106), point(3, 3, 110)]);
    let one_thread = engine_in(path, Precision::F32);
    let e = one_thread.estimate_memory(&three, 8).unwrap();
    assert_eq!((e.images_in_flight, e.growth_bytes), (1, 0), "one thread holds one image");
    assert_eq!(e.total_bytes, 100 * MIB + e.ot_map_bytes + working);
    let six = brenier::Engine::new(
        brenier::bundle::Bundle::open(path).unwrap(),
        Box::new(brenier::backend::CpuBackend::new(6).unwrap()),
    )
    .unwrap();
    let e = six.estimate_memory(&three, 8).unwrap();
    assert_eq!((e.images_in_flight, e.growth_bytes, e.per_image_bytes), (6, 22 * MIB, 4 * MIB));

    // Where nothing can be measured the static count is the estimate.
    let counted = two_threads.estimate_memory(&MemoryProbe::default(), 8).unwrap();
    assert!(!counted.measured && counted.weight_bytes > 0 && counted.activation_bytes > 0);
    assert_eq!(
        counted.total_bytes,
        counted.bundle_bytes + counted.weight_bytes + counted.activation_bytes + counted.working_bytes
    );
}

/// The budget refuses before anything larger than two images runs, naming the parts.
#[test]
fn a_budget_below_any_estimate_is_refused_and_a_generous_one_accepted() {
    let (path, _) = oracle_bundle();
    let e = engine(path);
    match e.check_memory_budget(0.5, 64) {
        Err(Error::MemoryBudget { needed_mib, budget_mib, detail }) => {
            assert!(needed_mib > budget_mib && detail.contains("bundle") && detail.contains("batch 64"), "{detail}");
        }
        other => panic!("expected a budget refusal, got {other:?}"),
    }
    assert!(e.check_memory_budget(1e6, 1).is_ok());
}

#[test]
fn ot_ald_uses_the_map_solved_at_the_requested_t() {
    let dir = tempfile::tempdir().unwrap();
    let pair = OraclePair::new(IMAGE, 5);
    let mut spec = oracle_spec(&pair, 500, 25, 128, 17).unwrap();
    let mut at250 = oracle_spec(&pair, 250, 25, 128, 17).unwrap().maps.remove(0);
    assert_eq!(at250.name, "a->b");
    at250.name = "a->b@t250".into();
    spec.maps.push(at250);
    let path = dir.path().join("two-t.brn");
    brenier_export::export(&spec, &path).unwrap();
    let e = engine(&path);
    let x = NoiseStream::new(4, 0).normal(3 * IMAGE.elems());
    let run = |t: Option<usize>| {
        let opts = TranslateOptions { method: TranslateMethod::OtAld, t, steps: Some(10), ..Default::default() };
        e.translate(&x, &opts, &Silent)
    };
    let default = run(None).unwrap();
    assert_eq!((default.t, default.map.unwrap().map.as_str()), (500, "a->b"));
    let early = run(Some(250)).unwrap();
    assert_eq!((early.t, early.map.unwrap().map.as_str()), (250, "a->b@t250"));
    let msg = run(Some(300)).unwrap_err().to_string();
    assert!(msg.contains("t = 500, 250") && msg.contains("got t = 300"), "{msg}");
}

#[test]
fn an_encode_time_beyond_the_schedule_is_refused_not_indexed() {
    let (path, _) = oracle_bundle();
    let e = engine(path);
    let mut x = NoiseStream::new(5, 0).normal(IMAGE.elems());
    let err = e.encode(NetKey::A, &mut x, 1000, 10, &Silent, &mut Default::default()).unwrap_err().to_string();
    assert!(err.contains("T = 1000") && err.contains("0..=999"), "{err}");
    let err = e.decode(NetKey::B, &mut x, 5000, 10, 0.0, 0, &Silent, &mut Default::default()).unwrap_err().to_string();
    assert!(err.contains("T = 5000"), "{err}");
}
