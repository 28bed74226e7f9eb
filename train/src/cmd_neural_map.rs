//! `brenier-train neural-map`, `neural-map-toy` and `neural-map-compare`: the command-line side
//! of the DIOTM trainer (binary only).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use brenier::bundle::MapDirection;
use brenier::NetKey;
use brenier_train::data::Split;
use brenier_train::model::UNetConfig;
use brenier_train::neural_map::eval::evaluate_toy;
use brenier_train::neural_map::latent::{map_parity, LatentPair, UNetMap};
use brenier_train::neural_map::{plots, train, DiotmConfig, MapNet, Measures, MlpMap, StepLog, Toy, Trained};
use indicatif::{ProgressBar, ProgressStyle};

/// Training options shared by the toy and latent runs.
#[derive(clap::Args, Debug)]
pub struct DiotmArgs {
    /// Cost intensity α of c(x, y) = α‖x − y‖².
    #[arg(long, default_value_t = 1.0)]
    alpha: f32,
    /// Weight of the HJB regulariser (0 turns it off).
    #[arg(long, default_value_t = 1.0)]
    hjb: f32,
    #[arg(long, default_value_t = 3000)]
    steps: usize,
    #[arg(long, default_value_t = 256)]
    batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr_map: f64,
    #[arg(long, default_value_t = 1e-3)]
    lr_value: f64,
    /// Map updates per value-function update.
    #[arg(long, default_value_t = 1)]
    map_steps: usize,
    /// Hidden widths of the value function V(t, y) [default: 128,128 on toys, 256,256 on latents].
    #[arg(long, value_delimiter = ',')]
    value_hidden: Option<Vec<usize>>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run folder: checkpoint, loss.csv, losses.png, hjb.png, results.
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    resume: bool,
}

impl DiotmArgs {
    fn config(&self, value_hidden: &[usize]) -> DiotmConfig {
        DiotmConfig {
            alpha: self.alpha,
            hjb: self.hjb,
            steps: self.steps,
            batch: self.batch,
            lr_map: self.lr_map,
            lr_value: self.lr_value,
            map_steps: self.map_steps,
            value_hidden: self.value_hidden.clone().unwrap_or_else(|| value_hidden.to_vec()),
            seed: self.seed,
            ..DiotmConfig::default()
        }
    }
}

fn run_training<M: MapNet + Clone>(
    data: &dyn Measures,
    cfg: &DiotmConfig,
    make_map: impl Fn(&burn::tensor::Device) -> M,
    a: &DiotmArgs,
) -> Result<Trained<M>> {
    let bar = ProgressBar::new(cfg.steps as u64);
    bar.set_style(
        ProgressStyle::with_template("[{bar:30}] {pos}/{len} {msg} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let trained = train(data, cfg, make_map, &a.out, a.resume, |l: &StepLog| {
        bar.set_position(l.step as u64);
        bar.set_message(format!("L {:.3} gap {:.3} hjb {:.2e}", l.objective, l.value_gap, l.hjb_residual));
    })?;
    bar.finish();
    let [losses, hjb] = plots::run_curves(&a.out, &trained.log)?;
    println!("loss curves {} and {}", losses.display(), hjb.display());
    Ok(trained)
}

/// Options of `brenier-train neural-map-toy`.
#[derive(clap::Args, Debug)]
pub struct ToyArgs {
    /// gaussian (N(0,I) → N(m,Σ), closed-form map) or 8gaussians.
    #[arg(long)]
    toy: String,
    /// Hidden widths of the map MLPs.
    #[arg(long, value_delimiter = ',', default_values_t = [128, 128])]
    hidden: Vec<usize>,
    /// Test points per measure for the evaluation against the exact OT plan.
    #[arg(long, default_value_t = 1000)]
    eval_points: usize,
    #[command(flatten)]
    train: DiotmArgs,
}

pub fn toy(a: ToyArgs) -> Result<()> {
    let toy = Toy::parse(&a.toy).with_context(|| format!("unknown --toy `{}`: gaussian or 8gaussians", a.toy))?;
    let cfg = a.train.config(&[128, 128]);
    let hidden = a.hidden.clone();
    let trained = run_training(&toy, &cfg, |dev| MlpMap::new(Toy::DIM, &hidden, dev), &a.train)?;
    let eval = evaluate_toy(toy, &trained.forward, &trained.backward, a.eval_points, a.train.seed)?;
    brenier::io::write_atomic(&a.train.out.join("eval.json"), &serde_json::to_vec_pretty(&eval)?)?;
    println!(
        "{} ({} steps, {:.0} s, hjb {}): L2 forward {:.4}, backward {:.4}, W2²(T#μ, ν) {:.4}, W2²(μ, ν) {:.3}{}; {}",
        toy.name(),
        trained.log.len(),
        trained.seconds,
        a.train.hjb,
        eval.l2_forward,
        eval.l2_backward,
        eval.w2_forward,
        eval.w2_source_target,
        eval.closed_form_forward.map_or(String::new(), |e| format!(", closed-form error {e:.4}")),
        a.train.out.join("eval.json").display()
    );
    Ok(())
}

