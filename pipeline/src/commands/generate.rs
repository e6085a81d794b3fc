//! `texaug generate`: one img2img call on one image — the quickest way to try a model, prompt and strength; with
//! `--depth` a depth-conditioned one (an SD 2-depth model, or SD 1.x with `--controlnet`).

use crate::cli::GenerateArgs;
use crate::depth_cond::{self, DepthMode};
use crate::devices::DeviceSpec;
use crate::pool::{Condition, ModelRequest};
use crate::sd_model;
use anyhow::{bail, Context, Result};
use image::imageops::FilterType;
use std::process::ExitCode;
use texaug_stages::depth::load_depth_image;
use texaug_stages::diffusion::model_dir::ModelSource;
use texaug_stages::source::{load_image, write_png_atomic};

pub fn generate(args: GenerateArgs) -> Result<ExitCode> {
    if args.controlnet.is_some() && args.depth.is_none() {
        bail!(
            "--controlnet needs --depth D.png: the ControlNet is conditioned on that depth image"
        );
    }
    if !(args.strength > 0.0 && args.strength <= 1.0) {
        bail!("--strength {} must lie in (0, 1]", args.strength);
    }
    let device = DeviceSpec::parse_one(&args.device).map_err(anyhow::Error::msg)?;
    let scheduler = sd_model::parse_scheduler(args.scheduler.as_deref())?;
    let source = ModelSource::Dir(args.model.clone());
    let sd = sd_model::load_with(
        &source,
        device,
        "auto",
        scheduler,
        args.controlnet.as_deref(),
    )?;
    if sd.is_depth_model() && args.depth.is_none() {
        bail!(
            "{} is a depth-conditioned model: pass --depth D.png (8/16-bit PNG or float TIFF, larger = nearer)",
            args.model.display()
        );
    }
    let depth = match &args.depth {
        Some(path) => Some(load_depth_image(path)?),
        None => None,
    };

    let original = load_image(&args.image)?;
    let (w, h) = original.dimensions();
    let factor = u32::try_from(sd.vae_scale_factor()).unwrap_or(8).max(1);
    // At its own size by default, as diffusers runs it (sides must then be multiples of the VAE factor).
    let (rw, rh) = match args.size {
        Some(s) if s % 8 != 0 || s == 0 => bail!("--size {s} must be a positive multiple of 8"),
        Some(s) => (s, s),
        None => (w, h),
    };
    if rw % factor != 0 || rh % factor != 0 {
        bail!(
            "{} is {w}x{h}; its sides must be multiples of {factor} (the VAE's factor): resize or crop it, or pass \
             --size 512 to run at 512x512 and resize back",
            args.image.display()
        );
    }
    let rgb = image::DynamicImage::ImageRgba8(original.clone()).to_rgb8();
    let input = if (rw, rh) == (w, h) {
        rgb
    } else {
        image::imageops::resize(&rgb, rw, rh, FilterType::Lanczos3)
    };
    let mode = match &args.controlnet {
        Some(_) => DepthMode::ControlNet(args.conditioning_scale),
        None => DepthMode::Unet,
    };
    if depth.is_some() && args.controlnet.is_none() && !sd.is_depth_model() {
        bail!(
            "--depth needs a depth-conditioned model (SD 2-depth, 5 UNet input channels) or --controlnet DIR; \
             {} is neither",
            args.model.display()
        );
    }
    let condition = match &depth {
        Some(d) => depth_cond::condition(d, mode, (rw, rh)),
        None => Condition::None,
    };
    let request = ModelRequest {
        image: input,
        prompt: args.prompt.clone(),
        negative_prompt: args.negative.clone(),
        strength: args.strength,
        guidance: args.guidance,
        steps: args.steps,
        seed: args.seed,
        scheduler: None,
        condition,
    };
    let t0 = std::time::Instant::now();
    let out = sd_model::run_conditioned(&sd, std::slice::from_ref(&request))
        .map_err(anyhow::Error::msg)?;
    let out = out
        .into_iter()
        .next()
        .context("the model returned no image")?;
    let out = if (rw, rh) == (w, h) {
        out
    } else {
        image::imageops::resize(&out, w, h, FilterType::Lanczos3)
    };
    let rgba = image::DynamicImage::ImageRgb8(out).to_rgba8();
    let sha = write_png_atomic(&rgba, &args.out)?;
    eprintln!(
        "texaug: wrote {} ({w}x{h}, {:.1} s, sha256 {sha})",
        args.out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
