//! Images to CLIP's `pixel_values` as transformers' `CLIPImageProcessor` makes them: the shortest side resized
//! with PIL's bicubic filter, a centre crop, `/ 255`, then normalised with the model's mean and std.
//!
//! The resize is PIL's own algorithm (`Image.resize(…, BICUBIC)` on 8-bit RGB): a separable convolution whose
//! kernel widens with the reduction (antialiasing), coefficients in 22-bit fixed point, each pass rounded to
//! 8 bits, horizontal first. Doing it the way PIL does keeps our scores those of the reference, not merely close.

use std::path::Path;

use image::RgbImage;
use serde_json::Value;
use tch::{Device, Kind, Tensor};

use super::error::{read_json, ScoreError};

/// CLIP's normalisation (OpenAI's training statistics), transformers' `OPENAI_CLIP_MEAN` / `OPENAI_CLIP_STD`,
/// digit for digit as preprocessor configs write them; numpy rounds them to float32 as Rust does.
#[allow(clippy::excessive_precision)]
pub const CLIP_MEAN: [f32; 3] = [0.48145466, 0.4578275, 0.40821073];
#[allow(clippy::excessive_precision)]
pub const CLIP_STD: [f32; 3] = [0.26862954, 0.26130258, 0.27577711];

/// PIL's `Image.BICUBIC`, the only resample CLIP processors use.
const PIL_BICUBIC: i64 = 3;

/// How the resize step sizes its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    /// The shorter side to this, the longer `int(n * long / short)` (aspect kept, as transformers does).
    ShortestEdge(u32),
    /// Exactly this (height, width).
    Exact(u32, u32),
}

/// The settings of a `preprocessor_config.json` that change `pixel_values`.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocess {
    pub resize: Option<Resize>,
    /// (height, width) of the centre crop.
    pub crop: Option<(u32, u32)>,
    pub rescale_factor: Option<f64>,
    pub mean_std: Option<([f32; 3], [f32; 3])>,
}

impl Preprocess {
    /// CLIPImageProcessor's defaults for a model of `image_size`.
    pub fn clip(image_size: u32) -> Self {
        Preprocess {
            resize: Some(Resize::ShortestEdge(image_size)),
            crop: Some((image_size, image_size)),
            rescale_factor: Some(1.0 / 255.0),
            mean_std: Some((CLIP_MEAN, CLIP_STD)),
        }
    }

    /// Reads `preprocessor_config.json`; a key it lacks keeps [`Preprocess::clip`]'s value.
    pub fn from_file(path: &Path, image_size: u32) -> Result<Self, ScoreError> {
        let v = read_json(path)?;
        Self::from_json(&v, image_size).map_err(|(field, message)| {
            ScoreError::field(
                path,
                &field,
                message,
                "write it as CLIPImageProcessor saves it (e.g. \"size\": {\"shortest_edge\": 224}, \
                 \"crop_size\": {\"height\": 224, \"width\": 224}, \"resample\": 3), or delete the file to \
                 use CLIP's defaults",
            )
        })
    }

    fn from_json(v: &Value, image_size: u32) -> Result<Self, (String, String)> {
        let mut p = Self::clip(image_size);
        let flag = |key: &str| -> Result<bool, (String, String)> {
            match v.get(key) {
                None | Some(Value::Null) => Ok(true),
                Some(Value::Bool(b)) => Ok(*b),
                Some(other) => Err((key.into(), format!("is {other}, not true or false"))),
            }
        };
        if let Some(r) = v.get("resample").filter(|r| !r.is_null()) {
            if r.as_i64() != Some(PIL_BICUBIC) {
                return Err((
                    "resample".into(),
                    format!("is {r}; texaug resizes with bicubic (3) only, as CLIP was trained"),
                ));
            }
        }
        if !flag("do_resize")? {
            p.resize = None;
        } else if let Some(size) = v.get("size").filter(|s| !s.is_null()) {
            p.resize = Some(match size_of(size) {
                Some(SizeSpec::Edge(n)) => Resize::ShortestEdge(n),
                Some(SizeSpec::Box(h, w)) => Resize::Exact(h, w),
                None => {
                    return Err((
                        "size".into(),
                        format!("is {size}; give an integer, {{\"shortest_edge\": n}} or {{\"height\": h, \"width\": w}}"),
                    ))
                }
            });
        }
        if !flag("do_center_crop")? {
            p.crop = None;
        } else if let Some(size) = v.get("crop_size").filter(|s| !s.is_null()) {
            p.crop = Some(match size_of(size) {
                Some(SizeSpec::Edge(n)) => (n, n),
                Some(SizeSpec::Box(h, w)) => (h, w),
                None => {
                    return Err((
                        "crop_size".into(),
                        format!("is {size}; give an integer or {{\"height\": h, \"width\": w}}"),
                    ))
                }
            });
        }
        if !flag("do_rescale")? {
            p.rescale_factor = None;
        } else if let Some(f) = v.get("rescale_factor").filter(|s| !s.is_null()) {
            p.rescale_factor =
                Some(f.as_f64().ok_or_else(|| {
                    ("rescale_factor".to_owned(), format!("is {f}, not a number"))
                })?);
        }
        if !flag("do_normalize")? {
            p.mean_std = None;
        } else {
            let three = |key: &str, default: [f32; 3]| -> Result<[f32; 3], (String, String)> {
                match v.get(key) {
                    None | Some(Value::Null) => Ok(default),
                    Some(x) => x
                        .as_array()
                        .filter(|a| a.len() == 3)
                        .and_then(|a| {
                            let vals: Option<Vec<f32>> =
                                a.iter().map(|n| n.as_f64().map(|f| f as f32)).collect();
                            vals.map(|v| [v[0], v[1], v[2]])
                        })
                        .ok_or_else(|| {
                            (
                                key.to_owned(),
                                format!("is {x}, not three numbers (R, G, B)"),
                            )
                        }),
                }
            };
            let std = three("image_std", CLIP_STD)?;
            if std.contains(&0.0) {
                return Err(("image_std".into(), "has a zero".into()));
            }
            p.mean_std = Some((three("image_mean", CLIP_MEAN)?, std));
        }
        Ok(p)
    }

