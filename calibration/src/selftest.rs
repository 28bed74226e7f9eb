//! `brenier selftest`: re-runs the quick calibration on this device and compares it with the
//! f32 references and figures the calibration record carries, check by check.

use brenier::backend::Precision;
use brenier::bundle::calibration::{
    CalibrationRecord, QUICK_EPS_SECTION, QUICK_INPUTS_SECTION, QUICK_LATENTS_SECTION, QUICK_NEURAL_SECTION,
    QUICK_OUTPUTS_SECTION,
};
use brenier::Engine;

use crate::agreement::assignments;
use crate::error::{CalibError, Result};
use crate::parity::relative_error;
use crate::quick::{matched_rms, run, QuickPlan};

/// ε in f32 on another machine or thread count: same graph, other kernels and summation order.
/// Measured differences are ~1e-6 of the output scale; 1e-3 leaves room for other SIMD widths.
pub const EPS_F32_TOL: f64 = 1e-3;
/// A reduced precision may differ from its recorded error by this factor (other f16 kernels)…
pub const REDUCED_FACTOR: f64 = 3.0;
/// …but is never held tighter than this (max error relative to the output scale).
pub const EPS_REDUCED_FLOOR: f64 = 1e-2;
/// OT-ALD outputs in f32 after 2K steps (model units, range width 2): rounding grows through
/// the steps but stays far below a visible change (1/255 of the range is 0.008).
pub const OUTPUT_F32_TOL: f64 = 0.02;
pub const OUTPUT_REDUCED_FLOOR: f64 = 0.05;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub name: String,
    pub pass: bool,
    pub measured: String,
    pub limit: String,
}

fn check(name: &str, pass: bool, measured: String, limit: String) -> Check {
    Check { name: name.into(), pass, measured, limit }
}

fn recorded(list: &[(Precision, f64)], p: Precision) -> Option<f64> {
    list.iter().find(|(q, _)| *q == p).map(|(_, v)| *v)
}

/// The tolerance of a network's output against its f32 reference in precision `p`: tight in
/// f32; else the error the quick run recorded (or, where the reduced pipelines did not run, the
/// worst parity-table entry of the networks `of` selects) times [`REDUCED_FACTOR`].
fn reduced_limit(
    p: Precision,
    quick: &[(Precision, f64)],
    record: &CalibrationRecord,
    of: impl Fn(&str) -> bool,
) -> f64 {
    match p {
        Precision::F32 => EPS_F32_TOL,
        _ => recorded(quick, p)
            // Emulated f16 is measured on single evaluations only (the parity table).
            .or_else(|| {
                record.parity.iter().filter(|x| x.precision == p && of(&x.net)).map(|x| x.max_rel_err).reduce(f64::max)
            })
            .map_or(EPS_REDUCED_FLOOR * 5.0, |r| (r * REDUCED_FACTOR).max(EPS_REDUCED_FLOOR)),
    }
}

