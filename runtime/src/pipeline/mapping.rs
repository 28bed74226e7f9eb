//! Applying a bundle's OT map to a batch of latents, hard or soft, with the memorisation
//! figure users need: how far each mapped latent is from its nearest stored target.

use std::time::Instant;

use super::engine::Engine;
use crate::bundle::{OtMapSpec, OtSource};
use crate::error::Result;
use crate::ot::{gather_targets, nearest_target};

/// What the map did to a batch.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MapStats {
    pub map: String,
    /// Target index per query (hard map only).
    pub assignments: Vec<usize>,
    /// Distance from each mapped latent to its nearest target (0 for the hard map, which
    /// returns stored targets).
    pub nearest_target_distance: Vec<f32>,
    /// RMS of the targets' L2 norms, the scale to judge those distances against (soft and neural
    /// maps; computing it costs a pass over the targets the hard map does not need).
    pub target_rms: f32,
    pub seconds: f64,
}

impl Engine {
    /// Maps `latents` (B×D) in place with the manifest's neural map number `index`. The
    /// nearest-target distance is measured against the stored OT targets of the same domains
    /// and time, where the bundle has them, so users can see the map is not a lookup.
    pub fn apply_neural_map(&self, index: usize, latents: &mut [f32]) -> Result<MapStats> {
        let d = self.dim();
        let batch = latents.len() / d.max(1);
        let (spec, net) = self.neural_map(index)?;
        let t0 = Instant::now();
        let mapped = net.run(latents, batch, spec.t as i64)?;
        let seconds = t0.elapsed().as_secs_f64();
        if mapped.iter().any(|v| !v.is_finite()) {
            return Err(crate::error::Error::NetworkNonFinite {
                net: net.label().into(),
                stage: format!("neural map at t = {}", spec.t),
            });
        }
        latents.copy_from_slice(&mapped);
        let mut stats = MapStats { map: spec.name.clone(), seconds, ..Default::default() };
        let source = OtSource::Domain { domain: spec.source };
        if let Some(ot) = self.bundle().manifest().find_map_at(&source, spec.target, spec.t) {
            let (_, targets) = self.bundle().ot_map(ot)?;
            stats.nearest_target_distance = nearest_target(latents, d, targets)?.into_iter().map(|(_, r)| r).collect();
            stats.target_rms = target_rms(targets, d);
        }
        Ok(stats)
    }

    /// Maps `latents` (B×D) in place with `spec`; `tau` selects the soft map.
    pub fn apply_map(&self, spec: &OtMapSpec, latents: &mut [f32], tau: Option<f32>) -> Result<MapStats> {
        let d = self.dim();
        let (heights, targets) = self.bundle().ot_map(spec)?;
        let t0 = Instant::now();
        let mut stats = MapStats { map: spec.name.clone(), ..Default::default() };
        match tau {
            Some(tau) => {
                let mapped = self.backend().ot_soft_map(latents, d, targets, heights, tau)?;
                latents.copy_from_slice(&mapped);
                stats.nearest_target_distance =
                    nearest_target(latents, d, targets)?.into_iter().map(|(_, r)| r).collect();
                stats.target_rms = target_rms(targets, d);
            }
            None => {
                let a = self.backend().ot_assign(latents, d, targets, heights)?;
                gather_targets(&a, targets, d, latents);
                stats.assignments = a.iter().map(|a| a.index).collect();
                stats.nearest_target_distance = vec![0.0; a.len()];
            }
        }
        stats.seconds = t0.elapsed().as_secs_f64();
        Ok(stats)
    }
}

/// RMS of the targets' L2 norms.
fn target_rms(targets: &[half::f16], d: usize) -> f32 {
    let n = (targets.len() / d.max(1)).max(1);
    let sq: f64 = targets.iter().map(|v| (v.to_f32() as f64).powi(2)).sum();
    (sq / n as f64).sqrt() as f32
}
