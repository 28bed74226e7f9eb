//! Low-dimensional pairs of measures where the optimal map is known: Gaussian → Gaussian (in
//! closed form) and Gaussian → 8 Gaussians (through the exact discrete OT plan between samples).

use brenier::rng::NoiseStream;

/// A 2-D source/target pair. The source is N(0, I) in both cases.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Toy {
    /// Target N(mean, cov), cov = [[c00, c01], [c01, c11]].
    Gaussian { mean: [f32; 2], cov: [f32; 3] },
    /// Target: 8 equal Gaussians of std `std` centred on a circle of radius `radius`.
    EightGaussians { radius: f32, std: f32 },
}

impl Toy {
    pub const DIM: usize = 2;

    /// The Gaussian → Gaussian case the tests and `--toy gaussian` use.
    pub fn gaussian() -> Toy {
        Toy::Gaussian { mean: [2.0, -1.0], cov: [2.0, 0.8, 0.7] }
    }

    /// The Gaussian → 8 Gaussians case (G8G in the DIOTM paper).
    pub fn eight_gaussians() -> Toy {
        Toy::EightGaussians { radius: 4.0, std: 0.3 }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Toy::Gaussian { .. } => "gaussian",
            Toy::EightGaussians { .. } => "8gaussians",
        }
    }

    pub fn parse(s: &str) -> Option<Toy> {
        match s {
            "gaussian" => Some(Toy::gaussian()),
            "8gaussians" | "g8g" => Some(Toy::eight_gaussians()),
            _ => None,
        }
    }

    /// `n` source points, `[n, 2]`, from counter-based stream `stream` of `seed`.
    pub fn source(&self, n: usize, seed: u64, stream: u64) -> Vec<f32> {
        NoiseStream::new(seed, stream).normal(n * Self::DIM)
    }

    /// `n` target points, `[n, 2]`.
    pub fn target(&self, n: usize, seed: u64, stream: u64) -> Vec<f32> {
        let z = NoiseStream::new(seed, stream).normal(n * Self::DIM);
        match *self {
            Toy::Gaussian { .. } => {
                let mut out = vec![0.0; n * 2];
                for (o, z) in out.chunks_exact_mut(2).zip(z.chunks_exact(2)) {
                    o.copy_from_slice(&self.closed_form_map([z[0], z[1]]).unwrap_or([0.0; 2]));
                }
                out
            }
            Toy::EightGaussians { radius, std } => {
                let pick = NoiseStream::new(seed, stream ^ 0x8_6a55);
                z.chunks_exact(2)
                    .enumerate()
                    .flat_map(|(i, z)| {
                        let k = pick.index(i as u64, 8) as f32;
                        let a = k * std::f32::consts::FRAC_PI_4;
                        [radius * a.cos() + std * z[0], radius * a.sin() + std * z[1]]
                    })
                    .collect()
            }
        }
    }

    /// The optimal map where it has a closed form: for N(0, I) → N(m, Σ), T(x) = m + Σ^{1/2} x.
    pub fn closed_form_map(&self, x: [f32; 2]) -> Option<[f32; 2]> {
        match *self {
            Toy::Gaussian { mean, cov } => {
                let [a, b, d] = sqrt_spd2(cov);
                Some([mean[0] + a * x[0] + b * x[1], mean[1] + b * x[0] + d * x[1]])
            }
            Toy::EightGaussians { .. } => None,
        }
    }
}

/// The square root of a 2×2 symmetric positive definite matrix [[a, b], [b, d]]:
/// √M = (M + s·I) / t with s = √det M, t = √(tr M + 2s).
pub fn sqrt_spd2([a, b, d]: [f32; 3]) -> [f32; 3] {
    let s = (a * d - b * b).max(0.0).sqrt();
    let t = (a + d + 2.0 * s).sqrt();
    [(a + s) / t, b / t, (d + s) / t]
}
