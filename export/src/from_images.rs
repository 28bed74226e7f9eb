//! `brenier export --images-a DIR --images-b DIR`: a bundle with OT maps from a user's two
//! ε-networks and two sets of images, in stages — read and check the images, freeze the networks,
//! make the target latents (DDIM-encoded with the target domain's network, cached and resumable,
//! or forward-noised), solve each map's heights and certify them on held-out samples, write the
//! bundle atomically with each map's solve record in the manifest.

use std::path::{Path, PathBuf};
use std::time::Instant;

use brenier::backend::{BackendKind, Precision};
use brenier::bundle::manifest::{MapDirection, SolveRecord};
use brenier::bundle::{Bundle, Normalization};
use brenier::io::batch::{read_batch, Batch, ReadOptions};
use brenier::pipeline::Observer;
use brenier::rng::NoiseStream;
use brenier::{Engine, NetKey};
use half::f16;

use crate::bundle::{export, ExportSpec, MapInput};
use crate::encode::{encode_cached, fnv1a};
use crate::error::{ExportError, Result};
use crate::ot::{solve_heights, ForwardNoise, Gaussian, Progress, Sampler, SolveConfig, SolveReport};

/// How the OT targets are made from a domain's images. Forward noise is the default: on the
/// demo pair it gives outputs that are not copies of training images, a Fréchet distance 5× lower
/// for translation and no worse for generation, at no network cost; encoded targets keep about
/// twice the SSIM to the source (benches/results/ot-quality.json, docs/DESIGN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetKind {
    /// DDIM-encoded to T with the domain's own network (η = 0): N·K network evaluations.
    /// Decoded with the same network they return their training images.
    Encoded,
    /// Forward-noised to T, q(x_T | x_0) = √ᾱ x_0 + √(1−ᾱ) z: no network cost; decoded, they
    /// need not be copies of training images.
    #[default]
    Forward,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Encoded => "encoded",
            TargetKind::Forward => "forward",
        }
    }
}

impl std::fmt::Display for TargetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TargetKind {
    type Err = ExportError;
    fn from_str(s: &str) -> Result<TargetKind> {
        match s {
            "encoded" => Ok(TargetKind::Encoded),
            "forward" => Ok(TargetKind::Forward),
            other => Err(ExportError::invalid(format!("target kind `{other}`: expected encoded or forward"))),
        }
    }
}

/// Where a domain's images come from.
#[derive(Debug, Clone)]
pub enum Images {
    /// A folder of PNG/JPEG files or a `.npy` [N, C, H, W] in model space (read with
    /// [`ImagesSpec::read`]).
    Path(PathBuf),
    /// Images already in model space (the trainer's data sets).
    Loaded(Batch),
}

impl Images {
    fn describe(&self) -> String {
        match self {
            Images::Path(p) => p.display().to_string(),
            Images::Loaded(b) => format!("{} images given", b.count),
        }
    }
}

/// Everything `export_from_images` needs besides the networks' settings (`base`).
#[derive(Debug, Clone)]
pub struct ImagesSpec {
    /// Images of domain a and of domain b.
    pub images: [Images; 2],
    pub read: ReadOptions,
    pub maps: Vec<MapDirection>,
    /// The maps' time T (default: the bundle's). Maps at another T than the bundle's default are
    /// named `a->b@t250`, so one bundle can carry maps for the T sweep.
    pub t: Option<usize>,
    /// Targets per map (images of the target domain, a seeded choice when there are more).
    pub num_targets: usize,
    pub targets: TargetKind,
    pub encode_steps: usize,
    pub work_dir: PathBuf,
    pub solve: SolveConfig,
    pub backend: BackendKind,
    pub precision: Precision,
    pub threads: usize,
}

/// What an export from images reports besides the bundle: one solve per map.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImagesOutcome {
    pub bundle_bytes: u64,
    pub images: [usize; 2],
    pub skipped: Vec<(PathBuf, String)>,
    pub solves: Vec<(String, SolveReport)>,
    pub seconds: f64,
}

/// Progress of the stages: named stages with steps (as the runtime's observer) and the solver's
/// iterations.
pub trait ExportObserver: Observer {
    fn solve(&self, _map: &str, _p: &Progress) {}
    fn message(&self, _text: &str) {}
}

