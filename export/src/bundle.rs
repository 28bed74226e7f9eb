//! Assembling a bundle: two ingested networks, any number of OT maps (targets shared between
//! maps that use the same ones), the manifest, written atomically.

use std::path::Path;

use brenier::bundle::manifest::{
    Domains, Fp16Report, Manifest, Nets, NeuralMapSpec, Normalization, OtMapSpec, OtSource, SolveRecord,
};
use brenier::bundle::{Bundle, ImageSpec, NetKey, SectionKind, MANIFEST_SECTION};
use brenier::error::check_finite;
use brenier::sched::ScheduleSpec;
use half::f16;

use crate::error::{ExportError, Result};
use crate::ingest::{ingest, inspect};
use brenier::bundle::{write_bundle, Section};

/// One OT map to store.
#[derive(Debug, Clone)]
pub struct MapInput {
    pub name: String,
    pub source: OtSource,
    pub target: NetKey,
    pub t: usize,
    pub heights: Vec<f32>,
    /// N×C×H×W latents (f32 here, stored f16).
    pub targets: Vec<f32>,
    /// The solve's record, when this export (or the one the map comes from) solved it.
    pub solve: Option<SolveRecord>,
}

/// One neural OT map to store: an ONNX network with the ε-networks' `x`/`t` inputs.
#[derive(Debug, Clone)]
pub struct NeuralMapInput {
    /// e.g. `a->b`.
    pub name: String,
    pub source: NetKey,
    pub target: NetKey,
    pub t: usize,
    pub onnx: Vec<u8>,
    pub provenance: serde_json::Value,
    /// The fp16 record of the export that froze `onnx`, when it comes from a bundle.
    pub fp16_record: Option<Fp16Report>,
}

impl NeuralMapInput {
    /// The section name: `map.ab@t500` for `a->b` at T = 500.
    pub fn section(&self) -> String {
        format!("map.{}{}@t{}", self.source.as_str(), self.target.as_str(), self.t)
    }
}

#[derive(Debug, Clone)]
pub struct ExportSpec {
    pub net_a: Vec<u8>,
    pub net_b: Vec<u8>,
    /// Image shape; `None` takes it from the networks' declared input, else from the targets.
    pub image: Option<ImageSpec>,
    pub schedule: ScheduleSpec,
    pub t_encode: usize,
    pub steps: usize,
    pub eta: f32,
    pub normalization: Normalization,
    pub name_a: String,
    pub name_b: String,
    pub maps: Vec<MapInput>,
    pub neural_maps: Vec<NeuralMapInput>,
    pub fp16: bool,
    /// The fp16 records of `net_a` and `net_b` when they come from a bundle (already frozen):
    /// carried into the new manifest instead of re-measured (see [`crate::ingest::ingest`]).
    pub fp16_records: [Option<Fp16Report>; 2],
    pub provenance: serde_json::Value,
}

impl ExportSpec {
    pub fn new(net_a: Vec<u8>, net_b: Vec<u8>) -> ExportSpec {
        ExportSpec {
            net_a,
            net_b,
            image: None,
            schedule: ScheduleSpec::default(),
            t_encode: 500,
            steps: 25,
            eta: 0.0,
            normalization: Normalization::default(),
            name_a: "a".into(),
            name_b: "b".into(),
            maps: vec![],
            neural_maps: vec![],
            fp16: true,
            fp16_records: [None, None],
            provenance: serde_json::Value::Null,
        }
    }
}

fn resolve_image(spec: &ExportSpec) -> Result<ImageSpec> {
    if let Some(img) = spec.image {
        return Ok(img);
    }
    for (bytes, label) in [(&spec.net_a, "net A"), (&spec.net_b, "net B")] {
        let (_, sig) = inspect(bytes, label)?;
        let [c, h, w] = sig.image_dims;
        if c > 0 && h > 0 && w > 0 {
            return Ok(ImageSpec { channels: c, height: h, width: w });
        }
    }
    Err(ExportError::invalid("the networks declare a symbolic image size; pass --image C,H,W"))
}

