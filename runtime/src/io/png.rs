//! PNG in and out. Pixels 0..255 map linearly onto the manifest's normalisation range; outputs
//! carry tEXt metadata (method, T, K, seed) so an image records how it was made.

use std::path::Path;

use crate::bundle::{ImageSpec, Normalization};
use crate::error::{Error, Result};

/// Reads a PNG file into model space `[C, H, W]` (see [`decode`]).
pub fn read(path: &Path, image: ImageSpec, norm: Normalization) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode(&bytes, path, image, norm)
}

/// Decodes PNG bytes (from `origin`, named in errors) into model space `[C, H, W]`. Gray inputs
/// feed 3-channel models by replication, colour inputs feed 1-channel models by Rec. 601 luma;
/// alpha is dropped. A size mismatch is an error naming the expected size (no silent resizing),
/// checked from the header before any pixel buffer is allocated; the decoder's own allocations
/// (metadata chunks included) are capped at a small multiple of the expected image.
pub fn decode(bytes: &[u8], origin: &Path, image: ImageSpec, norm: Normalization) -> Result<Vec<f32>> {
    let path = origin;
    check_palette(bytes).map_err(|problem| Error::input(path, format!("not a readable PNG: {problem}")))?;
    // RGBA at 8 bits is the largest output the transformations below produce; the rest is
    // room for ancillary chunks (text, ICC profiles) that a legitimate file may carry.
    let limit = image.height.saturating_mul(image.width).saturating_mul(4).saturating_add(1 << 20);
    let mut decoder = png::Decoder::new_with_limits(std::io::Cursor::new(bytes), png::Limits { bytes: limit });
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let bad = |e: png::DecodingError| Error::input(path, format!("not a readable PNG: {e}"));
    let mut reader = decoder.read_info().map_err(bad)?;
    let (w, h) = (reader.info().width as usize, reader.info().height as usize);
    if (h, w) != (image.height, image.width) {
        return Err(Error::Shape {
            what: format!("image {}", path.display()),
            expected: vec![image.height, image.width],
            found: vec![h, w],
            hint: " (height, width); resize it to the bundle's size first".into(),
        });
    }
    let size = reader.output_buffer_size().ok_or_else(|| Error::input(path, "PNG too large"))?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(bad)?;
    let src_c = info.color_type.samples();
    let px = &buf[..info.buffer_size()];
    let scale = (norm.high - norm.low) / 255.0;
    let to_model = |v: f32| norm.low + v * scale;
    let mut out = vec![0f32; image.elems()];
    let plane = h * w;
    for i in 0..plane {
        let p = &px[i * src_c..(i + 1) * src_c];
        let (r, g, b) =
            if src_c >= 3 { (p[0] as f32, p[1] as f32, p[2] as f32) } else { (p[0] as f32, p[0] as f32, p[0] as f32) };
        match image.channels {
            1 => out[i] = to_model(if src_c >= 3 { 0.299 * r + 0.587 * g + 0.114 * b } else { r }),
            3 => {
                out[i] = to_model(r);
                out[plane + i] = to_model(g);
                out[2 * plane + i] = to_model(b);
            }
            c => {
                return Err(Error::input(
                    path,
                    format!("PNG input needs a 1- or 3-channel bundle, this one has {c}; use .npy"),
                ))
            }
        }
    }
    Ok(out)
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
