"""SDXL fixtures: tiny SDXL base / refiner / ControlNet-XL models and diffusers' outputs for them.

models/sdxl-tiny/            StableDiffusionXLImg2ImgPipeline layout, two text encoders, a text_time UNet
models/sdxl-refiner-tiny/    refiner layout: text_encoder/tokenizer null, aesthetic-score UNet (5 time ids)
models/controlnet-xl-tiny/   ControlNetModel matching sdxl-tiny's UNet down path
outputs/<model>/components.safetensors + components.json, outputs/<model>/img2img/ (cases.json, PNGs, tensors)
"""

from __future__ import annotations

import filecmp
import json
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import img2img_fixtures as i2i
from common import dump_json, fixture_image, save_tensors, tolist
from components import COMPONENT_PROMPTS, UNET_TIMESTEPS, image_tensor
from phase2 import depth_map
from sched_fixtures import clean_config
from tiny_models import TINY_VOCAB, randomize, text_encoder_config, vae_config, write_tokenizer

SDXL_SEED = 6000
REFINER_SEED = 7000
CONTROLNET_XL_SEED = 8000
COMPONENT_SEED = 13
CONTROL_SCALE = 0.8
ADD_TIME_DIM = 8
CHANNELS = (8, 12, 16)
PROJECTION_DIM = 24

# As stabilityai/stable-diffusion-xl-base-1.0 (and -refiner-1.0) ship scheduler/scheduler_config.json.
SDXL_SCHEDULER = {
    "_class_name": "EulerDiscreteScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "trained_betas": None,
    "use_karras_sigmas": False,
}

# Every size/aesthetic kwarg the SDXL img2img pipelines take, with diffusers' defaults; each case passes all of
# them explicitly and records them.
COND_DEFAULTS = dict(
    original_size=None,
    crops_coords_top_left=(0, 0),
    target_size=None,
    negative_original_size=None,
    negative_crops_coords_top_left=(0, 0),
    negative_target_size=None,
    aesthetic_score=6.0,
    negative_aesthetic_score=2.5,
)


# ---------------------------------------------------------------------------------------------------- configs


def text_encoder_2_config() -> dict:
    # OpenCLIP-bigG-like: gelu, a projection, and eos_token_id 2 as the real SDXL text_encoder_2 config has
    # (transformers then pools at argmax(input_ids), which is the first <|endoftext|>: the highest id).
    return dict(
        vocab_size=TINY_VOCAB,
        hidden_size=40,
        intermediate_size=45,
        num_attention_heads=4,
        num_hidden_layers=3,
        max_position_embeddings=77,
        hidden_act="gelu",
        layer_norm_eps=1e-5,
        projection_dim=PROJECTION_DIM,
        bos_token_id=TINY_VOCAB - 2,
        eos_token_id=2,
        pad_token_id=0,
    )


def sdxl_unet_config(cross_attention_dim: int, n_time_ids: int) -> dict:
    # SDXL's structure: no attention at the highest resolution, more transformer layers deeper down.
    # Channels (8, 12, 16) with 4 groups: (16, 24, 32) with 8 groups made each UNet 1.9 MB, and the three
    # models with their shared parts 6.8 MB, more than the fixture budget allows.
    return dict(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=CHANNELS,
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        mid_block_type="UNetMidBlock2DCrossAttn",
        norm_num_groups=4,
        attention_head_dim=(2, 3, 4),
        transformer_layers_per_block=(1, 1, 2),
        cross_attention_dim=cross_attention_dim,
        use_linear_projection=True,
        upcast_attention=False,
        addition_embed_type="text_time",
        addition_time_embed_dim=ADD_TIME_DIM,
        projection_class_embeddings_input_dim=n_time_ids * ADD_TIME_DIM + PROJECTION_DIM,
    )


def sdxl_vae_config() -> dict:
    cfg = vae_config()
    cfg.update(scaling_factor=0.13025, force_upcast=True)
    return cfg


def controlnet_xl_config() -> dict:
    cfg = sdxl_unet_config(32 + 40, 6)
    for k in ("out_channels", "up_block_types", "sample_size"):
        cfg.pop(k)
    cfg["conditioning_channels"] = 3
    # Three stride-2 convs: the 64x64 control image reaches the 8x8 latent grid.
    cfg["conditioning_embedding_out_channels"] = (4, 8, 12, 16)
    cfg["controlnet_conditioning_channel_order"] = "rgb"
    return cfg


# ----------------------------------------------------------------------------------------------------- models


def _scheduler():
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler.from_config({k: v for k, v in SDXL_SCHEDULER.items() if k != "_class_name"})


def _write_scheduler_config(dir_: Path) -> None:
    import diffusers

    sched = dict(SDXL_SCHEDULER)
    sched = {"_class_name": sched.pop("_class_name"), "_diffusers_version": diffusers.__version__, **sched}
    (dir_ / "scheduler" / "scheduler_config.json").write_text(json.dumps(sched, indent=2) + "\n")


