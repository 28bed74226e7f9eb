//! ONNX export of the trained UNet, node for node as `model.rs` computes it, in the form
//! `torch.onnx.export` writes (opset 17): GroupNorm as Reshape → InstanceNormalization → Reshape
//! → Mul → Add, SiLU as Sigmoid·Mul, Linear as Gemm, nearest Resize (asymmetric, floor), and the
//! sinusoidal embedding computed in the graph from an int64 `t`. The class of a class-conditional
//! network is folded in as a constant, so each export is a plain ε(x, t) network.

use brenier_export::onnx_build::pb_types as pb;
use brenier_export::onnx_build::*;
use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, Linear};
use burn::tensor::{Int, Tensor};

use crate::model::{frequencies, Attention, ResBlock, UNet, GROUPS};
use crate::params::host;

fn values<const D: usize>(p: &Param<Tensor<D>>) -> (Vec<i64>, Vec<f32>) {
    let t = p.val();
    let dims = t.dims().iter().map(|&d| d as i64).collect();
    (dims, host(t))
}

/// Accumulates nodes and initializers with unique names.
pub(crate) struct Graph {
    nodes: Vec<pb::NodeProto>,
    inits: Vec<pb::TensorProto>,
    n: usize,
}

impl Graph {
    pub(crate) fn new() -> Graph {
        Graph { nodes: vec![], inits: vec![], n: 0 }
    }

    /// Finishes the graph with `out` renamed to the output `name` and wraps it in a model.
    pub(crate) fn finish(
        mut self,
        out: &str,
        name: &str,
        inputs: Vec<pb::ValueInfoProto>,
        output: pb::ValueInfoProto,
    ) -> pb::ModelProto {
        self.nodes.push(node("Identity", name, &[out], &[name], vec![]));
        let graph = pb::GraphProto {
            name: "brenier_train".into(),
            node: self.nodes,
            initializer: self.inits,
            input: inputs,
            output: vec![output],
            ..Default::default()
        };
        model(graph, 17, "brenier-train")
    }

    fn name(&mut self, stem: &str) -> String {
        self.n += 1;
        format!("{stem}_{}", self.n)
    }

    fn init(&mut self, stem: &str, dims: &[i64], v: &[f32]) -> String {
        let name = self.name(stem);
        self.inits.push(tensor_f32(&name, dims, v));
        name
    }

    pub(crate) fn init_i64(&mut self, stem: &str, v: &[i64]) -> String {
        let name = self.name(stem);
        self.inits.push(tensor_i64(&name, &[v.len() as i64], v));
        name
    }

