//! `brenier-train neural-map` and `neural-map-compare`: the command-line side of the DIOTM
//! trainer (binary only).

use std::path::PathBuf;

use anyhow::{Context, Result};
use brenier_train::neural_map::eval::evaluate_toy;
use brenier_train::neural_map::{plots, train, DiotmConfig, MlpMap, Toy};
use indicatif::{ProgressBar, ProgressStyle};

/// Options of `brenier-train neural-map`.
#[derive(clap::Args, Debug)]
pub struct NeuralMapArgs {
    /// Low-dimensional check: gaussian (N(0,I) → N(m,Σ), closed-form map) or 8gaussians.
    #[arg(long)]
    toy: String,
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
    /// Hidden widths of the map MLPs and of the value function.
    #[arg(long, value_delimiter = ',', default_values_t = [128, 128])]
    hidden: Vec<usize>,
    /// Test points per measure for the evaluation against the exact OT plan.
    #[arg(long, default_value_t = 1000)]
    eval_points: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    resume: bool,
}

pub fn neural_map(a: NeuralMapArgs) -> Result<()> {
    let toy = Toy::parse(&a.toy).with_context(|| format!("unknown --toy `{}`: gaussian or 8gaussians", a.toy))?;
    let cfg = DiotmConfig {
        alpha: a.alpha,
        hjb: a.hjb,
        steps: a.steps,
        batch: a.batch,
        lr_map: a.lr_map,
        lr_value: a.lr_value,
        map_steps: a.map_steps,
        value_hidden: a.hidden.clone(),
        seed: a.seed,
        ..DiotmConfig::default()
    };
    let bar = ProgressBar::new(a.steps as u64);
    bar.set_style(
        ProgressStyle::with_template("[{bar:30}] {pos}/{len} {msg} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let hidden = a.hidden.clone();
    let trained = train(
        &toy,
        &cfg,
        |dev| MlpMap::new(Toy::DIM, &hidden, dev),
        &a.out,
        a.resume,
        |l| {
            bar.set_position(l.step as u64);
            bar.set_message(format!("L {:.3} gap {:.3} hjb {:.2e}", l.objective, l.value_gap, l.hjb_residual));
        },
    )?;
    bar.finish();
    let eval = evaluate_toy(toy, &trained.forward, &trained.backward, a.eval_points, a.seed)?;
    brenier::io::write_atomic(&a.out.join("eval.json"), &serde_json::to_vec_pretty(&eval)?)?;
    let [losses, hjb] = plots::run_curves(&a.out, &trained.log)?;
    println!(
        "{} ({} steps, {:.0} s, hjb {}): L2 forward {:.4}, backward {:.4}, W2²(T#μ, ν) {:.4}, W2²(μ, ν) {:.3}{}",
        toy.name(),
        trained.log.len(),
        trained.seconds,
        a.hjb,
        eval.l2_forward,
        eval.l2_backward,
        eval.w2_forward,
        eval.w2_source_target,
        eval.closed_form_forward.map_or(String::new(), |e| format!(", closed-form error {e:.4}"))
    );
    println!("wrote {}, {}, {} and loss.csv", a.out.join("eval.json").display(), losses.display(), hjb.display());
    Ok(())
}

/// Plots several runs' objectives on one chart.
pub fn compare(runs: &[PathBuf], output: &std::path::Path) -> Result<()> {
    let logs = runs
        .iter()
        .map(|r| {
            Ok((
                r.file_name().map_or_else(|| r.display().to_string(), |n| n.to_string_lossy().into()),
                plots::read_log(r)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    plots::compare(output, &logs)?;
    println!("wrote {}", output.display());
    Ok(())
}
