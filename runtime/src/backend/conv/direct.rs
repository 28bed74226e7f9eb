//! A direct 3×3 convolution for the small maps Winograd does not take (fewer than
//! [`super::MIN_TILES`] tiles: the demo UNet's 7×7, the 64×64 ADM UNet's 8×8), with no patch matrix.
//!
//! Each channel's map is copied once per image into a zero-padded plane of width
//! `out_w + 2`. Read as one flat line, output position `p = y·(out_w + 2) + x` is then
//! `Σ_c Σ_tap w[k][c][tap] · plane_c[p + dy·(out_w + 2) + dx]`: every tap of a whole run of
//! outputs is one contiguous load, across row ends (the two columns past `out_w` in each row are
//! computed and dropped). The register-tiled loop over those runs is `tile.rs`'s, shared with
//! the 1×1 kernel; the weights are laid out once at load as `[K/4][C][9][4]`.
//!
//! Stride 2 (a UNet's downsampling convolution) reads every second input, which no vector load
//! does; so each channel's padded map is split into its four phases (even and odd rows ×
//! even and odd columns), each `out_w + 1` wide. Tap `(dy, dx)` of output `(y, x)` is then
//! phase `(dy mod 2, dx mod 2)` at `(y + dy/2, x + dx/2)`: again one offset into a flat line
//! per tap, and the same loop.
//!
//! It also takes the thin convolutions Winograd is not built for (a UNet's first and last, with
//! 1–3 image channels), at any map size up to `MAX_DIRECT_SCRATCH` of planes per thread.
//!
//! Built for AVX-512 and for AVX2 + FMA with explicit intrinsics; a CPU with neither keeps
//! tract's convolution (`DirectFilter::new` returns `None`).

// Elsewhere than x86_64 the only `Isa` is the baseline, which `with_isa` refuses, so the code past
// the kernel's dispatch is unreachable there: compiled, unused.
#![cfg_attr(not(target_arch = "x86_64"), allow(unused))]

use super::isa::Isa;
use super::split::Split;
use super::tile::{self, Run, KB};
use super::winograd::{Geometry, SharedOut};

/// The weights of one 3×3 convolution, laid out for the direct kernel.
#[derive(Clone, Debug)]
pub struct DirectFilter {
    pub geo: Geometry,
    /// 1 or 2, the same both ways.
    pub stride: usize,
    /// `[⌈K/4⌉][C][9][4]`, the channels past K zero.
    w: Vec<f32>,
    /// AVX2 or AVX-512: `new` refuses the baseline.
    isa: Isa,
    /// The set's f32 lanes.
    lanes: usize,
}

impl PartialEq for DirectFilter {
    fn eq(&self, other: &DirectFilter) -> bool {
        self.geo == other.geo
            && self.stride == other.stride
            && self.w.iter().map(|x| x.to_bits()).eq(other.w.iter().map(|x| x.to_bits()))
    }
}

impl Eq for DirectFilter {}

/// Where one image's padded planes lie and how far a run of outputs reaches.
#[derive(Clone, Copy)]
struct Layout {
    /// Padded width: `out_w + 2` (stride 1), each phase's `out_w + 1` (stride 2).
    wp: usize,
    /// Flat output positions, `out_h · wp`, rounded up to whole vectors.
    positions: usize,
    /// Floats per phase (stride 2; the plane itself at stride 1).
    phase: usize,
    /// Floats per channel's plane (its four phases at stride 2): every tap of the last vector
    /// stays inside it.
    plane: usize,
    /// Tap `dy·3 + dx`'s offset past the output position.
    taps: [usize; 9],
}

impl DirectFilter {
    /// Whether this CPU runs the kernel (AVX2 and FMA, or AVX-512).
    pub fn available() -> bool {
        Isa::native().fma_lanes().is_some()
    }

    /// `weights` in OIHW order (`[k][c][3][3]`), `stride` 1 or 2; `None` on a CPU without AVX2
    /// and FMA.
    pub fn new(geo: Geometry, stride: usize, weights: &[f32]) -> Option<DirectFilter> {
        DirectFilter::with_isa(geo, stride, weights, Isa::native())
    }

