//! brenier-calibration: what precision costs and which T and K to ship, measured on held-out
//! data (docs/DESIGN.md, "Calibration"). `calibrate` runs the networks in f32 and in reduced
//! precision (parity), compares OT assignments, sweeps quality against latency over T×K, picks a
//! default per target, and writes the record and its f32 references into the bundle; `selftest`
//! repeats the quick part on a device.

pub mod agreement;
pub mod classify;
pub mod error;
pub mod metrics;
pub mod parity;
pub mod plot;
pub mod quick;
pub mod recommend;
pub mod report;
pub mod selftest;
pub mod set;
pub mod store;
pub mod sweep;

pub use error::{CalibError, Result};
pub use store::{calibrate, CalibrateOptions, Event, Outcome};
