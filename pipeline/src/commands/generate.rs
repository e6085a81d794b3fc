//! `texaug generate`: one img2img call on one image — the quickest way to try a model, prompt and strength; with
//! `--depth` a depth-conditioned one (an SD 2-depth model, or SD 1.x with `--controlnet`), with `--mask` inpainting. It runs the same job
//! code as `texaug run` (`texaug_stages::job`), at the image's own size unless `--size` says otherwise.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use texaug_stages::diffusion::lora::LoraSpec;
use texaug_stages::diffusion::model_dir::ModelSource;
use texaug_stages::diffusion::pipeline_source::ModelRef;
use texaug_stages::diffusion::request::XlConds;
use texaug_stages::diffusion::textual_inversion::EmbeddingSpec;
use texaug_stages::job::{
    prepare, AssetRef, DepthMode, DepthSettings, DepthStage, JobSettings, ModelSize, Retextured,
    Stage,
};
use texaug_stages::source::{write_png_atomic, SourceKind};

use crate::cli::GenerateArgs;
use crate::config::devices::DeviceSpec;
use crate::model::loading::{self, run_guarded};

pub fn generate(args: GenerateArgs) -> Result<ExitCode> {
    if args.mask.is_some() && args.depth.is_some() {
        bail!("--mask and --depth do not combine: inpaint with --mask, or condition on depth with --depth");
    }
    if args.controlnet.is_some() && args.depth.is_none() {
        bail!(
            "--controlnet needs --depth D.png: the ControlNet is conditioned on that depth image"
        );
    }
    if !(args.strength > 0.0 && args.strength <= 1.0) {
        bail!("--strength {} must lie in (0, 1]", args.strength);
    }
    if let Some(d) = args.denoising_start {
        if !(d > 0.0 && d < 1.0) {
            bail!("--denoising-start {d} must lie in (0, 1) (0.8: the last fifth of the schedule)");
        }
    }
    let device = DeviceSpec::parse_one(&args.device).map_err(anyhow::Error::msg)?;
    let scheduler = loading::parse_scheduler(args.scheduler.as_deref())?;
    let kind = args
        .kind
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e: String| anyhow::anyhow!("--kind: {e}"))?;
    let loras = args
        .loras
        .iter()
        .map(|a| parse_lora(a))
        .collect::<Result<Vec<_>>>()?;
    let model = ModelRef {
        config: args.config.as_deref().map(ModelSource::local),
        kind,
        vae: args.vae.clone(),
        loras,
        embeddings: args
            .embeddings
            .iter()
            .map(|a| match a.rsplit_once('=') {
                Some((path, token)) => EmbeddingSpec {
                    path: path.into(),
                    token: Some(token.to_owned()),
                },
                None => EmbeddingSpec {
                    path: a.into(),
                    token: None,
                },
            })
            .collect(),
        ..ModelRef::from(ModelSource::local(&args.model))
    };
    let sd = loading::load_with(
        &model,
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
    if sd.is_inpainting_model() && args.mask.is_none() {
        bail!(
            "{} is an inpainting model (9 UNet input channels): pass --mask MASK.png (white = repaint), usually \
             with --strength 1",
            args.model.display()
        );
    }
    if args.mask.is_some() && sd.is_depth_model() {
        bail!(
            "{} is a depth-conditioned model and cannot inpaint: use an inpainting or a plain SD 1.x/2.x model with \
             --mask",
            args.model.display()
        );
    }
    if args.depth.is_some() && args.controlnet.is_none() && !sd.is_depth_model() {
        bail!(
            "--depth needs a depth-conditioned model (SD 2-depth, 5 UNet input channels) or --controlnet DIR; \
             {} is neither",
            args.model.display()
        );
    }
    let (w, h) = image::image_dimensions(&args.image)
        .with_context(|| format!("reading {}", args.image.display()))?;
    let factor = u32::try_from(sd.vae_scale_factor()).unwrap_or(8).max(1);
    // At its own size by default, as diffusers runs it (sides must then be multiples of the VAE factor).
    let size = match args.size {
        Some(s) if s % 8 != 0 || s == 0 => bail!("--size {s} must be a positive multiple of 8"),
        Some(s) => ModelSize::Sized {
            side: s,
            fit: args.fit,
        },
        None if w % factor != 0 || h % factor != 0 => bail!(
            "{} is {w}x{h}; its sides must be multiples of {factor} (the VAE's factor): resize or crop it, or pass \
             --size 512 to run with a long side of 512 and resize back",
            args.image.display()
        ),
        None => ModelSize::Native,
    };
    let stage = match &args.depth {
        Some(_) => Stage::Depth(DepthStage {
            settings: DepthSettings {
                mode: match &args.controlnet {
                    Some(_) => DepthMode::ControlNet(args.conditioning_scale),
                    None => DepthMode::Unet,
                },
                ..DepthSettings::default()
            },
            estimator: None,
        }),
        None => Stage::Style,
    };
    let asset = AssetRef {
        id: "--image",
        path: &args.image,
        kind: SourceKind::Image,
        depth: args.depth.as_deref(),
        mask: args.mask.as_deref(),
    };
    let settings = JobSettings {
        prompt: args.prompt.clone(),
        negative_prompt: args.negative.clone(),
        strength: args.strength,
        guidance: args.guidance,
        steps: args.steps,
        seed: args.seed,
        // The model was loaded with the one asked for.
        scheduler: None,
        size,
        adapters: 0,
        xl: XlConds {
            original_size: args.original_size.as_deref().map(parse_hw).transpose()?,
            crops_coords_top_left: args
                .crop
                .as_deref()
                .map(parse_hw)
                .transpose()?
                .unwrap_or((0, 0)),
            target_size: args.target_size.as_deref().map(parse_hw).transpose()?,
            aesthetic_score: args.aesthetic_score,
            negative_aesthetic_score: args.negative_aesthetic_score,
        },
        denoising_start: args.denoising_start,
    };
    let t0 = std::time::Instant::now();
    let prepared = prepare(&asset, &stage, &settings)?;
    let outputs = run_guarded(&sd, &prepared.requests).map_err(anyhow::Error::msg)?;
    let Retextured::Image { mut image, .. } = prepared.complete(outputs)? else {
        bail!("internal: an image job made a mesh");
    };
    // A generated image is opaque: the input's alpha (if any) is not carried over, as diffusers does.
    for px in image.pixels_mut() {
        px.0[3] = 255;
    }
    let sha = write_png_atomic(&image, &args.out)?;
    eprintln!(
        "texaug: wrote {} ({w}x{h}, {:.1} s, sha256 {sha})",
        args.out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// `HxW` (or `H,W`) as SDXL's `(height, width)` pairs take it.
fn parse_hw(arg: &str) -> Result<(u32, u32)> {
    let parts: Vec<&str> = arg.split(['x', 'X', ',']).map(str::trim).collect();
    match parts.as_slice() {
        [h, w] => match (h.parse(), w.parse()) {
            (Ok(h), Ok(w)) => Ok((h, w)),
            _ => bail!("{arg:?} is not HEIGHTxWIDTH in whole pixels (e.g. 1024x768)"),
        },
        _ => bail!("{arg:?} is not HEIGHTxWIDTH (e.g. 1024x768)"),
    }
}

/// `FILE` or `FILE@SCALE` (the scale after the last `@`, when it is a number).
fn parse_lora(arg: &str) -> Result<LoraSpec> {
    if let Some((path, scale)) = arg.rsplit_once('@') {
        if let Ok(scale) = scale.parse::<f64>() {
            if !scale.is_finite() {
                bail!("--lora {arg}: the scale must be a finite number");
            }
            return Ok(LoraSpec {
                path: path.into(),
                scale,
            });
        }
    }
    Ok(LoraSpec {
        path: arg.into(),
        scale: 1.0,
    })
}
