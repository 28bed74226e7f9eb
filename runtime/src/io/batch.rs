//! A batch of inputs in model space from what a user points at: one image file, a folder of
//! images (PNG or JPEG, optionally searched recursively), or a `.npy` [N, C, H, W] already in
//! model space. Shared by `brenier translate` and `brenier export --images-*`.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::image::{Fit, Format};
use crate::bundle::{ImageSpec, Normalization};
use crate::error::{Error, Result};

/// How to read a batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    pub fit: Fit,
    /// Look into sub-folders too.
    pub recursive: bool,
    /// Leave out files that cannot be read (counted in [`Batch::skipped`]) instead of failing.
    pub skip_bad: bool,
}

/// Images in model space, row-major [count, C, H, W].
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub data: Vec<f32>,
    pub count: usize,
    /// A name per image: the file's path below the folder without its extension (`/` becomes
    /// `__` so it can name an output file), or the row number of a `.npy`.
    pub names: Vec<String>,
    /// Files left out with `skip_bad`, and why.
    pub skipped: Vec<(PathBuf, String)>,
}

fn is_npy(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

/// The image files (by extension) in `dir`, sorted by path, searching sub-folders when asked.
pub fn list_images(dir: &Path, recursive: bool) -> Result<Vec<PathBuf>> {
    let mut out = vec![];
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
            let path = entry.map_err(|e| Error::io(&d, e))?.path();
            if path.is_dir() {
                if recursive {
                    pending.push(path);
                }
            } else if Format::of_path(&path).is_some() {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads `path`: a `.npy`, one image, or a folder of images.
pub fn read_batch(path: &Path, image: ImageSpec, norm: Normalization, opts: ReadOptions) -> Result<Batch> {
    if is_npy(path) {
        let a = super::npy::read(path)?;
        let per = [image.channels, image.height, image.width];
        if a.shape.len() != 4 || a.shape[1..] != per {
            return Err(Error::Shape {
                what: format!("{}", path.display()),
                expected: vec![0, image.channels, image.height, image.width],
                found: a.shape.clone(),
                hint: " ([N, C, H, W] float32 in model space)".into(),
            });
        }
        let count = a.shape[0];
        if count == 0 {
            return Err(Error::input(path, format!("holds no images (shape {:?}); give at least one", a.shape)));
        }
        return Ok(Batch {
            data: a.data,
            count,
            names: (0..count).map(|i| format!("{i:04}")).collect(),
            skipped: vec![],
        });
    }
    let (root, files) = if path.is_dir() {
        let files = list_images(path, opts.recursive)?;
        if files.is_empty() {
            let where_ = if opts.recursive { "or its sub-folders" } else { "(sub-folders are not searched here)" };
            return Err(Error::input(path, format!("holds no .png, .jpg or .jpeg files {where_}")));
        }
        (path.to_path_buf(), files)
    } else {
        (path.parent().unwrap_or(Path::new("")).to_path_buf(), vec![path.to_path_buf()])
    };
    let decoded: Vec<Result<Vec<f32>>> =
        files.par_iter().map(|f| super::image::read(f, image, norm, opts.fit)).collect();
    let mut batch = Batch::default();
    batch.data.reserve(files.len() * image.elems());
    for (f, x) in files.iter().zip(decoded) {
        match x {
            Ok(x) => {
                batch.data.extend(x);
                batch.count += 1;
                let rel = f.strip_prefix(&root).unwrap_or(f).with_extension("");
                batch.names.push(rel.to_string_lossy().replace(['/', '\\'], "__"));
            }
            Err(e) if opts.skip_bad => batch.skipped.push((f.clone(), e.to_string())),
            Err(e) => return Err(e),
        }
    }
    if batch.count == 0 {
        return Err(Error::input(path, format!("none of its {} image files could be read", files.len())));
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_read_sorted_recursively_and_bad_files_named_or_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let img = ImageSpec { channels: 1, height: 2, width: 2 };
        let norm = Normalization::default();
        let png = |v: f32| super::super::png::encode(&[v; 4], img, norm, &[]).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("b.png"), png(0.5)).unwrap();
        std::fs::write(dir.path().join("a.PNG"), png(-0.5)).unwrap();
        std::fs::write(dir.path().join("sub/c.png"), png(1.0)).unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"not an image").unwrap();
        let flat = read_batch(dir.path(), img, norm, ReadOptions::default()).unwrap();
        assert_eq!((flat.count, flat.names.clone()), (2, vec!["a".to_string(), "b".into()]));
        assert!((flat.data[0] + 0.5).abs() < 0.01 && (flat.data[4] - 0.5).abs() < 0.01);
        let all = read_batch(dir.path(), img, norm, ReadOptions { recursive: true, ..Default::default() }).unwrap();
        assert_eq!(all.names, ["a", "b", "sub__c"]);

        std::fs::write(dir.path().join("broken.jpg"), [0xFF, 0xD8, 0xFF, 0xE0, 1, 2]).unwrap();
        let e = read_batch(dir.path(), img, norm, ReadOptions::default()).unwrap_err().to_string();
        assert!(e.contains("broken.jpg"), "{e}");
        let some = read_batch(dir.path(), img, norm, ReadOptions { skip_bad: true, ..Default::default() }).unwrap();
        assert_eq!((some.count, some.skipped.len()), (2, 1));
        assert!(some.skipped[0].0.ends_with("broken.jpg"));

        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let e = read_batch(&empty, img, norm, ReadOptions::default()).unwrap_err().to_string();
        assert!(e.contains("holds no .png, .jpg or .jpeg files"), "{e}");
    }
}
