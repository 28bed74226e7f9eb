//! Winograd F(2×2, 3×3) for NCHW f32: 3×3, stride 1, dilation 1, one group.
//!
//! Each 2×2 output tile comes from a 4×4 input tile: `Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A`. Summed
//! over input channels, the elementwise product becomes 16 independent matrix products
//! `M[ξ] = U[ξ] · V[ξ]` (`U[ξ]`: K×C transformed filters, `V[ξ]`: C×tiles transformed inputs),
//! which is 4 multiply-adds per output value and channel pair against the direct method's 9.
//!
//! Work runs in blocks of whole tile rows, so that both transforms are long contiguous loops the
//! compiler vectorises: a padded input row is split into even and odd columns, and even and odd
//! rows go to separate planes, so the rows a tile needs are whole-block slices one row apart.
//! Each tile row carries one spare slot past its last tile (`Geometry::slots`), which lets a
//! transform step run over the whole block in one loop; the spare's products are computed and
//! dropped (1/tiles_w more product work, against loops of `tiles_w` floats that stay scalar).
//! On x86_64 the block is compiled a second and third time for AVX2 and AVX-512, picked at run
//! time: the release build targets baseline x86_64 (SSE2), where these loops run 4 wide.
//! With AVX2 and FMA, or AVX-512, the 16 products run in `tile.rs`'s register-tiled loop, straight off
//! the transformed inputs: `matrixmultiply` packs both operands on every call, which was a
//! third of its time on the demo UNet's small products (`perf`, one thread). Elsewhere (the
//! baseline, aarch64) they stay `matrixmultiply`'s.
//! A block's scratch (V and M) is near 4 MiB; blocks are independent and shared among the
//! threads `Split` gives.

use std::cell::RefCell;

use super::isa::Isa;
use super::split::Split;
use super::tile::{self, Run, KB};

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

    /// Slots per tile row in a block's matrices: the tiles and one spare.
    fn slots(&self) -> usize {
        self.tiles_w() + 1
    }

    /// Whether the padding after the input is never negative at stride 1: the stride-1 kernels
    /// read zeros past the input's end as that padding, and drop input past the padded size,
    /// which must leave nothing out.
    pub fn padding_after_is_whole(&self) -> bool {
        self.h + self.pad_top <= self.out_h + 2 && self.w + self.pad_left <= self.out_w + 2
    }

    /// 2×2 output tiles per image.
    pub fn tiles(&self) -> usize {
        self.tiles_h() * self.tiles_w()
    }

    /// The most one block allocates (`Scratch`): V and M for its slots, and the lines of the
    /// transforms.
    pub fn block_scratch_bytes(&self) -> usize {
        let l = self.scratch_lengths(self.rows_per_block());
        (l.v + l.m + 4 * l.plane + 8 * l.row + 12 * l.line) * std::mem::size_of::<f32>()
    }

    /// The length of each of `Scratch`'s buffers for a block of `rows` tile rows.
    fn scratch_lengths(&self, rows: usize) -> ScratchLengths {
        let slots = rows * self.slots();
        let cols = columns(slots);
        ScratchLengths {
            v: 16 * self.c * cols,
            m: 16 * self.k.div_ceil(KB) * KB * cols,
            plane: slots + self.slots() + 1,
            row: slots + 1,
            line: slots,
        }
    }

    /// Tile rows per block: scratch of 16·(C+K) floats per slot, near 4 MiB a block, at least
    /// one row (the rounding of columns and channels in `scratch_lengths` comes on top). Set
    /// for `matrixmultiply`'s products, which pack a filter matrix once per 1024 columns
    /// (slots) of a call, so larger blocks spread that over more tiles; past the L2 the
    /// transforms stream. Development runs of `brenier bench --eval-only` on the 64×64 ADM UNet
    /// (net a, batch 1, one thread, every size taken; not committed; with the per-tile-row
    /// transforms that predate a0d3656): 256 KiB 175.6 ms, 1 MiB 134–137, 4 MiB 124.6–126.4,
    /// 16 MiB 142.5 ms. Not measured again for `tile.rs`'s products, which pack nothing.
    fn rows_per_block(&self) -> usize {
        let per_slot_bytes = 16 * (self.c + self.k) * 4;
        ((4 << 20) / (per_slot_bytes * self.slots())).max(1)
    }
}

