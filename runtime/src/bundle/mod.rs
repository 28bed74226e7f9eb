//! The `.brn` bundle: layout (`format`), manifest, and the validating reader. The writer lives in
//! `brenier-export`; both follow `FORMAT.md` in this folder.

pub mod calibration;
pub mod format;
pub mod manifest;
pub mod reader;

pub use calibration::CalibrationRecord;
pub use format::{Dtype, SectionEntry, SectionKind};
pub use manifest::{
    ImageSpec, Manifest, NetKey, NetSpec, NeuralMapSpec, Normalization, OtMapSpec, OtSource, SolveRecord, TimeDtype,
};
pub use reader::{Bundle, LoadMode, MANIFEST_SECTION};
