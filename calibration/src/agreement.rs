//! OT assignment agreement: how often the map picks the same target when the latents or the
//! scores are computed another way.

use brenier::bundle::calibration::OtAgreement;
use brenier::bundle::OtMapSpec;
use brenier::ot::{assign, nearest_target, soft_map};
use brenier::Engine;
use half::f16;

use crate::error::Result;

fn fraction_equal(a: &[usize], b: &[usize]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len().max(1) as f64
}

/// Hard assignments of `latents` under `spec`.
pub fn assignments(engine: &Engine, spec: &OtMapSpec, latents: &[f32]) -> Result<Vec<usize>> {
    let (h, y) = engine.bundle().ot_map(spec)?;
    Ok(engine.backend().ot_assign(latents, engine.dim(), y, h)?.into_iter().map(|a| a.index).collect())
}

/// Agreement of f32 assignments of `latents` with (1) queries rounded to f16, as a GPU's f16
/// GEMM sees them, (2) latents from the reduced-precision network (`reduced_latents`), and
/// (3) the soft map at `tau`: its output's nearest target.
pub fn ot_agreement(
    engine: &Engine,
    spec: &OtMapSpec,
    latents: &[f32],
    reduced_latents: Option<(&str, &[f32])>,
    tau: f32,
) -> Result<Vec<OtAgreement>> {
    let d = engine.dim();
    let (h, y) = engine.bundle().ot_map(spec)?;
    let reference: Vec<usize> = assign(latents, d, y, h)?.into_iter().map(|a| a.index).collect();
    let n = reference.len();
    let row = |comparison: String, agree: f64, tau: Option<f32>| OtAgreement {
        map: spec.name.clone(),
        comparison,
        queries: n,
        agree,
        tau,
    };
    let rounded: Vec<f32> = latents.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
    let by_f16: Vec<usize> = assign(&rounded, d, y, h)?.into_iter().map(|a| a.index).collect();
    let mut rows = vec![row("f16-queries".into(), fraction_equal(&by_f16, &reference), None)];
    if let Some((name, lat)) = reduced_latents {
        let got: Vec<usize> = assign(lat, d, y, h)?.into_iter().map(|a| a.index).collect();
        rows.push(row(format!("{name}-network"), fraction_equal(&got, &reference), None));
    }
    let soft = soft_map(latents, d, y, h, tau)?;
    let nearest: Vec<usize> = nearest_target(&soft, d, y)?.into_iter().map(|(i, _)| i).collect();
    rows.push(row("soft-vs-hard".into(), fraction_equal(&nearest, &reference), Some(tau)));
    Ok(rows)
}
