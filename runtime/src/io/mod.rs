//! Image and tensor files (`.npy` model space, PNG and JPEG pixels), batches of them, and the
//! atomic write every output goes through.

pub mod atomic;
pub mod batch;
pub mod image;
pub mod npy;
pub mod png;

pub use atomic::{write_atomic, write_atomic_with, write_folder_atomic};