def build_shared(seed: int = SDXL_SEED):
    """text_encoder, text_encoder_2 and VAE of sdxl-tiny (the refiner reuses text_encoder_2 and the VAE)."""
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    te = CLIPTextModel(CLIPTextConfig(**text_encoder_config("sd1"))).eval()
    randomize(te, seed + 1)
    te2 = CLIPTextModelWithProjection(CLIPTextConfig(**text_encoder_2_config())).eval()
    randomize(te2, seed + 4)
    vae = AutoencoderKL(**sdxl_vae_config()).eval()
    randomize(vae, seed + 3)
    return te, te2, vae


def build_unet(cross_attention_dim: int, n_time_ids: int, seed: int):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**sdxl_unet_config(cross_attention_dim, n_time_ids)).eval()
    randomize(unet, seed + 2)
    return unet


def save_models(out: Path) -> dict:
    from diffusers import ControlNetModel, StableDiffusionXLImg2ImgPipeline
    from transformers import CLIPTokenizer

    models = out / "models"
    base_dir, ref_dir, cn_dir = models / "sdxl-tiny", models / "sdxl-refiner-tiny", models / "controlnet-xl-tiny"
    for d in (base_dir, ref_dir, cn_dir):
        if d.exists():
            shutil.rmtree(d)
    te, te2, vae = build_shared()
    write_tokenizer(base_dir / "tokenizer", "<|endoftext|>")
    write_tokenizer(base_dir / "tokenizer_2", "!")
    tok = CLIPTokenizer.from_pretrained(str(base_dir / "tokenizer"))
    tok2 = CLIPTokenizer.from_pretrained(str(base_dir / "tokenizer_2"))

    base = StableDiffusionXLImg2ImgPipeline(
        vae=vae,
        text_encoder=te,
        text_encoder_2=te2,
        tokenizer=tok,
        tokenizer_2=tok2,
        unet=build_unet(32 + 40, 6, SDXL_SEED),
        scheduler=_scheduler(),
        requires_aesthetics_score=False,
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )
    base.save_pretrained(str(base_dir), safe_serialization=True)
    # save_pretrained re-saved the tokenizers; put our vocab.json/merges.txt/special maps back.
    write_tokenizer(base_dir / "tokenizer", "<|endoftext|>")
    write_tokenizer(base_dir / "tokenizer_2", "!")
    _write_scheduler_config(base_dir)

    refiner = StableDiffusionXLImg2ImgPipeline(
        vae=vae,
        text_encoder=None,
        text_encoder_2=te2,
        tokenizer=None,
        tokenizer_2=tok2,
        unet=build_unet(40, 5, REFINER_SEED),
        scheduler=_scheduler(),
        requires_aesthetics_score=True,
        force_zeros_for_empty_prompt=False,
        add_watermarker=False,
    )
    refiner.save_pretrained(str(ref_dir), safe_serialization=True)
    shutil.rmtree(ref_dir / "tokenizer_2")
    shutil.copytree(base_dir / "tokenizer_2", ref_dir / "tokenizer_2")
    _write_scheduler_config(ref_dir)
    # The refiner shares text_encoder_2, tokenizer_2, the VAE and the scheduler config with the base, byte for byte.
    for sub in ("text_encoder_2", "tokenizer_2", "vae", "scheduler"):
        cmp = filecmp.dircmp(base_dir / sub, ref_dir / sub)
        assert not (cmp.left_only or cmp.right_only or cmp.diff_files), (sub, cmp.diff_files)
        for f in cmp.common_files:
            assert filecmp.cmp(base_dir / sub / f, ref_dir / sub / f, shallow=False), (sub, f)
    index = json.loads((ref_dir / "model_index.json").read_text())
    assert index["text_encoder"] == [None, None] and index["tokenizer"] == [None, None], index

    torch.manual_seed(CONTROLNET_XL_SEED)
    cn = ControlNetModel(**controlnet_xl_config()).eval()
    randomize(cn, CONTROLNET_XL_SEED + 1)
    cn.save_pretrained(str(cn_dir), safe_serialization=True)
    return {"sdxl-tiny": base_dir, "sdxl-refiner-tiny": ref_dir, "controlnet-xl-tiny": cn_dir}


