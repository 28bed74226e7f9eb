//! Quality metrics for translated and generated images: Fréchet distance between feature sets,
//! SSIM (Wang et al. 2004, 7×7 uniform window as scikit-image's default) and RMS error.

use brenier::linalg::{matmul, reconstruct, sample_moments as moments, sym_eigen};

fn sqrt_psd(m: &[f64], d: usize) -> Vec<f64> {
    let (vals, vecs) = sym_eigen(m, d);
    reconstruct(&vecs, &vals.iter().map(|v| v.max(0.0).sqrt()).collect::<Vec<_>>(), d)
}

/// Fréchet distance between Gaussians fitted to two feature sets:
/// ‖μa − μb‖² + tr(Σa + Σb − 2 (Σa^½ Σb Σa^½)^½).
pub fn frechet_distance(a: &[f32], b: &[f32], dim: usize) -> f64 {
    let (ma, ca) = moments(a, dim);
    let (mb, cb) = moments(b, dim);
    let sa = sqrt_psd(&ca, dim);
    let cross = sqrt_psd(&matmul(&matmul(&sa, &cb, dim), &sa, dim), dim);
    let dm: f64 = ma.iter().zip(&mb).map(|(x, y)| (x - y).powi(2)).sum();
    let tr: f64 = (0..dim).map(|i| ca[i * dim + i] + cb[i * dim + i] - 2.0 * cross[i * dim + i]).sum();
    (dm + tr).max(0.0)
}

/// Mean SSIM of two single-channel images (h×w) with values spanning `range` (2 for [−1, 1]).
pub fn ssim(x: &[f32], y: &[f32], h: usize, w: usize, range: f32) -> f64 {
    const WIN: usize = 7;
    let (c1, c2) = ((0.01 * range as f64).powi(2), (0.03 * range as f64).powi(2));
    let n = (WIN * WIN) as f64;
    let mut total = 0.0;
    let mut count = 0usize;
    for top in 0..=h.saturating_sub(WIN) {
        for left in 0..=w.saturating_sub(WIN) {
            let (mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for r in top..top + WIN.min(h) {
                for c in left..left + WIN.min(w) {
                    let (a, b) = (x[r * w + c] as f64, y[r * w + c] as f64);
                    sx += a;
                    sy += b;
                    sxx += a * a;
                    syy += b * b;
                    sxy += a * b;
                }
            }
            let (mx, my) = (sx / n, sy / n);
            // Sample (co)variances with the n−1 normalisation, as scikit-image uses.
            let k = n / (n - 1.0);
            let (vx, vy, cxy) = (k * (sxx / n - mx * mx), k * (syy / n - my * my), k * (sxy / n - mx * my));
            total += ((2.0 * mx * my + c1) * (2.0 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
            count += 1;
        }
    }
    total / count as f64
}

/// Root-mean-square difference.
pub fn rms(x: &[f32], y: &[f32]) -> f64 {
    (x.iter().zip(y).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use brenier::rng::NoiseStream;

    #[test]
    fn frechet_distance_closed_forms() {
        let d = 4;
        let a = NoiseStream::new(1, 0).normal(20_000 * d);
        assert!(frechet_distance(&a, &a, d) < 1e-9);
        // b = 2·z + 1 per coordinate: FD = Σ (Δμ² + (σa − σb)²) = 4·(1 + 1) = 8.
        let b: Vec<f32> = NoiseStream::new(2, 0).normal(20_000 * d).iter().map(|v| 2.0 * v + 1.0).collect();
        let fd = frechet_distance(&a, &b, d);
        assert!((fd - 8.0).abs() < 0.25, "{fd}");
    }

    #[test]
    fn ssim_identity_sign_and_constant_images() {
        let x = NoiseStream::new(3, 0).normal(28 * 28);
        assert!((ssim(&x, &x, 28, 28, 2.0) - 1.0).abs() < 1e-12);
        let other = NoiseStream::new(4, 0).normal(28 * 28);
        assert!(ssim(&x, &other, 28, 28, 2.0).abs() < 0.1, "independent images are unrelated");
        let near: Vec<f32> = x.iter().zip(&other).map(|(a, b)| a + 0.05 * b).collect();
        assert!(ssim(&x, &near, 28, 28, 2.0) > 0.95, "slightly noisy copy is similar");
        // Constant images a, b: SSIM = (2ab + C1) / (a² + b² + C1).
        let (a, b) = (0.3f32, -0.2f32);
        let c1 = (0.02f64).powi(2);
        let want = (2.0 * 0.3 * -0.2 + c1) / (0.09 + 0.04 + c1);
        let got = ssim(&[a; 64], &[b; 64], 8, 8, 2.0);
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
}
