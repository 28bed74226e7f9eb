//! A folder of PNGs (users' own data): every `*.png`, sorted by name, at the given size. The
//! label is taken from a sub-folder name `<k>` when the folder has numbered sub-folders.

use std::path::{Path, PathBuf};

use brenier::bundle::{ImageSpec, Normalization};

use super::{DataError, ImageSet};

pub fn load_png_dir(dir: &Path, image: ImageSpec) -> Result<ImageSet, DataError> {
    let list = |d: &Path| -> Result<Vec<PathBuf>, DataError> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .map_err(|e| DataError::Io { path: d.display().to_string(), source: e })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        v.sort();
        Ok(v)
    };
    let mut set = ImageSet { image, pixels: vec![], labels: vec![] };
    let entries = list(dir)?;
    let labelled: Vec<(u8, PathBuf)> = entries
        .iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| p.file_name()?.to_str()?.parse::<u8>().ok().map(|l| (l, p.clone())))
        .collect();
    let groups: Vec<(u8, Vec<PathBuf>)> = if labelled.is_empty() {
        vec![(0, entries)]
    } else {
        labelled.into_iter().map(|(l, p)| Ok((l, list(&p)?))).collect::<Result<_, DataError>>()?
    };
    for (label, files) in groups {
        for f in files.iter().filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"))) {
            let x = brenier::io::png::read(f, image, Normalization::default())
                .map_err(|e| DataError::Format { path: f.display().to_string(), problem: e.to_string() })?;
            set.pixels.extend(x);
            set.labels.push(label);
        }
    }
    if set.is_empty() {
        return Err(DataError::Format { path: dir.display().to_string(), problem: "no .png files".into() });
    }
    Ok(set)
}
