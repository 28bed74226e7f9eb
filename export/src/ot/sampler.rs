//! The source measures the height solver samples: a domain's images noised forward to T
//! (q(x_T | x_0) = √ᾱ_T x_0 + √(1−ᾱ_T) z: samples of the domain's marginal at T, unlimited and
//! free of network evaluations) and N(0, I) (generation). Every sample is a pure function of
//! (seed, stream, block), so a fit set can be regenerated row for row instead of stored, and a
//! shard of the work is a plain function of the heights and a range of blocks.

use brenier::rng::NoiseStream;
use brenier::sched::noise_forward_into;

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
    /// Fills `out` with the rows `rows` of that block alone (the values `fill` writes there):
    /// what a refresh of a few samples regenerates. By default the whole block is drawn.
    fn fill_rows(&self, stream: u64, block: u64, draw: Draw, rows: &[usize], out: &mut [f32]) {
        let d = self.dim();
        let mut buf = vec![0f32; BLOCK * d];
        self.fill(stream, block, draw, &mut buf);
        for (o, &r) in out.chunks_mut(d).zip(rows) {
            o.copy_from_slice(&buf[r * d..(r + 1) * d]);
        }
    }
    /// What the samples are, for reports.
    fn describe(&self) -> String;
}

/// Row `r`'s standard normal noise (D values): antithetic pairs when balanced (rows 2j and 2j+1
/// take z and −z). Each row is drawn from its own place in the stream, so a row can be
/// regenerated alone.
fn noise_row(z: &NoiseStream, r: usize, d: usize, draw: Draw, out: &mut [f32]) {
    match draw {
        Draw::Independent => z.fill_normal_from((r * d) as u64, out),
        Draw::Balanced => {
            z.fill_normal_from(((r / 2) * d) as u64, out);
            if r % 2 == 1 {
                out.iter_mut().for_each(|v| *v = -*v);
            }
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

impl ForwardNoise<'_> {
    /// Row `r` of `block`: its image (in turn when balanced, drawn when independent) noised with
    /// the row's own noise.
    fn row(&self, z: &NoiseStream, offset: usize, block: u64, draw: Draw, r: usize, out: &mut [f32]) {
        let d = self.d;
        let n0 = (self.images.len() / d).max(1);
        let i = match draw {
            Draw::Balanced => (offset + (block as usize * BLOCK + r) / 2) % n0,
            Draw::Independent => z.index((1 << 40) + r as u64, n0),
        };
        noise_row(z, r, d, draw, out);
        noise_forward_into(self.alpha_bar, &self.images[i * d..(i + 1) * d], out);
    }
}

impl Sampler for ForwardNoise<'_> {
    fn dim(&self) -> usize {
        self.d
    }

    fn fill(&self, stream: u64, block: u64, draw: Draw, out: &mut [f32]) {
        let (z, offset) = (stream_of(self.seed, stream, block), self.offset(stream));
        for (r, row) in out.chunks_mut(self.d).enumerate() {
            self.row(&z, offset, block, draw, r, row);
        }
    }

    fn fill_rows(&self, stream: u64, block: u64, draw: Draw, rows: &[usize], out: &mut [f32]) {
        let (z, offset) = (stream_of(self.seed, stream, block), self.offset(stream));
        for (row, &r) in out.chunks_mut(self.d).zip(rows) {
            self.row(&z, offset, block, draw, r, row);
        }
    }

    fn describe(&self) -> String {
        format!("{} images noised forward to ᾱ = {:.4}", self.images.len() / self.d.max(1), self.alpha_bar)
    }
}

impl ForwardNoise<'_> {
    /// Where a stream's balanced rows start in the image list (seeded per stream).
    fn offset(&self, stream: u64) -> usize {
        NoiseStream::new(self.seed, stream).index(0, (self.images.len() / self.d).max(1))
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
        let z = stream_of(self.seed, stream, block);
        for (r, row) in out.chunks_mut(self.d).enumerate() {
            noise_row(&z, r, self.d, draw, row);
        }
    }

    fn fill_rows(&self, stream: u64, block: u64, draw: Draw, rows: &[usize], out: &mut [f32]) {
        let z = stream_of(self.seed, stream, block);
        for (row, &r) in out.chunks_mut(self.d).zip(rows) {
            noise_row(&z, r, self.d, draw, row);
        }
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

    /// A refresh regenerates a few rows alone: they must be the rows the whole block holds, for
    /// both measures and both draws, at an odd D (rows that start mid-pair in the stream).
    #[test]
    fn rows_drawn_alone_equal_the_block_rows() {
        let d = 5;
        let images: Vec<f32> = (0..7 * d).map(|v| (v as f32 / 35.0) - 0.5).collect();
        let forward = ForwardNoise { images: &images, d, alpha_bar: 0.3, seed: 11 };
        let gauss = Gaussian { d, seed: 4 };
        let rows = [0usize, 1, 2, 7, 500, 1023];
        for s in [&forward as &dyn Sampler, &gauss] {
            for draw in [Draw::Balanced, Draw::Independent] {
                let mut block = vec![0f32; BLOCK * d];
                s.fill(2, 9, draw, &mut block);
                let mut some = vec![0f32; rows.len() * d];
                s.fill_rows(2, 9, draw, &rows, &mut some);
                for (j, &r) in rows.iter().enumerate() {
                    assert_eq!(
                        some[j * d..(j + 1) * d],
                        block[r * d..(r + 1) * d],
                        "{} {draw:?} row {r}",
                        s.describe()
                    );
                }
            }
        }
    }
}
