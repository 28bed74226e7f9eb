//! `brenier eps`: one network evaluation, to compare an export with the framework's own output.

use std::path::PathBuf;

use anyhow::Result;
use brenier::io::npy;
use brenier::pipeline::NetTime;

use super::common::{domain_key, RunArgs};
use crate::images::read_inputs;

/// Run one ε-network evaluation on a .npy input.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  brenier eps --bundle model.brn --net a --input x.npy --t 500 --output eps.npy\n  (then compare eps.npy with model(x, t) in PyTorch)"
)]
pub struct Args {
    #[command(flatten)]
    run: RunArgs,
    /// Which network (`a`, `b`, or a domain name).
    #[arg(long)]
    net: String,
    /// [N,C,H,W] float32 .npy in model space (or a PNG / folder).
    #[arg(long)]
    input: PathBuf,
    /// Train step t.
    #[arg(long)]
    t: usize,
    #[arg(long)]
    output: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    let run = a.run.resolve()?;
    let engine = run.open()?;
    let m = engine.bundle().manifest().clone();
    if a.t >= engine.schedule().n_train() {
        anyhow::bail!("--t {} must be below the schedule's {} train steps", a.t, engine.schedule().n_train());
    }
    let key = domain_key(&engine, &a.net)?;
    let x = read_inputs(&a.input, &m, false)?;
    engine.check_batch(&x.data, "input")?;
    run.check_budget(&engine, x.count)?;
    let mut time = NetTime::default();
    let e = engine.eps(key, &x.data, x.count, a.t as i64, "eps", &mut time)?;
    npy::write(&a.output, &m.image.shape(x.count), &e)?;
    println!(
        "ε of net {} at t = {} for {} image(s) in {:.2} ms → {}",
        key.as_str(),
        a.t,
        x.count,
        time.seconds * 1e3,
        a.output.display()
    );
    Ok(())
}
