//! The semi-discrete OT map (Brenier): M(x) = y_{i*}, i* = argmax_i ⟨x, y_i⟩ + h_i, and its
//! entropic soft version M_τ(x) = Σ softmax_i((⟨x,y_i⟩+h_i)/τ) y_i.
//!
//! The targets stay f16 in the bundle mapping. Each tile of targets is widened to f32 into a
//! small per-task buffer and multiplied against all queries with an sgemm (`Y_tile · Xᵀ`), then
//! a running argmax keeps the best score per query. Tiles are fixed-size and the reduction breaks
//! ties by the lowest index, so results do not depend on the thread count.

use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

use crate::error::{Error, Result};

/// Targets per tile: one tile widened to f32 is TILE·D·4 bytes (192 KiB at D = 784).
const TILE: usize = 64;
/// Targets per parallel task (a whole number of tiles).
const CHUNK: usize = 16 * TILE;

/// Result of the hard map for one query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assignment {
    pub index: usize,
    /// ⟨x, y_i⟩ + h_i of the winning target.
    pub score: f32,
}

fn better(a: Assignment, b: Assignment) -> Assignment {
    // Ties go to the lower index so any reduction order gives the same answer.
    if b.score > a.score || (b.score == a.score && b.index < a.index) {
        b
    } else {
        a
    }
}

/// The batch size and target count of an OT map call, or the typed error every backend returns.
pub fn check_shapes(queries: &[f32], d: usize, targets: &[f16], heights: &[f32]) -> Result<(usize, usize)> {
    let n = heights.len();
    if d == 0 || !queries.len().is_multiple_of(d) || targets.len() != n * d || n == 0 {
        return Err(Error::InvalidArgument(format!(
            "OT map shapes: {} query values, dimension {d}, {} target values, {n} heights",
            queries.len(),
            targets.len()
        )));
    }
    Ok((queries.len() / d, n))
}

/// Scores `Y[range]·Xᵀ + h[range]` tile by tile, calling `visit(target_index, scores_for_each_query)`.
fn for_each_scored_tile(
    queries: &[f32],
    d: usize,
    targets: &[f16],
    heights: &[f32],
    range: std::ops::Range<usize>,
    mut visit: impl FnMut(usize, &[f32]),
) {
    let b = queries.len() / d;
    let mut tile = vec![0f32; TILE * d];
    let mut scores = vec![0f32; TILE * b];
    let mut start = range.start;
    while start < range.end {
        let rows = TILE.min(range.end - start);
        targets[start * d..(start + rows) * d].convert_to_f32_slice(&mut tile[..rows * d]);
        // SAFETY: all pointers cover the stated extents: tile is rows×d (row stride d), queries
        // is b×d read as d×b via strides, scores is rows×b.
        unsafe {
            matrixmultiply::sgemm(
                rows,
                d,
                b,
                1.0,
                tile.as_ptr(),
                d as isize,
                1,
                queries.as_ptr(),
                1,
                d as isize,
                0.0,
                scores.as_mut_ptr(),
                b as isize,
                1,
            );
        }
        for r in 0..rows {
            let row = &mut scores[r * b..(r + 1) * b];
            let h = heights[start + r];
            row.iter_mut().for_each(|s| *s += h);
            visit(start + r, row);
        }
        start += rows;
    }
}

fn chunks(n: usize) -> impl ParallelIterator<Item = std::ops::Range<usize>> {
    (0..n.div_ceil(CHUNK)).into_par_iter().map(move |c| c * CHUNK..((c + 1) * CHUNK).min(n))
}

/// Queries per parallel block: large batches split over queries as well as targets, so a map
/// with few targets still uses every core.
const QUERY_BLOCK: usize = 256;

/// Hard OT map assignment for a batch of queries (`queries` is B×D row-major).
pub fn assign(queries: &[f32], d: usize, targets: &[f16], heights: &[f32]) -> Result<Vec<Assignment>> {
    let (b, n) = check_shapes(queries, d, targets, heights)?;
    let blocks: Vec<Vec<Assignment>> =
        queries.par_chunks(QUERY_BLOCK * d).map(|q| assign_block(q, d, targets, heights, n)).collect();
    let best: Vec<Assignment> = blocks.into_iter().flatten().collect();
    debug_assert_eq!(best.len(), b);
    if let Some(q) = best.iter().position(|a| a.index == usize::MAX) {
        return Err(Error::NonFinite {
            what: "OT map query".into(),
            index: q,
            context: " (every score was NaN: the latent or the heights are not finite)".into(),
        });
    }
    Ok(best)
}

