//! Safe wrappers over the CUDA kernels compiled for the host (tests/build.rs, cuda_host/): each
//! checks the buffer extents the kernel will touch, then launches it through the shim.

use brenier::sched::DdimCoeffs;

mod ffi {
    extern "C" {
        pub fn bh_ot_argmax(
            s: *const f32,
            h: *const f32,
            batch: i32,
            n: i32,
            block: u32,
            idx: *mut i32,
            best: *mut f32,
        );
        pub fn bh_ot_softmax_rows(
            s: *mut f32,
            h: *const f32,
            batch: i32,
            n: i32,
            tau: f32,
            block: u32,
            status: *mut i32,
        );
        pub fn bh_ot_weighted_sum(w: *const f32, y: *const u16, batch: i32, n: i32, d: i32, block: u32, out: *mut f32);
        pub fn bh_gaussian_f32(out: *mut f32, n: u64, key: u64);
        pub fn bh_ddim_step_f32(x: *mut f32, eps: *const f32, n: u64, cx: f32, ce: f32, sigma: f32, key: u64);
        pub fn bh_ddim_step_f16(x: *mut u16, eps: *const u16, n: u64, cx: f32, ce: f32, sigma: f32, key: u64);
    }
}

/// The kernels' shared arrays hold 256 values; a launch uses a power-of-two block up to that.
fn check_block(block: u32) {
    assert!(block.is_power_of_two() && block <= 256, "block {block}");
}

/// `ot_argmax` over `batch` rows of `scores` (batch×n) plus `heights` (n).
pub fn ot_argmax(scores: &[f32], heights: &[f32], batch: usize, block: u32, idx: &mut [i32], best: &mut [f32]) {
    check_block(block);
    let n = heights.len();
    assert!(scores.len() == batch * n && idx.len() == batch && best.len() == batch);
    // SAFETY: extents checked above; the kernel reads batch×n scores and n heights and writes
    // one index and score per row.
    unsafe {
        ffi::bh_ot_argmax(
            scores.as_ptr(),
            heights.as_ptr(),
            batch as i32,
            n as i32,
            block,
            idx.as_mut_ptr(),
            best.as_mut_ptr(),
        )
    }
}

/// `ot_softmax_rows`: scores (batch×n) become softmax weights in place.
pub fn ot_softmax_rows(scores: &mut [f32], heights: &[f32], batch: usize, tau: f32, block: u32, status: &mut [i32]) {
    check_block(block);
    let n = heights.len();
    assert!(scores.len() == batch * n && status.len() == batch);
    // SAFETY: extents checked above.
    unsafe {
        ffi::bh_ot_softmax_rows(
            scores.as_mut_ptr(),
            heights.as_ptr(),
            batch as i32,
            n as i32,
            tau,
            block,
            status.as_mut_ptr(),
        )
    }
}

/// `ot_weighted_sum`: out (batch×d) = weights (batch×n) · targets (n×d, f16 bits).
pub fn ot_weighted_sum(weights: &[f32], targets: &[u16], batch: usize, d: usize, block: u32, out: &mut [f32]) {
    check_block(block);
    let n = weights.len() / batch.max(1);
    assert!(weights.len() == batch * n && targets.len() == n * d && out.len() == batch * d);
    // SAFETY: extents checked above.
    unsafe {
        ffi::bh_ot_weighted_sum(
            weights.as_ptr(),
            targets.as_ptr(),
            batch as i32,
            n as i32,
            d as i32,
            block,
            out.as_mut_ptr(),
        )
    }
}

/// `gaussian_f32`: fills `out` with the noise stream `key`.
pub fn gaussian_f32(out: &mut [f32], key: u64) {
    // SAFETY: the kernel writes out.len() values.
    unsafe { ffi::bh_gaussian_f32(out.as_mut_ptr(), out.len() as u64, key) }
}

/// `ddim_step_f32`: the fused DDIM update with in-place noise from stream `key`.
pub fn ddim_step_f32(x: &mut [f32], eps: &[f32], c: DdimCoeffs, key: u64) {
    assert_eq!(x.len(), eps.len());
    // SAFETY: both buffers hold x.len() values.
    unsafe { ffi::bh_ddim_step_f32(x.as_mut_ptr(), eps.as_ptr(), x.len() as u64, c.c_x, c.c_eps, c.sigma, key) }
}

/// `ddim_step_f16`: the same with x and ε stored as f16 bits.
pub fn ddim_step_f16(x: &mut [u16], eps: &[u16], c: DdimCoeffs, key: u64) {
    assert_eq!(x.len(), eps.len());
    // SAFETY: both buffers hold x.len() values.
    unsafe { ffi::bh_ddim_step_f16(x.as_mut_ptr(), eps.as_ptr(), x.len() as u64, c.c_x, c.c_eps, c.sigma, key) }
}
