//! The calibration record (`calibration` section, JSON) and its reference tensors: what
//! `brenier calibrate` measured on the machine that shipped the bundle, and what
//! `brenier selftest` re-checks on the device. Written by `brenier-calibration`; the runtime only
//! reads it, so a device build needs no calibration code to show or verify it.

use serde::{Deserialize, Serialize};

use super::format::{Dtype, SectionKind};
use super::manifest::{Manifest, OtSource};
use super::reader::Bundle;
use crate::error::{Error, Result};
use crate::precision::Precision;

/// Section names of the record and its reference tensors.
pub const CALIBRATION_SECTION: &str = "calibration";
/// Held-out source images of the quick check, f32 [n, C, H, W] in model space.
pub const QUICK_INPUTS_SECTION: &str = "calibration.inputs";
/// f32 ε of both networks on the quick inputs noised to each quick t: [2·n_t·n, C, H, W]
/// (net-major, then t, then image).
pub const QUICK_EPS_SECTION: &str = "calibration.eps";
/// f32 latents of the quick inputs encoded to the quick T: [n, C, H, W].
pub const QUICK_LATENTS_SECTION: &str = "calibration.latents";
/// f32 OT-ALD translations of the quick inputs at the quick (T, K): [n, C, H, W].
pub const QUICK_OUTPUTS_SECTION: &str = "calibration.outputs";

/// f32 outputs of each neural map the quick record names, on the quick inputs noised to the
/// map's time: [n_maps·n, C, H, W] (map-major).
pub const QUICK_NEURAL_SECTION: &str = "calibration.neural";

/// Bumped when a field changes meaning; a reader refuses newer records rather than misread them.
pub const RECORD_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CalibrationRecord {
    pub version: u32,
    /// Seconds since the Unix epoch when the record was made.
    pub created_unix: u64,
    pub machine: MachineInfo,
    /// Precision the sweep and the recommendation were measured in.
    pub precision: Precision,
    /// Held-out inputs: how many, and where they came from.
    pub inputs: InputsInfo,
    pub parity: Vec<NetParity>,
    pub ot_agreement: Vec<OtAgreement>,
    #[serde(default)]
    pub sweep: Vec<SweepPoint>,
    #[serde(default)]
    pub recommended: Vec<Recommendation>,
    pub quick: QuickRecord,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MachineInfo {
    pub arch: String,
    pub os: String,
    pub cpu: String,
    pub threads: usize,
    pub backend: String,
    pub brenier_version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InputsInfo {
    pub source: String,
    pub count: usize,
    pub reference_count: usize,
    pub classifier: Option<String>,
}

/// One network in a reduced precision against f32 on the same inputs. Errors are relative to
/// the output's scale, not per element (ε crosses zero everywhere, so per-element ratios are
/// unbounded): max_rel = max|e − e₃₂| / max|e₃₂|, mean_rel = mean|e − e₃₂| / mean|e₃₂|.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NetParity {
    pub net: String,
    pub precision: Precision,
    pub ts: Vec<i64>,
    pub max_rel_err: f64,
    pub mean_rel_err: f64,
    /// Time of one evaluation per image, f32 and reduced, at the measured batch.
    pub ms_per_image_f32: f64,
    pub ms_per_image: f64,
}

/// How often OT assignments agree between two ways of computing them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OtAgreement {
    pub map: String,
    /// `f16-queries` (kernel: queries rounded to f16, as a GPU GEMM sees them), `f16-network`
    /// (latents encoded by the reduced-precision network) or `soft-vs-hard` (the soft map's
    /// nearest target against the hard assignment, at `tau`).
    pub comparison: String,
    pub queries: usize,
    pub agree: f64,
    #[serde(default)]
    pub tau: Option<f32>,
}

/// Quality of one method at one (T, K), with its measured latency.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SweepPoint {
    pub method: String,
    pub t: usize,
    pub k: usize,
    pub nfe: usize,
    pub ms_per_image: f64,
    pub quality: Quality,
}

/// Quality of a batch of outputs, by the evaluation classifier (`brenier-calibration::classify`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Quality {
    pub count: usize,
    /// Fraction classified as the target class.
    pub target_accuracy: f64,
    /// Fréchet distance to real target images in classifier-feature space.
    pub frechet: f64,
    /// Mean SSIM and RMS to the source images (faithfulness), when there are sources.
    pub ssim_to_source: Option<f64>,
    pub rms_to_source: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Recommendation {
    /// Device profile name (`cpu-x86_64`, `jetson-orin`, …).
    pub target: String,
    pub precision: Precision,
    pub method: String,
    pub t: usize,
    pub k: usize,
    pub ms_per_image: f64,
    pub reason: String,
}

