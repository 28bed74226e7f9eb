//! A 1×1 convolution (a UNet block's skip projection), run straight off the image: with one tap
//! and no padding, channel `c`'s map is already the plane `tile.rs`'s loop reads, so nothing is
//! copied or packed, and the outputs go straight to their place with the bias as the sums' start.
//!
//! Why not tract's: tract turns a 1×1 convolution into a matrix product whose activation operand
//! it packs on every run, and splits one fed by a skip concatenation into a product per
//! concatenated input, each behind a copying slice; on the demo UNet and the 64×64 ADM UNet its
//! 1×1 convolutions took 2.7× and 2.0× onnxruntime's time (`git show
//! 61d39df:benches/results/op-profile.json`).
//!
//! The positions are cut into chunks small enough that a chunk of every input channel stays in
//! the core's L2 cache while each block of 4 output channels sweeps it. The last positions that
//! do not fill a vector are copied, per chunk, into a zero-padded scratch and run as one vector.
//!
//! Built for AVX-512 and for AVX2 + FMA; a CPU with neither keeps tract's product
//! (`PointwiseFilter::new` returns `None`).

#![cfg_attr(not(target_arch = "x86_64"), allow(unused))]

use super::isa::Isa;
use super::split::Split;
use super::tile::{self, Run, KB};
use super::winograd::{Geometry, SharedOut};

/// Bytes of input (every channel's share of a chunk of positions) a chunk aims to keep in L2.
/// A quarter of the smallest L2 of the x86_64 cores this targets (1 MiB per core on current
/// EPYC and Xeon; 1.25–2 MiB on newer ones), leaving room for the weights and outputs.
const CHUNK_BYTES: usize = 256 << 10;

/// The weights of one 1×1 convolution, laid out for the register-tiled loop.
#[derive(Clone, Debug)]
pub struct PointwiseFilter {
    /// `h × w` maps in and out, no padding.
    pub geo: Geometry,
    /// `[⌈K/4⌉][C][4]`, the channels past K zero.
    w: Vec<f32>,
    /// AVX2 or AVX-512: `new` refuses the baseline.
    isa: Isa,
    /// The set's f32 lanes.
    lanes: usize,
}

impl PartialEq for PointwiseFilter {
    fn eq(&self, other: &PointwiseFilter) -> bool {
        self.geo == other.geo && self.w.iter().map(|x| x.to_bits()).eq(other.w.iter().map(|x| x.to_bits()))
    }
}

impl Eq for PointwiseFilter {}

/// How one image's positions are cut: whole vectors in chunks, then a partial one.
#[derive(Clone, Copy, Debug)]
struct Chunks {
    /// Positions per image, `h · w`.
    positions: usize,
    /// Whole vectors of positions per image.
    vectors: usize,
    /// Whole vectors per chunk.
    per_chunk: usize,
    /// Chunks per image (at least one: an image of fewer positions than a vector is all tail).
    count: usize,
    /// Positions past the last whole vector, run in the last chunk.
    tail: usize,
}

impl PointwiseFilter {
    /// `weights` in OIHW order (`[k][c][1][1]`), for `geo` with no padding and maps that keep
    /// their size; `None` on a CPU without AVX2 and FMA.
    pub fn new(geo: Geometry, weights: &[f32]) -> Option<PointwiseFilter> {
        PointwiseFilter::with_isa(geo, weights, Isa::native())
    }

    /// `None` for an instruction set without FMA (the baseline).
    fn with_isa(geo: Geometry, weights: &[f32], isa: Isa) -> Option<PointwiseFilter> {
        let lanes = isa.fma_lanes()?;
        let (k, c) = (geo.k, geo.c);
        assert_eq!(weights.len(), k * c, "OIHW 1×1 weights");
        assert!(
            geo.pad_top == 0 && geo.pad_left == 0 && geo.out_h == geo.h && geo.out_w == geo.w,
            "a 1×1 convolution without padding: {geo:?}"
        );
        let mut w = vec![0f32; k.div_ceil(KB) * c * KB];
        for kk in 0..k {
            for ci in 0..c {
                w[(kk / KB * c + ci) * KB + kk % KB] = weights[kk * c + ci];
            }
        }
        Some(PointwiseFilter { geo, w, isa, lanes })
    }

