//! brenier-export: freezes two diffusion ε-networks (ONNX) and semi-discrete OT maps into one
//! `.brn` bundle. Inputs are validated (operators, weights, signature, a real tract run) before
//! anything is written, and the write is atomic.

pub mod bundle;
pub mod encode;
pub mod error;
pub mod freeze;
pub mod from_images;
pub mod gaussian;
pub mod ingest;
pub mod onnx_build;
pub mod oracle_bundle;
pub mod ot;
pub mod rebundle;

pub use bundle::{build_sections, export, ExportSpec, MapInput, NeuralMapInput};
pub use error::{ExportError, Result};
pub use rebundle::spec_from_bundle;
