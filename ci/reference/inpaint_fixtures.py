"""Inpainting fixtures: a tiny SD 1 inpainting model (9-channel UNet) and diffusers' StableDiffusionInpaintPipeline
images, with it and with sd1-tiny (a plain 4-channel model, which diffusers inpaints by blending the re-noised
original back outside the mask after every step).

    models/sd1-inpaint-tiny/                   diffusers folder; text encoder and VAE are sd1-tiny's (same seeds)
    outputs/<model>/inpaint/cases.json         per case: scheduler, strength, guidance, seeds, mask and image PNGs
    outputs/<model>/inpaint/{input,mask_*}.png the picture and the masks (L mode: white = repaint, grey edges)

Strength 1 starts from pure noise (`is_strength_max`; a 9-channel model never encodes the image then), strength
below 1 from the noised image: both run, with DDIM (init_noise_sigma 1), Euler ancestral (init_noise_sigma > 1, step
noise) and DPM++ 2M Karras, guided and not, and a batch of two with a mask each.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import img2img_fixtures as i2i
import tiny_models
from common import dump_json
from tiny_models import SD1_SCHEDULER, randomize

INPAINT_SEED = 5000
SD1_SEED = 1000  # must match make_fixtures.MODEL_SEEDS['sd1']
SIZE = 64
STEPS = 10

# (name, scheduler, strength, guidance, batch)
CASES_9CH = [
    ("ddim_s1_g7p5", "ddim", 1.0, 7.5, False),
    ("ddim_s0p75_g1", "ddim", 0.75, 1.0, False),
    ("euler_a_s1_g7p5", "euler_a", 1.0, 7.5, False),
    ("dpmpp2m_karras_s0p6_g7p5", "dpmpp2m_karras", 0.6, 7.5, False),
    ("batch_ddim_s0p75_g7p5", "ddim", 0.75, 7.5, True),
]
CASES_4CH = [
    ("ddim_s0p75_g7p5", "ddim", 0.75, 7.5, False),
    ("euler_a_s1_g7p5", "euler_a", 1.0, 7.5, False),
    ("batch_dpmpp2m_s0p6_g7p5", "dpmpp2m", 0.6, 7.5, True),
]


def inpaint_unet_config() -> dict:
    # Narrow (8, 16) channels with 4 groups, as the depth model, so the fixture stays small; SD 1's attention.
    return dict(
        sample_size=8,
        in_channels=9,
        out_channels=4,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        mid_block_type="UNetMidBlock2DCrossAttn",
        norm_num_groups=4,
        cross_attention_dim=32,
        attention_head_dim=2,
        use_linear_projection=False,
        upcast_attention=False,
    )


def mask_image(kind: int) -> Image.Image:
    """L-mode masks: 0 an off-centre disc with a soft (grey) rim, so the 0.5 threshold matters; 1 the lower half
    with a notch."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    if kind == 0:
        r = np.hypot(x - 26.0, y - 30.0)
        m = np.clip((22.0 - r) * 40.0 + 128.0, 0, 255)
    else:
        m = np.where((y >= 32) & ~((x > 40) & (y < 44)), 255.0, 0.0)
        m[32, :] = 127.0  # just below the threshold: kept
    return Image.fromarray(m.round().astype(np.uint8), mode="L")


