//! The arithmetic networks run in: a word shared by the bundle's calibration record, the
//! backends and the device profiles, so it lives below all of them.

use crate::error::{Error, Result};

/// Arithmetic the networks run in. Inputs and outputs stay f32 at the
/// [`Network`](crate::backend::Network) boundary; a
/// backend in f16 converts at its edge, so pipelines and kernels do not change with precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    F16,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Precision::F32),
            "f16" => Ok(Precision::F16),
            _ => Err(Error::InvalidArgument(format!("precision `{s}`: expected `f32` or `f16`"))),
        }
    }
}
