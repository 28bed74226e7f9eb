//! Heights of the semi-discrete OT map (docs/DESIGN.md, "Height solver"): minimise the convex
//! E(h) = E_μ[max_i(⟨x,y_i⟩+h_i)] − Σ ν_i h_i, ν_i = 1/N, whose gradient is g_i = μ(cell_i) − ν_i.
//!
//! Cost is what limits N and D: every sample scored against every target is N·D multiply-adds, and
//! the cell masses must be known to a few percent, which takes O(N/tol²) samples. So the solver
//! scores each sample once and keeps its k best targets (a fit set); iterations then cost M·k,
//! not M·N·D. The candidate lists are exact, not approximate: a target outside a sample's list
//! scored at most the list's k-th score τ under the heights h⁰ the list was built with, so under
//! the current h it scores at most τ + max_j(h_j − h⁰_j); when the list's best beats that bound
//! the argmax is certain, and otherwise the sample is scored again (a refresh). Heights follow
//! Adam on the fit set's exact gradient. The fit set's error is what a fixed sample can resolve:
//! the population masses of cells fitted on M samples scatter by √(N/M) in relative terms, so the
//! solver fits a small set first (cheap, and it puts h close) and then grows the set to the size
//! the tolerance needs. The answer is certified as before, on fresh held-out samples: the RMS
//! relative cell-mass error with the sampling noise removed, plus two standard errors, under the
//! tolerance, and no empty cell. Fit samples are drawn balanced (antithetic pairs, images in
//! turn), held-out ones independently, as the noise correction assumes.

use std::time::Instant;

use brenier::ot::{assign, top_k};
use half::f16;
use rayon::prelude::*;

use super::sampler::{Draw, Sampler, BLOCK};
use crate::error::{ExportError, Result};

/// Sample streams: the fit set, and the held-out samples of each certification.
const FIT: u64 = 0;
const HELDOUT: u64 = 1;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SolveConfig {
    /// The certificate's bound on the RMS relative cell-mass error (0.1: cells within ~10 % of
    /// 1/N). Relative, so one value fits any N.
    pub tol: f32,
    /// Candidate targets kept per fit sample.
    pub candidates: usize,
    /// The first fit set, in samples per target; later sets are sized from the tolerance.
    pub start_per_target: usize,
    /// The largest fit set, in samples per target.
    pub max_per_target: usize,
    /// Adam step as a fraction of the score scale σ (the RMS spread of ⟨x,y_i⟩ + h_i over the
    /// targets at the start, measured on the first samples): heights move by amounts of order σ
    /// (~30 for 784-D diffusion latents, ~1 for 2-D toys).
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    /// Iterations on one fit set at most, and without the fit error improving before the step
    /// shrinks (by 0.7).
    pub max_iters: usize,
    pub patience: usize,
    /// Held-out samples of a certification, as a multiple of the fewest that can resolve the
    /// tolerance (8·√(2N)/tol²: then the two-standard-error margin is tol²/4).
    pub heldout_factor: f32,
    pub seed: u64,
}

impl Default for SolveConfig {
    fn default() -> Self {
        SolveConfig {
            tol: 0.1,
            candidates: 32,
            start_per_target: 16,
            max_per_target: 512,
            lr: 0.02,
            beta1: 0.9,
            beta2: 0.999,
            max_iters: 1500,
            patience: 50,
            heldout_factor: 2.0,
            seed: 0,
        }
    }
}

/// The held-out check of a solution.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Certificate {
    pub tol: f32,
    /// RMS relative cell-mass error on the held-out samples with their sampling noise removed,
    /// and the two-standard-error margin added to it before the comparison with `tol`.
    pub rms_rel_mass_err: f32,
    pub margin: f32,
    /// max_i |N·mass_i − 1| on the held-out samples (noise included: binomial noise alone is
    /// √(N/samples) in RMS).
    pub max_rel_mass_err: f32,
    pub empty_cells: usize,
    pub samples: usize,
    pub passed: bool,
}

