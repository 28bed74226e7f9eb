//! Bundle format: round trip, and each kind of damage gives its own typed error.

use brenier::bundle::format::{Header, HEADER_LEN};
use brenier::bundle::Bundle;
use brenier::Error;
use brenier_tests::bundle_edit::{reseal, section_count};
use brenier_tests::oracle_bundle;

fn valid() -> Vec<u8> {
    std::fs::read(&oracle_bundle().0).unwrap()
}

fn open(bytes: &[u8]) -> Result<Bundle, Error> {
    Bundle::from_bytes(bytes)
}

#[test]
fn round_trip_reads_every_section() {
    let bytes = valid();
    let b = open(&bytes).unwrap();
    for s in b.sections() {
        b.verify(&s.name).unwrap();
        assert_eq!(s.offset % 64, 0);
    }
    let m = b.manifest();
    assert_eq!(m.ot_maps.len(), 4);
    // a->b and noise->b share one targets section.
    assert_eq!(m.ot_maps[0].targets, m.ot_maps[2].targets);
    let (h, y) = b.ot_map(&m.ot_maps[0]).unwrap();
    assert_eq!(y.len(), h.len() * m.image.elems());
    // Targets are viewed in place: the slice points into the file's bytes, not a copy.
    let e = b.entry(&m.ot_maps[0].targets).unwrap();
    assert_eq!(y.as_ptr() as usize % 2, 0);
    assert_eq!(e.len as usize, y.len() * 2);
}

