//! The `.brn` bundle: layout (`format`), manifest, the validating reader, and the writer (whole
//! files, and section edits of an existing one); all follow `FORMAT.md` in this folder.

pub mod calibration;
pub mod format;
pub mod manifest;
pub mod reader;
mod report;
pub mod rewrite;
pub mod writer;

pub use calibration::CalibrationRecord;
pub use format::{Dtype, SectionEntry, SectionKind};
pub use manifest::{
    ImageSpec, Manifest, MapDirection, NetKey, NetSpec, NeuralMapSpec, Normalization, OtMapSpec, OtSource, SolveRecord,
    TimeDtype,
};
pub use reader::{Bundle, LoadMode, MANIFEST_SECTION};
pub use rewrite::rewrite_sections;
pub use writer::{write_bundle, write_to, Section};
