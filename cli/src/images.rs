//! Reading a batch of inputs (one PNG, a folder of PNGs, or a `.npy` [N,C,H,W]) and writing
//! outputs in the matching form. Every output is written atomically.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use brenier::bundle::Manifest;
use brenier::io::{npy, png};

/// A batch in model space with the names outputs should take.
pub struct Batch {
    pub data: Vec<f32>,
    pub count: usize,
    pub names: Vec<String>,
}

fn is_npy(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

pub fn read_inputs(path: &Path, m: &Manifest) -> Result<Batch> {
    let img = m.image;
    if is_npy(path) {
        let a = npy::read(path)?;
        let per = [img.channels, img.height, img.width];
        if a.shape.len() != 4 || a.shape[1..] != per {
            return Err(brenier::Error::Shape {
                what: format!("{}", path.display()),
                expected: vec![0, img.channels, img.height, img.width],
                found: a.shape.clone(),
                hint: " ([N, C, H, W] float32 in model space)".into(),
            }
            .into());
        }
        let count = a.shape[0];
        if count == 0 {
            return Err(brenier::Error::input(
                path,
                format!("holds no images (shape {:?}); give at least one", a.shape),
            )
            .into());
        }
        return Ok(Batch { data: a.data, count, names: (0..count).map(|i| format!("{i:04}")).collect() });
    }
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("listing {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
            .collect();
        v.sort();
        if v.is_empty() {
            return Err(
                brenier::Error::input(path, "holds no .png files; give a folder of PNGs, one PNG or a .npy").into()
            );
        }
        v
    } else {
        vec![path.to_path_buf()]
    };
    let mut data = Vec::with_capacity(files.len() * img.elems());
    let mut names = vec![];
    for f in &files {
        if std::fs::metadata(f).is_ok_and(|meta| meta.len() == 0) {
            return Err(brenier::Error::input(f, "is empty (0 bytes), not a PNG").into());
        }
        data.extend(png::read(f, img, m.normalization)?);
        names.push(f.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
    }
    Ok(Batch { count: files.len(), data, names })
}

/// Writes `data` (count images) to `out`: a `.npy`, a single `.png` (count must be 1), or a
/// directory of PNGs named after the inputs.
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
    let is_png = out.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if is_png && count != 1 {
        bail!("{count} images cannot go into one PNG ({}); give a directory or a .npy", out.display());
    }
    // Encode everything before writing anything: a failure leaves no half-written set.
    let encoded: Vec<Vec<u8>> = data
        .chunks_exact(img.elems())
        .map(|x| png::encode(x, img, m.normalization, meta))
        .collect::<brenier::Result<_>>()?;
    if is_png {
        brenier::io::write_atomic(out, &encoded[0])?;
        return Ok(vec![out.to_path_buf()]);
    }
    // A folder receives the whole set or nothing (see write_folder_atomic).
    let files: Vec<String> = names.iter().map(|n| format!("{n}.png")).collect();
    brenier::io::write_folder_atomic(out, &files, |i, w| w.write_all(&encoded[i]))?;
    Ok(files.iter().map(|f| out.join(f)).collect())
}
