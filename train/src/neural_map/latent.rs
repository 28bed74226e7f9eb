//! The neural map between two domains' latents at the encode time T: UNet maps (x ↦ x + UNet(x, T))
//! trained on forward-noised training images, x_T = √ᾱ_T·x_0 + √(1 − ᾱ_T)·ε — samples of each
//! domain's marginal at T, unlimited and free of network evaluations — and their ONNX export.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};

use super::{MapNet, Measures};
use crate::data::ImageSet;
use crate::model::{UNet, UNetConfig};
use crate::params::host;
use brenier::rng::NoiseStream;

#[derive(Module, Debug)]
pub struct UNetMap {
    pub net: UNet,
    /// The time fed to the UNet (the map's T), and the image shape.
    pub t: usize,
    pub channels: usize,
    pub size: usize,
}

impl UNetMap {
    pub fn new(cfg: &UNetConfig, t: usize, size: usize, device: &Device) -> UNetMap {
        let cfg = UNetConfig { num_classes: 0, ..cfg.clone() };
        UNetMap { net: UNet::new(&cfg, device), t, channels: cfg.in_channels, size }
    }
}

impl MapNet for UNetMap {
    fn transport(&self, x: Tensor<2>) -> Tensor<2> {
        let [n, d] = x.dims();
        let image = x.clone().reshape([n, self.channels, self.size, self.size]);
        let t = Tensor::<1>::from_floats(vec![self.t as f32; n].as_slice(), &x.device());
        x + self.net.forward(image, t, None).reshape([n, d])
    }
}

/// The two domains' marginals at T, sampled by forward noise from their training images.
pub struct LatentPair<'a> {
    pub a: &'a ImageSet,
    pub b: &'a ImageSet,
    pub alpha_bar: f64,
}

impl LatentPair<'_> {
    fn sample(&self, set: &ImageSet, n: usize, seed: u64, stream: u64) -> Vec<f32> {
        let d = set.image.elems();
        let pick = NoiseStream::new(seed, stream);
        let eps = NoiseStream::new(seed, stream + 1).normal(n * d);
        (0..n)
            .flat_map(|j| {
                let x0 = set.get(pick.index(j as u64, set.len()));
                brenier::sched::noise_forward(self.alpha_bar, x0, &eps[j * d..(j + 1) * d])
            })
            .collect()
    }
}

impl Measures for LatentPair<'_> {
    fn dim(&self) -> usize {
        self.a.image.elems()
    }

    fn source(&self, n: usize, seed: u64, step: usize) -> Vec<f32> {
        self.sample(self.a, n, seed, 4 * step as u64)
    }

    fn target(&self, n: usize, seed: u64, step: usize) -> Vec<f32> {
        self.sample(self.b, n, seed, 4 * step as u64 + 2)
    }
}

/// Runs the exported map through tract (brenier's CPU backend) and `map` through burn on the
/// same probe; returns the max error relative to max |y|.
pub fn map_parity(map: &UNetMap, onnx: &[u8]) -> anyhow::Result<f32> {
    use brenier::backend::{Backend, CpuBackend};
    use brenier::bundle::ImageSpec;
    let n = 2usize;
    let image = ImageSpec { channels: map.channels, height: map.size, width: map.size };
    let d = image.elems();
    let x = NoiseStream::new(1, 0).normal(n * d);
    let spec = brenier::onnx::signature(&brenier::onnx::decode(onnx, "map")?, "map")?.net_spec("map");
    let runner = CpuBackend::new(1)?.load_net(onnx, &spec, image, "map")?;
    let got = runner.run(&x, n, map.t as i64)?;
    let want = host(map.transport(Tensor::from_data(TensorData::new(x, [n, d]), &Device::flex())));
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
    Ok(got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) / scale)
}
