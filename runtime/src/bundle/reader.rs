//! Opening and validating a `.brn` bundle. Structure (header, table, ranges, manifest) is checked
//! eagerly at open; each payload's checksum is checked the first time it is read, so opening a
//! large bundle touches only the pages it needs (see FORMAT.md, "Validation").

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use half::f16;

use super::format::{
    checksum, checksum_matches, Dtype, Header, SectionEntry, SectionKind, ALIGN, ENTRY_LEN, HEADER_LEN,
};
use super::manifest::{Manifest, NetKey, NeuralMapSpec, OtMapSpec};
use crate::error::{Error, Result};

/// Name of the mandatory manifest section.
pub const MANIFEST_SECTION: &str = "manifest";

enum Storage {
    /// The mapping and the file it maps, kept open to notice in-place changes (see
    /// [`Bundle::check_unchanged`]).
    Mapped { map: memmap2::Mmap, file: File, stamp: FileStamp },
    /// Owned copy, u64-backed so f16/f32 views are aligned.
    Owned { words: Vec<u64>, len: usize },
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mapped { map, .. } => map,
            Storage::Owned { words, len } => &bytemuck::cast_slice(words)[..*len],
        }
    }
}

/// What identifies the file's contents at open without reading them: length and modification
/// time. An in-place overwrite (cp, dd, rsync --inplace) changes at least one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl FileStamp {
    fn of(file: &File) -> std::io::Result<FileStamp> {
        let meta = file.metadata()?;
        Ok(FileStamp { len: meta.len(), modified: meta.modified().ok() })
    }
}

/// How to bring the file into memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadMode {
    /// Memory-map the file: pages load on first touch (default).
    #[default]
    Mmap,
    /// Read the whole file into memory, for filesystems where mapping is unsafe.
    Read,
}

pub struct Bundle {
    path: PathBuf,
    storage: Storage,
    header: Header,
    sections: Vec<SectionEntry>,
    /// Computed checksum per section, filled on first access.
    computed_crc: Vec<OnceLock<u32>>,
    manifest: Manifest,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle").field("path", &self.path).field("sections", &self.sections).finish()
    }
}

impl Bundle {
    pub fn open(path: impl AsRef<Path>) -> Result<Bundle> {
        Self::open_with(path, LoadMode::Mmap)
    }

