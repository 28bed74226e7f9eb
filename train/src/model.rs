//! The ε-prediction UNet trained here, in burn. Its structure is mirrored node for node by
//! `onnx.rs`, which writes the same network as the ONNX graph PyTorch users bring (GroupNorm as
//! the InstanceNormalization pattern, SiLU as x·sigmoid(x), nearest Resize + Conv, the
//! sinusoidal timestep embedding computed in the graph from an int64 `t`).
//!
//! Layout at 28×28 (channels c1/c2/c3 at 28/14/7):
//! conv_in → res(c1) ─────────────────────────────────────────┐ skip0
//!   → down (stride-2 conv) → res(c1→c2) ─────────────────┐ skip1 │
//!   → down → res(c2→c3) → [attention] → res(c3)            │     │
//!   → up (nearest ×2, conv) → concat skip1 → res(c3+c2→c2) ┘     │
//!   → up → concat skip0 → res(c2+c1→c1) ─────────────────────────┘ → GN → SiLU → conv_out

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::{Device, Int, Tensor};

/// GroupNorm groups everywhere (channel counts are multiples of 8).
pub const GROUPS: usize = 8;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct UNetConfig {
    pub in_channels: usize,
    pub channels: [usize; 3],
    /// Width of the sinusoidal embedding; the time MLP is 4× wider.
    pub time_dim: usize,
    /// Classes for conditioning (one network for both domains); 0 = unconditional.
    pub num_classes: usize,
    /// Self-attention at the lowest resolution.
    pub attention: bool,
}

impl Default for UNetConfig {
    fn default() -> Self {
        UNetConfig { in_channels: 1, channels: [32, 64, 64], time_dim: 32, num_classes: 10, attention: true }
    }
}

impl UNetConfig {
    /// Refuses channel counts the network cannot be built with (every GroupNorm splits its
    /// channels into [`GROUPS`] groups), before burn asserts on them.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(c) = self.channels.iter().find(|&&c| c == 0 || !c.is_multiple_of(GROUPS)) {
            anyhow::bail!(
                "UNet channels {:?}: {c} is not a positive multiple of {GROUPS} (each GroupNorm has {GROUPS} groups); \
                 use e.g. 8,16,16",
                self.channels
            );
        }
        Ok(())
    }
}

fn conv(cin: usize, cout: usize, k: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
        .init(device)
}

fn norm(c: usize, device: &Device) -> GroupNorm {
    GroupNormConfig::new(GROUPS, c).init(device)
}

#[derive(Module, Debug)]
pub struct ResBlock {
    pub norm1: GroupNorm,
    pub conv1: Conv2d,
    pub emb: Linear,
    pub norm2: GroupNorm,
    pub conv2: Conv2d,
    pub skip: Option<Conv2d>,
}

impl ResBlock {
    fn new(cin: usize, cout: usize, emb_dim: usize, device: &Device) -> Self {
        ResBlock {
            norm1: norm(cin, device),
            conv1: conv(cin, cout, 3, 1, device),
            emb: LinearConfig::new(emb_dim, cout).init(device),
            norm2: norm(cout, device),
            conv2: conv(cout, cout, 3, 1, device),
            skip: (cin != cout).then(|| conv(cin, cout, 1, 1, device)),
        }
    }

    fn forward(&self, x: Tensor<4>, emb: Tensor<2>) -> Tensor<4> {
        let h = self.conv1.forward(silu(self.norm1.forward(x.clone())));
        let [n, c] = [h.dims()[0], h.dims()[1]];
        let h = h + self.emb.forward(silu(emb)).reshape([n, c, 1, 1]);
        let h = self.conv2.forward(silu(self.norm2.forward(h)));
        match &self.skip {
            Some(s) => s.forward(x) + h,
            None => x + h,
        }
    }
}

/// Single-head self-attention over the H·W positions, with a residual connection.
#[derive(Module, Debug)]
pub struct Attention {
    pub norm: GroupNorm,
    pub qkv: Conv2d,
    pub proj: Conv2d,
}

impl Attention {
    fn new(c: usize, device: &Device) -> Self {
        Attention { norm: norm(c, device), qkv: conv(c, 3 * c, 1, 1, device), proj: conv(c, c, 1, 1, device) }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [n, c, h, w] = x.dims();
        let qkv = self.qkv.forward(self.norm.forward(x.clone())).reshape([n, 3 * c, h * w]);
        let q = qkv.clone().narrow(1, 0, c);
        let k = qkv.clone().narrow(1, c, c);
        let v = qkv.narrow(1, 2 * c, c);
        let att = softmax(q.swap_dims(1, 2).matmul(k).div_scalar((c as f32).sqrt()), 2);
        let out = v.matmul(att.swap_dims(1, 2)).reshape([n, c, h, w]);
        x + self.proj.forward(out)
    }
}

