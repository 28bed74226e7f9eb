//! Applying a bundle's OT map to a batch of latents, hard or soft, with the memorisation
//! figure users need: how far each mapped latent is from its nearest stored target.

use std::time::Instant;

use half::slice::HalfFloatSliceExt;

use super::engine::Engine;
use crate::bundle::OtMapSpec;
use crate::error::Result;
use crate::ot::nearest_target;

/// What the map did to a batch.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MapStats {
    pub map: String,
    /// Target index per query (hard map only).
    pub assignments: Vec<usize>,
    /// Distance from each mapped latent to its nearest target (0 for the hard map, which
    /// returns stored targets).
    pub nearest_target_distance: Vec<f32>,
    /// RMS of the targets' L2 norms, the scale to judge those distances against (soft map only;
    /// computing it costs a pass over the targets the hard map does not need).
    pub target_rms: f32,
    pub seconds: f64,
}

impl Engine {
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
                let n = (targets.len() / d).max(1);
                let sq: f64 = targets.iter().map(|v| (v.to_f32() as f64).powi(2)).sum();
                stats.target_rms = (sq / n as f64).sqrt() as f32;
            }
            None => {
                let a = self.backend().ot_assign(latents, d, targets, heights)?;
                for (row, asg) in latents.chunks_exact_mut(d).zip(&a) {
                    targets[asg.index * d..(asg.index + 1) * d].convert_to_f32_slice(row);
                }
                stats.assignments = a.iter().map(|a| a.index).collect();
                stats.nearest_target_distance = vec![0.0; a.len()];
            }
        }
        stats.seconds = t0.elapsed().as_secs_f64();
        Ok(stats)
    }
}