    /// `None` for an instruction set without FMA (the baseline).
    fn with_isa(geo: Geometry, stride: usize, weights: &[f32], isa: Isa) -> Option<DirectFilter> {
        let lanes = isa.fma_lanes()?;
        let (k, c) = (geo.k, geo.c);
        assert_eq!(weights.len(), k * c * 9, "OIHW 3×3 weights");
        assert!(stride == 1 || stride == 2, "stride {stride}");
        // Stride 2 copies the inputs its phases hold and skips any past them; stride 1 copies
        // every input, so its padding after must not be negative.
        assert!(stride == 2 || geo.padding_after_is_whole(), "no negative padding after the input: {geo:?}");
        let blocks = k.div_ceil(KB);
        let mut w = vec![0f32; blocks * c * 9 * KB];
        for kk in 0..k {
            for ci in 0..c {
                for tap in 0..9 {
                    w[((kk / KB * c + ci) * 9 + tap) * KB + kk % KB] = weights[(kk * c + ci) * 9 + tap];
                }
            }
        }
        Some(DirectFilter { geo, stride, w, isa, lanes })
    }

    fn layout(&self) -> Layout {
        let g = self.geo;
        let lanes = self.lanes;
        if self.stride == 1 {
            let wp = g.out_w + 2;
            let positions = (g.out_h * wp).div_ceil(lanes) * lanes;
            let plane = ((g.out_h + 2) * wp).max(positions + 2 * wp + 2);
            let taps = std::array::from_fn(|t| t / 3 * wp + t % 3);
            return Layout { wp, positions, phase: plane, plane, taps };
        }
        // Outputs read phase rows 0..=out_h and columns 0..=out_w; a phase holds its rows and
        // the furthest tap of the last vector.
        let wp = g.out_w + 1;
        let positions = (g.out_h * wp).div_ceil(lanes) * lanes;
        let phase = ((g.out_h + 1) * wp).max(positions + wp + 1);
        let taps = std::array::from_fn(|t| {
            let (dy, dx) = (t / 3, t % 3);
            (dy % 2 * 2 + dx % 2) * phase + dy / 2 * wp + dx / 2
        });
        Layout { wp, positions, phase, plane: 4 * phase, taps }
    }

    /// Multiply-adds per image, the dropped columns, the positions that round the last vector
    /// up and the channels past K included.
    pub fn fma_per_image(&self) -> usize {
        9 * self.geo.c * self.geo.k.div_ceil(KB) * KB * self.layout().positions
    }

    /// Bytes one thread's scratch holds: the padded planes and 4 lines of outputs.
    pub fn scratch_bytes(&self) -> usize {
        let l = self.layout();
        (self.geo.c * l.plane + KB * l.positions) * std::mem::size_of::<f32>()
    }

    /// Convolves `n` images `x` into `y`, adding `bias` (one per output channel), splitting the
    /// (image, 4-channel block) pieces out as `split` says.
    pub fn run(&self, x: &[f32], n: usize, bias: &[f32], y: &mut [f32], split: Split) {
        let g = self.geo;
        assert_eq!(bias.len(), g.k, "one bias per output channel");
        assert_eq!(x.len(), n * g.c * g.h * g.w, "input of {n} images");
        assert_eq!(y.len(), n * g.k * g.out_h * g.out_w, "output of {n} images");
        let blocks = g.k.div_ceil(KB);
        let out = SharedOut::new(y);
        // One piece per thread, each a contiguous run of (image, channel block) pairs, which may
        // cross from one image into the next: a piece pads each image it touches once.
        let total = n * blocks;
        let pieces = split.threads().min(total).max(1);
        let per = total.div_ceil(pieces);
        let run_piece = |piece: usize| {
            let (start, end) = (piece * per, ((piece + 1) * per).min(total));
            SCRATCH.with_borrow_mut(|s| self.run_range(x, bias, &out, start, end, s));
        };
        split.for_each(pieces, &run_piece);
    }