def load_sdxl(dir_: Path, refiner: bool = False):
    from diffusers import StableDiffusionXLImg2ImgPipeline

    kwargs = dict(text_encoder=None, tokenizer=None) if refiner else {}
    pipe = StableDiffusionXLImg2ImgPipeline.from_pretrained(str(dir_), add_watermarker=False, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    pipe = pipe.to("cpu", torch.float32)
    assert pipe.watermark is None
    if refiner:
        assert pipe.text_encoder is None and pipe.tokenizer is None
        assert pipe.config.requires_aesthetics_score and not pipe.config.force_zeros_for_empty_prompt
    else:
        assert pipe.text_encoder is not None and pipe.tokenizer is not None
        assert not pipe.config.requires_aesthetics_score and pipe.config.force_zeros_for_empty_prompt
    return pipe


# ------------------------------------------------------------------------------------------------- components


def time_ids(n: int) -> torch.Tensor:
    """Two rows of realistic time ids: SDXL's (orig h, w, crop top, left, target h, w), or the refiner's
    (orig h, w, crop top, left, aesthetic score)."""
    if n == 6:
        return torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0], [128.0, 96.0, 4.0, 8.0, 64.0, 64.0]])
    return torch.tensor([[64.0, 64.0, 0.0, 0.0, 6.0], [128.0, 96.0, 4.0, 8.0, 2.5]])


class EmbHooks:
    """Captures the UNet's (or ControlNet's) time embedding pieces during one forward pass."""

    def __init__(self, model):
        self.got = {}
        self.handles = [
            model.time_embedding.register_forward_hook(lambda m, a, o: self.got.__setitem__("time_emb", o.clone())),
            model.add_time_proj.register_forward_hook(lambda m, a, o: self.got.__setitem__("time_ids_proj", o.clone())),
            model.add_embedding.register_forward_hook(self._add),
            # emb after `emb = emb + aug_emb`, as every resnet of the first down block receives it (temb=).
            model.down_blocks[0].register_forward_pre_hook(self._temb, with_kwargs=True),
        ]

    def _add(self, m, args, out):
        self.got["add_embeds"] = args[0].clone()
        self.got["aug_emb"] = out.clone()

    def _temb(self, m, args, kwargs):
        self.got["emb"] = kwargs["temb"].clone()

    def remove(self):
        for h in self.handles:
            h.remove()


