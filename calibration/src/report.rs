//! The calibration report: the record as JSON, a Markdown summary with the sweep table, and
//! PNG plots — quality against NFE for DDIB and OT-ALD, and the T ablation (quality and time
//! against T at fixed K, as in the OT-ALD paper's figure 3b).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use brenier::bundle::calibration::{CalibrationRecord, SweepPoint};

use crate::error::Result;
use crate::plot::{line_plot, Axes, Series};

/// Markdown summary of a record.
pub fn markdown(r: &CalibrationRecord) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Calibration\n\nMeasured on {} ({} {}, {} threads, backend {}), sweep precision {}, {} held-out inputs ({}), {} reference images.\n",
        r.machine.cpu, r.machine.os, r.machine.arch, r.machine.threads, r.machine.backend, r.precision,
        r.inputs.count, r.inputs.source, r.inputs.reference_count
    );
    let _ = writeln!(s, "## Network parity (reduced precision vs f32)\n");
    let _ =
        writeln!(s, "| net | precision | t | max rel err | mean rel err | ms/img f32 | ms/img reduced | slowdown |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for p in &r.parity {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2e} | {:.2e} | {:.2} | {:.2} | {:.1}× |",
            p.net,
            p.precision,
            p.ts.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", "),
            p.max_rel_err,
            p.mean_rel_err,
            p.ms_per_image_f32,
            p.ms_per_image,
            p.ms_per_image / p.ms_per_image_f32.max(1e-9)
        );
    }
    let _ = writeln!(s, "\n## OT assignment agreement\n\n| map | comparison | queries | agree |\n|---|---|---|---|");
    for a in &r.ot_agreement {
        let tau = a.tau.map(|t| format!(" (τ = {t})")).unwrap_or_default();
        let _ = writeln!(s, "| {} | {}{tau} | {} | {:.3} |", a.map, a.comparison, a.queries, a.agree);
    }
    if !r.sweep.is_empty() {
        let _ = writeln!(s, "\n## T×K sweep\n");
        let _ = writeln!(s, "| method | T | K | NFE | ms/img | target acc | Fréchet | SSIM to src | RMS to src |");
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
        for p in &r.sweep {
            let q = &p.quality;
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.1} | {:.3} | {:.2} | {:.3} | {:.3} |",
                p.method,
                p.t,
                p.k,
                p.nfe,
                p.ms_per_image,
                q.target_accuracy,
                q.frechet,
                q.ssim_to_source.unwrap_or(f64::NAN),
                q.rms_to_source.unwrap_or(f64::NAN)
            );
        }
    }
    let _ = writeln!(s, "\n## Recommended defaults\n\n| target | precision | method | T | K | ms/img | why |\n|---|---|---|---|---|---|---|");
    for x in &r.recommended {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.1} | {} |",
            x.target, x.precision, x.method, x.t, x.k, x.ms_per_image, x.reason
        );
    }
    let q = &r.quick;
    let ts: Vec<String> = q.eps_ts.iter().map(|t| t.to_string()).collect();
    let _ = writeln!(
        s,
        "\n## Quick check (what `brenier selftest` repeats)\n\n{} inputs, {} at T = {}, K = {}; ε at t = {}; {:.2} ms per network evaluation. Reduced precision: ε error {}, output RMS {}, assignment agreement {}.",
        q.count, q.map.as_deref().map_or("DDIB".to_string(), |m| format!("OT-ALD with map {m}")), q.t, q.k, ts.join(", "), q.ms_per_nfe,
        per_precision(&q.eps_rel_err), per_precision(&q.output_rms), per_precision(&q.latent_agreement)
    );
    if !q.neural_maps.is_empty() {
        let _ = writeln!(
            s,
            "\nNeural maps checked against their stored f32 outputs: {}; reduced-precision error {}.",
            q.neural_maps.join(", "),
            per_precision(&q.neural_rel_err)
        );
    }
    s
}

/// `f16 1.2e-2` per recorded precision; "not measured" when the record has none (selftest then
/// skips the check in that precision).
fn per_precision(list: &[(brenier::backend::Precision, f64)]) -> String {
    if list.is_empty() {
        return "not measured".into();
    }
    list.iter().map(|(p, v)| format!("{p} {v:.2e}")).collect::<Vec<_>>().join(", ")
}

