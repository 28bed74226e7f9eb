//! A real PyTorch export: the tiny guided-diffusion-style UNet of `fixtures/make_fixtures.py`
//! (GroupNorm as InstanceNormalization pattern, SiLU, attention, strided conv, nearest Resize,
//! skip concat, sinusoidal t embedding), exported with t as int64 (dynamic batch, opset 13) and
//! as float (fixed batch 2, opset 17). brenier must reproduce onnxruntime's ε.

use std::path::PathBuf;

use brenier::backend::{Backend, CpuBackend};
use brenier::bundle::{ImageSpec, TimeDtype};
use brenier::io::npy;
use brenier::pipeline::NetTime;
use brenier::NetKey;
use brenier_export::ExportSpec;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/unet").join(name)
}

fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    // A NaN would slip through the max below.
    assert!(a.iter().all(|v| v.is_finite()), "non-finite ε");
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max) / scale
}

fn check(name: &str, ts: &[i64], t_dtype: TimeDtype, batch: Option<usize>) {
    let onnx = std::fs::read(fixture(&format!("{name}.onnx"))).unwrap();
    let x = npy::read(&fixture(&format!("{name}_x.npy"))).unwrap();
    let want = npy::read(&fixture(&format!("{name}_eps_ort.npy"))).unwrap();
    let image = ImageSpec { channels: 3, height: 16, width: 16 };
    let d = image.elems();

    // The signature is found as the exporter would find it.
    let proto = brenier::onnx::decode(&onnx, name).unwrap();
    let sig = brenier::onnx::signature(&proto, name).unwrap();
    assert_eq!((sig.x_input.as_str(), sig.t_input.as_str(), sig.t_dtype, sig.batch), ("x", "t", t_dtype, batch));

    // f32: the original file through tract, one image at a time at its own t, with brenier's
    // convolutions (the default), without its 1×1 one, with Winograd alone, and with tract's own.
    let spec = sig.net_spec("net.a");
    let run = |winograd: bool, direct: bool, pointwise: bool| {
        let cpu =
            CpuBackend::new(1).unwrap().with_winograd(winograd).with_direct_conv(direct).with_pointwise_conv(pointwise);
        let net = cpu.load_net(&onnx, &spec, image, name).unwrap();
        let mut got = vec![];
        for (i, &t) in ts.iter().enumerate() {
            got.extend(net.run(&x.data[i * d..(i + 1) * d], 1, t).unwrap());
        }
        (got, net.activation_bytes(1))
    };
    let (got, _) = run(true, true, true);
    let ((no_pointwise, both_bytes), (winograd_only, winograd_bytes), (tract_only, _)) =
        (run(true, true, false), run(true, false, false), run(false, false, false));
    let f32_err = max_rel(&got, &want.data);
    let no_pointwise_err = max_rel(&no_pointwise, &want.data);
    let winograd_err = max_rel(&winograd_only, &want.data);
    let tract_err = max_rel(&tract_only, &want.data);
    // The 16×16 fixture's 3×3 convolutions (32 channels and up) are Winograd's to take: it rounds
    // differently from tract, so equal bits would mean the rewrite never ran.
    let differs = |a: &[f32], b: &[f32]| a.iter().zip(b).any(|(a, b)| a.to_bits() != b.to_bits());
    assert!(differs(&winograd_only, &tract_only), "{name}: Winograd path not taken");
    // Its 8×8 ones, the strided one and the thin first and last (3 image channels) are the
    // direct kernel's where the CPU has AVX2 and FMA (or AVX-512). That kernel sums in tract's
    // order (channel, then tap, fused multiply-adds), and gave tract's bits here, so the sign it ran is the network's memory
    // estimate: without it the two plans are the same graph and estimate the same bytes; with it
    // the estimate gains the kernel's planes and loses whatever tensors tract's convolutions
    // had, which would have to cancel exactly for the check to miss it.
    if brenier::backend::conv::DirectFilter::available() {
        assert_ne!(both_bytes, winograd_bytes, "{name}: direct path not taken");
        // Its three 1×1 convolutions (32 channels and up) are the pointwise kernel's on the same
        // CPUs: it starts each sum from the bias, where tract adds the bias last.
        assert!(differs(&got, &no_pointwise), "{name}: pointwise path not taken");
    }

    // The same network frozen into a bundle (fp16 weights), run through the engine.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unet.brn");
    let (manifest, _) = brenier_export::export(&ExportSpec::new(onnx.clone(), onnx), &path).unwrap();
    assert_eq!(manifest.image, image, "image shape taken from the network's declared input");
    assert!(manifest.nets.a.fp16.tensors > 0, "Conv/Gemm weights must be stored fp16");
    let engine = brenier_tests::engine(&path);
    let mut got16 = vec![];
    for (i, &t) in ts.iter().enumerate() {
        got16
            .extend(engine.eps(NetKey::A, &x.data[i * d..(i + 1) * d], 1, t, "test", &mut NetTime::default()).unwrap());
    }
    let f16_err = max_rel(&got16, &want.data);
    println!(
        "{name}: max |ε − ε_ort| / max|ε_ort| = {f32_err:.2e} (f32 weights; without the 1×1 kernel {no_pointwise_err:.2e}, Winograd alone {winograd_err:.2e}, tract's convolutions alone {tract_err:.2e}), {f16_err:.2e} (bundle, fp16 weights: {} tensors, {} params, export-time output error {:.2e})",
        manifest.nets.a.fp16.tensors, manifest.nets.a.fp16.params, manifest.nets.a.fp16.output_rel_err
    );
    // Issue 19's bound for every faster f32 path: 1e-5 of the output's scale (measured here on
    // AMD EPYC with AVX-512: 1.2e-6 either way, so an 8× margin for other kernels and CPUs).
    assert!(f32_err < 1e-5, "{name}: f32 parity {f32_err}");
    assert!(no_pointwise_err < 1e-5, "{name}: f32 parity, without the 1×1 kernel {no_pointwise_err}");
    assert!(winograd_err < 1e-5, "{name}: f32 parity, Winograd alone {winograd_err}");
    assert!(tract_err < 1e-5, "{name}: f32 parity, tract's convolutions {tract_err}");
    assert!(f16_err < 5e-3, "{name}: fp16-weight parity {f16_err}");
}

#[test]
fn pytorch_unet_t_int64_dynamic_batch_matches_onnxruntime() {
    check("unet_t_int64", &[0, 500, 999], TimeDtype::Int64, None);
}

#[test]
fn pytorch_unet_t_float_fixed_batch_matches_onnxruntime() {
    check("unet_t_float", &[0, 500], TimeDtype::Float, Some(2));
}
