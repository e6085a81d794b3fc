//! Monocular depth for images without a depth file: a TorchScript model (MiDaS / DPT traced with
//! `torch.jit.trace`), input `[1, 3, H, W]` normalized RGB, output `[1, H', W']` relative inverse
//! depth (larger = nearer), resized back to the image with bicubic interpolation.

use super::error::DepthError;
use super::image_depth::DepthMap;
use image::RgbImage;
use std::path::{Path, PathBuf};
use tch::{CModule, Device, Kind, Tensor};

/// How the estimator expects its input normalized.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum DepthNormalization {
    /// DPT (`Intel/dpt-hybrid-midas`, the estimator of Stable Diffusion 2 depth): mean 0.5, std 0.5.
    #[default]
    Dpt,
    /// MiDaS v2.1 / ImageNet: mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
    ImageNet,
    /// Any other export's per-channel RGB mean and std (`[depth] mean`, `std`).
    MeanStd { mean: [f32; 3], std: [f32; 3] },
}

impl DepthNormalization {
    /// The per-channel (mean, std) the input is normalized with, on [0, 1] RGB.
    pub fn mean_std(self) -> ([f32; 3], [f32; 3]) {
        match self {
            DepthNormalization::Dpt => ([0.5; 3], [0.5; 3]),
            DepthNormalization::ImageNet => ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
            DepthNormalization::MeanStd { mean, std } => (mean, std),
        }
    }
}

pub struct DepthEstimator {
    module: CModule,
    device: Device,
    path: PathBuf,
    normalization: DepthNormalization,
    /// The network's input size (height, width); DPT-hybrid is trained at 384 × 384.
    input_size: (i64, i64),
}

impl std::fmt::Debug for DepthEstimator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DepthEstimator")
            .field("path", &self.path)
            .field("device", &self.device)
            .field("normalization", &self.normalization)
            .field("input_size", &self.input_size)
            .finish()
    }
}

impl DepthEstimator {
    /// Loads a TorchScript file onto `device` (DPT normalization, 384 × 384 input).
    pub fn load(path: impl AsRef<Path>, device: Device) -> Result<Self, DepthError> {
        let path = path.as_ref().to_path_buf();
        let mut module =
            CModule::load_on_device(&path, device).map_err(|e| DepthError::Estimator {
                path: path.clone(),
                cause: format!(
                "cannot load it as TorchScript ({e}); export the model with torch.jit.trace and \
                 torch.jit.save"
            ),
            })?;
        module.set_eval();
        Ok(Self {
            module,
            device,
            path,
            normalization: DepthNormalization::Dpt,
            input_size: (384, 384),
        })
    }

    pub fn with_normalization(mut self, normalization: DepthNormalization) -> Self {
        self.normalization = normalization;
        self
    }

    /// Sets the network input size; each side is rounded up to a multiple of 32 (the DPT stride).
    pub fn with_input_size(mut self, height: u32, width: u32) -> Self {
        let round = |v: u32| (v.max(32).div_ceil(32) * 32) as i64;
        self.input_size = (round(height), round(width));
        self
    }

    /// Relative inverse depth of `image` at its own size (larger = nearer).
    pub fn estimate(&self, image: &RgbImage) -> Result<DepthMap, DepthError> {
        let fail = |what: &str, e: tch::TchError| DepthError::Estimator {
            path: self.path.clone(),
            cause: format!("{what}: {e}"),
        };
        let (w, h) = (image.width() as i64, image.height() as i64);
        if w == 0 || h == 0 {
            return Ok(DepthMap::zeros(image.width(), image.height()));
        }
        let (mean, std) = self.normalization.mean_std();
        let out = tch::no_grad(|| -> Result<Tensor, DepthError> {
            // [1, 3, h, w] in [0, 1]
            let x = Tensor::from_slice(image.as_raw())
                .f_view([1, h, w, 3])
                .and_then(|t| t.f_permute([0, 3, 1, 2]))
                .and_then(|t| t.f_to_kind(Kind::Float))
                .map_err(|e| fail("building the input", e))?
                / 255.0;
            // [1, 3, H, W]
            let x = x
                .f_upsample_bicubic2d([self.input_size.0, self.input_size.1], false, None, None)
                .map_err(|e| fail("resizing the input", e))?;
            let mean = Tensor::from_slice(&mean).view([1, 3, 1, 1]);
            let std = Tensor::from_slice(&std).view([1, 3, 1, 1]);
            let x = ((x - mean) / std)
                .f_to_device(self.device)
                .map_err(|e| fail("moving the input to the device", e))?;
            let y = self
                .module
                .forward_ts(&[x])
                .map_err(|e| fail("running the model", e))?;
            // [1, H', W'] (or [1, 1, H', W']) -> [1, 1, H', W']
            let size = y.size();
            let (oh, ow) = match size.as_slice() {
                [.., oh, ow] if y.numel() as i64 == oh * ow => (*oh, *ow),
                other => {
                    return Err(DepthError::Estimator {
                        path: self.path.clone(),
                        cause: format!(
                            "output of shape {other:?}; expected [1, H, W] (one depth map)"
                        ),
                    })
                }
            };
            // [1, 1, h, w]
            y.f_to_kind(Kind::Float)
                .and_then(|t| t.f_to_device(Device::Cpu))
                .and_then(|t| t.f_view([1, 1, oh, ow]))
                .and_then(|t| t.f_upsample_bicubic2d([h, w], false, None, None))
                .map_err(|e| fail("resizing the output", e))
        })?;
        let data =
            Vec::<f32>::try_from(out.flatten(0, -1)).map_err(|e| fail("reading the output", e))?;
        DepthMap::from_vec(image.width(), image.height(), data)
    }
}

#[cfg(test)]
mod tests {
    use super::DepthNormalization;

    #[test]
    fn each_normalization_gives_its_mean_and_std() {
        assert_eq!(DepthNormalization::Dpt.mean_std(), ([0.5; 3], [0.5; 3]));
        assert_eq!(
            DepthNormalization::ImageNet.mean_std().1,
            [0.229, 0.224, 0.225]
        );
        let own = DepthNormalization::MeanStd {
            mean: [0.1, 0.2, 0.3],
            std: [1.0, 2.0, 3.0],
        };
        assert_eq!(own.mean_std(), ([0.1, 0.2, 0.3], [1.0, 2.0, 3.0]));
    }
}
