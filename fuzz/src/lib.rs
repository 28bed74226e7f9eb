//! The fuzz targets' bodies. `exercise.rs` is also compiled into `cargo test`
//! (tests/tests/fuzz_regressions.rs), which replays every committed crash input through it.

mod exercise;

pub use exercise::{bundle, manifest, npy, png, record};