    fn chunks(&self) -> Chunks {
        let positions = self.geo.h * self.geo.w;
        let vectors = positions / self.lanes;
        let per_chunk = (CHUNK_BYTES / (self.geo.c * self.lanes * std::mem::size_of::<f32>())).max(1);
        Chunks {
            positions,
            vectors,
            per_chunk,
            count: vectors.div_ceil(per_chunk).max(1),
            tail: positions % self.lanes,
        }
    }

    /// Multiply-adds per image, the channels past K and the tail's padding included.
    pub fn fma_per_image(&self) -> usize {
        let ch = self.chunks();
        self.geo.c * self.geo.k.div_ceil(KB) * KB * (ch.vectors + usize::from(ch.tail > 0)) * self.lanes
    }

    /// Bytes one thread's scratch holds: a block's lines for a chunk (when K is not a multiple
    /// of 4) and the tail's padded input and lines.
    pub fn scratch_bytes(&self) -> usize {
        let ch = self.chunks();
        (KB * ch.per_chunk * self.lanes + (self.geo.c + KB) * self.lanes) * std::mem::size_of::<f32>()
    }

    /// Convolves `n` images `x` into `y`, adding `bias` (one per output channel), splitting the
    /// (image, chunk) pieces out as `split` says.
    pub fn run(&self, x: &[f32], n: usize, bias: &[f32], y: &mut [f32], split: Split) {
        let g = self.geo;
        let ch = self.chunks();
        assert_eq!(bias.len(), g.k, "one bias per output channel");
        assert_eq!(x.len(), n * g.c * ch.positions, "input of {n} images");
        assert_eq!(y.len(), n * g.k * ch.positions, "output of {n} images");
        let out = SharedOut::new(y);
        let blocks = g.k.div_ceil(KB);
        let ways = self.ways(n, split.threads());
        let per = blocks.div_ceil(ways);
        let run_piece = |piece: usize| {
            let (at, way) = (piece / ways, piece % ways);
            let kbs = (way * per).min(blocks)..((way + 1) * per).min(blocks);
            SCRATCH.with_borrow_mut(|s| self.run_chunk(x, bias, &out, at / ch.count, at % ch.count, kbs, ch, s));
        };
        let pieces = n * ch.count * ways;
        split.for_each(pieces, &run_piece);
    }

    /// The runs of 4-channel blocks each (image, chunk) of `n` images splits into on `threads`
    /// threads: enough that one image of a small map (one chunk) still gives every thread a share.
    fn ways(&self, n: usize, threads: usize) -> usize {
        threads.div_ceil(n * self.chunks().count).min(self.geo.k.div_ceil(KB)).max(1)
    }

