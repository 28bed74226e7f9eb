//! The neural-map section end to end, with the closed-form Gaussian OT map standing where a
//! trained network goes: exported into the oracle bundle, read back, run by `neural-ot`
//! translation, checked against the map computed here in f64 and against B's latent law.

use brenier::bundle::Bundle;
use brenier::linalg::matvec;
use brenier::pipeline::{NetTime, Silent, TranslateMethod, TranslateOptions};
use brenier::rng::NoiseStream;
use brenier::{Error, NetKey};
use brenier_tests::*;

const T: usize = NEURAL_MAP_T;

#[test]
fn neural_ot_runs_the_stored_map_between_encode_and_decode() {
    let dir = tempfile::tempdir().unwrap();
    let (path, pair, a, c) = write_neural_map_bundle(dir.path());
    let engine = engine(&path);
    let m = engine.bundle().manifest().clone();
    assert_eq!(m.neural_maps.len(), 1);
    assert_eq!(m.neural_maps[0].net.section, "map.ab@t500");
    let d = IMAGE.elems();
    let n = 64;
    let x0 = pair.a.sample_at(1.0, &NoiseStream::new(3, 0).normal(n * d));
    let opts = TranslateOptions { method: TranslateMethod::NeuralOt, steps: Some(25), ..Default::default() };
    let got = engine.translate(&x0, &opts, &Silent).unwrap();
    assert_eq!(got.t, T);
    assert_eq!(got.nfe, 50, "the map is not a diffusion step: 25 encode + 25 decode evaluations");
    let stats = got.map.as_ref().unwrap();
    assert_eq!(stats.map, "a->b");
    assert_eq!(stats.nearest_target_distance.len(), n, "measured against the a->b targets at the same T");

    // The same pipeline with the map applied here, in f64, from the same encoded latents.
    let mut z = x0.clone();
    engine.encode(NetKey::A, &mut z, T, 25, &Silent, &mut NetTime::default()).unwrap();
    let mut mapped: Vec<f32> = z
        .chunks(d)
        .flat_map(|row| {
            let ax = matvec(&a, &row.iter().map(|&v| v as f64).collect::<Vec<_>>(), d);
            ax.iter().zip(&c).map(|(p, q)| (p + q) as f32).collect::<Vec<_>>()
        })
        .collect();
    engine.decode(NetKey::B, &mut mapped, T, 25, 0.0, 0, &Silent, &mut NetTime::default()).unwrap();
    let err = got.images.iter().zip(&mapped).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
    // The stored map's weights are fp16 (rounding 2⁻¹¹ relative, through a D-term sum).
    assert!(err < 2e-2, "neural-ot output differs from the f64 map by {err}");
}

#[test]
fn neural_map_carries_a_latents_onto_b_latent_law() {
    let dir = tempfile::tempdir().unwrap();
    let (path, pair, _, _) = write_neural_map_bundle(dir.path());
    let engine = engine(&path);
    let d = IMAGE.elems();
    let n = 4096;
    let ab = engine.schedule().alpha_bar(T as i64);
    let mut x = pair.a.sample_at(ab, &NoiseStream::new(8, 0).normal(n * d));
    let before = moments(&x, d);
    engine.apply_neural_map(0, &mut x).unwrap();
    let (mean, cov) = moments(&x, d);
    let (tm, tc) = latent_moments(&pair.b, ab);
    let (em, ec) = (max_abs_diff(&mean, &tm), max_abs_diff(&cov, &tc));
    let bm = max_abs_diff(&before.0, &tm);
    // 4096 exact samples: sampling error ≈ 0.02 per unit variance; fp16 weights add ~1e-3.
    assert!(em < 0.08 && ec < 0.1, "mapped latents: mean err {em}, cov err {ec}");
    assert!(bm > 3.0 * em, "the map must move A's latents to B's (before {bm}, after {em})");
}

#[test]
fn a_bundle_without_the_map_or_at_another_t_says_so() {
    let (path, _) = oracle_bundle();
    let plain = engine(path);
    let x = vec![0.0f32; IMAGE.elems()];
    let opts = TranslateOptions { method: TranslateMethod::NeuralOt, ..Default::default() };
    let e = plain.translate(&x, &opts, &Silent).unwrap_err();
    assert!(matches!(e, Error::NoNeuralMap { .. }), "{e}");
    assert!(e.to_string().contains("brenier export --neural-map"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let (path, _, _, _) = write_neural_map_bundle(dir.path());
    let engine = engine(&path);
    let opts = TranslateOptions { method: TranslateMethod::NeuralOt, t: Some(250), ..Default::default() };
    let e = engine.translate(&x, &opts, &Silent).unwrap_err();
    assert!(e.to_string().contains("a->b at t = 250") && e.to_string().contains("a->b (t = 500)"), "{e}");
    let opts = TranslateOptions { method: TranslateMethod::NeuralOt, tau: Some(0.5), ..Default::default() };
    assert!(matches!(engine.translate(&x, &opts, &Silent), Err(Error::InvalidArgument(_))));
}

#[test]
fn manifest_refuses_bad_neural_maps() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, _, _) = write_neural_map_bundle(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    let json = Bundle::open(&path).unwrap().manifest().to_json();
    let edit = |f: &dyn Fn(&mut serde_json::Value), want: &str| {
        let mut m: serde_json::Value = serde_json::from_slice(&json).unwrap();
        f(&mut m);
        let edited = bundle_edit::with_manifest(&bytes, &serde_json::to_vec(&m).unwrap());
        let e =
            Bundle::from_bytes(&edited).err().unwrap_or_else(|| panic!("accepted a bundle that should fail: {want}"));
        assert!(e.to_string().contains(want), "expected `{want}` in: {e}");
    };
    edit(&|m| m["neural_maps"][0]["source"] = "c".into(), "at `neural_maps[0].source`: unknown domain `c`");
    edit(&|m| m["neural_maps"][0]["target"] = "a".into(), "onto itself");
    edit(&|m| m["neural_maps"][0]["t"] = 1000.into(), "beyond n_train");
    edit(&|m| m["neural_maps"][0]["net"]["section"] = "net.a".into(), "reuses section `net.a`");
    edit(&|m| m["neural_maps"][0]["net"]["section"] = "ot.heights.0".into(), "must be ONNX bytes");
    edit(&|m| m["neural_maps"][0]["net"]["section"] = "map.zz".into(), "map.zz");
    edit(
        &|m| {
            let first = m["neural_maps"][0].clone();
            m["neural_maps"].as_array_mut().unwrap().push(first);
        },
        "appears twice",
    );
}

#[test]
fn the_memory_estimate_counts_the_neural_maps_weights() {
    let (plain_path, _) = oracle_bundle();
    let dir = tempfile::tempdir().unwrap();
    let (path, _, _, _) = write_neural_map_bundle(dir.path());
    let (plain, with_map) = (engine(plain_path), engine(&path));
    // The static estimate (no probe figures): deterministic, whatever else this process runs.
    let counted = brenier::pipeline::memory::MemoryProbe::default();
    let (before, after) = (plain.estimate_memory(&counted, 2).unwrap(), with_map.estimate_memory(&counted, 2).unwrap());
    // The affine map holds Aᵀ (D×D) and c (D) as parameters, run in f32 here.
    let d = IMAGE.elems() as u64;
    let map_bytes = (d * d + d) * 4;
    let grown = after.weight_bytes - before.weight_bytes;
    assert!((map_bytes..map_bytes + 64).contains(&grown), "weights grew by {grown} B, the map holds {map_bytes} B");
    assert!(after.total_bytes > before.total_bytes);
}