/// One fit set's work.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Round {
    pub fit_samples: usize,
    pub iterations: usize,
    /// RMS relative cell-mass error on the fit set at the end (exact: no sampling noise).
    pub fit_mass_err: f32,
    /// Samples scored again because their candidate list could no longer certify the argmax.
    pub refreshed: usize,
    pub certificate: Option<Certificate>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SolveReport {
    pub n: usize,
    pub d: usize,
    pub source: String,
    pub converged: bool,
    pub certificate: Certificate,
    pub rounds: Vec<Round>,
    /// Fit-set RMS relative cell-mass error per iteration, across rounds (the convergence trace).
    pub mass_err: Vec<f32>,
    pub score_scale: f32,
    /// Multiply-adds spent scoring samples against every target (fit, refreshes, held-out):
    /// the cost that grows as N·D.
    pub full_score_madds: f64,
    pub seconds: f64,
}

/// One iteration's numbers, for progress reporting; at the end of each fit set's round also the
/// heights reached, for a checkpoint (a resumed solve starts from them).
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    pub round: usize,
    pub iter: usize,
    pub fit_samples: usize,
    pub fit_mass_err: f32,
    pub empty: usize,
    pub heights: Option<&'a [f32]>,
}

/// The fit set: per sample its k candidate targets with ⟨x,y⟩ (heights removed), the k-th score
/// under the heights the list was built with, and which heights those were.
struct FitSet {
    k: usize,
    index: Vec<u32>,
    base: Vec<f32>,
    kth: Vec<f32>,
    snapshot: Vec<u32>,
    snapshots: Vec<Vec<f32>>,
}

impl FitSet {
    fn rows(&self) -> usize {
        self.kth.len()
    }

    /// Scores `x` (rows of D) against every target under `h` and stores their lists at
    /// `rows` (appended when `rows` is None).
    fn build(&mut self, x: &[f32], d: usize, targets: &[f16], h: &[f32], rows: Option<&[usize]>) -> Result<()> {
        let top = top_k(x, d, targets, h, self.k)?;
        let n = h.len();
        let snap = self.snapshots.len() as u32;
        self.snapshots.push(h.to_vec());
        let k = self.k;
        for j in 0..x.len() / d {
            let (idx, sc) = (&top.index[j * k..(j + 1) * k], &top.score[j * k..(j + 1) * k]);
            // With every target a candidate there is nothing outside the list to fear.
            let kth = if k >= n { f32::NEG_INFINITY } else { sc[k - 1] };
            let base = idx.iter().zip(sc).map(|(&i, &s)| s - h[i as usize]);
            match rows {
                None => {
                    self.index.extend_from_slice(idx);
                    self.base.extend(base);
                    self.kth.push(kth);
                    self.snapshot.push(snap);
                }
                Some(rows) => {
                    let r = rows[j];
                    self.index[r * k..(r + 1) * k].copy_from_slice(idx);
                    self.base.splice(r * k..(r + 1) * k, base);
                    self.kth[r] = kth;
                    self.snapshot[r] = snap;
                }
            }
        }
        Ok(())
    }
}

/// Cell counts and the mean best score of the fit set under `h`, and the rows whose lists could
/// not certify their argmax.
fn count(fit: &FitSet, h: &[f32]) -> (Vec<u64>, f64, Vec<usize>) {
    let n = h.len();
    // How much any target may have gained on a list's k-th score since the list was built.
    let gain: Vec<f32> = fit
        .snapshots
        .par_iter()
        .map(|s| s.iter().zip(h).map(|(a, b)| b - a).fold(f32::NEG_INFINITY, f32::max))
        .collect();
    let k = fit.k;
    const ROWS: usize = 4096;
    let parts: Vec<(Vec<u64>, f64, Vec<usize>)> = (0..fit.rows().div_ceil(ROWS))
        .into_par_iter()
        .map(|c| {
            let mut counts = vec![0u64; n];
            let (mut energy, mut unsure) = (0f64, vec![]);
            for r in c * ROWS..((c + 1) * ROWS).min(fit.rows()) {
                let (idx, base) = (&fit.index[r * k..(r + 1) * k], &fit.base[r * k..(r + 1) * k]);
                let (mut best, mut arg) = (f32::NEG_INFINITY, u32::MAX);
                for (&i, &b) in idx.iter().zip(base) {
                    let s = b + h[i as usize];
                    if s > best || (s == best && i < arg) {
                        (best, arg) = (s, i);
                    }
                }
                if best > fit.kth[r] + gain[fit.snapshot[r] as usize] {
                    counts[arg as usize] += 1;
                    energy += best as f64;
                } else {
                    unsure.push(r);
                }
            }
            (counts, energy, unsure)
        })
        .collect();
    let mut counts = vec![0u64; n];
    let (mut energy, mut unsure) = (0f64, vec![]);
    for (c, e, u) in parts {
        counts.iter_mut().zip(c).for_each(|(a, b)| *a += b);
        energy += e;
        unsure.extend(u);
    }
    (counts, energy, unsure)
}