/// Builds every section of the bundle (validating all inputs) without writing anything.
pub fn build_sections(spec: &ExportSpec) -> Result<(Vec<Section>, Manifest)> {
    let image = resolve_image(spec)?;
    let d = image.elems();
    let [carried_a, carried_b] = &spec.fp16_records;
    let label_a = format!("net A ({})", spec.name_a);
    let label_b = format!("net B ({})", spec.name_b);
    let net_a = ingest(&spec.net_a, &label_a, image, spec.t_encode, spec.fp16, "net.a", carried_a.as_ref())?;
    let net_b = ingest(&spec.net_b, &label_b, image, spec.t_encode, spec.fp16, "net.b", carried_b.as_ref())?;
    let mut sections = vec![];
    let mut maps = vec![];
    // Targets already stored, by content, so maps with the same targets share one section.
    let mut stored: Vec<(Vec<f16>, String)> = vec![];
    for (i, map) in spec.maps.iter().enumerate() {
        let n = map.heights.len();
        if n == 0 || map.targets.len() != n * d {
            return Err(ExportError::invalid(format!(
                "OT map `{}`: {} heights and {} target values; targets must be [{n}, {}, {}, {}]",
                map.name,
                n,
                map.targets.len(),
                image.channels,
                image.height,
                image.width
            )));
        }
        check_finite(&map.heights, &format!("heights of OT map `{}`", map.name), "")?;
        check_finite(&map.targets, &format!("targets of OT map `{}`", map.name), "")?;
        let half: Vec<f16> = map.targets.iter().map(|&v| f16::from_f32(v)).collect();
        if let Some(j) = half.iter().position(|v| !v.is_finite()) {
            return Err(ExportError::invalid(format!(
                "targets of OT map `{}` overflow f16 at index {j} (|value| > 65504)",
                map.name
            )));
        }
        let targets_name = match stored.iter().find(|(v, _)| *v == half) {
            Some((_, name)) => name.clone(),
            None => {
                let name = format!("ot.targets.{}", stored.len());
                sections.push(Section::f16_tensor(&name, &[n, image.channels, image.height, image.width], &half));
                stored.push((half, name.clone()));
                name
            }
        };
        let heights_name = format!("ot.heights.{i}");
        sections.push(Section::f32_tensor(&heights_name, &[n], &map.heights));
        maps.push(OtMapSpec {
            name: map.name.clone(),
            source: map.source.clone(),
            target: map.target,
            t: map.t,
            heights: heights_name,
            targets: targets_name,
            count: n,
            solve: map.solve.clone(),
        });
    }
    let mut neural_maps = vec![];
    for map in &spec.neural_maps {
        if map.source == map.target {
            return Err(ExportError::invalid(format!(
                "neural map `{}` goes from `{}` to `{}`: it must map a->b or b->a",
                map.name,
                map.source.as_str(),
                map.target.as_str()
            )));
        }
        let section = map.section();
        let label = format!("neural map {}", map.name);
        let net = ingest(&map.onnx, &label, image, map.t, spec.fp16, &section, map.fp16_record.as_ref())?;
        neural_maps.push(NeuralMapSpec {
            name: map.name.clone(),
            source: map.source,
            target: map.target,
            t: map.t,
            net: net.spec,
            provenance: map.provenance.clone(),
        });
        sections.push(Section::bytes(&section, SectionKind::Onnx, net.onnx));
    }
    let manifest = Manifest {
        schedule: spec.schedule.clone(),
        t_encode: spec.t_encode,
        steps: spec.steps,
        eta: spec.eta,
        image,
        normalization: spec.normalization,
        domains: Domains { a: spec.name_a.clone(), b: spec.name_b.clone() },
        nets: Nets { a: net_a.spec, b: net_b.spec },
        ot_maps: maps,
        neural_maps,
        provenance: serde_json::json!({
            "tool": concat!("brenier-export ", env!("CARGO_PKG_VERSION")),
            "created_unix": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "user": spec.provenance,
        }),
    };
    manifest.validate()?;
    let mut all = vec![
        Section::bytes(MANIFEST_SECTION, SectionKind::Manifest, manifest.to_json()),
        Section::bytes("net.a", SectionKind::Onnx, net_a.onnx),
        Section::bytes("net.b", SectionKind::Onnx, net_b.onnx),
    ];
    all.extend(sections);
    Ok((all, manifest))
}

/// Validates, writes `out` atomically, and re-opens it with the runtime's reader as a final
/// check. Returns the manifest written and the file size.
pub fn export(spec: &ExportSpec, out: &Path) -> Result<(Manifest, u64)> {
    let (sections, manifest) = build_sections(spec)?;
    let size = write_bundle(out, &sections)?;
    let bundle = Bundle::open(out)?;
    for s in bundle.sections() {
        bundle.verify(&s.name)?;
    }
    Ok((manifest, size))
}
