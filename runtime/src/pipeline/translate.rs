//! A→B (or B→A) translation: DDIB (encode with the source net, decode with the target net) and
//! OT-ALD (the same, with the OT map applied to the latents at T).

use super::engine::{Engine, NetTime, Observer};
use super::mapping::MapStats;
use crate::bundle::{NetKey, Normalization, OtSource};
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
    /// Translates a batch of model-space images (B×C×H×W).
    pub fn translate(&self, images: &[f32], opts: &TranslateOptions, obs: &dyn Observer) -> Result<Translation> {
        self.check_batch(images, "input images")?;
        let m = self.bundle().manifest();
        warn_out_of_range(images, m.normalization);
        let to = opts.from.other();
        let map = match opts.method {
            TranslateMethod::Ddib | TranslateMethod::NeuralOt => None,
            TranslateMethod::OtAld => {
                let source = OtSource::Domain { domain: opts.from.as_str().into() };
                let wanted = format!("{}->{}", opts.from.as_str(), to.as_str());
                let found = match opts.t {
                    Some(t) => m.find_map_at(&source, to, t),
                    None => m.find_map(&source, to),
                };
                Some(found.ok_or_else(|| match (opts.t, m.find_map(&source, to)) {
                    // A map exists, at other times: OT-ALD must encode to the time its targets live at.
                    (Some(t), Some(_)) => Error::InvalidArgument(format!(
                        "the bundle's OT maps {wanted} were solved between latents at t = {}; OT-ALD must \
                         encode to one of those (got --t {t})",
                        m.maps_between(&source, to).map(|s| s.t.to_string()).collect::<Vec<_>>().join(", ")
                    )),
                    _ => Error::NoOtMap { wanted, available: m.map_names() },
                })?)
            }
        };
        let neural = match opts.method {
            TranslateMethod::NeuralOt => {
                let wanted = format!("{}->{}", opts.from.as_str(), to.as_str());
                let found = m.find_neural_map(opts.from, opts.t).map(|(i, spec)| (i, spec.t));
                Some(found.ok_or_else(|| Error::NoNeuralMap {
                    wanted: match opts.t {
                        Some(t) => format!("{wanted} at t = {t}"),
                        None => wanted,
                    },
                    available: m.neural_map_names(),
                })?)
            }
            _ => None,
        };
        let t = match (opts.t, map, neural) {
            (Some(t), _, _) => t,
            (None, Some(spec), _) => spec.t,
            (None, None, Some((_, t))) => t,
            (None, None, None) => m.t_encode,
        };
        if t >= self.schedule().n_train() {
            return Err(Error::InvalidArgument(format!("--t {t} must be below {}", self.schedule().n_train())));
        }
        let steps = opts.steps.unwrap_or(m.steps.min(t + 1));
        let eta = opts.eta.unwrap_or(m.eta);
        if !(0.0..=1.0).contains(&eta) {
            return Err(Error::InvalidArgument(format!("η = {eta} must be in [0, 1]")));
        }
        if opts.tau.is_some() && map.is_none() {
            return Err(Error::InvalidArgument(
                "--tau applies to the semi-discrete OT map (--method ot-ald); DDIB and the neural map have none".into(),
            ));
        }
        let mut x = images.to_vec();
        let (mut enc, mut dec) = (NetTime::default(), NetTime::default());
        self.encode(opts.from, &mut x, t, steps, obs, &mut enc)?;
        let map_stats = match (map, neural) {
            (Some(spec), _) => Some(self.apply_map(spec, &mut x, opts.tau)?),
            (None, Some((index, _))) => Some(self.apply_neural_map(index, &mut x)?),
            (None, None) => None,
        };
        self.decode(to, &mut x, t, steps, eta, opts.seed, obs, &mut dec)?;
        // The OT targets were read in place from the mapping: refuse results computed from a
        // file that changed underneath.
        self.bundle().check_unchanged()?;
        Ok(Translation { images: x, t, steps, eta, nfe: enc.nfe + dec.nfe, encode: enc, decode: dec, map: map_stats })
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
