//! `brenier demo`: an end-to-end run with nothing to download. With a shipped bundle
//! (`assets/demo.brn`, or `--bundle`) it translates the held-out inputs with DDIB, OT-ALD and the
//! neural map (where shipped) and generates with DPM-OT; without one it falls back to the
//! Gaussian oracle bundle.

mod args;
mod bundle;
mod grid;
mod oracle;

use std::path::PathBuf;

use anyhow::Result;

pub use args::Args;
use args::SHIPPED_BUNDLE;

pub fn run(a: Args) -> Result<()> {
    let shipped = PathBuf::from(SHIPPED_BUNDLE);
    match (&a.bundle, shipped.exists()) {
        _ if a.oracle => oracle::run(&a),
        (Some(b), _) => bundle::run(&a, b),
        (None, true) => bundle::run(&a, &shipped),
        (None, false) => oracle::run(&a),
    }
}