fn series<'a>(
    name: &'a str,
    pts: impl Iterator<Item = &'a SweepPoint>,
    y: impl Fn(&SweepPoint) -> f64,
    x: impl Fn(&SweepPoint) -> f64,
) -> Series<'a> {
    let mut points: Vec<(f64, f64)> = pts.map(|p| (x(p), y(p))).collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    Series { name, points }
}

/// Writes `calibration.json`, `calibration.md` and the plots into `dir`; returns their paths.
pub fn write_report(r: &CalibrationRecord, dir: &Path, default_k: usize) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| brenier::Error::Write { path: dir.into(), source: e })?;
    let mut files = vec![];
    let json = dir.join("calibration.json");
    brenier::io::write_atomic(
        &json,
        &serde_json::to_vec_pretty(r).map_err(|e| crate::CalibError::Invalid(e.to_string()))?,
    )?;
    files.push(json);
    let md = dir.join("calibration.md");
    brenier::io::write_atomic(&md, markdown(r).as_bytes())?;
    files.push(md);
    if r.sweep.is_empty() {
        return Ok(files);
    }
    let at = |m: &'static str, t: usize| move |p: &&SweepPoint| p.method == m && p.t == t;
    let nfe = |p: &SweepPoint| p.nfe as f64;
    let names: Vec<(String, &'static str, usize)> =
        [("DDIB", "ddib", 999), ("DDIB", "ddib", 500), ("OT-ALD", "ot-ald", 500), ("neural OT", "neural-ot", 500)]
            .into_iter()
            .map(|(label, m, t)| (format!("{label} T={t}"), m, t))
            .collect();
    for (file, ylabel, y) in [
        (
            "quality-vs-nfe.png",
            "Fréchet distance (lower is better)",
            (|p: &SweepPoint| p.quality.frechet) as fn(&SweepPoint) -> f64,
        ),
        ("accuracy-vs-nfe.png", "target-class accuracy", |p: &SweepPoint| p.quality.target_accuracy),
    ] {
        let ss: Vec<Series> = names
            .iter()
            .map(|(label, m, t)| series(label, r.sweep.iter().filter(at(m, *t)), y, nfe))
            .filter(|s| !s.points.is_empty())
            .collect();
        if ss.is_empty() {
            continue;
        }
        let path = dir.join(file);
        let axes = Axes {
            title: "quality against network evaluations",
            x_label: "NFE (encode + decode)",
            y_label: ylabel,
            log_x: true,
            log_y: false,
        };
        line_plot(&path, &axes, &ss)?;
        files.push(path);
    }
    // T ablation at the bundle's default K (or the nearest K the sweep has).
    let k = r.sweep.iter().map(|p| p.k).min_by_key(|k| k.abs_diff(default_k)).unwrap_or(default_k);
    let at_k = |m: &'static str| move |p: &&SweepPoint| p.method == m && p.k == k;
    let t_of = |p: &SweepPoint| p.t as f64;
    let title = format!("T ablation at K = {k}");
    for (file, ylabel, y) in [
        (
            "t-ablation-quality.png",
            "Fréchet distance (lower is better)",
            (|p: &SweepPoint| p.quality.frechet) as fn(&SweepPoint) -> f64,
        ),
        ("t-ablation-time.png", "ms per image", |p: &SweepPoint| p.ms_per_image),
    ] {
        let ss: Vec<Series> = [("DDIB", "ddib"), ("OT-ALD", "ot-ald")]
            .into_iter()
            .map(|(label, m)| series(label, r.sweep.iter().filter(at_k(m)), y, t_of))
            .filter(|s| !s.points.is_empty())
            .collect();
        if ss.is_empty() {
            continue;
        }
        let path = dir.join(file);
        let axes = Axes { title: &title, x_label: "encode time T", y_label: ylabel, log_x: false, log_y: false };
        line_plot(&path, &axes, &ss)?;
        files.push(path);
    }
    Ok(files)
}
