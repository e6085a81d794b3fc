"""Tiny Stable Diffusion pipelines (sd1-tiny, sd2-tiny) in diffusers layout with seeded weights."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import torch

from common import find_bpe_gz, read_merges, write_bpe_files

TINY_MERGES = 800
TINY_VOCAB = 256 + 256 + TINY_MERGES + 2  # 1314

# Scheduler configs exactly as runwayml/stable-diffusion-v1-5 and stabilityai/stable-diffusion-2 ship them.
SD1_SCHEDULER = {
    "_class_name": "PNDMScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}
SD2_SCHEDULER = {
    "_class_name": "DDIMScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}


def text_encoder_config(variant: str) -> dict:
    return dict(
        vocab_size=TINY_VOCAB,
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=3,
        max_position_embeddings=77,
        hidden_act="quick_gelu" if variant == "sd1" else "gelu",
        layer_norm_eps=1e-5,
        projection_dim=32,
        bos_token_id=TINY_VOCAB - 2,
        eos_token_id=TINY_VOCAB - 1,
        pad_token_id=TINY_VOCAB - 1 if variant == "sd1" else 0,
    )


def unet_config(variant: str, in_channels: int = 4) -> dict:
    cfg = dict(
        sample_size=8,
        in_channels=in_channels,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        # Both kinds of block on both paths, in SD's order (cross-attention at high resolution).
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        mid_block_type="UNetMidBlock2DCrossAttn",
        norm_num_groups=32,
        cross_attention_dim=32,
    )
    if variant == "sd1":
        cfg.update(attention_head_dim=8, use_linear_projection=False, upcast_attention=False)
    else:
        cfg.update(attention_head_dim=(2, 4), use_linear_projection=True, upcast_attention=True)
    return cfg


def vae_config() -> dict:
    return dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        # Channel changes (8 -> 16) exercise the resnets' conv_shortcut like real SD's 128 -> 256 -> 512;
        # 4 groups of 2-4 channels keep GroupNorm a real group norm, not an instance norm.
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=64,
        scaling_factor=0.18215,
    )


@torch.no_grad()
def randomize(module: torch.nn.Module, seed: int, gain: float = 1.0) -> None:
    """Seeded, non-trivial init of every parameter (and buffer-free), independent of library defaults.

    Matrices ~ N(0, gain/sqrt(fan_in)) keep activations O(1); biases ~ N(0, 0.1) and norm affine
    weights ~ 1 + N(0, 0.2) make every tensor matter, so a mis-mapped key changes the output.
    Zero-initialised layers (ControlNet zero convs, conv_out) get random weights too.
    """
    g = torch.Generator("cpu").manual_seed(seed)
    for name, p in sorted(module.named_parameters(), key=lambda kv: kv[0]):
        if p.dim() >= 2:
            if "embedding" in name and p.dim() == 2:
                std = 0.5
            else:
                fan_in = p[0].numel()
                std = gain / math.sqrt(fan_in)
            p.copy_(torch.randn(p.shape, generator=g) * std)
        elif name.endswith("weight"):
            p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
        else:
            p.copy_(0.1 * torch.randn(p.shape, generator=g))


def write_tokenizer(dir_: Path, pad_token: str) -> None:
    from transformers import CLIPTokenizer

    merges = read_merges(find_bpe_gz(), TINY_MERGES)
    dir_.mkdir(parents=True, exist_ok=True)
    vocab_path, merges_path = write_bpe_files(dir_, merges)
    tok = CLIPTokenizer(vocab=str(vocab_path), merges=str(merges_path), pad_token=pad_token, model_max_length=77)
    assert len(tok) == TINY_VOCAB, len(tok)
    tok.save_pretrained(str(dir_))
    special = {
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "pad_token": pad_token,
        "unk_token": "<|endoftext|>",
    }
    (dir_ / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    # The saved folder must load back to the same tokenizer.
    back = CLIPTokenizer.from_pretrained(str(dir_))
    probe = "a photo of a cat, 3.14 &amp; 🐱"
    assert back(probe).input_ids == tok(probe).input_ids
    assert back.model_max_length == 77 and back.pad_token == pad_token


def build(variant: str, seed: int):
    from diffusers import AutoencoderKL, DDIMScheduler, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    te = CLIPTextModel(CLIPTextConfig(**text_encoder_config(variant))).eval()
    randomize(te, seed + 1)
    unet = UNet2DConditionModel(**unet_config(variant)).eval()
    randomize(unet, seed + 2)
    vae = AutoencoderKL(**vae_config()).eval()
    randomize(vae, seed + 3)
    cfg = dict(SD1_SCHEDULER if variant == "sd1" else SD2_SCHEDULER)
    cls = PNDMScheduler if variant == "sd1" else DDIMScheduler
    scheduler = cls.from_config({k: v for k, v in cfg.items() if k != "_class_name"})
    return te, unet, vae, scheduler


def save_pipeline(dir_: Path, variant: str, seed: int) -> Path:
    from diffusers import StableDiffusionPipeline

    te, unet, vae, scheduler = build(variant, seed)
    if dir_.exists():
        shutil.rmtree(dir_)
    tok_dir = dir_ / "tokenizer"
    write_tokenizer(tok_dir, "<|endoftext|>" if variant == "sd1" else "!")
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(str(tok_dir))
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=te,
        tokenizer=tok,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(dir_), safe_serialization=True)
    # save_pretrained re-saved the tokenizer; put our vocab.json/merges.txt/special map back in place.
    write_tokenizer(tok_dir, "<|endoftext|>" if variant == "sd1" else "!")
    # The scheduler config exactly as the real repositories ship it: without timestep_spacing or (SD1)
    # prediction_type, so a scheduler swapped in with from_config() falls back to its own defaults
    # (Euler and DPM-Solver: "linspace"), which is what users of the real checkpoints get.
    import diffusers

    sched = dict(SD1_SCHEDULER if variant == "sd1" else SD2_SCHEDULER)
    sched = {"_class_name": sched.pop("_class_name"), "_diffusers_version": diffusers.__version__, **sched}
    (dir_ / "scheduler" / "scheduler_config.json").write_text(json.dumps(sched, indent=2) + "\n")
    return dir_


def load_pipeline(dir_: Path, cls_name: str = "StableDiffusionImg2ImgPipeline"):
    import diffusers

    cls = getattr(diffusers, cls_name)
    if cls_name == "StableDiffusionDepth2ImgPipeline":
        kwargs = dict(depth_estimator=None, feature_extractor=None)
    else:
        kwargs = dict(safety_checker=None, requires_safety_checker=False)
    pipe = cls.from_pretrained(str(dir_), **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to("cpu", torch.float32)


if __name__ == "__main__":
    import sys

    from common import set_determinism

    set_determinism()
    out = Path(sys.argv[1])
    for v, s in (("sd1", 1000), ("sd2", 2000)):
        save_pipeline(out / f"{v}-tiny", v, s)
