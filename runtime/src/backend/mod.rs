//! The backend facade: run an ε-network for a batch, and the two hot kernels (OT assignment,
//! DDIM update). Device-specific code stays behind these traits; the CPU reference kernels in
//! `ot::map` and `sched::ddim` are the truth every backend is tested against (`tests/backend_suite`).

#[cfg(feature = "cpu")]
pub mod conv;
#[cfg(feature = "cpu")]
pub mod cpu;
#[cfg(feature = "cpu")]
pub mod crew;
#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(feature = "cpu")]
pub(crate) mod graph;
#[cfg(feature = "cpu")]
pub mod intra_op;
pub mod kernel_cache;
pub mod memory;
#[cfg(feature = "cpu")]
pub mod natural_consts;
pub mod op_profile;
#[cfg(feature = "cpu")]
pub mod row_sum;

use half::f16;

use crate::bundle::{ImageSpec, NetSpec};
use crate::error::Result;
use crate::ot::Assignment;
use crate::rng::NoiseStream;
use crate::sched::DdimCoeffs;

pub use crate::precision::Precision;
pub use memory::Available;

#[cfg(feature = "cpu")]
pub use cpu::CpuBackend;

/// How a run of one piece (one image, or one padded piece of a fixed-batch plan) spends host
/// threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnePiece {
    /// On the calling thread alone.
    Serial,
    /// brenier's convolutions shared with a crew that stays awake through the run
    /// (`backend/crew.rs`); the graph's other operators on the calling thread.
    Kernels,
    /// Every operator split across the thread pool: tract's matrix products and elementwise
    /// kernels, and brenier's convolutions.
    All,
}

impl OnePiece {
    pub fn name(self) -> &'static str {
        match self {
            OnePiece::Serial => "serial",
            OnePiece::Kernels => "kernels",
            OnePiece::All => "all",
        }
    }
}

/// A loaded network with the bundle's `x`/`t` signature: an ε-prediction network, or a neural OT
/// map (x_T of one domain ↦ x_T of the other, fed the map's time as `t`).
pub trait Network: Send + Sync {
    /// The output for `batch` inputs (`x` is batch×C×H×W, row-major): ε(x, t) for an ε-network,
    /// the mapped latents for a neural map.
    fn run(&self, x: &[f32], batch: usize, t: i64) -> Result<Vec<f32>>;
    /// Short label for logs and errors (`net a (sneaker)`).
    fn label(&self) -> &str;
    /// Memory the network holds once loaded (weights as the backend stores them), in bytes.
    fn weight_bytes(&self) -> usize;
    /// Peak memory of intermediate tensors while evaluating `batch` images, in bytes (a static
    /// count of the plan's tensors: the floor, and the estimate where nothing can be measured).
    fn activation_bytes(&self, batch: usize) -> usize;
    /// Images whose intermediate tensors are alive at once while evaluating `batch` images: the
    /// whole batch for a backend that runs it as one plan; fewer on the CPU, which runs pieces of
    /// it concurrently on its threads. The memory estimate grows with this, not with `batch`.
    fn images_in_flight(&self, batch: usize) -> usize {
        batch
    }
    /// How a run of one piece spends host threads (the CPU's intra-op threading,
    /// `backend/intra_op.rs`); `brenier bench --eval-only` reports it.
    fn one_piece(&self) -> OnePiece {
        OnePiece::Serial
    }
    /// Time per operator over `runs` evaluations of one piece: the first images of `x` (as many
    /// as the backend runs at once, padded with zeros), on the threads a one-piece run uses.
    /// `None` where the backend cannot attribute time to operators.
    fn op_profile(&self, _x: &[f32], _t: i64, _runs: usize) -> Result<Option<op_profile::OpProfile>> {
        Ok(None)
    }
}

/// Which backend to start: `auto` takes CUDA where this build has it and the machine can run
/// it, and otherwise the CPU, logging why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    #[default]
    Cpu,
    Cuda,
    Auto,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Cuda => "cuda",
            BackendKind::Auto => "auto",
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for BackendKind {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(BackendKind::Cpu),
            "cuda" => Ok(BackendKind::Cuda),
            "auto" => Ok(BackendKind::Auto),
            _ => Err(crate::Error::InvalidArgument(format!("backend `{s}`: expected `cpu`, `cuda` or `auto`"))),
        }
    }
}

