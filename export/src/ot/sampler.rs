//! The source measures the height solver samples: a domain's images noised forward to T
//! (q(x_T | x_0) = √ᾱ_T x_0 + √(1−ᾱ_T) z: samples of the domain's marginal at T, unlimited and
//! free of network evaluations) and N(0, I) (generation). Every sample is a pure function of
//! (seed, stream, block), so a fit set can be regenerated row for row instead of stored, and a
//! shard of the work is a plain function of the heights and a range of blocks.

use brenier::rng::NoiseStream;

/// Samples per block: the unit the solver generates, scores and regenerates.
pub const BLOCK: usize = 1024;

/// How samples are drawn. `Balanced` lowers the variance of the cell masses a set of samples
/// estimates (the fit set's): antithetic pairs — rows 2j and 2j+1 share their x₀ and use z and
/// −z — and, for image measures, every image taken in turn. `Independent` draws are what the
/// certificate's noise correction assumes (multinomial counts): held-out samples use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Draw {
    Balanced,
    Independent,
}

/// A source measure μ on ℝᴰ.
pub trait Sampler: Sync {
    fn dim(&self) -> usize;
    /// Fills `out` (a whole number of rows of D values, at most [`BLOCK`]) with samples of μ:
    /// rows `block·BLOCK ..` of `stream`. The same arguments always give the same values.
    fn fill(&self, stream: u64, block: u64, draw: Draw, out: &mut [f32]);
    /// What the samples are, for reports.
    fn describe(&self) -> String;
}

/// Standard normal noise for `rows` rows: antithetic pairs when balanced.
fn noise(z: &NoiseStream, rows: usize, d: usize, draw: Draw) -> Vec<f32> {
    match draw {
        Draw::Independent => z.normal(rows * d),
        Draw::Balanced => {
            let half = z.normal(rows.div_ceil(2) * d);
            (0..rows)
                .flat_map(|r| half[(r / 2) * d..(r / 2 + 1) * d].iter().map(move |&v| if r % 2 == 0 { v } else { -v }))
                .collect()
        }
    }
}

fn stream_of(seed: u64, stream: u64, block: u64) -> NoiseStream {
    NoiseStream::new(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15), block)
}

/// A domain's images (N₀×D, model space) noised forward to ᾱ. Balanced rows take the images in
/// turn (each once per N₀ consecutive pairs, from a seeded offset per stream), which removes the
/// variance of drawing images at random; independent rows draw an image uniformly.
pub struct ForwardNoise<'a> {
    pub images: &'a [f32],
    pub d: usize,
    pub alpha_bar: f64,
    pub seed: u64,
}

impl Sampler for ForwardNoise<'_> {
    fn dim(&self) -> usize {
        self.d
    }

    fn fill(&self, stream: u64, block: u64, draw: Draw, out: &mut [f32]) {
        let d = self.d;
        let n0 = (self.images.len() / d).max(1);
        let rows = out.len() / d;
        let z = stream_of(self.seed, stream, block);
        let noise = noise(&z, rows, d, draw);
        let offset = NoiseStream::new(self.seed, stream).index(0, n0);
        let (sa, sn) = (self.alpha_bar.sqrt() as f32, (1.0 - self.alpha_bar).sqrt() as f32);
        for (r, row) in out.chunks_mut(d).enumerate() {
            let i = match draw {
                Draw::Balanced => (offset + (block as usize * BLOCK + r) / 2) % n0,
                Draw::Independent => z.index((1 << 40) + r as u64, n0),
            };
            let x0 = &self.images[i * d..(i + 1) * d];
            for ((o, &x), &e) in row.iter_mut().zip(x0).zip(&noise[r * d..(r + 1) * d]) {
                *o = sa * x + sn * e;
            }
        }
    }

    fn describe(&self) -> String {
        format!("{} images noised forward to ᾱ = {:.4}", self.images.len() / self.d.max(1), self.alpha_bar)
    }
}

/// N(0, I) in D dimensions.
pub struct Gaussian {
    pub d: usize,
    pub seed: u64,
}

impl Sampler for Gaussian {
    fn dim(&self) -> usize {
        self.d
    }

    fn fill(&self, stream: u64, block: u64, draw: Draw, out: &mut [f32]) {
        let rows = out.len() / self.d;
        out.copy_from_slice(&noise(&stream_of(self.seed, stream, block), rows, self.d, draw));
    }

    fn describe(&self) -> String {
        format!("N(0, I) in {} dimensions", self.d)
    }
}

/// Any function of (stream, block, out) as a sampler, drawing independently either way: tests
/// and oracle measures.
pub struct FnSampler<F: Fn(u64, u64, &mut [f32]) + Sync> {
    pub d: usize,
    pub f: F,
    pub what: String,
}

impl<F: Fn(u64, u64, &mut [f32]) + Sync> Sampler for FnSampler<F> {
    fn dim(&self) -> usize {
        self.d
    }
    fn fill(&self, stream: u64, block: u64, _: Draw, out: &mut [f32]) {
        (self.f)(stream, block, out)
    }
    fn describe(&self) -> String {
        self.what.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_a_function_of_stream_and_block_in_antithetic_pairs() {
        let images: Vec<f32> = (0..3 * 4).map(|v| v as f32 / 12.0).collect();
        let s = ForwardNoise { images: &images, d: 4, alpha_bar: 0.25, seed: 7 };
        let (mut a, mut b, mut c) = (vec![0f32; 8 * 4], vec![0f32; 8 * 4], vec![0f32; 8 * 4]);
        s.fill(0, 3, Draw::Balanced, &mut a);
        s.fill(0, 3, Draw::Balanced, &mut b);
        s.fill(1, 3, Draw::Balanced, &mut c);
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Rows 0 and 1 share x₀ and use ±z: their mean is √ᾱ·x₀.
        for k in 0..4 {
            let mean = (a[k] + a[4 + k]) / 2.0;
            let x0 = (mean / 0.5 * 12.0).round();
            assert!((mean - 0.5 * x0 / 12.0).abs() < 1e-6, "{mean}");
        }
        let g = Gaussian { d: 4, seed: 1 };
        g.fill(0, 0, Draw::Balanced, &mut a);
        assert!(a[..4].iter().zip(&a[4..8]).all(|(x, y)| *x == -*y));
        g.fill(0, 0, Draw::Independent, &mut a);
        assert!(a[..4].iter().zip(&a[4..8]).all(|(x, y)| *x != -*y));
    }
}
