//! The kernels (kernels.cu) compiled by NVRTC to a CUBIN for one `sm_XY`, through the on-disk
//! cache (backend::kernel_cache). NVRTC needs no GPU, so CI compiles every kernel for each
//! supported architecture through exactly this path (tests/nvrtc_compile.rs).

use std::ffi::{CStr, CString};
use std::path::Path;

use cudarc::nvrtc::{result as nvrtc, sys};

use super::probe::nvrtc_version;
use crate::backend::kernel_cache::{entry_path, load_or_build, CacheOutcome};
use crate::error::{Error, Result};

/// The kernel source, shared verbatim with the host test harness.
pub const SOURCE: &str = include_str!("kernels.cu");

/// Every `extern "C" __global__` entry point of [`SOURCE`]; the backend loads each by name.
pub const KERNELS: &[&str] =
    &["ot_argmax", "ot_softmax_rows", "ot_weighted_sum", "gaussian_f32", "ddim_step_f32", "ddim_step_f16"];

/// Architectures the project ships for: Xavier (sm_72), Orin (sm_87), Hopper (sm_90, the x86
/// CUDA profile's reference GPU).
pub const SUPPORTED_ARCHS: &[&str] = &["sm_72", "sm_87", "sm_90"];

/// Threads per block of every launch; the kernels' shared arrays are sized for it.
pub const BLOCK: u32 = 256;

/// Compiles [`SOURCE`] for `arch` (e.g. `sm_87`) to a CUBIN, with no cache.
pub fn compile_cubin(arch: &str) -> Result<Vec<u8>> {
    nvrtc_version()?;
    let fail = |log: String| Error::KernelCompile { arch: arch.into(), log };
    let src = CString::new(SOURCE).map_err(|_| fail("the source contains a NUL byte".into()))?;
    let name = CString::new("brenier_kernels.cu").expect("literal has no NUL");
    let prog = nvrtc::create_program(&src, Some(&name)).map_err(|e| fail(format!("{e:?}")))?;
    let options = [format!("--gpu-architecture={arch}"), "--std=c++17".into(), format!("-DBRENIER_BLOCK={BLOCK}")];
    // SAFETY: prog is a live program; it is destroyed on every path below.
    let result = unsafe {
        match nvrtc::compile_program(prog, &options) {
            Ok(()) => cubin(prog).map_err(|e| fail(format!("reading the CUBIN: {e:?}"))),
            Err(e) => {
                let log = nvrtc::get_program_log(prog)
                    .map(|l| CStr::from_ptr(l.as_ptr()).to_string_lossy().into_owned())
                    .unwrap_or_default();
                Err(fail(format!("{e:?}\n{log}")))
            }
        }
    };
    // SAFETY: prog came from create_program and is not used after this.
    let _ = unsafe { nvrtc::destroy_program(prog) };
    result
}

/// # Safety
/// `prog` must be a successfully compiled program.
unsafe fn cubin(prog: sys::nvrtcProgram) -> std::result::Result<Vec<u8>, sys::nvrtcResult> {
    let mut size = 0usize;
    let rc = sys::nvrtcGetCUBINSize(prog, &mut size);
    if rc != sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(rc);
    }
    let mut buf = vec![0u8; size];
    let rc = sys::nvrtcGetCUBIN(prog, buf.as_mut_ptr().cast());
    if rc != sys::nvrtcResult::NVRTC_SUCCESS || size == 0 {
        return Err(rc);
    }
    Ok(buf)
}

/// The CUBIN for `arch`, from the cache in `dir` when a valid entry exists.
pub fn cached_cubin(dir: &Path, arch: &str) -> Result<(Vec<u8>, CacheOutcome)> {
    let (major, minor) = nvrtc_version()?;
    let path = entry_path(dir, SOURCE, arch, &format!("nvrtc-{major}.{minor}"));
    let (bin, outcome) = load_or_build(&path, || compile_cubin(arch))?;
    log::info!("CUDA kernels for {arch}: {outcome:?} ({})", path.display());
    Ok((bin, outcome))
}
