//! The CUDA backend (cargo feature `cuda`): networks through tract's CUDA runtime (f16 by
//! default), the OT map as a cuBLAS f16 GEMM plus reduction kernels, the DDIM step as a fused
//! kernel. Every library is loaded at run time and probed first ([`probe::probe`]), so the same
//! binary runs on a machine without CUDA and says why it cannot use it.
//!
//! The pipelines keep their state on the host at the [`Network`] boundary (f32 in, f32 out), so
//! the OT and DDIM kernels run on uploaded copies; the data moved per step is one batch of
//! latents, small next to a network evaluation.

pub mod compile;
mod fallback;
pub mod net;
mod ot;
pub mod probe;

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::Ptx;
use half::f16;

use super::graph::Graph;
use super::{Backend, Network, Precision};
use crate::bundle::{ImageSpec, NetSpec};
use crate::error::{Error, Result};
use crate::ot::Assignment;
use crate::rng::NoiseStream;
use crate::sched::DdimCoeffs;
use compile::BLOCK;
pub use fallback::{bundle_fallback, cpu_fallback_nodes, FallbackNode};
pub use probe::{probe, DeviceInfo};

/// The loaded kernels of kernels.cu, by name.
pub(crate) struct Kernels {
    _module: Arc<CudaModule>,
    ot_argmax: CudaFunction,
    ot_softmax_rows: CudaFunction,
    ot_weighted_sum: CudaFunction,
    ddim_step_f32: CudaFunction,
}

impl Kernels {
    fn load(ctx: &Arc<CudaContext>, cubin: Vec<u8>) -> Result<Kernels> {
        let module =
            ctx.load_module(Ptx::from_binary(cubin)).map_err(|e| Error::cuda("loading the kernel module", e))?;
        let f = |name: &str| module.load_function(name).map_err(|e| Error::cuda(format!("loading kernel {name}"), e));
        Ok(Kernels {
            ot_argmax: f("ot_argmax")?,
            ot_softmax_rows: f("ot_softmax_rows")?,
            ot_weighted_sum: f("ot_weighted_sum")?,
            ddim_step_f32: f("ddim_step_f32")?,
            _module: module,
        })
    }
}

pub struct CudaBackend {
    info: DeviceInfo,
    ctx: Arc<CudaContext>,
    precision: Precision,
    stream: Arc<CudaStream>,
    kernels: Kernels,
    ot: ot::DeviceOt,
    /// One stream, one cuBLAS handle: device work is serialised across host threads.
    lock: std::sync::Mutex<()>,
}

impl CudaBackend {
    /// Probes the machine, then opens device 0 and loads the kernels (compiled for its own
    /// architecture, cached in `kernel_cache::default_dir()`).
    pub fn new(precision: Precision) -> Result<CudaBackend> {
        let info = probe()?;
        let ctx = CudaContext::new(0).map_err(|e| Error::cuda("opening device 0", e))?;
        let stream = ctx.default_stream();
        let (cubin, _) = compile::cached_cubin(&super::kernel_cache::default_dir(), &info.arch)?;
        let kernels = Kernels::load(&ctx, cubin)?;
        let ot = ot::DeviceOt::new(stream.clone())?;
        log::info!(
            "CUDA backend: {} ({}, {:.0} MiB, driver API {}, {}), networks in {precision}",
            info.name,
            info.arch,
            info.memory_bytes as f64 / 1048576.0,
            info.driver_api,
            info.nvrtc
        );
        Ok(CudaBackend { info, ctx, precision, stream, kernels, ot, lock: std::sync::Mutex::new(()) })
    }

    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Backend for CudaBackend {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn precision(&self) -> Precision {
        self.precision
    }

    fn threads(&self) -> usize {
        1
    }

    fn device(&self) -> Option<String> {
        let i = &self.info;
        Some(format!(
            "{}, {}, {:.0} MiB{}, driver API {}.{}, {}",
            i.name,
            i.arch,
            i.memory_bytes as f64 / 1048576.0,
            if i.integrated { " shared with the CPU" } else { "" },
            i.driver_api / 1000,
            i.driver_api % 1000 / 10,
            i.nvrtc
        ))
    }

    fn device_memory_used(&self) -> Option<u64> {
        self.ctx.mem_get_info().ok().map(|(free, total)| total.saturating_sub(free) as u64)
    }

    fn memory_available(&self) -> super::Available {
        let system = super::memory::system_available_bytes();
        if self.info.integrated {
            // Jetson: one memory for CPU and GPU; cuMemGetInfo's free figure leaves out what the
            // kernel can reclaim, MemAvailable does not.
            return super::Available { system, device_free: None, unified: true };
        }
        let device_free = self.ctx.mem_get_info().ok().map(|(free, _)| free as u64);
        super::Available { system, device_free, unified: false }
    }

    fn load_net(&self, onnx: &[u8], spec: &NetSpec, image: ImageSpec, label: &str) -> Result<Box<dyn Network>> {
        let graph = Graph::parse(onnx, spec, image, label)?;
        Ok(Box::new(net::CudaNet::load(graph, self.precision)?))
    }

    fn ot_assign(&self, queries: &[f32], d: usize, targets: &[f16], heights: &[f32]) -> Result<Vec<Assignment>> {
        crate::ot::check_shapes(queries, d, targets, heights)?;
        let _g = self.locked();
        self.ot.assign(&self.kernels, queries, d, targets, heights)
    }

    fn ot_soft_map(&self, queries: &[f32], d: usize, targets: &[f16], heights: &[f32], tau: f32) -> Result<Vec<f32>> {
        crate::ot::check_shapes(queries, d, targets, heights)?;
        if !(tau > 0.0 && tau.is_finite()) {
            return Err(Error::InvalidArgument(format!("soft-map temperature τ = {tau} must be positive")));
        }
        let _g = self.locked();
        self.ot.soft_map(&self.kernels, queries, d, targets, heights, tau)
    }

    fn ddim_update(&self, x: &mut [f32], eps: &[f32], noise: Option<NoiseStream>, c: DdimCoeffs) -> Result<()> {
        if x.len() != eps.len() {
            return Err(Error::InvalidArgument(format!(
                "DDIM step: {} latent values but {} ε values",
                x.len(),
                eps.len()
            )));
        }
        let _g = self.locked();
        let err = |what: &'static str| move |e| Error::cuda(what, e);
        let mut xd = self.stream.clone_htod(x).map_err(err("uploading the latents"))?;
        let ed = self.stream.clone_htod(eps).map_err(err("uploading ε"))?;
        let n = x.len() as u64;
        // σ = 0 draws nothing; a missing stream with σ > 0 is a caller error the CPU reference
        // treats as "no noise", and so does this.
        let (sigma, key) = match noise {
            Some(s) if c.sigma > 0.0 => (c.sigma, s.key()),
            _ => (0.0f32, 0u64),
        };
        let cfg = LaunchConfig {
            grid_dim: ((n as u32).div_ceil(BLOCK), 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: ddim_step_f32(x n, eps n, n, c_x, c_ε, σ, key) over ⌈n/BLOCK⌉ blocks.
        unsafe {
            self.stream
                .launch_builder(&self.kernels.ddim_step_f32)
                .arg(&mut xd)
                .arg(&ed)
                .arg(&n)
                .arg(&c.c_x)
                .arg(&c.c_eps)
                .arg(&sigma)
                .arg(&key)
                .launch(cfg)
        }
        .map_err(err("running ddim_step_f32"))?;
        self.stream.memcpy_dtoh(&xd, x).map_err(err("reading the latents"))
    }
}
