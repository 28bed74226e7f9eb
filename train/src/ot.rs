//! Solving the OT maps of a bundle on real data (docs/DESIGN.md, "Height solver"): targets are
//! the target domain's training images encoded to T by its own network (DDIM, η = 0); the source
//! measure is fresh forward-noise samples q(x_T | x_0) = √ᾱ_T x_0 + √(1−ᾱ_T) z of the source
//! domain's training images, which are unlimited and cost no network call (a share of encoded
//! source latents can be mixed in: `--latent-share`). The heights come from the runtime's solver,
//! which uses the runtime's assignment kernel.

use anyhow::Result;
use brenier::ot::{assign, solve_heights, SolveConfig, SolveReport};
use brenier::pipeline::{NetTime, Observer};
use brenier::rng::NoiseStream;
use brenier::{Engine, NetKey};
use half::f16;

use crate::data::ImageSet;

/// A solved map with its convergence trace and the held-out check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SolvedMap {
    pub name: String,
    #[serde(skip)]
    pub heights: Vec<f32>,
    #[serde(skip)]
    pub targets: Vec<f32>,
    pub report: SolveReport,
    /// max_i |mass_i − 1/N|·N and its RMS over the cells, on fresh held-out source samples
    /// (binomial noise alone gives an RMS of √(N/heldout_samples)).
    pub heldout_max_rel_mass_err: f32,
    pub heldout_rms_rel_mass_err: f32,
    pub heldout_samples: usize,
}

/// Encodes every image of `set` to step `t` with the domain's network in `steps` DDIM steps.
pub fn encode_all(
    engine: &Engine,
    key: NetKey,
    set: &ImageSet,
    t: usize,
    steps: usize,
    obs: &dyn Observer,
) -> Result<Vec<f32>> {
    let mut x = set.pixels.clone();
    let d = set.image.elems();
    // Encode in chunks so memory stays bounded and progress is visible.
    for chunk in x.chunks_mut(256 * d) {
        engine.encode(key, chunk, t, steps, obs, &mut NetTime::default())?;
    }
    Ok(x)
}

/// Where the solver's source samples come from.
pub enum Source<'a> {
    /// Forward-noise samples of the source domain's clean images at ᾱ_T, with a share
    /// `latent_share` of rows taken from its encoded latents instead. Those latents are atoms:
    /// each puts its whole weight in one cell, so with as many atoms as cells the cell masses
    /// move in lumps of ~1/N·share and the solver plateaus (measured: RMS cell error stuck at
    /// 0.25 with share ½ and 640 atoms for 640 cells). Forward-noise samples follow the same
    /// law p_T continuously and without limit.
    Domain { latents: &'a [f32], clean: &'a ImageSet, alpha_bar: f64, latent_share: f32 },
    /// N(0, I).
    Gaussian,
}

impl Source<'_> {
    fn fill(&self, d: usize, seed: u64, block: u64, out: &mut [f32]) {
        let z = NoiseStream::new(seed, block);
        match self {
            Source::Gaussian => z.fill_normal(out),
            Source::Domain { latents, clean, alpha_bar, latent_share } => {
                let n_lat = latents.len() / d;
                let noise = z.normal(out.len());
                let (sa, sn) = (alpha_bar.sqrt() as f32, (1.0 - alpha_bar).sqrt() as f32);
                for (j, row) in out.chunks_mut(d).enumerate() {
                    // A draw of 0..2²⁰ decides the row's kind, independent of its other draws.
                    let pick = z.index((1 << 40) + j as u64, 1 << 20) as f32 / (1 << 20) as f32;
                    if n_lat > 0 && pick < *latent_share {
                        let i = z.index(j as u64, n_lat);
                        row.copy_from_slice(&latents[i * d..(i + 1) * d]);
                    } else {
                        let x0 = clean.get(z.index(j as u64, clean.len()));
                        row.iter_mut()
                            .zip(x0)
                            .zip(&noise[j * d..(j + 1) * d])
                            .for_each(|((o, x), e)| *o = sa * x + sn * e);
                    }
                }
            }
        }
    }
}

/// Solves one map and checks its cell masses on `heldout` fresh samples.
#[allow(clippy::too_many_arguments)]
pub fn solve_map(
    name: &str,
    targets: Vec<f32>,
    d: usize,
    source: &Source,
    cfg: &SolveConfig,
    seed: u64,
    heldout: usize,
    mut on_iter: impl FnMut(&brenier::ot::IterStats),
) -> Result<SolvedMap> {
    let t16: Vec<f16> = targets.iter().map(|&v| f16::from_f32(v)).collect();
    let (heights, report) =
        solve_heights(&t16, d, |iter, out| source.fill(d, seed, iter as u64, out), cfg, &mut on_iter)?;
    let n = heights.len();
    let mut counts = vec![0usize; n];
    let mut buf = vec![0f32; 4096 * d];
    let mut done = 0;
    let mut block = 0u64;
    while done < heldout {
        let b = 4096.min(heldout - done);
        // Held-out samples use a different seed stream from every solver iteration.
        source.fill(d, seed.wrapping_add(0x4E1D), (1 << 40) + block, &mut buf[..b * d]);
        assign(&buf[..b * d], d, &t16, &heights)?.iter().for_each(|a| counts[a.index] += 1);
        done += b;
        block += 1;
    }
    let rel: Vec<f32> = counts.iter().map(|&c| (c as f32 / heldout as f32 * n as f32 - 1.0).abs()).collect();
    let err = rel.iter().copied().fold(0f32, f32::max);
    let rms = (rel.iter().map(|e| e * e).sum::<f32>() / n.max(1) as f32).sqrt();
    Ok(SolvedMap {
        name: name.into(),
        heights,
        targets,
        report,
        heldout_max_rel_mass_err: err,
        heldout_rms_rel_mass_err: rms,
        heldout_samples: heldout,
    })
}
