//! The backend facade: run an ε-network for a batch, and the two hot kernels (OT assignment,
//! DDIM update). Device-specific code stays behind these traits; the CPU reference kernels in
//! `ot::map` and `sched::ddim` are the truth every backend is tested against (`tests/backend_suite`).

#[cfg(feature = "cpu")]
pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(feature = "cpu")]
pub(crate) mod graph;
pub mod kernel_cache;

use half::f16;

use crate::bundle::{ImageSpec, NetSpec};
use crate::error::Result;
use crate::ot::Assignment;
use crate::rng::NoiseStream;
use crate::sched::DdimCoeffs;

#[cfg(feature = "cpu")]
pub use cpu::CpuBackend;

/// A loaded ε-prediction network.
pub trait EpsNet: Send + Sync {
    /// ε(x, t) for `batch` images (`x` is batch×C×H×W, model space, row-major).
    fn eps(&self, x: &[f32], batch: usize, t: i64) -> Result<Vec<f32>>;
    /// Short label for logs and errors (`net a (sneaker)`).
    fn label(&self) -> &str;
    /// Memory the network holds once loaded (weights as the backend stores them), in bytes.
    fn weight_bytes(&self) -> usize;
    /// Peak memory of intermediate tensors while evaluating `batch` images, in bytes.
    fn activation_bytes(&self, batch: usize) -> usize;
}

/// Arithmetic the networks run in. Inputs and outputs stay f32 at the [`EpsNet`] boundary; a
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
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Precision::F32),
            "f16" => Ok(Precision::F16),
            _ => Err(crate::Error::InvalidArgument(format!("precision `{s}`: expected `f32` or `f16`"))),
        }
    }
}

pub trait Backend: Send + Sync {
    fn name(&self) -> &'static str;
    /// Precision the networks run in.
    fn precision(&self) -> Precision {
        Precision::F32
    }
    /// Worker threads the backend uses on the host.
    fn threads(&self) -> usize;
    /// Prepares a network from its ONNX bytes (optimised once, here, not per call).
    fn load_net(&self, onnx: &[u8], spec: &NetSpec, image: ImageSpec, label: &str) -> Result<Box<dyn EpsNet>>;
    /// Hard OT assignment: argmax_i ⟨x, y_i⟩ + h_i for each query row.
    fn ot_assign(&self, queries: &[f32], d: usize, targets: &[f16], heights: &[f32]) -> Result<Vec<Assignment>>;
    /// Entropic soft OT map with temperature τ.
    fn ot_soft_map(&self, queries: &[f32], d: usize, targets: &[f16], heights: &[f32], tau: f32) -> Result<Vec<f32>>;
    /// `x ← c_x·x + c_ε·ε + σ·z`, z drawn from `noise` (element i of the batch buffer is value i
    /// of the stream, on every backend) when σ > 0.
    fn ddim_update(&self, x: &mut [f32], eps: &[f32], noise: Option<NoiseStream>, c: DdimCoeffs) -> Result<()>;
}