    pub fn open_with(path: impl AsRef<Path>, mode: LoadMode) -> Result<Bundle> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        if len < HEADER_LEN as u64 {
            return Err(Error::Truncated { what: "header".into(), needed: HEADER_LEN as u64, actual: len });
        }
        let storage = match mode {
            LoadMode::Mmap => {
                let stamp = FileStamp::of(&file).map_err(|e| Error::io(&path, e))?;
                // SAFETY: the mapping is read-only. If another process truncates the file while
                // it is mapped, reads past the new end raise SIGBUS: every payload access first
                // checks the file is unchanged (`check_unchanged`), FORMAT.md documents the
                // remaining window, and `LoadMode::Read` avoids the hazard altogether.
                let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
                if map.len() as u64 != stamp.len {
                    return Err(Error::ChangedOnDisk {
                        path,
                        detail: format!("{} bytes when opened, {} when mapped", stamp.len, map.len()),
                    });
                }
                Storage::Mapped { map, file, stamp }
            }
            LoadMode::Read => {
                use std::io::Read;
                let n = usize::try_from(len).map_err(|_| Error::input(&path, "file too large for this platform"))?;
                let mut words = vec![0u64; n.div_ceil(8)];
                let buf = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..n];
                (&file).read_exact(buf).map_err(|e| Error::io(&path, e))?;
                Storage::Owned { words, len: n }
            }
        };
        Self::from_storage(path, storage)
    }

    /// Validates an in-memory bundle (tests, fuzzing).
    pub fn from_bytes(bytes: &[u8]) -> Result<Bundle> {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        Self::from_storage(PathBuf::from("<memory>"), Storage::Owned { words, len: bytes.len() })
    }

    fn from_storage(path: PathBuf, storage: Storage) -> Result<Bundle> {
        let bytes = storage.bytes();
        let actual = bytes.len() as u64;
        if actual < HEADER_LEN as u64 {
            return Err(Error::Truncated { what: "header".into(), needed: HEADER_LEN as u64, actual });
        }
        if bytes[..8] != super::format::MAGIC {
            return Err(Error::NotABundle { path });
        }
        let header = Header::decode(&bytes[..HEADER_LEN])?;
        let table_end = header.table_end();
        if actual < table_end {
            return Err(Error::Truncated { what: "section table".into(), needed: table_end, actual });
        }
        if header.file_len > actual {
            return Err(Error::Truncated { what: "file".into(), needed: header.file_len, actual });
        }
        if header.file_len < actual {
            return Err(Error::corrupted(format!(
                "file has {} bytes after its recorded end ({} of {actual})",
                actual - header.file_len,
                header.file_len
            )));
        }
        let table = &bytes[HEADER_LEN..table_end as usize];
        let computed = checksum(table);
        if !checksum_matches(header.table_crc, computed) {
            return Err(Error::Checksum { section: "section table".into(), stored: header.table_crc, computed });
        }
        let sections = table
            .chunks_exact(ENTRY_LEN)
            .enumerate()
            .map(|(i, row)| SectionEntry::decode(row, i))
            .collect::<Result<Vec<_>>>()?;
        check_ranges(&sections, table_end, actual)?;

        let mi = sections
            .iter()
            .position(|s| s.name == MANIFEST_SECTION)
            .ok_or_else(|| Error::MissingSection(MANIFEST_SECTION.into()))?;
        let me = &sections[mi];
        if !me.is_bytes(SectionKind::Manifest) {
            return Err(Error::section(MANIFEST_SECTION, "must be JSON bytes (kind manifest, u8 [len])"));
        }
        let manifest_bytes = &bytes[me.offset as usize..me.end() as usize];
        let computed = checksum(manifest_bytes);
        if !checksum_matches(me.crc, computed) {
            return Err(Error::Checksum { section: me.name.clone(), stored: me.crc, computed });
        }
        let manifest = Manifest::parse(manifest_bytes)?;
        let computed_crc: Vec<OnceLock<u32>> = sections.iter().map(|_| OnceLock::new()).collect();
        let _ = computed_crc[mi].set(computed);
        let bundle = Bundle { path, storage, header, sections, computed_crc, manifest };
        bundle.check_manifest_against_table()?;
        Ok(bundle)
    }

    fn check_manifest_against_table(&self) -> Result<()> {
        let m = &self.manifest;
        for key in [NetKey::A, NetKey::B] {
            let spec = m.net(key);
            if !self.entry(&spec.section)?.is_bytes(SectionKind::Onnx) {
                return Err(Error::section(&spec.section, "net section must be ONNX bytes (kind onnx, u8 [len])"));
            }
        }
        for map in &m.neural_maps {
            if !self.entry(&map.net.section)?.is_bytes(SectionKind::Onnx) {
                return Err(Error::section(
                    &map.net.section,
                    format!("network of neural map `{}` must be ONNX bytes (kind onnx, u8 [len])", map.name),
                ));
            }
        }
        let img = m.image;
        for map in &m.ot_maps {
            let h = self.entry(&map.heights)?;
            if h.kind != SectionKind::Tensor || h.dtype != Dtype::F32 || h.shape != [map.count as u64] {
                return Err(Error::section(
                    &map.heights,
                    format!(
                        "heights of map `{}` must be f32 [{}], found {:?} {:?}",
                        map.name, map.count, h.dtype, h.shape
                    ),
                ));
            }
            let t = self.entry(&map.targets)?;
            let want = [map.count as u64, img.channels as u64, img.height as u64, img.width as u64];
            if t.kind != SectionKind::Tensor || t.dtype != Dtype::F16 || t.shape != want {
                return Err(Error::section(
                    &map.targets,
                    format!("targets of map `{}` must be f16 {want:?}, found {:?} {:?}", map.name, t.dtype, t.shape),
                ));
            }
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    pub fn header(&self) -> &Header {
        &self.header
    }
    pub fn sections(&self) -> &[SectionEntry] {
        &self.sections
    }
    pub fn file_len(&self) -> u64 {
        self.header.file_len
    }

    pub fn entry(&self, name: &str) -> Result<&SectionEntry> {
        self.sections.iter().find(|s| s.name == name).ok_or_else(|| Error::MissingSection(name.into()))
    }

    fn index(&self, name: &str) -> Result<usize> {
        self.sections.iter().position(|s| s.name == name).ok_or_else(|| Error::MissingSection(name.into()))
    }

    /// Fails if a mapped file was changed in place since it was opened: then its pages may
    /// hold other bytes than were validated, or be gone (reading them would raise SIGBUS).
    /// Every payload access calls this; pipelines call it again before returning results. A
    /// file replaced by rename (how brenier writes) does not count: the mapping keeps the old
    /// file alive. Bundles read into memory (`LoadMode::Read`) cannot change.
    pub fn check_unchanged(&self) -> Result<()> {
        let Storage::Mapped { file, stamp, .. } = &self.storage else { return Ok(()) };
        let now = FileStamp::of(file).map_err(|e| Error::io(&self.path, e))?;
        if now.len != stamp.len {
            return Err(Error::ChangedOnDisk {
                path: self.path.clone(),
                detail: format!("{} bytes when opened, {} now", stamp.len, now.len),
            });
        }
        if now.modified != stamp.modified {
            return Err(Error::ChangedOnDisk {
                path: self.path.clone(),
                detail: "its modification time changed since it was opened".into(),
            });
        }
        Ok(())
    }

    /// Payload bytes of a section, checksum-verified (once) before they are returned.
    pub fn bytes(&self, name: &str) -> Result<&[u8]> {
        self.check_unchanged()?;
        let i = self.index(name)?;
        let e = &self.sections[i];
        // Ranges were checked against the file length at open.
        let payload = &self.storage.bytes()[e.offset as usize..e.end() as usize];
        let computed = *self.computed_crc[i].get_or_init(|| checksum(payload));
        if !checksum_matches(e.crc, computed) {
            return Err(Error::Checksum { section: e.name.clone(), stored: e.crc, computed });
        }
        Ok(payload)
    }

    /// Verifies one section's checksum, reporting the result without failing the caller.
    pub fn verify(&self, name: &str) -> Result<()> {
        self.bytes(name).map(|_| ())
    }

    /// A tensor section viewed as f16, in place in the mapping.
    pub fn f16_tensor(&self, name: &str) -> Result<&[f16]> {
        self.typed(name, Dtype::F16)
    }

    /// A tensor section viewed as f32, in place.
    pub fn f32_tensor(&self, name: &str) -> Result<&[f32]> {
        self.typed(name, Dtype::F32)
    }

    fn typed<T: bytemuck::Pod>(&self, name: &str, dtype: Dtype) -> Result<&[T]> {
        let e = self.entry(name)?;
        if e.dtype != dtype || e.kind != SectionKind::Tensor {
            return Err(Error::section(name, format!("expected a {dtype:?} tensor, found {:?} {:?}", e.kind, e.dtype)));
        }
        bytemuck::try_cast_slice(self.bytes(name)?)
            .map_err(|err| Error::section(name, format!("cannot view as {dtype:?}: {err}")))
    }

    /// The ONNX bytes of a network.
    pub fn net_bytes(&self, key: NetKey) -> Result<&[u8]> {
        self.bytes(&self.manifest.net(key).section)
    }

    /// The ONNX bytes of a neural map.
    pub fn neural_map_bytes(&self, spec: &NeuralMapSpec) -> Result<&[u8]> {
        self.bytes(&spec.net.section)
    }

    /// Heights and targets of an OT map.
    pub fn ot_map(&self, spec: &OtMapSpec) -> Result<(&[f32], &[f16])> {
        Ok((self.f32_tensor(&spec.heights)?, self.f16_tensor(&spec.targets)?))
    }
}

/// Section ranges: aligned, after the table, inside the file, not overlapping, names unique.
/// Each section's own range is judged before any pair, so the error names the section that is
/// wrong rather than a neighbour it now collides with.
fn check_ranges(sections: &[SectionEntry], table_end: u64, file_len: u64) -> Result<()> {
    for (i, s) in sections.iter().enumerate() {
        if sections[..i].iter().any(|o| o.name == s.name) {
            return Err(Error::corrupted(format!("section `{}` appears twice", s.name)));
        }
    }
    for s in sections {
        if s.offset % ALIGN != 0 {
            return Err(Error::section(&s.name, format!("offset {} is not {ALIGN}-byte aligned", s.offset)));
        }
        if s.offset < table_end {
            return Err(Error::section(
                &s.name,
                format!("offset {} overlaps the header/table (ends {table_end})", s.offset),
            ));
        }
        let end = s.offset.checked_add(s.len).ok_or_else(|| Error::section(&s.name, "range overflows"))?;
        if end > file_len {
            return Err(Error::Truncated { what: format!("section `{}`", s.name), needed: end, actual: file_len });
        }
    }
    let mut order: Vec<&SectionEntry> = sections.iter().collect();
    order.sort_by_key(|s| s.offset);
    for pair in order.windows(2) {
        if pair[0].end() > pair[1].offset {
            return Err(Error::corrupted(format!("sections `{}` and `{}` overlap", pair[0].name, pair[1].name)));
        }
    }
    Ok(())
}
