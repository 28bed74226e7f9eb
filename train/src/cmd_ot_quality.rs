//! `brenier-train ot-quality`: OT-ALD against the number of OT targets N and how the targets are
//! made. With few targets a hard OT map is a retrieval: every source in a cell decodes to the same
//! image, close to a training image. More targets, or forward-noised targets (q(x_T|x_0), no
//! network cost, not on the deterministic DDIM path of any training image), should spread the
//! outputs; the study measures whether quality holds while they do.
//!
//! The same for generation: DPM-OT decodes the targets the noise→b map picks.
//!
//! Per (kind, N): the bundle's a→b and noise→b maps are solved again through `brenier-train ot`
//! (the exporter's solver, so each map is certified) into `<work>/<kind>-<N>-<map>.brn` (kept: a
//! rerun reuses them), then OT-ALD translates `--count` held-out sources and DPM-OT generates
//! `--count` images, scored as the report scores them: target accuracy, Fréchet distance, SSIM to
//! the source, distinct outputs, RMS to the nearest training image. Results go to a JSON file
//! (rewritten after each configuration; a rerun keeps what it holds) with plots beside it.

use std::path::PathBuf;

use anyhow::{Context, Result};
use brenier::backend::CpuBackend;
use brenier::bundle::manifest::{MapDirection, SolveRecord};
use brenier::pipeline::{Silent, TranslateMethod};
use brenier::{Bundle, Engine, NetKey};
use brenier_calibration::classify::{evaluate, ClassifierRunner, Quality};
use brenier_calibration::plot::{line_plot, Axes, Series};
use brenier_train::report::{dpm_ot_row, nearest_train_rms, translation_row, GenerationRow, Row, TranslationRow};
use half::f16;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pair: crate::PairArgs,
    /// The evaluation classifier (from `brenier-train classifier`).
    #[arg(long, default_value = "assets/demo.calib/classifier.onnx")]
    classifier: PathBuf,
    /// Target counts to solve (training images of domain b; a seeded choice below all of them).
    #[arg(long, value_delimiter = ',')]
    n: Vec<usize>,
    /// Target kinds: `encoded` (DDIM, --encode-steps) and/or `forward`.
    #[arg(long, value_delimiter = ',', default_values_t = ["encoded".to_string(), "forward".to_string()])]
    kinds: Vec<String>,
    /// Held-out test-split sources translated, and images generated, per configuration.
    #[arg(long, default_value_t = 200)]
    count: usize,
    /// DDIM steps encoding the targets, the OT-ALD decode steps K, and DPM-OT's NFE.
    #[arg(long, default_value_t = 25)]
    encode_steps: usize,
    #[arg(long, default_value_t = 25)]
    steps: usize,
    #[arg(long, default_value_t = 10)]
    nfe: usize,
    #[arg(long, default_value_t = 0.1)]
    tol: f32,
    /// Where the solved bundles and the encoded-target cache are kept.
    #[arg(long, default_value = "out/ot-quality")]
    work_dir: PathBuf,
    /// The results file (plots beside it: `<stem>-frechet.png`, `-ssim.png`, `-copies.png`,
    /// `-distinct.png`).
    #[arg(short, long)]
    output: PathBuf,
}

/// One solved map and what it did.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Measured<R> {
    solve: SolveRecord,
    row: R,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Entry {
    kind: String,
    n: usize,
    /// One map's share of a bundle: N f16 targets and N f32 heights.
    map_bytes: usize,
    translation: Measured<TranslationRow>,
    generation: Measured<GenerationRow>,
}

