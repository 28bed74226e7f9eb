//! Neural-map runs: a run resumes from its checkpoint with the same trace (and refuses another
//! configuration), and a seconds-long latent run on the committed Fashion-MNIST sample trains
//! UNet maps whose ONNX export computes what burn computes.

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