    /// Pieces `start..end`, piece `i` being image `i / blocks`, channel block `i % blocks`.
    fn run_range(&self, x: &[f32], bias: &[f32], out: &SharedOut, start: usize, end: usize, s: &mut Vec<f32>) {
        let g = self.geo;
        let l = self.layout();
        let blocks = g.k.div_ceil(KB);
        s.resize(g.c * l.plane + KB * l.positions, 0.0);
        let (planes, lines) = s.split_at_mut(g.c * l.plane);
        let mut padded = usize::MAX;
        for piece in start..end {
            let (img, kb) = (piece / blocks, piece % blocks);
            if padded != img {
                self.pad(&x[img * g.c * g.h * g.w..][..g.c * g.h * g.w], planes, l);
                padded = img;
            }
            let w = &self.w[kb * g.c * 9 * KB..][..g.c * 9 * KB];
            let run = Run {
                x: planes.as_ptr(),
                plane: l.plane,
                channels: g.c,
                taps: &l.taps,
                w: w.as_ptr(),
                init: [0.0; KB],
                out: lines.as_mut_ptr(),
                out_stride: l.positions,
                vectors: l.positions / self.lanes,
            };
            // Safety: `with_isa` took a set this CPU runs, not the baseline; `layout` keeps
            // every tap of the last vector inside its channel's plane, and `lines` holds 4 lines
            // of `positions`.
            unsafe { tile::run(self.isa, &run) };
            for kk in 0..KB.min(g.k - kb * KB) {
                let ch = kb * KB + kk;
                let line = &lines[kk * l.positions..][..l.positions];
                for oy in 0..g.out_h {
                    let at = ((img * g.k + ch) * g.out_h + oy) * g.out_w;
                    // Safety: row `oy` of image `img`, channel `ch` belongs to this piece alone,
                    // and this is its only live slice.
                    let row = unsafe { std::slice::from_raw_parts_mut(out.row(at, g.out_w), g.out_w) };
                    for (o, v) in row.iter_mut().zip(&line[oy * l.wp..][..g.out_w]) {
                        *o = v + bias[ch];
                    }
                }
            }
        }
    }

    /// Copies one image's channels into zero-padded planes `wp` wide, split into phases at
    /// stride 2.
    fn pad(&self, image: &[f32], planes: &mut [f32], l: Layout) {
        let g = self.geo;
        planes.fill(0.0);
        for (plane, map) in planes.chunks_exact_mut(l.plane).zip(image.chunks_exact(g.h * g.w)) {
            for (iy, row) in map.chunks_exact(g.w).enumerate() {
                let y = iy + g.pad_top;
                if self.stride == 1 {
                    plane[y * l.wp + g.pad_left..][..g.w].copy_from_slice(row);
                    continue;
                }
                if y / 2 > g.out_h {
                    break; // read by no output
                }
                // Padded column x goes to phase (y mod 2, x mod 2), column x / 2.
                for (b, phase) in plane[y % 2 * 2 * l.phase..].chunks_exact_mut(l.phase).take(2).enumerate() {
                    let line = &mut phase[y / 2 * l.wp..][..l.wp];
                    // The first input column landing in this phase, and where.
                    let ix0 = (b + 2 - g.pad_left % 2) % 2;
                    let j0 = (ix0 + g.pad_left) / 2;
                    for (dst, &v) in line[j0.min(l.wp)..].iter_mut().zip(row.iter().skip(ix0).step_by(2)) {
                        *dst = v;
                    }
                }
            }
        }
    }
}

