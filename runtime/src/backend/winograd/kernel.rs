//! Winograd F(2×2, 3×3) for NCHW f32: 3×3, stride 1, dilation 1, one group.
//!
//! Each 2×2 output tile comes from a 4×4 input tile: `Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A`. Summed
//! over input channels, the elementwise product becomes 16 independent matrix products
//! `M[ξ] = U[ξ] · V[ξ]` (`U[ξ]`: K×C transformed filters, `V[ξ]`: C×tiles transformed inputs),
//! which is 4 multiply-adds per output value and channel pair against the direct method's 9.
//!
//! Work runs in blocks of whole tile rows (2 output rows of one image), so that both transforms
//! are loops over consecutive tiles: a padded input row is split into even and odd columns, and
//! every transform step is then a contiguous elementwise loop the compiler vectorises. A block's
//! scratch (V and M) is near 4 MiB; blocks are independent and run on the caller's thread pool
//! when one is given.

use std::cell::RefCell;

use rayon::prelude::*;

/// The shape of one convolution: input `[n, c, h, w]`, output `[n, k, out_h, out_w]`, and the
/// zero padding before the first row and column (the padding after follows from the output size).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Geometry {
    pub c: usize,
    pub k: usize,
    pub h: usize,
    pub w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub out_h: usize,
    pub out_w: usize,
}

impl Geometry {
    fn tiles_h(&self) -> usize {
        self.out_h.div_ceil(2)
    }

    fn tiles_w(&self) -> usize {
        self.out_w.div_ceil(2)
    }

    /// 2×2 output tiles per image.
    pub fn tiles(&self) -> usize {
        self.tiles_h() * self.tiles_w()
    }

    /// Multiply-adds of the 16 products for `n` images.
    pub fn fma(&self, n: usize) -> usize {
        16 * self.k * self.c * n * self.tiles_h() * self.tiles_w()
    }

    /// The most one block allocates (`Scratch`): V and M for its tiles, and ten lines of a row.
    pub fn block_scratch_bytes(&self) -> usize {
        let tiles = self.rows_per_block() * self.tiles_w();
        (16 * (self.c + self.k) * tiles + 10 * (self.tiles_w() + 1)) * std::mem::size_of::<f32>()
    }

    /// Tile rows per block: scratch of 16·(C+K) floats per tile, near 4 MiB a block, at least
    /// one row. `matrixmultiply` packs a filter matrix once per 1024 tiles of a call, so larger
    /// blocks spread that over more tiles; past the L2 the transforms stream. Development runs
    /// of `brenier bench --eval-only` on the 64×64 ADM UNet (net a, batch 1, one thread, every
    /// size taken; not committed): 256 KiB 175.6 ms, 1 MiB 134–137, 4 MiB 124.6–126.4,
    /// 16 MiB 142.5 ms.
    fn rows_per_block(&self) -> usize {
        let per_tile_bytes = 16 * (self.c + self.k) * 4;
        ((4 << 20) / (per_tile_bytes * self.tiles_w())).max(1)
    }
}

/// Filters transformed once (`U = G g Gᵀ`, laid out `[16][K][C]`).
#[derive(Clone, Debug)]
pub struct Filter {
    pub geo: Geometry,
    u: Vec<f32>,
}

impl PartialEq for Filter {
    fn eq(&self, other: &Filter) -> bool {
        self.geo == other.geo && self.u.iter().map(|x| x.to_bits()).eq(other.u.iter().map(|x| x.to_bits()))
    }
}

impl Eq for Filter {}

impl Filter {
    /// `weights` in OIHW order (`[k][c][3][3]`).
    pub fn new(geo: Geometry, weights: &[f32]) -> Filter {
        let (k, c) = (geo.k, geo.c);
        assert_eq!(weights.len(), k * c * 9, "OIHW 3×3 weights");
        // G = [[1,0,0],[½,½,½],[½,-½,½],[0,0,1]], in f64 so the halves and sums round once.
        let g = |r: [f64; 3]| [r[0], (r[0] + r[1] + r[2]) / 2.0, (r[0] - r[1] + r[2]) / 2.0, r[2]];
        let mut u = vec![0f32; 16 * k * c];
        for (kc, w) in weights.chunks_exact(9).enumerate() {
            let w: Vec<f64> = w.iter().map(|&v| v as f64).collect();
            // Rows of G·g (4×3), then (G·g)·Gᵀ row by row.
            let cols: Vec<[f64; 4]> = (0..3).map(|j| g([w[j], w[3 + j], w[6 + j]])).collect();
            for a in 0..4 {
                let row = g([cols[0][a], cols[1][a], cols[2][a]]);
                for b in 0..4 {
                    u[(a * 4 + b) * k * c + kc] = row[b] as f32;
                }
            }
        }
        Filter { geo, u }
    }