def build_inpaint_model(out: Path) -> Path:
    from diffusers import PNDMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTokenizer

    dst = out / "models" / "sd1-inpaint-tiny"
    if dst.exists():
        shutil.rmtree(dst)
    src = out / "models" / "sd1-tiny"
    torch.manual_seed(INPAINT_SEED)
    unet = UNet2DConditionModel(**inpaint_unet_config()).eval()
    randomize(unet, INPAINT_SEED + 2)
    te, _, vae, _ = tiny_models.build("sd1", SD1_SEED)
    sched_cfg = {k: v for k, v in SD1_SCHEDULER.items() if k != "_class_name"}
    pipe = StableDiffusionInpaintPipeline(
        vae=vae,
        text_encoder=te,
        tokenizer=CLIPTokenizer.from_pretrained(str(src / "tokenizer")),
        unet=unet,
        scheduler=PNDMScheduler.from_config(sched_cfg),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(dst), safe_serialization=True)
    shutil.rmtree(dst / "tokenizer")
    shutil.copytree(src / "tokenizer", dst / "tokenizer")
    import diffusers

    sched = dict(SD1_SCHEDULER)
    sched = {"_class_name": sched.pop("_class_name"), "_diffusers_version": diffusers.__version__, **sched}
    (dst / "scheduler" / "scheduler_config.json").write_text(json.dumps(sched, indent=2) + "\n")
    return dst


def load(model_dir: Path):
    from diffusers import StableDiffusionInpaintPipeline

    pipe = StableDiffusionInpaintPipeline.from_pretrained(str(model_dir), safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to("cpu", torch.float32)


@torch.no_grad()
def run_cases(pipe, cases, out_dir: Path, model_name: str) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    image = i2i.input_image()
    image.save(out_dir / "input.png")
    masks = [mask_image(0), mask_image(1)]
    for i, m in enumerate(masks):
        m.save(out_dir / f"mask_{i}.png")
    base_config = dict(pipe.scheduler.config)
    records = []
    for name, sched_name, strength, guidance, batch in cases:
        cls, overrides = i2i.scheduler_swaps()[sched_name]
        pipe.scheduler = cls.from_config(base_config, **overrides)
        n = 2 if batch else 1
        seeds = i2i.BATCH_SEEDS if batch else [i2i.SEED]
        prompts = i2i.BATCH_PROMPTS if batch else [i2i.PROMPT]
        negatives = i2i.BATCH_NEGATIVES if batch else [i2i.NEGATIVE]
        mask_files = [f"mask_{k}.png" for k in range(n)]
        res = pipe(
            prompt=prompts,
            negative_prompt=negatives,
            image=[image] * n,
            mask_image=masks[:n],
            height=SIZE,
            width=SIZE,
            strength=strength,
            num_inference_steps=STEPS,
            guidance_scale=guidance,
            generator=[torch.Generator("cpu").manual_seed(s) for s in seeds],
            output_type="np",
        )
        pngs = []
        for k, arr in enumerate(res.images):
            fn = f"{name}.png" if n == 1 else f"{name}_{k}.png"
            Image.fromarray((arr * 255).round().astype("uint8")).save(out_dir / fn)
            pngs.append(fn)
        records.append(
            {
                "name": name,
                "scheduler": sched_name,
                "scheduler_class": cls.__name__,
                "scheduler_overrides": overrides,
                "prompt": prompts,
                "negative_prompt": negatives,
                "strength": strength,
                "num_inference_steps": STEPS,
                "guidance_scale": guidance,
                "seeds": seeds,
                "generator": "torch.Generator('cpu').manual_seed(seed) per prompt (list)",
                "mask_png": mask_files,
                "output_png": pngs,
            }
        )
    dump_json(
        out_dir / "cases.json",
        {
            "model": model_name,
            "pipeline": "StableDiffusionInpaintPipeline",
            "unet_in_channels": pipe.unet.config.in_channels,
            "device": "cpu",
            "dtype": "float32",
            "input_image": "input.png",
            "cases": records,
        },
    )
    return len(records)


def generate(out: Path) -> dict:
    model_dir = build_inpaint_model(out)
    n9 = run_cases(load(model_dir), CASES_9CH, out / "outputs" / "sd1-inpaint-tiny" / "inpaint", "sd1-inpaint-tiny")
    n4 = run_cases(load(out / "models" / "sd1-tiny"), CASES_4CH, out / "outputs" / "sd1-tiny" / "inpaint", "sd1-tiny")
    return {"9-channel cases": n9, "4-channel cases": n4}
