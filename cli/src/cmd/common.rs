//! Options shared by the commands that run a bundle.

use std::path::PathBuf;

use anyhow::Result;
use brenier::backend::{CpuBackend, Precision};
use brenier::bundle::{Bundle, LoadMode};
use brenier::Engine;

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// The `.brn` bundle.
    #[arg(long)]
    pub bundle: PathBuf,
    /// Backend running the networks and kernels (`auto`: the best one built in and present;
    /// this build has the CPU backend only).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "auto"])]
    pub backend: String,
    /// CPU threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Network precision: f32, or f16 (native on aarch64 with FP16; emulated, slower, on x86_64 —
    /// see `brenier calibrate`).
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
    /// Refuse to run when the estimated footprint (bundle, weights, activations at the batch
    /// size, buffers) exceeds this many MiB.
    #[arg(long, value_name = "MIB")]
    pub memory_budget: Option<f64>,
    /// Read the bundle into memory instead of mapping it (for filesystems where a mapped file
    /// may change underneath).
    #[arg(long)]
    pub no_mmap: bool,
}

impl RunArgs {
    /// The engine, checked against `--memory-budget` at batch 1.
    pub fn engine(&self) -> Result<Engine> {
        let engine = self.open()?;
        self.check_budget(&engine, 1)?;
        Ok(engine)
    }

    /// The engine, unchecked: for commands that learn their batch size from the input first
    /// and then call [`RunArgs::check_budget`].
    pub fn open(&self) -> Result<Engine> {
        let mode = if self.no_mmap { LoadMode::Read } else { LoadMode::Mmap };
        let bundle = Bundle::open_with(&self.bundle, mode)?;
        Ok(Engine::new(bundle, Box::new(CpuBackend::with_precision(self.threads, self.precision)?))?)
    }

    /// Applies `--memory-budget` to batches of `batch` images.
    pub fn check_budget(&self, engine: &Engine, batch: usize) -> Result<()> {
        if let Some(budget) = self.memory_budget {
            let e = engine.check_memory_budget(budget, batch.max(1))?;
            log::info!("memory estimate {:.1} MiB within the budget of {budget} MiB", e.total_bytes as f64 / 1048576.0);
        }
        Ok(())
    }
}

/// Parses `a`/`b` or a domain name into a network key.
pub fn domain_key(engine: &Engine, s: &str) -> Result<brenier::NetKey> {
    let m = engine.bundle().manifest();
    if s == m.domains.a {
        return Ok(brenier::NetKey::A);
    }
    if s == m.domains.b {
        return Ok(brenier::NetKey::B);
    }
    s.parse()
        .map_err(|_| anyhow::anyhow!("unknown domain `{s}`: this bundle has a = {}, b = {}", m.domains.a, m.domains.b))
}

pub fn ms(seconds: f64) -> String {
    format!("{:.1} ms", seconds * 1e3)
}