#[test]
fn truncation_anywhere_is_a_typed_error() {
    let bytes = valid();
    let b = open(&bytes).unwrap();
    let mut cuts: Vec<usize> = vec![0, 1, 8, 63, 64, 100, bytes.len() - 1];
    cuts.extend(b.sections().iter().flat_map(|s| [s.offset as usize, (s.offset + s.len / 2) as usize]));
    for cut in cuts {
        match open(&bytes[..cut]) {
            Err(Error::Truncated { .. }) | Err(Error::NotABundle { .. }) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn flipped_payload_byte_fails_that_sections_checksum() {
    let mut bytes = valid();
    let b = open(&bytes).unwrap();
    let e = b.entry("net.b").unwrap().clone();
    bytes[(e.offset + e.len / 2) as usize] ^= 0x40;
    let b = open(&bytes).unwrap(); // structure is intact; the payload is checked on use
    match b.verify("net.b") {
        Err(Error::Checksum { section, .. }) => assert_eq!(section, "net.b"),
        other => panic!("{other:?}"),
    }
    assert!(b.verify("net.a").is_ok());
}

#[test]
fn newer_version_says_upgrade() {
    let mut bytes = valid();
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    let err = open(&bytes).unwrap_err();
    assert!(matches!(err, Error::UnsupportedVersion { found: 2, supported: 1 }), "{err:?}");
    assert!(err.to_string().contains("upgrade brenier"));
}

#[test]
fn header_and_table_damage_detected() {
    let bytes = valid();
    let mut b = bytes.clone();
    b[0] = b'X';
    assert!(matches!(open(&b), Err(Error::NotABundle { .. })));
    let mut b = bytes.clone();
    b[20] ^= 1; // file_len without resealing
    assert!(matches!(open(&b), Err(Error::Checksum { ref section, .. }) if section == "header"));
    let mut b = bytes.clone();
    b[HEADER_LEN + 50] ^= 1; // inside the table
    assert!(matches!(open(&b), Err(Error::Checksum { ref section, .. }) if section == "section table"));
    let mut b = bytes.clone();
    b.extend_from_slice(&[0; 64]);
    assert!(matches!(open(&b), Err(Error::Corrupted { .. })));
    let h = Header::decode(&bytes[..HEADER_LEN]).unwrap();
    assert_eq!(h.file_len as usize, bytes.len());
}

/// Edits the section table (re-sealing table and header checksums) and returns the error.
fn with_row_edit(edit: impl Fn(&mut [u8])) -> Error {
    let mut bytes = valid();
    let n = section_count(&bytes);
    edit(&mut bytes[HEADER_LEN..HEADER_LEN + n * 128]);
    reseal(&mut bytes);
    open(&bytes).unwrap_err()
}

#[test]
fn bad_ranges_are_rejected_with_the_section_named() {
    // Row 1 (net.a): misaligned offset.
    let e = with_row_edit(|t| {
        let off = u64::from_le_bytes(t[128 + 48..128 + 56].try_into().unwrap()) + 8;
        t[128 + 48..128 + 56].copy_from_slice(&off.to_le_bytes());
    });
    assert!(e.to_string().contains("aligned") && e.to_string().contains("net.a"), "{e}");
    // Row 1 moved onto row 2's start: overlap.
    let e = with_row_edit(|t| {
        let next = u64::from_le_bytes(t[256 + 48..256 + 56].try_into().unwrap());
        let len = u64::from_le_bytes(t[128 + 56..128 + 64].try_into().unwrap());
        t[128 + 48..128 + 56].copy_from_slice(&(next - (len / 64) * 64).to_le_bytes());
    });
    assert!(e.to_string().contains("overlap"), "{e}");
    // Offset beyond the file.
    let e = with_row_edit(|t| t[128 + 48..128 + 56].copy_from_slice(&(1u64 << 40).to_le_bytes()));
    assert!(matches!(e, Error::Truncated { ref what, .. } if what.contains("net.a")), "{e:?}");
    // Shape whose product overflows u64.
    let e = with_row_edit(|t| {
        t[128 + 40..128 + 44].copy_from_slice(&2u32.to_le_bytes());
        t[128 + 64..128 + 72].copy_from_slice(&u64::MAX.to_le_bytes());
        t[128 + 72..128 + 80].copy_from_slice(&3u64.to_le_bytes());
    });
    assert!(e.to_string().contains("overflows"), "{e}");
    // Unknown dtype.
    let e = with_row_edit(|t| t[128 + 36..128 + 40].copy_from_slice(&9u32.to_le_bytes()));
    assert!(e.to_string().contains("unknown dtype"), "{e}");
}

#[test]
fn manifest_with_wrong_types_is_a_manifest_error() {
    use brenier::bundle::Manifest;
    let m = open(&valid()).unwrap().manifest().clone();
    let mut json: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
    json["t_encode"] = serde_json::json!("five hundred");
    assert!(matches!(Manifest::parse(json.to_string().as_bytes()), Err(Error::Manifest(_))));
    let mut json: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
    json["image"]["height"] = serde_json::json!(1u64 << 40);
    assert!(matches!(Manifest::parse(json.to_string().as_bytes()), Err(Error::Manifest(_))));
    let mut json: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
    json.as_object_mut().unwrap().remove("nets");
    assert!(matches!(Manifest::parse(json.to_string().as_bytes()), Err(Error::Manifest(_))));
}

/// A byte section must be u8 `[len]` (FORMAT.md, "Sections"): an ONNX network stored with
/// another shape of the same length, or a calibration record of another kind, is refused by name.
#[test]
fn byte_sections_of_another_shape_or_kind_are_refused() {
    use brenier_tests::bundle_edit::{encode, sections_of};
    let b = open(&valid()).unwrap();
    let mut sections = sections_of(&b);
    let net = sections.iter_mut().find(|s| s.name == "net.b").unwrap();
    net.shape = vec![1, net.bytes.len() as u64];
    match open(&encode(&sections)) {
        Err(Error::Section { section, problem }) => {
            assert_eq!(section, "net.b");
            assert!(problem.contains("u8 [len]"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
    let mut sections = sections_of(&b);
    sections.push(brenier::bundle::Section::f32_tensor("calibration", &[1], &[0.0]));
    let with_tensor = open(&encode(&sections)).unwrap();
    let e = with_tensor.calibration().unwrap_err().to_string();
    assert!(e.contains("calibration") && e.contains("kind calibration"), "{e}");
}