    /// Convolves `n` images `x` into `y`, adding `bias` (one per output channel), splitting the
    /// blocks over `pool` when given.
    pub fn run(&self, x: &[f32], n: usize, bias: &[f32], y: &mut [f32], pool: Option<&rayon::ThreadPool>) {
        let geo = self.geo;
        assert_eq!(bias.len(), geo.k, "one bias per output channel");
        assert_eq!(x.len(), n * geo.c * geo.h * geo.w, "input of {n} images");
        assert_eq!(y.len(), n * geo.k * geo.out_h * geo.out_w, "output of {n} images");
        let rows = n * geo.tiles_h();
        // Split, a map makes at least two blocks per thread, so that no thread idles on a map
        // that would fit one block.
        let per_block = match pool {
            Some(pool) => geo.rows_per_block().min(rows.div_ceil(2 * pool.current_num_threads())).max(1),
            None => geo.rows_per_block(),
        };
        let blocks: Vec<(usize, usize)> =
            (0..rows).step_by(per_block).map(|r0| (r0, (r0 + per_block).min(rows))).collect();
        let out = SharedOut(y.as_mut_ptr(), y.len());
        let run_block = |&(r0, r1): &(usize, usize)| {
            // `block` calls nothing that could run another block on this thread meanwhile.
            SCRATCH.with_borrow_mut(|scratch| {
                scratch.fit(&geo, (r1 - r0) * geo.tiles_w());
                self.block(x, bias, &out, r0, r1, scratch);
            });
        };
        match pool {
            Some(pool) if blocks.len() > 1 => pool.install(|| blocks.par_iter().for_each(run_block)),
            _ => blocks.iter().for_each(run_block),
        }
    }

    /// Tile rows `r0..r1` (counted over all images): transform in, 16 products, transform out.
    fn block(&self, x: &[f32], bias: &[f32], out: &SharedOut, r0: usize, r1: usize, s: &mut Scratch) {
        let geo = &self.geo;
        let (c, k, tw) = (geo.c, geo.k, geo.tiles_w());
        let tiles = (r1 - r0) * tw;
        for (row, r) in (r0..r1).enumerate() {
            let (img, ti) = (r / geo.tiles_h(), r % geo.tiles_h());
            for ch in 0..c {
                let plane = &x[(img * c + ch) * geo.h * geo.w..][..geo.h * geo.w];
                s.transform_in(geo, plane, ti, ch * tiles + row * tw, tiles * c);
            }
        }
        for xi in 0..16 {
            let (u, v) = (&self.u[xi * k * c..][..k * c], &s.v[xi * c * tiles..][..c * tiles]);
            let m = &mut s.m[xi * k * tiles..][..k * tiles];
            // Safety: the slices hold exactly K×C, C×tiles and K×tiles row-major matrices.
            unsafe {
                matrixmultiply::sgemm(
                    k,
                    c,
                    tiles,
                    1.0,
                    u.as_ptr(),
                    c as isize,
                    1,
                    v.as_ptr(),
                    tiles as isize,
                    1,
                    0.0,
                    m.as_mut_ptr(),
                    tiles as isize,
                    1,
                );
            }
        }
        for (row, r) in (r0..r1).enumerate() {
            let (img, ti) = (r / geo.tiles_h(), r % geo.tiles_h());
            for (ch, &b) in bias.iter().enumerate() {
                s.transform_out(geo, ch * tiles + row * tw, tiles * k, b);
                for dy in 0..2 {
                    let oy = 2 * ti + dy;
                    if oy < geo.out_h {
                        let start = ((img * k + ch) * geo.out_h + oy) * geo.out_w;
                        // Safety: output row `oy` of image `img`, channel `ch` belongs to tile
                        // row `r`, which no other block holds; this is its only live slice.
                        s.store(dy, unsafe { std::slice::from_raw_parts_mut(out.row(start, geo.out_w), geo.out_w) });
                    }
                }
            }
        }
    }
}

