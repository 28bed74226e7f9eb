//! Calibration errors: which input, measurement or output failed, and what to do about it.

use std::path::PathBuf;

pub type Result<T, E = CalibError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum CalibError {
    #[error(transparent)]
    Runtime(#[from] brenier::Error),

    #[error("calibration set {path}: {problem}")]
    Set { path: PathBuf, problem: String },

    #[error("evaluation classifier: {0}")]
    Classifier(String),

    #[error("drawing {path}: {problem}")]
    Plot { path: PathBuf, problem: String },

    #[error("{0}")]
    Invalid(String),
}

impl CalibError {
    pub fn set(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        CalibError::Set { path: path.into(), problem: problem.into() }
    }
}