    /// Output channel blocks `kbs` of image `img` over chunk `chunk`'s positions.
    #[allow(clippy::too_many_arguments)]
    fn run_chunk(
        &self,
        x: &[f32],
        bias: &[f32],
        out: &SharedOut,
        img: usize,
        chunk: usize,
        kbs: std::ops::Range<usize>,
        ch: Chunks,
        s: &mut Vec<f32>,
    ) {
        let g = self.geo;
        let (p, lanes) = (ch.positions, self.lanes);
        let v0 = chunk * ch.per_chunk;
        let vectors = ch.per_chunk.min(ch.vectors - v0.min(ch.vectors));
        let tail = if chunk + 1 == ch.count { ch.tail } else { 0 };
        let image = &x[img * g.c * p..][..g.c * p];
        s.resize(KB * ch.per_chunk * lanes + (g.c + KB) * lanes, 0.0);
        let (lines, rest) = s.split_at_mut(KB * ch.per_chunk * lanes);
        let (tail_x, tail_lines) = rest.split_at_mut(g.c * lanes);
        if tail > 0 {
            // The last positions of every channel, zero-padded to one vector.
            let from = ch.vectors * lanes;
            for (plane, map) in tail_x.chunks_exact_mut(lanes).zip(image.chunks_exact(p)) {
                plane[..tail].copy_from_slice(&map[from..]);
                plane[tail..].fill(0.0);
            }
        }
        let taps = [0usize];
        for kb in kbs {
            let valid = KB.min(g.k - kb * KB);
            let init: [f32; KB] = std::array::from_fn(|kk| if kk < valid { bias[kb * KB + kk] } else { 0.0 });
            let w = self.w[kb * g.c * KB..][..g.c * KB].as_ptr();
            // Channel `kb·4 + kk`'s row of this image starts at `row(kk)` in the output.
            let row = |kk: usize| (img * g.k + kb * KB + kk) * p;
            if vectors > 0 {
                let run = |out: *mut f32, out_stride: usize| Run {
                    x: image[v0 * lanes..].as_ptr(),
                    plane: p,
                    channels: g.c,
                    taps: &taps,
                    w,
                    init,
                    out,
                    out_stride,
                    vectors,
                };
                let len = vectors * lanes;
                if valid == KB {
                    // Straight into the output: 4 rows `p` apart, `len` values each. The last
                    // row's range is checked; the others lie between it and the first.
                    out.row(row(KB - 1) + v0 * lanes, len);
                    // Safety: this CPU runs the set (`with_isa`); the last vector's loads end at
                    // `(v0 + vectors)·lanes ≤ p` within each plane; the stores lie in this
                    // piece's (image, chunk, channel block) share of 4 rows, checked above and
                    // written by no other piece.
                    unsafe { tile::run(self.isa, &run(out.row(row(0) + v0 * lanes, len), p)) };
                } else {
                    // Safety: as above, the stores going to `lines`, 4 lines of `len`.
                    unsafe { tile::run(self.isa, &run(lines.as_mut_ptr(), len)) };
                    for kk in 0..valid {
                        // Safety: row `kk`'s share of this piece, no other live slice.
                        let dst = unsafe { std::slice::from_raw_parts_mut(out.row(row(kk) + v0 * lanes, len), len) };
                        dst.copy_from_slice(&lines[kk * len..][..len]);
                    }
                }
            }
            if tail > 0 {
                let run = Run {
                    x: tail_x.as_ptr(),
                    plane: lanes,
                    channels: g.c,
                    taps: &taps,
                    w,
                    init,
                    out: tail_lines.as_mut_ptr(),
                    out_stride: lanes,
                    vectors: 1,
                };
                // Safety: this CPU runs the set; one vector per padded plane of `lanes`, and
                // 4 lines of `lanes` out.
                unsafe { tile::run(self.isa, &run) };
                for kk in 0..valid {
                    let at = row(kk) + ch.vectors * lanes;
                    // Safety: row `kk`'s last positions, this piece's alone.
                    let dst = unsafe { std::slice::from_raw_parts_mut(out.row(at, tail), tail) };
                    dst.copy_from_slice(&tail_lines[kk * lanes..][..tail]);
                }
            }
        }
    }
}