/// The output buffer, shared by blocks that each write their own output rows: a block takes one
/// row at a time as a slice, so no two live slices overlap.
struct SharedOut(*mut f32, usize);
// Safety: blocks write disjoint rows (see `Filter::block`).
unsafe impl Sync for SharedOut {}
impl SharedOut {
    /// The start of `len` values at `start`, checked to lie inside the buffer; the caller makes
    /// the slice, and keeps it from overlapping any other live one.
    fn row(&self, start: usize, len: usize) -> *mut f32 {
        assert!(start + len <= self.1, "output row out of bounds");
        // Safety: in bounds (just checked).
        unsafe { self.0.add(start) }
    }
}

thread_local! {
    /// Each thread's block memory, kept between blocks, convolutions and network steps: fresh,
    /// a block would allocate and zero up to ~4 MiB on every step. It grows to the largest block
    /// the thread has run (the memory estimate counts one block per working thread).
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// One block's working memory: transformed inputs `[16][C][tiles]`, products `[16][K][tiles]`,
/// and per-row lines of one tile row: four input rows split into even and odd columns, their
/// row combinations, and the output transform's partial sums. Every value is written before it
/// is read in each block (the products overwrite `m`: β = 0), so reuse needs no clearing.
#[derive(Default)]
struct Scratch {
    v: Vec<f32>,
    m: Vec<f32>,
    /// `[even|odd][row 0..4]`, `tiles_w + 1` each.
    cols: [[Vec<f32>; 4]; 2],
    /// `Bᵀ d` of `cols`, same layout.
    rows: [[Vec<f32>; 4]; 2],
    /// `m · A`: `[column 0|1][row a 0..4]`, `tiles_w` each.
    sums: [[Vec<f32>; 4]; 2],
    /// The two output rows of a tile row, `[row][column 0|1]`, `tiles_w` each.
    outs: [[Vec<f32>; 2]; 2],
}

/// `dst[j] = op(x[j], y[j])`: one contiguous loop, vectorised once `op` is inlined.
#[inline(always)]
fn zip_into(dst: &mut [f32], x: &[f32], y: &[f32], op: impl Fn(f32, f32) -> f32) {
    for ((d, a), b) in dst.iter_mut().zip(x).zip(y) {
        *d = op(*a, *b);
    }
}

/// `dst[j] = op(x[j], y[j], z[j])`.
#[inline(always)]
fn zip3_into(dst: &mut [f32], x: &[f32], y: &[f32], z: &[f32], op: impl Fn(f32, f32, f32) -> f32) {
    for (((d, a), b), c) in dst.iter_mut().zip(x).zip(y).zip(z) {
        *d = op(*a, *b, *c);
    }
}

impl Scratch {
    /// Sizes every buffer exactly for a block of `tiles` tiles of `geo` (the lines' lengths are
    /// the loops' bounds), allocating only past the largest block seen.
    fn fit(&mut self, geo: &Geometry, tiles: usize) {
        let tw = geo.tiles_w();
        self.v.resize(16 * geo.c * tiles, 0.0);
        self.m.resize(16 * geo.k * tiles, 0.0);
        for line in self.cols.iter_mut().chain(&mut self.rows).flatten() {
            line.resize(tw + 1, 0.0);
        }
        for line in self.sums.iter_mut().flatten().chain(self.outs.iter_mut().flatten()) {
            line.resize(tw, 0.0);
        }
    }

    /// `Bᵀ d B` for every tile of tile row `ti` of one channel `plane`, into `v` at `at + j` for
    /// tile `j`, one `stride` apart per ξ. Bᵀ = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]].
    fn transform_in(&mut self, geo: &Geometry, plane: &[f32], ti: usize, at: usize, stride: usize) {
        let tw = geo.tiles_w();
        let [even, odd] = &mut self.cols;
        // Padded column p = 2j (even) or 2j + 1 (odd) is input column p - pad_left.
        for r in 0..4 {
            let (even, odd) = (&mut even[r], &mut odd[r]);
            let iy = (2 * ti + r) as isize - geo.pad_top as isize;
            if iy < 0 || iy >= geo.h as isize {
                even.fill(0.0);
                odd.fill(0.0);
                continue;
            }
            let line = &plane[iy as usize * geo.w..][..geo.w];
            let at = |p: usize| p.checked_sub(geo.pad_left).and_then(|ix| line.get(ix)).copied().unwrap_or(0.0);
            for j in 0..=tw {
                even[j] = at(2 * j);
                odd[j] = at(2 * j + 1);
            }
        }
        // Rows first (Bᵀ d), on even and odd columns alike ...
        for (d, r) in self.cols.iter().zip(&mut self.rows) {
            let [r0, r1, r2, r3] = r;
            zip_into(r0, &d[0], &d[2], |a, b| a - b);
            zip_into(r1, &d[1], &d[2], |a, b| a + b);
            zip_into(r2, &d[2], &d[1], |a, b| a - b);
            zip_into(r3, &d[1], &d[3], |a, b| a - b);
        }
        // ... then columns (· B): tile j's columns are even j, odd j, even j+1, odd j+1.
        let [re, ro] = &self.rows;
        for a in 0..4 {
            let (e0, e1, o0, o1) = (&re[a][..tw], &re[a][1..=tw], &ro[a][..tw], &ro[a][1..=tw]);
            let dst = |b: usize| at + (a * 4 + b) * stride..at + (a * 4 + b) * stride + tw;
            zip_into(&mut self.v[dst(0)], e0, e1, |a, b| a - b);
            zip_into(&mut self.v[dst(1)], o0, e1, |a, b| a + b);
            zip_into(&mut self.v[dst(2)], e1, o0, |a, b| a - b);
            zip_into(&mut self.v[dst(3)], o0, o1, |a, b| a - b);
        }
    }

    /// `Aᵀ m A + bias` for every tile of one tile row of one output channel, read from `m` at
    /// `at + j`, one `stride` apart per ξ, into `outs`. Aᵀ = [[1,1,1,0],[0,1,-1,-1]].
    fn transform_out(&mut self, geo: &Geometry, at: usize, stride: usize, bias: f32) {
        let tw = geo.tiles_w();
        // Columns first (m · A) for each of the four rows a ...
        let [left, right] = &mut self.sums;
        for a in 0..4 {
            let m = |b: usize| &self.m[at + (a * 4 + b) * stride..][..tw];
            zip3_into(&mut left[a], m(0), m(1), m(2), |x, y, z| x + y + z);
            zip3_into(&mut right[a], m(1), m(2), m(3), |x, y, z| x - y - z);
        }
        // ... then rows (Aᵀ ·), with the bias.
        for (col, s) in self.sums.iter().enumerate() {
            zip3_into(&mut self.outs[0][col], &s[0], &s[1], &s[2], |x, y, z| x + y + z + bias);
            zip3_into(&mut self.outs[1][col], &s[1], &s[2], &s[3], |x, y, z| x - y - z + bias);
        }
    }

    /// Output row `dy` (0 or 1) of the tile row `transform_out` made, interleaving its tiles'
    /// two columns into `line` (an odd width takes the last tile's left column only).
    fn store(&self, dy: usize, line: &mut [f32]) {
        let [left, right] = &self.outs[dy];
        let (pairs, rest) = line.split_at_mut(line.len() / 2 * 2);
        for ((pair, l), r) in pairs.chunks_exact_mut(2).zip(left).zip(right) {
            pair[0] = *l;
            pair[1] = *r;
        }
        if let Some(last) = rest.first_mut() {
            *last = left[left.len() - 1];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::NoiseStream;

    /// The textbook sum, in f64: the reference the transform must match.
    fn direct(geo: &Geometry, x: &[f32], n: usize, w: &[f32], bias: &[f32]) -> Vec<f64> {
        let mut y = vec![0f64; n * geo.k * geo.out_h * geo.out_w];
        for img in 0..n {
            for k in 0..geo.k {
                for oy in 0..geo.out_h {
                    for ox in 0..geo.out_w {
                        let mut acc = bias[k] as f64;
                        for c in 0..geo.c {
                            for dy in 0..3 {
                                for dx in 0..3 {
                                    let iy = (oy + dy) as isize - geo.pad_top as isize;
                                    let ix = (ox + dx) as isize - geo.pad_left as isize;
                                    if iy < 0 || ix < 0 || iy >= geo.h as isize || ix >= geo.w as isize {
                                        continue;
                                    }
                                    let xv = x[((img * geo.c + c) * geo.h + iy as usize) * geo.w + ix as usize];
                                    acc += xv as f64 * w[((k * geo.c + c) * 3 + dy) * 3 + dx] as f64;
                                }
                            }
                        }
                        y[((img * geo.k + k) * geo.out_h + oy) * geo.out_w + ox] = acc;
                    }
                }
            }
        }
        y
    }

    fn check(geo: Geometry, n: usize, pool: Option<&rayon::ThreadPool>) {
        let seed = geo.c as u64 * 31 + geo.h as u64;
        let x = NoiseStream::new(seed, 0).normal(n * geo.c * geo.h * geo.w);
        let w = NoiseStream::new(seed, 1).normal(geo.k * geo.c * 9);
        let bias = NoiseStream::new(seed, 2).normal(geo.k);
        let want = direct(&geo, &x, n, &w, &bias);
        let mut got = vec![f32::NAN; want.len()];
        Filter::new(geo, &w).run(&x, n, &bias, &mut got, pool);
        // The output starts as NaN: an unwritten or non-finite value fails here, not in a max
        // that would skip it.
        assert!(got.iter().all(|v| v.is_finite()), "{geo:?} n={n}: non-finite output");
        let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
        let worst = got.iter().zip(&want).map(|(g, w)| (*g as f64 - w).abs()).fold(0f64, f64::max);
        // f32 sums of C·9 products: the transform adds a few roundings per tile, well inside
        // 1e-5 of the output's scale; a wrong index is off by O(1).
        assert!(worst <= 1e-5 * scale, "{geo:?} n={n}: max error {worst:e} against scale {scale}");
    }

    fn same(c: usize, k: usize, h: usize, w: usize) -> Geometry {
        Geometry { c, k, h, w, pad_top: 1, pad_left: 1, out_h: h, out_w: w }
    }

    #[test]
    fn matches_the_direct_sum_on_even_and_odd_maps() {
        for (c, k, h, w) in [(8, 8, 8, 8), (16, 8, 7, 7), (8, 24, 14, 9), (3, 5, 5, 12), (32, 32, 28, 28)] {
            check(same(c, k, h, w), 2, None);
        }
    }

    #[test]
    fn matches_without_padding_and_with_one_sided_padding() {
        check(Geometry { c: 8, k: 8, h: 10, w: 9, pad_top: 0, pad_left: 0, out_h: 8, out_w: 7 }, 1, None);
        // Asymmetric padding, two before and none after (what a folded Pad can leave).
        check(Geometry { c: 4, k: 6, h: 6, w: 6, pad_top: 2, pad_left: 2, out_h: 6, out_w: 6 }, 1, None);
    }

    #[test]
    fn blocks_split_over_a_pool_give_the_same_bits() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        // Split over 3 threads, 4 images × 16 tile rows make 6 blocks of 11 rows (at most
        // 16 a block: C + K = 256).
        let geo = same(64, 192, 32, 32);
        assert_eq!(geo.rows_per_block(), 16);
        let x = NoiseStream::new(5, 0).normal(4 * geo.c * geo.h * geo.w);
        let w = NoiseStream::new(5, 1).normal(geo.k * geo.c * 9);
        let (filter, bias) = (Filter::new(geo, &w), vec![0.5; geo.k]);
        let (mut serial, mut split) = (vec![0f32; 4 * geo.k * 1024], vec![0f32; 4 * geo.k * 1024]);
        filter.run(&x, 4, &bias, &mut serial, None);
        filter.run(&x, 4, &bias, &mut split, Some(&pool));
        assert!(serial.iter().zip(&split).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}
