//! The backend facade: run an ε-network for a batch, and the two hot kernels (OT assignment,
//! DDIM update). Device-specific code stays behind these traits; the CPU reference kernels in
//! `ot::map` and `sched::ddim` are the truth every backend is tested against (`tests/backend_suite`).

#[cfg(feature = "cpu")]
pub mod cpu;

use half::f16;

use crate::bundle::{ImageSpec, NetSpec};
use crate::error::Result;
use crate::ot::Assignment;
use crate::sched::DdimCoeffs;

#[cfg(feature = "cpu")]
pub use cpu::CpuBackend;

/// A loaded ε-prediction network.
pub trait EpsNet: Send + Sync {
    /// ε(x, t) for `batch` images (`x` is batch×C×H×W, model space, row-major).
    fn eps(&self, x: &[f32], batch: usize, t: i64) -> Result<Vec<f32>>;
    /// Short label for logs and errors (`net a (sneaker)`).
    fn label(&self) -> &str;
}

pub trait Backend: Send + Sync {
    fn name(&self) -> &'static str;
    /// Worker threads the backend uses on the host.
    fn threads(&self) -> usize;
    /// Prepares a network from its ONNX bytes (optimised once, here, not per call).
    fn load_net(&self, onnx: &[u8], spec: &NetSpec, image: ImageSpec, label: &str) -> Result<Box<dyn EpsNet>>;
    /// Hard OT assignment: argmax_i ⟨x, y_i⟩ + h_i for each query row.
    fn ot_assign(&self, queries: &[f32], d: usize, targets: &[f16], heights: &[f32]) -> Result<Vec<Assignment>>;
    /// Entropic soft OT map with temperature τ.
    fn ot_soft_map(&self, queries: &[f32], d: usize, targets: &[f16], heights: &[f32], tau: f32) -> Result<Vec<f32>>;
    /// `x ← c_x·x + c_ε·ε + σ·z`.
    fn ddim_update(&self, x: &mut [f32], eps: &[f32], noise: Option<&[f32]>, c: DdimCoeffs);
}
