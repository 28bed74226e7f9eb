//! What each fuzz target does with one input: run the parser, and when it accepts the input,
//! use the result the way the runtime does and check the invariants the format promises. A
//! panic anywhere here (including a failed assertion) is a finding. Rejections are fine: the
//! reader's job is to turn bad bytes into typed errors.
//!
//! This file is compiled twice: into the fuzz targets (fuzz/src/lib.rs) and into `cargo test`
//! (tests/tests/fuzz_regressions.rs), so every crash input committed under
//! tests/fixtures/fuzz-regressions/<target>/ is replayed on every test run.

use std::path::Path;

use brenier::bundle::calibration::{
    CalibrationRecord, QUICK_EPS_SECTION, QUICK_INPUTS_SECTION, QUICK_LATENTS_SECTION, QUICK_NEURAL_SECTION,
    QUICK_OUTPUTS_SECTION,
};
use brenier::bundle::{Bundle, ImageSpec, Manifest, Normalization};
use brenier::io;
use brenier::sched::{grid, Schedule};

/// Bundle reader: open + validate, then read every section in every way the runtime can.
pub fn bundle(data: &[u8]) {
    let Ok(b) = Bundle::from_bytes(data) else { return };
    let file_len = data.len() as u64;
    assert_eq!(b.file_len(), file_len);
    for s in b.sections() {
        assert!(s.offset % 64 == 0 && s.offset.checked_add(s.len).is_some_and(|end| end <= file_len));
        if let Ok(bytes) = b.bytes(&s.name) {
            assert_eq!(bytes.len() as u64, s.len);
        }
        if let Ok(v) = b.f16_tensor(&s.name) {
            assert_eq!(v.len() as u64 * 2, s.len);
        }
        if let Ok(v) = b.f32_tensor(&s.name) {
            assert_eq!(v.len() as u64 * 4, s.len);
        }
    }
    let m = b.manifest();
    for key in [brenier::NetKey::A, brenier::NetKey::B] {
        let _ = b.net_bytes(key);
    }
    for map in &m.ot_maps {
        if let Ok((h, y)) = b.ot_map(map) {
            assert_eq!(h.len(), map.count);
            assert_eq!(y.len(), map.count * m.image.elems());
        }
    }
    manifest_invariants(m);
    let _ = b.calibration();
}

/// The manifest the `record` target judges records against: 1×2×3 images, an a->b OT map of 16
/// targets at t = 500 and an a->b neural map.
pub const RECORD_MANIFEST: &str = r#"{
  "schedule": { "kind": "linear", "n_train": 1000, "beta_start": 0.0001, "beta_end": 0.02 },
  "t_encode": 500, "steps": 25, "eta": 0.0,
  "image": { "channels": 1, "height": 2, "width": 3 },
  "normalization": { "low": -1.0, "high": 1.0 },
  "domains": { "a": "gauss-a", "b": "gauss-b" },
  "nets": {
    "a": { "section": "net.a", "x_input": "x", "t_input": "t", "t_dtype": "int64", "output": "eps", "batch": null },
    "b": { "section": "net.b", "x_input": "x", "t_input": "t", "t_dtype": "int64", "output": "eps", "batch": null }
  },
  "ot_maps": [ { "name": "a->b", "source": { "kind": "domain", "domain": "a" }, "target": "b", "t": 500,
                 "heights": "ot.heights.0", "targets": "ot.targets.0", "count": 16 } ],
  "neural_maps": [ { "name": "a->b", "source": "a", "target": "b", "t": 500,
    "net": { "section": "map.ab@t500", "x_input": "x", "t_input": "t", "t_dtype": "int64", "output": "y", "batch": null } } ]
}"#;

/// f32 values of each reference section beside the `record` target's records: 8 quick inputs
/// of 6 values, ε at 3 times for both nets, one neural map.
pub fn record_reference_len(name: &str) -> Option<usize> {
    match name {
        QUICK_INPUTS_SECTION | QUICK_LATENTS_SECTION | QUICK_OUTPUTS_SECTION | QUICK_NEURAL_SECTION => Some(48),
        QUICK_EPS_SECTION => Some(2 * 3 * 48),
        _ => None,
    }
}

