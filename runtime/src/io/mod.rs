//! Image and tensor files (`.npy` model space, PNG pixels) and the atomic write every output
//! goes through.

pub mod atomic;
pub mod npy;
pub mod png;

pub use atomic::{write_atomic, write_atomic_with, write_folder_atomic};