/// What selftest re-runs, the f32 references it compares with, and the tolerances it uses.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QuickRecord {
    pub count: usize,
    pub map: Option<String>,
    pub t: usize,
    pub k: usize,
    pub eps_ts: Vec<i64>,
    /// Hard assignments of the reference latents.
    pub assignments: Vec<usize>,
    /// Measured here: max relative ε error per precision (the parity figures of the quick inputs).
    pub eps_rel_err: Vec<(Precision, f64)>,
    /// RMS of (reduced − f32) OT-ALD outputs per precision, in model units.
    pub output_rms: Vec<(Precision, f64)>,
    /// Agreement of assignments from reduced-precision latents, per precision.
    pub latent_agreement: Vec<(Precision, f64)>,
    pub ms_per_nfe: f64,
    /// Neural maps whose f32 outputs are stored (`calibration.neural`), in that order.
    #[serde(default)]
    pub neural_maps: Vec<String>,
    /// Measured here: max relative error of the neural maps' outputs per precision.
    #[serde(default)]
    pub neural_rel_err: Vec<(Precision, f64)>,
}

/// Most quick-check inputs a record may name; bounds what selftest allocates from it.
pub const MAX_QUICK_COUNT: usize = 4096;

impl CalibrationRecord {
    /// Parses a record and checks it against the manifest and its reference sections:
    /// `reference_len(name)` gives the f32 values a section holds (None when it is missing or
    /// not an f32 tensor). A record edited by hand or cut short is refused here, naming the
    /// field, instead of surfacing as an index out of range in selftest.
    pub fn parse(
        bytes: &[u8],
        manifest: &Manifest,
        reference_len: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<CalibrationRecord> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let record: CalibrationRecord = serde_path_to_error::deserialize(de).map_err(|e| {
            Error::section(
                CALIBRATION_SECTION,
                format!("invalid record at `{}`: {}; run `brenier calibrate` again", e.path(), e.inner()),
            )
        })?;
        if record.version > RECORD_VERSION {
            return Err(Error::section(
                CALIBRATION_SECTION,
                format!(
                    "record version {} is newer than this runtime reads ({RECORD_VERSION}); upgrade brenier",
                    record.version
                ),
            ));
        }
        record.validate(manifest, reference_len)?;
        Ok(record)
    }

