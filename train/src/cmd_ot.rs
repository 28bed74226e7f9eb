//! `brenier-train ot`: the OT maps of a bundle solved on a data set's training images, through the
//! exporter's own pipeline (`brenier_export::from_images`: the same encoding, solver and
//! certificate as `brenier export --images-a/--images-b`); the bundle's other maps are kept.

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{Context, Result};
use brenier::backend::{BackendKind, Precision};
use brenier::bundle::manifest::{map_name, MapDirection};
use brenier::io::batch::{Batch, ReadOptions};
use brenier::pipeline::Observer;
use brenier::Bundle;
use brenier_export::from_images::{export_from_images, ExportObserver, Images, ImagesSpec, TargetKind};
use brenier_export::ot::{Progress, SolveConfig};
use brenier_train::data::Split;
use indicatif::{ProgressBar, ProgressStyle};

/// Options of `brenier-train ot`.
#[derive(clap::Args, Debug)]
pub struct OtArgs {
    #[command(flatten)]
    pub(crate) pair: crate::PairArgs,
    /// Encode time T of the maps (default: the bundle's). Maps at another T than the bundle's
    /// default are named `a->b@t250`, so one bundle can carry maps for the T sweep.
    #[arg(long)]
    pub(crate) t: Option<usize>,
    /// Which maps to solve (of a->b, b->a, noise->a, noise->b). The input bundle's other maps are
    /// kept.
    #[arg(long, value_delimiter = ',', default_value = "a->b,b->a,noise->b")]
    pub(crate) maps: Vec<MapDirection>,
    /// How the targets are made from the target domain's training images: `encoded` (DDIM with
    /// its network, --encode-steps steps) or `forward` (forward noise to T, no network cost).
    #[arg(long, default_value = "forward")]
    pub(crate) targets_kind: TargetKind,
    /// DDIM steps used to encode the targets.
    #[arg(long, default_value_t = 50)]
    pub(crate) encode_steps: usize,
    /// Targets per map (training images of the target domain; a seeded choice when there are
    /// more).
    #[arg(long, default_value_t = 2000)]
    pub(crate) targets: usize,
    /// Tolerance of the certificate: RMS relative cell-mass error on held-out samples.
    #[arg(long, default_value_t = 0.1)]
    pub(crate) tol: f32,
    /// Candidate targets kept per fit sample, and the largest fit set in samples per target.
    #[arg(long, default_value_t = 32)]
    pub(crate) candidates: usize,
    #[arg(long, default_value_t = 512)]
    pub(crate) max_per_target: usize,
    /// Adam step as a fraction of the score scale (see SolveConfig::lr).
    #[arg(long, default_value_t = 0.02)]
    pub(crate) lr: f32,
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Work folder for the encoded targets (reused when run again) [default: <output>.work].
    #[arg(long)]
    pub(crate) work_dir: Option<PathBuf>,
    /// Convergence report (JSON, with a PNG of each map's fit error per iteration beside it).
    #[arg(long)]
    pub(crate) report: Option<PathBuf>,
    #[arg(short, long)]
    pub(crate) output: PathBuf,
}

/// Progress on the terminal: a bar per stage, the solver's fit error per iteration.
struct Bars {
    bar: Mutex<Option<ProgressBar>>,
}

impl Observer for Bars {
    fn stage(&self, name: &str, steps: usize) {
        let bar = ProgressBar::new(steps as u64);
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(name.to_string());
        *self.bar.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar);
    }
    fn step(&self) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            b.inc(1);
        }
    }
    fn done(&self) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            b.finish_and_clear();
        }
    }
}

impl ExportObserver for Bars {
    fn solve(&self, map: &str, p: &Progress) {
        if p.iter.is_multiple_of(25) {
            log::info!(
                "{map}: fit set {} samples, iteration {}, RMS relative cell-mass error {:.3}, {} empty",
                p.fit_samples,
                p.iter,
                p.fit_mass_err,
                p.empty
            );
        }
    }
    fn message(&self, text: &str) {
        log::info!("{text}");
    }
}

