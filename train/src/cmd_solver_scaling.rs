//! `brenier-train solver-scaling`: the OT height solver's time, memory and work against N and D,
//! measured on this machine into a results file (benches/results/solver-scaling.json), with the
//! multiply-adds a certified solve needs where a size is out of reach.
//!
//! Cases, each a source measure and N targets at T = 500 (ᾱ ≈ 0.078):
//! - `fashion` (D = 784): targets are Fashion-MNIST training boots noised forward to T (each boot
//!   once per 6000 targets, with fresh noise for every further round: N = 12 000 draws each boot
//!   twice); the source is the training sneakers noised forward. The demo's geometry, at any N.
//! - `smooth64` (D = 12 288, 3×64×64): no 64×64 photographs ship with this project, so images are
//!   smooth random colour fields (a few random low-frequency waves per channel), noised forward
//!   the same way: the size of an ADM-class model's latents, with real-image-like correlations.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use brenier::rng::NoiseStream;
use brenier::sched::Schedule;
use brenier_export::ot::{resolving_samples, solve_heights, ForwardNoise, SolveConfig, SolveReport};
use brenier_train::data::{load_fashion_mnist, Split, FASHION_DIR};
use half::f16;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `fashion` (D = 784) or `smooth64` (D = 12 288).
    #[arg(long)]
    case: String,
    /// Target counts to solve, in order.
    #[arg(long, value_delimiter = ',')]
    n: Vec<usize>,
    #[arg(long, default_value_t = 0.1)]
    tol: f32,
    /// Source images (for `smooth64`; `fashion` uses every training sneaker).
    #[arg(long, default_value_t = 4000)]
    sources: usize,
    /// The results file; existing entries for other (case, N) are kept.
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Entry {
    case: String,
    n: usize,
    d: usize,
    tol: f32,
    seconds: f64,
    /// Peak resident memory of the process after this solve (VmHWM; the process's largest
    /// solve so far, the cases run in increasing N).
    peak_rss_mib: f64,
    full_score_madds: f64,
    /// Multiply-adds per second spent scoring samples against targets (the measured rate the
    /// projections below use).
    madds_per_second: f64,
    certified: bool,
    report: SolveReport,
}

/// A smooth random image in model space [−1, 1]: per channel, a sum of 6 waves of random
/// frequency (≤ 3 cycles across), phase and amplitude.
fn smooth_image(c: usize, h: usize, w: usize, rng: &NoiseStream, i: u64) -> Vec<f32> {
    let mut out = vec![0f32; c * h * w];
    for ch in 0..c {
        let z = NoiseStream::new(rng.key() ^ i, ch as u64).normal(6 * 4);
        for k in 0..6 {
            let (fy, fx) = (z[4 * k] * 1.5, z[4 * k + 1] * 1.5);
            let (phase, amp) = (z[4 * k + 2] * 3.0, 0.3 * z[4 * k + 3]);
            for y in 0..h {
                for x in 0..w {
                    let t = std::f32::consts::TAU * (fy * y as f32 / h as f32 + fx * x as f32 / w as f32) + phase;
                    out[(ch * h + y) * w + x] += amp * t.sin();
                }
            }
        }
    }
    out.iter_mut().for_each(|v| *v = v.tanh());
    out
}

