//! Every CUDA kernel compiles with NVRTC, through the backend's own compile path, for each
//! supported architecture — no GPU needed (NVRTC is a compiler library). CI installs NVRTC from
//! PyPI (scripts/cuda-libs.sh) and sets BRENIER_REQUIRE_NVRTC=1, so there a missing library fails
//! the test; elsewhere the test says why it skipped.
#![cfg(feature = "cuda")]

use brenier::backend::cuda::compile::{cached_cubin, compile_cubin, KERNELS, SUPPORTED_ARCHS};
use brenier::backend::cuda::probe::nvrtc_version;
use brenier::backend::kernel_cache::CacheOutcome;

fn nvrtc_or_skip() -> bool {
    match nvrtc_version() {
        Ok((major, minor)) => {
            eprintln!("NVRTC {major}.{minor}");
            true
        }
        Err(e) if std::env::var_os("BRENIER_REQUIRE_NVRTC").is_some() => panic!("BRENIER_REQUIRE_NVRTC is set but {e}"),
        Err(e) => {
            eprintln!("skipped: {e} (run with LD_LIBRARY_PATH=$(scripts/cuda-libs.sh))");
            false
        }
    }
}

#[test]
fn every_kernel_compiles_for_every_supported_arch() {
    if !nvrtc_or_skip() {
        return;
    }
    for arch in SUPPORTED_ARCHS {
        let cubin = compile_cubin(arch).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&cubin[..4], b"\x7fELF", "{arch}: NVRTC returned no CUBIN");
        for k in KERNELS {
            let sym = format!("{k}\0");
            assert!(cubin.windows(sym.len()).any(|w| w == sym.as_bytes()), "{arch}: kernel {k} missing from the CUBIN");
        }
    }
}

#[test]
fn a_broken_kernel_is_a_typed_error_with_the_compiler_log() {
    if !nvrtc_or_skip() {
        return;
    }
    // The architecture is validated by NVRTC itself: an unknown one fails with its log.
    let e = compile_cubin("sm_1").unwrap_err().to_string();
    assert!(e.contains("sm_1") && e.contains("NVRTC"), "{e}");
}

#[test]
fn the_disk_cache_builds_once_per_arch() {
    if !nvrtc_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a, o) = cached_cubin(dir.path(), "sm_87").unwrap();
    assert_eq!(o, CacheOutcome::Built);
    let (b, o) = cached_cubin(dir.path(), "sm_87").unwrap();
    assert_eq!((o, a == b), (CacheOutcome::Hit, true));
    assert_eq!(cached_cubin(dir.path(), "sm_72").unwrap().1, CacheOutcome::Built);
}
