//! The ONNX export of the burn UNet computes what burn computes (through tract, brenier's own
//! CPU backend), for an untrained network with randomised norms so every path carries signal.

use brenier::backend::{Backend, CpuBackend};
use brenier::bundle::ImageSpec;
use brenier::rng::NoiseStream;
use brenier_train::model::{UNet, UNetConfig};
use brenier_train::onnx::export_unet;
use burn::tensor::{Device, Int, Tensor, TensorData};

#[test]
fn exported_unet_matches_burn_forward() {
    let device = Device::flex();
    let cfg = UNetConfig { channels: [16, 16, 32], time_dim: 16, ..UNetConfig::default() };
    let net = UNet::new(&cfg, &device);
    let (n, size) = (2usize, 28usize);
    let x: Vec<f32> = NoiseStream::new(1, 0).normal(n * size * size);
    let class = 7usize;
    for t in [3i64, 500, 999] {
        let xt = Tensor::<4>::from_data(TensorData::new(x.clone(), [n, 1, size, size]), &device);
        let tt = Tensor::<1>::from_floats(vec![t as f32; n].as_slice(), &device);
        let ct = Tensor::<1, Int>::from_ints(vec![class as i64; n].as_slice(), &device);
        let want: Vec<f32> = brenier_train::params::host(net.forward(xt, tt, Some(ct)));
        let onnx = brenier_export::onnx_build::to_bytes(&export_unet(&net, class, 1, size));
        let spec =
            brenier::onnx::signature(&brenier::onnx::decode(&onnx, "unet").unwrap(), "unet").unwrap().net_spec("net");
        let image = ImageSpec { channels: 1, height: size, width: size };
        let got = CpuBackend::new(1).unwrap().load_net(&onnx, &spec, image, "unet").unwrap().eps(&x, n, t).unwrap();
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) / scale;
        println!("t = {t}: ONNX (tract) vs burn max relative error {err:.2e}");
        assert!(err < 1e-4, "t = {t}: {err}");
    }
}
