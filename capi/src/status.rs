//! Status codes a C caller branches on, one per kind of failure it can act on differently; the
//! message (`brenier_last_error`) carries the detail, which is the runtime error's own text.

use runtime::{Error, ErrorKind};

/// What a call returned. `BRENIER_STATUS_OK` is zero; every other value comes with a message from
/// `brenier_last_error` on the same thread.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrenierStatus {
    Ok = 0,
    /// A null or misaligned pointer, an unknown name (method, backend, precision, domain), a
    /// count of 0 or too large, a value out of range.
    InvalidArgument = 1,
    /// A file could not be read or written.
    Io = 2,
    /// Not a bundle, truncated, corrupted, a newer format, a damaged section or manifest, or a
    /// file that changed underneath a mapped engine.
    Bundle = 3,
    /// Input or output of the wrong size for the bundle's images.
    Shape = 4,
    /// NaN or Inf in the input, or produced by a network.
    NonFinite = 5,
    /// The bundle lacks what was asked for (an OT map, a neural map).
    Missing = 6,
    /// A network could not be prepared or run (unsupported operator, tract failure).
    Network = 7,
    /// The CUDA backend cannot start or failed on the device.
    Cuda = 8,
    /// A memory budget or the machine's free memory refused the run (reserved: the C API takes
    /// no memory budget yet, so it does not return this).
    Memory = 9,
    /// A panic inside the library, caught at the boundary; the engine may be unusable.
    Panic = 10,
}

impl From<&Error> for BrenierStatus {
    fn from(e: &Error) -> Self {
        match e.kind() {
            ErrorKind::InvalidArgument => BrenierStatus::InvalidArgument,
            ErrorKind::Io => BrenierStatus::Io,
            ErrorKind::Bundle => BrenierStatus::Bundle,
            ErrorKind::Shape => BrenierStatus::Shape,
            ErrorKind::NonFinite => BrenierStatus::NonFinite,
            ErrorKind::Missing => BrenierStatus::Missing,
            ErrorKind::Network => BrenierStatus::Network,
            ErrorKind::Cuda => BrenierStatus::Cuda,
            ErrorKind::Memory => BrenierStatus::Memory,
        }
    }
}