/// Builds `output` from `base` (networks, settings and any maps already solved, which are kept
/// unless a new map takes their name) and `spec`.
pub fn export_from_images(
    base: &ExportSpec,
    spec: &ImagesSpec,
    output: &Path,
    obs: &dyn ExportObserver,
) -> Result<ImagesOutcome> {
    let t0 = Instant::now();
    if spec.maps.is_empty() {
        return Err(ExportError::invalid("no maps asked for: pass --maps a->b (or b->a, noise->b, noise->a)"));
    }
    if let Some(m) = spec.maps.iter().enumerate().find(|(i, m)| spec.maps[..*i].contains(m)).map(|(_, m)| m) {
        return Err(ExportError::invalid(format!("map {} is asked for twice", m.as_str())));
    }
    if spec.num_targets == 0 {
        return Err(ExportError::invalid("--num-targets must be at least 1"));
    }
    std::fs::create_dir_all(&spec.work_dir)
        .map_err(|e| brenier::Error::Write { path: spec.work_dir.clone(), source: e })?;
    // Stage 1: the networks, frozen and checked, as a DDIB bundle in the work folder: the engine
    // that encodes targets runs exactly the networks the bundle will hold.
    obs.message("checking and freezing the networks");
    let ddib = spec.work_dir.join("ddib.brn");
    let mut ddib_spec = base.clone();
    ddib_spec.maps.clear();
    ddib_spec.neural_maps.clear();
    let (manifest, _) = export(&ddib_spec, &ddib)?;
    let image = manifest.image;
    let norm: Normalization = manifest.normalization;
    // Stage 2: the images.
    let mut skipped = vec![];
    let mut sets = vec![];
    for (key, images) in [NetKey::A, NetKey::B].into_iter().zip(&spec.images) {
        let batch = match images {
            Images::Path(dir) => {
                obs.message(&format!("reading the images of {} from {}", key.as_str(), dir.display()));
                let mut batch = read_batch(dir, image, norm, spec.read)?;
                if !batch.skipped.is_empty() {
                    log::warn!("{}: {} file(s) could not be read and were skipped", dir.display(), batch.skipped.len());
                }
                skipped.append(&mut batch.skipped);
                batch
            }
            Images::Loaded(b) => {
                if b.count == 0 || b.data.len() != b.count * image.elems() {
                    return Err(ExportError::invalid(format!(
                        "domain {}: {} values given for {} images of {}×{}×{}",
                        key.as_str(),
                        b.data.len(),
                        b.count,
                        image.channels,
                        image.height,
                        image.width
                    )));
                }
                b.clone()
            }
        };
        sets.push(batch);
    }
    let (set_a, set_b) = (&sets[0], &sets[1]);
    let set = |k: NetKey| if k == NetKey::A { set_a } else { set_b };
    for &m in &spec.maps {
        let have = set(m.target()).count;
        if have < spec.num_targets {
            return Err(ExportError::invalid(format!(
                "map {} needs {} target images of {} but {} holds {have}; lower --num-targets or add images",
                m.as_str(),
                spec.num_targets,
                m.target().as_str(),
                spec.images[m.target() as usize].describe()
            )));
        }
    }
    let backend = brenier::backend::open(spec.backend, spec.precision, spec.threads)?;
    let engine = Engine::new(Bundle::open(&ddib)?, backend)?;
    let d = image.elems();
    let t = spec.t.unwrap_or(base.t_encode);
    if t >= engine.schedule().n_train() {
        return Err(ExportError::invalid(format!(
            "--t {t} is beyond the schedule's {} train steps",
            engine.schedule().n_train()
        )));
    }
    let ab = engine.schedule().alpha_bar(t as i64);
    // Stage 3: targets per target domain, once each.
    let mut targets: Vec<(NetKey, Vec<f32>, String)> = vec![];
    for &m in &spec.maps {
        let key = m.target();
        if targets.iter().any(|(k, _, _)| *k == key) {
            continue;
        }
        let chosen = choose(&set(key).data, d, spec.num_targets, spec.solve.seed);
        let (latents, how) = match spec.targets {
            TargetKind::Encoded => (
                encode_cached(&engine, key, &chosen, t, spec.encode_steps, &spec.work_dir, obs)?,
                format!(
                    "{} images DDIM-encoded to t = {t} with net {} in {} steps",
                    spec.num_targets,
                    key.as_str(),
                    spec.encode_steps
                ),
            ),
            TargetKind::Forward => {
                let z = NoiseStream::new(spec.solve.seed ^ 0xF0, key as u64).normal(chosen.len());
                (
                    brenier::sched::noise_forward(ab, &chosen, &z),
                    format!("{} images forward-noised to t = {t}", spec.num_targets),
                )
            }
        };
        targets.push((key, latents, how));
    }
    // Stage 4: the heights of each map, certified.
    let mut maps = vec![];
    let mut solves = vec![];
    for &m in &spec.maps {
        let (_, y, how) = targets.iter().find(|(k, _, _)| *k == m.target()).expect("made above");
        let y16: Vec<f16> = y.iter().map(|&v| f16::from_f32(v)).collect();
        let sampler: Box<dyn Sampler + '_> = match m {
            MapDirection::Domain(from) => {
                Box::new(ForwardNoise { images: &set(from).data, d, alpha_bar: ab, seed: spec.solve.seed })
            }
            MapDirection::Noise(_) => Box::new(Gaussian { d, seed: spec.solve.seed }),
        };
        let source = m.source();
        let name = m.name_at(t, base.t_encode);
        obs.message(&format!("solving {name} ({} targets, {})", spec.num_targets, sampler.describe()));
        // The solve checkpoints its heights after each fit set; a rerun of the same solve (same
        // targets, source and seed) starts from the last one.
        let source_bytes: &[u8] = match m {
            MapDirection::Domain(from) => bytemuck::cast_slice(&set(from).data),
            MapDirection::Noise(_) => b"gaussian",
        };
        let key = fnv1a(&[bytemuck::cast_slice(&y16), source_bytes, &ab.to_le_bytes(), &spec.solve.seed.to_le_bytes()]);
        let checkpoint =
            spec.work_dir.join(format!("heights-{}-{key:016x}.npy", name.replace("->", "-").replace('@', "-")));
        let start = read_checkpoint(&checkpoint, spec.num_targets);
        if start.is_some() {
            obs.message(&format!("resuming {name} from the heights in {}", checkpoint.display()));
        }
        let (heights, report) = solve_heights(&y16, sampler.as_ref(), &spec.solve, start.as_deref(), |p| {
            if let Some(h) = p.heights {
                let bytes = brenier::io::npy::encode(&[h.len()], h);
                if let Err(e) = brenier::io::write_atomic(&checkpoint, &bytes) {
                    log::warn!("could not checkpoint the heights of {name}: {e} (the solve goes on)");
                }
            }
            obs.solve(&name, p)
        })?;
        let c = &report.certificate;
        if !report.converged {
            log::warn!(
                "map {name}: not certified (held-out RMS relative cell-mass error {:.3} + margin {:.3} vs tolerance {}); \
                 it is written with its record: raise the fit set (--max-per-target) or loosen --tol",
                c.rms_rel_mass_err,
                c.margin,
                c.tol
            );
        }
        let record = SolveRecord {
            source: sampler.describe(),
            targets: how.clone(),
            tol: c.tol,
            rms_rel_mass_err: c.rms_rel_mass_err,
            margin: c.margin,
            max_rel_mass_err: c.max_rel_mass_err,
            empty_cells: c.empty_cells,
            heldout_samples: c.samples,
            fit_samples: report.rounds.last().map_or(0, |r| r.fit_samples),
            iterations: report.rounds.iter().map(|r| r.iterations).sum(),
            seconds: report.seconds,
            certified: report.converged,
        };
        maps.push(MapInput {
            name: name.clone(),
            source,
            target: m.target(),
            t,
            heights,
            targets: y.clone(),
            solve: Some(record),
        });
        solves.push((name, report));
    }
    // Stage 5: the bundle, from the same networks.
    obs.message(&format!("writing {}", output.display()));
    let mut full = base.clone();
    full.maps.retain(|old| !maps.iter().any(|new| new.name == old.name));
    full.maps.extend(maps);
    let (_, size) = export(&full, output)?;
    Ok(ImagesOutcome {
        bundle_bytes: size,
        images: [set_a.count, set_b.count],
        skipped,
        solves,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// `n` of the images (N₀×D) in a seeded random order when there are more, all of them in order
/// otherwise.
fn choose(images: &[f32], d: usize, n: usize, seed: u64) -> Vec<f32> {
    let total = images.len() / d;
    if n >= total {
        return images.to_vec();
    }
    // A seeded partial Fisher–Yates shuffle of the indices.
    let mut idx: Vec<usize> = (0..total).collect();
    let rng = NoiseStream::new(seed ^ 0xC4, 0);
    for i in 0..n {
        let j = i + rng.index(i as u64, total - i);
        idx.swap(i, j);
    }
    let mut chosen: Vec<usize> = idx[..n].to_vec();
    chosen.sort_unstable();
    chosen.iter().flat_map(|&i| images[i * d..(i + 1) * d].iter().copied()).collect()
}

/// The heights a previous run of the same solve checkpointed, when they are whole and finite.
fn read_checkpoint(path: &Path, n: usize) -> Option<Vec<f32>> {
    let bytes = std::fs::read(path).ok()?;
    match brenier::io::npy::parse(&bytes) {
        Ok(a) if a.shape == [n] && a.data.iter().all(|v| v.is_finite()) => Some(a.data),
        _ => {
            log::warn!("{}: not a checkpoint of {n} finite heights, solving from the start", path.display());
            None
        }
    }
}