#[derive(Module, Debug)]
pub struct UNet {
    pub time1: Linear,
    pub time2: Linear,
    pub class_emb: Option<Embedding>,
    pub conv_in: Conv2d,
    pub res0: ResBlock,
    pub down0: Conv2d,
    pub res1: ResBlock,
    pub down1: Conv2d,
    pub res2: ResBlock,
    pub attn: Option<Attention>,
    pub res_mid: ResBlock,
    pub up1: Conv2d,
    pub res_up1: ResBlock,
    pub up0: Conv2d,
    pub res_up0: ResBlock,
    pub norm_out: GroupNorm,
    pub conv_out: Conv2d,
    pub time_dim: usize,
}

impl UNet {
    pub fn new(cfg: &UNetConfig, device: &Device) -> UNet {
        let [c1, c2, c3] = cfg.channels;
        let e = 4 * cfg.time_dim;
        UNet {
            time1: LinearConfig::new(cfg.time_dim, e).init(device),
            time2: LinearConfig::new(e, e).init(device),
            class_emb: (cfg.num_classes > 0).then(|| EmbeddingConfig::new(cfg.num_classes, e).init(device)),
            conv_in: conv(cfg.in_channels, c1, 3, 1, device),
            res0: ResBlock::new(c1, c1, e, device),
            down0: conv(c1, c1, 3, 2, device),
            res1: ResBlock::new(c1, c2, e, device),
            down1: conv(c2, c2, 3, 2, device),
            res2: ResBlock::new(c2, c3, e, device),
            attn: cfg.attention.then(|| Attention::new(c3, device)),
            res_mid: ResBlock::new(c3, c3, e, device),
            up1: conv(c3, c3, 3, 1, device),
            res_up1: ResBlock::new(c3 + c2, c2, e, device),
            up0: conv(c2, c2, 3, 1, device),
            res_up0: ResBlock::new(c2 + c1, c1, e, device),
            norm_out: norm(c1, device),
            conv_out: conv(c1, cfg.in_channels, 3, 1, device),
            time_dim: cfg.time_dim,
        }
    }

    /// ε(x, t, class). `t` holds train steps as floats; `class` is ignored when unconditional.
    pub fn forward(&self, x: Tensor<4>, t: Tensor<1>, class: Option<Tensor<1, Int>>) -> Tensor<4> {
        let device = x.device();
        let emb = timestep_embedding(t, self.time_dim, &device);
        let mut emb = self.time2.forward(silu(self.time1.forward(emb)));
        if let (Some(ce), Some(c)) = (&self.class_emb, class) {
            let n = c.dims()[0];
            emb = emb + ce.forward(c.reshape([n, 1])).reshape([n, self.time2.weight.val().dims()[1]]);
        }
        let h0 = self.res0.forward(self.conv_in.forward(x), emb.clone());
        let h1 = self.res1.forward(self.down0.forward(h0.clone()), emb.clone());
        let mut m = self.res2.forward(self.down1.forward(h1.clone()), emb.clone());
        if let Some(a) = &self.attn {
            m = a.forward(m);
        }
        let m = self.res_mid.forward(m, emb.clone());
        let u = self.up1.forward(upsample_to(m, h1.dims()));
        let u = self.res_up1.forward(Tensor::cat(vec![u, h1], 1), emb.clone());
        let u = self.up0.forward(upsample_to(u, h0.dims()));
        let u = self.res_up0.forward(Tensor::cat(vec![u, h0], 1), emb);
        self.conv_out.forward(silu(self.norm_out.forward(u)))
    }
}

/// Nearest upsampling to the skip tensor's spatial size (7→14→28: an exact ×2).
fn upsample_to(x: Tensor<4>, like: [usize; 4]) -> Tensor<4> {
    use burn::nn::interpolate::{Interpolate2dConfig, InterpolateMode};
    Interpolate2dConfig::new()
        .with_output_size(Some([like[2], like[3]]))
        .with_mode(InterpolateMode::Nearest)
        .init()
        .forward(x)
}

/// Frequencies of the sinusoidal embedding: exp(−ln(10⁴)·i/half), i = 0..half.
pub fn frequencies(dim: usize) -> Vec<f32> {
    let half = dim / 2;
    (0..half).map(|i| (-(10_000f64.ln()) * i as f64 / half as f64).exp() as f32).collect()
}

/// [cos(t·f), sin(t·f)] as in guided-diffusion.
pub fn timestep_embedding(t: Tensor<1>, dim: usize, device: &Device) -> Tensor<2> {
    let n = t.dims()[0];
    let f = frequencies(dim);
    let freqs = Tensor::<1>::from_floats(f.as_slice(), device).reshape([1, dim / 2]);
    let args = t.reshape([n, 1]).matmul(freqs);
    Tensor::cat(vec![args.clone().cos(), args.sin()], 1)
}