pub fn run(a: Args) -> Result<()> {
    let ab = Schedule::new(&Default::default())?.alpha_bar(500);
    let (sources, target_pool, d): (Vec<f32>, Vec<f32>, usize) = match a.case.as_str() {
        "fashion" => {
            let train = load_fashion_mnist(FASHION_DIR.as_ref(), Split::Train)?;
            (train.filter_classes(&[7]).pixels, train.filter_classes(&[9]).pixels, 784)
        }
        "smooth64" => {
            let rng = NoiseStream::new(64, 0);
            let make = |n: usize, offset: u64| -> Vec<f32> {
                (0..n as u64).flat_map(|i| smooth_image(3, 64, 64, &rng, offset + i)).collect()
            };
            let max_n = a.n.iter().copied().max().unwrap_or(0);
            (make(a.sources, 0), make(max_n.min(6000), 1 << 32), 12_288)
        }
        other => anyhow::bail!("--case {other}: expected fashion or smooth64"),
    };
    let pool = target_pool.len() / d;
    let mut entries: Vec<Entry> = std::fs::read(&a.output)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| serde_json::from_value(v["entries"].clone()).ok())
        .unwrap_or_default();
    for &n in &a.n {
        // Targets: the pool's images in turn, each noised forward with its own draw.
        let z = NoiseStream::new(500, n as u64).normal(n * d);
        let targets: Vec<f16> = z
            .chunks(d)
            .enumerate()
            .flat_map(|(i, z)| brenier::sched::noise_forward(ab, &target_pool[(i % pool) * d..(i % pool + 1) * d], z))
            .map(f16::from_f32)
            .collect();
        let source = ForwardNoise { images: &sources, d, alpha_bar: ab, seed: 7 };
        let cfg = SolveConfig { tol: a.tol, ..SolveConfig::default() };
        println!(
            "{} N = {n}, D = {d}: certification needs {} held-out samples per check",
            a.case,
            (resolving_samples(n, a.tol) as f32 * cfg.heldout_factor) as usize
        );
        let t0 = Instant::now();
        let (_, report) = solve_heights(&targets, &source, &cfg, None, |p| {
            if p.iter % 50 == 0 {
                println!(
                    "  round {} iteration {} fit {} samples: error {:.3}",
                    p.round, p.iter, p.fit_samples, p.fit_mass_err
                );
            }
        })?;
        let seconds = t0.elapsed().as_secs_f64();
        let peak = brenier::pipeline::memory::peak_rss_bytes().unwrap_or(0) as f64 / 1048576.0;
        println!(
            "  {}: {:.0} s, {:.2e} multiply-adds scoring samples, peak RSS {peak:.0} MiB, held-out error {:.3} + {:.3}",
            if report.converged { "certified" } else { "NOT certified" },
            seconds,
            report.full_score_madds,
            report.certificate.rms_rel_mass_err,
            report.certificate.margin
        );
        entries.retain(|e| !(e.case == a.case && e.n == n));
        entries.push(Entry {
            case: a.case.clone(),
            n,
            d,
            tol: a.tol,
            seconds,
            peak_rss_mib: peak,
            full_score_madds: report.full_score_madds,
            madds_per_second: report.full_score_madds / seconds,
            certified: report.converged,
            report,
        });
        entries.sort_by(|x, y| x.case.cmp(&y.case).then(x.n.cmp(&y.n)));
        write(&a.output, &entries)?;
    }
    Ok(())
}

/// The results with the projection a certified solve needs: about 2·N/tol² fit samples (the fit
/// set's own sampling error is √(N/M)), each scored against N targets of D values.
fn write(path: &std::path::Path, entries: &[Entry]) -> Result<()> {
    let projection = |n: f64, d: f64, tol: f64| 2.0 * n / (tol * tol) * n * d;
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let rate = |case: &str| {
        let e: Vec<&Entry> = entries.iter().filter(|e| e.case == case).collect();
        e.last().map(|e| e.madds_per_second)
    };
    let goals: Vec<serde_json::Value> = [("fashion", 12_000usize, 784usize, 300.0), ("smooth64", 10_000, 12_288, 1800.0)]
        .iter()
        .map(|&(case, n, d, budget)| {
            let need = projection(n as f64, d as f64, 0.1);
            let measured = entries.iter().find(|e| e.case == case && e.n == n);
            serde_json::json!({
                "case": case, "n": n, "d": d, "tol": 0.1, "goal_seconds": budget,
                "multiply_adds_needed": need,
                "projected_seconds_at_measured_rate": rate(case).map(|r| need / r),
                "measured": measured.map(|e| serde_json::json!({ "seconds": e.seconds, "certified": e.certified, "peak_rss_mib": e.peak_rss_mib })),
            })
        })
        .collect();
    let out = serde_json::json!({
        "command": "brenier-train solver-scaling --case fashion|smooth64 --n N1,N2,… -o benches/results/solver-scaling.json",
        "machine": { "cpu": cpu, "threads": rayon::current_num_threads() },
        "floor": "a certified solve scores about 2·N/tol² fit samples (the fit set's sampling error is √(N/M) in relative cell mass) plus 16·√(2N)/tol² held-out samples against all N targets: ~2·N²·D/tol² multiply-adds",
        "goals": goals,
        "entries": entries,
    });
    brenier::io::write_atomic(path, &serde_json::to_vec_pretty(&out)?).context("writing the results")?;
    Ok(())
}