/// RMS relative cell-mass error √(N·Σ(p_i − 1/N)²) of counts over `total` samples, and the
/// empty cells.
fn mass_error(counts: &[u64], total: usize) -> (f64, usize) {
    let n = counts.len() as f64;
    let g2: f64 = counts.iter().map(|&c| (c as f64 / total as f64 - 1.0 / n).powi(2)).sum();
    ((g2 * n).sqrt(), counts.iter().filter(|&&c| c == 0).count())
}

/// RMS over (up to 64) samples of the standard deviation over targets of ⟨x,y_i⟩ + h_i.
fn score_scale(samples: &[f32], d: usize, targets: &[f16], h: &[f32]) -> f32 {
    let rows: Vec<&[f32]> = samples.chunks(d).take(64).collect();
    let acc: f64 = rows
        .par_iter()
        .map(|x| {
            let s: Vec<f64> = targets
                .chunks(d)
                .zip(h)
                .map(|(y, hi)| y.iter().zip(*x).map(|(a, b)| a.to_f64() * *b as f64).sum::<f64>() + *hi as f64)
                .collect();
            let mean = s.iter().sum::<f64>() / s.len() as f64;
            s.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / s.len() as f64
        })
        .sum();
    let scale = (acc / rows.len().max(1) as f64).sqrt() as f32;
    if scale.is_finite() && scale > 0.0 {
        scale
    } else {
        1.0
    }
}

/// Fit blocks drawn (in parallel) and scored per call: enough to keep every thread busy, about
/// 64 MiB of samples where that is more.
fn blocks_per_batch(d: usize) -> usize {
    let by_memory = (64 << 20) / (BLOCK * d.max(1) * std::mem::size_of::<f32>());
    by_memory.max(rayon::current_num_threads()).max(1)
}

/// The fewest held-out samples whose noise margin (2·√(2N)/n) is a quarter of tol².
pub fn resolving_samples(n: usize, tol: f32) -> usize {
    (8.0 * (2.0 * n as f64).sqrt() / (tol as f64).powi(2)).ceil() as usize
}

