//! `brenier calibrate`: measure what precision costs and which T and K to ship, on held-out
//! data beside the bundle; write the record into the bundle and a report beside it.

use std::path::PathBuf;

use anyhow::Result;
use brenier::backend::Precision;
use brenier_calibration::report::write_report;
use brenier_calibration::{calibrate, CalibrateOptions, Event};
use indicatif::{ProgressBar, ProgressStyle};

/// Calibrate a bundle: parity, OT agreement, T×K sweep, recommended defaults.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  brenier calibrate --bundle assets/demo.brn            # full sweep (minutes)\n  brenier calibrate --bundle assets/demo.brn --quick    # parity, agreement, selftest references\n  brenier calibrate --bundle model.brn --set data/model.calib --precision f16\n\nThe calibration set is a folder of held-out images (default: model.calib/ beside model.brn;\n`brenier-train calib-set` writes one). The bundle is rewritten atomically with a `calibration`\nsection and the f32 references `brenier selftest` compares with."
)]
pub struct Args {
    /// The `.brn` bundle (rewritten in place, atomically).
    #[arg(long)]
    bundle: PathBuf,
    /// Calibration set folder (default: <bundle>.calib beside the bundle).
    #[arg(long)]
    set: Option<PathBuf>,
    /// Precision the sweep and the recommendation are measured in.
    #[arg(long, default_value = "f32")]
    precision: Precision,
    /// Skip the T×K sweep: parity, OT agreement and the selftest references only.
    #[arg(long)]
    quick: bool,
    /// Held-out source images the sweep translates.
    #[arg(long, default_value_t = 64)]
    count: usize,
    /// Encode times T of the sweep.
    #[arg(long, value_delimiter = ',', default_values_t = brenier_calibration::sweep::SWEEP_T)]
    t: Vec<usize>,
    /// Step counts K of the sweep.
    #[arg(long, value_delimiter = ',', default_values_t = brenier_calibration::sweep::SWEEP_K)]
    k: Vec<usize>,
    /// CPU threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Report folder (default: <bundle>.calibration/ beside the bundle).
    #[arg(long)]
    report: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    anyhow::ensure!(a.count > 0, "--count must be at least 1");
    let opts = CalibrateOptions {
        precision: a.precision,
        quick: a.quick,
        set_dir: a.set.clone(),
        threads: a.threads,
        count: a.count,
        ts: a.t.clone(),
        ks: a.k.clone(),
        ..CalibrateOptions::default()
    };
    let mut bar: Option<ProgressBar> = None;
    let outcome = calibrate(&a.bundle, &opts, &mut |e| match e {
        Event::Stage(name) => {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
            eprintln!("calibrate: {name}");
        }
        Event::SweepStart(total) => {
            let b = ProgressBar::new(total as u64);
            b.set_style(
                ProgressStyle::with_template("sweep [{bar:30}] {pos}/{len} points {elapsed_precise} eta {eta} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar = Some(b);
        }
        Event::Point(p) => {
            // The bar is hidden when stderr is not a terminal; the log still shows progress.
            log::info!("sweep {} T={} K={}: {:.1} ms/img, {:?}", p.method, p.t, p.k, p.ms_per_image, p.quality);
            if let Some(b) = &bar {
                b.inc(1);
                b.set_message(format!(
                    "{} T={} K={}: FD {:.1}, acc {:.2}",
                    p.method, p.t, p.k, p.quality.frechet, p.quality.target_accuracy
                ));
            }
        }
    })?;
    if let Some(b) = bar.take() {
        b.finish_and_clear();
    }
    let m = brenier::Bundle::open(&a.bundle)?.manifest().clone();
    let dir = a.report.unwrap_or_else(|| a.bundle.with_extension("calibration"));
    let files = write_report(&outcome.record, &dir, m.steps)?;
    println!("{}", brenier_calibration::report::markdown(&outcome.record));
    println!("wrote the record into {} ({:.2} MB)", a.bundle.display(), outcome.bundle_size as f64 / 1e6);
    for f in files {
        println!("  {}", f.display());
    }
    Ok(())
}
