//! Neural-map runs: a run resumes from its checkpoint with the same trace and takes the same steps
//! as an uninterrupted run (and refuses another configuration), and a seconds-long latent run on
//! the committed Fashion-MNIST sample trains UNet maps whose ONNX export computes what burn
//! computes.

use std::path::Path;

use brenier_train::data::{load_fashion_mnist, Split};
use brenier_train::model::UNetConfig;
use brenier_train::neural_map::latent::{map_parity, LatentPair, UNetMap};
use brenier_train::neural_map::{train, DiotmConfig, MlpMap, Toy};
use brenier_train::onnx::export_unet_map;

fn toy_config(steps: usize) -> DiotmConfig {
    DiotmConfig { steps, batch: 64, value_hidden: vec![32], checkpoint_every: 10, ..DiotmConfig::default() }
}

#[test]
fn a_run_resumes_with_the_same_trace() {
    let toy = Toy::eight_gaussians();
    let dir = tempfile::tempdir().unwrap();
    let map = |dev: &burn::tensor::Device| MlpMap::new(2, &[32], dev);
    let first = train(&toy, &toy_config(20), map, dir.path(), false, |_| {}).unwrap();
    let run = train(&toy, &toy_config(40), map, dir.path(), true, |_| {}).unwrap();
    assert_eq!(run.log.len(), 40, "resume continues the trace");
    assert_eq!(run.log[..20], first.log[..], "the resumed run keeps the first part");
    let csv = std::fs::read_to_string(dir.path().join("loss.csv")).unwrap();
    assert_eq!(csv.lines().count(), 41, "loss.csv holds a header and every step once");
    let other = DiotmConfig { hjb: 0.0, ..toy_config(60) };
    let e = train(&toy, &other, map, dir.path(), true, |_| {}).err().expect("another configuration must not resume");
    assert!(e.to_string().contains("another configuration"), "{e}");
}

#[test]
fn latent_maps_train_and_export() {
    let set = load_fashion_mnist(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data"), Split::Test).unwrap();
    let (a, b) = (set.filter_classes(&[7]), set.filter_classes(&[9]));
    assert!(!a.is_empty() && !b.is_empty(), "the committed sample holds both classes");
    let pair = LatentPair { a: &a, b: &b, alpha_bar: 0.3 };
    let unet =
        UNetConfig { channels: [8, 8, 8], time_dim: 8, attention: false, num_classes: 0, ..UNetConfig::default() };
    let cfg = DiotmConfig { steps: 3, batch: 4, value_hidden: vec![16], checkpoint_every: 3, ..DiotmConfig::default() };
    let dir = tempfile::tempdir().unwrap();
    let trained = train(&pair, &cfg, |dev| UNetMap::new(&unet, 500, 28, dev), dir.path(), false, |_| {}).unwrap();
    assert_eq!(trained.log.len(), 3);
    assert!(dir.path().join("ckpt/forward.npy").exists() && dir.path().join("ckpt/value.bpk").exists());
    for map in [&trained.forward, &trained.backward] {
        let onnx = brenier_export::onnx_build::to_bytes(&export_unet_map(&map.net, 1, 28));
        let err = map_parity(map, &onnx).unwrap();
        assert!(err < 1e-4, "trained map export differs from burn by {err}");
    }
}

/// Copies a checkpoint folder (flat) so a run can be resumed from a step it has passed.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn a_resumed_run_continues_exactly_where_the_uninterrupted_run_goes() {
    // The optimizer's moments must come back with the weights: burn keys them by parameter id,
    // and a restarted Adam would take other steps from the first resumed step on.
    let toy = Toy::eight_gaussians();
    let map = |dev: &burn::tensor::Device| MlpMap::new(2, &[32], dev);
    let (straight_dir, resumed_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let straight = train(&toy, &toy_config(40), map, straight_dir.path(), false, |s| {
        // The step-20 checkpoint is on disk once step 21 is logged.
        if s.step == 21 {
            copy_dir(&straight_dir.path().join("ckpt"), &resumed_dir.path().join("ckpt"));
        }
    })
    .unwrap();
    let ckpt_bytes = |dir: &Path| std::fs::metadata(dir.join("ckpt/forward.bpk")).unwrap().len();
    let resumed = train(&toy, &toy_config(40), map, resumed_dir.path(), true, |_| {}).unwrap();
    for (a, b) in straight.log[20..].iter().zip(&resumed.log[20..]) {
        let close = |x: f32, y: f32| (x - y).abs() <= 1e-4 * x.abs().max(1.0);
        assert!(close(a.objective, b.objective) && close(a.cost, b.cost), "step {}: {a:?} vs {b:?}", a.step);
    }
    // A stale state kept beside the live one would double the file (the recorder compresses,
    // so sizes vary by a few per cent with the values).
    let (got, want) = (ckpt_bytes(resumed_dir.path()), ckpt_bytes(straight_dir.path()));
    assert!(got * 4 < want * 5, "the optimizer state grew on resume: {got} B against {want} B uninterrupted");
}

#[test]
fn a_checkpoint_without_its_optimizer_states_resumes_as_a_warm_restart() {
    // The committed runs ship without their Adam states: resuming one keeps the weights, the step
    // and the trace, restarts Adam, and takes other steps than the exact continuation would.
    let toy = Toy::eight_gaussians();
    let map = |dev: &burn::tensor::Device| MlpMap::new(2, &[32], dev);
    let (exact_dir, warm_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    train(&toy, &toy_config(20), map, exact_dir.path(), false, |_| {}).unwrap();
    copy_dir(&exact_dir.path().join("ckpt"), &warm_dir.path().join("ckpt"));
    for name in ["forward.bpk", "backward.bpk", "value.bpk"] {
        std::fs::remove_file(warm_dir.path().join("ckpt").join(name)).unwrap();
    }
    let exact = train(&toy, &toy_config(40), map, exact_dir.path(), true, |_| {}).unwrap();
    let warm = train(&toy, &toy_config(40), map, warm_dir.path(), true, |_| {}).unwrap();
    assert_eq!(warm.log.len(), 40, "the warm restart continues the trace");
    assert_eq!(warm.log[..20], exact.log[..20], "and keeps its first part");
    assert!(warm_dir.path().join("ckpt/forward.bpk").exists(), "its next checkpoint holds the new optimizer state");
    // Step 21's objective and cost are computed on the restored weights before its first update
    // (one map step per step), so they match exactly (a resume that lost the weights would not);
    // from then on the updates differ by more than float noise.
    let (w, e) = (&warm.log[20], &exact.log[20]);
    assert_eq!((w.objective, w.cost), (e.objective, e.cost), "the warm restart lost the checkpointed weights");
    let differs = warm.log[21..]
        .iter()
        .zip(&exact.log[21..])
        .any(|(w, e)| (w.objective - e.objective).abs() > 1e-3 * e.objective.abs().max(1.0));
    assert!(differs, "a restarted Adam took the same steps as the restored one");
}
