//! The ONNX export of the burn UNet computes what burn computes (through tract, brenier's own
//! CPU backend) — the check `brenier-train onnx` runs before writing — and that check catches an
//! export that computes something else.

use brenier_train::model::{UNet, UNetConfig};
use brenier_train::onnx::{export_parity, export_unet};
use burn::tensor::Device;

#[test]
fn exported_unet_matches_burn_forward() {
    let cfg = UNetConfig { channels: [16, 16, 32], time_dim: 16, ..UNetConfig::default() };
    let net = UNet::new(&cfg, &Device::flex());
    let size = 28;
    let onnx = brenier_export::onnx_build::to_bytes(&export_unet(&net, 7, 1, size));
    let err = export_parity(&net, 7, 1, size, &onnx).unwrap();
    println!("ONNX (tract) vs burn max relative error {err:.2e}");
    assert!(err < 1e-4, "{err}");
    // The graph of another class folds in another class embedding: the check must see it.
    let wrong = brenier_export::onnx_build::to_bytes(&export_unet(&net, 3, 1, size));
    let err = export_parity(&net, 7, 1, size, &wrong).unwrap();
    assert!(err > 1e-3, "a class-3 graph passed as class 7 ({err:.2e})");
}

/// The neural map's export (x + UNet(x, T), output `y`) matches burn's map, and the check sees a
/// graph exported from other weights.
#[test]
fn exported_unet_map_matches_burn_map() {
    use brenier_train::neural_map::latent::{map_parity, UNetMap};
    use brenier_train::onnx::export_unet_map;
    let cfg = UNetConfig { channels: [8, 16, 16], time_dim: 16, attention: false, ..UNetConfig::default() };
    let map = UNetMap::new(&cfg, 500, 28, &Device::flex());
    let onnx = brenier_export::onnx_build::to_bytes(&export_unet_map(&map.net, 1, 28));
    let err = map_parity(&map, &onnx).unwrap();
    assert!(err < 1e-4, "{err}");
    let other = UNetMap::new(&cfg, 500, 28, &Device::flex());
    let wrong = brenier_export::onnx_build::to_bytes(&export_unet_map(&other.net, 1, 28));
    assert!(map_parity(&map, &wrong).unwrap() > 1e-3, "another network's export passed");
}
