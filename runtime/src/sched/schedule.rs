//! The discrete VP noise schedule: β_t for train steps t = 0..N_train−1 and ᾱ_t = Π_{s≤t}(1−β_s),
//! with ᾱ_{−1} := 1 standing for clean data (docs/DESIGN.md, "The math").

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Largest schedule a manifest may declare; bounds the table allocated from it.
pub const MAX_TRAIN_STEPS: usize = 100_000;
/// Smallest ᾱ the last train step may reach. DDIM divides by √ᾱ_t; below this the update's
/// coefficients (~1/√ᾱ) leave f32's comfortable range and a step turns finite latents into Inf.
pub const MIN_ALPHA_BAR: f64 = 1e-20;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ScheduleSpec {
    /// β linearly spaced from `beta_start` to `beta_end` over `n_train` steps (DDPM's schedule).
    Linear { n_train: usize, beta_start: f64, beta_end: f64 },
    /// An explicit β list.
    Betas { betas: Vec<f64> },
}

impl Default for ScheduleSpec {
    fn default() -> Self {
        ScheduleSpec::Linear { n_train: 1000, beta_start: 1e-4, beta_end: 0.02 }
    }
}

impl std::fmt::Display for ScheduleSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScheduleSpec::Linear { n_train, beta_start, beta_end } => {
                write!(f, "linear β {beta_start:e} → {beta_end:e} over {n_train} train steps")
            }
            ScheduleSpec::Betas { betas } => write!(f, "{} train steps with explicit β", betas.len()),
        }
    }
}

impl ScheduleSpec {
    pub fn n_train(&self) -> usize {
        match self {
            ScheduleSpec::Linear { n_train, .. } => *n_train,
            ScheduleSpec::Betas { betas } => betas.len(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        let n = self.n_train();
        if n == 0 || n > MAX_TRAIN_STEPS {
            return Err(Error::Manifest(format!("schedule has {n} steps, expected 1..={MAX_TRAIN_STEPS}")));
        }
        let ok = |b: f64| b.is_finite() && b > 0.0 && b < 1.0;
        match self {
            ScheduleSpec::Linear { beta_start, beta_end, .. } => {
                if !ok(*beta_start) || !ok(*beta_end) {
                    return Err(Error::Manifest(format!(
                        "linear schedule β from {beta_start} to {beta_end}: both must be in (0, 1)"
                    )));
                }
            }
            ScheduleSpec::Betas { betas } => {
                if let Some(i) = betas.iter().position(|&b| !ok(b)) {
                    return Err(Error::Manifest(format!("schedule β[{i}] = {} is not in (0, 1)", betas[i])));
                }
            }
        }
        let last = (0..n).fold(1.0f64, |acc, i| acc * (1.0 - self.beta(i)));
        if last < MIN_ALPHA_BAR {
            return Err(Error::Manifest(format!(
                "schedule drives ᾱ to {last:.3e} by its last step (minimum {MIN_ALPHA_BAR:e}): the data signal \
                 vanishes and DDIM cannot invert it; use fewer steps or smaller β"
            )));
        }
        Ok(())
    }

    /// β of train step `i` (< n_train), computed without building the table.
    fn beta(&self, i: usize) -> f64 {
        match self {
            ScheduleSpec::Linear { n_train: 1, beta_start, .. } => *beta_start,
            ScheduleSpec::Linear { n_train, beta_start, beta_end } => {
                beta_start + (beta_end - beta_start) * i as f64 / (*n_train - 1) as f64
            }
            ScheduleSpec::Betas { betas } => betas[i],
        }
    }

    pub fn betas(&self) -> Vec<f64> {
        (0..self.n_train()).map(|i| self.beta(i)).collect()
    }
}

/// ᾱ table of a validated schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    alpha_bar: Vec<f64>,
}

impl Schedule {
    pub fn new(spec: &ScheduleSpec) -> Result<Schedule> {
        spec.validate()?;
        let mut acc = 1.0f64;
        let alpha_bar = spec
            .betas()
            .into_iter()
            .map(|b| {
                acc *= 1.0 - b;
                acc
            })
            .collect();
        Ok(Schedule { alpha_bar })
    }

    pub fn n_train(&self) -> usize {
        self.alpha_bar.len()
    }

    /// ᾱ_t for t in −1..N_train; t = −1 is clean data (ᾱ = 1).
    pub fn alpha_bar(&self, t: i64) -> f64 {
        if t < 0 {
            1.0
        } else {
            self.alpha_bar[t as usize]
        }
    }
}
