//! PNG in and out. Pixels 0..255 (0..65535 at 16 bits) map linearly onto the manifest's
//! normalisation range; outputs carry tEXt metadata (method, T, K, seed) so an image records how
//! it was made.

use std::path::Path;

use super::raster::{to_model, Expect, Fit, Raster};
use crate::bundle::{ImageSpec, Normalization};
use crate::error::{Error, Result};

/// Reads a PNG file into model space `[C, H, W]` at the bundle's size (see [`decode`]).
pub fn read(path: &Path, image: ImageSpec, norm: Normalization) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode(&bytes, path, image, norm)
}

/// Decodes PNG bytes (from `origin`, named in errors) into model space `[C, H, W]` at the bundle's
/// size: a size mismatch is an error naming both sizes, checked from the header before any pixel
/// buffer is allocated (`super::raster` crops and resizes on request).
pub fn decode(bytes: &[u8], origin: &Path, image: ImageSpec, norm: Normalization) -> Result<Vec<f32>> {
    let raster = decode_raster(bytes, origin, Expect::Size(image.height, image.width))?;
    to_model(&raster, origin, image, norm, Fit::Exact)
}

/// Decodes PNG bytes (8 or 16 bits; gray, gray+alpha, RGB, RGBA or palette) into a raster. With
/// `Expect::Size` a different size is refused from the header; otherwise the image may hold at
/// most `Expect::AtMost` pixels. The decoder's own allocations (metadata chunks included) are
/// capped at a small multiple of the image.
pub(super) fn decode_raster(bytes: &[u8], origin: &Path, expect: Expect) -> Result<Raster> {
    let path = origin;
    check_palette(bytes).map_err(|problem| Error::input(path, format!("not a readable PNG: {problem}")))?;
    let pixels = expect.pixels();
    // RGBA at 16 bits is the largest output the transformation below produces; the rest is room
    // for ancillary chunks (text, ICC profiles) that a legitimate file may carry.
    let limit = pixels.saturating_mul(8).saturating_add(1 << 20);
    let mut decoder = png::Decoder::new_with_limits(std::io::Cursor::new(bytes), png::Limits { bytes: limit });
    decoder.set_transformations(png::Transformations::EXPAND);
    let bad = |e: png::DecodingError| Error::input(path, format!("not a readable PNG: {e}"));
    let mut reader = decoder.read_info().map_err(bad)?;
    let (w, h) = (reader.info().width as usize, reader.info().height as usize);
    expect.check(path, h, w)?;
    let size = reader.output_buffer_size().ok_or_else(|| Error::input(path, "PNG too large"))?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(bad)?;
    let samples = info.color_type.samples();
    let px = &buf[..info.buffer_size()];
    let data: Vec<f32> = match info.bit_depth {
        png::BitDepth::Sixteen => {
            px.chunks_exact(2).map(|b| u16::from_be_bytes([b[0], b[1]]) as f32 / 65535.0).collect()
        }
        // EXPAND widens 1, 2 and 4 bits (and palettes) to 8.
        _ => px.iter().map(|&v| v as f32 / 255.0).collect(),
    };
    Ok(Raster { width: w, height: h, samples, data })
}

/// The palette rule of the PNG specification (11.2.3: PLTE holds 1 to 256 three-byte entries),
/// checked before decoding: the png crate (0.18.1) does not check it and panics expanding a
/// palette whose length is not a multiple of 3 (found by the png fuzz target).
fn check_palette(bytes: &[u8]) -> std::result::Result<(), String> {
    let mut at = 8; // after the signature
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if &head[4..8] == b"PLTE" && (len == 0 || !len.is_multiple_of(3) || len > 3 * 256) {
            return Err(format!("its palette (PLTE) has {len} bytes, not 1 to 256 RGB entries; the file is damaged"));
        }
        if &head[4..8] == b"IDAT" || &head[4..8] == b"IEND" {
            return Ok(()); // PLTE must come before the image data
        }
        at = at.saturating_add(12).saturating_add(len);
    }
    Ok(()) // truncated: the decoder reports that
}

/// Encodes one model-space image `[C, H, W]` as PNG bytes with tEXt metadata. Values outside
/// the normalisation range are clipped.
pub fn encode(x: &[f32], image: ImageSpec, norm: Normalization, meta: &[(&str, String)]) -> Result<Vec<u8>> {
    let (h, w, c) = (image.height, image.width, image.channels);
    let plane = h * w;
    let to_px = |v: f32| (((v - norm.low) / (norm.high - norm.low)) * 255.0).round().clamp(0.0, 255.0) as u8;
    let pixels: Vec<u8> = match c {
        1 => x.iter().map(|&v| to_px(v)).collect(),
        3 => (0..plane).flat_map(|i| [to_px(x[i]), to_px(x[plane + i]), to_px(x[2 * plane + i])]).collect(),
        _ => {
            return Err(Error::InvalidArgument(format!(
                "PNG output needs 1 or 3 channels, the bundle has {c}; write .npy"
            )))
        }
    };
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
        enc.set_color(if c == 1 { png::ColorType::Grayscale } else { png::ColorType::Rgb });
        enc.set_depth(png::BitDepth::Eight);
        for (k, v) in meta {
            enc.add_text_chunk(k.to_string(), v.clone())
                .map_err(|e| Error::InvalidArgument(format!("PNG metadata: {e}")))?;
        }
        let mut wr = enc.write_header().map_err(|e| Error::InvalidArgument(format!("PNG encode: {e}")))?;
        wr.write_image_data(&pixels).map_err(|e| Error::InvalidArgument(format!("PNG encode: {e}")))?;
    }
    Ok(out)
}
