//! brenier: an edge runtime for optimal-transport-accelerated diffusion translation.
//!
//! A `.brn` bundle ([`bundle`]) carries two ε-networks and semi-discrete OT maps; the [`Engine`]
//! runs DDIB and OT-ALD translation and DPM-OT / prior-OT generation on a [`backend::Backend`].
//! The math of docs/DESIGN.md lives in [`sched`] (schedule, grid, DDIM) and [`ot`] (the map
//! kernels); the height solver belongs to the exporter (`brenier_export::ot`).

pub mod atomic;
pub mod backend;
pub mod bundle;
pub mod error;
pub mod io;
pub mod linalg;
#[cfg(feature = "cpu")]
pub mod onnx;
pub mod ot;
pub mod pipeline;
pub mod precision;
pub mod rng;
pub mod sched;

pub use bundle::{Bundle, Manifest, NetKey};
pub use error::{Error, ErrorKind, Result};
pub use pipeline::Engine;
