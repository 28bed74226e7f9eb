//! `brenier targets`: the device profiles `--target` applies.

use anyhow::Result;

/// List the device profiles (`--target NAME` applies one).
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  brenier targets\n  brenier selftest --bundle model.brn --target jetson-orin\n  brenier bench --bundle model.brn --target my-board.toml"
)]
pub struct Args {
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let all = brenier_targets::builtin();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    println!(
        "{:<14} {:<26} {:<6} {:<7} {:<6} {:>4} {:>7} {:>10}  description",
        "name", "triple", "glibc", "cuda", "arch", "prec", "backend", "budget MiB"
    );
    for t in all {
        println!(
            "{:<14} {:<26} {:<6} {:<7} {:<6} {:>4} {:>7} {:>10}  {} (batch {}, threads {})",
            t.name,
            t.triple,
            t.glibc,
            t.cuda.as_deref().unwrap_or("-"),
            t.cuda_arch.as_deref().unwrap_or("-"),
            t.precision.as_str(),
            t.backend.as_str(),
            t.memory_budget_mib,
            t.description,
            t.batch,
            if t.threads == 0 { "all".to_string() } else { t.threads.to_string() },
        );
    }
    println!(
        "this binary: {} ({}CUDA support)",
        std::env::consts::ARCH,
        if cfg!(feature = "cuda") { "with " } else { "without " }
    );
    Ok(())
}