    /// One image → `[3, h, w]` float32, exactly the steps of CLIPImageProcessor in its order.
    pub fn pixel_values(&self, image: &RgbImage) -> Tensor {
        let resized;
        let img = match self.resize {
            None => image,
            Some(r) => {
                let (w, h) = (image.width(), image.height());
                let (oh, ow) = match r {
                    Resize::Exact(h, w) => (h, w),
                    Resize::ShortestEdge(n) => {
                        let (short, long) = (w.min(h) as u64, w.max(h) as u64);
                        // Python's int(n * long / short) in floats is this floor: the exact quotient lies at
                        // least 1/short from the next integer, far past float64 rounding.
                        let other = (n as u64 * long / short.max(1)) as u32;
                        if w <= h {
                            (other, n)
                        } else {
                            (n, other)
                        }
                    }
                };
                resized = resize_bicubic(image, ow.max(1), oh.max(1));
                &resized
            }
        };
        let (w, h) = (img.width() as i64, img.height() as i64);
        let (ch, cw) = self.crop.map_or((h, w), |(ch, cw)| (ch as i64, cw as i64));
        // Centre crop with transformers' offsets; a crop larger than the image reads zeros there, where
        // transformers pads with zeros before cropping (the same offsets: floor((h - ch) / 2) either way).
        let (top, left) = ((h - ch).div_euclid(2), (w - cw).div_euclid(2));
        let rescale = self.rescale_factor;
        let (mean, std) = self.mean_std.unwrap_or(([0.0; 3], [1.0; 3]));
        let normalize = self.mean_std.is_some();
        let mut out = vec![0f32; (3 * ch * cw) as usize];
        for c in 0..3usize {
            for y in 0..ch {
                for x in 0..cw {
                    let (sy, sx) = (y + top, x + left);
                    let raw = if (0..h).contains(&sy) && (0..w).contains(&sx) {
                        img.get_pixel(sx as u32, sy as u32).0[c]
                    } else {
                        0
                    };
                    // numpy's order and precision: the rescale in float64 stored as float32, then the
                    // normalisation in float32.
                    let mut v = match rescale {
                        Some(f) => (raw as f64 * f) as f32,
                        None => raw as f32,
                    };
                    if normalize {
                        v = (v - mean[c]) / std[c];
                    }
                    out[(c as i64 * ch * cw + y * cw + x) as usize] = v;
                }
            }
        }
        Tensor::from_slice(&out).view([3, ch, cw])
    }

    /// A batch `[b, 3, h, w]` on `device` (every image preprocessed to the same size).
    pub fn batch(&self, images: &[&RgbImage], device: Device) -> Tensor {
        let each: Vec<Tensor> = images.iter().map(|i| self.pixel_values(i)).collect();
        Tensor::stack(&each, 0)
            .to_kind(Kind::Float)
            .to_device(device)
    }
}

enum SizeSpec {
    Edge(u32),
    Box(u32, u32),
}

fn size_of(v: &Value) -> Option<SizeSpec> {
    let n = |x: &Value| {
        x.as_u64()
            .filter(|n| *n > 0 && *n <= 1 << 16)
            .map(|n| n as u32)
    };
    if let Some(e) = n(v) {
        return Some(SizeSpec::Edge(e));
    }
    if let Some(e) = v.get("shortest_edge") {
        return n(e).map(SizeSpec::Edge);
    }
    Some(SizeSpec::Box(n(v.get("height")?)?, n(v.get("width")?)?))
}

