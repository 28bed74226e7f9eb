//! Intra-op threading (one image's run split inside tract's operators across the pool,
//! runtime/src/backend/intra_op.rs) is a speed lever only: it must not change a bit of ε. The
//! shipped demo UNet (28×28, most of its matrix products above tract's splitting thresholds: with
//! the split forced on it takes 1.10–1.12× the time at batch 1, benches/results/intra-op.json,
//! which is the dispatch the split adds) is compared with the split forced on and off, on both
//! threads of a pool.

use std::path::PathBuf;

use brenier::backend::intra_op::IntraOpPolicy;
use brenier::backend::CpuBackend;
use brenier::bundle::Bundle;
use brenier::io::npy;
use brenier::pipeline::NetTime;
use brenier::{Engine, NetKey};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// ε of `key` for each image alone (batch 1) and for all of them as one batch.
fn eps(policy: IntraOpPolicy, key: NetKey, x: &[f32], n: usize, t: i64) -> (Vec<f32>, Vec<f32>) {
    let backend = CpuBackend::new(2).unwrap().with_intra_op(policy);
    let engine = Engine::new(Bundle::open(root().join("assets/demo.brn")).unwrap(), Box::new(backend)).unwrap();
    // The decision is the policy's: the comparison below is between the two paths.
    assert_eq!(engine.net(key).unwrap().splits_one_piece(), policy == IntraOpPolicy::On, "{policy:?}");
    let d = engine.dim();
    let mut time = NetTime::default();
    let alone: Vec<f32> =
        x.chunks(d).flat_map(|img| engine.eps(key, img, 1, t, "intra-op test", &mut time).unwrap()).collect();
    let batched = engine.eps(key, x, n, t, "intra-op test", &mut time).unwrap();
    (alone, batched)
}

#[test]
fn splitting_one_image_across_threads_changes_no_bit() {
    let sources = npy::read(&root().join("assets/demo.calib/sources.npy")).unwrap();
    let n = 3;
    let d: usize = sources.shape[1..].iter().product();
    let x = &sources.data[..n * d];
    for (key, t) in [(NetKey::A, 500), (NetKey::B, 999)] {
        let (split, batched_split) = eps(IntraOpPolicy::On, key, x, n, t);
        let (whole, batched_whole) = eps(IntraOpPolicy::Off, key, x, n, t);
        assert!(split.iter().all(|v| v.is_finite()) && split.iter().any(|&v| v != 0.0), "{key:?}: degenerate ε");
        // Bit for bit: tract splits products by output tiles, never along a sum.
        assert!(split.iter().zip(&whole).all(|(a, b)| a.to_bits() == b.to_bits()), "{key:?}: the split changed ε");
        // A batch of 3 on 2 threads runs data parallel, one image per piece, with no split.
        assert!(
            batched_split.iter().zip(&whole).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{key:?}: a batch differs from its images run alone"
        );
        // Several pieces never split, whatever the policy: the same path, the same bits.
        assert_eq!(batched_split, batched_whole);
    }
}

/// The demo UNet (0.133 G multiply-adds per image) is below the gate: by default it keeps one
/// image on one thread, where the split measured slower (benches/results/intra-op.json).
#[test]
fn the_demo_network_keeps_one_image_on_one_thread_by_default() {
    let backend = CpuBackend::new(2).unwrap().with_intra_op(IntraOpPolicy::Auto);
    let engine = Engine::new(Bundle::open(root().join("assets/demo.brn")).unwrap(), Box::new(backend)).unwrap();
    assert!(!engine.net(NetKey::A).unwrap().splits_one_piece());
}
