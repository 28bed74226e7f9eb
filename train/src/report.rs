//! The demo bundle's quality report (assets/demo-report.json): translations A→B by DDIB and
//! OT-ALD (hard and soft map) and generation by DPM-OT against plain DDIM, scored with the
//! exported classifier on the test split, which neither the networks nor the OT maps saw.

use anyhow::Result;
use brenier::pipeline::{GenerateMethod, GenerateOptions, NetTime, Observer, TranslateMethod, TranslateOptions};
use brenier::rng::NoiseStream;
use brenier::{Engine, NetKey};
use half::f16;

use brenier_calibration::classify::{evaluate, ClassifierRunner, Quality};
use brenier_calibration::metrics::{rms, ssim};

/// What to run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ReportConfig {
    /// Encode time and steps of the few-step rows (the long DDIB row runs T = 999, K = 100).
    pub t: usize,
    pub steps: usize,
    pub long_t: usize,
    pub long_steps: usize,
    /// Soft-map temperature.
    pub tau: f32,
    pub gen_nfe: usize,
    pub gen_ddim_steps: usize,
    pub gen_count: usize,
    pub seed: u64,
    /// Source images whose per-image results are recorded so a test can recompute them.
    pub subset: usize,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            t: 500,
            steps: 25,
            long_t: 999,
            long_steps: 100,
            tau: 1.0,
            gen_nfe: 10,
            gen_ddim_steps: 100,
            gen_count: 128,
            seed: 0,
            subset: 4,
        }
    }
}

/// The images a report is computed on.
pub struct ReportData<'a> {
    /// Held-out source-domain images (test split) to translate.
    pub sources: &'a [f32],
    /// Held-out target-domain images (test split): the Fréchet reference.
    pub target_test: &'a [f32],
    /// The target domain's training images: how close outputs come to a training image.
    pub target_train: &'a [f32],
    pub source_class: usize,
    pub target_class: usize,
}

/// One translation method's figures.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TranslationRow {
    pub method: String,
    pub t: usize,
    pub steps: usize,
    pub tau: Option<f32>,
    /// Network evaluations per image for A→B.
    pub nfe: usize,
    pub ms_per_image: f64,
    pub quality: Quality,
    /// A→B→A with the same method: RMS and SSIM of the round trip to the source.
    pub cycle_rms: f64,
    pub cycle_ssim: f64,
    /// Mean distance (L2, latent space) from the mapped latent to its nearest OT target: 0 for
    /// the hard map, which returns stored targets; None without a map.
    pub latent_nearest_target: Option<f64>,
    /// Mean RMS from each output to its nearest training image of the target domain.
    pub nearest_train_rms: f64,
    /// Distinct outputs among the sources (bit-identical outputs counted once); absent in
    /// reports written before it was measured.
    #[serde(default)]
    pub distinct_outputs: Option<usize>,
    /// Per-image results of the first `config.subset` sources, for the recompute test.
    pub subset: SubsetRecord,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GenerationRow {
    pub method: String,
    pub nfe: usize,
    pub ms_per_image: f64,
    pub quality: Quality,
    pub nearest_train_rms: f64,
    /// Distinct images among the outputs (absent in reports written before it was measured).
    #[serde(default)]
    pub distinct_outputs: Option<usize>,
    /// Per-image results of the first `config.subset` samples, for the recompute test.
    pub subset: SubsetRecord,
}

/// Per-image results of a row's first images, recorded so a test can recompute them from the
/// committed bundle (train/tests/demo_report.rs): every row's figures come from these outputs.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SubsetRecord {
    /// OT target per image (hard map rows only).
    #[serde(default)]
    pub assignments: Vec<usize>,
    /// The classifier's class per output.
    pub predicted: Vec<usize>,
    /// RMS from each output to its source (translation rows only).
    #[serde(default)]
    pub rms_to_source: Vec<f64>,
    /// Mean value of each output, model units.
    pub mean: Vec<f64>,
}

