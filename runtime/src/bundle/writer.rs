//! The bundle writer: lays sections out as FORMAT.md specifies (64-byte aligned, in the order
//! given, checksummed) and writes the file through `crate::atomic`, so a crash or a full
//! disk leaves the old file or none, never a partial one.

use std::io::Write;
use std::path::Path;

use super::format::{
    align_up, checksum, Header, SectionEntry, ALIGN, ENTRY_LEN, HEADER_LEN, MAX_SECTIONS, NAME_LEN, VERSION,
};
use super::{Dtype, SectionKind};
use crate::atomic::write_atomic_with;
use crate::error::{Error, Result};

/// One section to write.
#[derive(Debug, Clone)]
pub struct Section {
    pub name: String,
    pub kind: SectionKind,
    pub dtype: Dtype,
    pub shape: Vec<u64>,
    pub bytes: Vec<u8>,
}

impl Section {
    pub fn bytes(name: &str, kind: SectionKind, bytes: Vec<u8>) -> Section {
        Section { name: name.into(), kind, dtype: Dtype::U8, shape: vec![bytes.len() as u64], bytes }
    }

    pub fn f32_tensor(name: &str, shape: &[usize], values: &[f32]) -> Section {
        Section {
            name: name.into(),
            kind: SectionKind::Tensor,
            dtype: Dtype::F32,
            shape: shape.iter().map(|&d| d as u64).collect(),
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    pub fn f16_tensor(name: &str, shape: &[usize], values: &[half::f16]) -> Section {
        Section {
            name: name.into(),
            kind: SectionKind::Tensor,
            dtype: Dtype::F16,
            shape: shape.iter().map(|&d| d as u64).collect(),
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

/// Header and table for `sections`, with every offset assigned.
fn layout(sections: &[Section]) -> Result<(Header, Vec<SectionEntry>)> {
    if sections.is_empty() || sections.len() > MAX_SECTIONS as usize {
        return Err(Error::Layout(format!("a bundle holds 1..={MAX_SECTIONS} sections, got {}", sections.len())));
    }
    let table_end = (HEADER_LEN + sections.len() * ENTRY_LEN) as u64;
    let mut at = align_up(table_end);
    let mut entries = Vec::with_capacity(sections.len());
    for s in sections {
        if s.name.is_empty() || s.name.len() > NAME_LEN || !s.name.bytes().all(|c| c.is_ascii_graphic()) {
            return Err(Error::Layout(format!(
                "section name `{}` must be 1..={NAME_LEN} printable ASCII bytes",
                s.name
            )));
        }
        if entries.iter().any(|e: &SectionEntry| e.name == s.name) {
            return Err(Error::Layout(format!("section `{}` given twice", s.name)));
        }
        let entry = SectionEntry {
            name: s.name.clone(),
            kind: s.kind,
            dtype: s.dtype,
            shape: s.shape.clone(),
            crc: checksum(&s.bytes),
            offset: at,
            len: s.bytes.len() as u64,
        };
        // Round-trip through the reader's own row check so the writer cannot emit a row the
        // reader rejects (shape/length mismatch, rank).
        SectionEntry::decode(&entry.encode(), entries.len())?;
        at = align_up(at + entry.len);
        entries.push(entry);
    }
    let file_len = entries.last().map_or(table_end, |e| e.offset + e.len);
    let mut table = Vec::with_capacity(entries.len() * ENTRY_LEN);
    entries.iter().for_each(|e| table.extend_from_slice(&e.encode()));
    let header =
        Header { version: VERSION, section_count: entries.len() as u32, file_len, table_crc: checksum(&table) };
    Ok((header, entries))
}

/// Streams a complete bundle into `w`: the byte stream the file gets (also what the fault-injection
/// tests cut short).
pub fn write_to(w: &mut dyn Write, sections: &[Section]) -> Result<u64> {
    let (header, entries) = layout(sections)?;
    stream(w, &header, &entries, sections).map_err(Error::Stream)?;
    Ok(header.file_len)
}

fn stream(w: &mut dyn Write, header: &Header, entries: &[SectionEntry], sections: &[Section]) -> std::io::Result<()> {
    w.write_all(&header.encode())?;
    for e in entries {
        w.write_all(&e.encode())?;
    }
    let mut pos = header.table_end();
    let zeros = [0u8; ALIGN as usize];
    for (e, s) in entries.iter().zip(sections) {
        w.write_all(&zeros[..(e.offset - pos) as usize])?;
        w.write_all(&s.bytes)?;
        pos = e.offset + e.len;
    }
    Ok(())
}

/// Writes the bundle to `path` atomically (brenier's one atomic write path): the layout is
/// checked before any file is created, and a failure leaves the old file as it was.
pub fn write_bundle(path: &Path, sections: &[Section]) -> Result<u64> {
    let (header, entries) = layout(sections)?;
    write_atomic_with(path, |w| stream(w, &header, &entries, sections))
}
