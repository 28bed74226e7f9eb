//! The bundle manifest: a JSON section describing everything the runtime needs besides raw
//! tensors. Parsed with serde, then validated on its own and against the section table.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::sched::ScheduleSpec;

/// Largest image the runtime accepts (elements per image); bounds every allocation derived
/// from the manifest.
pub const MAX_IMAGE_ELEMS: usize = 1 << 24;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub schedule: ScheduleSpec,
    /// Default encode time T (train-step index, 0..n_train-1).
    pub t_encode: usize,
    /// Default number of DDIM steps K for each of encode and decode.
    pub steps: usize,
    /// Default DDIM η for decoding (0 = probability-flow ODE).
    pub eta: f32,
    pub image: ImageSpec,
    pub normalization: Normalization,
    pub domains: Domains,
    pub nets: Nets,
    #[serde(default)]
    pub ot_maps: Vec<OtMapSpec>,
    /// Learned transport networks between the domains' latents (DIOTM); absent in older bundles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub neural_maps: Vec<NeuralMapSpec>,
    #[serde(default)]
    pub provenance: serde_json::Value,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageSpec {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageSpec {
    pub fn elems(&self) -> usize {
        self.channels * self.height * self.width
    }
    pub fn shape(&self, batch: usize) -> [usize; 4] {
        [batch, self.channels, self.height, self.width]
    }
}

/// Model space is `low..high`; PNG pixels 0..255 map linearly onto it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Normalization {
    pub low: f32,
    pub high: f32,
}

impl Default for Normalization {
    fn default() -> Self {
        Normalization { low: -1.0, high: 1.0 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Domains {
    pub a: String,
    pub b: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Nets {
    pub a: NetSpec,
    pub b: NetSpec,
}

/// How the timestep enters the ONNX graph.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TimeDtype {
    Int64,
    Float,
}

impl std::fmt::Display for TimeDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimeDtype::Int64 => "int64",
            TimeDtype::Float => "float",
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NetSpec {
    /// Name of the ONNX section.
    pub section: String,
    pub x_input: String,
    pub t_input: String,
    pub t_dtype: TimeDtype,
    pub output: String,
    /// Fixed batch size baked into the graph, or `None` for a dynamic batch.
    pub batch: Option<usize>,
    /// fp16 freezing report: tensors converted and their worst rounding error (relative error over
    /// values in fp16's normal range, |v| ≥ 6.1e-5; absolute error over all).
    #[serde(default)]
    pub fp16: Fp16Report,
}

/// What fp16 freezing did to a network. A bundle re-exported from another bundle (new maps, a
/// calibration) carries the record of the export that froze the weights: the f32 originals are
/// gone by then, so only that export could measure the rounding.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Fp16Report {
    /// Weight tensors converted f32 → fp16, and their values.
    pub tensors: usize,
    pub params: usize,
    pub max_abs_err: f32,
    pub max_rel_err: f32,
    /// Max relative error of the network output, frozen vs original, on the probe input.
    pub output_rel_err: f32,
    /// Weights that were fp16 already in the ONNX given to the exporter (e.g. a network
    /// extracted from a bundle) with no record to carry: stored as they came, their rounding
    /// against an f32 original unknown.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prefrozen_tensors: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prefrozen_params: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl std::fmt::Display for Fp16Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.tensors == 0 && self.prefrozen_tensors == 0 {
            return f.write_str("weights stored f32");
        }
        if self.tensors > 0 {
            write!(
                f,
                "{} weight tensors ({} params) stored fp16, max rounding {:.1e} rel, output error {:.1e} of max |out|",
                self.tensors, self.params, self.max_rel_err, self.output_rel_err
            )?;
        }
        if self.prefrozen_tensors > 0 {
            let sep = if self.tensors > 0 { "; " } else { "" };
            write!(
                f,
                "{sep}{} tensors ({} params) were fp16 in the input ONNX (rounding against their f32 original unknown)",
                self.prefrozen_tensors, self.prefrozen_params
            )?;
        }
        Ok(())
    }
}

/// Where the source points of an OT map come from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum OtSource {
    /// Latents of a domain's images encoded to time `t`.
    Domain { domain: NetKey },
    /// Standard normal noise N(0, I) (generation).
    Gaussian,
}

