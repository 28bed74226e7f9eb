//! Taking a valid bundle apart and putting it back together with one thing changed, so a test
//! can damage exactly one field and have every other check (checksums, layout) still pass.

use brenier::bundle::format::{checksum, HEADER_LEN};
use brenier::bundle::Section;
use brenier::bundle::{Bundle, MANIFEST_SECTION};

/// The writer's sections for every section of `b`, in table order.
pub fn sections_of(b: &Bundle) -> Vec<Section> {
    b.sections()
        .iter()
        .map(|e| Section {
            name: e.name.clone(),
            kind: e.kind,
            dtype: e.dtype,
            shape: e.shape.clone(),
            bytes: b.bytes(&e.name).expect("section of a valid bundle").to_vec(),
        })
        .collect()
}

/// The bytes of a bundle whose sections are `sections`.
pub fn encode(sections: &[Section]) -> Vec<u8> {
    let mut out = Vec::new();
    brenier::bundle::write_to(&mut out, sections).expect("sections lay out");
    out
}

/// `bundle` with its manifest replaced by `json` (checksums recomputed).
pub fn with_manifest(bundle: &[u8], json: &[u8]) -> Vec<u8> {
    let b = Bundle::from_bytes(bundle).expect("valid bundle");
    let mut sections = sections_of(&b);
    let m = sections.iter_mut().find(|s| s.name == MANIFEST_SECTION).expect("manifest section");
    m.bytes = json.to_vec();
    m.shape = vec![json.len() as u64];
    encode(&sections)
}

/// Number of section table rows.
pub fn section_count(bytes: &[u8]) -> usize {
    u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes")) as usize
}

/// Recomputes the table checksum and then the header checksum, so an edit of the header or
/// the table reaches the check under test instead of tripping a checksum first.
pub fn reseal(bytes: &mut [u8]) {
    let table_end = HEADER_LEN + 128 * section_count(bytes).min(256);
    if table_end <= bytes.len() {
        let crc = checksum(&bytes[HEADER_LEN..table_end]);
        bytes[32..36].copy_from_slice(&crc.to_le_bytes());
    }
    reseal_header(bytes);
}

/// Recomputes only the header checksum.
pub fn reseal_header(bytes: &mut [u8]) {
    let crc = checksum(&bytes[..60]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
}

/// `bundle` without its OT maps (sections and manifest entries): a smaller, different valid
/// bundle, e.g. the "old file" a failed write must leave alone.
pub fn without_ot_maps(bundle: &[u8]) -> Vec<u8> {
    let b = Bundle::from_bytes(bundle).expect("valid bundle");
    let mut sections = sections_of(&b);
    sections.retain(|s| !s.name.starts_with("ot."));
    let mut m = b.manifest().clone();
    m.ot_maps.clear();
    let manifest = sections.iter_mut().find(|s| s.name == MANIFEST_SECTION).expect("manifest section");
    manifest.bytes = m.to_json();
    manifest.shape = vec![manifest.bytes.len() as u64];
    encode(&sections)
}
