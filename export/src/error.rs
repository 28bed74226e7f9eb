//! Export errors: what was wrong with the inputs, named so the user knows which file to fix.

pub type Result<T, E = ExportError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Runtime(#[from] brenier::Error),

    #[error("{0}")]
    Invalid(String),
}

impl ExportError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        ExportError::Invalid(msg.into())
    }
}