/// Options of `brenier-train neural-map`.
#[derive(clap::Args, Debug)]
pub struct LatentArgs {
    #[command(flatten)]
    pair: crate::PairArgs,
    /// Time T of the maps (default: the bundle's encode time).
    #[arg(long)]
    t: Option<usize>,
    /// UNet channels of each map at full, half and quarter resolution.
    #[arg(long, value_delimiter = ',', default_values_t = [16, 32, 32])]
    channels: Vec<usize>,
    #[command(flatten)]
    train: DiotmArgs,
    /// Also write the input bundle with the two maps added (a->b and b->a).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub fn latent(a: LatentArgs) -> Result<()> {
    use brenier::backend::CpuBackend;
    use brenier::{Bundle, Engine};

    anyhow::ensure!(a.channels.len() == 3, "--channels takes three values");
    let channels = [a.channels[0], a.channels[1], a.channels[2]];
    UNetConfig { channels, ..UNetConfig::default() }.validate()?;
    let engine = Engine::new(Bundle::open(&a.pair.bundle)?, Box::new(CpuBackend::new(1)?))?;
    let m = engine.bundle().manifest().clone();
    let t = a.t.unwrap_or(m.t_encode);
    anyhow::ensure!(t < engine.schedule().n_train(), "--t {t} is beyond the bundle's schedule");
    let train_set = a.pair.data.load(Split::Train)?;
    let (set_a, set_b) = (train_set.filter_classes(&[a.pair.class_a]), train_set.filter_classes(&[a.pair.class_b]));
    anyhow::ensure!(
        !set_a.is_empty() && !set_b.is_empty(),
        "no training images of class {} or {}",
        a.pair.class_a,
        a.pair.class_b
    );
    anyhow::ensure!(set_a.image == m.image, "dataset images {:?} do not match the bundle's {:?}", set_a.image, m.image);
    anyhow::ensure!(m.image.height == m.image.width, "the map UNet takes square images, not {:?}", m.image);
    let pair = LatentPair { a: &set_a, b: &set_b, alpha_bar: engine.schedule().alpha_bar(t as i64) };
    let unet = UNetConfig {
        in_channels: m.image.channels,
        channels: [a.channels[0], a.channels[1], a.channels[2]],
        attention: false,
        num_classes: 0,
        ..UNetConfig::default()
    };
    let cfg = a.train.config(&[256, 256]);
    log::info!(
        "neural map {} ↔ {} at t = {t}: {} and {} training images, maps UNet {:?}",
        m.domains.a,
        m.domains.b,
        set_a.len(),
        set_b.len(),
        a.channels
    );
    let size = m.image.height;
    let trained = run_training(&pair, &cfg, |dev| UNetMap::new(&unet, t, size, dev), &a.train)?;
    let mut written = vec![];
    let (ab, ba) = (MapDirection::Domain(NetKey::A), MapDirection::Domain(NetKey::B));
    for (map, dir, file) in [(&trained.forward, ab, "map-ab.onnx"), (&trained.backward, ba, "map-ba.onnx")] {
        let bytes = brenier_export::onnx_build::to_bytes(&brenier_train::onnx::export_unet_map(
            &map.net,
            m.image.channels,
            size,
        ));
        let err = map_parity(map, &bytes)?;
        anyhow::ensure!(err < 1e-4, "ONNX export of {dir} differs from the burn network by {err:.2e}; not written");
        let path = a.train.out.join(file);
        brenier::io::write_atomic(&path, &bytes)?;
        println!("wrote {} ({dir}, tract vs burn max relative error {err:.1e})", path.display());
        written.push((dir, bytes));
    }
    if let Some(output) = &a.output {
        write_bundle(engine.bundle(), t, &cfg, written, &a.train.out, output)?;
    }
    Ok(())
}

fn write_bundle(
    bundle: &brenier::Bundle,
    t: usize,
    cfg: &DiotmConfig,
    maps: Vec<(MapDirection, Vec<u8>)>,
    run: &Path,
    output: &Path,
) -> Result<()> {
    let m = bundle.manifest();
    let names: Vec<String> = maps.iter().map(|(dir, _)| dir.name_at(t, m.t_encode)).collect();
    let mut spec = brenier_export::spec_from_bundle(bundle, &[], &names)?;
    spec.provenance = m.provenance.clone();
    for (dir, onnx) in maps {
        let MapDirection::Domain(source) = dir else {
            anyhow::bail!("a neural map goes between the domains, not {dir}")
        };
        spec.neural_maps.push(brenier_export::NeuralMapInput {
            name: dir.name_at(t, m.t_encode),
            source,
            target: dir.target(),
            t,
            onnx,
            provenance: serde_json::json!({ "trainer": "brenier-train neural-map (DIOTM)", "run": run.display().to_string(), "config": cfg }),
            fp16_record: None,
        });
    }
    let (_, size) = brenier_export::export(&spec, output)?;
    println!("wrote {} ({:.1} MB) with neural maps {}", output.display(), size as f64 / 1e6, names.join(", "));
    Ok(())
}

/// Plots several runs' objectives on one chart.
pub fn compare(runs: &[PathBuf], output: &Path) -> Result<()> {
    let logs = runs
        .iter()
        .map(|r| {
            let name = r.file_name().map_or_else(|| r.display().to_string(), |n| n.to_string_lossy().into());
            Ok((name, plots::read_log(r)?))
        })
        .collect::<Result<Vec<_>>>()?;
    plots::compare(output, &logs)?;
    println!("wrote {}", output.display());
    Ok(())
}
