"""Phase 2 fixtures: tiny SD 2-depth (5-channel UNet, explicit depth map) and a tiny ControlNet on sd1-tiny."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import img2img_fixtures as i2i
import tiny_models
from common import dump_json, fixture_image, save_tensors
from tiny_models import load_pipeline, randomize, unet_config

DEPTH_SEED = 3000
SD2_SEED = 2000  # must match make_fixtures.MODEL_SEEDS['sd2']
CONTROLNET_SEED = 4000
COMPONENT_SEED = 11
CONTROL_SCALE = 0.8
PHASE2_SCHEDULERS = ("ddim", "dpmpp2m")
GUIDANCE = 7.5

# As stabilityai/stable-diffusion-2-depth ships it: PNDM and epsilon prediction (the depth model is not v-pred).
SD2_DEPTH_SCHEDULER = {
    "_class_name": "PNDMScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}


def depth_unet_config() -> dict:
    # A third resolution level and a different width/group count than sd2-tiny, so a loader that
    # assumes two levels or 32 groups fails here; narrow to keep the fixtures small.
    return dict(
        sample_size=8,
        in_channels=5,
        out_channels=4,
        block_out_channels=(8, 16, 16),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        mid_block_type="UNetMidBlock2DCrossAttn",
        norm_num_groups=4,
        cross_attention_dim=32,
        attention_head_dim=(2, 4, 4),
        use_linear_projection=True,
        upcast_attention=False,
    )


def controlnet_config() -> dict:
    cfg = unet_config("sd1")
    for k in ("out_channels", "up_block_types", "sample_size"):
        cfg.pop(k)
    cfg["conditioning_channels"] = 3
    # Four entries: three stride-2 convs take the 64x64 control image to the 8x8 latent grid, like the
    # real (16, 32, 96, 256) embedding, with fewer channels.
    cfg["conditioning_embedding_out_channels"] = (8, 16, 16, 32)
    cfg["controlnet_conditioning_channel_order"] = "rgb"
    return cfg


def depth_map() -> torch.Tensor:
    """[1, 64, 64] synthetic inverse depth (larger = nearer, DPT's convention): a tilted floor plane
    and a sphere in front of it."""
    y, x = np.mgrid[0:64, 0:64].astype(np.float64) / 63.0
    d = 4.0 - 2.0 * y + 0.3 * x
    r2 = (x - 0.4) ** 2 + (y - 0.45) ** 2
    sphere = r2 < 0.2**2
    d[sphere] = 1.5 - np.sqrt(0.2**2 - r2[sphere]) * 3.0
    return torch.from_numpy((1.0 / d).astype(np.float32)).unsqueeze(0)


def control_image() -> Image.Image:
    """An edge map of the fixture picture (white edges on black), as a ControlNet canny input."""
    img = fixture_image(64).astype(np.float64)
    g = img @ np.array([0.299, 0.587, 0.114])
    gx = np.zeros_like(g)
    gy = np.zeros_like(g)
    gx[:, 1:-1] = g[:, 2:] - g[:, :-2]
    gy[1:-1, :] = g[2:, :] - g[:-2, :]
    edges = (np.hypot(gx, gy) > 40.0).astype(np.uint8) * 255
    return Image.fromarray(np.stack([edges] * 3, axis=-1))


def _copy_components(src: Path, dst: Path, names) -> None:
    for n in names:
        shutil.copytree(src / n, dst / n)


def build_depth(out: Path) -> Path:
    from diffusers import PNDMScheduler, StableDiffusionDepth2ImgPipeline, UNet2DConditionModel
    from transformers import CLIPTokenizer

    dst = out / "models" / "sd2-depth-tiny"
    if dst.exists():
        shutil.rmtree(dst)
    src = out / "models" / "sd2-tiny"
    torch.manual_seed(DEPTH_SEED)
    unet = UNet2DConditionModel(**depth_unet_config()).eval()
    randomize(unet, DEPTH_SEED + 2)
    sched_cfg = {k: v for k, v in SD2_DEPTH_SCHEDULER.items() if k != "_class_name"}
    # SD 2-depth shares SD 2's text encoder and VAE: rebuild sd2-tiny's (same seed, same weights).
    te, _, vae, _ = tiny_models.build("sd2", SD2_SEED)
    pipe = StableDiffusionDepth2ImgPipeline(
        vae=vae,
        text_encoder=te,
        tokenizer=CLIPTokenizer.from_pretrained(str(src / "tokenizer")),
        unet=unet,
        scheduler=PNDMScheduler.from_config(sched_cfg),
        depth_estimator=None,
        feature_extractor=None,
    )
    pipe.save_pretrained(str(dst), safe_serialization=True)
    # The tokenizer folder verbatim from sd2-tiny, so it keeps vocab.json/merges.txt.
    for n in ("tokenizer",):
        shutil.rmtree(dst / n)
    _copy_components(src, dst, ["tokenizer"])
    import diffusers

    sched = dict(SD2_DEPTH_SCHEDULER)
    sched = {"_class_name": sched.pop("_class_name"), "_diffusers_version": diffusers.__version__, **sched}
    (dst / "scheduler" / "scheduler_config.json").write_text(json.dumps(sched, indent=2) + "\n")
    return dst


def build_controlnet(out: Path) -> Path:
    from diffusers import ControlNetModel

    dst = out / "models" / "controlnet-tiny"
    if dst.exists():
        shutil.rmtree(dst)
    torch.manual_seed(CONTROLNET_SEED)
    cn = ControlNetModel(**controlnet_config()).eval()
    randomize(cn, CONTROLNET_SEED + 1)
    cn.save_pretrained(str(dst), safe_serialization=True)
    return dst


def _run_cases(pipe, out_dir, model_name, pipeline_name, extra_args, extra_record, tensors):
    out_dir.mkdir(parents=True, exist_ok=True)
    base_config = dict(pipe.scheduler.config)
    pe, ne = pipe.encode_prompt(i2i.PROMPT, "cpu", 1, True, i2i.NEGATIVE)
    tensors["embeds.single.prompt_embeds"] = pe
    tensors["embeds.single.negative_prompt_embeds"] = ne
    cases = []
    for s in PHASE2_SCHEDULERS:
        name = f"{s}_g{GUIDANCE:g}".replace(".", "p")
        rec = i2i.run_case(
            pipe, base_config, name, s, GUIDANCE, i2i.PROMPT, i2i.NEGATIVE, [i2i.SEED], tensors, out_dir, extra_args
        )
        rec.update(extra_record)
        cases.append(rec)
    save_tensors(out_dir / f"{out_dir.name}.safetensors", tensors)
    dump_json(
        out_dir / "cases.json",
        {
            "model": model_name,
            "pipeline": pipeline_name,
            "device": "cpu",
            "dtype": "float32",
            "input_image": "input.png",
            "tensors_file": f"{out_dir.name}.safetensors",
            "prompt_embeds": {"single": {"prompt": i2i.PROMPT, "negative_prompt": i2i.NEGATIVE}},
            "cases": cases,
        },
    )
    return cases


@torch.no_grad()
def generate_depth(out: Path) -> dict:
    import components

    d = build_depth(out)
    pipe = load_pipeline(d, "StableDiffusionDepth2ImgPipeline")
    components.generate(pipe, out / "outputs" / "sd2-depth-tiny" / "components.safetensors", COMPONENT_SEED)
    # The depth preprocessing on its own: bicubic to latent size, per-sample min-max to [-1, 1].
    dm = depth_map()
    from safetensors.torch import load_file

    comp_path = out / "outputs" / "sd2-depth-tiny" / "components.safetensors"
    comp = load_file(str(comp_path))
    comp["depth.depth_map"] = dm
    comp["depth.mask"] = pipe.prepare_depth_map(i2i.input_image(), dm, 1, False, torch.float32, torch.device("cpu"))
    save_tensors(comp_path, comp)

    out_dir = out / "outputs" / "sd2-depth-tiny" / "depth2img"
    out_dir.mkdir(parents=True, exist_ok=True)
    i2i.input_image().save(out_dir / "input.png")
    tensors = {"depth_map": dm}
    cases = _run_cases(
        pipe,
        out_dir,
        "sd2-depth-tiny",
        "StableDiffusionDepth2ImgPipeline",
        {"depth_map": dm},
        {"depth_map": "tensor `depth_map` [1, 64, 64] in depth2img.safetensors (passed as depth_map=)"},
        tensors,
    )
    return {"cases": len(cases)}


@torch.no_grad()
def generate_controlnet(out: Path) -> dict:
    from diffusers import ControlNetModel, StableDiffusionControlNetImg2ImgPipeline

    cn_dir = build_controlnet(out)
    base = load_pipeline(out / "models" / "sd1-tiny")
    cn = ControlNetModel.from_pretrained(str(cn_dir)).eval()

    # Components: ControlNet residuals for fixed inputs, and the UNet consuming them.
    g = torch.Generator("cpu").manual_seed(COMPONENT_SEED)
    sample = torch.randn((2, 4, 8, 8), generator=g)
    ehs = torch.randn((2, 77, 32), generator=g)
    ctrl = torch.from_numpy(np.asarray(control_image()).astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)
    ctrl = torch.cat([ctrl, torch.flip(ctrl, dims=[3])])  # [2, 3, 64, 64] in [0, 1]
    t = {"controlnet.sample": sample, "controlnet.encoder_hidden_states": ehs, "controlnet.cond": ctrl}
    t["controlnet.timestep"] = torch.tensor(500, dtype=torch.int64)
    t["controlnet.conditioning_scale"] = torch.tensor(CONTROL_SCALE, dtype=torch.float32)
    down, mid = cn(sample, 500, encoder_hidden_states=ehs, controlnet_cond=ctrl, conditioning_scale=CONTROL_SCALE,
                   return_dict=False)
    for i, r in enumerate(down):
        t[f"controlnet.down_{i}"] = r
    t["controlnet.mid"] = mid
    t["unet.out_with_control"] = base.unet(
        sample, 500, encoder_hidden_states=ehs, down_block_additional_residuals=down, mid_block_additional_residual=mid
    ).sample
    t["unet.out_without_control"] = base.unet(sample, 500, encoder_hidden_states=ehs).sample
    save_tensors(out / "outputs" / "controlnet-tiny" / "components.safetensors", t)

    pipe = StableDiffusionControlNetImg2ImgPipeline(
        vae=base.vae,
        text_encoder=base.text_encoder,
        tokenizer=base.tokenizer,
        unet=base.unet,
        controlnet=cn,
        scheduler=base.scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    ).to("cpu", torch.float32)
    pipe.set_progress_bar_config(disable=True)
    out_dir = out / "outputs" / "controlnet-tiny" / "img2img"
    out_dir.mkdir(parents=True, exist_ok=True)
    i2i.input_image().save(out_dir / "input.png")
    control_image().save(out_dir / "control.png")
    cases = _run_cases(
        pipe,
        out_dir,
        "sd1-tiny + controlnet-tiny",
        "StableDiffusionControlNetImg2ImgPipeline",
        {"control_image": control_image(), "controlnet_conditioning_scale": CONTROL_SCALE},
        {"control_image": "control.png", "controlnet_conditioning_scale": CONTROL_SCALE},
        {},
    )
    return {"down_residuals": len(down), "cases": len(cases)}
