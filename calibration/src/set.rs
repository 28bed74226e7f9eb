//! The calibration set: held-out images kept beside a bundle (`model.calib/` next to
//! `model.brn`), never seen in training. `calib.json` names the source images to translate, real
//! target-domain images to measure quality against, and the evaluation classifier:
//!
//! ```json
//! { "sources": "sources.npy", "references": "references.npy",
//!   "classifier": "classifier.onnx", "source_class": 7, "target_class": 9,
//!   "description": "Fashion-MNIST test split: sneakers (7) and ankle boots (9)" }
//! ```
//!
//! Paths are relative to the folder; arrays are `.npy` f32 `[N, C, H, W]` in model space. The
//! folder is self-contained: it holds its classifier, so a bundle copied elsewhere with its
//! `.calib` folder can still be calibrated (`brenier-train calib-set` copies the classifier in).

use std::path::{Path, PathBuf};

use brenier::bundle::Manifest;

use crate::error::{CalibError, Result};

/// File name of the set's description inside its folder.
pub const SET_FILE: &str = "calib.json";

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSpec {
    pub sources: String,
    pub references: String,
    pub classifier: String,
    pub source_class: usize,
    pub target_class: usize,
    #[serde(default)]
    pub description: String,
}

/// A loaded, checked calibration set.
pub struct CalibSet {
    pub dir: PathBuf,
    pub spec: SetSpec,
    /// Source-domain images, N×D.
    pub sources: Vec<f32>,
    /// Real target-domain images, M×D.
    pub references: Vec<f32>,
    pub classifier_onnx: Vec<u8>,
}

/// The set folder beside a bundle: `x/model.brn` → `x/model.calib`.
pub fn default_dir(bundle: &Path) -> PathBuf {
    bundle.with_extension("calib")
}

impl CalibSet {
    pub fn load(dir: &Path, manifest: &Manifest) -> Result<CalibSet> {
        let spec_path = dir.join(SET_FILE);
        let text = std::fs::read(&spec_path).map_err(|e| {
            CalibError::set(
                dir,
                format!(
                    "cannot read {SET_FILE} ({e}); a calibration set is a folder of held-out images \
                     (`brenier-train calib-set` writes one); pass it with --set"
                ),
            )
        })?;
        let spec: SetSpec = serde_json::from_slice(&text)
            .map_err(|e| CalibError::set(&spec_path, format!("invalid description: {e}")))?;
        let d = manifest.image.elems();
        let img = manifest.image;
        let load = |name: &str, what: &str| -> Result<Vec<f32>> {
            let path = dir.join(name);
            let a = brenier::io::npy::read(&path)?;
            let per: usize = a.shape.iter().skip(1).product();
            if a.shape.len() != 4 || per != d || a.shape[0] == 0 {
                return Err(CalibError::set(
                    &path,
                    format!(
                        "{what} have shape {:?}; the bundle takes [N, {}, {}, {}] with N ≥ 1",
                        a.shape, img.channels, img.height, img.width
                    ),
                ));
            }
            brenier::error::check_finite(&a.data, &format!("{what} in {}", path.display()), "")?;
            Ok(a.data)
        };
        let sources = load(&spec.sources, "source images")?;
        let references = load(&spec.references, "reference images")?;
        let cpath = dir.join(&spec.classifier);
        let inside = Path::new(&spec.classifier)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir));
        if !inside {
            log::warn!(
                "{}: the classifier `{}` lies outside the set folder, so the set breaks when copied without it; \
                 copy the ONNX into the folder and name it in {SET_FILE}",
                spec_path.display(),
                spec.classifier
            );
        }
        let classifier_onnx = std::fs::read(&cpath).map_err(|e| {
            CalibError::set(
                dir,
                format!(
                    "cannot read the classifier `{}` named in {SET_FILE} ({}: {e}); paths in {SET_FILE} are \
                     relative to the set folder, and a set should hold its classifier: copy the ONNX into the \
                     folder (`brenier-train calib-set --classifier FILE` does)",
                    spec.classifier,
                    cpath.display()
                ),
            )
        })?;
        Ok(CalibSet { dir: dir.to_path_buf(), spec, sources, references, classifier_onnx })
    }

    /// Number of source images.
    pub fn len(&self, d: usize) -> usize {
        self.sources.len() / d
    }
}