/// Calibration record reader: an accepted record can be used as selftest uses it (schedule
/// lookups at its times, grids at its (T, K), its assignments indexing the map's targets) and
/// survives a JSON round trip.
pub fn record(data: &[u8]) {
    let m = Manifest::parse(RECORD_MANIFEST.as_bytes()).expect("the record target's manifest is valid");
    let Ok(r) = CalibrationRecord::parse(data, &m, &record_reference_len) else { return };
    let schedule = Schedule::new(&m.schedule).expect("valid schedule");
    let q = &r.quick;
    for &t in q.eps_ts.iter().chain(r.parity.iter().flat_map(|p| &p.ts)) {
        let ab = schedule.alpha_bar(t);
        assert!(ab.is_finite() && ab > 0.0 && ab <= 1.0);
    }
    assert_eq!(grid(q.t, q.k).expect("an accepted record has a valid quick grid").len(), q.k + 1);
    for p in &r.sweep {
        grid(p.t, p.k).expect("an accepted record has valid sweep grids");
    }
    if let Some(name) = &q.map {
        let map = m.ot_maps.iter().find(|s| &s.name == name).expect("an accepted record names a real map");
        assert!(q.assignments.len() == q.count && q.assignments.iter().all(|&i| i < map.count));
    }
    for name in &q.neural_maps {
        assert!(m.neural_maps.iter().any(|s| &s.name == name));
    }
    let again = CalibrationRecord::parse(&serde_json::to_vec(&r).expect("serialises"), &m, &record_reference_len)
        .expect("an accepted record re-parses");
    assert_eq!(again, r);
}

/// Manifest parser: any accepted manifest builds its schedule and default grid and survives a
/// JSON round trip unchanged.
pub fn manifest(data: &[u8]) {
    let Ok(m) = Manifest::parse(data) else { return };
    manifest_invariants(&m);
    let again = Manifest::parse(&m.to_json()).expect("a manifest the parser accepted must re-parse");
    assert_eq!(again, m);
}

fn manifest_invariants(m: &Manifest) {
    let schedule = Schedule::new(&m.schedule).expect("a validated manifest has a usable schedule");
    assert!(m.t_encode < schedule.n_train());
    let g = grid(m.t_encode, m.steps).expect("a validated manifest has a valid default grid");
    assert_eq!(g.len(), m.steps + 1);
    assert!((-1..schedule.n_train() as i64).contains(&g[0]) && g[m.steps] == m.t_encode as i64);
    assert!(g.windows(2).all(|w| w[0] < w[1]));
    let ab = schedule.alpha_bar(m.t_encode as i64);
    assert!(ab.is_finite() && ab > 0.0 && ab <= 1.0);
}

/// `.npy` reader: an accepted array has exactly the data its shape says, and re-encoding it
/// reads back the same values.
pub fn npy(data: &[u8]) {
    let Ok(a) = io::npy::parse(data) else { return };
    assert_eq!(a.shape.iter().product::<usize>(), a.data.len());
    let back = io::npy::parse(&io::npy::encode(&a.shape, &a.data)).expect("re-encoded array parses");
    assert_eq!(back.shape, a.shape);
    assert!(back.data.iter().zip(&a.data).all(|(x, y)| x.to_bits() == y.to_bits()));
}

/// PNG input path: the expected size is taken from the file's own header (when it is small) so
/// the fuzzer reaches pixel decoding instead of stopping at the size check; the channel count
/// of the "bundle" cycles through 1, 3 and an unsupported 2.
pub fn png(data: &[u8]) {
    let (h, w) = match data.get(16..24) {
        Some(ihdr) => (
            u32::from_be_bytes([ihdr[4], ihdr[5], ihdr[6], ihdr[7]]) as usize,
            u32::from_be_bytes([ihdr[0], ihdr[1], ihdr[2], ihdr[3]]) as usize,
        ),
        None => (28, 28),
    };
    let (h, w) = if h == 0 || w == 0 || h * w > 1 << 16 { (28, 28) } else { (h, w) };
    let channels = [1, 3, 2][data.len() % 3];
    let image = ImageSpec { channels, height: h, width: w };
    let norm = Normalization::default();
    if let Ok(x) = io::png::decode(data, Path::new("<fuzz>"), image, norm) {
        assert_eq!(x.len(), image.elems());
        assert!(x.iter().all(|v| (norm.low..=norm.high).contains(v)));
    }
}
