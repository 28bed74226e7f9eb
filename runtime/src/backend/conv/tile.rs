//! The register-tiled multiply-add loop brenier's convolutions run: `direct.rs` (3×3 on padded
//! planes), `pointwise.rs` (1×1 on the image itself) and `winograd.rs` (its 16 products, one
//! tap over the transformed inputs).
//!
//! A tile holds `R` vectors of consecutive output positions for [`KB`] output channels. For each
//! input channel and tap it loads `R` vectors from that channel's plane at the tap's offset,
//! broadcasts the 4 channels' weights, and does `4R` fused multiply-adds. Weights are laid out
//! `[C][T][4]` per block of 4 output channels, so the broadcasts walk memory in order.

// Elsewhere than x86_64 the only `Isa` is the baseline, which none of the three runs here, so
// nothing calls in here there.
#![cfg_attr(not(target_arch = "x86_64"), allow(unused))]

use super::isa::Isa;

/// Output channels per register tile.
pub(super) const KB: usize = 4;

/// One run of output positions for one block of [`KB`] output channels.
#[derive(Clone, Copy)]
pub(super) struct Run<'a, const T: usize> {
    /// The first input channel's plane at the run's first position; channel `ci`'s is
    /// `plane` floats further on.
    pub x: *const f32,
    pub plane: usize,
    pub channels: usize,
    /// Where each tap reads, in floats past the output position.
    pub taps: &'a [usize; T],
    /// The block's weights, `[channels][T][KB]`.
    pub w: *const f32,
    /// What each channel's sums start from (its bias, or zero).
    pub init: [f32; KB],
    /// Channel `kk`'s first output, `kk · out_stride` floats past `out`.
    pub out: *mut f32,
    pub out_stride: usize,
    /// Whole vectors of positions in the run.
    pub vectors: usize,
}

/// Every vector of `run`, in `isa`'s build of the loop.
///
/// # Safety
/// `isa` is one this CPU runs (`Isa::runnable`) and not the baseline; every tap of every vector
/// lies inside its plane, and every store inside the output.
pub(super) unsafe fn run<const T: usize>(isa: Isa, run: &Run<T>) {
    match isa {
        // Safety: the caller's promise, above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { avx512::run(run) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { avx2::run(run) },
        Isa::Baseline => unreachable!("no caller runs this loop on an instruction set without FMA"),
    }
}

/// One build of the loop per instruction set: the same code over that set's vector type and
/// intrinsics. `$rmax` vectors per tile fill the register file: on AVX-512, 4·6 accumulators
/// + 6 loaded vectors + 1 broadcast = 31 of 32 registers; on AVX2, 4·3 + 3 + 1 = 16 of 16.
macro_rules! isa_run {
    ($name:ident, $feature:literal, $lanes:expr, $rmax:expr, $v:ty, $load:ident, $splat:ident, $fma:ident, $store:ident) => {
        #[cfg(target_arch = "x86_64")]
        mod $name {
            use std::arch::x86_64::*;

            use super::{Run, KB};

            const LANES: usize = $lanes;

            /// Every vector of `run`.
            ///
            /// # Safety
            /// The CPU runs the set; every tap of every vector lies inside its plane, and every
            /// store inside the output.
            #[target_feature(enable = $feature)]
            pub unsafe fn run<const T: usize>(run: &Run<T>) {
                let mut v = 0;
                while v < run.vectors {
                    // Never more than $rmax: the arms past it are compiled, never taken (AVX2).
                    let r = (run.vectors - v).min($rmax);
                    let p = v * LANES;
                    // Safety: the caller's bounds (above).
                    unsafe {
                        match r {
                            1 => tile::<1, T>(run, p),
                            2 => tile::<2, T>(run, p),
                            3 => tile::<3, T>(run, p),
                            4 => tile::<4, T>(run, p),
                            5 => tile::<5, T>(run, p),
                            _ => tile::<6, T>(run, p),
                        }
                    }
                    v += r;
                }
            }

            #[target_feature(enable = $feature)]
            unsafe fn tile<const R: usize, const T: usize>(run: &Run<T>, p: usize) {
                let mut acc: [[$v; R]; KB] = std::array::from_fn(|kk| [$splat(run.init[kk]); R]);
                for ci in 0..run.channels {
                    for (t, &tap) in run.taps.iter().enumerate() {
                        // Safety: the caller keeps every tap inside its plane.
                        let src = unsafe { run.x.add(ci * run.plane + p + tap) };
                        let xs: [$v; R] = std::array::from_fn(|r| unsafe { $load(src.add(r * LANES)) });
                        for (kk, acc) in acc.iter_mut().enumerate() {
                            let wv = $splat(unsafe { *run.w.add((ci * T + t) * KB + kk) });
                            for r in 0..R {
                                acc[r] = $fma(wv, xs[r], acc[r]);
                            }
                        }
                    }
                }
                for (kk, acc) in acc.iter().enumerate() {
                    for (r, &a) in acc.iter().enumerate() {
                        unsafe { $store(run.out.add(kk * run.out_stride + p + r * LANES), a) };
                    }
                }
            }
        }
    };
}

isa_run!(avx512, "avx512f", 16, 6, __m512, _mm512_loadu_ps, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps);
isa_run!(avx2, "avx2,fma", 8, 3, __m256, _mm256_loadu_ps, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps);
