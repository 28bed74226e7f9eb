//! The calibration record (`calibration` section, JSON) and its reference tensors: what
//! `brenier calibrate` measured on the machine that shipped the bundle, and what
//! `brenier selftest` re-checks on the device. Written by `brenier-calibration`; the runtime only
//! reads it, so a device build needs no calibration code to show or verify it.

use serde::{Deserialize, Serialize};

use super::reader::Bundle;
use crate::backend::Precision;
use crate::error::{Error, Result};

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

impl Bundle {
    /// The calibration record, if the bundle has one.
    pub fn calibration(&self) -> Result<Option<CalibrationRecord>> {
        if self.entry(CALIBRATION_SECTION).is_err() {
            return Ok(None);
        }
        let bytes = self.bytes(CALIBRATION_SECTION)?;
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
        Ok(Some(record))
    }
}