/// Which way a map goes: from a domain's latents onto the other domain's, or from N(0, I) onto a
/// domain's (generation). Written `a->b`, `b->a`, `noise->a`, `noise->b` on the command line and
/// in map names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MapDirection {
    /// From this domain onto the other one.
    Domain(NetKey),
    /// From N(0, I) onto this domain.
    Noise(NetKey),
}

impl MapDirection {
    pub const ALL: [MapDirection; 4] = [
        MapDirection::Domain(NetKey::A),
        MapDirection::Domain(NetKey::B),
        MapDirection::Noise(NetKey::A),
        MapDirection::Noise(NetKey::B),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MapDirection::Domain(NetKey::A) => "a->b",
            MapDirection::Domain(NetKey::B) => "b->a",
            MapDirection::Noise(NetKey::A) => "noise->a",
            MapDirection::Noise(NetKey::B) => "noise->b",
        }
    }

    /// Where the map's points come from.
    pub fn source(self) -> OtSource {
        match self {
            MapDirection::Domain(from) => OtSource::Domain { domain: from },
            MapDirection::Noise(_) => OtSource::Gaussian,
        }
    }

    /// The domain whose latents are the map's targets.
    pub fn target(self) -> NetKey {
        match self {
            MapDirection::Domain(from) => from.other(),
            MapDirection::Noise(to) => to,
        }
    }

    /// The map's name at time `t` in a bundle whose default T is `default_t` ([`map_name`]).
    pub fn name_at(self, t: usize, default_t: usize) -> String {
        map_name(self.as_str(), t, default_t)
    }
}

impl std::fmt::Display for MapDirection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for MapDirection {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        MapDirection::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| Error::InvalidArgument(format!("map `{s}`: expected a->b, b->a, noise->a or noise->b")))
    }
}

/// `name` at time `t`: the name alone at the bundle's default T, `name@t250` at another, so one
/// bundle can carry a map per T of the calibration sweep (`MapDirection::name_at` names maps
/// with it; the trainer its provenance entries, `ot@t250`).
pub fn map_name(dir: &str, t: usize, default_t: usize) -> String {
    if t == default_t {
        dir.to_string()
    } else {
        format!("{dir}@t{t}")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OtMapSpec {
    /// e.g. `a->b`, `b->a`, `noise->b`.
    pub name: String,
    pub source: OtSource,
    /// The domain of the targets.
    pub target: NetKey,
    /// Train step the targets live at.
    pub t: usize,
    pub heights: String,
    pub targets: String,
    pub count: usize,
    /// How the heights were solved and checked, when the exporter solved them (absent for maps
    /// given as solved arrays and in older bundles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solve: Option<SolveRecord>,
}

/// The record of an OT map's solve: its inputs and its certificate on held-out samples.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SolveRecord {
    /// The source measure and how the targets were made (`DDIM-encoded with net b, K = 25`, or
    /// `forward-noised`).
    pub source: String,
    pub targets: String,
    /// The tolerance on the RMS relative cell-mass error, the held-out estimate of that error
    /// with the sampling noise removed, the two-standard-error margin it had to pass with, and
    /// max_i |N·mass_i − 1| (noise included).
    pub tol: f32,
    pub rms_rel_mass_err: f32,
    pub margin: f32,
    pub max_rel_mass_err: f32,
    pub empty_cells: usize,
    pub heldout_samples: usize,
    /// The largest fit set and the iterations and seconds the solve took.
    pub fit_samples: usize,
    pub iterations: usize,
    pub seconds: f64,
    pub certified: bool,
}

impl std::fmt::Display for SolveRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} on {} held-out samples: RMS relative cell-mass error {:.3} (+ margin {:.3}) vs tolerance {}, max {:.2}, \
             {} empty; {} fit samples, {} iterations, {:.0} s",
            if self.certified { "certified" } else { "NOT certified" },
            self.heldout_samples,
            self.rms_rel_mass_err,
            self.margin,
            self.tol,
            self.max_rel_mass_err,
            self.empty_cells,
            self.fit_samples,
            self.iterations,
            self.seconds
        )
    }
}