def _text_components(t: dict, prefix: str, tokenizer, encoder, full: bool = True) -> None:
    ids = tokenizer(COMPONENT_PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    out = encoder(ids, output_hidden_states=True)
    t[f"{prefix}.input_ids"] = ids.to(torch.int64)
    t[f"{prefix}.hidden_states_penultimate"] = out.hidden_states[-2]
    if hasattr(out, "text_embeds"):
        t[f"{prefix}.text_embeds"] = out.text_embeds
        if full:  # the input of the pooling (text_encoder's is unused by SDXL: not stored)
            t[f"{prefix}.last_hidden_state"] = out.last_hidden_state


def _unet_components(t: dict, unet, sample, ehs, text_embeds, tids) -> None:
    t["unet.sample"] = sample
    t["unet.encoder_hidden_states"] = ehs
    t["unet.text_embeds"] = text_embeds
    t["unet.time_ids"] = tids
    cond = {"text_embeds": text_embeds, "time_ids": tids}
    for ts in UNET_TIMESTEPS:
        hooks = EmbHooks(unet)
        t[f"unet.timestep_{ts}"] = torch.tensor(ts, dtype=torch.int64)
        t[f"unet.out_t{ts}"] = unet(sample, ts, encoder_hidden_states=ehs, added_cond_kwargs=cond).sample
        hooks.remove()
        assert torch.equal(hooks.got["emb"], hooks.got["time_emb"] + hooks.got["aug_emb"])
        t[f"unet.emb_t{ts}"] = hooks.got["emb"]
        if ts == 500:
            t["unet.time_emb_t500"] = hooks.got["time_emb"]
            t["unet.time_ids_proj"] = hooks.got["time_ids_proj"]
            t["unet.add_embeds"] = hooks.got["add_embeds"]
            t["unet.aug_emb"] = hooks.got["aug_emb"]


def control_image() -> Image.Image:
    """A depth-like control picture: phase2's synthetic inverse depth min-max scaled to 0..255, grey RGB."""
    d = depth_map()[0].double().numpy()
    g = np.round((d - d.min()) / (d.max() - d.min()) * 255.0).astype(np.uint8)
    return Image.fromarray(np.stack([g] * 3, axis=-1))


def control_tensor() -> torch.Tensor:
    ctrl = torch.from_numpy(np.asarray(control_image()).astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)
    return torch.cat([ctrl, torch.flip(ctrl, dims=[3])])  # [2, 3, 64, 64] in [0, 1]


@torch.no_grad()
def base_components(pipe, controlnet, out_file: Path) -> dict:
    g = torch.Generator("cpu").manual_seed(COMPONENT_SEED)
    t = {}
    _text_components(t, "text_encoder", pipe.tokenizer, pipe.text_encoder)
    _text_components(t, "text_encoder_2", pipe.tokenizer_2, pipe.text_encoder_2)
    sample = torch.randn((2, 4, 8, 8), generator=g)
    ehs = torch.randn((2, 77, 72), generator=g)
    text_embeds = torch.randn((2, PROJECTION_DIM), generator=g)
    tids = time_ids(6)
    _unet_components(t, pipe.unet, sample, ehs, text_embeds, tids)
    # The text encoders' real outputs into the UNet, as encode_prompt combines them.
    real_ehs = torch.cat([t["text_encoder.hidden_states_penultimate"], t["text_encoder_2.hidden_states_penultimate"]], -1)
    t["unet.out_t500_text"] = pipe.unet(
        sample, 500, encoder_hidden_states=real_ehs,
        added_cond_kwargs={"text_embeds": t["text_encoder_2.text_embeds"], "time_ids": tids},
    ).sample

    img = image_tensor()
    t["vae.encode.image"] = img
    dist = pipe.vae.encode(img).latent_dist
    t["vae.encode.mean"] = dist.mean
    t["vae.encode.logvar"] = dist.logvar
    t["vae.encode.std"] = dist.std
    latent = torch.randn((1, 4, 8, 8), generator=g)
    t["vae.decode.latent"] = latent
    t["vae.decode.image"] = pipe.vae.decode(latent).sample

    # ControlNet-XL on the same UNet inputs.
    ctrl = control_tensor()
    t["controlnet.cond"] = ctrl
    t["controlnet.timestep"] = torch.tensor(500, dtype=torch.int64)
    t["controlnet.conditioning_scale"] = torch.tensor(1.0, dtype=torch.float32)
    cond = {"text_embeds": text_embeds, "time_ids": tids}
    hooks = EmbHooks(controlnet)
    down, mid = controlnet(sample, 500, encoder_hidden_states=ehs, controlnet_cond=ctrl, conditioning_scale=1.0,
                           added_cond_kwargs=cond, return_dict=False)
    hooks.remove()
    t["controlnet.emb"] = hooks.got["emb"]
    for i, r in enumerate(down):
        t[f"controlnet.down_{i}"] = r
    t["controlnet.mid"] = mid
    t["unet.out_with_control"] = pipe.unet(
        sample, 500, encoder_hidden_states=ehs, added_cond_kwargs=cond,
        down_block_additional_residuals=down, mid_block_additional_residual=mid,
    ).sample
    save_tensors(out_file, t)
    return t


@torch.no_grad()
def refiner_components(pipe, out_file: Path) -> dict:
    g = torch.Generator("cpu").manual_seed(COMPONENT_SEED + 1)
    t = {}
    # text_encoder_2 is sdxl-tiny's (same bytes): its last_hidden_state is in sdxl-tiny's file.
    _text_components(t, "text_encoder_2", pipe.tokenizer_2, pipe.text_encoder_2, full=False)
    sample = torch.randn((2, 4, 8, 8), generator=g)
    ehs = torch.randn((2, 77, 40), generator=g)
    text_embeds = torch.randn((2, PROJECTION_DIM), generator=g)
    tids = time_ids(5)
    _unet_components(t, pipe.unet, sample, ehs, text_embeds, tids)
    t["unet.out_t500_text"] = pipe.unet(
        sample, 500, encoder_hidden_states=t["text_encoder_2.hidden_states_penultimate"],
        added_cond_kwargs={"text_embeds": t["text_encoder_2.text_embeds"], "time_ids": tids},
    ).sample
    save_tensors(out_file, t)
    return t


COMPONENT_DOCS = {
    "text_encoder.input_ids": "tokenizer (pad <|endoftext|>) on `prompts`, max_length 77 padding, int64",
    "text_encoder.hidden_states_penultimate": "text_encoder(ids, output_hidden_states=True).hidden_states[-2]: the output of the second-to-last layer, no final layer norm (what SDXL uses)",
    "text_encoder_2.input_ids": "tokenizer_2 (pad `!`, id 0) on `prompts`, int64",
    "text_encoder_2.hidden_states_penultimate": "text_encoder_2(ids, output_hidden_states=True).hidden_states[-2]",
    "text_encoder_2.last_hidden_state": "text_encoder_2(ids).last_hidden_state (after final_layer_norm)",
    "text_encoder_2.text_embeds": "CLIPTextModelWithProjection.text_embeds: last_hidden_state at argmax(input_ids) (eos_token_id 2 rule; = the first <|endoftext|>) @ text_projection (no bias): SDXL's pooled embedding",
    "unet.sample": "randn",
    "unet.encoder_hidden_states": "randn",
    "unet.text_embeds": "randn, added_cond_kwargs['text_embeds']",
    "unet.time_ids": "added_cond_kwargs['time_ids'], fixed values (row per batch element)",
    "unet.timestep_500": "scalar timestep, int64",
    "unet.timestep_37": "scalar timestep, int64",
    "unet.out_t500": "unet(sample, 500, encoder_hidden_states, added_cond_kwargs={text_embeds, time_ids}).sample",
    "unet.out_t37": "same, t = 37",
    "unet.emb_t500": "the time embedding the down blocks receive (temb), i.e. time_embedding(t) + add_embedding(add_embeds), captured by a forward pre-hook on down_blocks[0]",
    "unet.emb_t37": "same, t = 37",
    "unet.time_emb_t500": "time_embedding(timestep_proj(500)) alone (before adding aug_emb)",
    "unet.time_ids_proj": "add_time_proj(time_ids.flatten()): sinusoidal (flip_sin_to_cos: cos first, freq_shift 0) of each id, [b * n_ids, addition_time_embed_dim]",
    "unet.add_embeds": "cat([text_embeds, time_ids_proj.reshape(b, -1)], -1): add_embedding's input (text first)",
    "unet.aug_emb": "add_embedding(add_embeds) (linear_1, silu, linear_2)",
    "unet.out_t500_text": "t = 500 with the real text: encoder_hidden_states = cat([text_encoder penultimate, text_encoder_2 penultimate], -1) (refiner: text_encoder_2 penultimate only), text_embeds = text_encoder_2.text_embeds, time_ids = unet.time_ids",
    "vae.encode.image": "the fixture picture [1, 3, 64, 64] as x / 255 * 2 - 1",
    "vae.encode.mean": "vae.encode(image).latent_dist.mean (no scaling factor)",
    "vae.encode.logvar": "latent_dist.logvar (clamped to [-30, 20] by diffusers); the moments are cat([mean, logvar], 1)",
    "vae.encode.std": "latent_dist.std = exp(0.5 * logvar)",
    "vae.decode.latent": "randn",
    "vae.decode.image": "vae.decode(latent).sample (no scaling factor, no clamp)",
    "controlnet.cond": "controlnet_cond: img2img/control.png / 255 and its left-right mirror, in [0, 1]",
    "controlnet.timestep": "500, int64",
    "controlnet.conditioning_scale": "1.0",
    "controlnet.emb": "the ControlNet's temb (time_embedding + add_embedding), same inputs as the UNet's",
    "controlnet.mid": "mid_block_res_sample (x conditioning_scale)",
    "unet.out_with_control": "sdxl-tiny UNet at t = 500 on unet.* inputs with down_block_additional_residuals = controlnet.down_*, mid_block_additional_residual = controlnet.mid",
}


def components_json(t: dict, path: Path, model: str, notes: dict) -> None:
    keys = []
    for k in sorted(t):
        doc = COMPONENT_DOCS.get(k)
        if doc is None and k.startswith("controlnet.down_"):
            doc = "down_block_res_samples[i] through controlnet_down_blocks[i] (1x1 conv), x conditioning_scale: conv_in, block 0 resnet, block 0 downsampler, block 1 resnet, block 1 downsampler, block 2 resnet"
        assert doc is not None, k
        keys.append({"key": k, "shape": list(t[k].shape), "dtype": str(t[k].dtype).replace("torch.", ""), "what": doc})
    dump_json(path, {"model": model, "tensors_file": "components.safetensors", "prompts": COMPONENT_PROMPTS,
                     **notes, "keys": keys})


# ---------------------------------------------------------------------------------------------------- img2img


def _tuple_json(v):
    return list(v) if isinstance(v, tuple) else v


@torch.no_grad()
def run_case(pipe, base_config, name, sched_name, guidance, prompt, negative, seeds, tensors, out_dir, embeds_group,
             ref, cond=None, denoising_start=None, extra_args=None, extra_record=None):
    """One pipeline call (three: np, latent and pil outputs) with a scheduler built from the model's own config."""
    cls, overrides = i2i.scheduler_swaps()[sched_name]
    cond_kwargs = dict(COND_DEFAULTS)
    cond_kwargs.update(cond or {})
    args = dict(
        prompt=prompt,
        negative_prompt=negative,
        image=i2i.input_image(),
        strength=i2i.STRENGTH,
        num_inference_steps=i2i.STEPS,
        guidance_scale=guidance,
        **cond_kwargs,
    )
    if denoising_start is not None:
        args["denoising_start"] = denoising_start
    args.update(extra_args or {})
    batch = isinstance(prompt, list)

    def gens():
        g = [torch.Generator("cpu").manual_seed(s) for s in seeds]
        return g if batch else g[0]

    captured = {}
    orig_time_ids = type(pipe)._get_add_time_ids
    orig_prepare = type(pipe).prepare_latents

    def get_add_time_ids(self, *a, **k):
        out = orig_time_ids(self, *a, **k)
        captured["time_ids"] = (out[0].clone(), out[1].clone())
        return out

    def prepare_latents(self, image, timestep, *a, **k):
        out = orig_prepare(self, image, timestep, *a, **k)
        add_noise = k.get("add_noise", a[5] if len(a) > 5 else True)
        captured["prepare"] = (timestep.clone(), bool(add_noise), out.clone())
        return out

    def fresh():
        pipe.scheduler = cls.from_config(base_config, **overrides)
        return i2i.Recorder(pipe)

    first = {}

    def callback(p, i, t, kw):
        if i == 0:
            first.update({k: v.clone() for k, v in kw.items() if k != "latents"})
        return rec.callback(p, i, t, kw)

    pipe._get_add_time_ids = get_add_time_ids.__get__(pipe)
    pipe.prepare_latents = prepare_latents.__get__(pipe)
    try:
        rec = fresh()
        res = pipe(**args, generator=gens(), output_type="np", callback_on_step_end=callback,
                   callback_on_step_end_tensor_inputs=["latents", "prompt_embeds", "add_text_embeds", "add_time_ids"])
        sched_config = clean_config(pipe.scheduler.config)
        begin_index = getattr(pipe.scheduler, "begin_index", None)
        all_timesteps = [i2i.t_value(x) for x in pipe.scheduler.timesteps]
        time_ids_pair = captured["time_ids"]
        lt, add_noise, start = captured["prepare"]
        rec2 = fresh()
        lat = pipe(**args, generator=gens(), output_type="latent").images
        assert torch.equal(lat, rec.steps[-1][1]), f"{name}: latent run differs from np run"
        rec3 = fresh()
        pil = pipe(**args, generator=gens(), output_type="pil").images
    finally:
        del pipe._get_add_time_ids, pipe.prepare_latents
    del rec2, rec3
    pngs = []
    for i, im in enumerate(pil):
        expect = (res.images[i] * 255).round().astype("uint8")
        assert np.array_equal(np.asarray(im), expect), f"{name}: PIL output is not round(np * 255)"
        fn = f"{name}.png" if len(pil) == 1 else f"{name}_{i}.png"
        im.save(out_dir / fn)
        pngs.append(fn)

    # What the UNet was fed: [negative, positive] along the batch with CFG.
    cfg = guidance > 1.0
    pe, ne, pooled, npooled = ref
    if cfg:
        assert torch.equal(first["prompt_embeds"], torch.cat([ne, pe])), name
        assert torch.equal(first["add_text_embeds"], torch.cat([npooled, pooled])), name
    else:
        assert torch.equal(first["prompt_embeds"], pe) and torch.equal(first["add_text_embeds"], pooled), name
    add_time_ids, add_neg_time_ids = time_ids_pair
    b = len(seeds)
    expect_ids = torch.cat([add_neg_time_ids.repeat(b, 1), add_time_ids.repeat(b, 1)]) if cfg else add_time_ids.repeat(b, 1)
    assert torch.equal(first["add_time_ids"], expect_ids), name

    tensors[f"{name}.latents"] = lat
    tensors[f"{name}.step_latents"] = torch.stack([x for _, x in rec.steps])
    tensors[f"{name}.start_latents"] = start
    tensors[f"{name}.add_text_embeds"] = first["add_text_embeds"]
    tensors[f"{name}.add_time_ids"] = first["add_time_ids"]
    if rec.add_noise_args is not None:
        orig, noise, lt2, noisy = rec.add_noise_args
        assert torch.equal(noisy, start) and torch.equal(lt2, lt), name
        tensors[f"{name}.init_latents"] = orig
        tensors[f"{name}.noise"] = noise
    else:
        assert not add_noise, name
        tensors[f"{name}.init_latents"] = start
    record = {
        "name": name,
        "scheduler": sched_name,
        "scheduler_class": cls.__name__,
        "scheduler_overrides": overrides,
        "scheduler_config": sched_config,
        "prompt": prompt,
        "prompt_2": None,
        "negative_prompt": negative,
        "negative_prompt_2": None,
        "negative_prompt_used": cfg,
        "negative_embeds_zeroed": cfg and negative is None and bool(pipe.config.force_zeros_for_empty_prompt),
        "prompt_embeds_group": embeds_group,
        "strength": i2i.STRENGTH,
        "num_inference_steps": i2i.STEPS,
        "guidance_scale": guidance,
        "denoising_start": denoising_start,
        "denoising_end": None,
        **{k: _tuple_json(v) for k, v in cond_kwargs.items()},
        "add_time_ids": tolist(add_time_ids[0]),
        "add_neg_time_ids": tolist(add_neg_time_ids[0]),
        "seeds": seeds,
        "generator": "torch.Generator('cpu').manual_seed(seed)" + (" per prompt (list)" if batch else ""),
        "all_timesteps": all_timesteps,
        "timesteps": [t for t, _ in rec.steps],
        "begin_index": begin_index,
        "add_noise": add_noise,
        "latent_timestep": tolist(lt) if add_noise else None,
        "output_png": pngs,
    }
    record.update(extra_record or {})
    return record


def _embeds(pipe, tensors, refs, group, prompt, negative, store=("prompt_embeds", "negative_prompt_embeds",
                                                                   "pooled_prompt_embeds", "negative_pooled_prompt_embeds")):
    """pipe.encode_prompt with CFG: (prompt_embeds, negative_prompt_embeds, pooled, negative_pooled); the names in
    `store` go to the tensors file as embeds.<group>.<name>."""
    out = pipe.encode_prompt(prompt, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=True,
                             negative_prompt=negative)
    refs[group] = tuple(x.clone() for x in out)
    names = ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds", "negative_pooled_prompt_embeds")
    for n, x in zip(names, out):
        if n in store:
            tensors[f"embeds.{group}.{n}"] = x
    return {"prompt": prompt, "negative_prompt": negative, "stored": [n for n in names if n in store]}


def _write_cases(out_dir, model, pipeline, tensors, embeds, cases, extra=None):
    save_tensors(out_dir / "img2img.safetensors", tensors)
    doc = {
        "model": model,
        "pipeline": pipeline,
        "device": "cpu",
        "dtype": "float32",
        "input_image": "input.png",
        "tensors_file": "img2img.safetensors",
        **(extra or {}),
        "prompt_embeds": embeds,
        "cases": cases,
    }
    dump_json(out_dir / "cases.json", doc)


@torch.no_grad()
def base_img2img(pipe, out_dir: Path) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    i2i.input_image().save(out_dir / "input.png")
    tensors, refs = {}, {}
    embeds = {
        "single": _embeds(pipe, tensors, refs, "single", i2i.PROMPT, i2i.NEGATIVE),
        "batch": _embeds(pipe, tensors, refs, "batch", i2i.BATCH_PROMPTS, i2i.BATCH_NEGATIVES),
        # Zeros are zeros: not stored (see the note).
        "zero_negative": _embeds(pipe, tensors, refs, "zero_negative", i2i.PROMPT, None, store=()),
    }
    pe, ne, pp, npp = refs["zero_negative"]
    assert not ne.any() and not npp.any() and ne.shape == pe.shape and npp.shape == pp.shape
    assert torch.equal(pe, refs["single"][0]) and torch.equal(pp, refs["single"][2])
    embeds["zero_negative"]["note"] = (
        "not stored: prompt_embeds and pooled_prompt_embeds = embeds.single.*; negative_prompt_embeds "
        "[1, 77, 72] and negative_pooled_prompt_embeds [1, 24] are zeros (force_zeros_for_empty_prompt)"
    )
    base_config = dict(pipe.scheduler.config)
    P, N, S = i2i.PROMPT, i2i.NEGATIVE, [i2i.SEED]
    cases = []

    def case(name, sched, g, prompt, negative, seeds, group="single", **k):
        cases.append(run_case(pipe, base_config, name, sched, g, prompt, negative, seeds, tensors, out_dir, group,
                              refs[group], **k))

    for s in ("ddim", "euler", "euler_a", "dpmpp2m_karras"):
        case(f"{s}_g7p5", s, 7.5, P, N, S)
    for s in ("ddim", "euler_a"):
        case(f"{s}_g1", s, 1.0, P, N, S)
    # negative_prompt=None with force_zeros_for_empty_prompt: the negative embeddings (and pooled) are zeros.
    case("euler_noneg_g7p5", "euler", 7.5, P, None, S, group="zero_negative")
    case("batch_euler_a_g7p5", "euler_a", 7.5, i2i.BATCH_PROMPTS, i2i.BATCH_NEGATIVES, i2i.BATCH_SEEDS, group="batch")
    case("ddim_sizes_g7p5", "ddim", 7.5, P, N, S,
         cond={"original_size": (128, 96), "target_size": (64, 64), "crops_coords_top_left": (4, 8)})
    case("dpmpp2m_karras_start0p5_g7p5", "dpmpp2m_karras", 7.5, P, N, S, denoising_start=0.5)
    # The rest of texaug's schedulers, after the cases above so their order stays.
    for s in ("dpmpp2m", "pndm"):
        case(f"{s}_g7p5", s, 7.5, P, N, S)
    _write_cases(out_dir, "sdxl-tiny", "StableDiffusionXLImg2ImgPipeline", tensors, embeds, cases)
    return len(cases)


@torch.no_grad()
def refiner_img2img(pipe, out_dir: Path) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    i2i.input_image().save(out_dir / "input.png")
    tensors, refs = {}, {}
    embeds = {"single": _embeds(pipe, tensors, refs, "single", i2i.PROMPT, i2i.NEGATIVE)}
    base_config = dict(pipe.scheduler.config)
    P, N, S, R = i2i.PROMPT, i2i.NEGATIVE, [i2i.SEED], refs["single"]
    cases = [
        run_case(pipe, base_config, "euler_g7p5", "euler", 7.5, P, N, S, tensors, out_dir, "single", R),
        run_case(pipe, base_config, "ddim_aesthetic_g7p5", "ddim", 7.5, P, N, S, tensors, out_dir, "single", R,
                 cond={"aesthetic_score": 7.0, "negative_aesthetic_score": 2.0}),
    ]
    _write_cases(out_dir, "sdxl-refiner-tiny", "StableDiffusionXLImg2ImgPipeline", tensors, embeds, cases)
    return len(cases)


@torch.no_grad()
def controlnet_img2img(base, controlnet, scheduler, out_dir: Path) -> int:
    from diffusers import StableDiffusionXLControlNetImg2ImgPipeline

    pipe = StableDiffusionXLControlNetImg2ImgPipeline(
        vae=base.vae,
        text_encoder=base.text_encoder,
        text_encoder_2=base.text_encoder_2,
        tokenizer=base.tokenizer,
        tokenizer_2=base.tokenizer_2,
        unet=base.unet,
        controlnet=controlnet,
        scheduler=scheduler,
        requires_aesthetics_score=False,
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    ).to("cpu", torch.float32)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.watermark is None
    out_dir.mkdir(parents=True, exist_ok=True)
    i2i.input_image().save(out_dir / "input.png")
    control_image().save(out_dir / "control.png")
    tensors, refs = {}, {}
    embeds = {"single": _embeds(pipe, tensors, refs, "single", i2i.PROMPT, i2i.NEGATIVE)}
    base_config = dict(pipe.scheduler.config)
    extra_args = {"control_image": control_image(), "controlnet_conditioning_scale": CONTROL_SCALE,
                  "guess_mode": False, "control_guidance_start": 0.0, "control_guidance_end": 1.0}
    extra_record = {"control_image": "control.png", "controlnet_conditioning_scale": CONTROL_SCALE,
                    "guess_mode": False, "control_guidance_start": 0.0, "control_guidance_end": 1.0}
    cases = []
    for s in ("ddim", "euler_a", "dpmpp2m_karras"):
        rec = run_case(pipe, base_config, f"{s}_g7p5", s, 7.5, i2i.PROMPT, i2i.NEGATIVE, [i2i.SEED], tensors,
                       out_dir, "single", refs["single"], extra_args=extra_args, extra_record=extra_record)
        del rec["denoising_start"], rec["denoising_end"]  # this pipeline has neither argument
        cases.append(rec)
    _write_cases(out_dir, "sdxl-tiny + controlnet-xl-tiny", "StableDiffusionXLControlNetImg2ImgPipeline", tensors,
                 embeds, cases, {"control_image": "control.png"})
    return len(cases)


@torch.no_grad()
def generate(out: Path) -> dict:
    from diffusers import ControlNetModel, EulerDiscreteScheduler

    dirs = save_models(out)
    base = load_sdxl(dirs["sdxl-tiny"])
    refiner = load_sdxl(dirs["sdxl-refiner-tiny"], refiner=True)
    cn = ControlNetModel.from_pretrained(str(dirs["controlnet-xl-tiny"])).eval()

    o = out / "outputs"
    t = base_components(base, cn, o / "sdxl-tiny" / "components.safetensors")
    components_json(t, o / "sdxl-tiny" / "components.json", "sdxl-tiny (+ controlnet-xl-tiny for controlnet.*)",
                    {"seed": f"torch.Generator('cpu').manual_seed({COMPONENT_SEED}): unet.sample, "
                             "unet.encoder_hidden_states, unet.text_embeds, vae.decode.latent, in that order"})
    t = refiner_components(refiner, o / "sdxl-refiner-tiny" / "components.safetensors")
    components_json(t, o / "sdxl-refiner-tiny" / "components.json", "sdxl-refiner-tiny",
                    {"seed": f"torch.Generator('cpu').manual_seed({COMPONENT_SEED + 1}): unet.sample, "
                             "unet.encoder_hidden_states, unet.text_embeds, in that order"})
    n = {
        "sdxl-tiny": base_img2img(base, o / "sdxl-tiny" / "img2img"),
        "sdxl-refiner-tiny": refiner_img2img(refiner, o / "sdxl-refiner-tiny" / "img2img"),
    }
    # base's scheduler was swapped by the cases: the ControlNet pipeline gets the model's own again.
    sched = EulerDiscreteScheduler.from_pretrained(str(dirs["sdxl-tiny"]), subfolder="scheduler")
    n["controlnet-xl-tiny"] = controlnet_img2img(base, cn, sched, o / "controlnet-xl-tiny" / "img2img")
    return {"cases": n}
