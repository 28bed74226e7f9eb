//! One error type for the runtime. Every variant names what went wrong and, where the user can act,
//! what to do next: these messages reach people deploying bundles, not only developers.

use std::path::PathBuf;

/// Result alias used across the runtime.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot write {path} (it was left unchanged)")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("no space left to write {path} (ran out after {written} bytes); free space on that device and retry — {path} was left unchanged")]
    NoSpace {
        path: PathBuf,
        written: u64,
        #[source]
        source: std::io::Error,
    },

    #[error("{path} changed on disk while in use ({detail}): something overwrote it in place. Replace a bundle by writing a new file and renaming it over the old one (as `brenier export` does), or run with --no-mmap")]
    ChangedOnDisk { path: PathBuf, detail: String },

    #[error("{path} is not a brenier bundle (bad magic bytes); was it written by `brenier export`?")]
    NotABundle { path: PathBuf },

    #[error(
        "bundle format version {found} is newer than this runtime understands (max {supported}); \
         upgrade brenier or re-export the bundle with this version"
    )]
    UnsupportedVersion { found: u32, supported: u32 },

    #[error("bundle is truncated: {what} needs bytes up to {needed} but the file has {actual}; copy the file again")]
    Truncated { what: String, needed: u64, actual: u64 },

    #[error("bundle is corrupted: {what}; copy or re-export the file")]
    Corrupted { what: String },

    #[error("bundle section `{section}` failed its checksum (stored {stored:08x}, computed {computed:08x}); the file was damaged in transit, copy it again")]
    Checksum { section: String, stored: u32, computed: u32 },

    #[error("bundle section `{section}`: {problem}")]
    Section { section: String, problem: String },

    #[error("bundle manifest: {0}")]
    Manifest(String),

    #[error("bundle has no section `{0}`")]
    MissingSection(String),

    #[error("{what} has shape {found:?} but the bundle expects {expected:?}{hint}")]
    Shape { what: String, expected: Vec<usize>, found: Vec<usize>, hint: String },

    #[error("{what} contains a non-finite value (NaN or Inf) at flat index {index}{context}")]
    NonFinite { what: String, index: usize, context: String },

    #[error("network `{net}` produced a non-finite value (NaN or Inf) at {stage}; either the input is far outside the model range (check its normalisation) or the network or its export is broken for it (run `brenier eps` to inspect one evaluation)")]
    NetworkNonFinite { net: String, stage: String },

    #[error("the bundle has no OT map {wanted}; available: {available}. Export one with `brenier export --targets/--heights` (or `--ot-map`), or translate with method `ddib`")]
    NoOtMap { wanted: String, available: String },

    #[error("the bundle has no neural OT map {wanted}; available: {available}. Train one with `brenier-train neural-map` and add it with `brenier export --neural-map`, or translate with method `ot-ald`")]
    NoNeuralMap { wanted: String, available: String },

    #[error("ONNX model `{net}`: {problem}")]
    Onnx { net: String, problem: String },

    #[error("ONNX model `{net}` uses operator `{op}` (node `{node}`) that tract cannot run; re-export with a supported opset (13-18) or replace the operator")]
    UnsupportedOp { net: String, op: String, node: String },

    #[error("tract failed while {context}: {message}")]
    Tract { context: String, message: String },

    #[error("{path}: {problem}")]
    Input { path: PathBuf, problem: String },

    #[error("running this bundle needs about {needed_mib:.1} MiB ({detail}) but the memory budget is {budget_mib:.1} MiB; use a smaller --batch, a device with more memory, or raise --memory-budget")]
    MemoryBudget { needed_mib: f64, budget_mib: f64, detail: String },

    #[error("running this bundle needs about {needed_mib:.1} MiB more ({detail}) but this machine's {what} is {available_mib:.1} MiB; use a smaller --batch, free memory, or a device with more")]
    MemoryUnavailable { needed_mib: f64, available_mib: f64, what: String, detail: String },

    #[error("the CUDA backend cannot start: {problem}; {fix}")]
    CudaUnavailable { problem: String, fix: String },

    #[error("CUDA failed while {context}: {message}")]
    Cuda { context: String, message: String },

    #[error("compiling the CUDA kernels for {arch} with NVRTC failed: {log}")]
    KernelCompile { arch: String, log: String },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Sections the writer cannot lay out (count, names, a row the reader would reject).
    #[error("bundle layout: {0}")]
    Layout(String),

    /// The sink given to `bundle::write_to` failed (files go through the atomic writer and fail
    /// with `Write` or `NoSpace` instead).
    #[error("bundle stream write failed")]
    Stream(#[source] std::io::Error),
}

