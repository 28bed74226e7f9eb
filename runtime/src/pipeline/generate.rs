//! Generation from noise through an OT map: DPM-OT (noise → data latents at an intermediate t_M,
//! then a few reverse steps) and prior-OT (seed 001: noise → the data diffused to the last train
//! step, removing the prior mismatch, then reverse steps).

use super::engine::{Engine, NetTime, Observer};
use super::mapping::MapStats;
use crate::bundle::{Manifest, NetKey, OtMapSpec, OtSource};
use crate::error::{Error, Result};
use crate::rng::NoiseStream;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenerateMethod {
    DpmOt,
    PriorOt,
}

impl GenerateMethod {
    /// The name users type and reports print (`dpm-ot`, `prior-ot`).
    pub fn as_str(self) -> &'static str {
        match self {
            GenerateMethod::DpmOt => "dpm-ot",
            GenerateMethod::PriorOt => "prior-ot",
        }
    }
}

impl std::fmt::Display for GenerateMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for GenerateMethod {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        [GenerateMethod::DpmOt, GenerateMethod::PriorOt]
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| Error::InvalidArgument(format!("generation method `{s}`: expected dpm-ot or prior-ot")))
    }
}

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub method: GenerateMethod,
    pub domain: NetKey,
    pub count: usize,
    /// Reverse steps (= network evaluations).
    pub nfe: usize,
    pub eta: f32,
    pub tau: Option<f32>,
    pub seed: u64,
}

impl GenerateOptions {
    /// The defaults with the method and the domain generated given by name ("dpm-ot", "b" or a
    /// domain's name), as the C and Python interfaces take them; `None` keeps the default.
    pub fn named(manifest: &Manifest, method: Option<&str>, domain: Option<&str>) -> Result<Self> {
        let base = GenerateOptions::default();
        Ok(GenerateOptions {
            method: method.map(str::parse).transpose()?.unwrap_or(base.method),
            domain: domain.map(|d| manifest.domain_key(d)).transpose()?.unwrap_or(base.domain),
            ..base
        })
    }
}

impl Default for GenerateOptions {
    /// DPM-OT into domain b, 10 evaluations, η = 0, the hard map: what every interface (CLI, C)
    /// does when not told otherwise.
    fn default() -> Self {
        GenerateOptions {
            method: GenerateMethod::DpmOt,
            domain: NetKey::B,
            count: 8,
            nfe: 10,
            eta: 0.0,
            tau: None,
            seed: 0,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Generation {
    #[serde(skip)]
    pub images: Vec<f32>,
    pub t: usize,
    pub nfe: usize,
    pub decode: NetTime,
    pub map: MapStats,
}

/// Noise stream ids: decode steps use 1..=K, the initial noise uses this one.
const PRIOR_STREAM: u64 = u64::MAX;

impl Engine {
    fn noise_map(&self, opts: &GenerateOptions) -> Result<&OtMapSpec> {
        let m = self.bundle().manifest();
        let last = self.schedule().n_train() - 1;
        let mut maps = m.ot_maps.iter().filter(|s| s.source == OtSource::Gaussian && s.target == opts.domain);
        let found = match opts.method {
            GenerateMethod::DpmOt => maps.min_by_key(|s| s.t),
            GenerateMethod::PriorOt => maps.find(|s| s.t == last),
        };
        found.ok_or_else(|| Error::NoOtMap {
            wanted: match opts.method {
                GenerateMethod::DpmOt => format!("noise->{} (Gaussian source)", opts.domain.as_str()),
                GenerateMethod::PriorOt => format!("noise->{} at t = {last} (prior-OT)", opts.domain.as_str()),
            },
            available: m.map_names(),
        })
    }

    pub fn generate(&self, opts: &GenerateOptions, obs: &dyn Observer) -> Result<Generation> {
        if opts.count == 0 {
            return Err(Error::InvalidArgument("the image count must be at least 1".into()));
        }
        // Refused before the noise is drawn: a count whose floats overflow, or exceed what one
        // allocation can address, would otherwise abort the process.
        let floats = opts
            .count
            .checked_mul(self.dim())
            .filter(|&n| n <= isize::MAX as usize / std::mem::size_of::<f32>())
            .ok_or_else(|| Error::InvalidArgument(format!("{} images are more than memory can address", opts.count)))?;
        let spec = self.noise_map(opts)?;
        let steps = opts.nfe.min(spec.t + 1);
        let mut x = NoiseStream::new(opts.seed, PRIOR_STREAM).normal(floats);
        let map = self.apply_map(spec, &mut x, opts.tau)?;
        let mut dec = NetTime::default();
        self.decode(opts.domain, &mut x, spec.t, steps, opts.eta, opts.seed, obs, &mut dec)?;
        // The OT targets were read in place from the mapping: refuse results computed from a
        // file that changed underneath.
        self.bundle().check_unchanged()?;
        Ok(Generation { images: x, t: spec.t, nfe: dec.nfe, decode: dec, map })
    }
}
