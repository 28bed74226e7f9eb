//! Rebuilding a bundle with new maps: an export spec that reproduces an existing bundle (its
//! networks, settings, OT maps and neural maps), minus the maps a new solve or training replaces.

use brenier::bundle::Bundle;
use brenier::NetKey;

use crate::bundle::{ExportSpec, MapInput, NeuralMapInput};
use crate::error::Result;

/// `bundle` as an export spec, without the OT maps named in `drop_maps` and the neural maps
/// named in `drop_neural` (the maps' f16 targets widen to f32 here and narrow back unchanged).
pub fn spec_from_bundle(bundle: &Bundle, drop_maps: &[String], drop_neural: &[String]) -> Result<ExportSpec> {
    let m = bundle.manifest();
    let mut spec = ExportSpec::new(bundle.net_bytes(NetKey::A)?.to_vec(), bundle.net_bytes(NetKey::B)?.to_vec());
    spec.image = Some(m.image);
    spec.schedule = m.schedule.clone();
    spec.t_encode = m.t_encode;
    spec.steps = m.steps;
    spec.eta = m.eta;
    spec.normalization = m.normalization;
    spec.name_a = m.domains.a.clone();
    spec.name_b = m.domains.b.clone();
    // The nets are frozen already: their records come from the export that froze them.
    spec.fp16_records = [Some(m.nets.a.fp16.clone()), Some(m.nets.b.fp16.clone())];
    for old in m.ot_maps.iter().filter(|o| !drop_maps.contains(&o.name)) {
        let (heights, targets) = bundle.ot_map(old)?;
        spec.maps.push(MapInput {
            name: old.name.clone(),
            source: old.source.clone(),
            target: old.target,
            t: old.t,
            heights: heights.to_vec(),
            targets: targets.iter().map(|v| v.to_f32()).collect(),
            solve: old.solve.clone(),
        });
    }
    for old in m.neural_maps.iter().filter(|o| !drop_neural.contains(&o.name)) {
        spec.neural_maps.push(NeuralMapInput {
            name: old.name.clone(),
            source: old.source,
            target: old.target,
            t: old.t,
            onnx: bundle.neural_map_bytes(old)?.to_vec(),
            provenance: old.provenance.clone(),
            fp16_record: Some(old.net.fp16.clone()),
        });
    }
    Ok(spec)
}
