//! Export errors: what was wrong with the inputs, named so the user knows which file to fix.

use std::path::PathBuf;

pub type Result<T, E = ExportError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Runtime(#[from] brenier::Error),

    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}")]
    Invalid(String),
}

impl ExportError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        ExportError::Invalid(msg.into())
    }
}