fn assign_block(queries: &[f32], d: usize, targets: &[f16], heights: &[f32], n: usize) -> Vec<Assignment> {
    let b = queries.len() / d;
    let none = Assignment { index: usize::MAX, score: f32::NEG_INFINITY };
    chunks(n)
        .map(|range| {
            let mut best = vec![none; b];
            for_each_scored_tile(queries, d, targets, heights, range, |i, row| {
                for (q, &s) in row.iter().enumerate() {
                    best[q] = better(best[q], Assignment { index: i, score: s });
                }
            });
            best
        })
        .reduce(|| vec![none; b], |x, y| x.into_iter().zip(y).map(|(a, b)| better(a, b)).collect())
}

/// The `k` best targets of each query, best first: what the height solver keeps per sample so its
/// iterations need not score every target again (export's `ot::solver`).
#[derive(Debug, Clone, PartialEq)]
pub struct TopK {
    pub k: usize,
    /// Target indices, query-major (query q's are `index[q*k..(q+1)*k]`), best first.
    pub index: Vec<u32>,
    /// ⟨x, y_i⟩ + h_i of those targets, in the same order.
    pub score: Vec<f32>,
}

/// The `k` (at most N) highest ⟨x, y_i⟩ + h_i of each query (`queries` is B×D), best first, ties
/// to the lower index. Queries are split across the threads in blocks; each block scores every
/// target tile by tile with the same sgemm as [`assign`] and keeps a sorted list per query.
pub fn top_k(queries: &[f32], d: usize, targets: &[f16], heights: &[f32], k: usize) -> Result<TopK> {
    let (_, n) = check_shapes(queries, d, targets, heights)?;
    let k = k.clamp(1, n);
    let blocks: Vec<(Vec<u32>, Vec<f32>)> = queries
        .par_chunks(QUERY_BLOCK * d)
        .map(|q| {
            let b = q.len() / d;
            let mut index = vec![u32::MAX; b * k];
            let mut score = vec![f32::NEG_INFINITY; b * k];
            for_each_scored_tile(q, d, targets, heights, 0..n, |i, row| {
                for (j, &s) in row.iter().enumerate() {
                    // NaN never enters; a tie with the last kept score keeps the lower index.
                    if s.partial_cmp(&score[j * k + k - 1]) != Some(std::cmp::Ordering::Greater) {
                        continue;
                    }
                    let (idx, sc) = (&mut index[j * k..(j + 1) * k], &mut score[j * k..(j + 1) * k]);
                    let mut at = k - 1;
                    while at > 0 && s > sc[at - 1] {
                        sc[at] = sc[at - 1];
                        idx[at] = idx[at - 1];
                        at -= 1;
                    }
                    sc[at] = s;
                    idx[at] = i as u32;
                }
            });
            (index, score)
        })
        .collect();
    let mut out = TopK { k, index: Vec::with_capacity(queries.len() / d * k), score: vec![] };
    out.score.reserve(out.index.capacity());
    for (index, score) in blocks {
        out.index.extend(index);
        out.score.extend(score);
    }
    if let Some(q) = out.index.chunks(k).position(|c| c[0] == u32::MAX) {
        return Err(Error::NonFinite {
            what: "OT map query".into(),
            index: q,
            context: " (every score was NaN: the latent or the heights are not finite)".into(),
        });
    }
    Ok(out)
}

/// Applies the hard map: writes y_{i*} (as f32) for each query. Returns the assignments.
pub fn hard_map(queries: &[f32], d: usize, targets: &[f16], heights: &[f32]) -> Result<(Vec<f32>, Vec<Assignment>)> {
    let a = assign(queries, d, targets, heights)?;
    let mut out = vec![0f32; queries.len()];
    gather_targets(&a, targets, d, &mut out);
    Ok((out, a))
}

