//! Intra-op threading (one image's run shared among the threads: brenier's convolutions on a
//! crew, or every operator across the pool; runtime/src/backend/intra_op.rs) is a speed lever
//! only: it must not change a bit of ε. The shipped demo UNet (28×28, most of its matrix
//! products above tract's splitting thresholds) is run each way on both threads of a pool and
//! compared with one thread.

use std::path::PathBuf;

use brenier::backend::intra_op::IntraOpPolicy;
use brenier::backend::{CpuBackend, OnePiece};
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
    // The decision is the policy's: the comparison below is between the paths.
    let want = match policy {
        IntraOpPolicy::On => OnePiece::All,
        IntraOpPolicy::Kernels | IntraOpPolicy::Auto => OnePiece::Kernels,
        IntraOpPolicy::Off => OnePiece::Serial,
    };
    assert_eq!(engine.net(key).unwrap().one_piece(), want, "{policy:?}");
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
        let (whole, batched_whole) = eps(IntraOpPolicy::Off, key, x, n, t);
        assert!(whole.iter().all(|v| v.is_finite()) && whole.iter().any(|&v| v != 0.0), "{key:?}: degenerate ε");
        // A batch of 3 on 2 threads runs data parallel, one image per piece, with no split.
        assert!(
            batched_whole.iter().zip(&whole).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{key:?}: a batch differs from its images run alone"
        );
        for policy in [IntraOpPolicy::On, IntraOpPolicy::Kernels] {
            let (split, batched_split) = eps(policy, key, x, n, t);
            // Bit for bit: tract splits products by output tiles and brenier's convolutions
            // split by output rows or channels, never along a sum.
            assert!(
                split.iter().zip(&whole).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{key:?} {policy:?}: the split changed ε"
            );
            // Several pieces never split, whatever the policy: the same path, the same bits.
            assert_eq!(batched_split, batched_whole, "{key:?} {policy:?}");
        }
    }
}

/// The demo UNet's convolutions are brenier's: by default one image shares them with the crew
/// (tract's operators split across the pool measured slower, benches/results/intra-op.json).
#[test]
fn the_demo_network_shares_its_convolutions_by_default() {
    let backend = CpuBackend::new(2).unwrap().with_intra_op(IntraOpPolicy::Auto);
    let engine = Engine::new(Bundle::open(root().join("assets/demo.brn")).unwrap(), Box::new(backend)).unwrap();
    assert_eq!(engine.net(NetKey::A).unwrap().one_piece(), OnePiece::Kernels);
}
