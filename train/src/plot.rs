//! Line plots as PNG (plotters) for loss curves and solver convergence. Text is drawn with the
//! DejaVu Sans font from Debian's `fonts-dejavu-core`, loaded once at first use.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;

pub const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

fn register_font() -> Result<()> {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let bytes = std::fs::read(FONT_PATH)
            .map_err(|e| format!("{FONT_PATH}: {e}; install it with `apt-get install fonts-dejavu-core`"))?;
        // plotters keeps the font for the whole process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| format!("{FONT_PATH} is not a usable TrueType font"))
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

/// One named series of (x, y) points.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// Writes a line plot to `path`; `log_y` plots log10 of y (values must be positive).
pub fn line_plot(path: &Path, title: &str, x_label: &str, y_label: &str, series: &[Series], log_y: bool) -> Result<()> {
    register_font()?;
    let tf = |y: f64| if log_y { y.max(1e-12).log10() } else { y };
    let pts: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.iter().map(|&(x, y)| (x, tf(y)))).collect();
    if pts.is_empty() {
        return Err(anyhow!("nothing to plot for {}", path.display()));
    }
    let (x0, x1) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let pad = ((y1 - y0) * 0.05).max(1e-9);
    let root = BitMapBackend::new(path, (900, 540)).into_drawing_area();
    let draw = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| draw(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1.max(x0 + 1.0), (y0 - pad)..(y1 + pad))
        .map_err(|e| draw(&e))?;
    let y_desc = if log_y { format!("log10 {y_label}") } else { y_label.to_string() };
    chart.configure_mesh().x_desc(x_label).y_desc(y_desc).draw().map_err(|e| draw(&e))?;
    let colors = [RGBColor(70, 130, 180), RGBColor(220, 80, 60), RGBColor(60, 160, 90), RGBColor(150, 90, 170)];
    for (i, s) in series.iter().enumerate() {
        let c = colors[i % colors.len()];
        chart
            .draw_series(LineSeries::new(s.points.iter().map(|&(x, y)| (x, tf(y))), c.stroke_width(2)))
            .map_err(|e| draw(&e))?
            .label(s.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| draw(&e))?;
    root.present().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Loss curve of a run from its `loss.csv`: raw and a 100-step moving average.
pub fn loss_curve(run: &Path) -> Result<std::path::PathBuf> {
    let text =
        std::fs::read_to_string(run.join("loss.csv")).with_context(|| format!("no loss.csv in {}", run.display()))?;
    let raw: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| {
            let (s, v) = l.split_once(',')?;
            Some((s.parse().ok()?, v.parse().ok()?))
        })
        .collect();
    let w = 100usize;
    let avg: Vec<(f64, f64)> = raw
        .windows(w.min(raw.len()).max(1))
        .map(|win| (win[win.len() - 1].0, win.iter().map(|p| p.1).sum::<f64>() / win.len() as f64))
        .collect();
    let out = run.join("loss.png");
    line_plot(
        &out,
        "ε-prediction loss",
        "step",
        "MSE",
        &[Series { name: "per step", points: raw }, Series { name: "mean of 100", points: avg }],
        true,
    )?;
    Ok(out)
}