/// Columns of a block's matrices for `slots` slots: whole vectors of the widest set, so that
/// the register-tiled products run whole vectors only (the columns past the slots hold stale
/// values, and their products are dropped: a product's column depends on that column alone).
fn columns(slots: usize) -> usize {
    slots.next_multiple_of(16)
}

/// `Scratch`'s buffer lengths for one block, in floats: V, M, each of the 4 planes, each of the
/// 8 rows, each of the 12 sums and outs lines (the counts `block_scratch_bytes` multiplies by).
struct ScratchLengths {
    v: usize,
    m: usize,
    plane: usize,
    row: usize,
    line: usize,
}

/// Filters transformed once (`U = G g Gᵀ`), laid out for the products' loop: `[16][⌈K/4⌉][C][4]`
/// (the channels past K zero) where `tile.rs` runs them, `[16][K][C]` for `matrixmultiply`.
#[derive(Clone, Debug)]
pub struct Filter {
    pub geo: Geometry,
    u: Vec<f32>,
    isa: Isa,
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
        Filter::with_isa(geo, weights, Isa::native())
    }

    fn with_isa(geo: Geometry, weights: &[f32], isa: Isa) -> Filter {
        let (k, c) = (geo.k, geo.c);
        assert_eq!(weights.len(), k * c * 9, "OIHW 3×3 weights");
        // Zeros before and an output size: the padding after is what the output reaches past
        // the input, never negative (tract's computed padding, mod.rs). The transforms drop
        // input columns past the padded width, which this keeps unused.
        assert!(geo.padding_after_is_whole(), "no negative padding after the input: {geo:?}");
        // G = [[1,0,0],[½,½,½],[½,-½,½],[0,0,1]], in f64 so the halves and sums round once.
        let g = |r: [f64; 3]| [r[0], (r[0] + r[1] + r[2]) / 2.0, (r[0] - r[1] + r[2]) / 2.0, r[2]];
        let tiled = isa.fma_lanes().is_some();
        let k_rows = if tiled { k.div_ceil(KB) * KB } else { k };
        let at = |xi: usize, kk: usize, ci: usize| match tiled {
            true => ((xi * k_rows / KB + kk / KB) * c + ci) * KB + kk % KB,
            false => (xi * k + kk) * c + ci,
        };
        let mut u = vec![0f32; 16 * k_rows * c];
        for (kc, w) in weights.chunks_exact(9).enumerate() {
            let w = |i: usize| w[i] as f64;
            // Rows of G·g (4×3), then (G·g)·Gᵀ row by row.
            let cols: [[f64; 4]; 3] = std::array::from_fn(|j| g([w(j), w(3 + j), w(6 + j)]));
            for a in 0..4 {
                let row = g([cols[0][a], cols[1][a], cols[2][a]]);
                for b in 0..4 {
                    u[at(a * 4 + b, kc / c, kc % c)] = row[b] as f32;
                }
            }
        }
        Filter { geo, u, isa }
    }

    /// Multiply-adds of the 16 products per image, as one image runs block after block: spare
    /// slots included, and where `tile.rs` runs them, the columns and channels they round up.
    /// Blocks that span images or split over a pool round their columns differently, so for
    /// those it is an estimate (tract's cost model and the load-time log use it).
    pub fn fma_per_image(&self) -> usize {
        let geo = self.geo;
        let (rows, per_block) = (geo.tiles_h(), geo.rows_per_block());
        let (k_rows, cols): (usize, fn(usize) -> usize) = match self.isa.fma_lanes() {
            Some(_) => (geo.k.div_ceil(KB) * KB, columns),
            None => (geo.k, |slots| slots),
        };
        let cols: usize = (0..rows).step_by(per_block).map(|r0| cols((per_block.min(rows - r0)) * geo.slots())).sum();
        16 * k_rows * geo.c * cols
    }

    /// Bytes of the transformed filters (what the network keeps in place of the 3×3 weights).
    pub fn transformed_bytes(&self) -> usize {
        std::mem::size_of_val(self.u.as_slice())
    }

    /// Convolves `n` images `x` into `y`, adding `bias` (one per output channel), sharing the
    /// blocks out as `split` says.
    pub fn run(&self, x: &[f32], n: usize, bias: &[f32], y: &mut [f32], split: Split) {
        let geo = self.geo;
        assert_eq!(bias.len(), geo.k, "one bias per output channel");
        assert_eq!(x.len(), n * geo.c * geo.h * geo.w, "input of {n} images");
        assert_eq!(y.len(), n * geo.k * geo.out_h * geo.out_w, "output of {n} images");
        let rows = n * geo.tiles_h();
        // Split, a block takes at most ⌈rows / threads⌉ tile rows, so that no thread idles on
        // a map that would fit one block. Not fewer: with `matrixmultiply`'s products every
        // block packs all 16 filter matrices again, and half that size made the 64×64 ADM
        // UNet's batch-1 step at 2 threads 9–13 % slower (p50 of `brenier bench --eval-only
        // --threads 2 --repeat 30`, three alternating runs each; development runs, not
        // committed; measured before the products ran in `tile.rs`'s loop, which packs nothing).
        let per_block = geo.rows_per_block().min(rows.div_ceil(split.threads())).max(1);
        let blocks: Vec<(usize, usize)> =
            (0..rows).step_by(per_block).map(|r0| (r0, (r0 + per_block).min(rows))).collect();
        let out = SharedOut::new(y);
        let run_block = |b: usize| {
            let (r0, r1) = blocks[b];
            // `Block::run` calls nothing that could run another block on this thread meanwhile.
            SCRATCH.with_borrow_mut(|scratch| {
                scratch.fit(&geo, r1 - r0);
                let job = Block { filter: self, x, bias, out: &out, r0, r1 };
                match self.isa {
                    // Safety: `Isa::runnable` found the instructions on this CPU.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => unsafe { job.run_avx512(scratch) },
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => unsafe { job.run_avx2(scratch) },
                    Isa::Baseline => job.run(scratch),
                }
            });
        };
        split.for_each(blocks.len(), &run_block);
    }
}

