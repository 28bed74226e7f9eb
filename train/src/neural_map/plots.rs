//! Loss curves of neural-map runs: one run's objective, value gap and HJB residual, and several
//! runs side by side (the stability comparison with and without the HJB term).

use std::path::{Path, PathBuf};

use anyhow::Result;
use brenier_calibration::plot::{line_plot, moving_average, Axes, Series};

use super::StepLog;

const SMOOTH: usize = 50;

fn series(log: &[StepLog], f: impl Fn(&StepLog) -> f32) -> Vec<(f64, f64)> {
    moving_average(&log.iter().map(|l| (l.step as f64, f(l) as f64)).collect::<Vec<_>>(), SMOOTH)
}

/// Writes `out/losses.png` (objective and value gap) and `out/hjb.png` (the residual, log scale).
pub fn run_curves(out: &Path, log: &[StepLog]) -> Result<[PathBuf; 2]> {
    let losses = out.join("losses.png");
    line_plot(
        &losses,
        &Axes {
            title: "neural OT map (mean of 50 steps)",
            x_label: "step",
            y_label: "loss",
            log_x: false,
            log_y: false,
        },
        &[
            Series { name: "objective L (maps)", points: series(log, |l| l.objective) },
            Series { name: "value gap (V)", points: series(log, |l| l.value_gap) },
            Series { name: "transport cost", points: series(log, |l| l.cost) },
        ],
    )?;
    let hjb = out.join("hjb.png");
    line_plot(
        &hjb,
        &Axes {
            title: "HJB residual (mean of 50 steps)",
            x_label: "step",
            y_label: "mean squared residual",
            log_x: false,
            log_y: true,
        },
        &[Series { name: "residual", points: series(log, |l| l.hjb_residual.max(1e-8)) }],
    )?;
    Ok([losses, hjb])
}

/// One curve per run of |objective| on a log scale: divergence shows as a climb.
pub fn compare(png: &Path, runs: &[(String, Vec<StepLog>)]) -> Result<()> {
    let series: Vec<Series> =
        runs.iter().map(|(name, log)| Series { name, points: series(log, |l| l.objective.abs().max(1e-6)) }).collect();
    line_plot(
        png,
        &Axes {
            title: "training stability: |objective|, mean of 50 steps",
            x_label: "step",
            y_label: "|L|",
            log_x: false,
            log_y: true,
        },
        &series,
    )?;
    Ok(())
}

/// Reads a run's `loss.csv` back.
pub fn read_log(run: &Path) -> Result<Vec<StepLog>> {
    let path = run.join("loss.csv");
    let text = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    text.lines()
        .skip(1)
        .map(|line| {
            let v: Vec<&str> = line.split(',').collect();
            let f = |i: usize| -> Result<f32> {
                v.get(i)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| anyhow::anyhow!("{}: bad line `{line}`", path.display()))
            };
            Ok(StepLog { step: f(0)? as usize, objective: f(1)?, value_gap: f(2)?, hjb_residual: f(3)?, cost: f(4)? })
        })
        .collect()
}
