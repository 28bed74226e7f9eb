//! The OT map on the GPU. The targets go to device memory once per map, as f16 straight from the
//! bundle mapping (no host copy); scores Q·Yᵀ are one cuBLAS GemmEx (f16 inputs, f32
//! accumulation), then kernels add the heights and reduce per query: argmax for the hard map,
//! softmax weights and a weighted target sum for the soft map.

use std::ffi::c_void;
use std::sync::{Arc, Mutex};

use cudarc::cublas::sys::{cublasComputeType_t, cublasOperation_t, cudaDataType};
use cudarc::cublas::CudaBlas;
use cudarc::driver::{CudaSlice, CudaStream, DevicePtr, DevicePtrMut, LaunchConfig, PushKernelArg};
use half::f16;

use super::compile::BLOCK;
use super::Kernels;
use crate::error::{Error, Result};
use crate::ot::Assignment;

/// A map's targets and heights in device memory, with what identifies their host source.
struct DeviceMap {
    key: MapKey,
    targets: CudaSlice<f16>,
    heights: CudaSlice<f32>,
}

/// The host slices' addresses and lengths plus a content sample: the bundle mapping lives as
/// long as the engine, and the sample guards against a different map later at the same address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MapKey {
    targets: (usize, usize),
    heights: (usize, usize),
    sample: u32,
}

impl MapKey {
    fn of(targets: &[f16], heights: &[f32]) -> MapKey {
        let mut h = crc32fast::Hasher::new();
        h.update(bytemuck::cast_slice(heights));
        for v in targets.iter().step_by(997) {
            h.update(&v.to_bits().to_le_bytes());
        }
        MapKey {
            targets: (targets.as_ptr() as usize, targets.len()),
            heights: (heights.as_ptr() as usize, heights.len()),
            sample: h.finalize(),
        }
    }
}

pub struct DeviceOt {
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    maps: Mutex<Vec<Arc<DeviceMap>>>,
}

fn err(context: &str) -> impl Fn(cudarc::driver::DriverError) -> Error + '_ {
    move |e| Error::cuda(context, e)
}

struct Scored {
    map: Arc<DeviceMap>,
    scores: CudaSlice<f32>,
    b: usize,
    n: usize,
    rows: LaunchConfig,
}

impl DeviceOt {
    pub fn new(stream: Arc<CudaStream>) -> Result<DeviceOt> {
        let blas = CudaBlas::new(stream.clone()).map_err(|e| Error::cuda("creating the cuBLAS handle", e))?;
        Ok(DeviceOt { stream, blas, maps: Mutex::new(Vec::new()) })
    }

    fn map(&self, targets: &[f16], heights: &[f32]) -> Result<Arc<DeviceMap>> {
        let key = MapKey::of(targets, heights);
        let mut maps = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = maps.iter().find(|m| m.key == key) {
            return Ok(m.clone());
        }
        let m = Arc::new(DeviceMap {
            key,
            targets: self.stream.clone_htod(targets).map_err(err("uploading the OT targets"))?,
            heights: self.stream.clone_htod(heights).map_err(err("uploading the OT heights"))?,
        });
        log::info!(
            "OT map on the GPU: {} targets, {:.1} MiB f16",
            heights.len(),
            std::mem::size_of_val(targets) as f64 / 1048576.0
        );
        maps.push(m.clone());
        Ok(m)
    }

