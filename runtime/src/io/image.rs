//! Images in and out of model space, whatever their format and size: PNG (8 or 16 bits; gray,
//! gray+alpha, RGB, RGBA, palette) and JPEG (gray, RGB, CMYK) are decoded into a raster, which
//! is adapted to the bundle's C×H×W: gray feeds 3-channel models by replication, colour feeds
//! 1-channel models by Rec. 601 luma, alpha is dropped. A raster of another size is refused,
//! naming both sizes, unless the caller asks for [`Fit::CropResize`]: a centred crop to the
//! bundle's aspect ratio, then Lanczos-3 resampling (the `image` crate's) to its size.
//! Outputs are PNG (with tEXt metadata) or JPEG, by the file's extension.

use std::path::Path;

use super::raster::Expect;
pub use super::raster::{to_model, Fit, Raster, MAX_PIXELS};
use crate::bundle::{ImageSpec, Normalization};
use crate::error::{Error, Result};

/// The image formats read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
}

impl Format {
    /// By the file's extension (`.png`, `.jpg`, `.jpeg`, any case).
    pub fn of_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "png" => Some(Format::Png),
            "jpg" | "jpeg" => Some(Format::Jpeg),
            _ => None,
        }
    }

    /// By the file's first bytes.
    fn of_bytes(bytes: &[u8]) -> Option<Format> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Format::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Format::Jpeg)
        } else {
            None
        }
    }
}

/// Reads an image file (PNG or JPEG, told apart by content) into model space `[C, H, W]`.
pub fn read(path: &Path, image: ImageSpec, norm: Normalization, fit: Fit) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode(&bytes, path, image, norm, fit)
}

/// Decodes image bytes (from `origin`, named in errors) into model space `[C, H, W]`.
pub fn decode(bytes: &[u8], origin: &Path, image: ImageSpec, norm: Normalization, fit: Fit) -> Result<Vec<f32>> {
    if bytes.is_empty() {
        return Err(Error::input(origin, "is empty (0 bytes), not an image"));
    }
    let expect = match fit {
        Fit::Exact => Expect::Size(image.height, image.width),
        Fit::CropResize => Expect::AtMost(MAX_PIXELS),
    };
    let raster = match Format::of_bytes(bytes) {
        Some(Format::Png) => super::png::decode_raster(bytes, origin, expect)?,
        Some(Format::Jpeg) => decode_jpeg(bytes, origin, expect)?,
        None => return Err(Error::input(origin, "is neither a PNG nor a JPEG (unknown first bytes)")),
    };
    to_model(&raster, origin, image, norm, fit)
}

fn decode_jpeg(bytes: &[u8], origin: &Path, expect: Expect) -> Result<Raster> {
    use image::ImageDecoder;
    let bad = |e: image::ImageError| Error::input(origin, format!("not a readable JPEG: {e}"));
    let mut decoder = image::codecs::jpeg::JpegDecoder::new(std::io::Cursor::new(bytes)).map_err(bad)?;
    let (w, h) = decoder.dimensions();
    expect.check(origin, h as usize, w as usize)?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some((expect.pixels() as u64).saturating_mul(16).saturating_add(1 << 20));
    decoder.set_limits(limits).map_err(bad)?;
    let img = image::DynamicImage::from_decoder(decoder).map_err(bad)?;
    let (samples, data): (usize, Vec<f32>) = match img {
        image::DynamicImage::ImageLuma8(g) => (1, g.into_raw().into_iter().map(|v| v as f32 / 255.0).collect()),
        other => (3, other.into_rgb8().into_raw().into_iter().map(|v| v as f32 / 255.0).collect()),
    };
    Ok(Raster { width: w as usize, height: h as usize, samples, data })
}