    pub(crate) fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<pb::AttributeProto>) -> String {
        let out = self.name(&op.to_lowercase());
        self.nodes.push(node(op, &out, inputs, &[&out], attrs));
        out
    }

    pub(crate) fn silu(&mut self, x: &str) -> String {
        let s = self.op("Sigmoid", &[x], vec![]);
        self.op("Mul", &[x, &s], vec![])
    }

    pub(crate) fn linear(&mut self, x: &str, l: &Linear) -> String {
        let (wd, w) = values(&l.weight);
        let w = self.init("linear_w", &wd, &w);
        match &l.bias {
            Some(b) => {
                let (bd, bv) = values(b);
                let b = self.init("linear_b", &bd, &bv);
                self.op("Gemm", &[x, &w, &b], vec![])
            }
            None => self.op("Gemm", &[x, &w], vec![]),
        }
    }

    pub(crate) fn conv(&mut self, x: &str, c: &Conv2d) -> String {
        let (wd, w) = values(&c.weight);
        let k = wd[2];
        let w = self.init("conv_w", &wd, &w);
        let attrs = vec![
            attr_ints("kernel_shape", &[k, k]),
            attr_ints("pads", &[k / 2; 4]),
            attr_ints("strides", &[c.stride[0] as i64, c.stride[1] as i64]),
        ];
        match &c.bias {
            Some(b) => {
                let (bd, bv) = values(b);
                let b = self.init("conv_b", &bd, &bv);
                self.op("Conv", &[x, &w, &b], attrs)
            }
            None => self.op("Conv", &[x, &w], attrs),
        }
    }

    /// GroupNorm exactly as PyTorch exports it.
    fn group_norm(&mut self, x: &str, g: &GroupNorm) -> String {
        let grouped = self.init_i64("gn_shape", &[0, GROUPS as i64, -1]);
        let r = self.op("Reshape", &[x, &grouped], vec![]);
        let ones = self.init("gn_one", &[GROUPS as i64], &[1.0; GROUPS]);
        let zeros = self.init("gn_zero", &[GROUPS as i64], &[0.0; GROUPS]);
        let n = self.op("InstanceNormalization", &[&r, &ones, &zeros], vec![attr_float("epsilon", g.epsilon as f32)]);
        let shape = self.op("Shape", &[x], vec![]);
        let back = self.op("Reshape", &[&n, &shape], vec![]);
        let (Some(gamma), Some(beta)) = (&g.gamma, &g.beta) else { return back };
        let (gd, gv) = values(gamma);
        let (_, bv) = values(beta);
        let gamma = self.init("gn_gamma", &[gd[0], 1, 1], &gv);
        let beta = self.init("gn_beta", &[gd[0], 1, 1], &bv);
        let m = self.op("Mul", &[&back, &gamma], vec![]);
        self.op("Add", &[&m, &beta], vec![])
    }

    fn res_block(&mut self, x: &str, emb_act: &str, b: &ResBlock) -> String {
        let h = self.group_norm(x, &b.norm1);
        let h = self.silu(&h);
        let h = self.conv(&h, &b.conv1);
        let e = self.linear(emb_act, &b.emb);
        let col = self.init_i64("emb_shape", &[0, -1, 1, 1]);
        let e = self.op("Reshape", &[&e, &col], vec![]);
        let h = self.op("Add", &[&h, &e], vec![]);
        let h = self.group_norm(&h, &b.norm2);
        let h = self.silu(&h);
        let h = self.conv(&h, &b.conv2);
        let skip = match &b.skip {
            Some(s) => self.conv(x, s),
            None => x.to_string(),
        };
        self.op("Add", &[&skip, &h], vec![])
    }

    fn attention(&mut self, x: &str, a: &Attention, c: usize) -> String {
        let h = self.group_norm(x, &a.norm);
        let qkv = self.conv(&h, &a.qkv);
        let flat = self.init_i64("attn_flat", &[0, 3 * c as i64, -1]);
        let qkv = self.op("Reshape", &[&qkv, &flat], vec![]);
        let axes = self.init_i64("attn_axes", &[1]);
        let part = |g: &mut Graph, i: i64| {
            let s = g.init_i64("attn_start", &[i * c as i64]);
            let e = g.init_i64("attn_end", &[(i + 1) * c as i64]);
            g.op("Slice", &[&qkv, &s, &e, &axes], vec![])
        };
        let (q, k, v) = (part(self, 0), part(self, 1), part(self, 2));
        let qt = self.op("Transpose", &[&q], vec![attr_ints("perm", &[0, 2, 1])]);
        let s = self.op("MatMul", &[&qt, &k], vec![]);
        let scale = self.init("attn_scale", &[], &[1.0 / (c as f32).sqrt()]);
        let s = self.op("Mul", &[&s, &scale], vec![]);
        let att = self.op("Softmax", &[&s], vec![attr_int("axis", -1)]);
        let att_t = self.op("Transpose", &[&att], vec![attr_ints("perm", &[0, 2, 1])]);
        let out = self.op("MatMul", &[&v, &att_t], vec![]);
        let shape = self.op("Shape", &[x], vec![]);
        let out = self.op("Reshape", &[&out, &shape], vec![]);
        let out = self.conv(&out, &a.proj);
        self.op("Add", &[x, &out], vec![])
    }

    fn upsample(&mut self, x: &str) -> String {
        let scales = self.init("up_scales", &[4], &[1.0, 1.0, 2.0, 2.0]);
        self.op(
            "Resize",
            &[x, "", &scales],
            vec![
                pb::AttributeProto {
                    name: "mode".into(),
                    s: b"nearest".to_vec(),
                    r#type: pb::attribute_proto::AttributeType::String as i32,
                    ..Default::default()
                },
                pb::AttributeProto {
                    name: "coordinate_transformation_mode".into(),
                    s: b"asymmetric".to_vec(),
                    r#type: pb::attribute_proto::AttributeType::String as i32,
                    ..Default::default()
                },
                pb::AttributeProto {
                    name: "nearest_mode".into(),
                    s: b"floor".to_vec(),
                    r#type: pb::attribute_proto::AttributeType::String as i32,
                    ..Default::default()
                },
            ],
        )
    }
}

/// The ONNX model of `net` for class `class` (ignored when unconditional), input `x`
/// [N, C, H, W] f32 and `t` [N] int64, output `eps`.
pub fn export_unet(net: &UNet, class: usize, in_channels: usize, size: usize) -> pb::ModelProto {
    let (g, out) = unet_graph(net, class);
    finish_image_net(g, &out, "eps", in_channels, size)
}

/// Finishes a graph with the ε-networks' interface: inputs `x` [N, C, S, S] f32 and `t` [N]
/// int64, the output `name` shaped like `x`.
fn finish_image_net(g: Graph, out: &str, name: &str, channels: usize, size: usize) -> pb::ModelProto {
    let (c, s) = (channels as i64, size as i64);
    g.finish(
        out,
        name,
        vec![value_info("x", FLOAT, &[None, Some(c), Some(s), Some(s)]), value_info("t", INT64, &[None])],
        value_info(name, FLOAT, &[None, Some(c), Some(s), Some(s)]),
    )
}

