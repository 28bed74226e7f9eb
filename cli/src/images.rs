//! The CLI's inputs and outputs: a batch read from one image (PNG or JPEG), a folder of them, or
//! a `.npy` [N,C,H,W] (`brenier::io::batch`), and outputs written in the matching form — a `.npy`,
//! one image (PNG, or JPEG by its extension), or a folder of PNGs named after the inputs, the
//! folder receiving the whole set or nothing. Every output is written atomically.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use brenier::bundle::Manifest;
use brenier::io::batch::{read_batch, Batch, ReadOptions};
use brenier::io::image::{encode, Fit, Format};
use brenier::io::npy;

/// Reads `path` at the bundle's image size, cropping and resampling other sizes when `resize`.
pub fn read_inputs(path: &Path, m: &Manifest, resize: bool) -> Result<Batch> {
    let opts = ReadOptions { fit: if resize { Fit::CropResize } else { Fit::Exact }, ..ReadOptions::default() };
    Ok(read_batch(path, m.image, m.normalization, opts)?)
}

fn is_npy(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

/// Writes `data` (count images) to `out`: a `.npy`, a single `.png`/`.jpg` (count must be 1), or
/// a directory of PNGs named after the inputs.
pub fn write_outputs(
    out: &Path,
    m: &Manifest,
    data: &[f32],
    names: &[String],
    meta: &[(&str, String)],
) -> Result<Vec<PathBuf>> {
    let img = m.image;
    let count = data.len() / img.elems();
    if is_npy(out) {
        npy::write(out, &img.shape(count), data)?;
        return Ok(vec![out.to_path_buf()]);
    }
    let single = Format::of_path(out);
    if single.is_some() && count != 1 {
        bail!("{count} images cannot go into one image file ({}); give a directory or a .npy", out.display());
    }
    // Encode everything before writing anything: a failure leaves no half-written set.
    let format = single.unwrap_or(Format::Png);
    let encoded: Vec<Vec<u8>> = data
        .chunks_exact(img.elems())
        .map(|x| encode(x, img, m.normalization, meta, format))
        .collect::<brenier::Result<_>>()?;
    if single.is_some() {
        brenier::io::write_atomic(out, &encoded[0])?;
        return Ok(vec![out.to_path_buf()]);
    }
    // A folder receives the whole set or nothing (see write_folder_atomic).
    let files: Vec<String> = names.iter().map(|n| format!("{n}.png")).collect();
    brenier::io::write_folder_atomic(out, &files, |i, w| w.write_all(&encoded[i]))?;
    Ok(files.iter().map(|f| out.join(f)).collect())
}
