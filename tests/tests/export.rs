//! The exporter refuses bad inputs before writing anything, naming the input at fault.

use std::path::PathBuf;

use brenier::bundle::manifest::OtSource;
use brenier::NetKey;
use brenier_export::onnx_build::{f32_values, to_bytes};
use brenier_export::{export, ExportSpec, MapInput};

fn unet() -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/unet/unet_t_int64.onnx")).unwrap()
}

fn map(n: usize, d: usize) -> MapInput {
    MapInput {
        name: "a->b".into(),
        source: OtSource::Domain { domain: NetKey::A },
        target: NetKey::B,
        t: 500,
        heights: vec![0.0; n],
        targets: brenier::rng::NoiseStream::new(1, 0).normal(n * d),
        solve: None,
    }
}

fn fails(spec: &ExportSpec, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.brn");
    let err = export(spec, &out).unwrap_err().to_string();
    for n in needles {
        assert!(err.contains(n), "`{n}` not in: {err}");
    }
    assert!(!out.exists(), "a refused export left a file");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no temp file may remain");
}

#[test]
fn nan_weight_is_named() {
    let mut proto = brenier::onnx::decode(&unet(), "u").unwrap();
    let g = proto.graph.as_mut().unwrap();
    let t = g.initializer.iter_mut().find(|t| f32_values(t).is_some_and(|v| v.len() > 100)).unwrap();
    let name = t.name.clone();
    t.raw_data[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
    let spec = ExportSpec::new(to_bytes(&proto), unet());
    fails(&spec, &[&name, "non-finite", "net A"]);
}

#[test]
fn bad_ot_inputs_are_named() {
    let d = 3 * 16 * 16;
    let mut spec = ExportSpec::new(unet(), unet());
    let mut m = map(8, d);
    m.heights[3] = f32::INFINITY;
    spec.maps = vec![m];
    fails(&spec, &["heights of OT map `a->b`", "index 3"]);
    let mut m = map(8, d);
    m.targets[5] = f32::NAN;
    spec.maps = vec![m];
    fails(&spec, &["targets of OT map `a->b`", "index 5"]);
    let mut m = map(8, d);
    m.targets.truncate(8 * d - 1);
    spec.maps = vec![m];
    fails(&spec, &["targets must be [8, 3, 16, 16]"]);
    let mut m = map(8, d);
    m.targets[0] = 1e6;
    spec.maps = vec![m];
    fails(&spec, &["overflow f16"]);
}

#[test]
fn image_size_disagreement_is_named() {
    let mut spec = ExportSpec::new(unet(), unet());
    spec.image = Some(brenier::bundle::ImageSpec { channels: 3, height: 28, width: 28 });
    fails(&spec, &["dimension 2", "[3, 28, 28]", "[3, 16, 16]"]);
}

#[test]
fn ddib_only_bundle_with_fp16_weights_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ddib.brn");
    let (m, size) = export(&ExportSpec::new(unet(), unet()), &out).unwrap();
    assert!(m.ot_maps.is_empty());
    // fp16 weights: the bundle is much smaller than two f32 networks.
    assert!((size as usize) < 2 * unet().len() * 6 / 10, "bundle {size} bytes for two {}-byte nets", unet().len());
    assert!(m.nets.a.fp16.max_rel_err < 1e-3 && m.nets.a.fp16.output_rel_err < 5e-3);
    let b = brenier::Bundle::open(&out).unwrap();
    assert_eq!(b.manifest(), &m);
}

#[test]
fn rewriting_sections_replaces_adds_and_removes_and_never_touches_the_manifest() {
    use brenier::bundle::SectionKind;
    use brenier::bundle::{rewrite_sections, Section};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.brn");
    std::fs::copy(&brenier_tests::oracle_bundle().0, &path).unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = rewrite_sections(&path, vec![Section::bytes("manifest", SectionKind::Manifest, b"{}".to_vec())], &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("manifest"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "a refused edit leaves the file as it was");

    let note = Section::bytes("calibration", SectionKind::Calibration, b"{\"x\":1}".to_vec());
    rewrite_sections(&path, vec![note], &[]).unwrap();
    let b = brenier::Bundle::open(&path).unwrap();
    assert_eq!(b.bytes("calibration").unwrap(), b"{\"x\":1}");
    let old = brenier::Bundle::open(&brenier_tests::oracle_bundle().0).unwrap();
    for s in old.sections() {
        assert_eq!(b.bytes(&s.name).unwrap(), old.bytes(&s.name).unwrap(), "{} changed", s.name);
    }
    drop(b);
    rewrite_sections(&path, vec![], &["calibration"]).unwrap();
    assert!(brenier::Bundle::open(&path).unwrap().entry("calibration").is_err());
}

/// A re-export of a bundle (how new maps and neural maps are added) keeps the fp16 record of
/// the export that froze the weights; a network given already frozen, with no record, is
/// reported as such instead of as "0 tensors converted".
#[test]
fn re_export_keeps_the_fp16_record_of_the_first_export() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.brn");
    let (m1, _) = export(&ExportSpec::new(unet(), unet()), &first).unwrap();
    assert!(m1.nets.a.fp16.tensors > 0 && m1.nets.a.fp16.max_rel_err > 0.0, "{:?}", m1.nets.a.fp16);

    let again = dir.path().join("again.brn");
    let b1 = brenier::Bundle::open(&first).unwrap();
    let (m2, _) = export(&brenier_export::spec_from_bundle(&b1, &[], &[]).unwrap(), &again).unwrap();
    assert_eq!(m2.nets.a.fp16, m1.nets.a.fp16);
    assert_eq!(m2.nets.b.fp16, m1.nets.b.fp16);
    let b2 = brenier::Bundle::open(&again).unwrap();
    assert_eq!(b2.bytes("net.a").unwrap(), b1.bytes("net.a").unwrap(), "the frozen network changed");

    // The frozen network extracted and exported as a new network: nothing left to convert, no
    // record to carry; its fp16 weights are counted as given.
    let extracted = b1.net_bytes(brenier::NetKey::A).unwrap().to_vec();
    let (m3, _) = export(&ExportSpec::new(extracted.clone(), extracted), &dir.path().join("x.brn")).unwrap();
    let r = &m3.nets.a.fp16;
    assert_eq!(
        (r.tensors, r.prefrozen_tensors, r.prefrozen_params),
        (0, m1.nets.a.fp16.tensors, m1.nets.a.fp16.params)
    );
    assert!(r.to_string().contains("fp16 in the input ONNX"), "{r}");
}