/// The first `k` outputs' per-image record.
fn subset(
    runner: &ClassifierRunner,
    out: &[f32],
    sources: Option<&[f32]>,
    assign: &[usize],
    k: usize,
    d: usize,
) -> Result<SubsetRecord> {
    let k = k.min(out.len() / d);
    let (_, _, predicted) = runner.run(&out[..k * d])?;
    let image = |i: usize| &out[i * d..(i + 1) * d];
    Ok(SubsetRecord {
        assignments: assign.iter().take(k).copied().collect(),
        predicted,
        rms_to_source: sources.map_or(vec![], |s| (0..k).map(|i| rms(&s[i * d..(i + 1) * d], image(i))).collect()),
        mean: (0..k).map(|i| image(i).iter().map(|&v| v as f64).sum::<f64>() / d as f64).collect(),
    })
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub bundle: String,
    pub config: ReportConfig,
    pub sources: usize,
    pub source_class: usize,
    pub target_class: usize,
    /// Real target-domain training images (as many as the outputs), scored like the outputs
    /// against the held-out reference: the floor the Fréchet distance can reach at this count.
    pub real_targets: Quality,
    pub translation: Vec<TranslationRow>,
    pub generation: Vec<GenerationRow>,
}

/// Runs every row. `progress` names the stage being computed.
pub fn build_report(
    engine: &Engine,
    runner: &ClassifierRunner,
    data: &ReportData,
    cfg: &ReportConfig,
    obs: &dyn Observer,
    progress: &dyn Fn(&str),
) -> Result<Report> {
    let d = engine.dim();
    let count = data.sources.len() / d;
    let train16: Vec<f16> = data.target_train.iter().map(|&v| f16::from_f32(v)).collect();
    let nearest_train = |x: &[f32]| nearest_train_rms(x, d, &train16);
    // The floor each metric can reach with this many samples: real training images of the
    // target domain, scored against the same held-out reference.
    let floor = (count.max(cfg.gen_count) * d).min(data.target_train.len());
    let real_targets = evaluate(runner, &data.target_train[..floor], None, data.target_test, data.target_class)?;
    let mut rows = vec![
        ("DDIB", TranslateMethod::Ddib, cfg.long_t, cfg.long_steps, None),
        ("DDIB", TranslateMethod::Ddib, cfg.t, cfg.steps, None),
        ("OT-ALD", TranslateMethod::OtAld, cfg.t, cfg.steps, None),
        ("OT-ALD soft", TranslateMethod::OtAld, cfg.t, cfg.steps, Some(cfg.tau)),
    ];
    // The neural map's row, where the bundle has one each way at T (the cycle needs both).
    let m = engine.bundle().manifest();
    if m.find_neural_map(NetKey::A, Some(cfg.t)).is_some() && m.find_neural_map(NetKey::B, Some(cfg.t)).is_some() {
        rows.push(("neural OT", TranslateMethod::NeuralOt, cfg.t, cfg.steps, None));
    }
    let mut translation = vec![];
    for (name, method, t, steps, tau) in rows {
        progress(&format!("{name} T={t} K={steps}"));
        translation.push(translation_row(
            engine,
            runner,
            data,
            &Row { name, method, t, steps, tau, seed: cfg.seed, subset: cfg.subset },
            obs,
            &nearest_train,
        )?);
    }

    let mut generation = vec![];
    progress(&format!("DPM-OT {} NFE", cfg.gen_nfe));
    generation.push(dpm_ot_row(
        engine,
        runner,
        data,
        cfg.gen_count,
        cfg.gen_nfe,
        cfg.seed,
        cfg.subset,
        obs,
        &nearest_train,
    )?);
    progress(&format!("DDIM {} steps from noise", cfg.gen_ddim_steps));
    let last = engine.schedule().n_train() - 1;
    let mut x = NoiseStream::new(cfg.seed, u64::MAX).normal(cfg.gen_count * d);
    let mut time = NetTime::default();
    engine.decode(NetKey::B, &mut x, last, cfg.gen_ddim_steps, 0.0, cfg.seed, obs, &mut time)?;
    generation.push(GenerationRow {
        method: format!("DDIM from N(0, I) at t={last}"),
        nfe: time.nfe,
        ms_per_image: 1e3 * time.seconds / cfg.gen_count as f64,
        quality: evaluate(runner, &x, None, data.target_test, data.target_class)?,
        nearest_train_rms: nearest_train(&x)?,
        distinct_outputs: Some(distinct_images(&x, d)),
        subset: subset(runner, &x, None, &[], cfg.subset, d)?,
    });

    Ok(Report {
        bundle: engine.bundle().path().file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
        config: cfg.clone(),
        sources: count,
        source_class: data.source_class,
        target_class: data.target_class,
        real_targets,
        translation,
        generation,
    })
}

