//! Fashion-MNIST from Debian's `dataset-fashion-mnist` (idx files, gzip).

use std::io::Read;
use std::path::Path;

use brenier::bundle::ImageSpec;

use super::{open_package_file, to_model, DataError, ImageSet, Split};

pub const FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";
pub const FASHION_CLASSES: [&str; 10] =
    ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"];

fn read_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let file = open_package_file(path, "Fashion-MNIST", "apt-get install dataset-fashion-mnist")?;
    let mut out = vec![];
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut out)
        .map_err(|e| DataError::Io { path: path.display().to_string(), source: e })?;
    Ok(out)
}

/// Parses an idx file: magic [0, 0, 8 (u8), rank], then rank big-endian u32 dims, then data.
fn parse_idx<'a>(bytes: &'a [u8], rank: usize, path: &Path) -> Result<(Vec<usize>, &'a [u8]), DataError> {
    let bad = |problem: String| DataError::Format { path: path.display().to_string(), problem };
    let head = 4 + 4 * rank;
    if bytes.len() < head || bytes[..3] != [0, 0, 8] || bytes[3] as usize != rank {
        return Err(bad(format!("not a rank-{rank} u8 idx file")));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| u32::from_be_bytes([bytes[4 + 4 * i], bytes[5 + 4 * i], bytes[6 + 4 * i], bytes[7 + 4 * i]]) as usize)
        .collect();
    let n = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| bad("dims overflow".into()))?;
    if bytes.len() - head != n {
        return Err(bad(format!("dims {dims:?} need {n} bytes, file has {}", bytes.len() - head)));
    }
    Ok((dims, &bytes[head..]))
}

/// Loads one split from `dir` (Debian's folder by default).
pub fn load_fashion_mnist(dir: &Path, split: Split) -> Result<ImageSet, DataError> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let ip = dir.join(format!("{prefix}-images-idx3-ubyte.gz"));
    let lp = dir.join(format!("{prefix}-labels-idx1-ubyte.gz"));
    let (ib, lb) = (read_gz(&ip)?, read_gz(&lp)?);
    let (idims, ipix) = parse_idx(&ib, 3, &ip)?;
    let (ldims, labels) = parse_idx(&lb, 1, &lp)?;
    if idims[0] != ldims[0] {
        return Err(DataError::Format {
            path: lp.display().to_string(),
            problem: format!("{} labels for {} images", ldims[0], idims[0]),
        });
    }
    if let Some(&l) = labels.iter().find(|&&l| l > 9) {
        return Err(DataError::Format {
            path: lp.display().to_string(),
            problem: format!("label {l} is not a class 0..9"),
        });
    }
    Ok(ImageSet {
        image: ImageSpec { channels: 1, height: idims[1], width: idims[2] },
        pixels: ipix.iter().map(|&v| to_model(v)).collect(),
        labels: labels.to_vec(),
    })
}