    fn validate(&self, m: &Manifest, reference_len: &dyn Fn(&str) -> Option<usize>) -> Result<()> {
        let bad = |field: &str, problem: String| {
            Err(Error::section(
                CALIBRATION_SECTION,
                format!("`{field}` {problem}; run `brenier calibrate` again (a record must not be edited by hand)"),
            ))
        };
        let n_train = m.schedule.n_train();
        let in_schedule = |t: i64| (0..n_train as i64).contains(&t);
        let q = &self.quick;
        if q.count == 0 || q.count > MAX_QUICK_COUNT {
            return bad("quick.count", format!("is {}, expected 1..={MAX_QUICK_COUNT}", q.count));
        }
        if q.eps_ts.is_empty() {
            return bad("quick.eps_ts", "is empty".into());
        }
        if let Some(t) = q.eps_ts.iter().find(|&&t| !in_schedule(t)) {
            return bad("quick.eps_ts", format!("holds t = {t}, outside the schedule's 0..{n_train}"));
        }
        if q.t >= n_train {
            return bad("quick.t", format!("is {}, outside the schedule's 0..{n_train}", q.t));
        }
        if q.k == 0 || q.k > q.t + 1 {
            return bad("quick.k", format!("is {}, expected 1..={} for T = {}", q.k, q.t + 1, q.t));
        }
        match &q.map {
            Some(name) => {
                let Some(map) = m.ot_maps.iter().find(|s| &s.name == name) else {
                    return bad("quick.map", format!("names `{name}`, not a map of this bundle ({})", m.map_names()));
                };
                let from_a =
                    map.source == OtSource::Domain { domain: super::NetKey::A } && map.target == super::NetKey::B;
                if !from_a || map.t != q.t {
                    return bad("quick.map", format!("`{name}` is not an a->b map at T = {}", q.t));
                }
                if q.assignments.len() != q.count {
                    return bad(
                        "quick.assignments",
                        format!("has {} entries for {} inputs", q.assignments.len(), q.count),
                    );
                }
                if let Some(i) = q.assignments.iter().find(|&&i| i >= map.count) {
                    return bad("quick.assignments", format!("holds target {i} of a map with {}", map.count));
                }
            }
            None if !q.assignments.is_empty() => return bad("quick.assignments", "are given without a map".into()),
            None => {}
        }
        for (i, name) in q.neural_maps.iter().enumerate() {
            if !m.neural_maps.iter().any(|s| &s.name == name) {
                return bad("quick.neural_maps", format!("names `{name}`, not a neural map of this bundle"));
            }
            if q.neural_maps[..i].contains(name) {
                return bad("quick.neural_maps", format!("names `{name}` twice"));
            }
        }
        let figures = [
            ("quick.eps_rel_err", &q.eps_rel_err),
            ("quick.output_rms", &q.output_rms),
            ("quick.latent_agreement", &q.latent_agreement),
            ("quick.neural_rel_err", &q.neural_rel_err),
        ];
        let figure = |v: f64| v.is_finite() && v >= 0.0;
        for (field, list) in figures {
            if let Some((p, v)) = list.iter().find(|(_, v)| !figure(*v)) {
                return bad(field, format!("holds {v} for {p}"));
            }
        }
        if let Some((p, v)) = q.latent_agreement.iter().find(|(_, v)| *v > 1.0) {
            return bad("quick.latent_agreement", format!("holds {v} for {p}, above 1"));
        }
        if !figure(q.ms_per_nfe) {
            return bad("quick.ms_per_nfe", format!("is {}", q.ms_per_nfe));
        }
        for (i, p) in self.parity.iter().enumerate() {
            if let Some(t) = p.ts.iter().find(|&&t| !in_schedule(t)) {
                return bad(&format!("parity[{i}].ts"), format!("holds t = {t}, outside the schedule's 0..{n_train}"));
            }
            // Selftest takes its reduced-precision ε limit from these errors.
            let values = [p.max_rel_err, p.mean_rel_err, p.ms_per_image_f32, p.ms_per_image];
            if let Some(v) = values.iter().find(|v| !figure(**v)) {
                return bad(&format!("parity[{i}]"), format!("holds {v}"));
            }
        }
        for (i, a) in self.ot_agreement.iter().enumerate() {
            if !(0.0..=1.0).contains(&a.agree) {
                return bad(&format!("ot_agreement[{i}].agree"), format!("is {}, not a fraction", a.agree));
            }
        }
        let steps_ok = |t: usize, k: usize| t < n_train && (1..=t + 1).contains(&k);
        for (i, p) in self.sweep.iter().enumerate() {
            if !steps_ok(p.t, p.k) {
                return bad(&format!("sweep[{i}]"), format!("has T = {}, K = {}", p.t, p.k));
            }
            let q = &p.quality;
            let scores = [p.ms_per_image, q.target_accuracy, q.frechet];
            if scores.iter().any(|v| !figure(*v)) || q.target_accuracy > 1.0 {
                let what =
                    format!("has {} ms/image, accuracy {}, Fréchet {}", p.ms_per_image, q.target_accuracy, q.frechet);
                return bad(&format!("sweep[{i}]"), what);
            }
        }
        for (i, r) in self.recommended.iter().enumerate() {
            if !steps_ok(r.t, r.k) {
                return bad(&format!("recommended[{i}]"), format!("has T = {}, K = {}", r.t, r.k));
            }
        }
        // Every reference holds exactly what the record says it does: a short one would compare
        // a prefix (or nothing) and pass.
        // count ≤ 4096 and the image ≤ 2²⁴ values keep `per` in range; the lists are bounded by
        // the record's own length, but multiply with checks anyway.
        let per = q.count * m.image.elems();
        let times = |n: usize| n.saturating_mul(per);
        let mut want = vec![
            (QUICK_INPUTS_SECTION, per),
            (QUICK_EPS_SECTION, times(q.eps_ts.len().saturating_mul(2))),
            (QUICK_LATENTS_SECTION, per),
            (QUICK_OUTPUTS_SECTION, per),
        ];
        if !q.neural_maps.is_empty() {
            want.push((QUICK_NEURAL_SECTION, times(q.neural_maps.len())));
        }
        for (section, values) in want {
            match reference_len(section) {
                Some(found) if found == values => {}
                Some(found) => {
                    return Err(Error::section(
                        section,
                        format!(
                            "holds {found} f32 values but the calibration record needs {values}; run \
                             `brenier calibrate --quick` again"
                        ),
                    ))
                }
                None => {
                    return Err(Error::section(
                        section,
                        "is missing or not an f32 tensor, but the calibration record needs it; run `brenier \
                         calibrate --quick` again",
                    ))
                }
            }
        }
        Ok(())
    }
}

impl Bundle {
    /// The calibration record, if the bundle has one, validated against the manifest and its
    /// reference sections.
    pub fn calibration(&self) -> Result<Option<CalibrationRecord>> {
        let Ok(entry) = self.entry(CALIBRATION_SECTION) else { return Ok(None) };
        if !entry.is_bytes(SectionKind::Calibration) {
            return Err(Error::section(CALIBRATION_SECTION, "must be JSON bytes (kind calibration, u8 [len])"));
        }
        let bytes = self.bytes(CALIBRATION_SECTION)?;
        let reference_len = |name: &str| {
            self.entry(name)
                .ok()
                .filter(|e| e.kind == SectionKind::Tensor && e.dtype == Dtype::F32)
                .map(|e| (e.len / 4) as usize)
        };
        CalibrationRecord::parse(bytes, self.manifest(), &reference_len).map(Some)
    }
}