/// Mean RMS from each image of `x` to its nearest image in `train` (f16, as OT targets are kept).
pub fn nearest_train_rms(x: &[f32], d: usize, train: &[f16]) -> Result<f64> {
    let near = brenier::ot::nearest_target(x, d, train)?;
    Ok(near.iter().map(|(_, r)| *r as f64 / (d as f64).sqrt()).sum::<f64>() / near.len().max(1) as f64)
}

/// DPM-OT generation into domain b: `count` images in `nfe` network evaluations, scored.
#[allow(clippy::too_many_arguments)]
pub fn dpm_ot_row(
    engine: &Engine,
    runner: &ClassifierRunner,
    data: &ReportData,
    count: usize,
    nfe: usize,
    seed: u64,
    subset_len: usize,
    obs: &dyn Observer,
    nearest_train: &dyn Fn(&[f32]) -> Result<f64>,
) -> Result<GenerationRow> {
    let g = engine.generate(
        &GenerateOptions { method: GenerateMethod::DpmOt, domain: NetKey::B, count, nfe, eta: 0.0, tau: None, seed },
        obs,
    )?;
    Ok(GenerationRow {
        method: format!("DPM-OT (noise→latents at t={}, then DDIM)", g.t),
        nfe: g.nfe,
        ms_per_image: 1e3 * g.decode.seconds / count as f64,
        quality: evaluate(runner, &g.images, None, data.target_test, data.target_class)?,
        nearest_train_rms: nearest_train(&g.images)?,
        distinct_outputs: Some(distinct_images(&g.images, engine.dim())),
        subset: subset(runner, &g.images, None, &g.map.assignments, subset_len, engine.dim())?,
    })
}

/// One translation row's settings.
pub struct Row<'a> {
    pub name: &'a str,
    pub method: TranslateMethod,
    pub t: usize,
    pub steps: usize,
    pub tau: Option<f32>,
    pub seed: u64,
    pub subset: usize,
}

