//! The bundle writer: lays sections out as FORMAT.md specifies (64-byte aligned, in the order
//! given, checksummed) and writes the file atomically — temp file, fsync, rename, fsync of the
//! directory — so a crash or a full disk leaves the old file or none, never a partial one.

use std::io::Write;
use std::path::Path;

use brenier::bundle::format::{
    align_up, checksum, Header, SectionEntry, ENTRY_LEN, HEADER_LEN, MAX_SECTIONS, NAME_LEN, VERSION,
};
use brenier::bundle::{Dtype, SectionKind};

use crate::error::{ExportError, Result};

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
        return Err(ExportError::invalid(format!(
            "a bundle holds 1..={MAX_SECTIONS} sections, got {}",
            sections.len()
        )));
    }
    let table_end = (HEADER_LEN + sections.len() * ENTRY_LEN) as u64;
    let mut at = align_up(table_end);
    let mut entries = Vec::with_capacity(sections.len());
    for s in sections {
        if s.name.is_empty() || s.name.len() > NAME_LEN || !s.name.bytes().all(|c| c.is_ascii_graphic()) {
            return Err(ExportError::invalid(format!(
                "section name `{}` must be 1..={NAME_LEN} printable ASCII bytes",
                s.name
            )));
        }
        if entries.iter().any(|e: &SectionEntry| e.name == s.name) {
            return Err(ExportError::invalid(format!("section `{}` given twice", s.name)));
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

/// Streams a complete bundle into `w` (used for files and for fault-injection tests).
pub fn write_to(mut w: impl Write, sections: &[Section]) -> Result<u64> {
    let (header, entries) = layout(sections)?;
    let io = |e| ExportError::Write { path: "<stream>".into(), source: e };
    w.write_all(&header.encode()).map_err(io)?;
    let mut pos = HEADER_LEN as u64;
    for e in &entries {
        w.write_all(&e.encode()).map_err(io)?;
        pos += ENTRY_LEN as u64;
    }
    let zeros = [0u8; 64];
    for (e, s) in entries.iter().zip(sections) {
        w.write_all(&zeros[..(e.offset - pos) as usize]).map_err(io)?;
        w.write_all(&s.bytes).map_err(io)?;
        pos = e.offset + e.len;
    }
    w.flush().map_err(io)?;
    Ok(pos)
}

/// Writes the bundle to `path` atomically.
pub fn write_bundle(path: &Path, sections: &[Section]) -> Result<u64> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| ExportError::invalid(format!("{} has no file name", path.display())))?;
    let tmp = dir.join(format!(".{}.tmp{}", name.to_string_lossy(), std::process::id()));
    let wrap = |e: std::io::Error| ExportError::Write { path: path.to_path_buf(), source: e };
    let result = (|| -> Result<u64> {
        let file = std::fs::File::create(&tmp).map_err(wrap)?;
        let mut buf = std::io::BufWriter::with_capacity(1 << 20, file);
        let n = write_to(&mut buf, sections).map_err(|e| match e {
            ExportError::Write { source, .. } => wrap(source),
            other => other,
        })?;
        let file = buf.into_inner().map_err(|e| wrap(e.into_error()))?;
        file.sync_all().map_err(wrap)?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(wrap)?;
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(n)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
