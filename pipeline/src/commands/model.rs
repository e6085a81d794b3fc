//! `texaug model init-tiny`: a tiny random model in the diffusers layout (or, `--kind clip`, a transformers
//! CLIPModel for scoring), for tests, CI and the demo; `texaug
//! model to-single-file`: a diffusers folder as one checkpoint in the original layout.

use crate::cli::{InitTinyArgs, TinyKindArg, ToSingleFileArgs};
use anyhow::{anyhow, Context, Result};
use std::process::ExitCode;
use texaug_stages::diffusion::single_file::find_clip_vocab;
use texaug_stages::diffusion::tiny::{init_tiny as write_tiny, TinyKind};
use texaug_stages::score::tiny::init_tiny_clip;

pub fn init_tiny(args: InitTinyArgs) -> Result<ExitCode> {
    let vocab = match args.vocab {
        Some(v) => v,
        None => find_clip_vocab().map_err(|tried| {
            anyhow!(
                "no CLIP vocabulary (looked at {tried}): pass --vocab bpe_simple_vocab_16e6.txt.gz or set \
                 TEXAUG_CLIP_VOCAB (`make setup` downloads it; it ships in the PyPI package open-clip-torch)"
            )
        })?,
    };
    let kind = match args.kind {
        TinyKindArg::Clip => return write_tiny_clip(&args.out, &vocab, args.seed),
        TinyKindArg::Sd1 => TinyKind::Sd1,
        TinyKindArg::Sd2 => TinyKind::Sd2,
        TinyKindArg::Sd2Depth => TinyKind::Sd2Depth,
        TinyKindArg::Sd1Inpaint => TinyKind::Sd1Inpaint,
        TinyKindArg::Controlnet => TinyKind::ControlNet,
        TinyKindArg::Sdxl => TinyKind::Sdxl,
        TinyKindArg::SdxlControlnet => TinyKind::SdxlControlNet,
    };
    let t0 = std::time::Instant::now();
    write_tiny(kind, &args.out, &vocab, args.seed)
        .with_context(|| format!("writing a tiny {kind:?} model into {}", args.out.display()))?;
    eprintln!(
        "texaug: wrote a tiny {kind:?} model to {} in {:.1} s",
        args.out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn write_tiny_clip(out: &std::path::Path, vocab: &std::path::Path, seed: u64) -> Result<ExitCode> {
    let t0 = std::time::Instant::now();
    init_tiny_clip(out, vocab, seed)
        .with_context(|| format!("writing a tiny CLIP model into {}", out.display()))?;
    eprintln!(
        "texaug: wrote a tiny CLIP model to {} in {:.1} s",
        out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn to_single_file(args: &ToSingleFileArgs) -> Result<ExitCode> {
    let kind = match args.dtype.as_str() {
        "keep" => None,
        "fp32" => Some(tch::Kind::Float),
        "fp16" => Some(tch::Kind::Half),
        "bf16" => Some(tch::Kind::BFloat16),
        other => anyhow::bail!("--dtype {other}: use keep, fp32, fp16 or bf16"),
    };
    let n = texaug_stages::diffusion::single_file::export::export_folder(
        &args.model,
        &args.out,
        None,
        kind,
    )
    .with_context(|| format!("writing {} as {}", args.model.display(), args.out.display()))?;
    eprintln!("texaug: wrote {} ({n} tensors)", args.out.display());
    Ok(ExitCode::SUCCESS)
}