/// Checks `h` on `samples` fresh samples of `source` (stream `HELDOUT`, blocks from `first`).
pub fn certify(
    targets: &[f16],
    h: &[f32],
    source: &dyn Sampler,
    samples: usize,
    first_block: u64,
    tol: f32,
) -> Result<Certificate> {
    let (d, n) = (source.dim(), h.len());
    let blocks = samples.div_ceil(BLOCK);
    let parts: Vec<Vec<u64>> = (0..blocks)
        .into_par_iter()
        .map(|b| {
            let rows = BLOCK.min(samples - b * BLOCK);
            let mut x = vec![0f32; rows * d];
            source.fill(HELDOUT, first_block + b as u64, Draw::Independent, &mut x);
            let mut counts = vec![0u64; n];
            for a in assign(&x, d, targets, h)? {
                counts[a.index] += 1;
            }
            Ok(counts)
        })
        .collect::<Result<_>>()?;
    let mut counts = vec![0u64; n];
    for c in parts {
        counts.iter_mut().zip(c).for_each(|(a, b)| *a += b);
    }
    let p: Vec<f64> = counts.iter().map(|&c| c as f64 / samples as f64).collect();
    let nf = n as f64;
    let g2: f64 = p.iter().map(|pi| (pi - 1.0 / nf).powi(2)).sum();
    // E‖ĝ‖² = ‖g‖² + (1 − Σp²)/n for multinomial counts: remove the noise term.
    let noise = (1.0 - p.iter().map(|pi| pi * pi).sum::<f64>()) / samples as f64;
    let err2 = (g2 - noise) * nf;
    let margin = 2.0 * (2.0 * nf).sqrt() / samples as f64;
    let empty = counts.iter().filter(|&&c| c == 0).count();
    Ok(Certificate {
        tol,
        rms_rel_mass_err: err2.max(0.0).sqrt() as f32,
        margin: margin as f32,
        max_rel_mass_err: p.iter().map(|pi| (pi * nf - 1.0).abs()).fold(0.0, f64::max) as f32,
        empty_cells: empty,
        samples,
        passed: err2 + margin < (tol as f64).powi(2) && empty == 0,
    })
}

