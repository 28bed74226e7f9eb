//! The byte layout of a `.brn` bundle: header and section table, as specified in `FORMAT.md`.
//! Encoding and decoding live together so the reader and the writer (`writer.rs`) cannot drift
//! apart.

use crate::error::{Error, Result};

pub const MAGIC: [u8; 8] = *b"BRENIER\0";
/// Current (and highest readable) format version.
pub const VERSION: u32 = 1;
pub const HEADER_LEN: usize = 64;
pub const ENTRY_LEN: usize = 128;
/// Every section payload starts at a multiple of this, so f16/f32 views are aligned and a device
/// copy can start from the mapping directly.
pub const ALIGN: u64 = 64;
pub const MAX_SECTIONS: u32 = 256;
pub const MAX_RANK: usize = 4;
pub const NAME_LEN: usize = 32;

/// What a section holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SectionKind {
    Manifest,
    Onnx,
    Tensor,
    Calibration,
}

impl SectionKind {
    pub fn code(self) -> u32 {
        match self {
            SectionKind::Manifest => 1,
            SectionKind::Onnx => 2,
            SectionKind::Tensor => 3,
            SectionKind::Calibration => 4,
        }
    }
    fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            1 => SectionKind::Manifest,
            2 => SectionKind::Onnx,
            3 => SectionKind::Tensor,
            4 => SectionKind::Calibration,
            _ => return None,
        })
    }
}

/// Element type of a section's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    U8,
    F32,
    F16,
}

impl Dtype {
    pub fn code(self) -> u32 {
        match self {
            Dtype::U8 => 0,
            Dtype::F32 => 1,
            Dtype::F16 => 2,
        }
    }
    fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            0 => Dtype::U8,
            1 => Dtype::F32,
            2 => Dtype::F16,
            _ => return None,
        })
    }
    pub fn size(self) -> u64 {
        match self {
            Dtype::U8 => 1,
            Dtype::F16 => 2,
            Dtype::F32 => 4,
        }
    }
}

/// The fixed file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub section_count: u32,
    pub file_len: u64,
    pub table_crc: u32,
}

