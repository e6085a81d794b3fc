//! Tensors in and out of the pipeline: images to `[b, 3, H, W]` floats, decoder output back to images, and
//! depth maps to the depth channel of depth-conditioned UNets, each as diffusers' image processors do it.

use tch::{Device, Kind, Tensor};

use super::error::DiffusionError;

/// A depth map for depth-conditioned models: row-major, one value per pixel, larger = nearer (inverse depth,
/// DPT's convention). Any size: it is resized to the latent size and min-max normalized per map.
#[derive(Clone, Debug, PartialEq)]
pub struct DepthMap {
    pub width: u32,
    pub height: u32,
    pub values: Vec<f32>,
}

/// diffusers' `prepare_depth_map`: bicubic resize to the latent size, then per map `2 (d - min) / (max - min) - 1`.
/// `[b, 1, h, w]` on the device in the model's dtype.
pub fn depth_mask(
    depths: &[&DepthMap],
    lh: i64,
    lw: i64,
    device: Device,
    dtype: Kind,
) -> Result<Tensor, DiffusionError> {
    let mut maps = Vec::with_capacity(depths.len());
    for (i, d) in depths.iter().enumerate() {
        if d.values.len() != (d.width as usize) * (d.height as usize) || d.values.is_empty() {
            return Err(DiffusionError::DepthShape {
                index: i,
                width: d.width,
                height: d.height,
                len: d.values.len(),
            });
        }
        let t =
            Tensor::from_slice(&d.values).reshape([1, 1, i64::from(d.height), i64::from(d.width)]);
        maps.push(
            t.to_device(device)
                .upsample_bicubic2d([lh, lw], false, None, None),
        );
    }
    let m = Tensor::cat(&maps, 0);
    let min = m.amin([1, 2, 3], true);
    let range = m.amax([1, 2, 3], true) - &min;
    // diffusers divides by the range as is, so a constant map (a flat wall, an empty view) turns into NaN
    // and poisons the whole batch; a constant map has no shape to condition on, so it becomes mid-depth (0).
    let normalized = (m - &min) * 2.0 / range.clamp_min(f64::from(f32::MIN_POSITIVE)) - 1.0;
    let flat = range.le(0.0).expand_as(&normalized);
    Ok(normalized.masked_fill(&flat, 0.0).to_kind(dtype))
}

/// Equal-size `uint8` images → `[b, 3, H, W]` float `x / 255` on the device.
pub fn pixels(images: &[&image::RgbImage], device: Device) -> Result<Tensor, DiffusionError> {
    let (w, h) = images.first().map(|i| i.dimensions()).unwrap_or((0, 0));
    let mut bytes = Vec::with_capacity(images.len() * (w * h * 3) as usize);
    for i in images {
        bytes.extend_from_slice(i.as_raw());
    }
    let t = Tensor::f_from_data_size(
        &bytes,
        &[images.len() as i64, i64::from(h), i64::from(w), 3],
        Kind::Uint8,
    )
    .map_err(|source| DiffusionError::Torch {
        what: "building the image tensor",
        source,
    })?;
    Ok((t.to_kind(Kind::Float) / 255.0)
        .permute([0, 3, 1, 2])
        .contiguous()
        .to_device(device))
}

/// `[b, 3, H, W]` decoder output → images: `(x / 2 + 0.5).clamp(0, 1)`, `* 255`, round half to even, uint8.
pub fn postprocess(decoded: &Tensor) -> Result<Vec<image::RgbImage>, DiffusionError> {
    let x = (decoded.to_kind(Kind::Float) / 2.0 + 0.5).clamp(0.0, 1.0);
    let x = (x.permute([0, 2, 3, 1]) * 255.0)
        .round()
        .to_kind(Kind::Uint8)
        .to_device(Device::Cpu)
        .contiguous();
    let (b, h, w) = (x.size()[0], x.size()[1], x.size()[2]);
    let mut images = Vec::with_capacity(b as usize);
    for i in 0..b {
        let img = x.get(i);
        let mut buf = vec![0u8; (h * w * 3) as usize];
        img.f_copy_data_u8(&mut buf, (h * w * 3) as usize)
            .map_err(|source| DiffusionError::Torch {
                what: "copying the decoded image",
                source,
            })?;
        let image =
            image::RgbImage::from_raw(w as u32, h as u32, buf).ok_or(DiffusionError::Torch {
                what: "shaping the decoded image",
                source: tch::TchError::Shape("decoded buffer does not match its size".into()),
            })?;
        images.push(image);
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postprocess_rounds_half_to_even_and_clamps() {
        // 0 maps to exactly 127.5, which rounds to the even 128; out-of-range values clamp.
        let vals = [-3.0f32, 0.0, 5.0];
        let t = Tensor::from_slice(&vals)
            .reshape([1, 1, 1, 3])
            .expand([1, 3, 1, 3], false)
            .contiguous();
        let img = postprocess(&t).unwrap().remove(0);
        let row: Vec<u8> = (0..3).map(|x| img.get_pixel(x, 0).0[0]).collect();
        assert_eq!(row, vec![0, 128, 255]);
    }

    #[test]
    fn constant_depth_map_becomes_mid_depth_not_nan() {
        let flat = DepthMap {
            width: 4,
            height: 4,
            values: vec![0.7; 16],
        };
        let ramp = DepthMap {
            width: 4,
            height: 4,
            values: (0..16).map(|i| i as f32).collect(),
        };
        let m = depth_mask(&[&flat, &ramp], 2, 2, Device::Cpu, Kind::Float).unwrap();
        assert_eq!(m.size(), vec![2, 1, 2, 2]);
        assert_eq!(m.isnan().any().int64_value(&[]), 0);
        assert_eq!(m.get(0).abs().max().double_value(&[]), 0.0);
        // The non-constant map still spans [-1, 1] exactly, as diffusers normalizes it.
        assert_eq!(m.get(1).min().double_value(&[]), -1.0);
        assert_eq!(m.get(1).max().double_value(&[]), 1.0);
    }
}