/// Solves the heights for `targets` (N×D f16) and the source measure `source`, starting from
/// `start` (or the Voronoi heights h_i = −½‖y_i‖², the OT map's own form for the cost ½‖x−y‖²,
/// where h = 0 would hand the long targets most of the mass).
pub fn solve_heights(
    targets: &[f16],
    source: &dyn Sampler,
    cfg: &SolveConfig,
    start: Option<&[f32]>,
    mut progress: impl FnMut(&Progress<'_>),
) -> Result<(Vec<f32>, SolveReport)> {
    let t0 = Instant::now();
    let d = source.dim();
    if d == 0 || targets.is_empty() || !targets.len().is_multiple_of(d) {
        return Err(ExportError::invalid(format!(
            "OT solve: {} target values do not make rows of the source's dimension {d}",
            targets.len()
        )));
    }
    if !(cfg.tol > 0.0 && cfg.tol < 1.0) || cfg.candidates == 0 || cfg.start_per_target == 0 {
        return Err(ExportError::invalid(format!(
            "OT solve: tolerance {} must be in (0, 1), candidates and the first fit set at least 1",
            cfg.tol
        )));
    }
    let n = targets.len() / d;
    let mut h: Vec<f32> = match start {
        Some(s) if s.len() == n => s.to_vec(),
        Some(s) => return Err(ExportError::invalid(format!("OT solve: {} starting heights for {n} targets", s.len()))),
        None => targets.chunks(d).map(|y| -0.5 * y.iter().map(|v| v.to_f32() * v.to_f32()).sum::<f32>()).collect(),
    };
    center(&mut h);
    let mut report = SolveReport { n, d, source: source.describe(), ..SolveReport::default() };
    let madds = |rows: usize| rows as f64 * n as f64 * d as f64;
    let mut fit = FitSet {
        k: cfg.candidates.min(n),
        index: vec![],
        base: vec![],
        kth: vec![],
        snapshot: vec![],
        snapshots: vec![],
    };
    let heldout = (resolving_samples(n, cfg.tol) as f64 * cfg.heldout_factor.max(1.0) as f64).ceil() as usize;
    let tol2 = (cfg.tol as f64).powi(2);
    // Fit to half the tolerance: the rest is the fit set's own sampling error and the margin.
    let fit_target = cfg.tol as f64 / 2.0;
    let (mut m, mut v) = (vec![0f32; n], vec![0f32; n]);
    let mut adam_t = 0i32;
    let mut lr = f32::NAN;
    let mut want = cfg.start_per_target.saturating_mul(n).max(BLOCK);
    let mut heldout_block = 0u64;
    let mut buf = vec![0f32; blocks_per_batch(d) * BLOCK * d];
    loop {
        let round_start = Instant::now();
        // Grow the fit set to `want` samples, whole blocks, listed under the current heights.
        let blocks_have = fit.rows().div_ceil(BLOCK);
        let blocks_want = want.div_ceil(BLOCK);
        let per_batch = blocks_per_batch(d);
        for first in (blocks_have..blocks_want).step_by(per_batch) {
            let blocks = first..(first + per_batch).min(blocks_want);
            let x = &mut buf[..blocks.len() * BLOCK * d];
            x.par_chunks_mut(BLOCK * d)
                .zip(blocks.clone())
                .for_each(|(out, b)| source.fill(FIT, b as u64, Draw::Balanced, out));
            if lr.is_nan() {
                report.score_scale = score_scale(x, d, targets, &h);
                lr = cfg.lr * report.score_scale;
            }
            fit.build(x, d, targets, &h, None)?;
        }
        report.full_score_madds += madds((blocks_want - blocks_have) * BLOCK);
        let rows = fit.rows();
        let mut round = Round { fit_samples: rows, ..Round::default() };
        let (mut best, mut since_best) = (f64::INFINITY, 0usize);
        let mut fit_empty = 0;
        for iter in 0..cfg.max_iters {
            let (mut counts, _, unsure) = count(&fit, &h);
            if !unsure.is_empty() {
                // Score the uncertain rows again under the current heights (the rows are drawn
                // again: samples are not stored).
                round.refreshed += unsure.len();
                report.full_score_madds += madds(unsure.len());
                let mut by_block: Vec<(usize, Vec<usize>)> = vec![];
                for &r in &unsure {
                    match by_block.last_mut() {
                        Some((b, rs)) if *b == r / BLOCK => rs.push(r),
                        _ => by_block.push((r / BLOCK, vec![r])),
                    }
                }
                // Only the uncertain rows are drawn again, each alone, blocks across threads.
                let parts: Vec<Vec<f32>> = by_block
                    .par_iter()
                    .map(|(b, rs)| {
                        let within: Vec<usize> = rs.iter().map(|r| r % BLOCK).collect();
                        let mut x = vec![0f32; rs.len() * d];
                        source.fill_rows(FIT, *b as u64, Draw::Balanced, &within, &mut x);
                        x
                    })
                    .collect();
                fit.build(&parts.concat(), d, targets, &h, Some(&unsure))?;
                for &r in &unsure {
                    // Freshly listed under h: the first candidate is the argmax.
                    counts[fit.index[r * fit.k] as usize] += 1;
                }
            }
            let (err, empty) = mass_error(&counts, rows);
            report.mass_err.push(err as f32);
            round.iterations = iter + 1;
            round.fit_mass_err = err as f32;
            fit_empty = empty;
            progress(&Progress {
                round: report.rounds.len(),
                iter,
                fit_samples: rows,
                fit_mass_err: err as f32,
                empty,
                heights: None,
            });
            if err <= fit_target && empty == 0 {
                break;
            }
            if err < best {
                (best, since_best) = (err, 0);
            } else {
                since_best += 1;
                if since_best >= cfg.patience {
                    lr *= 0.7;
                    (best, since_best) = (f64::INFINITY, 0);
                }
            }
            adam_t += 1;
            let (b1, b2) = (cfg.beta1, cfg.beta2);
            let (c1, c2) = (1.0 - b1.powi(adam_t), 1.0 - b2.powi(adam_t));
            let nu = 1.0 / n as f32;
            for i in 0..n {
                let g = counts[i] as f32 / rows as f32 - nu;
                m[i] = b1 * m[i] + (1.0 - b1) * g;
                v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                h[i] -= lr * (m[i] / c1) / ((v[i] / c2).sqrt() + 1e-12);
            }
            center(&mut h);
        }
        // The held-out error is about fit² + N/M; certify only when that can pass.
        let fit2 = (round.fit_mass_err as f64).powi(2);
        let margin = 2.0 * (2.0 * n as f64).sqrt() / heldout as f64;
        let predicted = fit2 + n as f64 / rows as f64 + margin;
        let cap = cfg.max_per_target.saturating_mul(n);
        if predicted < tol2 || rows >= cap {
            let cert = certify(targets, &h, source, heldout, heldout_block, cfg.tol)?;
            heldout_block += heldout.div_ceil(BLOCK) as u64;
            report.full_score_madds += madds(heldout);
            round.certificate = Some(cert.clone());
            report.certificate = cert;
        }
        round.seconds = round_start.elapsed().as_secs_f64();
        progress(&Progress {
            round: report.rounds.len(),
            iter: round.iterations,
            fit_samples: rows,
            fit_mass_err: round.fit_mass_err,
            empty: fit_empty,
            heights: Some(&h),
        });
        let passed = round.certificate.as_ref().is_some_and(|c| c.passed);
        report.rounds.push(round);
        if passed || rows >= cap {
            report.converged = passed;
            break;
        }
        // The fit set the tolerance needs: N/M within 80 % of what fit² and the margin leave.
        let room = (tol2 - fit2 - margin).max(tol2 / 8.0);
        let needed = (n as f64 / (0.8 * room)).ceil() as usize;
        want = needed.max(rows + rows / 2).min(cap);
    }
    report.seconds = t0.elapsed().as_secs_f64();
    Ok((h, report))
}

fn center(h: &mut [f32]) {
    let mean = h.iter().map(|&x| x as f64).sum::<f64>() / h.len().max(1) as f64;
    h.iter_mut().for_each(|x| *x -= mean as f32);
}

#[cfg(test)]
mod tests {
    use brenier::rng::NoiseStream;

    use super::super::sampler::{FnSampler, Gaussian};
    use super::*;

    fn targets(n: usize, d: usize, seed: u64) -> Vec<f16> {
        NoiseStream::new(seed, 0).normal(n * d).into_iter().map(|v| f16::from_f32(v * 1.5)).collect()
    }

    /// The candidate lists never change an assignment: after lists built under other heights,
    /// with k as small as 2 (so many rows must be refreshed), the fit set's counts equal a brute
    /// force over every target on the same samples.
    #[test]
    fn candidate_lists_count_exactly_what_scoring_every_target_counts() {
        let (n, d) = (300, 6);
        let y = targets(n, d, 1);
        let source = Gaussian { d, seed: 4 };
        for k in [2usize, 8, 300] {
            let mut fit = FitSet { k, index: vec![], base: vec![], kth: vec![], snapshot: vec![], snapshots: vec![] };
            let h0: Vec<f32> = NoiseStream::new(2, 0).normal(n);
            let mut x = vec![0f32; 2 * BLOCK * d];
            source.fill(FIT, 0, Draw::Balanced, &mut x[..BLOCK * d]);
            source.fill(FIT, 1, Draw::Balanced, &mut x[BLOCK * d..]);
            fit.build(&x, d, &y, &h0, None).unwrap();
            // Heights moved by up to ±3 (the score spread is about 4·√6).
            let h: Vec<f32> = h0.iter().zip(NoiseStream::new(3, 0).normal(n)).map(|(a, b)| a + 1.5 * b).collect();
            let (mut counts, _, unsure) = count(&fit, &h);
            if !unsure.is_empty() {
                let rows: Vec<f32> = unsure.iter().flat_map(|&r| x[r * d..(r + 1) * d].to_vec()).collect();
                fit.build(&rows, d, &y, &h, Some(&unsure)).unwrap();
                unsure.iter().for_each(|&r| counts[fit.index[r * fit.k] as usize] += 1);
            }
            let mut brute = vec![0u64; n];
            for a in assign(&x, d, &y, &h).unwrap() {
                brute[a.index] += 1;
            }
            assert_eq!(counts, brute, "k = {k}: {} rows refreshed", unsure.len());
            if k == 2 {
                assert!(!unsure.is_empty(), "k = 2 under moved heights must need refreshes");
            }
            if k == n {
                assert!(unsure.is_empty(), "with every target a candidate nothing is uncertain");
            }
        }
    }

    /// The same inside a whole solve, with lists of 2 so that refreshes happen in every round:
    /// wherever a round ends on its fit error (no step after the last count), the error it
    /// reports equals the error of a brute-force count of the same fit set under the heights
    /// it checkpoints.
    #[test]
    fn a_solves_fit_error_equals_a_brute_force_count_of_its_fit_set() {
        let (n, d) = (200, 8);
        let y = targets(n, d, 5);
        let source = Gaussian { d, seed: 6 };
        let cfg = SolveConfig { tol: 0.15, candidates: 2, ..SolveConfig::default() };
        let mut ends: Vec<(usize, f32, Vec<f32>)> = vec![];
        let (_, report) = solve_heights(&y, &source, &cfg, None, |p| {
            if let Some(h) = p.heights {
                ends.push((p.fit_samples, p.fit_mass_err, h.to_vec()));
            }
        })
        .unwrap();
        assert!(report.rounds.iter().all(|r| r.refreshed > 0), "{:?}", report.rounds);
        let mut checked = 0;
        for ((rows, err, h), round) in ends.iter().zip(&report.rounds) {
            if round.iterations >= cfg.max_iters {
                continue;
            }
            let mut x = vec![0f32; rows * d];
            x.chunks_mut(BLOCK * d).enumerate().for_each(|(b, out)| source.fill(FIT, b as u64, Draw::Balanced, out));
            let mut brute = vec![0u64; n];
            for a in assign(&x, d, &y, h).unwrap() {
                brute[a.index] += 1;
            }
            assert_eq!(*err, mass_error(&brute, *rows).0 as f32, "round of {rows} fit samples");
            checked += 1;
        }
        assert!(checked >= 2, "{checked} rounds ended on their fit error: {:?}", report.rounds);
    }

    /// N(0, I) onto 200 random targets in 8-D: the certificate passes at tol 0.15, and an
    /// independent check on other fresh samples agrees (its own noise is √(N/m) = 0.045).
    #[test]
    fn a_solve_is_certified_and_holds_on_other_samples() {
        let (n, d) = (200, 8);
        let y = targets(n, d, 5);
        let source = Gaussian { d, seed: 6 };
        let cfg = SolveConfig { tol: 0.15, ..SolveConfig::default() };
        let (h, report) = solve_heights(&y, &source, &cfg, None, |_| {}).unwrap();
        assert!(report.converged, "{:?}", report.rounds);
        let c = &report.certificate;
        assert!(c.passed && c.rms_rel_mass_err + c.margin < 0.15 && c.empty_cells == 0, "{c:?}");
        assert!(report.full_score_madds > 0.0 && report.rounds.iter().all(|r| r.fit_samples >= n));
        // An independent check: samples the solver never drew (another seed), 100 000 of them.
        let other = Gaussian { d, seed: 77 };
        let check = certify(&y, &h, &other, 100_000, 0, 0.15).unwrap();
        assert!(check.rms_rel_mass_err < 0.15 + 0.05, "{check:?}");
        // The Voronoi start alone is far from equal cells: the solve did the work.
        let start: Vec<f32> = y.chunks(d).map(|t| -0.5 * t.iter().map(|v| v.to_f32().powi(2)).sum::<f32>()).collect();
        let before = certify(&y, &start, &other, 100_000, 0, 0.15).unwrap();
        assert!(before.rms_rel_mass_err > 0.5, "{before:?}");
    }

    #[test]
    fn bad_inputs_are_refused() {
        let y = targets(10, 4, 1);
        let source = FnSampler { d: 3, f: |_, _, out: &mut [f32]| out.fill(0.0), what: "zeros".into() };
        let e = solve_heights(&y, &source, &SolveConfig::default(), None, |_| {}).unwrap_err().to_string();
        assert!(e.contains("dimension 3"), "{e}");
        let source = Gaussian { d: 4, seed: 0 };
        let e = solve_heights(&y, &source, &SolveConfig { tol: 0.0, ..Default::default() }, None, |_| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("tolerance"), "{e}");
        let e = solve_heights(&y, &source, &SolveConfig::default(), Some(&[0.0; 3]), |_| {}).unwrap_err().to_string();
        assert!(e.contains("3 starting heights for 10 targets"), "{e}");
    }
}