/// Distinct images among `out` (bit-identical ones counted once): a hard OT map sends every
/// source in one cell to the same target latent, and a deterministic decoder then repeats it.
pub fn distinct_images(out: &[f32], d: usize) -> usize {
    let mut seen: Vec<Vec<u32>> = out.chunks(d).map(|x| x.iter().map(|v| v.to_bits()).collect()).collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

/// Translates `data.sources` A→B with one method and scores the outputs (and the B→A round trip).
pub fn translation_row(
    engine: &Engine,
    runner: &ClassifierRunner,
    data: &ReportData,
    row: &Row,
    obs: &dyn Observer,
    nearest_train: &dyn Fn(&[f32]) -> Result<f64>,
) -> Result<TranslationRow> {
    let d = engine.dim();
    let count = data.sources.len() / d;
    let &Row { name, method, t, steps, tau, seed, .. } = row;
    let opts = |from| TranslateOptions { method, from, t: Some(t), steps: Some(steps), eta: None, tau, seed };
    let fwd = engine.translate(data.sources, &opts(NetKey::A), obs)?;
    let back = engine.translate(&fwd.images, &opts(NetKey::B), obs)?;
    let quality = evaluate(runner, &fwd.images, Some(data.sources), data.target_test, data.target_class)?;
    let pairs = || data.sources.chunks(d).zip(back.images.chunks(d));
    let side = engine.bundle().manifest().image.height;
    let assignments = fwd.map.as_ref().map_or(&[][..], |m| &m.assignments[..]);
    let subset = subset(runner, &fwd.images, Some(data.sources), assignments, row.subset, d)?;
    Ok(TranslationRow {
        method: name.into(),
        t,
        steps,
        tau,
        nfe: fwd.nfe,
        // The map's own time counts too: a neural map is one more network evaluation.
        ms_per_image: 1e3 * (fwd.encode.seconds + fwd.decode.seconds + fwd.map.as_ref().map_or(0.0, |m| m.seconds))
            / count as f64,
        quality,
        cycle_rms: pairs().map(|(a, b)| rms(a, b)).sum::<f64>() / count as f64,
        cycle_ssim: pairs().map(|(a, b)| ssim(a, b, side, side, 2.0)).sum::<f64>() / count as f64,
        latent_nearest_target: fwd.map.as_ref().filter(|m| !m.nearest_target_distance.is_empty()).map(|m| {
            m.nearest_target_distance.iter().map(|&v| v as f64).sum::<f64>()
                / m.nearest_target_distance.len().max(1) as f64
        }),
        nearest_train_rms: nearest_train(&fwd.images)?,
        distinct_outputs: Some(distinct_images(&fwd.images, d)),
        subset,
    })
}

/// The report as a Markdown table, for the README and the closing note.
pub fn markdown(r: &Report) -> String {
    let mut s = String::from(
        "| method | T | K | NFE | ms/img | target acc | Fréchet | SSIM to src | RMS to src | cycle RMS | latent→nearest target | RMS→nearest train | distinct outputs |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for row in &r.translation {
        let name = match row.tau {
            Some(tau) => format!("{} (τ={tau})", row.method),
            None => row.method.clone(),
        };
        s += &format!(
            "| {name} | {} | {} | {} | {:.1} | {:.3} | {:.2} | {:.3} | {:.3} | {:.3} | {} | {:.3} | {} |\n",
            row.t,
            row.steps,
            row.nfe,
            row.ms_per_image,
            row.quality.target_accuracy,
            row.quality.frechet,
            row.quality.ssim_to_source.unwrap_or(f64::NAN),
            row.quality.rms_to_source.unwrap_or(f64::NAN),
            row.cycle_rms,
            row.latent_nearest_target.map_or("—".into(), |v| format!("{v:.2}")),
            row.nearest_train_rms,
            row.distinct_outputs.map_or("—".into(), |n| format!("{n}/{}", r.sources)),
        );
    }
    s += &format!(
        "\n| generation | NFE | ms/img | target acc | Fréchet | RMS→nearest train | distinct outputs |\n|---|---|---|---|---|---|---|\n| real training images | — | — | {:.3} | {:.2} | — | — |\n",
        r.real_targets.target_accuracy, r.real_targets.frechet
    );
    for g in &r.generation {
        s += &format!(
            "| {} | {} | {:.1} | {:.3} | {:.2} | {:.3} | {} |\n",
            g.method,
            g.nfe,
            g.ms_per_image,
            g.quality.target_accuracy,
            g.quality.frechet,
            g.nearest_train_rms,
            g.distinct_outputs.map_or("—".into(), |n| format!("{n}/{}", r.config.gen_count)),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::distinct_images;

    #[test]
    fn distinct_images_counts_bit_identical_images_once() {
        let (a, b) = ([0.5f32, -1.0, 0.25], [0.5f32, -1.0, 0.2500001]);
        let set: Vec<f32> = [a, b, a, a, b].concat();
        assert_eq!(distinct_images(&set, 3), 2);
        assert_eq!(distinct_images(&a, 3), 1);
        // The same image in another order of pixels is another image.
        assert_eq!(distinct_images(&[a, [0.25, -1.0, 0.5]].concat(), 3), 2);
        assert_eq!(distinct_images(&[], 3), 0);
    }
}
