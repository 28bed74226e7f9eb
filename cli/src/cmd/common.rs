//! Options shared by the commands that run a bundle.

use std::path::PathBuf;

use anyhow::Result;
use brenier::backend::CpuBackend;
use brenier::bundle::{Bundle, LoadMode};
use brenier::Engine;

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// The `.brn` bundle.
    #[arg(long)]
    pub bundle: PathBuf,
    /// Backend running the networks and kernels.
    #[arg(long, default_value = "cpu", value_parser = ["cpu"])]
    pub backend: String,
    /// CPU threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Read the bundle into memory instead of mapping it (for filesystems where a mapped file
    /// may change underneath).
    #[arg(long)]
    pub no_mmap: bool,
}

impl RunArgs {
    pub fn engine(&self) -> Result<Engine> {
        let mode = if self.no_mmap { LoadMode::Read } else { LoadMode::Mmap };
        let bundle = Bundle::open_with(&self.bundle, mode)?;
        Ok(Engine::new(bundle, Box::new(CpuBackend::new(self.threads)?))?)
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
