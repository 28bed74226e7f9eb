//! f16 networks on the CPU against f32, the memory estimate behind `--memory-budget`, and maps
//! at several encode times in one bundle — on the oracle bundle (exact Gaussian ε-networks as
//! real ONNX graphs), so every comparison has a closed-form or f32 reference.

use brenier::backend::{CpuBackend, Precision};
use brenier::bundle::Bundle;
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
            let want = e32.net(key).unwrap().eps(&x, 5, t).unwrap();
            let got = e16.net(key).unwrap().eps(&x, 5, t).unwrap();
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) / scale;
            // f16 keeps 11 significant bits (2^-11 ≈ 4.9e-4 relative per rounding); a few
            // dozen ops deep that stays below 1 % of the output scale.
            assert!(err < 1e-2, "net {key:?} t = {t}: f16 max error {err:.2e} of scale {scale}");
            assert!(err > 0.0, "the f16 path ran in f32");
        }
    }
}

#[test]
fn memory_estimate_counts_the_bundle_weights_and_a_batch_linear_activation_peak() {
    let (path, _) = oracle_bundle();
    let e = engine(path);
    let one = e.memory_estimate(1).unwrap();
    let eight = e.memory_estimate(8).unwrap();
    assert_eq!(one.bundle_bytes, e.bundle().file_len());
    assert!(one.weight_bytes > 0 && one.activation_bytes > 0);
    assert_eq!(one.weight_bytes, eight.weight_bytes);
    // The activation figure never falls below the count of the plan's own tensors: the
    // oracle's dynamic-batch graphs run one image per plan, two plans at once on two threads.
    let counted =
        |b| [NetKey::A, NetKey::B].iter().map(|&k| e.net(k).unwrap().activation_bytes(b)).max().unwrap() as u64;
    assert_eq!(counted(8), 2 * counted(1));
    assert!(eight.activation_bytes >= counted(8));
    if one.measured {
        // Linux: the base is the process's peak after probing, which holds the weights.
        assert!(one.process_peak_bytes > one.weight_bytes);
        assert_eq!(one.total_bytes, one.process_peak_bytes + one.bundle_bytes + one.working_bytes);
    } else {
        assert_eq!(one.total_bytes, one.bundle_bytes + one.weight_bytes + one.activation_bytes + one.working_bytes);
    }
    // A measured estimate follows the process's peak, which other tests in this process raise:
    // judge the budget against a fresh estimate, with room either side.
    let budget = e.memory_estimate(1).unwrap().total_bytes as f64 / 1048576.0;
    assert!(e.check_memory_budget(budget * 2.0, 1).is_ok());
    match e.check_memory_budget(budget * 0.5, 1) {
        Err(Error::MemoryBudget { needed_mib, budget_mib, detail }) => {
            assert!(needed_mib > budget_mib && detail.contains("bundle") && detail.contains("batch 1"), "{detail}");
        }
        other => panic!("expected a budget refusal, got {other:?}"),
    }
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
    assert!(msg.contains("t = 500, 250") && msg.contains("--t 300"), "{msg}");
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
