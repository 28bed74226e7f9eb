//! `brenier generate`: images from noise through an OT map (DPM-OT, prior-OT).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use brenier::pipeline::{GenerateMethod, GenerateOptions};

use super::common::{domain_key, ms, RunArgs};
use crate::images::write_outputs;
use crate::progress::Bars;

/// Generate images of a domain from noise in a few network evaluations.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  brenier generate --bundle model.brn --method dpm-ot --count 16 --output boots/
  brenier generate --bundle model.brn --method dpm-ot --nfe 10 --eta 0.5 --count 64 --output g.npy")]
pub struct Args {
    #[command(flatten)]
    run: RunArgs,
    /// dpm-ot (noise → latents at an intermediate t, then DDIM) or prior-ot (noise → the data
    /// diffused to the last train step).
    #[arg(long, default_value_t = GenerateOptions::default().method)]
    method: GenerateMethod,
    /// Domain to generate (`a`, `b`, or its name).
    #[arg(long, default_value_t = GenerateOptions::default().domain.as_str().to_string())]
    domain: String,
    #[arg(long, default_value_t = GenerateOptions::default().count)]
    count: usize,
    /// Network evaluations (reverse DDIM steps).
    #[arg(long, default_value_t = GenerateOptions::default().nfe)]
    nfe: usize,
    #[arg(long, default_value_t = GenerateOptions::default().eta)]
    eta: f32,
    /// Soft OT map temperature τ (omitted = hard map).
    #[arg(long)]
    tau: Option<f32>,
    #[arg(long, default_value_t = GenerateOptions::default().seed)]
    seed: u64,
    /// A folder for PNGs or a .npy.
    #[arg(long)]
    output: PathBuf,
    #[arg(long)]
    quiet: bool,
}

pub fn run(a: Args) -> Result<()> {
    let t0 = Instant::now();
    let run = a.run.resolve()?;
    let engine = run.open()?;
    // Generation runs all --count images as one batch.
    run.check_budget(&engine, a.count)?;
    let m = engine.bundle().manifest().clone();
    let opts = GenerateOptions {
        method: a.method,
        domain: domain_key(&engine, &a.domain)?,
        count: a.count,
        nfe: a.nfe,
        eta: a.eta,
        tau: a.tau,
        seed: a.seed,
    };
    let g = engine.generate(&opts, &Bars::new(a.quiet))?;
    let names: Vec<String> = (0..a.count).map(|i| format!("{i:04}")).collect();
    let meta = [
        ("brenier:method", a.method.to_string()),
        ("brenier:t_M", g.t.to_string()),
        ("brenier:NFE", g.nfe.to_string()),
        ("brenier:seed", a.seed.to_string()),
    ];
    write_outputs(&a.output, &m, &g.images, &names, &meta)?;
    let total = t0.elapsed().as_secs_f64();
    println!(
        "{} image(s) {} from t_M = {} in {} NFE: OT map {}, decode {}, total {} → {}",
        a.count,
        a.method,
        g.t,
        g.nfe,
        ms(g.map.seconds),
        ms(g.decode.seconds),
        ms(total),
        a.output.display()
    );
    Ok(())
}