/// One row of the section table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SectionEntry {
    pub name: String,
    pub kind: SectionKind,
    pub dtype: Dtype,
    pub shape: Vec<u64>,
    pub crc: u32,
    pub offset: u64,
    pub len: u64,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        b[12..16].copy_from_slice(&self.section_count.to_le_bytes());
        b[16..24].copy_from_slice(&self.file_len.to_le_bytes());
        b[24..32].copy_from_slice(&(HEADER_LEN as u64).to_le_bytes());
        b[32..36].copy_from_slice(&self.table_crc.to_le_bytes());
        let crc = checksum(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks the header. `b` must hold at least [`HEADER_LEN`] bytes (the caller
    /// reports truncation with the real file length).
    pub fn decode(b: &[u8]) -> Result<Header> {
        debug_assert!(b.len() >= HEADER_LEN);
        let version = u32_at(b, 8);
        // The version is judged before the checksum: a newer writer may lay the header out
        // differently, and "upgrade brenier" is the useful message then.
        if version > VERSION {
            return Err(Error::UnsupportedVersion { found: version, supported: VERSION });
        }
        if version == 0 {
            return Err(Error::corrupted("header: format version 0 does not exist"));
        }
        let stored = u32_at(b, 60);
        let computed = checksum(&b[..60]);
        if !checksum_matches(stored, computed) {
            return Err(Error::Checksum { section: "header".into(), stored, computed });
        }
        let table_offset = u64_at(b, 24);
        if table_offset != HEADER_LEN as u64 {
            return Err(Error::corrupted(format!(
                "header: section table offset {table_offset}, expected {HEADER_LEN}"
            )));
        }
        if b[36..60].iter().any(|&x| x != 0) {
            return Err(Error::corrupted("header: reserved bytes are not zero"));
        }
        let section_count = u32_at(b, 12);
        if section_count == 0 || section_count > MAX_SECTIONS {
            return Err(Error::corrupted(format!("header: section count {section_count} outside 1..={MAX_SECTIONS}")));
        }
        Ok(Header { version, section_count, file_len: u64_at(b, 16), table_crc: u32_at(b, 32) })
    }

    /// Byte length of header plus table, i.e. where the first section may start.
    pub fn table_end(&self) -> u64 {
        HEADER_LEN as u64 + self.section_count as u64 * ENTRY_LEN as u64
    }
}

impl SectionEntry {
    /// A byte section of `kind`: dtype u8 and shape `[len]`, as FORMAT.md requires of the
    /// manifest, ONNX networks and the calibration record.
    pub fn is_bytes(&self, kind: SectionKind) -> bool {
        self.kind == kind && self.dtype == Dtype::U8 && self.shape == [self.len]
    }

    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        let name = self.name.as_bytes();
        b[..name.len()].copy_from_slice(name);
        b[32..36].copy_from_slice(&self.kind.code().to_le_bytes());
        b[36..40].copy_from_slice(&self.dtype.code().to_le_bytes());
        b[40..44].copy_from_slice(&(self.shape.len() as u32).to_le_bytes());
        b[44..48].copy_from_slice(&self.crc.to_le_bytes());
        b[48..56].copy_from_slice(&self.offset.to_le_bytes());
        b[56..64].copy_from_slice(&self.len.to_le_bytes());
        for (i, d) in self.shape.iter().enumerate() {
            b[64 + 8 * i..72 + 8 * i].copy_from_slice(&d.to_le_bytes());
        }
        b
    }

    /// Decodes one table row and checks everything that does not need the rest of the file.
    pub fn decode(b: &[u8], index: usize) -> Result<SectionEntry> {
        let bad = |what: String| Error::corrupted(format!("section table row {index}: {what}"));
        let raw_name = &b[..NAME_LEN];
        let end = raw_name.iter().position(|&c| c == 0).unwrap_or(NAME_LEN);
        if end == 0 || raw_name[end..].iter().any(|&c| c != 0) {
            return Err(bad("empty or malformed name".into()));
        }
        let name = std::str::from_utf8(&raw_name[..end])
            .ok()
            .filter(|s| s.bytes().all(|c| c.is_ascii_graphic()))
            .ok_or_else(|| bad("name is not printable ASCII".into()))?
            .to_string();
        let kind = SectionKind::from_code(u32_at(b, 32))
            .ok_or_else(|| bad(format!("`{name}` has unknown kind {}", u32_at(b, 32))))?;
        let dtype = Dtype::from_code(u32_at(b, 36))
            .ok_or_else(|| bad(format!("`{name}` has unknown dtype {}", u32_at(b, 36))))?;
        let rank = u32_at(b, 40) as usize;
        if rank > MAX_RANK {
            return Err(bad(format!("`{name}` has rank {rank} > {MAX_RANK}")));
        }
        let shape: Vec<u64> = (0..rank).map(|i| u64_at(b, 64 + 8 * i)).collect();
        if (rank..MAX_RANK).any(|i| u64_at(b, 64 + 8 * i) != 0) || b[96..].iter().any(|&x| x != 0) {
            return Err(bad(format!("`{name}` has non-zero reserved bytes")));
        }
        let entry =
            SectionEntry { name, kind, dtype, shape, crc: u32_at(b, 44), offset: u64_at(b, 48), len: u64_at(b, 56) };
        // The element count is computed with overflow checks: a hostile table must not be able
        // to make `len` agree with a shape whose product wrapped around.
        let elems = entry
            .shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .and_then(|n| n.checked_mul(dtype.size()))
            .ok_or_else(|| bad(format!("`{}` shape {:?} overflows", entry.name, entry.shape)))?;
        if elems != entry.len {
            return Err(bad(format!(
                "`{}` is {} bytes but shape {:?} of {:?} needs {elems}",
                entry.name, entry.len, entry.shape, dtype
            )));
        }
        Ok(entry)
    }

    pub fn end(&self) -> u64 {
        // Checked by the reader against the file length before use; saturating keeps the
        // comparison meaningful for hostile values.
        self.offset.saturating_add(self.len)
    }
}

/// Rounds `n` up to the next multiple of [`ALIGN`].
pub fn align_up(n: u64) -> u64 {
    n.div_ceil(ALIGN) * ALIGN
}

/// The checksum of every payload, the table and the header: CRC-32 (IEEE 802.3, as zlib).
pub fn checksum(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// Whether a stored checksum matches the computed one. Fuzzing builds (cargo-fuzz sets
/// `cfg(fuzzing)`) accept any stored value: a fuzzer cannot repair a CRC after mutating the
/// bytes under it, so it would never get past the checksums to the range, shape and manifest
/// checks behind them. The checksums themselves are covered by the mutation tests.
pub fn checksum_matches(stored: u32, computed: u32) -> bool {
    cfg!(fuzzing) || stored == computed
}
