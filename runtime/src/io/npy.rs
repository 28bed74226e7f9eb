//! `.npy` arrays (NumPy format 1.0/2.0/3.0, little-endian f32 or f16, C order): the exchange format
//! for model-space tensors. The header is parsed strictly and every size is checked against
//! the file length before anything is allocated.

use std::path::Path;

use half::f16;

use crate::error::{Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";
/// Headers longer than this are rejected (NumPy itself writes < 200 bytes).
const MAX_HEADER: usize = 64 * 1024;

/// A loaded array: shape and values (f16 files are widened to f32).
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
    /// The file stored f16.
    pub was_f16: bool,
}

pub fn read(path: &Path) -> Result<Array> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(&bytes).map_err(|problem| Error::input(path, format!("not a readable .npy array: {problem}")))
}

/// Parses `.npy` bytes; the error is a plain sentence for the caller to wrap.
pub fn parse(bytes: &[u8]) -> std::result::Result<Array, String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("missing the \\x93NUMPY magic".into());
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(format!("unsupported format version {v}")),
    };
    if hlen > MAX_HEADER || start + hlen > bytes.len() {
        return Err(format!("header length {hlen} runs past the file ({} bytes)", bytes.len()));
    }
    let header = std::str::from_utf8(&bytes[start..start + hlen]).map_err(|_| "header is not text")?;
    let field = |key: &str| -> std::result::Result<&str, String> {
        let k = header.find(&format!("'{key}'")).ok_or(format!("header has no '{key}'"))?;
        let rest = &header[k + key.len() + 2..];
        let colon = rest.find(':').ok_or(format!("header '{key}' has no value"))?;
        Ok(rest[colon + 1..].trim_start())
    };
    let descr = field("descr")?;
    let was_f16 = if descr.starts_with("'<f4'") || descr.starts_with("'float32'") {
        false
    } else if descr.starts_with("'<f2'") || descr.starts_with("'float16'") {
        true
    } else {
        return Err(format!(
            "dtype {} is not little-endian float32 or float16; save with arr.astype('<f4')",
            descr.split(',').next().unwrap_or(descr)
        ));
    };
    if !field("fortran_order")?.starts_with("False") {
        return Err("Fortran order is not supported; save a C-contiguous array (np.ascontiguousarray)".into());
    }
    let shape_txt = field("shape")?;
    let (inner, _) = shape_txt
        .strip_prefix('(')
        .and_then(|rest| rest.split_once(')'))
        .ok_or("malformed shape: expected a tuple like (1, 3, 32, 32)")?;
    let shape: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| format!("shape entry `{s}` is not a size")))
        .collect::<std::result::Result<_, _>>()?;
    let elems = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or("shape overflows")?;
    let esize = if was_f16 { 2 } else { 4 };
    let body = &bytes[start + hlen..];
    if elems.checked_mul(esize) != Some(body.len()) {
        return Err(format!(
            "shape {shape:?} needs {} data bytes, the file has {}",
            elems.saturating_mul(esize),
            body.len()
        ));
    }
    let data = if was_f16 {
        body.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
    } else {
        body.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    };
    Ok(Array { shape, data, was_f16 })
}

/// Encodes an f32 array as `.npy` 1.0 bytes.
pub fn encode(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_txt = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_txt}, }}");
    // Pad so the data starts on a 64-byte boundary, as NumPy does.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat(total.next_multiple_of(64) - total));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes an f32 array atomically (temp file in the same directory, fsync, rename): a failure
/// never leaves a partial `.npy` behind.
pub fn write(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    super::write_atomic(path, &encode(shape, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_rejections() {
        let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
        let bytes = encode(&[2, 3, 2, 2], &data);
        assert_eq!((10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize) % 64, 0);
        let a = parse(&bytes).unwrap();
        assert_eq!(a.shape, vec![2, 3, 2, 2]);
        assert_eq!(a.data, data);
        for cut in [0, 5, 9, 40, bytes.len() - 1] {
            assert!(parse(&bytes[..cut]).is_err(), "truncated at {cut} accepted");
        }
        let mut f64_hdr = bytes.clone();
        let at = f64_hdr.windows(3).position(|w| w == b"<f4").unwrap();
        f64_hdr[at + 2] = b'8';
        assert!(parse(&f64_hdr).unwrap_err().contains("float32"));
    }
}