/// PIL's bicubic kernel (a = -0.5), support 2.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Fixed-point bits of PIL's 8-bit resampling coefficients.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// For each output index along one axis: the first input index and the fixed-point weights from there, as PIL
/// computes them (in double precision, normalised to sum 1, then rounded half away from zero).
fn coefficients(in_size: u32, out_size: u32) -> Vec<(usize, Vec<i64>)> {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = 2.0 * filter_scale;
    (0..out_size)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            // C's (int) truncation toward zero, as PIL writes it.
            let lo = ((center - support + 0.5) as i64).max(0);
            let hi = ((center + support + 0.5) as i64).min(in_size as i64);
            let raw: Vec<f64> = (lo..hi)
                .map(|x| bicubic((x as f64 - center + 0.5) / filter_scale))
                .collect();
            let total: f64 = raw.iter().sum();
            let one = (1u64 << PRECISION_BITS) as f64;
            let fixed = raw
                .iter()
                .map(|w| {
                    let w = if total != 0.0 { w / total } else { *w };
                    if w < 0.0 {
                        (-0.5 + w * one) as i64
                    } else {
                        (0.5 + w * one) as i64
                    }
                })
                .collect();
            (lo as usize, fixed)
        })
        .collect()
}

fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// PIL's `resize((w, h), BICUBIC)` of an 8-bit RGB image: a horizontal pass, then a vertical one, each only
/// when that side changes.
pub fn resize_bicubic(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    let half = 1i64 << (PRECISION_BITS - 1);
    let mut img = image.clone();
    if width != img.width() {
        let coeffs = coefficients(img.width(), width);
        img = RgbImage::from_fn(width, img.height(), |x, y| {
            let (lo, ks) = &coeffs[x as usize];
            let mut acc = [half; 3];
            for (j, k) in ks.iter().enumerate() {
                let p = image_pixel(&img, (lo + j) as u32, y);
                for c in 0..3 {
                    acc[c] += p[c] as i64 * k;
                }
            }
            image::Rgb(acc.map(clip8))
        });
    }
    if height != img.height() {
        let coeffs = coefficients(img.height(), height);
        img = RgbImage::from_fn(img.width(), height, |x, y| {
            let (lo, ks) = &coeffs[y as usize];
            let mut acc = [half; 3];
            for (j, k) in ks.iter().enumerate() {
                let p = image_pixel(&img, x, (lo + j) as u32);
                for c in 0..3 {
                    acc[c] += p[c] as i64 * k;
                }
            }
            image::Rgb(acc.map(clip8))
        });
    }
    img
}

fn image_pixel(img: &RgbImage, x: u32, y: u32) -> [u8; 3] {
    img.get_pixel(x, y).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_edge_keeps_the_aspect_and_crops_the_centre() {
        let img = RgbImage::from_fn(90, 60, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let t = Preprocess::clip(30).pixel_values(&img);
        assert_eq!(t.size(), [3, 30, 30]);
        // A constant channel stays constant through resize and crop: (7/255 - mean) / std.
        let want = ((7.0f64 / 255.0) as f32 - CLIP_MEAN[2]) / CLIP_STD[2];
        let blue = t.get(2);
        assert!((blue.max().double_value(&[]) - want as f64).abs() < 1e-6);
        assert!((blue.min().double_value(&[]) - want as f64).abs() < 1e-6);
    }

    #[test]
    fn identity_resize_is_a_copy_and_weights_sum_to_one() {
        let img = RgbImage::from_fn(9, 5, |x, y| image::Rgb([(x * 20) as u8, (y * 40) as u8, 3]));
        assert_eq!(resize_bicubic(&img, 9, 5), img);
        for (in_size, out_size) in [(100, 7), (7, 100), (45, 32)] {
            for (_, ks) in coefficients(in_size, out_size) {
                let sum: i64 = ks.iter().sum();
                assert!(
                    (sum - (1 << PRECISION_BITS)).abs() <= ks.len() as i64,
                    "{sum}"
                );
            }
        }
    }

    #[test]
    fn config_forms_parse() {
        let v = serde_json::json!({"size": 224, "crop_size": 224, "resample": 3, "do_center_crop": true});
        let p = Preprocess::from_json(&v, 32).unwrap();
        assert_eq!(p.resize, Some(Resize::ShortestEdge(224)));
        assert_eq!(p.crop, Some((224, 224)));
        let v = serde_json::json!({"size": {"height": 20, "width": 30}, "crop_size": {"height": 10, "width": 12},
            "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]});
        let p = Preprocess::from_json(&v, 32).unwrap();
        assert_eq!(p.resize, Some(Resize::Exact(20, 30)));
        assert_eq!(p.mean_std, Some(([0.5; 3], [0.5; 3])));
        let bad = serde_json::json!({"resample": 2});
        assert_eq!(Preprocess::from_json(&bad, 32).unwrap_err().0, "resample");
        let bad = serde_json::json!({"size": "big"});
        assert_eq!(Preprocess::from_json(&bad, 32).unwrap_err().0, "size");
    }
}