/// Declares `ErrorKind` with its list and names in one place, so `ErrorKind::ALL` cannot miss a
/// kind the enum has.
macro_rules! error_kinds {
    ($($(#[doc = $doc:literal])* $kind:ident => $name:literal,)*) => {
        /// The class of a failure: what a program embedding the runtime branches on (the C API's
        /// status codes, the Python package's exception types), while the error's text carries the
        /// detail.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum ErrorKind {
            $($(#[doc = $doc])* $kind,)*
        }

        impl ErrorKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$kind,)*];

            /// A stable name, what an embedding keys its own error types by.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorKind::$kind => $name,)*
                }
            }
        }
    };
}

error_kinds! {
    /// A value, name or count the caller gave is not acceptable.
    InvalidArgument => "invalid_argument",
    /// A file could not be read or written.
    Io => "io",
    /// Not a bundle, truncated, corrupted, a newer format, a damaged section or manifest, or a
    /// file that changed underneath a mapped bundle.
    Bundle => "bundle",
    /// Input or output of the wrong size for the bundle's images.
    Shape => "shape",
    /// NaN or Inf in the input, or produced by a network.
    NonFinite => "non_finite",
    /// The bundle lacks what was asked for (an OT map, a neural map).
    Missing => "missing",
    /// A network could not be prepared or run.
    Network => "network",
    /// The CUDA backend cannot start or failed on the device.
    Cuda => "cuda",
    /// A memory budget or the machine's free memory refused the run.
    Memory => "memory",
}

impl Error {
    /// The class of this failure. Exhaustive: a new variant must choose its class here.
    pub fn kind(&self) -> ErrorKind {
        use ErrorKind::*;
        match self {
            Error::Io { .. } | Error::Write { .. } | Error::NoSpace { .. } | Error::Stream(_) => Io,
            Error::ChangedOnDisk { .. }
            | Error::NotABundle { .. }
            | Error::UnsupportedVersion { .. }
            | Error::Truncated { .. }
            | Error::Corrupted { .. }
            | Error::Checksum { .. }
            | Error::Section { .. }
            | Error::Manifest(_)
            | Error::MissingSection(_)
            | Error::Layout(_) => Bundle,
            Error::Shape { .. } => Shape,
            Error::NonFinite { .. } | Error::NetworkNonFinite { .. } => NonFinite,
            Error::NoOtMap { .. } | Error::NoNeuralMap { .. } => Missing,
            Error::Onnx { .. } | Error::UnsupportedOp { .. } | Error::Tract { .. } => Network,
            Error::CudaUnavailable { .. } | Error::Cuda { .. } | Error::KernelCompile { .. } => Cuda,
            Error::MemoryBudget { .. } | Error::MemoryUnavailable { .. } => Memory,
            Error::InvalidArgument(_) | Error::Input { .. } => InvalidArgument,
        }
    }

    /// The message with its causes, `what: why: …`: what an embedding hands its caller as one
    /// string (the C API's `brenier_last_error`, a Python exception's text).
    pub fn message_with_causes(&self) -> String {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        message
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub fn corrupted(what: impl Into<String>) -> Self {
        Error::Corrupted { what: what.into() }
    }

    pub fn section(section: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Section { section: section.into(), problem: problem.into() }
    }

    pub fn input(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Error::Input { path: path.into(), problem: problem.into() }
    }

    pub fn cuda(context: impl Into<String>, err: impl std::fmt::Debug) -> Self {
        Error::Cuda { context: context.into(), message: format!("{err:?}") }
    }

    pub fn tract(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Error::Tract { context: context.into(), message: format!("{err:#}") }
    }
}

/// Fails with [`Error::NonFinite`] on the first NaN/Inf in `values`.
pub fn check_finite(values: &[f32], what: &str, context: &str) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => Err(Error::NonFinite {
            what: what.to_string(),
            index,
            context: if context.is_empty() { String::new() } else { format!(" ({context})") },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_distinct_and_every_kind_is_listed_once() {
        let mut names: Vec<_> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        assert_eq!(ErrorKind::ALL.len(), 9, "a new kind needs its C status and Python class");
    }

    #[test]
    fn the_message_carries_its_causes() {
        let e = Error::io("/data/model.brn", std::io::Error::other("the disk went away"));
        assert_eq!(e.kind(), ErrorKind::Io);
        let m = e.message_with_causes();
        assert!(m.contains("/data/model.brn") && m.ends_with(": the disk went away"), "{m}");
    }
}
