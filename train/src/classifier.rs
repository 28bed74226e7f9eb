//! The small Fashion-MNIST classifier behind the quality report: its softmax gives target-class
//! accuracy and its penultimate layer the features for the Fréchet distance. Trained here on
//! the train split, exported to ONNX (so evaluation runs through tract like everything else).

use anyhow::{bail, Result};
use brenier::rng::NoiseStream;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::data::ImageSet;
use crate::onnx::Graph;
use brenier_export::onnx_build::pb_types as pb;
use brenier_export::onnx_build::{attr_int, value_info, FLOAT};

/// Width of the feature layer used for the Fréchet distance.
pub const FEATURES: usize = 64;

#[derive(Module, Debug)]
pub struct Classifier {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    pub fc: Linear,
    pub out: Linear,
}

impl Classifier {
    pub fn new(device: &Device) -> Classifier {
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        Classifier {
            conv1: conv(1, 16),
            conv2: conv(16, 32),
            fc: LinearConfig::new(32 * 7 * 7, FEATURES).init(device),
            out: LinearConfig::new(FEATURES, 10).init(device),
        }
    }

    /// (features, logits) for 28×28 images.
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let n = x.dims()[0];
        let h = relu(self.conv2.forward(relu(self.conv1.forward(x))));
        let f = relu(self.fc.forward(h.reshape([n, 32 * 7 * 7])));
        let logits = self.out.forward(f.clone());
        (f, logits)
    }
}

/// Trains on `set` (28×28) for `steps` batches of 64 and returns the network.
pub fn train_classifier(
    set: &ImageSet,
    steps: usize,
    seed: u64,
    mut on_step: impl FnMut(usize, f32),
) -> Result<Classifier> {
    if set.image.height != 28 || set.image.width != 28 || set.image.channels != 1 {
        bail!("the classifier takes 1×28×28 images, got {:?}", set.image);
    }
    let device = Device::flex().autodiff();
    let mut net = Classifier::new(&device);
    let mut optim = AdamWConfig::new().init();
    let pick = NoiseStream::new(seed, 7);
    let b = 64;
    for step in 0..steps {
        let idx: Vec<usize> = (0..b).map(|j| pick.index((step * b + j) as u64, set.len())).collect();
        let x: Vec<f32> = idx.iter().flat_map(|&i| set.get(i).to_vec()).collect();
        let y: Vec<i64> = idx.iter().map(|&i| set.labels[i] as i64).collect();
        let xt = Tensor::<4>::from_data(TensorData::new(x, [b, 1, 28, 28]), &device);
        let yt = Tensor::<1, Int>::from_ints(y.as_slice(), &device).reshape([b, 1]);
        let (_, logits) = net.forward(xt);
        let loss = log_softmax(logits, 1).gather(1, yt).mean().neg();
        let v = crate::params::host(loss.clone()).first().copied().unwrap_or(f32::NAN);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(2e-3, net, grads);
        on_step(step + 1, v);
    }
    crate::params::load(Classifier::new(&Device::flex()), &crate::params::collect(&net)).map_err(anyhow::Error::msg)
}

/// ONNX with input `x` [N,1,28,28] and outputs `logits` [N,10] and `features` [N,64].
pub fn export_classifier(net: &Classifier) -> pb::ModelProto {
    let mut g = Graph::new();
    let h = g.conv("x", &net.conv1);
    let h = g.op("Relu", &[&h], vec![]);
    let h = g.conv(&h, &net.conv2);
    let h = g.op("Relu", &[&h], vec![]);
    let h = g.op("Flatten", &[&h], vec![attr_int("axis", 1)]);
    let f = g.linear(&h, &net.fc);
    let f = g.op("Relu", &[&f], vec![]);
    let logits = g.linear(&f, &net.out);
    let feats = g.op("Identity", &[&f], vec![]);
    let mut m = g.finish(
        &logits,
        "logits",
        vec![value_info("x", FLOAT, &[None, Some(1), Some(28), Some(28)])],
        value_info("logits", FLOAT, &[None, Some(10)]),
    );
    if let Some(graph) = m.graph.as_mut() {
        graph.node.push(brenier_export::onnx_build::node("Identity", "features", &[&feats], &["features"], vec![]));
        graph.output.push(value_info("features", FLOAT, &[None, Some(FEATURES as i64)]));
    }
    m
}