/// Writes the assigned target of each row (f16 widened to f32) into that row of `out`
/// (`assignments.len()` rows of `d`): the hard map's last step, whichever backend assigned.
pub fn gather_targets(assignments: &[Assignment], targets: &[f16], d: usize, out: &mut [f32]) {
    for (row, asg) in out.chunks_exact_mut(d).zip(assignments) {
        targets[asg.index * d..(asg.index + 1) * d].convert_to_f32_slice(row);
    }
}

/// Entropic soft map M_τ. `tau` must be positive; as τ → 0 it tends to the hard map.
pub fn soft_map(queries: &[f32], d: usize, targets: &[f16], heights: &[f32], tau: f32) -> Result<Vec<f32>> {
    let (b, n) = check_shapes(queries, d, targets, heights)?;
    if !(tau > 0.0 && tau.is_finite()) {
        return Err(Error::InvalidArgument(format!("soft-map temperature τ = {tau} must be positive")));
    }
    // Scores laid out N×B; each chunk writes its own disjoint rows.
    let mut scores = vec![0f32; n * b];
    scores.par_chunks_mut(CHUNK * b).enumerate().for_each(|(c, out)| {
        let range = c * CHUNK..((c + 1) * CHUNK).min(n);
        let base = range.start;
        for_each_scored_tile(queries, d, targets, heights, range, |i, row| {
            out[(i - base) * b..(i - base + 1) * b].copy_from_slice(row);
        });
    });
    // Softmax over targets per query, max-subtracted so large scores/τ do not overflow.
    let mut weights = vec![0f32; b * n];
    for q in 0..b {
        let max = (0..n).map(|i| scores[i * b + q]).fold(f32::NEG_INFINITY, f32::max);
        if !max.is_finite() {
            return Err(Error::NonFinite { what: "soft OT map query".into(), index: q, context: String::new() });
        }
        let w = &mut weights[q * n..(q + 1) * n];
        let mut sum = 0f64;
        for (i, w) in w.iter_mut().enumerate() {
            *w = ((scores[i * b + q] - max) / tau).exp();
            sum += *w as f64;
        }
        let inv = (1.0 / sum) as f32;
        w.iter_mut().for_each(|w| *w *= inv);
    }
    // out = W·Y, accumulated per chunk then summed in chunk order (deterministic).
    let partials: Vec<Vec<f32>> = chunks(n)
        .map(|range| {
            let mut acc = vec![0f32; b * d];
            let mut tile = vec![0f32; TILE * d];
            let mut start = range.start;
            while start < range.end {
                let rows = TILE.min(range.end - start);
                targets[start * d..(start + rows) * d].convert_to_f32_slice(&mut tile[..rows * d]);
                // SAFETY: weights is b×n (row stride n, offset start), tile rows×d, acc b×d.
                unsafe {
                    matrixmultiply::sgemm(
                        b,
                        rows,
                        d,
                        1.0,
                        weights.as_ptr().add(start),
                        n as isize,
                        1,
                        tile.as_ptr(),
                        d as isize,
                        1,
                        1.0,
                        acc.as_mut_ptr(),
                        d as isize,
                        1,
                    );
                }
                start += rows;
            }
            acc
        })
        .collect();
    let mut out = vec![0f32; b * d];
    for p in partials {
        out.iter_mut().zip(p).for_each(|(o, v)| *o += v);
    }
    Ok(out)
}

/// Distance from each point to its nearest target, with that target's index. Uses the same
/// kernel: argmin ‖p − y‖² = argmax ⟨p, y⟩ − ½‖y‖².
pub fn nearest_target(points: &[f32], d: usize, targets: &[f16]) -> Result<Vec<(usize, f32)>> {
    if d == 0 || !targets.len().is_multiple_of(d) {
        return Err(Error::InvalidArgument(format!("nearest target: dimension {d} does not divide {}", targets.len())));
    }
    let half_norms: Vec<f32> =
        targets.par_chunks(d).map(|y| -0.5 * y.iter().map(|v| v.to_f32() * v.to_f32()).sum::<f32>()).collect();
    let a = assign(points, d, targets, &half_norms)?;
    Ok(points
        .chunks_exact(d)
        .zip(a)
        .map(|(p, a)| {
            let pp: f32 = p.iter().map(|v| v * v).sum();
            (a.index, (pp - 2.0 * a.score).max(0.0).sqrt())
        })
        .collect())
}
