//! Image and tensor files (`.npy` model space, PNG and JPEG pixels) and batches of them. Every
//! output goes through the one atomic write path, [`crate::atomic`] (re-exported here), which sits
//! below the bundle layer so the bundle writer can use it too.

pub mod batch;
pub mod image;
pub mod npy;
pub mod png;
pub mod raster;

pub use crate::atomic::{write_atomic, write_atomic_with, write_folder_atomic};
