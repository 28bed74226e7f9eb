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

/// How one check came out. `Skip` is a check with nothing measured to compare against on this
/// precision: it says so rather than pass against a made-up threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Fail,
    Skip,
    /// A figure shown for information, with nothing to pass or fail (latency).
    Info,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
            Status::Info => "INFO",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub measured: String,
    pub limit: String,
}

impl Check {
    pub fn failed(&self) -> bool {
        self.status == Status::Fail
    }
}

fn check(name: &str, pass: bool, measured: String, limit: String) -> Check {
    Check { name: name.into(), status: if pass { Status::Pass } else { Status::Fail }, measured, limit }
}

/// A check whose limit comes from a measurement the record may lack for precision `p`.
fn check_against(name: &str, p: Precision, limit: Option<f64>, measured: String, pass: impl Fn(f64) -> bool) -> Check {
    match limit {
        Some(l) => check(name, pass(l), measured, format!("≤ {l:.1e}")),
        None => Check {
            name: name.into(),
            status: Status::Skip,
            measured,
            limit: format!(
                "no {p} reference recorded on this precision; run `brenier calibrate --precision {p}` on the device"
            ),
        },
    }
}

fn recorded(list: &[(Precision, f64)], p: Precision) -> Option<f64> {
    list.iter().find(|(q, _)| *q == p).map(|(_, v)| *v)
}

/// What selftest holds each comparison to in precision `p`. In f32: the fixed tolerances above.
/// In a reduced precision: the error the calibration record measured for it, with room for
/// another device's kernels; `None` where the record measured nothing in `p` (the check then
/// reports itself skipped rather than judge against an invented number).
#[derive(Debug, Clone, PartialEq)]
pub struct Tolerances {
    /// Max ε error relative to the output scale.
    pub eps: Option<f64>,
    /// Max neural-map output error relative to the output scale.
    pub neural: Option<f64>,
    /// Fraction of encoded inputs that must keep their recorded assignment.
    pub agreement: Option<f64>,
    /// RMS of the OT-ALD outputs against the f32 reference, model units.
    pub output_rms: Option<f64>,
}

impl Tolerances {
    pub fn for_precision(record: &CalibrationRecord, p: Precision) -> Tolerances {
        let q = &record.quick;
        if p == Precision::F32 {
            return Tolerances {
                eps: Some(EPS_F32_TOL),
                neural: Some(EPS_F32_TOL),
                agreement: Some(1.0),
                output_rms: Some(OUTPUT_F32_TOL),
            };
        }
        // The quick pipeline's own figure where it ran in `p`, else the worst parity-table
        // entry of the networks `of` selects (emulated f16 is measured on single evaluations).
        let network = |quick: &[(Precision, f64)], of: &dyn Fn(&str) -> bool| {
            recorded(quick, p)
                .or_else(|| {
                    let table = record.parity.iter().filter(|x| x.precision == p && of(&x.net));
                    table.map(|x| x.max_rel_err).reduce(f64::max)
                })
                .map(|r| (r * REDUCED_FACTOR).max(EPS_REDUCED_FLOOR))
        };
        Tolerances {
            eps: network(&q.eps_rel_err, &|net| net == "a" || net == "b"),
            neural: network(&q.neural_rel_err, &|net| net.starts_with("map ")),
            agreement: recorded(&q.latent_agreement, p),
            output_rms: recorded(&q.output_rms, p).map(|r| (2.0 * r).max(OUTPUT_REDUCED_FLOOR)),
        }
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
    let tol = Tolerances::for_precision(&record, p);
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
    checks.push(check_against(
        &format!("ε parity ({p}) vs f32 reference"),
        p,
        tol.eps,
        format!("max relative error {eps_err:.2e}"),
        |l| eps_err <= l,
    ));
    if !plan.neural.is_empty() {
        // The record's validation at open guarantees the reference holds every map's outputs.
        let want = bundle.f32_tensor(QUICK_NEURAL_SECTION)?;
        let (err, _) = relative_error(&got.neural, want);
        checks.push(check_against(
            &format!("neural map parity ({p}) vs f32 reference: {}", q.neural_maps.join(", ")),
            p,
            tol.neural,
            format!("max relative error {err:.2e}"),
            |l| err <= l,
        ));
    }

    if plan.map.is_some() {
        let same = got.assignments.iter().zip(&q.assignments).filter(|(a, b)| a == b).count();
        let name = "OT assignments of encoded inputs";
        let measured = format!("{same}/{n} as recorded");
        checks.push(match tol.agreement {
            Some(w) => {
                let min = ((w * n as f64).ceil() as usize).saturating_sub(1);
                check(name, same >= min, measured, format!("≥ {min}/{n}"))
            }
            None => check_against(name, p, None, measured, |_| false),
        });
    }

    let (rms, matched) = matched_rms(&got, ref_out, &q.assignments, d);
    checks.push(check_against(
        &format!("OT-ALD output (T = {}, K = {}) vs f32 reference", q.t, q.k),
        p,
        tol.output_rms,
        format!("RMS {rms:.4} over {matched} images with matching assignments"),
        |l| matched > 0 && rms <= l,
    ));
    checks.push(Check {
        name: "latency".into(),
        status: Status::Info,
        measured: format!(
            "{:.2} ms per network evaluation (batch {n}); recorded {:.2} ms on {}",
            got.ms_per_nfe, q.ms_per_nfe, record.machine.cpu
        ),
        limit: "informational".into(),
    });
    bundle.check_unchanged()?;
    Ok((record, checks))
}

#[cfg(test)]
mod tests {
    use brenier::bundle::calibration::{InputsInfo, MachineInfo, NetParity, QuickRecord};