pub fn run(a: Args) -> Result<()> {
    std::fs::create_dir_all(&a.work_dir).with_context(|| format!("creating {}", a.work_dir.display()))?;
    let source = Bundle::open(&a.pair.bundle)?;
    let (t, d) = (source.manifest().t_encode, source.manifest().image.elems());
    let sets = a.pair.report_sets(a.count)?;
    let data = sets.data();
    let onnx = std::fs::read(&a.classifier).with_context(|| format!("reading {}", a.classifier.display()))?;
    let runner = ClassifierRunner::new(&onnx, source.manifest().image, source.manifest().normalization)?;
    drop(source);
    let train16: Vec<f16> = data.target_train.iter().map(|&v| f16::from_f32(v)).collect();
    let nearest = |x: &[f32]| nearest_train_rms(x, d, &train16);
    // The floor at this count: real training images scored like the outputs.
    let real = evaluate(&runner, &data.target_train[..a.count * d], None, data.target_test, data.target_class)?;

    // Solves the map `dir` for (kind, n) into its own bundle, or reuses the one a previous run
    // left; returns the bundle's engine and the map's solve record.
    let solved = |kind: &str, n: usize, dir: MapDirection, file: &str| -> Result<(Engine, SolveRecord)> {
        // Named by everything that decides the map besides the bundle and classes, which the
        // work folder is for.
        let bundle = a.work_dir.join(format!("{kind}-{n}-k{}-tol{}{file}.brn", a.encode_steps, a.tol));
        if !bundle.exists() {
            println!("== {kind} targets, N = {n}: solving {dir} into {}", bundle.display());
            crate::cmd_ot::run(crate::cmd_ot::OtArgs {
                pair: a.pair.clone(),
                t: Some(t),
                maps: vec![dir],
                targets_kind: kind.parse()?,
                encode_steps: a.encode_steps,
                targets: n,
                tol: a.tol,
                candidates: 32,
                max_per_target: 512,
                lr: 0.02,
                seed: 0,
                work_dir: Some(a.work_dir.join("cache")),
                report: Some(bundle.with_extension("solve.json")),
                output: bundle.clone(),
            })?;
        }
        let engine = Engine::new(Bundle::open(&bundle)?, Box::new(CpuBackend::new(0)?))?;
        let solve = engine
            .bundle()
            .manifest()
            .find_map_at(&dir.source(), dir.target(), t)
            .and_then(|m| m.solve.clone())
            .with_context(|| format!("{}: the {dir} map has no solve record", bundle.display()))?;
        Ok((engine, solve))
    };

    // Configurations a previous run with the same settings measured are kept, not run again (a
    // rerun after an interruption continues; with all of them present it only redraws the plots).
    let earlier: Vec<Entry> = std::fs::read(&a.output)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .filter(|v| {
            let same = |key: &str, want: usize| v[key].as_u64() == Some(want as u64);
            v["bundle"].as_str() == Some(a.pair.bundle.display().to_string().as_str())
                && same("class_a", a.pair.class_a as usize)
                && same("class_b", a.pair.class_b as usize)
                && same("count", a.count)
                && same("encode_steps", a.encode_steps)
                && same("ot_ald_steps", a.steps)
                && same("dpm_ot_nfe", a.nfe)
                && v["tol"].as_f64().map(|t| t as f32) == Some(a.tol)
        })
        .and_then(|v| serde_json::from_value(v["entries"].clone()).ok())
        .unwrap_or_default();
    let mut entries = vec![];
    for kind in &a.kinds {
        anyhow::ensure!(kind == "encoded" || kind == "forward", "--kinds {kind}: expected encoded or forward");
        for &n in &a.n {
            if let Some(e) = earlier.iter().find(|e| &e.kind == kind && e.n == n) {
                println!("{kind} N = {n}: measured before, kept");
                entries.push(e.clone());
                continue;
            }
            let (engine, solve) = solved(kind, n, MapDirection::Domain(NetKey::A), "")?;
            let row = Row {
                name: "OT-ALD",
                method: TranslateMethod::OtAld,
                t,
                steps: a.steps,
                tau: None,
                seed: 0,
                subset: 0,
            };
            let translation =
                Measured { solve, row: translation_row(&engine, &runner, &data, &row, &Silent, &nearest)? };
            let (engine, solve) = solved(kind, n, MapDirection::Noise(NetKey::B), "-noise")?;
            let row = dpm_ot_row(&engine, &runner, &data, a.count, a.nfe, 0, 0, &Silent, &nearest)?;
            let generation = Measured { solve, row };
            let (tr, gen) = (&translation.row, &generation.row);
            println!(
                "{kind} N = {n}: OT-ALD accuracy {:.3}, Fréchet {:.2}, SSIM to source {:.3}, {} distinct of {}, \
                 RMS to nearest training image {:.3}; DPM-OT accuracy {:.3}, Fréchet {:.2}, {} distinct, RMS to nearest {:.3}",
                tr.quality.target_accuracy,
                tr.quality.frechet,
                tr.quality.ssim_to_source.unwrap_or(f64::NAN),
                tr.distinct_outputs.unwrap_or(0),
                a.count,
                tr.nearest_train_rms,
                gen.quality.target_accuracy,
                gen.quality.frechet,
                gen.distinct_outputs.unwrap_or(0),
                gen.nearest_train_rms,
            );
            entries.push(Entry { kind: kind.clone(), n, map_bytes: n * d * 2 + n * 4, translation, generation });
            write(&a, &real, &entries)?;
        }
    }
    write(&a, &real, &entries)?;
    println!("wrote {} and its plots", a.output.display());
    Ok(())
}

