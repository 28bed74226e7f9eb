//! Finds out, before any CUDA call, whether this machine can run the CUDA backend, and says what
//! is missing and which package provides it. cudarc loads the libraries lazily and panics on a
//! missing one (`CudaContext::new` without libcuda), so every library is probed first with
//! cudarc's own `is_culib_present` (the same name candidates it will later load).

use cudarc::driver::sys as drv;

use crate::error::{Error, Result};

/// The CUDA driver API these bindings were generated for (cudarc feature `cuda-12060`).
pub const REQUIRED_DRIVER_API: i32 = 12060;

/// What the probe found on a machine that can run the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub name: String,
    /// Compute capability as NVRTC's architecture name, `sm_87` on Orin.
    pub arch: String,
    pub memory_bytes: usize,
    /// Driver API version, 12060 for 12.6.
    pub driver_api: i32,
    /// `nvrtc-12.6`: part of the kernel cache key.
    pub nvrtc: String,
    /// An integrated GPU sharing the system memory (Jetson), not a card with its own.
    pub integrated: bool,
}

fn unavailable(problem: impl Into<String>, fix: impl Into<String>) -> Error {
    Error::CudaUnavailable { problem: problem.into(), fix: fix.into() }
}

const OR_CPU: &str = "or run with --backend cpu (or auto, which falls back to the CPU)";

/// NVRTC alone (compiling kernels needs no GPU): present, with its version.
pub fn nvrtc_version() -> Result<(i32, i32)> {
    // SAFETY: a dlopen probe with no other effect.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(unavailable(
            "the NVRTC library (libnvrtc.so.12) was not found",
            format!("on a Jetson install cuda-nvrtc-12-6 (JetPack 6 carries it); on x86_64 the NVIDIA CUDA repository's cuda-nvrtc-12-6 or `pip install nvidia-cuda-nvrtc-cu12` with its lib folder on LD_LIBRARY_PATH; {OR_CPU}"),
        ));
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: the library is present; nvrtcVersion only writes the two integers.
    let rc = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    if rc != cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(unavailable(format!("nvrtcVersion failed ({rc:?})"), "reinstall the CUDA NVRTC package"));
    }
    Ok((major, minor))
}

/// Everything the backend needs: the driver (new enough, with a device), cuBLAS, NVRTC, and
/// what tract's CUDA runtime needs for the networks (cuDNN, the CUDA runtime library).
pub fn probe() -> Result<DeviceInfo> {
    // SAFETY: dlopen probes.
    if !unsafe { drv::is_culib_present() } {
        return Err(unavailable(
            "the NVIDIA driver library (libcuda.so.1) was not found",
            format!("on a Jetson it comes with JetPack (nvidia-l4t-cuda); on x86_64 install the NVIDIA driver (and in a container run with GPU access, e.g. --gpus all); {OR_CPU}"),
        ));
    }
    // SAFETY: the driver library is present; these calls only initialise it and read values.
    let driver_api = unsafe {
        let rc = drv::cuInit(0);
        if rc != drv::CUresult::CUDA_SUCCESS {
            return Err(unavailable(
                format!("the NVIDIA driver did not initialise ({rc:?}): no CUDA device is visible to this process"),
                format!("check `nvidia-smi` (or `tegrastats` on a Jetson), the /dev/nvidia* device permissions and, in a container, GPU passthrough; {OR_CPU}"),
            ));
        }
        let mut v = 0;
        drv::cuDriverGetVersion(&mut v);
        v
    };
    if driver_api < REQUIRED_DRIVER_API {
        return Err(unavailable(
            format!(
                "the CUDA driver supports API {}.{}, older than the {}.{} this build needs",
                driver_api / 1000,
                driver_api % 1000 / 10,
                REQUIRED_DRIVER_API / 1000,
                REQUIRED_DRIVER_API % 1000 / 10
            ),
            format!("use JetPack 6 (Orin), NVIDIA's upgradable CUDA 12.6 packages (cuda-compat-12-6) on JetPack 5, or a driver of 2024 or later on x86_64; {OR_CPU}"),
        ));
    }
    // SAFETY: dlopen probe.
    if !unsafe { cudarc::cublas::sys::is_culib_present() } {
        return Err(unavailable(
            "the cuBLAS library (libcublas.so.12) was not found",
            format!("on a Jetson install libcublas-12-6 (JetPack's cuda-libraries-12-6); on x86_64 libcublas-12-6 from the NVIDIA CUDA repository or `pip install nvidia-cublas-cu12` with its lib folder on LD_LIBRARY_PATH; {OR_CPU}"),
        ));
    }
    let (nv_major, nv_minor) = nvrtc_version()?;
    networks_runtime_check()?;
    let count = cudarc::driver::result::device::get_count().map_err(|e| Error::cuda("counting devices", e))?;
    if count < 1 {
        return Err(unavailable("the driver reports no CUDA device", OR_CPU));
    }
    let dev = cudarc::driver::result::device::get(0).map_err(|e| Error::cuda("opening device 0", e))?;
    let name = cudarc::driver::result::device::get_name(dev).map_err(|e| Error::cuda("reading the device name", e))?;
    // SAFETY: dev is a valid device handle from the driver.
    let (major, minor, memory_bytes, integrated) = unsafe {
        use drv::CUdevice_attribute::*;
        let attr = |a| cudarc::driver::result::device::get_attribute(dev, a);
        let major = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)
            .map_err(|e| Error::cuda("reading the compute capability", e))?;
        let minor = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)
            .map_err(|e| Error::cuda("reading the compute capability", e))?;
        let mem =
            cudarc::driver::result::device::total_mem(dev).map_err(|e| Error::cuda("reading the device memory", e))?;
        let integrated = attr(CU_DEVICE_ATTRIBUTE_INTEGRATED)
            .map_err(|e| Error::cuda("reading whether the GPU is integrated", e))?;
        (major, minor, mem, integrated != 0)
    };
    Ok(DeviceInfo {
        name,
        arch: format!("sm_{major}{minor}"),
        memory_bytes,
        driver_api,
        nvrtc: format!("nvrtc-{nv_major}.{nv_minor}"),
        integrated,
    })
}

/// tract's CUDA runtime checks its own libraries (cuDNN for convolutions, the CUDA runtime);
/// its message names the one missing.
fn networks_runtime_check() -> Result<()> {
    let rt = super::net::runtime()?;
    rt.check().map_err(|e| {
        unavailable(
            format!("tract's CUDA runtime for the networks is not usable: {e:#}"),
            format!("on a Jetson install cuDNN from JetPack (libcudnn9-cuda-12); on x86_64 libcudnn9-cuda-12 or `pip install nvidia-cudnn-cu12`; {OR_CPU}"),
        )
    })
}