thread_local! {
    /// Each thread's lines and tail, kept between calls.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::conv::split::each_split;
    use crate::rng::NoiseStream;

    fn geo(c: usize, k: usize, h: usize, w: usize) -> Geometry {
        Geometry { c, k, h, w, pad_top: 0, pad_left: 0, out_h: h, out_w: w }
    }

    /// The textbook sum in f64.
    fn reference(g: &Geometry, x: &[f32], n: usize, w: &[f32], bias: &[f32]) -> Vec<f64> {
        let p = g.h * g.w;
        let mut y = vec![0f64; n * g.k * p];
        for img in 0..n {
            for k in 0..g.k {
                for at in 0..p {
                    let sum: f64 = (0..g.c).map(|c| x[(img * g.c + c) * p + at] as f64 * w[k * g.c + c] as f64).sum();
                    y[(img * g.k + k) * p + at] = bias[k] as f64 + sum;
                }
            }
        }
        y
    }

    fn check(g: Geometry, n: usize, split: Split) {
        let seed = g.c as u64 * 13 + g.h as u64 * 7 + g.w as u64;
        let x = NoiseStream::new(seed, 0).normal(n * g.c * g.h * g.w);
        let w = NoiseStream::new(seed, 1).normal(g.k * g.c);
        let bias = NoiseStream::new(seed, 2).normal(g.k);
        let want = reference(&g, &x, n, &w, &bias);
        let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
        for isa in Isa::runnable_with_fma() {
            let mut got = vec![f32::NAN; want.len()];
            PointwiseFilter::with_isa(g, &w, isa).unwrap().run(&x, n, &bias, &mut got, split);
            // NaN to start with: an unwritten output fails here.
            assert!(got.iter().all(|v| v.is_finite()), "{g:?} n={n} {isa:?}: non-finite output");
            let worst = got.iter().zip(&want).map(|(g, w)| (*g as f64 - w).abs()).fold(0f64, f64::max);
            // f32 sums of C products in another order than the f64 reference.
            assert!(worst <= 1e-5 * scale, "{g:?} n={n} {isa:?}: max error {worst:e} against scale {scale}");
        }
    }

    #[test]
    fn matches_the_direct_sum() {
        // The demo's 28×28, 14×14 and 7×7 (7×7 = 49: three whole vectors of 16 and a tail of 1,
        // or six of 8 and 1), channel counts that are not a multiple of 4, maps smaller than one
        // vector (all tail: 9 positions on 16 lanes, 6 on either), and one whose positions fill
        // whole vectors.
        for (c, k, h, w) in
            [(96, 32, 28, 28), (64, 48, 14, 14), (8, 13, 7, 7), (9, 6, 3, 3), (8, 6, 2, 3), (12, 8, 4, 8)]
        {
            check(geo(c, k, h, w), 2, Split::Serial);
        }
    }

    #[test]
    fn many_chunks_per_image_cover_every_position() {
        // 512 channels: a chunk of 256 KiB is 8 vectors of 16 (AVX-512) or 16 of 8 (AVX2), so a
        // 32×33 map (1056 positions, no tail) is 9 chunks either way, the last cut short.
        let g = geo(512, 6, 32, 33);
        let f = PointwiseFilter::new(g, &vec![0.0; 512 * 6]);
        if let Some(f) = f {
            assert!(f.chunks().count > 4, "{:?}", f.chunks());
        }
        check(g, 1, Split::Serial);
        check(geo(512, 8, 17, 19), 1, Split::Serial); // 323 positions: tails of 3 (16 lanes) and 3 (8)
    }

    #[test]
    fn pieces_split_over_a_pool_or_a_crew_give_the_same_bits() {
        let g = geo(512, 10, 20, 21);
        let x = NoiseStream::new(8, 0).normal(2 * g.c * g.h * g.w);
        let w = NoiseStream::new(8, 1).normal(g.k * g.c);
        let bias = vec![0.5; g.k];
        each_split(|split| {
            for isa in Isa::runnable_with_fma() {
                let f = PointwiseFilter::with_isa(g, &w, isa).unwrap();
                assert!(f.chunks().count > 1, "{isa:?}: more than one piece per image");
                let (mut serial, mut shared) = (vec![0f32; 2 * g.k * 420], vec![0f32; 2 * g.k * 420]);
                f.run(&x, 2, &bias, &mut serial, Split::Serial);
                f.run(&x, 2, &bias, &mut shared, split);
                assert!(serial.iter().zip(&shared).all(|(a, b)| a.to_bits() == b.to_bits()), "{isa:?} {split:?}");
            }
            check(g, 2, split);
            // One image of one chunk: its channel blocks (6: 22 channels) shared three ways.
            let small = geo(64, 22, 7, 7);
            for isa in Isa::runnable_with_fma() {
                let f = PointwiseFilter::with_isa(small, &w[..22 * 64], isa).unwrap();
                assert_eq!(f.chunks().count, 1);
                assert_eq!((f.ways(1, split.threads()), f.ways(1, 1), f.ways(6, 3)), (3, 1, 1), "{isa:?}");
                let (mut serial, mut shared) = (vec![0f32; 22 * 49], vec![0f32; 22 * 49]);
                f.run(&x[..64 * 49], 1, &bias[..1].repeat(22), &mut serial, Split::Serial);
                f.run(&x[..64 * 49], 1, &bias[..1].repeat(22), &mut shared, split);
                assert!(serial.iter().zip(&shared).all(|(a, b)| a.to_bits() == b.to_bits()), "{isa:?} {split:?}");
            }
            check(small, 1, split);
            check(geo(9, 5, 3, 3), 1, split);
        });
    }
}