    /// The map on the device and the raw scores of `queries`, with the one-block-per-row launch
    /// shape that both the argmax and the softmax use.
    fn score(&self, queries: &[f32], d: usize, targets: &[f16], heights: &[f32]) -> Result<Scored> {
        let (n, b) = (heights.len(), queries.len() / d);
        let map = self.map(targets, heights)?;
        let scores = self.scores(&map, queries, d, n)?;
        let rows = LaunchConfig { grid_dim: (b as u32, 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 };
        Ok(Scored { map, scores, b, n, rows })
    }

    /// scores (batch×n, f32) = Q·Yᵀ with Q rounded to f16.
    fn scores(&self, map: &DeviceMap, queries: &[f32], d: usize, n: usize) -> Result<CudaSlice<f32>> {
        let b = queries.len() / d;
        let q16: Vec<f16> = queries.iter().map(|&v| f16::from_f32(v)).collect();
        let q = self.stream.clone_htod(&q16).map_err(err("uploading the OT queries"))?;
        let mut s = self.stream.alloc_zeros::<f32>(b * n).map_err(err("allocating the OT scores"))?;
        let (alpha, beta) = (1f32, 0f32);
        {
            let (y_ptr, _ry) = map.targets.device_ptr(&self.stream);
            let (q_ptr, _rq) = q.device_ptr(&self.stream);
            let (s_ptr, _rs) = s.device_ptr_mut(&self.stream);
            // Column-major view: Y (n×d row-major) is d×n with lda = d; op(Y) = Yᵀ gives n×d; Q is
            // d×b; S = Yᵀ·Q is n×b column-major, i.e. b×n row-major.
            // SAFETY: every pointer covers the extents named (targets n·d, queries b·d, scores
            // b·n), all on this stream, which the handle is bound to.
            unsafe {
                cudarc::cublas::result::gemm_ex(
                    *self.blas.handle(),
                    cublasOperation_t::CUBLAS_OP_T,
                    cublasOperation_t::CUBLAS_OP_N,
                    n as i32,
                    b as i32,
                    d as i32,
                    (&alpha as *const f32).cast::<c_void>(),
                    y_ptr as *const c_void,
                    cudaDataType::CUDA_R_16F,
                    d as i32,
                    q_ptr as *const c_void,
                    cudaDataType::CUDA_R_16F,
                    d as i32,
                    (&beta as *const f32).cast::<c_void>(),
                    s_ptr as *mut c_void,
                    cudaDataType::CUDA_R_32F,
                    n as i32,
                    cublasComputeType_t::CUBLAS_COMPUTE_32F,
                    cudarc::cublas::sys::cublasGemmAlgo_t::CUBLAS_GEMM_DFALT,
                )
            }
            .map_err(|e| Error::cuda("scoring the OT targets (cuBLAS GemmEx)", e))?;
        }
        Ok(s)
    }

    pub fn assign(
        &self,
        k: &Kernels,
        queries: &[f32],
        d: usize,
        targets: &[f16],
        heights: &[f32],
    ) -> Result<Vec<Assignment>> {
        let Scored { map, scores, b, n, rows } = self.score(queries, d, targets, heights)?;
        let mut idx = self.stream.alloc_zeros::<i32>(b).map_err(err("allocating the OT result"))?;
        let mut best = self.stream.alloc_zeros::<f32>(b).map_err(err("allocating the OT result"))?;
        let n32 = n as i32;
        // SAFETY: ot_argmax(scores b×n, heights n, n, idx b, best b), one block per row.
        unsafe {
            self.stream
                .launch_builder(&k.ot_argmax)
                .arg(&scores)
                .arg(&map.heights)
                .arg(&n32)
                .arg(&mut idx)
                .arg(&mut best)
                .launch(rows)
        }
        .map_err(err("running ot_argmax"))?;
        let idx = self.stream.clone_dtoh(&idx).map_err(err("reading the OT assignment"))?;
        let best = self.stream.clone_dtoh(&best).map_err(err("reading the OT assignment"))?;
        idx.into_iter()
            .zip(best)
            .enumerate()
            .map(|(q, (i, score))| {
                usize::try_from(i).map(|index| Assignment { index, score }).map_err(|_| Error::NonFinite {
                    what: "OT map query".into(),
                    index: q,
                    context: " (every score was NaN: the latent or the heights are not finite)".into(),
                })
            })
            .collect()
    }

    pub fn soft_map(
        &self,
        k: &Kernels,
        queries: &[f32],
        d: usize,
        targets: &[f16],
        heights: &[f32],
        tau: f32,
    ) -> Result<Vec<f32>> {
        let Scored { map, scores: mut w, b, n, rows } = self.score(queries, d, targets, heights)?;
        let mut status = self.stream.alloc_zeros::<i32>(b).map_err(err("allocating the soft-map status"))?;
        let mut out = self.stream.alloc_zeros::<f32>(b * d).map_err(err("allocating the soft-map output"))?;
        let (n32, d32) = (n as i32, d as i32);
        let cols = LaunchConfig {
            grid_dim: ((d as u32).div_ceil(BLOCK), b as u32, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: ot_softmax_rows(scores b×n in place, heights n, n, τ, status b), one block per
        // row; ot_weighted_sum(weights b×n, targets n×d, n, d, out b×d) over a (⌈d/BLOCK⌉, b) grid.
        unsafe {
            self.stream
                .launch_builder(&k.ot_softmax_rows)
                .arg(&mut w)
                .arg(&map.heights)
                .arg(&n32)
                .arg(&tau)
                .arg(&mut status)
                .launch(rows)
                .map_err(err("running ot_softmax_rows"))?;
            self.stream
                .launch_builder(&k.ot_weighted_sum)
                .arg(&w)
                .arg(&map.targets)
                .arg(&n32)
                .arg(&d32)
                .arg(&mut out)
                .launch(cols)
                .map_err(err("running ot_weighted_sum"))?;
        }
        let status = self.stream.clone_dtoh(&status).map_err(err("reading the soft-map status"))?;
        if let Some(q) = status.iter().position(|&s| s != 0) {
            return Err(Error::NonFinite { what: "soft OT map query".into(), index: q, context: String::new() });
        }
        self.stream.clone_dtoh(&out).map_err(err("reading the soft-map output"))
    }
}