pub fn run(a: OtArgs) -> Result<()> {
    let bundle = Bundle::open(&a.pair.bundle)?;
    let m = bundle.manifest().clone();
    let t = a.t.unwrap_or(m.t_encode);
    let train = a.pair.data.load(Split::Train)?;
    let image = m.image;
    let loaded = |class: u8| -> Result<Images> {
        let set = train.filter_classes(&[class]);
        anyhow::ensure!(!set.is_empty(), "no training images of class {class}");
        anyhow::ensure!(set.image == image, "dataset images {:?} do not match the bundle's {image:?}", set.image);
        Ok(Images::Loaded(Batch {
            count: set.len(),
            names: (0..set.len()).map(|i| format!("{class}-{i:05}")).collect(),
            data: set.pixels,
            skipped: vec![],
        }))
    };
    let replaced: Vec<String> = a.maps.iter().map(|d| d.name_at(t, m.t_encode)).collect();
    let mut base = brenier_export::spec_from_bundle(&bundle, &replaced, &[])?;
    drop(bundle);
    // One provenance entry per solve (`ot`, `ot@t250`), earlier ones kept.
    let mut provenance = match &m.provenance {
        serde_json::Value::Object(o) => o.get("user").and_then(|u| u.as_object()).cloned().unwrap_or_else(|| o.clone()),
        _ => serde_json::Map::new(),
    };
    provenance.insert(
        map_name("ot", t, m.t_encode),
        serde_json::json!({ "maps": a.maps.iter().map(|d| d.as_str()).collect::<Vec<_>>(), "class_a": a.pair.class_a, "class_b": a.pair.class_b, "t": t,
            "targets_kind": a.targets_kind.as_str(), "encode_steps": a.encode_steps, "targets": a.targets, "tol": a.tol,
            "candidates": a.candidates, "lr": a.lr, "seed": a.seed }),
    );
    base.provenance = serde_json::Value::Object(provenance);
    let spec = ImagesSpec {
        images: [loaded(a.pair.class_a)?, loaded(a.pair.class_b)?],
        read: ReadOptions::default(),
        maps: a.maps.clone(),
        t: Some(t),
        num_targets: a.targets,
        targets: a.targets_kind,
        encode_steps: a.encode_steps,
        work_dir: a.work_dir.clone().unwrap_or_else(|| brenier_export::encode::default_work_dir(&a.output)),
        solve: SolveConfig {
            tol: a.tol,
            candidates: a.candidates,
            max_per_target: a.max_per_target,
            lr: a.lr,
            seed: a.seed,
            ..SolveConfig::default()
        },
        backend: BackendKind::Cpu,
        precision: Precision::F32,
        threads: 0,
    };
    let bars = Bars { bar: Mutex::new(None) };
    let out = export_from_images(&base, &spec, &a.output, &bars)?;
    for (name, r) in &out.solves {
        let c = &r.certificate;
        println!(
            "{name}: {} in {:.0} s; held-out RMS relative cell-mass error {:.3} (+ margin {:.3}, tol {}), max {:.2}, \
             {} fit samples over {} round(s)",
            if r.converged { "certified" } else { "NOT certified" },
            r.seconds,
            c.rms_rel_mass_err,
            c.margin,
            c.tol,
            c.max_rel_mass_err,
            r.rounds.last().map_or(0, |x| x.fit_samples),
            r.rounds.len()
        );
    }
    if let Some(path) = &a.report {
        let reports: Vec<serde_json::Value> =
            out.solves.iter().map(|(name, r)| serde_json::json!({ "name": name, "report": r })).collect();
        brenier::io::write_atomic(path, &serde_json::to_vec_pretty(&reports)?)?;
        let series: Vec<brenier_calibration::plot::Series> = out
            .solves
            .iter()
            .map(|(name, r)| brenier_calibration::plot::Series {
                name,
                points: r.mass_err.iter().enumerate().map(|(i, &g)| (i as f64, g.max(1e-3) as f64)).collect(),
            })
            .collect();
        let png = path.with_extension("png");
        let axes = brenier_calibration::plot::Axes {
            title: "OT height solver (fit set)",
            x_label: "iteration",
            y_label: "RMS relative cell-mass error",
            log_x: false,
            log_y: true,
        };
        brenier_calibration::plot::line_plot(&png, &axes, &series).context("plotting the solver trace")?;
        println!("convergence report {} and plot {}", path.display(), png.display());
    }
    println!("wrote {} ({:.1} MB)", a.output.display(), out.bundle_bytes as f64 / 1e6);
    Ok(())
}
