//! The flags of `brenier demo`, shared by both of its runs.

use std::path::PathBuf;

/// Run the demo: translation (OT-ALD vs DDIB) and generation (DPM-OT) with timings.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  cargo run --release -- demo\n  brenier demo --oracle\n  brenier demo --bundle model.brn --inputs my-sneakers/ --out out/demo"
)]
pub struct Args {
    /// The bundle to demonstrate (default: assets/demo.brn when it exists, else the oracle).
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// Inputs for a real bundle: a folder of PNGs or a .npy (default: assets/demo-inputs).
    #[arg(long)]
    pub inputs: Option<PathBuf>,
    /// Where outputs, the grid PNG and (for the oracle) the bundle go.
    #[arg(long, default_value = "out/demo")]
    pub out: PathBuf,
    /// Oracle demo: source samples to translate.
    #[arg(long, default_value_t = 2048)]
    pub count: usize,
    /// Steps K for OT-ALD and DDIB (default: the bundle's; 25 for the oracle).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Images generated with DPM-OT.
    #[arg(long, default_value_t = 8)]
    pub generate: usize,
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Run the Gaussian oracle demo (closed-form check) even where a shipped bundle exists.
    #[arg(long, conflicts_with = "bundle")]
    pub oracle: bool,
}

pub const SHIPPED_BUNDLE: &str = "assets/demo.brn";
pub const SHIPPED_INPUTS: &str = "assets/demo-inputs";
