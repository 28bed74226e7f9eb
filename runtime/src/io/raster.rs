//! Decoded pixels and how they become model space: the size check a decoder makes from a file's
//! header, the centred crop and Lanczos-3 resampling of `--resize`, and the channel adaptation
//! (gray replicated for 3-channel models, Rec. 601 luma for 1-channel ones, alpha dropped). The
//! codecs (`png`, `image` for JPEG) produce a [`Raster`]; this module owns what happens after.

use std::path::Path;

use crate::bundle::{ImageSpec, Normalization};
use crate::error::{Error, Result};

/// Largest image decoded when its size is free (cropping and resizing on): 64 Mpixel.
pub const MAX_PIXELS: usize = 1 << 26;

/// What to do with an image whose size is not the bundle's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fit {
    /// Refuse it, naming both sizes.
    #[default]
    Exact,
    /// Crop the centre to the bundle's aspect ratio, then resample to its size.
    CropResize,
}

/// What a decoder may accept, checked from the file's header before pixels are decoded.
#[derive(Debug, Clone, Copy)]
pub(super) enum Expect {
    /// Exactly (height, width).
    Size(usize, usize),
    /// Any size up to this many pixels.
    AtMost(usize),
}

impl Expect {
    pub(super) fn pixels(self) -> usize {
        match self {
            Expect::Size(h, w) => h.saturating_mul(w),
            Expect::AtMost(p) => p,
        }
    }

    pub(super) fn check(self, path: &Path, h: usize, w: usize) -> Result<()> {
        match self {
            Expect::Size(eh, ew) if (h, w) != (eh, ew) => Err(Error::Shape {
                what: format!("image {}", path.display()),
                expected: vec![eh, ew],
                found: vec![h, w],
                hint: " (height, width); resize it to the bundle's size first, or pass --resize".into(),
            }),
            Expect::AtMost(p) if h.saturating_mul(w) > p || h == 0 || w == 0 => {
                Err(Error::input(path, format!("image of {h}×{w} pixels: at most {p} pixels are read")))
            }
            _ => Ok(()),
        }
    }
}

/// Decoded pixels: `height × width` of `samples` values each (1 gray, 2 gray+alpha, 3 RGB,
/// 4 RGBA), interleaved, scaled to 0..1.
#[derive(Debug, Clone, PartialEq)]
pub struct Raster {
    pub width: usize,
    pub height: usize,
    pub samples: usize,
    pub data: Vec<f32>,
}

/// A raster as model space `[C, H, W]`: cropped and resized per `fit`, channels adapted,
/// 0..1 mapped linearly onto the normalisation range.
pub fn to_model(raster: &Raster, origin: &Path, image: ImageSpec, norm: Normalization, fit: Fit) -> Result<Vec<f32>> {
    let (h, w, c) = (image.height, image.width, image.channels);
    if c != 1 && c != 3 {
        return Err(Error::input(
            origin,
            format!("image input needs a 1- or 3-channel bundle, this one has {c}; give a .npy [N,{c},H,W]"),
        ));
    }
    // Colour (RGB) or gray, alpha dropped, at the source size.
    let src_c = if raster.samples >= 3 { 3 } else { 1 };
    let mut px: Vec<f32> = raster.data.chunks_exact(raster.samples).flat_map(|p| p[..src_c].to_vec()).collect();
    let (mut rh, mut rw) = (raster.height, raster.width);
    if (rh, rw) != (h, w) {
        if fit == Fit::Exact {
            Expect::Size(h, w).check(origin, rh, rw)?;
        }
        (px, rh, rw) = crop_resize(&px, rh, rw, src_c, h, w).ok_or_else(|| {
            Error::input(origin, format!("{rh}×{rw} pixels with {src_c} channels cannot be cropped to {h}×{w}"))
        })?;
    }
    let scale = norm.high - norm.low;
    let to_model = |v: f32| norm.low + v.clamp(0.0, 1.0) * scale;
    let plane = h * w;
    let mut out = vec![0f32; c * plane];
    for i in 0..plane.min(rh * rw) {
        let p = &px[i * src_c..(i + 1) * src_c];
        match (c, src_c) {
            (1, 1) => out[i] = to_model(p[0]),
            (1, _) => out[i] = to_model(0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]),
            (_, 1) => (0..3).for_each(|k| out[k * plane + i] = to_model(p[0])),
            _ => (0..3).for_each(|k| out[k * plane + i] = to_model(p[k])),
        }
    }
    Ok(out)
}

/// The centre of `px` (rh×rw, `c` interleaved channels) cropped to the aspect ratio of h×w, then
/// resampled to h×w with a Lanczos-3 filter.
fn crop_resize(px: &[f32], rh: usize, rw: usize, c: usize, h: usize, w: usize) -> Option<(Vec<f32>, usize, usize)> {
    // Largest centred window of ratio h:w inside rh×rw.
    let (ch, cw) = if rh * w > rw * h { ((rw * h / w).max(1), rw) } else { (rh, (rh * w / h).max(1)) };
    let (top, left) = ((rh - ch) / 2, (rw - cw) / 2);
    let mut crop = Vec::with_capacity(ch * cw * c);
    for y in top..top + ch {
        crop.extend_from_slice(&px[(y * rw + left) * c..(y * rw + left + cw) * c]);
    }
    let filter = image::imageops::FilterType::Lanczos3;
    let out = if c == 1 {
        let buf = image::ImageBuffer::<image::Luma<f32>, _>::from_raw(cw as u32, ch as u32, crop)?;
        image::imageops::resize(&buf, w as u32, h as u32, filter).into_raw()
    } else {
        let buf = image::ImageBuffer::<image::Rgb<f32>, _>::from_raw(cw as u32, ch as u32, crop)?;
        image::imageops::resize(&buf, w as u32, h as u32, filter).into_raw()
    };
    Some((out, h, w))
}
