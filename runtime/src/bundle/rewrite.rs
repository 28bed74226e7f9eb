//! Adding or replacing sections of an existing bundle (the calibration record): every section is
//! checksum-verified before it is copied, the new file goes through the same atomic writer as an
//! export, and the result is re-opened and verified. On any failure the old file is untouched.

use std::path::Path;

use super::writer::{write_bundle, Section};
use super::{Bundle, LoadMode, MANIFEST_SECTION};
use crate::error::{Error, Result};

/// Writes `path` again with `put` added (a section of the same name is replaced) and the
/// sections named in `remove` left out. Returns the new file size.
pub fn rewrite_sections(path: &Path, put: Vec<Section>, remove: &[&str]) -> Result<u64> {
    if put.iter().any(|s| s.name == MANIFEST_SECTION) || remove.contains(&MANIFEST_SECTION) {
        return Err(Error::Layout("the manifest is rewritten by `brenier export`, not by a section edit".into()));
    }
    // Read, not mapped: the copy must not change while it is being made.
    let old = Bundle::open_with(path, LoadMode::Read)?;
    let mut sections = Vec::with_capacity(old.sections().len() + put.len());
    for e in old.sections() {
        if put.iter().any(|s| s.name == e.name) || remove.contains(&e.name.as_str()) {
            continue;
        }
        sections.push(Section {
            name: e.name.clone(),
            kind: e.kind,
            dtype: e.dtype,
            shape: e.shape.clone(),
            bytes: old.bytes(&e.name)?.to_vec(),
        });
    }
    drop(old);
    sections.extend(put);
    let size = write_bundle(path, &sections)?;
    let new = Bundle::open_with(path, LoadMode::Read)?;
    for s in new.sections() {
        new.verify(&s.name)?;
    }
    Ok(size)
}
