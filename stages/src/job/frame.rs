//! Between an asset's pixels and the model's: which part of the source the model sees and at what size, and how
//! its output goes back to the source's pixels.
//!
//! A recipe's `size` is the model's long side. By default (`fit = "keep"`) an image keeps its aspect: a 1920×1080
//! photo runs at 512×288 and comes back at 1920×1080. `crop` runs the centred square (the sample is that square, at
//! the source's resolution), `pad` runs the image centred on a square whose border repeats the image's edge pixels
//! (the border is cut away again), `stretch` squashes it to `size × size` and back.

use image::imageops::FilterType;
use image::{GrayImage, ImageBuffer, Luma, Pixel, RgbImage, RgbaImage};

use crate::depth::DepthMap;

use super::error::JobError;
use super::fit::Fit;
use super::settings::ModelSize;

/// The part of the source the model sees, in source pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    /// The whole image.
    Whole,
    /// A `side × side` square at (x, y) inside the image.
    Crop { x: u32, y: u32, side: u32 },
    /// A `side × side` square holding the image at (x, y).
    Pad { x: u32, y: u32, side: u32 },
}

/// How one source of a given size meets the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    source: (u32, u32),
    model: (u32, u32),
    window: Window,
    /// `ModelSize::Native`: the source is the model's input as it is.
    native: bool,
}

/// `v` rounded to the nearest multiple of 8, at least 8.
fn multiple_of_8(v: f64) -> u32 {
    ((v / 8.0).round() as u32).max(1) * 8
}

impl Frame {
    pub fn new((w, h): (u32, u32), size: ModelSize) -> Self {
        let (w, h) = (w.max(1), h.max(1));
        let (side, fit) = match size {
            ModelSize::Native => {
                return Self {
                    source: (w, h),
                    model: (w, h),
                    window: Window::Whole,
                    native: true,
                }
            }
            ModelSize::Sized { side, fit } => (side, fit),
        };
        let (model, window) = match fit {
            Fit::Stretch => ((side, side), Window::Whole),
            Fit::Keep if w == h => ((side, side), Window::Whole),
            Fit::Keep => {
                let short = f64::from(side) * f64::from(w.min(h)) / f64::from(w.max(h));
                let short = multiple_of_8(short).min(side);
                (
                    if w > h { (side, short) } else { (short, side) },
                    Window::Whole,
                )
            }
            Fit::Crop => {
                let s = w.min(h);
                let window = Window::Crop {
                    x: (w - s) / 2,
                    y: (h - s) / 2,
                    side: s,
                };
                ((side, side), window)
            }
            Fit::Pad => {
                let s = w.max(h);
                let window = Window::Pad {
                    x: (s - w) / 2,
                    y: (s - h) / 2,
                    side: s,
                };
                ((side, side), window)
            }
        };
        Self {
            source: (w, h),
            model,
            window,
            native: false,
        }
    }

    /// The model's input size (width, height).
    pub fn model_size(&self) -> (u32, u32) {
        self.model
    }

    /// The size of the sample made from the source: the source's, or the crop's.
    pub fn output_size(&self) -> (u32, u32) {
        match self.window {
            Window::Crop { side, .. } => (side, side),
            _ => self.source,
        }
    }

    /// The window in the pixels of a map of `size` that covers the source (a depth file at another resolution).
    fn window_in(&self, (bw, bh): (u32, u32)) -> Window {
        let sx = f64::from(bw) / f64::from(self.source.0);
        let sy = f64::from(bh) / f64::from(self.source.1);
        let scale = |v: u32, s: f64| (f64::from(v) * s).round() as u32;
        match self.window {
            Window::Whole => Window::Whole,
            Window::Crop { x, y, side } => {
                let s = scale(side, sx.min(sy)).clamp(1, bw.min(bh));
                Window::Crop {
                    x: scale(x, sx).min(bw - s),
                    y: scale(y, sy).min(bh - s),
                    side: s,
                }
            }
            Window::Pad { x, y, side } => {
                let s = scale(side, sx.max(sy)).max(bw.max(bh));
                Window::Pad {
                    x: scale(x, sx).min(s - bw),
                    y: scale(y, sy).min(s - bh),
                    side: s,
                }
            }
        }
    }