/// A neural OT map: an ONNX network x_T (source domain) ↦ x_T (target domain), run like the
/// ε-networks (same `x`/`t` inputs; `t` is fed the map's time).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NeuralMapSpec {
    /// e.g. `a->b`.
    pub name: String,
    /// The domains of the latents the map takes and returns.
    pub source: NetKey,
    pub target: NetKey,
    /// Train step both sides' latents live at.
    pub t: usize,
    pub net: NetSpec,
    /// How it was trained (objective, weights, steps), as the trainer recorded it.
    #[serde(default)]
    pub provenance: serde_json::Value,
}

impl Manifest {
    pub fn parse(bytes: &[u8]) -> Result<Manifest> {
        // The error names the field path (`nets.a.batch: invalid type …`), not only a column.
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let m: Manifest = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let at = if path == "." { String::new() } else { format!(" at `{path}`") };
            Error::Manifest(format!("invalid JSON{at}: {}", e.into_inner()))
        })?;
        m.validate()?;
        Ok(m)
    }

    /// The network of a domain named by the bundle (`sneaker`) or by its key (`a`, `b`): what
    /// every interface (CLI, C, Python) accepts for a domain.
    pub fn domain_key(&self, s: &str) -> Result<NetKey> {
        if s == self.domains.a {
            return Ok(NetKey::A);
        }
        if s == self.domains.b {
            return Ok(NetKey::B);
        }
        s.parse().map_err(|_| {
            Error::InvalidArgument(format!(
                "unknown domain `{s}`: this bundle has a = {}, b = {}",
                self.domains.a, self.domains.b
            ))
        })
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain data cannot fail; `expect` documents that rather than hides it.
        serde_json::to_vec_pretty(self).expect("manifest serialises")
    }

    /// Checks that need only the manifest itself.
    pub fn validate(&self) -> Result<()> {
        let bad = |s: String| Err(Error::Manifest(s));
        self.schedule.validate()?;
        let n_train = self.schedule.n_train();
        let img = self.image;
        if img.channels == 0 || img.height == 0 || img.width == 0 {
            return bad(format!("image shape {img:?} has a zero dimension"));
        }
        if img
            .channels
            .checked_mul(img.height)
            .and_then(|n| n.checked_mul(img.width))
            .is_none_or(|n| n > MAX_IMAGE_ELEMS)
        {
            return bad(format!("image shape {img:?} exceeds {MAX_IMAGE_ELEMS} elements"));
        }
        if self.t_encode >= n_train {
            return bad(format!("t_encode {} must be below n_train {n_train}", self.t_encode));
        }
        if self.steps == 0 || self.steps > self.t_encode + 1 {
            return bad(format!("steps {} must be in 1..={}", self.steps, self.t_encode + 1));
        }
        if !(0.0..=1.0).contains(&self.eta) {
            return bad(format!("eta {} must be in [0, 1]", self.eta));
        }
        let n = self.normalization;
        if !(n.low.is_finite() && n.high.is_finite() && n.low < n.high) {
            return bad(format!("normalization {n:?} must have finite low < high"));
        }
        for (key, net) in [("a", &self.nets.a), ("b", &self.nets.b)] {
            if net.batch == Some(0) {
                return bad(format!("net {key} has a fixed batch of 0"));
            }
        }
        for map in &self.ot_maps {
            if map.t >= n_train {
                return bad(format!("OT map `{}` at t {} beyond n_train {n_train}", map.name, map.t));
            }
            if map.count == 0 {
                return bad(format!("OT map `{}` has no targets", map.name));
            }
        }
        let mut sections = vec![&self.nets.a.section, &self.nets.b.section];
        for (i, map) in self.neural_maps.iter().enumerate() {
            let what = format!("neural map `{}`", map.name);
            if map.source == map.target {
                return bad(format!("{what} maps domain `{}` onto itself", map.source.as_str()));
            }
            if map.t >= n_train {
                return bad(format!("{what} at t {} beyond n_train {n_train}", map.t));
            }
            if map.net.batch == Some(0) {
                return bad(format!("{what} has a fixed batch of 0"));
            }
            if self.neural_maps[..i].iter().any(|o| o.name == map.name) {
                return bad(format!("{what} appears twice"));
            }
            if sections.contains(&&map.net.section) {
                return bad(format!("{what} reuses section `{}` of another network", map.net.section));
            }
            sections.push(&map.net.section);
        }
        Ok(())
    }

    /// The neural map from domain `from` to the other one: the one at `t` when given, else the
    /// one at the bundle's default T if there is one, else the first.
    /// Returns its index in `neural_maps` with it.
    pub fn find_neural_map(&self, from: NetKey, t: Option<usize>) -> Option<(usize, &NeuralMapSpec)> {
        let mut maps =
            self.neural_maps.iter().enumerate().filter(|(_, m)| m.source == from && m.target == from.other());
        match t {
            Some(t) => maps.find(|(_, m)| m.t == t),
            None => {
                let first = maps.next()?;
                Some(std::iter::once(first).chain(maps).find(|(_, m)| m.t == self.t_encode).unwrap_or(first))
            }
        }
    }

    pub fn neural_map_names(&self) -> String {
        if self.neural_maps.is_empty() {
            "none".into()
        } else {
            self.neural_maps.iter().map(|m| format!("{} (t = {})", m.name, m.t)).collect::<Vec<_>>().join(", ")
        }
    }

    pub fn net(&self, key: NetKey) -> &NetSpec {
        match key {
            NetKey::A => &self.nets.a,
            NetKey::B => &self.nets.b,
        }
    }

    /// A domain as users read it: `a (sneaker)`.
    pub fn domain_label(&self, key: NetKey) -> String {
        format!("{} ({})", key.as_str(), self.domain_name(key))
    }

    /// Where a map's points come from: `a (sneaker)` or `N(0, I)`.
    pub fn source_label(&self, source: &OtSource) -> String {
        match source {
            OtSource::Gaussian => "N(0, I)".into(),
            OtSource::Domain { domain } => self.domain_label(*domain),
        }
    }

    /// `a (sneaker) → b (ankle-boot)`, `N(0, I) → b (ankle-boot)`.
    pub fn ot_map_direction(&self, map: &OtMapSpec) -> String {
        format!("{} → {}", self.source_label(&map.source), self.domain_label(map.target))
    }

    pub fn neural_map_direction(&self, map: &NeuralMapSpec) -> String {
        format!("{} → {}", self.domain_label(map.source), self.domain_label(map.target))
    }

    pub fn domain_name(&self, key: NetKey) -> &str {
        match key {
            NetKey::A => &self.domains.a,
            NetKey::B => &self.domains.b,
        }
    }

    /// The OT map from `source` to domain `target`: the one solved at the bundle's default T if
    /// there is one, else the first (a bundle may carry maps at several T, for the T sweep).
    pub fn find_map(&self, source: &OtSource, target: NetKey) -> Option<&OtMapSpec> {
        let mut maps = self.maps_between(source, target);
        let first = maps.next()?;
        Some(std::iter::once(first).chain(maps).find(|m| m.t == self.t_encode).unwrap_or(first))
    }

    /// The OT map from `source` to `target` solved between latents at time `t`.
    pub fn find_map_at(&self, source: &OtSource, target: NetKey, t: usize) -> Option<&OtMapSpec> {
        self.maps_between(source, target).find(|m| m.t == t)
    }

    /// Every map from `source` to `target`, in bundle order.
    pub fn maps_between(&self, source: &OtSource, target: NetKey) -> impl Iterator<Item = &OtMapSpec> + '_ {
        let source = source.clone();
        self.ot_maps.iter().filter(move |m| m.source == source && m.target == target)
    }

    pub fn map_names(&self) -> String {
        if self.ot_maps.is_empty() {
            "none".into()
        } else {
            self.ot_maps.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ")
        }
    }
}

/// One of the bundle's two networks / domains; `"a"` / `"b"` in the manifest, so a map naming any
/// other domain fails to parse, with the field's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetKey {
    A,
    B,
}

impl NetKey {
    pub fn as_str(self) -> &'static str {
        match self {
            NetKey::A => "a",
            NetKey::B => "b",
        }
    }
    pub fn other(self) -> NetKey {
        match self {
            NetKey::A => NetKey::B,
            NetKey::B => NetKey::A,
        }
    }
}

impl std::str::FromStr for NetKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "a" | "A" => Ok(NetKey::A),
            "b" | "B" => Ok(NetKey::B),
            _ => Err(Error::InvalidArgument(format!("network `{s}`: expected `a` or `b`"))),
        }
    }
}

impl Serialize for NetKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for NetKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "a" => Ok(NetKey::A),
            "b" => Ok(NetKey::B),
            _ => Err(serde::de::Error::custom(format!("unknown domain `{s}` (a bundle's domains are `a` and `b`)"))),
        }
    }
}
