//! Line plots as PNG (plotters) for calibration reports, loss curves and solver convergence.
//! Drawn into memory and written through brenier's atomic writer, so a failed plot leaves no
//! partial file. Text uses DejaVu Sans from Debian's `fonts-dejavu-core`, loaded once.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{CalibError, Result};

pub const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

fn register_font(path: &Path) -> Result<()> {
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
    .map_err(|problem| CalibError::Plot { path: path.into(), problem })
}

/// One named series of (x, y) points.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// Axes of a plot; `log_x`/`log_y` plot log10 of the values (which must be positive).
pub struct Axes<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub log_x: bool,
    pub log_y: bool,
}

const SIZE: (u32, u32) = (900, 540);

/// Writes a line plot (with point markers) to `path`.
pub fn line_plot(path: &Path, axes: &Axes, series: &[Series]) -> Result<()> {
    register_font(path)?;
    let draw = |e: &dyn std::fmt::Display| CalibError::Plot { path: path.into(), problem: e.to_string() };
    let fx = |x: f64| if axes.log_x { x.max(1e-12).log10() } else { x };
    let fy = |y: f64| if axes.log_y { y.max(1e-12).log10() } else { y };
    let pts: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.iter().map(|&(x, y)| (fx(x), fy(y)))).collect();
    if pts.is_empty() || pts.iter().any(|p| !p.0.is_finite() || !p.1.is_finite()) {
        return Err(draw(&"no points, or a non-finite point, to plot"));
    }
    let (x0, x1) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let (xpad, ypad) = (((x1 - x0) * 0.03).max(1e-9), ((y1 - y0) * 0.05).max(1e-9));
    let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(axes.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((x0 - xpad)..(x1 + xpad), (y0 - ypad)..(y1 + ypad))
            .map_err(|e| draw(&e))?;
        let desc = |label: &str, log: bool| if log { format!("log10 {label}") } else { label.to_string() };
        chart
            .configure_mesh()
            .x_desc(desc(axes.x_label, axes.log_x))
            .y_desc(desc(axes.y_label, axes.log_y))
            .draw()
            .map_err(|e| draw(&e))?;
        let colors = [
            RGBColor(70, 130, 180),
            RGBColor(220, 80, 60),
            RGBColor(60, 160, 90),
            RGBColor(150, 90, 170),
            RGBColor(90, 90, 90),
            RGBColor(230, 160, 40),
        ];
        for (i, s) in series.iter().enumerate() {
            let c = colors[i % colors.len()];
            let p: Vec<(f64, f64)> = s.points.iter().map(|&(x, y)| (fx(x), fy(y))).collect();
            chart
                .draw_series(LineSeries::new(p.clone(), c.stroke_width(2)))
                .map_err(|e| draw(&e))?
                .label(s.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
            if p.len() <= 40 {
                chart.draw_series(p.iter().map(|&q| Circle::new(q, 3, c.filled()))).map_err(|e| draw(&e))?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| draw(&e))?;
        root.present().map_err(|e| draw(&e))?;
    }
    let png = encode_rgb(&rgb, SIZE).map_err(|e| draw(&e))?;
    brenier::io::write_atomic(path, &png)?;
    Ok(())
}

fn encode_rgb(rgb: &[u8], (w, h): (u32, u32)) -> std::result::Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()?.write_image_data(rgb)?;
    Ok(out)
}

/// The mean of each window of `w` points, at the window's last x.
pub fn moving_average(points: &[(f64, f64)], w: usize) -> Vec<(f64, f64)> {
    points
        .windows(w.min(points.len()).max(1))
        .map(|win| (win[win.len() - 1].0, win.iter().map(|p| p.1).sum::<f64>() / win.len() as f64))
        .collect()
}

/// Loss curve of a training run from its `loss.csv`: raw and a 100-step moving average.
pub fn loss_curve(run: &Path) -> Result<std::path::PathBuf> {
    let csv = run.join("loss.csv");
    let text = std::fs::read_to_string(&csv).map_err(|e| brenier::Error::io(&csv, e))?;
    let raw: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| {
            let (s, v) = l.split_once(',')?;
            Some((s.parse().ok()?, v.parse().ok()?))
        })
        .collect();
    let avg = moving_average(&raw, 100);
    let out = run.join("loss.png");
    let axes = Axes { title: "ε-prediction loss", x_label: "step", y_label: "MSE", log_x: false, log_y: true };
    line_plot(&out, &axes, &[Series { name: "per step", points: raw }, Series { name: "mean of 100", points: avg }])?;
    Ok(out)
}