/// Tile rows `r0..r1` of a run, counted over all images.
struct Block<'a> {
    filter: &'a Filter,
    x: &'a [f32],
    bias: &'a [f32],
    out: &'a SharedOut,
    r0: usize,
    r1: usize,
}

impl Block<'_> {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run_avx512(&self, s: &mut Scratch) {
        self.run(s)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(&self, s: &mut Scratch) {
        self.run(s)
    }

    /// Transform in, 16 products, transform out. Inlined into each `run_*` so that its loops
    /// are compiled for that instruction set.
    #[inline(always)]
    fn run(&self, s: &mut Scratch) {
        let (filter, geo) = (self.filter, &self.filter.geo);
        let (c, k, th) = (geo.c, geo.k, geo.tiles_h());
        let slots = (self.r1 - self.r0) * geo.slots();
        let (cols, k_rows) = (columns(slots), k.div_ceil(KB) * KB);
        // A block may hold the last tile rows of one image and the first of the next: the
        // input transform runs once per image piece.
        let mut r = self.r0;
        while r < self.r1 {
            let (img, ti) = (r / th, r % th);
            let rows = (th - ti).min(self.r1 - r);
            for ch in 0..c {
                let plane = &self.x[(img * c + ch) * geo.h * geo.w..][..geo.h * geo.w];
                s.transform_in(geo, plane, ti, rows, ch * cols + (r - self.r0) * geo.slots(), c * cols);
            }
            r += rows;
        }
        for xi in 0..16 {
            let v = &s.v[xi * c * cols..][..c * cols];
            let m = &mut s.m[xi * k_rows * cols..][..k_rows * cols];
            match filter.isa.fma_lanes() {
                Some(lanes) => {
                    let taps = [0usize];
                    for kb in 0..k_rows / KB {
                        let run = Run {
                            x: v.as_ptr(),
                            plane: cols,
                            channels: c,
                            taps: &taps,
                            w: filter.u[(xi * k_rows / KB + kb) * c * KB..][..c * KB].as_ptr(),
                            init: [0.0; KB],
                            out: m[kb * KB * cols..][..KB * cols].as_mut_ptr(),
                            out_stride: cols,
                            vectors: cols / lanes,
                        };
                        // Safety: this CPU runs the set (`Isa::runnable`); each of the C rows
                        // of V and the block's 4 rows of M are `cols` long, whole vectors.
                        unsafe { tile::run(filter.isa, &run) };
                    }
                }
                None => {
                    let u = &filter.u[xi * k * c..][..k * c];
                    // Safety: the slices hold a K×C matrix, C×slots and K×slots ones with
                    // rows `cols` apart.
                    unsafe {
                        matrixmultiply::sgemm(
                            k,
                            c,
                            slots,
                            1.0,
                            u.as_ptr(),
                            c as isize,
                            1,
                            v.as_ptr(),
                            cols as isize,
                            1,
                            0.0,
                            m.as_mut_ptr(),
                            cols as isize,
                            1,
                        );
                    }
                }
            }
        }
        for (ch, &b) in self.bias.iter().enumerate() {
            s.transform_out(ch * cols, k_rows * cols, slots, b);
            for (row, r) in (self.r0..self.r1).enumerate() {
                let (img, ti) = (r / th, r % th);
                for dy in 0..2 {
                    let oy = 2 * ti + dy;
                    if oy < geo.out_h {
                        let start = ((img * k + ch) * geo.out_h + oy) * geo.out_w;
                        // Safety: output row `oy` of image `img`, channel `ch` belongs to tile
                        // row `r`, which no other block holds; this is its only live slice.
                        let line = unsafe { std::slice::from_raw_parts_mut(self.out.row(start, geo.out_w), geo.out_w) };
                        s.store(dy, row * geo.slots(), line);
                    }
                }
            }
        }
    }
}