fn write(a: &Args, real: &Quality, entries: &[Entry]) -> Result<()> {
    let list = |v: &[String]| v.join(",");
    let out = serde_json::json!({
        "command": format!(
            "brenier-train ot-quality --bundle {} --class-a {} --class-b {} --n {} --kinds {} --count {} -o {}",
            a.pair.bundle.display(), a.pair.class_a, a.pair.class_b,
            list(&a.n.iter().map(|n| n.to_string()).collect::<Vec<_>>()), list(&a.kinds), a.count, a.output.display()
        ),
        "bundle": a.pair.bundle.display().to_string(),
        "class_a": a.pair.class_a,
        "class_b": a.pair.class_b,
        "count": a.count,
        "encode_steps": a.encode_steps,
        "ot_ald_steps": a.steps,
        "dpm_ot_nfe": a.nfe,
        "tol": a.tol,
        "real_training_images": real,
        "entries": entries,
    });
    brenier::io::write_atomic(&a.output, &serde_json::to_vec_pretty(&out)?).context("writing the results")?;
    // One line per (method, kind) against N.
    let lines = |f: &dyn Fn(&Entry, bool) -> f64| -> Vec<(String, Vec<(f64, f64)>)> {
        let mut v = vec![];
        for (method, gen) in [("OT-ALD", false), ("DPM-OT", true)] {
            for k in &a.kinds {
                let pts = entries.iter().filter(|e| &e.kind == k).map(|e| (e.n as f64, f(e, gen))).collect();
                v.push((format!("{method}, {k} targets"), pts));
            }
        }
        v
    };
    let plot = |suffix: &str, title: &str, y_label: &str, lines: Vec<(String, Vec<(f64, f64)>)>| -> Result<()> {
        let stem = a.output.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let png = a.output.with_file_name(format!("{stem}-{suffix}.png"));
        let series: Vec<Series> = lines.iter().map(|(name, points)| Series { name, points: points.clone() }).collect();
        let axes = Axes { title, x_label: "OT targets N", y_label, log_x: true, log_y: false };
        line_plot(&png, &axes, &series).with_context(|| format!("plotting {}", png.display()))
    };
    let mut frechet =
        lines(&|e, gen| if gen { e.generation.row.quality.frechet } else { e.translation.row.quality.frechet });
    frechet.push(("real training images".into(), entries.iter().map(|e| (e.n as f64, real.frechet)).collect()));
    plot("frechet", "Fréchet distance to held-out ankle boots (lower is better)", "Fréchet distance", frechet)?;
    let copies =
        lines(&|e, gen| if gen { e.generation.row.nearest_train_rms } else { e.translation.row.nearest_train_rms });
    plot("copies", "RMS from each output to its nearest training image (0: a copy)", "RMS (model units)", copies)?;
    let distinct = |e: &Entry, gen: bool| {
        let n = if gen { e.generation.row.distinct_outputs } else { e.translation.row.distinct_outputs };
        n.unwrap_or(0) as f64 / a.count as f64
    };
    let ssim: Vec<(String, Vec<(f64, f64)>)> = a
        .kinds
        .iter()
        .map(|k| {
            let pts = entries
                .iter()
                .filter(|e| &e.kind == k)
                .map(|e| (e.n as f64, e.translation.row.quality.ssim_to_source.unwrap_or(f64::NAN)))
                .collect();
            (format!("OT-ALD, {k} targets"), pts)
        })
        .collect();
    plot("ssim", "SSIM of each translation to its source (higher keeps more of it)", "SSIM to source", ssim)?;
    plot(
        "distinct",
        &format!("distinct outputs among {} (1: no two alike)", a.count),
        "fraction distinct",
        lines(&distinct),
    )
}
