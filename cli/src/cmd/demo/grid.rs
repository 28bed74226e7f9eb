//! The demo's side-by-side picture: one row per input, one column per method.

use anyhow::Result;
use brenier::bundle::ImageSpec;
use brenier::io::png;

/// Tiles rows of images (each row: one image from every column set) into one PNG, ×`scale`.
pub fn grid(
    columns: &[&[f32]],
    rows: usize,
    image: ImageSpec,
    norm: brenier::bundle::Normalization,
    scale: usize,
) -> Result<Vec<u8>> {
    let (h, w, c) = (image.height * scale, image.width * scale, image.channels);
    let (gw, gh) = (columns.len() * (w + 2), rows * (h + 2));
    let mut g = vec![norm.low; c * gh * gw];
    for r in 0..rows {
        for (col, data) in columns.iter().enumerate() {
            let img = &data[r * image.elems()..(r + 1) * image.elems()];
            for ch in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        let v = img[ch * image.height * image.width + (y / scale) * image.width + x / scale];
                        g[ch * gh * gw + (r * (h + 2) + y) * gw + col * (w + 2) + x] = v;
                    }
                }
            }
        }
    }
    Ok(png::encode(&g, ImageSpec { channels: c, height: gh, width: gw }, norm, &[])?)
}