thread_local! {
    /// Each thread's padded planes and output lines, kept between calls.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::conv::split::each_split;
    use crate::backend::conv::winograd::tests::{direct_sum, same};
    use crate::rng::NoiseStream;

    fn check(geo: Geometry, n: usize, split: Split) {
        check_strided(geo, 1, n, split)
    }

    fn check_strided(geo: Geometry, stride: usize, n: usize, split: Split) {
        let seed = geo.c as u64 * 17 + geo.w as u64;
        let x = NoiseStream::new(seed, 0).normal(n * geo.c * geo.h * geo.w);
        let w = NoiseStream::new(seed, 1).normal(geo.k * geo.c * 9);
        let bias = NoiseStream::new(seed, 2).normal(geo.k);
        let want = direct_sum(&geo, stride, &x, n, &w, &bias);
        let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
        for isa in Isa::runnable_with_fma() {
            let mut got = vec![f32::NAN; want.len()];
            DirectFilter::with_isa(geo, stride, &w, isa).unwrap().run(&x, n, &bias, &mut got, split);
            assert!(got.iter().all(|v| v.is_finite()), "{geo:?} /{stride} n={n} {isa:?}: non-finite output");
            let worst = got.iter().zip(&want).map(|(g, w)| (*g as f64 - w).abs()).fold(0f64, f64::max);
            // f32 sums of C·9 products in a different order from the f64 reference.
            assert!(worst <= 1e-5 * scale, "{geo:?} /{stride} n={n} {isa:?}: max error {worst:e} against {scale}");
        }
    }

    /// A stride-2 geometry as tract computes it for `pad` before and after.
    fn strided(c: usize, k: usize, h: usize, w: usize, pad: (usize, usize)) -> Geometry {
        let out = |n: usize| (n + pad.0 + pad.1 - 3) / 2 + 1;
        Geometry { c, k, h, w, pad_top: pad.0, pad_left: pad.0, out_h: out(h), out_w: out(w) }
    }

    #[test]
    fn matches_the_direct_sum_at_stride_2() {
        // A UNet's downsampling (28→14, 14→7, 64→32: even maps, pad 1), odd maps, a last input
        // row and column no output reads (10×12 unpadded: outputs read rows 0–8, columns 0–10),
        // padding before only, after only (SAME_UPPER), and a pad of 2.
        for geo in [
            strided(16, 16, 28, 28, (1, 1)),
            strided(32, 8, 14, 14, (1, 1)),
            strided(8, 12, 64, 64, (1, 1)),
            strided(5, 9, 9, 13, (1, 1)),
            strided(8, 8, 10, 12, (0, 0)),
            strided(8, 8, 10, 10, (1, 0)),
            strided(8, 8, 10, 10, (0, 1)),
            strided(4, 6, 7, 7, (2, 2)),
        ] {
            check_strided(geo, 2, 2, Split::Serial);
        }
    }

    #[test]
    fn takes_thin_convolutions_at_any_size() {
        // A UNet's first (1 or 3 image channels in) and last (out) convolutions, 28×28 and 64×64.
        check(same(1, 32, 28, 28), 1, Split::Serial);
        check(same(3, 16, 64, 64), 1, Split::Serial);
        check(same(32, 1, 28, 28), 1, Split::Serial);
        check(same(24, 3, 64, 64), 1, Split::Serial);
    }

    #[test]
    fn matches_the_direct_sum() {
        // 7×7 and 14×14 (the demo's maps), a channel count that is not a multiple of 4, odd and
        // non-square maps, and runs of vectors that leave every tile width from 1 to 6 (16 lanes)
        // and 1 to 3 (8 lanes) as the last.
        for (c, k, h, w) in
            [(8, 8, 7, 7), (16, 6, 14, 14), (5, 9, 5, 12), (8, 13, 9, 3), (3, 4, 20, 20), (8, 8, 10, 8), (8, 8, 8, 10)]
        {
            check(same(c, k, h, w), 2, Split::Serial);
        }
        check(Geometry { c: 8, k: 8, h: 10, w: 9, pad_top: 0, pad_left: 0, out_h: 8, out_w: 7 }, 1, Split::Serial);
        check(Geometry { c: 4, k: 6, h: 6, w: 6, pad_top: 2, pad_left: 2, out_h: 6, out_w: 6 }, 1, Split::Serial);
        check(Geometry { c: 8, k: 8, h: 7, w: 9, pad_top: 0, pad_left: 3, out_h: 5, out_w: 12 }, 1, Split::Serial);
    }

    #[test]
    fn pieces_split_over_a_pool_or_a_crew_give_the_same_bits() {
        // 2 images × 6 channel blocks over 3 threads: pieces of 4, the middle one holding
        // image 0's last two blocks and image 1's first two (it pads both).
        let geo = same(16, 22, 7, 7);
        let x = NoiseStream::new(6, 0).normal(2 * geo.c * geo.h * geo.w);
        let w = NoiseStream::new(6, 1).normal(geo.k * geo.c * 9);
        let bias = vec![0.25; geo.k];
        each_split(|split| {
            for isa in Isa::runnable_with_fma() {
                let f = DirectFilter::with_isa(geo, 1, &w, isa).unwrap();
                let (mut serial, mut shared) = (vec![0f32; 2 * geo.k * 49], vec![0f32; 2 * geo.k * 49]);
                f.run(&x, 2, &bias, &mut serial, Split::Serial);
                f.run(&x, 2, &bias, &mut shared, split);
                assert!(serial.iter().zip(&shared).all(|(a, b)| a.to_bits() == b.to_bits()), "{isa:?} {split:?}");
            }
            check(geo, 2, split);
            // Stride 2 and a thin one, split the same way.
            check_strided(strided(16, 22, 14, 14, (1, 1)), 2, 2, split);
            check(same(3, 16, 20, 20), 3, split);
        });
    }
}
