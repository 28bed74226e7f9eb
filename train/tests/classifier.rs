//! The classifier learns on the committed sample and its ONNX export (both outputs) computes
//! what burn computes, through tract.

use std::path::Path;

use brenier::rng::NoiseStream;
use brenier_train::classifier::{export_classifier, train_classifier, FEATURES};
use brenier_train::data::{load_fashion_mnist, Split};
use brenier_train::params::host;
use burn::tensor::{Device, Tensor as BurnTensor, TensorData};
use tract_onnx::prelude::*;

#[test]
fn classifier_learns_and_exports() {
    let set = load_fashion_mnist(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data"), Split::Test).unwrap();
    let mut losses = vec![];
    let net = train_classifier(&set, 40, 0, |_, l| losses.push(l)).unwrap();
    let (early, late) = (losses[..5].iter().sum::<f32>() / 5.0, losses[35..].iter().sum::<f32>() / 5.0);
    println!("classifier loss {early:.3} → {late:.3}");
    assert!(late < 0.5 * early, "{early} → {late}");

    let x = NoiseStream::new(2, 0).normal(3 * 784);
    let device = Device::flex();
    let (f, l) = net.forward(BurnTensor::<4>::from_data(TensorData::new(x.clone(), [3, 1, 28, 28]), &device));
    let (want_f, want_l) = (host(f), host(l));
    let bytes = brenier_export::onnx_build::to_bytes(&export_classifier(&net));
    let model = tract_onnx::onnx()
        .model_for_read(&mut bytes.as_slice())
        .unwrap()
        .with_input_fact(0, f32::fact([3, 1, 28, 28]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let out = model.run(tvec![Tensor::from_shape(&[3, 1, 28, 28], &x).unwrap().into()]).unwrap();
    let got_l: Vec<f32> = out[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect();
    let got_f: Vec<f32> = out[1].to_plain_array_view::<f32>().unwrap().iter().copied().collect();
    assert_eq!((got_l.len(), got_f.len()), (30, 3 * FEATURES));
    let rel = |a: &[f32], b: &[f32]| {
        let s = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max) / s
    };
    assert!(rel(&got_l, &want_l) < 1e-4 && rel(&got_f, &want_f) < 1e-4);
}

#[test]
fn evaluation_of_real_images_against_themselves() {
    use brenier_calibration::classify::{evaluate, ClassifierRunner};
    let set = load_fashion_mnist(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data"), Split::Test).unwrap();
    let net = train_classifier(&set, 40, 0, |_, _| {}).unwrap();
    let runner = ClassifierRunner::new(
        &brenier_export::onnx_build::to_bytes(&export_classifier(&net)),
        set.image,
        Default::default(),
    )
    .unwrap();
    let boots = set.filter_classes(&[9]);
    let q = evaluate(&runner, &boots.pixels, Some(&boots.pixels), &boots.pixels, 9).unwrap();
    assert_eq!(q.count, boots.len());
    assert!(q.frechet < 1e-6, "a set against itself: {}", q.frechet);
    assert!((q.ssim_to_source.unwrap() - 1.0).abs() < 1e-9 && q.rms_to_source.unwrap() == 0.0);
    assert!(q.target_accuracy > 0.5, "the classifier fits its own training images: {}", q.target_accuracy);
}