/// A residual map x ↦ x + net(x, t) (the neural OT map's form), with the ε-networks' inputs
/// (`t` is fed the map's time) and output `y`.
pub fn export_unet_map(net: &UNet, in_channels: usize, size: usize) -> pb::ModelProto {
    let (mut g, out) = unet_graph(net, 0);
    let y = g.op("Add", &["x", &out], vec![]);
    finish_image_net(g, &y, "y", in_channels, size)
}

/// The UNet's nodes from inputs `x` and `t`; returns the graph and its output's name.
fn unet_graph(net: &UNet, class: usize) -> (Graph, String) {
    let mut g = Graph::new();
    let half = net.time_dim / 2;
    let tf = g.op("Cast", &["t"], vec![attr_int("to", FLOAT as i64)]);
    let col = g.init_i64("t_col", &[-1, 1]);
    let tc = g.op("Reshape", &[&tf, &col], vec![]);
    let freqs = g.init("freqs", &[1, half as i64], &frequencies(net.time_dim));
    let args = g.op("MatMul", &[&tc, &freqs], vec![]);
    let cos = g.op("Cos", &[&args], vec![]);
    let sin = g.op("Sin", &[&args], vec![]);
    let emb0 = g.op("Concat", &[&cos, &sin], vec![attr_int("axis", 1)]);
    let e = g.linear(&emb0, &net.time1);
    let e = g.silu(&e);
    let mut emb = g.linear(&e, &net.time2);
    if let Some(ce) = &net.class_emb {
        let device = ce.weight.val().device();
        let row = ce.forward(Tensor::<2, Int>::from_ints([[class as i64]], &device));
        let width = row.dims()[2];
        let v = host(row);
        let cv = g.init("class_emb", &[1, width as i64], &v);
        emb = g.op("Add", &[&emb, &cv], vec![]);
    }
    let emb_act = g.silu(&emb);
    let h = g.conv("x", &net.conv_in);
    let h0 = g.res_block(&h, &emb_act, &net.res0);
    let d = g.conv(&h0, &net.down0);
    let h1 = g.res_block(&d, &emb_act, &net.res1);
    let d = g.conv(&h1, &net.down1);
    let mut m = g.res_block(&d, &emb_act, &net.res2);
    if let Some(a) = &net.attn {
        let c = a.proj.weight.val().dims()[0];
        m = g.attention(&m, a, c);
    }
    let m = g.res_block(&m, &emb_act, &net.res_mid);
    let u = g.upsample(&m);
    let u = g.conv(&u, &net.up1);
    let u = g.op("Concat", &[&u, &h1], vec![attr_int("axis", 1)]);
    let u = g.res_block(&u, &emb_act, &net.res_up1);
    let u = g.upsample(&u);
    let u = g.conv(&u, &net.up0);
    let u = g.op("Concat", &[&u, &h0], vec![attr_int("axis", 1)]);
    let u = g.res_block(&u, &emb_act, &net.res_up0);
    let u = g.group_norm(&u, &net.norm_out);
    let u = g.silu(&u);
    let out = g.conv(&u, &net.conv_out);
    (g, out)
}

/// Runs the exported graph through tract (brenier's CPU backend) and the network through burn on
/// the same probe input at t ∈ {3, 500, 999}; returns the max error relative to max |ε|.
pub fn export_parity(net: &UNet, class: usize, in_channels: usize, size: usize, onnx: &[u8]) -> anyhow::Result<f32> {
    use brenier::backend::{Backend, CpuBackend};
    use brenier::bundle::ImageSpec;
    use burn::tensor::{Device, TensorData};
    let device = Device::flex();
    let n = 2usize;
    let x = brenier::rng::NoiseStream::new(1, 0).normal(n * in_channels * size * size);
    let spec = brenier::onnx::signature(&brenier::onnx::decode(onnx, "unet")?, "unet")?.net_spec("net");
    let image = ImageSpec { channels: in_channels, height: size, width: size };
    let runner = CpuBackend::new(1)?.load_net(onnx, &spec, image, "unet")?;
    let mut worst = 0f32;
    for t in [3i64, 500, 999] {
        let xt = Tensor::<4>::from_data(TensorData::new(x.clone(), [n, in_channels, size, size]), &device);
        let tt = Tensor::<1>::from_floats(vec![t as f32; n].as_slice(), &device);
        let ct = net.class_emb.as_ref().map(|_| Tensor::<1, Int>::from_ints(vec![class as i64; n].as_slice(), &device));
        let want = host(net.forward(xt, tt, ct));
        let got = runner.run(&x, n, t)?;
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
        worst = worst.max(got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) / scale);
    }
    Ok(worst)
}
