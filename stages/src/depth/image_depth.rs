//! Depth maps from files, for image sources that come with depth.
//!
//! Convention everywhere in texaug: **larger = nearer**, like MiDaS/DPT relative inverse depth
//! ("disparity"), which is what depth-conditioned Stable Diffusion was trained on.
//! - 8-bit PNG: `value / 255`; 16-bit PNG: `value / 65535` (so both land in [0, 1]).
//!   Grayscale, gray+alpha (alpha ignored) or RGB(A) with R = G = B.
//! - 32/64-bit float TIFF, one channel, uncompressed: values as stored (any range; NaN and ±inf
//!   become 0, i.e. "far"). Float RGB TIFFs with R = G = B are read through `image`.
//!
//! Depth-conditioned models min-max normalize per image, so only the ordering and relative spacing
//! matter, not the absolute scale.

use super::error::DepthError;
use crate::file_read::read_input_file;
use crate::source::SourceLimits;
use image::{DynamicImage, ImageReader, Limits};
use std::io::Cursor;
use std::path::Path;

/// A dense row-major `f32` map (larger = nearer).
#[derive(Debug, Clone, PartialEq)]
pub struct DepthMap {
    width: u32,
    height: u32,
    data: Vec<f32>,
}

impl DepthMap {
    /// Fails when `data` does not hold exactly `width × height` values.
    pub fn from_vec(width: u32, height: u32, data: Vec<f32>) -> Result<Self, DepthError> {
        if data.len() != width as usize * height as usize {
            return Err(DepthError::BadDepthMap {
                width,
                height,
                expected: width as usize * height as usize,
                got: data.len(),
            });
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    pub fn zeros(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            data: vec![0.0; width as usize * height as usize],
        }
    }

    pub fn width(&self) -> u32 {
        self.width
    }
    pub fn height(&self) -> u32 {
        self.height
    }
    pub fn data(&self) -> &[f32] {
        &self.data
    }
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
    /// The value at column `x`, row `y`; `None` outside the map.
    pub fn get(&self, x: u32, y: u32) -> Option<f32> {
        (x < self.width && y < self.height)
            .then(|| self.data[y as usize * self.width as usize + x as usize])
    }

    /// Min-max normalized to 16-bit (larger = nearer), for depth-conditioned models and previews.
    pub fn to_luma16(&self) -> image::ImageBuffer<image::Luma<u16>, Vec<u16>> {
        let finite = self.data.iter().copied().filter(|v| v.is_finite());
        let lo = finite.clone().fold(f32::INFINITY, f32::min);
        let hi = finite.fold(f32::NEG_INFINITY, f32::max);
        let span = hi - lo;
        let data = self
            .data
            .iter()
            .map(|&v| {
                if !v.is_finite() || span <= 0.0 {
                    0
                } else {
                    (65535.0 * ((v - lo) / span)).round() as u16
                }
            })
            .collect();
        image::ImageBuffer::from_raw(self.width, self.height, data)
            .unwrap_or_else(|| image::ImageBuffer::new(self.width, self.height))
    }
}

/// Loads a depth image (see the module docs for formats and the larger-is-nearer convention).
pub fn load_depth_image(path: impl AsRef<Path>) -> Result<DepthMap, DepthError> {
    load_depth_image_with(path.as_ref(), &SourceLimits::default())
}

/// [`load_depth_image`] with the given limits: a regular file of at most `max_file_bytes`, at most
/// `max_image_pixels` by its header, checked before any pixel is decoded.
pub fn load_depth_image_with(path: &Path, limits: &SourceLimits) -> Result<DepthMap, DepthError> {
    let bytes = read_input_file(path, limits.max_file_bytes).map_err(|e| DepthError::Read {
        path: path.to_path_buf(),
        cause: e.to_string(),
    })?;
    let over = |width: u64, height: u64| {
        DepthError::OverLimit {
        path: path.to_path_buf(),
        cause: format!(
            "is {width}×{height} ({} pixels) by its header, over the limit of {} pixels; it was not decoded",
            width.saturating_mul(height),
            limits.max_image_pixels
        ),
        limit: "max_image_pixels",
    }
    };
    let is_tiff = bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*");
    if is_tiff {
        if let Some(map) = read_float_gray_tiff(&bytes, path, limits.max_image_pixels, over)? {
            return Ok(map);
        }
    }
    let unreadable = |e: image::ImageError| DepthError::Read {
        path: path.to_path_buf(),
        cause: e.to_string(),
    };
    let reader = || {
        ImageReader::new(Cursor::new(bytes.as_slice()))
            .with_guessed_format()
            .map_err(|e| unreadable(e.into()))
    };
    let (width, height) = reader()?.into_dimensions().map_err(unreadable)?;
    if u64::from(width) * u64::from(height) > limits.max_image_pixels {
        return Err(over(width.into(), height.into()));
    }
    let mut reader = reader()?;
    // The decoder's own cap, should a header understate what decoding allocates: 4-channel f32 at most.
    let mut decode_limits = Limits::default();
    decode_limits.max_alloc = Some(limits.max_image_pixels.saturating_mul(16).max(1 << 20));
    reader.limits(decode_limits);
    let img = reader.decode().map_err(unreadable)?;
    from_dynamic(img, path)
}

fn from_dynamic(img: DynamicImage, path: &Path) -> Result<DepthMap, DepthError> {
    let (w, h) = (img.width(), img.height());
    let gray = |channels: usize, values: Vec<f32>| -> Result<Vec<f32>, DepthError> {
        let color = if channels >= 3 { 3 } else { 1 };
        let mut out = Vec::with_capacity(values.len() / channels);
        for px in values.chunks_exact(channels) {
            if px[..color].iter().any(|&c| c != px[0]) {
                return Err(DepthError::Unsupported {
                    path: path.to_path_buf(),
                    what: "a color image (R, G, B differ), e.g. a color-mapped depth preview"
                        .into(),
                });
            }
            out.push(if px[0].is_finite() { px[0] } else { 0.0 });
        }
        Ok(out)
    };
    let unit8 = |v: Vec<u8>| v.into_iter().map(|b| b as f32 / 255.0).collect::<Vec<_>>();
    let unit16 = |v: Vec<u16>| {
        v.into_iter()
            .map(|b| b as f32 / 65535.0)
            .collect::<Vec<_>>()
    };
    let data = match img {
        DynamicImage::ImageLuma8(b) => gray(1, unit8(b.into_raw()))?,
        DynamicImage::ImageLumaA8(b) => gray(2, unit8(b.into_raw()))?,
        DynamicImage::ImageRgb8(b) => gray(3, unit8(b.into_raw()))?,
        DynamicImage::ImageRgba8(b) => gray(4, unit8(b.into_raw()))?,
        DynamicImage::ImageLuma16(b) => gray(1, unit16(b.into_raw()))?,
        DynamicImage::ImageLumaA16(b) => gray(2, unit16(b.into_raw()))?,
        DynamicImage::ImageRgb16(b) => gray(3, unit16(b.into_raw()))?,
        DynamicImage::ImageRgba16(b) => gray(4, unit16(b.into_raw()))?,
        DynamicImage::ImageRgb32F(b) => gray(3, b.into_raw())?,
        DynamicImage::ImageRgba32F(b) => gray(4, b.into_raw())?,
        other => {
            return Err(DepthError::Unsupported {
                path: path.to_path_buf(),
                what: format!("pixel layout {:?}", other.color()),
            })
        }
    };
    DepthMap::from_vec(w, h, data)
}

/// Reads a one-channel IEEE float TIFF (strips, uncompressed). `Ok(None)` when the file is some
/// other kind of TIFF, which the `image` decoder then handles.
fn read_float_gray_tiff(
    bytes: &[u8],
    path: &Path,
    max_pixels: u64,
    over: impl Fn(u64, u64) -> DepthError,
) -> Result<Option<DepthMap>, DepthError> {
    let bad = |what: &str| DepthError::Read {
        path: path.to_path_buf(),
        cause: format!("malformed TIFF: {what}"),
    };
    let le = bytes[0] == b'I';
    let u16_at = |o: usize| -> Option<u16> {
        let b: [u8; 2] = bytes.get(o..o + 2)?.try_into().ok()?;
        Some(if le {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let u32_at = |o: usize| -> Option<u32> {
        let b: [u8; 4] = bytes.get(o..o + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let ifd = u32_at(4).ok_or_else(|| bad("no first directory offset"))? as usize;
    let n = u16_at(ifd).ok_or_else(|| bad("directory out of the file"))? as usize;

    // Each entry's values, as unsigned integers (SHORT or LONG), read inline or from the offset.
    let values = |entry: usize| -> Option<Vec<u64>> {
        let typ = u16_at(entry + 2)?;
        let count = u32_at(entry + 4)? as usize;
        let size = match typ {
            3 => 2,
            4 => 4,
            _ => return Some(Vec::new()),
        };
        let start = if count * size <= 4 {
            entry + 8
        } else {
            u32_at(entry + 8)? as usize
        };
        (0..count.min(1 << 24))
            .map(|k| {
                let o = start + k * size;
                if size == 2 {
                    u16_at(o).map(u64::from)
                } else {
                    u32_at(o).map(u64::from)
                }
            })
            .collect()
    };
    let (mut width, mut height, mut bits, mut samples, mut format) = (0, 0, 1, 1, 1);
    let (mut compression, mut planar_tiles) = (1, false);
    let (mut offsets, mut counts) = (Vec::new(), Vec::new());
    for k in 0..n {
        let entry = ifd + 2 + 12 * k;
        let tag = u16_at(entry).ok_or_else(|| bad("directory entry out of the file"))?;
        let v = values(entry).ok_or_else(|| bad("tag values out of the file"))?;
        let first = v.first().copied().unwrap_or(0);
        match tag {
            256 => width = first,
            257 => height = first,
            258 => bits = first,
            259 => compression = first,
            273 => offsets = v,
            277 => samples = first,
            279 => counts = v,
            322 | 323 => planar_tiles = true,
            339 => format = first,
            _ => {}
        }
    }
    if format != 3 || samples != 1 {
        return Ok(None);
    }
    if !(bits == 32 || bits == 64) || compression != 1 || planar_tiles {
        return Err(DepthError::Unsupported {
            path: path.to_path_buf(),
            what: format!(
                "float TIFF with {bits} bits, compression {compression}{}; save it as an \
                 uncompressed, stripped 32-bit float TIFF",
                if planar_tiles { ", tiled" } else { "" }
            ),
        });
    }
    if width.saturating_mul(height) > max_pixels {
        return Err(over(width, height));
    }
    let pixels = (width * height) as usize;
    let step = (bits / 8) as usize;
    let mut data = Vec::with_capacity(pixels.min(bytes.len() / step));
    for (s, &off) in offsets.iter().enumerate() {
        let len = counts.get(s).copied().unwrap_or(0) as usize;
        let strip = bytes
            .get(off as usize..off as usize + len)
            .ok_or_else(|| bad("strip out of the file"))?;
        for px in strip.chunks_exact(step) {
            let v = if step == 4 {
                let b: [u8; 4] = px.try_into().map_err(|_| bad("short sample"))?;
                if le {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                }
            } else {
                let b: [u8; 8] = px.try_into().map_err(|_| bad("short sample"))?;
                (if le {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                }) as f32
            };
            data.push(if v.is_finite() { v } else { 0.0 });
        }
    }
    if data.len() < pixels {
        return Err(bad(&format!(
            "{} samples for a {width}×{height} image",
            data.len()
        )));
    }
    data.truncate(pixels);
    DepthMap::from_vec(width as u32, height as u32, data).map(Some)
}
