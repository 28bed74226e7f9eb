//! The oracle demo (no shipped bundle): builds the Gaussian oracle bundle (two 4×4 Gaussian
//! "image" domains with exact ε-networks and solved OT maps), translates A→B with DDIB and
//! OT-ALD, generates with DPM-OT, and scores each against domain B's exact mean and covariance.

use std::time::Instant;

use anyhow::Result;
use brenier::backend::CpuBackend;
use brenier::bundle::{Bundle, ImageSpec};
use brenier::io::{npy, write_atomic};
use brenier::pipeline::{GenerateMethod, GenerateOptions, Silent, TranslateMethod, TranslateOptions};
use brenier::rng::NoiseStream;
use brenier::{Engine, NetKey};
use brenier_export::gaussian::Gaussian;
use brenier_export::oracle_bundle::{oracle_spec, OraclePair};

use super::args::Args;
use super::grid;
use crate::cmd::common::ms;

/// Relative error of the sample mean and covariance against a Gaussian's exact moments.
fn moment_errors(x: &[f32], g: &Gaussian) -> (f64, f64) {
    let (mean, cov) = brenier::linalg::sample_moments(x, g.dim());
    let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
    let dm: Vec<f64> = mean.iter().zip(&g.mean).map(|(a, b)| a - b).collect();
    let dc: Vec<f64> = cov.iter().zip(&g.cov).map(|(a, b)| a - b).collect();
    (norm(&dm) / norm(&g.mean).max(1e-12), norm(&dc) / norm(&g.cov))
}

pub fn run(a: &Args) -> Result<()> {
    anyhow::ensure!(a.count >= 2, "--count must be at least 2");
    std::fs::create_dir_all(&a.out)?;
    let image = ImageSpec { channels: 1, height: 4, width: 4 };
    let pair = OraclePair::new(image, 7);
    let bundle_path = a.out.join("oracle.brn");
    let t0 = Instant::now();
    println!("building the Gaussian oracle bundle (exact ε-networks, OT heights solved here)…");
    let steps = a.steps.unwrap_or(25);
    let spec = oracle_spec(&pair, 500, steps, 512, 11)?;
    let (_, size) = brenier_export::export(&spec, &bundle_path)?;
    println!("  {} ({:.2} MB) in {}", bundle_path.display(), size as f64 / 1e6, ms(t0.elapsed().as_secs_f64()));

    let engine = Engine::new(Bundle::open(&bundle_path)?, Box::new(CpuBackend::new(a.threads)?))?;
    let d = image.elems();
    let src = pair.a.sample_at(1.0, &NoiseStream::new(99, 0).normal(a.count * d));
    let run = |method, t: Option<usize>, steps| {
        let opts = TranslateOptions { method, t, steps: Some(steps), ..TranslateOptions::default() };
        let s = Instant::now();
        engine.translate(&src, &opts, &Silent).map(|r| (r, s.elapsed().as_secs_f64()))
    };
    let (ddib, ddib_s) = run(TranslateMethod::Ddib, Some(500), steps)?;
    let (ddib_full, ddib_full_s) = run(TranslateMethod::Ddib, Some(999), 100)?;
    let (otald, otald_s) = run(TranslateMethod::OtAld, None, steps)?;
    let gen = engine.generate(
        &GenerateOptions {
            method: GenerateMethod::DpmOt,
            domain: NetKey::B,
            count: a.count,
            nfe: 10,
            eta: 0.0,
            tau: None,
            seed: 3,
        },
        &Silent,
    )?;
    println!(
        "\n{} samples of domain A → B; error of the output's mean / covariance against B's exact moments:",
        a.count
    );
    println!("  {:<24} {:>5} {:>12} {:>12} {:>12}", "method", "NFE", "mean err", "cov err", "time/image");
    for (name, x, nfe, s) in [
        ("DDIB T=999 K=100".to_string(), &ddib_full.images, ddib_full.nfe, ddib_full_s),
        (format!("DDIB T=500 K={}", steps), &ddib.images, ddib.nfe, ddib_s),
        (format!("OT-ALD T=500 K={}", steps), &otald.images, otald.nfe, otald_s),
        ("DPM-OT (noise→B)".to_string(), &gen.images, gen.nfe, gen.decode.seconds + gen.map.seconds),
    ] {
        let (em, ec) = moment_errors(x, &pair.domain(NetKey::B).clone());
        println!("  {name:<24} {nfe:>5} {:>11.1}% {:>11.1}% {:>12}", em * 100.0, ec * 100.0, ms(s / a.count as f64));
    }
    println!(
        "  (the source A itself:         {:>11.1}% {:>11.1}%)",
        moment_errors(&src, &pair.b).0 * 100.0,
        moment_errors(&src, &pair.b).1 * 100.0
    );
    npy::write(&a.out.join("source.npy"), &image.shape(a.count), &src)?;
    npy::write(&a.out.join("ddib.npy"), &image.shape(a.count), &ddib.images)?;
    npy::write(&a.out.join("ot-ald.npy"), &image.shape(a.count), &otald.images)?;
    npy::write(&a.out.join("dpm-ot.npy"), &image.shape(a.count), &gen.images)?;
    let grid_path = a.out.join("grid.png");
    // Latent values span about ±2.5; show that range.
    let range = brenier::bundle::Normalization { low: -2.5, high: 2.5 };
    let rows = 8.min(a.count);
    write_atomic(&grid_path, &grid::grid(&[&src, &ddib.images, &otald.images], rows, image, range, 8)?)?;
    println!("\nwrote source/ddib/ot-ald/dpm-ot .npy and {} (rows: source | DDIB | OT-ALD)", grid_path.display());
    Ok(())
}