    use super::*;

    fn record() -> CalibrationRecord {
        CalibrationRecord {
            version: 1,
            created_unix: 0,
            machine: MachineInfo {
                arch: "x86_64".into(),
                os: "linux".into(),
                cpu: "test".into(),
                threads: 2,
                backend: "cpu".into(),
                brenier_version: "0".into(),
            },
            precision: Precision::F32,
            inputs: InputsInfo { source: "test".into(), count: 8, reference_count: 8, classifier: None },
            parity: vec![],
            ot_agreement: vec![],
            sweep: vec![],
            recommended: vec![],
            quick: QuickRecord {
                count: 8,
                map: None,
                t: 500,
                k: 10,
                eps_ts: vec![0],
                assignments: vec![],
                eps_rel_err: vec![],
                output_rms: vec![],
                latent_agreement: vec![],
                ms_per_nfe: 1.0,
                neural_maps: vec![],
                neural_rel_err: vec![],
            },
        }
    }

    #[test]
    fn reduced_precision_checks_without_a_recorded_measurement_have_no_limit() {
        let mut r = record();
        let none = Tolerances::for_precision(&r, Precision::F16);
        assert_eq!(none, Tolerances { eps: None, neural: None, agreement: None, output_rms: None });
        // f32 never needs a recorded figure.
        assert!(Tolerances::for_precision(&r, Precision::F32).output_rms.is_some());

        // Emulated f16 measured on single evaluations only: the ε limit follows the parity table,
        // the pipeline checks still have nothing to compare with.
        r.parity.push(NetParity {
            net: "a".into(),
            precision: Precision::F16,
            ts: vec![0],
            max_rel_err: 0.014,
            mean_rel_err: 0.005,
            ms_per_image_f32: 1.0,
            ms_per_image: 90.0,
        });
        let t = Tolerances::for_precision(&r, Precision::F16);
        assert!((t.eps.unwrap() - 0.042).abs() < 1e-9, "{t:?}");
        assert_eq!((t.neural, t.agreement, t.output_rms), (None, None, None));

        // Measured on the device: the pipeline figures set the limits.
        r.quick.latent_agreement = vec![(Precision::F16, 0.875)];
        r.quick.output_rms = vec![(Precision::F16, 0.04)];
        let t = Tolerances::for_precision(&r, Precision::F16);
        assert_eq!(t.agreement, Some(0.875));
        assert!((t.output_rms.unwrap() - 0.08).abs() < 1e-12, "{t:?}");
    }
}
