//! A→B (or B→A) translation: DDIB (encode with the source net, decode with the target net) and
//! OT-ALD (the same, with the OT map applied to the latents at T).

use super::engine::{Engine, NetTime, Observer};
use super::mapping::MapStats;
use crate::bundle::{Manifest, NetKey, Normalization};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranslateMethod {
    Ddib,
    OtAld,
    /// OT-ALD's encode and decode with the bundle's neural map in place of the semi-discrete one.
    NeuralOt,
}

impl TranslateMethod {
    pub const ALL: [TranslateMethod; 3] = [TranslateMethod::Ddib, TranslateMethod::OtAld, TranslateMethod::NeuralOt];

    /// The name users type and reports print (`ddib`, `ot-ald`, `neural-ot`).
    pub fn as_str(self) -> &'static str {
        match self {
            TranslateMethod::Ddib => "ddib",
            TranslateMethod::OtAld => "ot-ald",
            TranslateMethod::NeuralOt => "neural-ot",
        }
    }
}

impl std::fmt::Display for TranslateMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TranslateMethod {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        TranslateMethod::ALL.into_iter().find(|m| m.as_str() == s).ok_or_else(|| {
            Error::InvalidArgument(format!("translation method `{s}`: expected ddib, ot-ald or neural-ot"))
        })
    }
}

#[derive(Debug, Clone)]
pub struct TranslateOptions {
    pub method: TranslateMethod,
    /// Source domain (the target is the other one).
    pub from: NetKey,
    /// Encode time T; `None` takes the manifest's (and for OT-ALD the map's) T.
    pub t: Option<usize>,
    /// Steps K for each of encode and decode; `None` takes the manifest's default.
    pub steps: Option<usize>,
    pub eta: Option<f32>,
    /// Soft OT map temperature (OT-ALD only).
    pub tau: Option<f32>,
    pub seed: u64,
}

impl TranslateOptions {
    /// The defaults with the method and the source domain given by name ("ot-ald", "a" or a
    /// domain's name), as the C and Python interfaces take them; `None` keeps the default.
    pub fn named(manifest: &Manifest, method: Option<&str>, from: Option<&str>) -> Result<Self> {
        let base = TranslateOptions::default();
        Ok(TranslateOptions {
            method: method.map(str::parse).transpose()?.unwrap_or(base.method),
            from: from.map(|d| manifest.domain_key(d)).transpose()?.unwrap_or(base.from),
            ..base
        })
    }
}

impl Default for TranslateOptions {
    fn default() -> Self {
        TranslateOptions {
            method: TranslateMethod::OtAld,
            from: NetKey::A,
            t: None,
            steps: None,
            eta: None,
            tau: None,
            seed: 0,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Translation {
    #[serde(skip)]
    pub images: Vec<f32>,
    pub t: usize,
    pub steps: usize,
    pub eta: f32,
    pub nfe: usize,
    pub encode: NetTime,
    pub decode: NetTime,
    pub map: Option<MapStats>,
}

impl Engine {
    /// Translates a batch of model-space images (B×C×H×W): [`Engine::plan`], then its stages.
    pub fn translate(&self, images: &[f32], opts: &TranslateOptions, obs: &dyn Observer) -> Result<Translation> {
        self.check_batch(images, "input images")?;
        warn_out_of_range(images, self.bundle().manifest().normalization);
        self.plan(opts)?.run(images, obs)
    }
}

/// Inputs are expected inside the manifest's normalisation range. Values outside it are legal
/// (a user may feed latents, or scaled data on purpose) but usually mean a normalisation
/// mistake, such as pixels 0..255 given as model space: they are reported, not refused.
fn warn_out_of_range(images: &[f32], n: Normalization) {
    let slack = 0.01 * (n.high - n.low);
    let outside = images.iter().filter(|&&v| v < n.low - slack || v > n.high + slack).count();
    if outside > 0 {
        let lo = images.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = images.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        log::warn!(
            "{outside} of {} input values lie outside the bundle's model range [{}, {}] (input min {lo}, max {hi}); \
             if these are pixels 0..255, map them onto the range first or pass PNG files",
            images.len(),
            n.low,
            n.high
        );
    }
}
