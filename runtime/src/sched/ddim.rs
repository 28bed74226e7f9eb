//! The DDIM step (Song et al.), written as an affine update so backends only need one fused
//! elementwise kernel: x_s = c_x·x_t + c_ε·ε + σ·z.
//!
//! With x̂0 = (x_t − √(1−ᾱ_t) ε)/√ᾱ_t: x_s = √ᾱ_s x̂0 + √(1−ᾱ_s−σ²) ε + σ z, and
//! σ = η √((1−ᾱ_s)/(1−ᾱ_t)) √(1−ᾱ_t/ᾱ_s); σ = 0 when encoding (s > t).

use super::schedule::Schedule;

/// Coefficients of one DDIM step, computed in f64 and applied in f32.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DdimCoeffs {
    pub c_x: f32,
    pub c_eps: f32,
    pub sigma: f32,
}

impl DdimCoeffs {
    /// The step from train index `t` to `s` (either may be −1, clean data).
    pub fn new(schedule: &Schedule, t: i64, s: i64, eta: f64) -> DdimCoeffs {
        let (ab_t, ab_s) = (schedule.alpha_bar(t), schedule.alpha_bar(s));
        let sigma = if s < t && eta > 0.0 && ab_t < 1.0 {
            eta * ((1.0 - ab_s) / (1.0 - ab_t)).sqrt() * (1.0 - ab_t / ab_s).max(0.0).sqrt()
        } else {
            0.0
        };
        let dir = (1.0 - ab_s - sigma * sigma).max(0.0).sqrt();
        let c_x = (ab_s / ab_t).sqrt();
        let c_eps = dir - (ab_s * (1.0 - ab_t) / ab_t).sqrt();
        DdimCoeffs { c_x: c_x as f32, c_eps: c_eps as f32, sigma: sigma as f32 }
    }
}

/// CPU reference of the fused update: `x ← c_x·x + c_ε·ε + σ·z` (z only when σ > 0).
pub fn ddim_update(x: &mut [f32], eps: &[f32], noise: Option<&[f32]>, c: DdimCoeffs) {
    debug_assert_eq!(x.len(), eps.len());
    match noise {
        Some(z) if c.sigma > 0.0 => {
            for ((x, &e), &z) in x.iter_mut().zip(eps).zip(z) {
                *x = c.c_x * *x + c.c_eps * e + c.sigma * z;
            }
        }
        _ => {
            for (x, &e) in x.iter_mut().zip(eps) {
                *x = c.c_x * *x + c.c_eps * e;
            }
        }
    }
}
