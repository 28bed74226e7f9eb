//! Options shared by the commands that run a bundle.

use std::path::PathBuf;

use anyhow::{Context, Result};
use brenier::backend::{BackendKind, Precision};
use brenier::bundle::{Bundle, LoadMode};
use brenier::pipeline::memory::MemoryEstimate;
use brenier::Engine;
use brenier_targets::Target;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// The `.brn` bundle.
    #[arg(long)]
    pub bundle: PathBuf,
    /// Device profile (`brenier targets` lists them, or a .toml file): its backend, precision,
    /// threads, batch and memory budget, unless given here explicitly.
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
    /// Backend: cpu, cuda (fails with the reason when CUDA is missing), or auto (CUDA where
    /// present, else the CPU with a warning) [default: cpu, or the target's].
    #[arg(long)]
    pub backend: Option<BackendKind>,
    /// CPU threads (0 = all cores) [default: 0, or the target's].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Network precision: f32, or f16 (GPU; native on aarch64 with FP16; emulated, slower, on
    /// x86_64 — see `brenier calibrate`) [default: f32, or the target's].
    #[arg(long)]
    pub precision: Option<Precision>,
    /// Refuse to run when the estimated footprint (bundle, weights, activations at the batch
    /// size, buffers) exceeds this many MiB [default: none, or the target's].
    #[arg(long, value_name = "MIB")]
    pub memory_budget: Option<f64>,
    /// Read the bundle into memory instead of mapping it (for filesystems where a mapped file
    /// may change underneath).
    #[arg(long)]
    pub no_mmap: bool,
}

/// What a run uses once the flags and the target profile are merged (flags win). Resolved once
/// per command, so a profile is read once and its warnings are said once.
#[derive(Debug, Clone)]
pub struct Run {
    pub bundle: PathBuf,
    pub no_mmap: bool,
    pub backend: BackendKind,
    pub precision: Precision,
    pub threads: usize,
    pub memory_budget: Option<f64>,
    /// Where the budget came from, for its error message: " (target NAME)" or empty.
    budget_source: String,
    pub target: Option<Target>,
}

impl RunArgs {
    pub fn resolve(&self) -> Result<Run> {
        let target = self.target.as_deref().map(brenier_targets::find).transpose()?;
        if let Some(t) = &target {
            if t.arch() != std::env::consts::ARCH {
                log::warn!("target {} is for {}, but this binary runs on {}", t.name, t.arch(), std::env::consts::ARCH);
            }
        }
        let t = target.as_ref();
        let budget_source = match (self.memory_budget, t) {
            (None, Some(t)) => format!(" (target {})", t.name),
            _ => String::new(),
        };
        let backend = self.backend.or(t.map(|t| t.backend)).unwrap_or_default();
        let precision = match (self.precision, t) {
            (Some(p), _) => p,
            // A profile's f16 is a default for the hardware it names: on a CPU without f16
            // arithmetic tract would emulate it, two orders of magnitude slower.
            (None, Some(t))
                if t.precision == Precision::F16
                    && backend == BackendKind::Cpu
                    && !brenier::backend::cpu::f16_native() =>
            {
                log::warn!(
                    "target {} asks for f16, which this CPU only emulates; running in f32 (--precision f16 forces it)",
                    t.name
                );
                Precision::F32
            }
            (None, t) => t.map(|t| t.precision).unwrap_or_default(),
        };
        Ok(Run {
            bundle: self.bundle.clone(),
            no_mmap: self.no_mmap,
            backend,
            precision,
            threads: self.threads.or(t.map(|t| t.threads)).unwrap_or(0),
            memory_budget: self.memory_budget.or(t.map(|t| t.memory_budget_mib)),
            budget_source,
            target,
        })
    }
}

impl Run {
    /// The batch a command uses when `--batch` is not given: the target's, else `fallback`.
    pub fn default_batch(&self, fallback: usize) -> usize {
        self.target.as_ref().map_or(fallback, |t| t.batch)
    }

    /// The engine, not yet checked against the memory budget: each command calls
    /// [`Run::check_budget`] with the batch it will run once it knows it.
    pub fn open(&self) -> Result<Engine> {
        let mode = if self.no_mmap { LoadMode::Read } else { LoadMode::Mmap };
        let bundle = Bundle::open_with(&self.bundle, mode)?;
        let backend = brenier::backend::open(self.backend, self.precision, self.threads)?;
        log::info!("backend {} in {} ({} threads)", backend.name(), backend.precision(), backend.threads());
        Ok(Engine::new(bundle, backend)?)
    }

    /// Applies the memory budget (flag or target) to batches of `batch` images; the estimate it
    /// made, when there is a budget.
    pub fn check_budget(&self, engine: &Engine, batch: usize) -> Result<Option<MemoryEstimate>> {
        let Some(budget) = self.memory_budget else { return Ok(None) };
        let from = &self.budget_source;
        let e = engine
            .check_memory_budget(budget, batch.max(1))
            .with_context(|| format!("memory budget {budget} MiB{from}"))?;
        log::info!(
            "memory estimate {:.1} MiB within the budget of {budget} MiB{from}",
            e.total_bytes as f64 / 1048576.0
        );
        Ok(Some(e))
    }

    /// The flags that make a child `brenier` process run as this one does (same bundle, backend,
    /// precision, threads and load mode).
    pub fn child_args(&self) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = vec![
            "--bundle".into(),
            self.bundle.clone().into_os_string(),
            "--backend".into(),
            self.backend.to_string().into(),
            "--precision".into(),
            self.precision.to_string().into(),
            "--threads".into(),
            self.threads.to_string().into(),
        ];
        if self.no_mmap {
            args.push("--no-mmap".into());
        }
        args
    }
}

/// Parses `a`/`b` or a domain name into a network key.
pub fn domain_key(engine: &Engine, s: &str) -> Result<brenier::NetKey> {
    Ok(engine.bundle().manifest().domain_key(s)?)
}

pub fn ms(seconds: f64) -> String {
    format!("{:.1} ms", seconds * 1e3)
}