    /// The window of `img` (a map covering the source at any resolution): cropped, or padded by repeating edges.
    fn windowed<P: Pixel + 'static>(
        &self,
        img: &ImageBuffer<P, Vec<P::Subpixel>>,
    ) -> ImageBuffer<P, Vec<P::Subpixel>> {
        let (bw, bh) = img.dimensions();
        match self.window_in((bw, bh)) {
            Window::Whole => img.clone(),
            Window::Crop { x, y, side } => {
                image::imageops::crop_imm(img, x, y, side, side).to_image()
            }
            Window::Pad { x, y, side } => ImageBuffer::from_fn(side, side, |cx, cy| {
                let sx = cx.saturating_sub(x).min(bw - 1);
                let sy = cy.saturating_sub(y).min(bh - 1);
                *img.get_pixel(sx, sy)
            }),
        }
    }

    fn at_model_size<P: Pixel + 'static>(
        &self,
        img: &ImageBuffer<P, Vec<P::Subpixel>>,
    ) -> ImageBuffer<P, Vec<P::Subpixel>> {
        if self.native {
            return img.clone();
        }
        let windowed = self.windowed(img);
        image::imageops::resize(&windowed, self.model.0, self.model.1, FilterType::Lanczos3)
    }

    /// The model's RGB input (alpha dropped: the model sees colours only).
    pub fn input(&self, image: &RgbaImage) -> RgbImage {
        let rgb = image::DynamicImage::ImageRgba8(image.clone()).to_rgb8();
        self.at_model_size(&rgb)
    }

    /// An inpainting mask (at the source's size) at the model's size, framed as the image is.
    pub fn mask(&self, mask: &GrayImage) -> GrayImage {
        self.at_model_size(mask)
    }

    /// A depth map of the source, framed as the image is, at its own resolution (the engine resizes it). Its
    /// aspect must be the image's: a map of another shape would put depth on the wrong pixels.
    pub fn depth(&self, depth: &DepthMap, path: &std::path::Path) -> Result<DepthMap, JobError> {
        let (dw, dh) = (depth.width(), depth.height());
        let (w, h) = self.source;
        // Within 1% or one pixel: maps saved at a rounded size still pass.
        let (lhs, rhs) = (f64::from(dw) * f64::from(h), f64::from(dh) * f64::from(w));
        let slack = (0.01 * rhs).max(f64::from(w.max(h)));
        if (lhs - rhs).abs() > slack {
            return Err(JobError::DepthAspect {
                path: path.to_path_buf(),
                width: dw,
                height: dh,
                w0: w,
                h0: h,
            });
        }
        if self.window == Window::Whole {
            return Ok(depth.clone());
        }
        let map: ImageBuffer<Luma<f32>, Vec<f32>> =
            ImageBuffer::from_raw(dw, dh, depth.data().to_vec())
                .expect("a depth map holds width × height values");
        let framed = self.windowed(&map);
        let (fw, fh) = framed.dimensions();
        Ok(DepthMap::from_vec(fw, fh, framed.into_raw()).expect("sizes match"))
    }

    /// The model's output as the sample: at [`Self::output_size`], with the source's alpha there (cut-outs stay
    /// cut out).
    pub fn back(&self, output: &RgbImage, original: &RgbaImage) -> RgbaImage {
        let (w, h) = original.dimensions();
        // The output resized onto the window (in source pixels), and where a sample pixel lies in it and in the
        // original.
        let (window, sample, in_output, in_original) = match self.window {
            Window::Whole => ((w, h), (w, h), (0, 0), (0, 0)),
            Window::Crop { x, y, side } => ((side, side), (side, side), (0, 0), (x, y)),
            Window::Pad { x, y, side } => ((side, side), (w, h), (x, y), (0, 0)),
        };
        let resized = image::imageops::resize(output, window.0, window.1, FilterType::Lanczos3);
        RgbaImage::from_fn(sample.0, sample.1, |x, y| {
            let c = resized.get_pixel(x + in_output.0, y + in_output.1).0;
            let a = original.get_pixel(x + in_original.0, y + in_original.1).0[3];
            image::Rgba([c[0], c[1], c[2], a])
        })
    }

    /// The one output of a single-image job as its sample.
    pub fn image_back(
        &self,
        outputs: &[RgbImage],
        original: &RgbaImage,
    ) -> Result<RgbaImage, JobError> {
        let out = outputs.first().ok_or(JobError::OutputCount {
            got: 0,
            expected: 1,
            what: "the image of this sample".into(),
        })?;
        Ok(self.back(out, original))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sized(side: u32, fit: Fit) -> ModelSize {
        ModelSize::Sized { side, fit }
    }

    /// A 40×20 image: red on the left half, blue on the right, alpha 200 at (1, 1).
    fn halves() -> RgbaImage {
        let mut img = RgbaImage::from_fn(40, 20, |x, _| {
            if x < 20 {
                image::Rgba([255, 0, 0, 255])
            } else {
                image::Rgba([0, 0, 255, 255])
            }
        });
        img.put_pixel(1, 1, image::Rgba([255, 0, 0, 200]));
        img
    }

    #[test]
    fn keep_gives_the_long_side_and_the_short_in_proportion_in_multiples_of_8() {
        assert_eq!(
            Frame::new((1920, 1080), sized(512, Fit::Keep)).model_size(),
            (512, 288)
        );
        assert_eq!(
            Frame::new((1080, 1920), sized(512, Fit::Keep)).model_size(),
            (288, 512)
        );
        assert_eq!(
            Frame::new((300, 300), sized(64, Fit::Keep)).model_size(),
            (64, 64)
        );
        // A strip still gets one row of latents.
        assert_eq!(
            Frame::new((256, 1), sized(64, Fit::Keep)).model_size(),
            (64, 8)
        );
        for fit in [Fit::Crop, Fit::Pad, Fit::Stretch] {
            assert_eq!(
                Frame::new((1920, 1080), sized(512, fit)).model_size(),
                (512, 512)
            );
        }
        let native = Frame::new((24, 16), ModelSize::Native);
        assert_eq!(
            (native.model_size(), native.output_size()),
            ((24, 16), (24, 16))
        );
    }

    #[test]
    fn keep_and_stretch_come_back_at_the_source_size_with_its_alpha() {
        let src = halves();
        for fit in [Fit::Keep, Fit::Stretch] {
            let f = Frame::new(src.dimensions(), sized(16, fit));
            let input = f.input(&src);
            assert_eq!(input.dimensions(), f.model_size());
            let back = f.back(&input, &src);
            assert_eq!(back.dimensions(), (40, 20));
            assert_eq!(back.get_pixel(1, 1).0[3], 200);
            assert_eq!(back.get_pixel(2, 10).0[3], 255);
            // Left stays red, right stays blue.
            assert!(back.get_pixel(5, 10).0[0] > 200 && back.get_pixel(35, 10).0[2] > 200);
        }
    }

    #[test]
    fn crop_sees_the_centre_square_and_the_sample_is_that_square() {
        let src = halves();
        let f = Frame::new(src.dimensions(), sized(8, Fit::Crop));
        assert_eq!(f.output_size(), (20, 20));
        // The centre 20×20 square runs from x = 10 to 30: half red, half blue.
        let input = f.input(&src);
        assert!(input.get_pixel(1, 4).0[0] > 200 && input.get_pixel(6, 4).0[2] > 200);
        let back = f.back(&input, &src);
        assert_eq!(back.dimensions(), (20, 20));
        assert!(back.get_pixel(2, 10).0[0] > 200 && back.get_pixel(17, 10).0[2] > 200);
    }

    #[test]
    fn pad_sees_the_whole_image_on_a_square_and_cuts_the_border_away() {
        let src = halves();
        let f = Frame::new(src.dimensions(), sized(8, Fit::Pad));
        let input = f.input(&src);
        assert_eq!(input.dimensions(), (8, 8));
        // The border repeats the edge: the top rows are red on the left, blue on the right.
        assert!(input.get_pixel(0, 0).0[0] > 200 && input.get_pixel(7, 0).0[2] > 200);
        let back = f.back(&input, &src);
        assert_eq!(back.dimensions(), (40, 20));
        assert_eq!(back.get_pixel(1, 1).0[3], 200);
        assert!(back.get_pixel(5, 10).0[0] > 200 && back.get_pixel(35, 10).0[2] > 200);
    }

    #[test]
    fn depth_is_framed_like_the_image_and_must_share_its_aspect() {
        let src = (40, 20);
        // A map at half the resolution, its value its column.
        let map = DepthMap::from_vec(20, 10, (0..200).map(|i| (i % 20) as f32).collect()).unwrap();
        let p = std::path::Path::new("d.png");
        let crop = Frame::new(src, sized(8, Fit::Crop)).depth(&map, p).unwrap();
        assert_eq!((crop.width(), crop.height()), (10, 10));
        assert_eq!(crop.get(0, 0), Some(5.0));
        let pad = Frame::new(src, sized(8, Fit::Pad)).depth(&map, p).unwrap();
        assert_eq!((pad.width(), pad.height()), (20, 20));
        assert_eq!(pad.get(3, 0), Some(3.0));
        let keep = Frame::new(src, sized(8, Fit::Keep)).depth(&map, p).unwrap();
        assert_eq!(keep.data(), map.data());
        // A square map for a 2:1 image is refused, naming the file.
        let square = DepthMap::zeros(10, 10);
        let e = Frame::new(src, sized(8, Fit::Keep))
            .depth(&square, p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("d.png") && e.contains("10×10"), "{e}");
    }

    #[test]
    fn fits_parse_by_name_and_textures_never_crop() {
        for name in Fit::NAMES {
            assert_eq!(name.parse::<Fit>().unwrap().as_str(), name);
        }
        assert!("squash".parse::<Fit>().unwrap_err().contains("keep, crop"));
        assert_eq!(Fit::Crop.for_texture(), Fit::Keep);
        assert_eq!(Fit::Stretch.for_texture(), Fit::Stretch);
    }
}
