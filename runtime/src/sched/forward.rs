//! The forward (noising) process q(x_t | x_0) = √ᾱ_t x_0 + √(1−ᾱ_t) z, in one place: the trainer
//! draws training pairs with it, the exporter makes forward-noised OT targets and source samples,
//! the neural map samples latents.

/// The coefficients (√ᾱ, √(1−ᾱ)) in f32, rounded once from the f64 schedule value.
pub fn forward_coefficients(alpha_bar: f64) -> (f32, f32) {
    (alpha_bar.sqrt() as f32, (1.0 - alpha_bar).sqrt() as f32)
}

/// Overwrites the noise `z` with x_t = √ᾱ x_0 + √(1−ᾱ) z (`x0` and `z` of one length).
pub fn noise_forward_into(alpha_bar: f64, x0: &[f32], z: &mut [f32]) {
    debug_assert_eq!(x0.len(), z.len());
    let (sa, sn) = forward_coefficients(alpha_bar);
    for (o, &x) in z.iter_mut().zip(x0) {
        *o = sa * x + sn * *o;
    }
}

/// x_t = √ᾱ x_0 + √(1−ᾱ) z as a new vector.
pub fn noise_forward(alpha_bar: f64, x0: &[f32], z: &[f32]) -> Vec<f32> {
    let mut out = z.to_vec();
    noise_forward_into(alpha_bar, x0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the formula in f64: ᾱ = 1 returns x₀, ᾱ = 0 returns z, and in between the f32
    /// result is within two roundings of the f64 value.
    #[test]
    fn forward_noise_matches_the_formula() {
        let (x0, z) = ([0.5f32, -1.0, 0.25], [1.5f32, 0.3, -2.0]);
        assert_eq!(noise_forward(1.0, &x0, &z), x0);
        assert_eq!(noise_forward(0.0, &x0, &z), z);
        for ab in [0.9f64, 0.0778, 1e-4] {
            let got = noise_forward(ab, &x0, &z);
            for ((g, &x), &e) in got.iter().zip(&x0).zip(&z) {
                let want = ab.sqrt() * x as f64 + (1.0 - ab).sqrt() * e as f64;
                assert!(
                    (*g as f64 - want).abs() < 4.0 * f32::EPSILON as f64 * (want.abs() + 1.0),
                    "ᾱ {ab}: {g} vs {want}"
                );
            }
        }
    }
}