/// `open` with the backend and precision by name ("cpu", "f16", ...), as the C and Python
/// interfaces take them; `None` is the default (the CLI's).
#[cfg(feature = "cpu")]
pub fn open_named(kind: Option<&str>, precision: Option<&str>, threads: usize) -> Result<Box<dyn Backend>> {
    let kind = kind.map(str::parse).transpose()?.unwrap_or_default();
    let precision = precision.map(str::parse).transpose()?.unwrap_or_default();
    open(kind, precision, threads)
}

/// Starts the backend `kind` with networks in `precision` and `threads` host threads (0: all).
/// `cuda` fails with the probe's typed error; `auto` falls back to the CPU with a warning, in
/// f32 when this CPU would only emulate f16.
#[cfg(feature = "cpu")]
pub fn open(kind: BackendKind, precision: Precision, threads: usize) -> Result<Box<dyn Backend>> {
    match kind {
        BackendKind::Cpu => Ok(Box::new(CpuBackend::with_precision(threads, precision)?)),
        BackendKind::Cuda => open_cuda(precision),
        BackendKind::Auto => match open_cuda(precision) {
            Ok(b) => Ok(b),
            Err(e) => {
                let precision = if precision == Precision::F16 && !cpu::f16_native() {
                    log::warn!("CUDA unavailable ({e}); running on the CPU in f32 (this CPU only emulates f16)");
                    Precision::F32
                } else {
                    log::warn!("CUDA unavailable ({e}); running on the CPU in {precision}");
                    precision
                };
                Ok(Box::new(CpuBackend::with_precision(threads, precision)?))
            }
        },
    }
}

#[cfg(feature = "cuda")]
fn open_cuda(precision: Precision) -> Result<Box<dyn Backend>> {
    Ok(Box::new(cuda::CudaBackend::new(precision)?))
}

#[cfg(all(feature = "cpu", not(feature = "cuda")))]
fn open_cuda(_: Precision) -> Result<Box<dyn Backend>> {
    Err(crate::Error::CudaUnavailable {
        problem: "this brenier was built without CUDA support".into(),
        fix: "rebuild with `cargo build --release --features cuda` (no CUDA toolkit needed to build), or run with --backend cpu".into(),
    })
}

pub trait Backend: Send + Sync {
    fn name(&self) -> &'static str;
    /// Precision the networks run in.
    fn precision(&self) -> Precision {
        Precision::F32
    }
    /// Worker threads the backend uses on the host.
    fn threads(&self) -> usize;
    /// Device memory in use now (all processes: the driver reports no finer figure), where the
    /// backend has a device.
    fn device_memory_used(&self) -> Option<u64> {
        None
    }
    /// Memory a run on this backend can still take: see [`Available`].
    fn memory_available(&self) -> Available {
        Available { system: memory::system_available_bytes(), device_free: None, unified: false }
    }
    /// The device the backend runs on, for reports (`NVIDIA Orin, sm_87, …`); None on the CPU.
    fn device(&self) -> Option<String> {
        None
    }
    /// How many networks [`Backend::load_net`] may prepare at once, each on a thread of its own
    /// (the engine's [`prepare`](crate::pipeline::Engine::prepare) uses it). 1, the default,
    /// prepares them one after another.
    fn concurrent_loads(&self) -> usize {
        1
    }
    /// Prepares a network from its ONNX bytes (optimised once, here, not per call).
    fn load_net(&self, onnx: &[u8], spec: &NetSpec, image: ImageSpec, label: &str) -> Result<Box<dyn Network>>;
    /// Hard OT assignment: argmax_i ⟨x, y_i⟩ + h_i for each query row.
    fn ot_assign(&self, queries: &[f32], d: usize, targets: &[f16], heights: &[f32]) -> Result<Vec<Assignment>>;
    /// Entropic soft OT map with temperature τ.
    fn ot_soft_map(&self, queries: &[f32], d: usize, targets: &[f16], heights: &[f32], tau: f32) -> Result<Vec<f32>>;
    /// `x ← c_x·x + c_ε·ε + σ·z`, z drawn from `noise` (element i of the batch buffer is value i
    /// of the stream, on every backend) when σ > 0.
    fn ddim_update(&self, x: &mut [f32], eps: &[f32], noise: Option<NoiseStream>, c: DdimCoeffs) -> Result<()>;
}
