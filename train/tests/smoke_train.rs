//! A seconds-long training run on the committed Fashion-MNIST sample: the loss falls, a run
//! resumes from its checkpoint, and the EMA network's ONNX export computes what burn computes.

use std::path::Path;

use brenier::backend::{Backend, CpuBackend};
use brenier::rng::NoiseStream;
use brenier_train::data::{load_fashion_mnist, Split};
use brenier_train::model::UNetConfig;
use brenier_train::onnx::export_unet;
use brenier_train::train::{load_ema, train, TrainConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};

fn config(steps: usize) -> TrainConfig {
    TrainConfig {
        unet: UNetConfig { channels: [8, 8, 16], time_dim: 8, attention: true, ..UNetConfig::default() },
        steps,
        batch: 8,
        lr: 3e-3,
        checkpoint_every: 10,
        ema_decay: 0.9,
        ..TrainConfig::default()
    }
}

#[test]
fn loss_falls_resume_continues_and_export_matches() {
    let set = load_fashion_mnist(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data"), Split::Test).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first = train(&set, &config(20), dir.path(), false, |_, _| {}).unwrap();
    assert_eq!(first.losses.len(), 20);
    let run = train(&set, &config(60), dir.path(), true, |_, _| {}).unwrap();
    assert_eq!(run.losses.len(), 60, "resume continues the trace");
    assert_eq!(run.losses[..20], first.losses[..], "resumed run keeps the first part");
    let mean = |s: &[(usize, f32)]| s.iter().map(|l| l.1).sum::<f32>() / s.len() as f32;
    let (early, late) = (mean(&run.losses[..10]), mean(&run.losses[50..]));
    println!("loss: first 10 steps {early:.3}, last 10 steps {late:.3}");
    assert!(late < 0.8 * early, "loss did not fall: {early} → {late}");
    // A configuration change refuses to resume.
    let mut other = config(60);
    other.batch = 4;
    assert!(train(&set, &other, dir.path(), true, |_, _| {}).is_err());

    let (ema, cfg, image) = load_ema(dir.path()).unwrap();
    assert_eq!(image.height, 28);
    assert_eq!(cfg, config(60));
    let device = Device::flex();
    let x = NoiseStream::new(3, 0).normal(2 * 784);
    let xt = Tensor::<4>::from_data(TensorData::new(x.clone(), [2, 1, 28, 28]), &device);
    let tt = Tensor::<1>::from_floats([250.0f32, 250.0].as_slice(), &device);
    let ct = Tensor::<1, Int>::from_ints([9i64, 9].as_slice(), &device);
    let want = brenier_train::params::host(ema.forward(xt, tt, Some(ct)));
    let onnx = brenier_export::onnx_build::to_bytes(&export_unet(&ema, 9, 1, 28));
    let spec =
        brenier::onnx::signature(&brenier::onnx::decode(&onnx, "unet").unwrap(), "unet").unwrap().net_spec("net");
    let image = brenier::bundle::ImageSpec { channels: 1, height: 28, width: 28 };
    let got = CpuBackend::new(1).unwrap().load_net(&onnx, &spec, image, "ema").unwrap().run(&x, 2, 250).unwrap();
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) / scale;
    assert!(err < 1e-4, "trained EMA export differs from burn by {err}");
}

#[test]
fn a_resumed_run_takes_the_same_steps_as_an_uninterrupted_one() {
    // The saved AdamW moments must find their parameters again after a restart (see
    // params::stable_ids); a fresh optimizer would step differently from the first resumed step.
    let set = load_fashion_mnist(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data"), Split::Test).unwrap();
    let (straight_dir, resumed_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ckpt = |dir: &Path| dir.join("ckpt");
    let straight = train(&set, &config(20), straight_dir.path(), false, |step, _| {
        // The step-10 checkpoint is on disk once step 11 is reported.
        if step == 11 {
            std::fs::create_dir_all(ckpt(resumed_dir.path())).unwrap();
            for e in std::fs::read_dir(ckpt(straight_dir.path())).unwrap() {
                let e = e.unwrap();
                std::fs::copy(e.path(), ckpt(resumed_dir.path()).join(e.file_name())).unwrap();
            }
        }
    })
    .unwrap();
    let resumed = train(&set, &config(20), resumed_dir.path(), true, |_, _| {}).unwrap();
    for (a, b) in straight.losses[10..].iter().zip(&resumed.losses[10..]) {
        assert!((a.1 - b.1).abs() <= 1e-4 * a.1.abs(), "step {}: loss {} uninterrupted, {} resumed", a.0, a.1, b.1);
    }
}

/// Channel counts GroupNorm cannot split are refused with a message, before any data is read
/// (burn asserted on them: a panic in `brenier-train neural-map --channels 4,8,8`).
#[test]
fn channels_groupnorm_cannot_split_are_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in [
        &["train", "--classes", "7,9"][..],
        &["neural-map", "--bundle", "none.brn", "--class-a", "7", "--class-b", "9"][..],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_brenier-train"))
            .args(cmd)
            .args(["--channels", "4,8,8", "--out"])
            .arg(dir.path().join("run"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && !text.contains("panicked"), "{cmd:?}: {text}");
        assert!(text.contains("4 is not a positive multiple of 8"), "{cmd:?}: {text}");
    }
}

#[test]
fn a_checkpoint_without_its_optimizer_state_resumes_as_a_warm_restart() {
    // The committed runs ship without optim.bpk: resuming keeps the weights, the EMA and the
    // trace and restarts Adam, whose steps then differ from the exact continuation.
    let set = load_fashion_mnist(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data"), Split::Test).unwrap();
    let (exact_dir, warm_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    train(&set, &config(10), exact_dir.path(), false, |_, _| {}).unwrap();
    let (from, to) = (exact_dir.path().join("ckpt"), warm_dir.path().join("ckpt"));
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(&from).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "optim.bpk" {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    let exact = train(&set, &config(14), exact_dir.path(), true, |_, _| {}).unwrap();
    let warm = train(&set, &config(14), warm_dir.path(), true, |_, _| {}).unwrap();
    assert_eq!(warm.losses.len(), 14, "the warm restart continues the trace");
    // Step 11's loss is computed on the restored weights before its update: equal only if they
    // came back.
    assert_eq!(warm.losses[..11], exact.losses[..11], "the warm restart lost the checkpointed weights");
    let differs = warm.losses[11..].iter().zip(&exact.losses[11..]).any(|(w, e)| (w.1 - e.1).abs() > 1e-4 * e.1.abs());
    assert!(differs, "a restarted Adam took the same steps as the restored one");
}