/// Encodes one model-space image `[C, H, W]` in `format`: PNG with tEXt metadata, or JPEG
/// (quality 95; JPEG has no text chunks, so the metadata is not kept). Values outside the
/// normalisation range are clipped.
pub fn encode(
    x: &[f32],
    image: ImageSpec,
    norm: Normalization,
    meta: &[(&str, String)],
    format: Format,
) -> Result<Vec<u8>> {
    match format {
        Format::Png => super::png::encode(x, image, norm, meta),
        Format::Jpeg => {
            let (h, w, c) = (image.height, image.width, image.channels);
            let plane = h * w;
            let to_px = |v: f32| (((v - norm.low) / (norm.high - norm.low)) * 255.0).round().clamp(0.0, 255.0) as u8;
            let (pixels, color): (Vec<u8>, image::ExtendedColorType) = match c {
                1 => (x.iter().map(|&v| to_px(v)).collect(), image::ExtendedColorType::L8),
                3 => (
                    (0..plane).flat_map(|i| [to_px(x[i]), to_px(x[plane + i]), to_px(x[2 * plane + i])]).collect(),
                    image::ExtendedColorType::Rgb8,
                ),
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "JPEG output needs 1 or 3 channels, the bundle has {c}; write .npy"
                    )))
                }
            };
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
                .encode(&pixels, w as u32, h as u32, color)
                .map_err(|e| Error::InvalidArgument(format!("JPEG encode: {e}")))?;
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NORM: Normalization = Normalization { low: -1.0, high: 1.0 };

    fn spec(c: usize, h: usize, w: usize) -> ImageSpec {
        ImageSpec { channels: c, height: h, width: w }
    }

    #[test]
    fn a_jpeg_round_trips_within_its_compression_error() {
        let img = spec(3, 16, 24);
        // A smooth colour ramp: what JPEG keeps well.
        let x: Vec<f32> = (0..img.elems()).map(|i| ((i % 24) as f32 / 24.0 + (i / 384) as f32 * 0.2) - 0.6).collect();
        let bytes = encode(&x, img, NORM, &[], Format::Jpeg).unwrap();
        assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF]);
        let back = decode(&bytes, Path::new("x.jpg"), img, NORM, Fit::Exact).unwrap();
        let rms = (back.iter().zip(&x).map(|(a, b)| (a - b).powi(2)).sum::<f32>() / x.len() as f32).sqrt();
        assert!(rms < 0.03, "JPEG round trip RMS {rms}");
    }

    #[test]
    fn another_size_is_refused_naming_both_unless_cropped_and_resized() {
        let small = spec(1, 4, 4);
        let x: Vec<f32> = (0..16).map(|i| i as f32 / 16.0).collect();
        let png = super::super::png::encode(&x, small, NORM, &[]).unwrap();
        let e = decode(&png, Path::new("a.png"), spec(1, 2, 2), NORM, Fit::Exact).unwrap_err().to_string();
        assert!(e.contains("a.png") && e.contains("[2, 2]") && e.contains("[4, 4]") && e.contains("--resize"), "{e}");
        // 4×4 to 2×2: Lanczos of a linear ramp keeps its mean.
        let y = decode(&png, Path::new("a.png"), spec(1, 2, 2), NORM, Fit::CropResize).unwrap();
        let (mx, my) = (x.iter().sum::<f32>() / 16.0, y.iter().sum::<f32>() / 4.0);
        assert!((mx - my).abs() < 0.02, "{mx} vs {my}");
        // A wide image is cropped to the centre before resizing: a 2×6 image whose middle 2×2
        // is white and sides black becomes all white at 1×1... at 2×2.
        let mut wide = vec![-1.0f32; 12];
        for r in 0..2 {
            wide[r * 6 + 2] = 1.0;
            wide[r * 6 + 3] = 1.0;
        }
        let png = super::super::png::encode(&wide, spec(1, 2, 6), NORM, &[]).unwrap();
        let y = decode(&png, Path::new("w.png"), spec(1, 2, 2), NORM, Fit::CropResize).unwrap();
        assert!(y.iter().all(|&v| v > 0.95), "{y:?}");
    }

    #[test]
    fn channels_adapt_and_unknown_bytes_are_named() {
        let gray = spec(1, 2, 2);
        let x = [-1.0f32, -0.5, 0.5, 1.0];
        let png = super::super::png::encode(&x, gray, NORM, &[]).unwrap();
        let rgb = decode(&png, Path::new("g.png"), spec(3, 2, 2), NORM, Fit::Exact).unwrap();
        assert_eq!(&rgb[..4], &rgb[4..8]);
        assert!(rgb[..4].iter().zip(&x).all(|(a, b)| (a - b).abs() < 0.01));
        let e = decode(b"GIF89a...", Path::new("x.gif"), gray, NORM, Fit::Exact).unwrap_err().to_string();
        assert!(e.contains("x.gif") && e.contains("neither a PNG nor a JPEG"), "{e}");
        let e = decode(b"", Path::new("z.png"), gray, NORM, Fit::Exact).unwrap_err().to_string();
        assert!(e.contains("0 bytes"), "{e}");
        let corrupt = [0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 1, 2, 3];
        let e = decode(&corrupt, Path::new("c.jpg"), gray, NORM, Fit::Exact).unwrap_err().to_string();
        assert!(e.contains("c.jpg") && e.contains("JPEG"), "{e}");
    }
}