/// Runs every check; an `Err` means the test could not run at all (no record, unreadable bundle).
pub fn selftest(engine: &Engine) -> Result<(CalibrationRecord, Vec<Check>)> {
    let bundle = engine.bundle();
    let record = bundle.calibration()?.ok_or_else(|| {
        CalibError::Invalid(format!(
            "{} has no calibration record; run `brenier calibrate --bundle {}` on the build machine first",
            bundle.path().display(),
            bundle.path().display()
        ))
    })?;
    let mut checks = vec![];
    let bad: Vec<String> =
        bundle.sections().iter().filter(|s| bundle.verify(&s.name).is_err()).map(|s| s.name.clone()).collect();
    checks.push(check(
        "bundle integrity",
        bad.is_empty(),
        if bad.is_empty() {
            format!("{} sections, checksums ok", bundle.sections().len())
        } else {
            format!("bad: {}", bad.join(", "))
        },
        "every checksum matches".into(),
    ));
    let q = &record.quick;
    let d = engine.dim();
    let inputs = bundle.f32_tensor(QUICK_INPUTS_SECTION)?;
    let want_eps = bundle.f32_tensor(QUICK_EPS_SECTION)?;
    let ref_latents = bundle.f32_tensor(QUICK_LATENTS_SECTION)?;
    let ref_out = bundle.f32_tensor(QUICK_OUTPUTS_SECTION)?;
    let plan = QuickPlan::from_record(engine, q)?;
    let p = engine.backend().precision();
    let n = q.count;

    // The OT kernel alone, on the stored f32 latents: this backend's assignment kernel.
    if let Some(spec) = &plan.map {
        let got = assignments(engine, spec, ref_latents)?;
        let same = got.iter().zip(&q.assignments).filter(|(a, b)| a == b).count();
        checks.push(check(
            "OT assignment kernel",
            same + 1 >= n,
            format!("{same}/{n} stored latents assigned as recorded"),
            format!("≥ {}/{n} (one near-tie may flip)", n.saturating_sub(1)),
        ));
    }

    let got = run(engine, &plan, inputs)?;
    let (eps_err, _) = relative_error(&got.eps, want_eps);
    let nets = ["a", "b"];
    let eps_limit = reduced_limit(p, &q.eps_rel_err, &record, |net| nets.contains(&net));
    checks.push(check(
        &format!("ε parity ({p}) vs f32 reference"),
        eps_err <= eps_limit,
        format!("max relative error {eps_err:.2e}"),
        format!("≤ {eps_limit:.1e}"),
    ));
    if !plan.neural.is_empty() {
        let want = bundle.f32_tensor(QUICK_NEURAL_SECTION)?;
        // A reference of another size (a record edited by hand, maps re-exported) cannot be
        // compared element by element: say so instead of comparing a prefix.
        if want.len() != got.neural.len() {
            return Err(CalibError::Invalid(format!(
                "{QUICK_NEURAL_SECTION} holds {} values but the record's maps ({}) give {}; run `brenier \
                 calibrate --quick` again",
                want.len(),
                q.neural_maps.join(", "),
                got.neural.len()
            )));
        }
        let (err, _) = relative_error(&got.neural, want);
        let limit = reduced_limit(p, &q.neural_rel_err, &record, |net| net.starts_with("map "));
        checks.push(check(
            &format!("neural map parity ({p}) vs f32 reference: {}", q.neural_maps.join(", ")),
            err <= limit,
            format!("max relative error {err:.2e}"),
            format!("≤ {limit:.1e}"),
        ));
    }

    if plan.map.is_some() {
        let same = got.assignments.iter().zip(&q.assignments).filter(|(a, b)| a == b).count();
        let want = match p {
            Precision::F32 => 1.0,
            _ => recorded(&q.latent_agreement, p).unwrap_or(0.75),
        };
        let min = ((want * n as f64).ceil() as usize).saturating_sub(1);
        checks.push(check(
            "OT assignments of encoded inputs",
            same >= min,
            format!("{same}/{n} as recorded"),
            format!("≥ {min}/{n}"),
        ));
    }

    let (rms, matched) = matched_rms(&got, ref_out, &q.assignments, d);
    let out_limit = match p {
        Precision::F32 => OUTPUT_F32_TOL,
        _ => recorded(&q.output_rms, p).map_or(OUTPUT_REDUCED_FLOOR * 2.0, |r| (2.0 * r).max(OUTPUT_REDUCED_FLOOR)),
    };
    checks.push(check(
        &format!("OT-ALD output (T = {}, K = {}) vs f32 reference", q.t, q.k),
        matched > 0 && rms <= out_limit,
        format!("RMS {rms:.4} over {matched} images with matching assignments"),
        format!("≤ {out_limit:.3}"),
    ));
    checks.push(check(
        "latency",
        true,
        format!(
            "{:.2} ms per network evaluation (batch {n}); recorded {:.2} ms on {}",
            got.ms_per_nfe, q.ms_per_nfe, record.machine.cpu
        ),
        "informational".into(),
    ));
    bundle.check_unchanged()?;
    Ok((record, checks))
}