/// The output buffer, shared by blocks that each write their own output rows: a block takes one
/// row at a time as a slice, so no two live slices overlap.
pub(super) struct SharedOut(*mut f32, usize);
// Safety: blocks write disjoint rows (see `Block::run`, `DirectFilter::run_range`,
// `PointwiseFilter::run_chunk`).
unsafe impl Sync for SharedOut {}
impl SharedOut {
    pub(super) fn new(y: &mut [f32]) -> SharedOut {
        SharedOut(y.as_mut_ptr(), y.len())
    }

    /// The start of `len` values at `start`, checked to lie inside the buffer; the caller makes
    /// the slice, and keeps it from overlapping any other live one.
    pub(super) fn row(&self, start: usize, len: usize) -> *mut f32 {
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

/// One block's working memory: transformed inputs `[16][C][cols]`, products
/// `[16][⌈K/4⌉·4][cols]` (`cols`: the block's slots rounded up to whole vectors, `columns`),
/// and the lines of the transforms, each over the block's slots (tile `j` of the block's tile
/// row `i` at `i·(tiles_w+1) + j`). Every value the output is made from is written in the same
/// block before it is read (the products overwrite `m`: β = 0), so reuse needs no clearing. The
/// columns past the slots and the rows past K hold whatever an earlier block left: `tile.rs`'s
/// products read and write them, and nothing reads their products.
#[derive(Default)]
struct Scratch {
    v: Vec<f32>,
    m: Vec<f32>,
    /// Padded input rows `[row parity][column parity]`: padded row `2(ti+i)+p` of a piece at
    /// tile row `ti` is line `i` of plane `p`; column `2j+q` is slot `j` of plane `q`. One line
    /// more than the piece's tile rows, and one zero past the end for the spare slot's read.
    planes: [[Vec<f32>; 2]; 2],
    /// `Bᵀ d` of the planes: `[column parity][row a of the tile]`, one value past the slots.
    rows: [[Vec<f32>; 4]; 2],
    /// `m · A`: `[column 0|1][row a 0..4]`.
    sums: [[Vec<f32>; 4]; 2],
    /// `Aᵀ m A + bias`: `[output row 0|1][column 0|1]`.
    outs: [[Vec<f32>; 2]; 2],
}

/// `dst[j] = op(x[j], y[j])`, eight lanes at a time: fixed-width steps the compiler turns into
/// vector instructions whatever the length (its own loop vectoriser leaves loops shorter than
/// its unrolled width, such as one 16- or 32-tile panel, scalar).
#[inline(always)]
fn zip_into(dst: &mut [f32], x: &[f32], y: &[f32], op: impl Fn(f32, f32) -> f32) {
    let n = dst.len().min(x.len()).min(y.len());
    let (dst, x, y) = (&mut dst[..n], &x[..n], &y[..n]);
    let mut d8 = dst.chunks_exact_mut(8);
    for ((d, a), b) in (&mut d8).zip(x.chunks_exact(8)).zip(y.chunks_exact(8)) {
        for i in 0..8 {
            d[i] = op(a[i], b[i]);
        }
    }
    let tail = n / 8 * 8;
    for ((d, a), b) in d8.into_remainder().iter_mut().zip(&x[tail..]).zip(&y[tail..]) {
        *d = op(*a, *b);
    }
}

/// `dst[j] = op(x[j], y[j], z[j])`, as `zip_into`.
#[inline(always)]
fn zip3_into(dst: &mut [f32], x: &[f32], y: &[f32], z: &[f32], op: impl Fn(f32, f32, f32) -> f32) {
    let n = dst.len().min(x.len()).min(y.len()).min(z.len());
    let (dst, x, y, z) = (&mut dst[..n], &x[..n], &y[..n], &z[..n]);
    let mut d8 = dst.chunks_exact_mut(8);
    for (((d, a), b), c) in (&mut d8).zip(x.chunks_exact(8)).zip(y.chunks_exact(8)).zip(z.chunks_exact(8)) {
        for i in 0..8 {
            d[i] = op(a[i], b[i], c[i]);
        }
    }
    let tail = n / 8 * 8;
    for (((d, a), b), c) in d8.into_remainder().iter_mut().zip(&x[tail..]).zip(&y[tail..]).zip(&z[tail..]) {
        *d = op(*a, *b, *c);
    }
}

/// Splits input row `line` into the even and odd columns of its padded row (`pad_left` zeros
/// before it), into `even` and `odd`, which are cleared first; columns past them are dropped.
#[inline(always)]
fn deinterleave(line: &[f32], pad_left: usize, even: &mut [f32], odd: &mut [f32]) {
    even.fill(0.0);
    odd.fill(0.0);
    let h = pad_left / 2;
    // Input column 2m lands on padded column 2m + pad_left, 2m + 1 on the next one.
    let (first, second, second_at) = if pad_left.is_multiple_of(2) { (even, odd, h) } else { (odd, even, h + 1) };
    let pairs = line.chunks_exact(2);
    if let (Some(&last), Some(slot)) = (pairs.remainder().first(), first.get_mut(h + line.len() / 2)) {
        *slot = last;
    }
    let first = first.iter_mut().skip(h);
    let second = second.iter_mut().skip(second_at);
    for ((pair, a), b) in pairs.zip(first).zip(second) {
        *a = pair[0];
        *b = pair[1];
    }
}

impl Scratch {
    /// Sizes every buffer exactly for a block of `rows` tile rows of `geo` (the lines' lengths
    /// are the loops' bounds), allocating only past the largest block seen.
    fn fit(&mut self, geo: &Geometry, rows: usize) {
        let l = geo.scratch_lengths(rows);
        self.v.resize(l.v, 0.0);
        self.m.resize(l.m, 0.0);
        for plane in self.planes.iter_mut().flatten() {
            plane.resize(l.plane, 0.0);
        }
        for row in self.rows.iter_mut().flatten() {
            row.resize(l.row, 0.0);
        }
        for line in self.sums.iter_mut().flatten().chain(self.outs.iter_mut().flatten()) {
            line.resize(l.line, 0.0);
        }
    }

    /// `Bᵀ d B` for every tile of tile rows `ti..ti + rows` of one channel `plane`, into `v` at
    /// `at + slot`, one `stride` apart per ξ. Bᵀ = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]].
    #[inline(always)]
    fn transform_in(&mut self, geo: &Geometry, plane: &[f32], ti: usize, rows: usize, at: usize, stride: usize) {
        let sl = geo.slots();
        let n = rows * sl;
        for (p, [even, odd]) in self.planes.iter_mut().enumerate() {
            for i in 0..=rows {
                let (even, odd) = (&mut even[i * sl..][..sl], &mut odd[i * sl..][..sl]);
                let iy = (2 * (ti + i) + p) as isize - geo.pad_top as isize;
                match usize::try_from(iy).ok().filter(|&iy| iy < geo.h) {
                    Some(iy) => deinterleave(&plane[iy * geo.w..][..geo.w], geo.pad_left, even, odd),
                    None => {
                        even.fill(0.0);
                        odd.fill(0.0);
                    }
                }
            }
            // The last tile row's spare slot reads one value past the lines: a zero, not what
            // a previous block left there (its products are dropped either way).
            even[(rows + 1) * sl] = 0.0;
            odd[(rows + 1) * sl] = 0.0;
        }
        // Rows first (Bᵀ d): tile row i takes lines i and i + 1 of both row parities, so each
        // step is one loop over the piece, on even and odd columns alike ...
        let [even_rows, odd_rows] = &self.planes;
        for (q, r) in self.rows.iter_mut().enumerate() {
            let (d0, d1) = (&even_rows[q][..=n], &odd_rows[q][..=n]);
            let (d2, d3) = (&even_rows[q][sl..][..=n], &odd_rows[q][sl..][..=n]);
            let [r0, r1, r2, r3] = r;
            zip_into(&mut r0[..=n], d0, d2, |a, b| a - b);
            zip_into(&mut r1[..=n], d1, d2, |a, b| a + b);
            zip_into(&mut r2[..=n], d2, d1, |a, b| a - b);
            zip_into(&mut r3[..=n], d1, d3, |a, b| a - b);
        }
        // ... then columns (· B): tile j's columns are even j, odd j, even j+1, odd j+1. The
        // spare slot takes the next row's first values; its products are dropped.
        let [re, ro] = &self.rows;
        for a in 0..4 {
            let (e0, e1, o0, o1) = (&re[a][..n], &re[a][1..=n], &ro[a][..n], &ro[a][1..=n]);
            let dst = |b: usize| at + (a * 4 + b) * stride..at + (a * 4 + b) * stride + n;
            zip_into(&mut self.v[dst(0)], e0, e1, |a, b| a - b);
            zip_into(&mut self.v[dst(1)], o0, e1, |a, b| a + b);
            zip_into(&mut self.v[dst(2)], e1, o0, |a, b| a - b);
            zip_into(&mut self.v[dst(3)], o0, o1, |a, b| a - b);
        }
    }

    /// `Aᵀ m A + bias` for every slot of one output channel, read from `m` at `at`, one `stride`
    /// apart per ξ, into `outs`. Aᵀ = [[1,1,1,0],[0,1,-1,-1]].
    #[inline(always)]
    fn transform_out(&mut self, at: usize, stride: usize, slots: usize, bias: f32) {
        let m = &self.m;
        // Columns first (m · A) for each of the four rows a ...
        let [left, right] = &mut self.sums;
        for a in 0..4 {
            let m = |b: usize| &m[at + (a * 4 + b) * stride..][..slots];
            zip3_into(&mut left[a], m(0), m(1), m(2), |x, y, z| x + y + z);
            zip3_into(&mut right[a], m(1), m(2), m(3), |x, y, z| x - y - z);
        }
        // ... then rows (Aᵀ ·), with the bias.
        for (col, s) in self.sums.iter().enumerate() {
            zip3_into(&mut self.outs[0][col], &s[0], &s[1], &s[2], |x, y, z| x + y + z + bias);
            zip3_into(&mut self.outs[1][col], &s[1], &s[2], &s[3], |x, y, z| x - y - z + bias);
        }
    }

    /// Output row `dy` (0 or 1) of the tile row at slot `at` that `transform_out` made,
    /// interleaving its tiles' two columns into `line` (an odd width takes the last tile's left
    /// column only).
    #[inline(always)]
    fn store(&self, dy: usize, at: usize, line: &mut [f32]) {
        let [left, right] = &self.outs[dy];
        let (left, right) = (&left[at..], &right[at..]);
        let (pairs, rest) = line.split_at_mut(line.len() / 2 * 2);
        for ((pair, l), r) in pairs.chunks_exact_mut(2).zip(left).zip(right) {
            pair[0] = *l;
            pair[1] = *r;
        }
        if let Some(last) = rest.first_mut() {
            *last = left[pairs.len() / 2];
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::backend::conv::split::each_split;
    use crate::rng::NoiseStream;

    /// The textbook sum, in f64: the reference the transform (and the direct kernel) must match.
    pub(in crate::backend::conv) fn direct_sum(
        geo: &Geometry,
        stride: usize,
        x: &[f32],
        n: usize,
        w: &[f32],
        bias: &[f32],
    ) -> Vec<f64> {
        let mut y = vec![0f64; n * geo.k * geo.out_h * geo.out_w];
        for img in 0..n {
            for k in 0..geo.k {
                for oy in 0..geo.out_h {
                    for ox in 0..geo.out_w {
                        let mut acc = bias[k] as f64;
                        for c in 0..geo.c {
                            for dy in 0..3 {
                                for dx in 0..3 {
                                    let iy = (oy * stride + dy) as isize - geo.pad_top as isize;
                                    let ix = (ox * stride + dx) as isize - geo.pad_left as isize;
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

    fn check(geo: Geometry, n: usize, split: Split) {
        let seed = geo.c as u64 * 31 + geo.h as u64;
        let x = NoiseStream::new(seed, 0).normal(n * geo.c * geo.h * geo.w);
        let w = NoiseStream::new(seed, 1).normal(geo.k * geo.c * 9);
        let bias = NoiseStream::new(seed, 2).normal(geo.k);
        let want = direct_sum(&geo, 1, &x, n, &w, &bias);
        let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
        // Every build of the block this CPU can run, the baseline one included.
        for isa in Isa::runnable() {
            let mut got = vec![f32::NAN; want.len()];
            Filter::with_isa(geo, &w, isa).run(&x, n, &bias, &mut got, split);
            // The output starts as NaN: an unwritten or non-finite value fails here, not in a
            // max that would skip it.
            assert!(got.iter().all(|v| v.is_finite()), "{geo:?} n={n} {isa:?}: non-finite output");
            let worst = got.iter().zip(&want).map(|(g, w)| (*g as f64 - w).abs()).fold(0f64, f64::max);
            // f32 sums of C·9 products: the transform adds a few roundings per tile, well
            // inside 1e-5 of the output's scale; a wrong index is off by O(1).
            assert!(worst <= 1e-5 * scale, "{geo:?} n={n} {isa:?}: max error {worst:e} against scale {scale}");
        }
    }

    pub(in crate::backend::conv) fn same(c: usize, k: usize, h: usize, w: usize) -> Geometry {
        Geometry { c, k, h, w, pad_top: 1, pad_left: 1, out_h: h, out_w: w }
    }

    #[test]
    fn matches_the_direct_sum_on_even_and_odd_maps() {
        for (c, k, h, w) in [(8, 8, 8, 8), (16, 8, 7, 7), (8, 24, 14, 9), (3, 5, 5, 12), (32, 32, 28, 28)] {
            check(same(c, k, h, w), 2, Split::Serial);
        }
    }

    #[test]
    fn matches_without_padding_and_with_one_sided_padding() {
        check(Geometry { c: 8, k: 8, h: 10, w: 9, pad_top: 0, pad_left: 0, out_h: 8, out_w: 7 }, 1, Split::Serial);
        // Asymmetric padding, two before and none after (what a folded Pad can leave).
        check(Geometry { c: 4, k: 6, h: 6, w: 6, pad_top: 2, pad_left: 2, out_h: 6, out_w: 6 }, 1, Split::Serial);
        // One before and none after: odd padding before an odd and an even row.
        check(Geometry { c: 8, k: 8, h: 5, w: 5, pad_top: 1, pad_left: 1, out_h: 4, out_w: 4 }, 2, Split::Serial);
        check(Geometry { c: 8, k: 8, h: 6, w: 6, pad_top: 1, pad_left: 1, out_h: 5, out_w: 5 }, 1, Split::Serial);
        // Rows and columns padded differently (a swap of the two would fail), and odd padding
        // of three.
        check(Geometry { c: 8, k: 8, h: 7, w: 9, pad_top: 0, pad_left: 3, out_h: 5, out_w: 12 }, 1, Split::Serial);
        check(Geometry { c: 8, k: 8, h: 9, w: 7, pad_top: 3, pad_left: 1, out_h: 12, out_w: 7 }, 1, Split::Serial);
    }

    #[test]
    fn stale_values_in_the_scratchs_spare_columns_never_reach_the_output() {
        // The products run over whole vectors of columns, those past the block's slots among
        // them, and over output channels rounded up to 4: what they read or make there is an
        // earlier block's leftovers. Poisoned with NaN, none of it may reach the output.
        let geo = same(16, 13, 9, 9);
        let rows = geo.tiles_h();
        assert!(geo.rows_per_block() >= rows, "one block for the whole map");
        assert!(columns(rows * geo.slots()) > rows * geo.slots(), "spare columns");
        let x = NoiseStream::new(9, 0).normal(geo.c * geo.h * geo.w);
        let w = NoiseStream::new(9, 1).normal(geo.k * geo.c * 9);
        let bias = vec![0.25; geo.k];
        let want = direct_sum(&geo, 1, &x, 1, &w, &bias);
        let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
        for isa in Isa::runnable() {
            SCRATCH.with_borrow_mut(|s| {
                s.fit(&geo, rows);
                s.v.fill(f32::NAN);
                s.m.fill(f32::NAN);
                s.planes.iter_mut().flatten().for_each(|b| b.fill(f32::NAN));
                s.rows.iter_mut().flatten().for_each(|b| b.fill(f32::NAN));
                s.sums.iter_mut().flatten().for_each(|b| b.fill(f32::NAN));
                s.outs.iter_mut().flatten().for_each(|b| b.fill(f32::NAN));
            });
            let mut got = vec![0f32; want.len()];
            Filter::with_isa(geo, &w, isa).run(&x, 1, &bias, &mut got, Split::Serial);
            assert!(got.iter().zip(&want).all(|(g, w)| (*g as f64 - w).abs() <= 1e-5 * scale), "{isa:?}");
        }
    }

    #[test]
    fn blocks_split_over_a_pool_or_a_crew_give_the_same_bits() {
        // 2 images × 16 tile rows: serial, blocks of 15, 15 and 2 rows (the most a block takes:
        // C + K = 256, 17 slots a row); split over 3 threads, blocks of 11, 11 and 10, so the
        // two runs cut the rows in different places.
        let geo = same(64, 192, 32, 32);
        assert_eq!(geo.rows_per_block(), 15);
        assert_eq!((2 * geo.tiles_h()).div_ceil(3), 11);
        let x = NoiseStream::new(5, 0).normal(2 * geo.c * geo.h * geo.w);
        let w = NoiseStream::new(5, 1).normal(geo.k * geo.c * 9);
        let bias = vec![0.5; geo.k];
        each_split(|split| {
            for isa in Isa::runnable() {
                let filter = Filter::with_isa(geo, &w, isa);
                let (mut serial, mut shared) = (vec![0f32; 2 * geo.k * 1024], vec![0f32; 2 * geo.k * 1024]);
                filter.run(&x, 2, &bias, &mut serial, Split::Serial);
                filter.run(&x, 2, &bias, &mut shared, split);
                assert!(serial.iter().zip(&shared).all(|(a, b)| a.to_bits() == b.to_bits()), "{isa:?} {split:?}");
            }
            // Against the direct sum, blocks of 6 tile rows over 2 images of 8: blocks that start
            // mid-image and one that spans both.
            check(same(8, 8, 16, 16), 2, split);
        });
    }
}
