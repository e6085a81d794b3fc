"""Full-size reference check (not run in CI): real SD 1.5 / SD 2.1 / SDXL architectures with random weights.

    python ci/reference/fullsize.py --out /data/texaug-fullsize            # all, ~22 GB on disk
    python ci/reference/fullsize.py --out DIR --only sd15
    python ci/reference/fullsize.py --out DIR --only sdxl                   # SDXL's UNet and OpenCLIP bigG, 13 GB

For each variant it writes, under DIR/<variant>/, a diffusers-layout pipeline whose unet/vae/text_encoder
`config.json` files are the published ones (sparse: missing keys take diffusers' defaults, exactly the
situation a loader meets with the real checkpoints), seeded random weights, and `reference.safetensors`
with one text-encoder pass, one UNet step and a VAE round trip computed by diffusers from the saved files.
It also writes `single_file.safetensors`, the same weights in the original (LDM) single-file layout, which
diffusers' from_single_file must load back exactly. texaug's ignored tests read DIR from env TEXAUG_FULLSIZE_DIR.
See tests/fixtures/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from common import find_bpe_gz, read_merges, save_tensors, set_determinism, write_bpe_files  # noqa: E402
from components import image_tensor  # noqa: E402
from tiny_models import SD1_SCHEDULER, SD2_SCHEDULER, randomize  # noqa: E402

DOWN = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
UP = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]

# runwayml/stable-diffusion-v1-5 (unet/vae/text_encoder config.json, minus bookkeeping keys).
SD15 = {
    "unet": {
        "_class_name": "UNet2DConditionModel",
        "act_fn": "silu",
        "attention_head_dim": 8,
        "block_out_channels": [320, 640, 1280, 1280],
        "center_input_sample": False,
        "cross_attention_dim": 768,
        "down_block_types": DOWN,
        "downsample_padding": 1,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "in_channels": 4,
        "layers_per_block": 2,
        "mid_block_scale_factor": 1,
        "norm_eps": 1e-05,
        "norm_num_groups": 32,
        "out_channels": 4,
        "sample_size": 64,
        "up_block_types": UP,
    },
    "vae": {
        "_class_name": "AutoencoderKL",
        "act_fn": "silu",
        "block_out_channels": [128, 256, 512, 512],
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "in_channels": 3,
        "latent_channels": 4,
        "layers_per_block": 2,
        "norm_num_groups": 32,
        "out_channels": 3,
        "sample_size": 512,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
    },
    "text_encoder": {
        "architectures": ["CLIPTextModel"],
        "attention_dropout": 0.0,
        "bos_token_id": 0,
        "dropout": 0.0,
        "eos_token_id": 2,
        "hidden_act": "quick_gelu",
        "hidden_size": 768,
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "intermediate_size": 3072,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": 77,
        "model_type": "clip_text_model",
        "num_attention_heads": 12,
        "num_hidden_layers": 12,
        "pad_token_id": 1,
        "projection_dim": 768,
        "torch_dtype": "float32",
        "vocab_size": 49408,
    },
    "scheduler": SD1_SCHEDULER,
    "pad_token": "<|endoftext|>",
}

# stabilityai/stable-diffusion-2-1 (768-v): head counts per block, linear projections, upcast attention,
# and the OpenCLIP-H text encoder with 23 of its 24 layers (the penultimate layer baked into the config).
SD21 = {
    "unet": {
        "_class_name": "UNet2DConditionModel",
        "act_fn": "silu",
        "attention_head_dim": [5, 10, 20, 20],
        "block_out_channels": [320, 640, 1280, 1280],
        "center_input_sample": False,
        "cross_attention_dim": 1024,
        "down_block_types": DOWN,
        "downsample_padding": 1,
        "dual_cross_attention": False,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "in_channels": 4,
        "layers_per_block": 2,
        "mid_block_scale_factor": 1,
        "norm_eps": 1e-05,
        "norm_num_groups": 32,
        "num_class_embeds": None,
        "only_cross_attention": False,
        "out_channels": 4,
        "sample_size": 96,
        "up_block_types": UP,
        "upcast_attention": True,
        "use_linear_projection": True,
    },
    "vae": dict(SD15["vae"], sample_size=768),
    "text_encoder": {
        "architectures": ["CLIPTextModel"],
        "attention_dropout": 0.0,
        "bos_token_id": 0,
        "dropout": 0.0,
        "eos_token_id": 2,
        "hidden_act": "gelu",
        "hidden_size": 1024,
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "intermediate_size": 4096,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": 77,
        "model_type": "clip_text_model",
        "num_attention_heads": 16,
        "num_hidden_layers": 23,
        "pad_token_id": 1,
        "projection_dim": 512,
        "torch_dtype": "float32",
        "vocab_size": 49408,
    },
    "scheduler": SD2_SCHEDULER,
    "pad_token": "!",
}

VARIANTS = {"sd15": (SD15, 15000), "sd21": (SD21, 21000)}
SDXL_SEED = 30000
# stabilityai/stable-diffusion-xl-base-1.0's unet/config.json and text_encoder_2/config.json as published.
SDXL_UNET = {
    "_class_name": "UNet2DConditionModel",
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256,
    "attention_head_dim": [5, 10, 20],
    "block_out_channels": [320, 640, 1280],
    "center_input_sample": False,
    "class_embed_type": None,
    "class_embeddings_concat": False,
    "conv_in_kernel": 3,
    "conv_out_kernel": 3,
    "cross_attention_dim": 2048,
    "cross_attention_norm": None,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "downsample_padding": 1,
    "dual_cross_attention": False,
    "encoder_hid_dim": None,
    "encoder_hid_dim_type": None,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_only_cross_attention": None,
    "mid_block_scale_factor": 1,
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "num_attention_heads": None,
    "num_class_embeds": None,
    "only_cross_attention": False,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816,
    "resnet_out_scale_factor": 1.0,
    "resnet_skip_time_act": False,
    "resnet_time_scale_shift": "default",
    "sample_size": 128,
    "time_cond_proj_dim": None,
    "time_embedding_act_fn": None,
    "time_embedding_dim": None,
    "time_embedding_type": "positional",
    "timestep_post_act": None,
    "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "upcast_attention": None,
    "use_linear_projection": True,
}
SDXL_TEXT_ENCODER_2 = {
    "architectures": ["CLIPTextModelWithProjection"],
    "attention_dropout": 0.0,
    "bos_token_id": 0,
    "dropout": 0.0,
    "eos_token_id": 2,
    "hidden_act": "gelu",
    "hidden_size": 1280,
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
    "intermediate_size": 5120,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77,
    "model_type": "clip_text_model",
    "num_attention_heads": 20,
    "num_hidden_layers": 32,
    "pad_token_id": 1,
    "projection_dim": 1280,
    "torch_dtype": "float16",
    "vocab_size": 49408,
}
PROMPTS = ["a photograph of an astronaut riding a horse", ""]
VAE_SIZE = 128
LATENT = 16  # UNet input [2, 4, 16, 16]: four resolution levels 16 -> 8 -> 4 -> 2


def write_config(path: Path, cfg: dict, version_key: str, version: str) -> None:
    cfg = dict(cfg)
    if "_class_name" in cfg:
        cfg = {"_class_name": cfg.pop("_class_name"), version_key: version, **cfg}
    else:
        cfg[version_key] = version
    path.write_text(json.dumps(cfg, indent=2) + "\n")


@torch.no_grad()
def build_variant(root: Path, name: str) -> None:
    import diffusers
    import transformers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    spec, seed = VARIANTS[name]
    dst = root / name
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    dv = ("_diffusers_version", diffusers.__version__)

    def strip(cfg):
        return {k: v for k, v in cfg.items() if k != "_class_name"}

    print(f"{name}: building text encoder", flush=True)
    te_cfg = {k: v for k, v in spec["text_encoder"].items() if k not in ("architectures", "model_type", "torch_dtype")}
    te = CLIPTextModel(CLIPTextConfig(**te_cfg)).eval()
    randomize(te, seed + 1)
    te.save_pretrained(str(dst / "text_encoder"), safe_serialization=True)
    write_config(dst / "text_encoder" / "config.json", spec["text_encoder"], "transformers_version", transformers.__version__)
    del te

    print(f"{name}: building unet", flush=True)
    unet = UNet2DConditionModel(**strip(spec["unet"])).eval()
    randomize(unet, seed + 2)
    unet.save_pretrained(str(dst / "unet"), safe_serialization=True)
    write_config(dst / "unet" / "config.json", spec["unet"], *dv)
    del unet

    print(f"{name}: building vae", flush=True)
    vae = AutoencoderKL(**strip(spec["vae"])).eval()
    randomize(vae, seed + 3)
    vae.save_pretrained(str(dst / "vae"), safe_serialization=True)
    write_config(dst / "vae" / "config.json", spec["vae"], *dv)
    del vae

    (dst / "scheduler").mkdir()
    write_config(dst / "scheduler" / "scheduler_config.json", spec["scheduler"], *dv)
    tok_dir = dst / "tokenizer"
    v, m = write_bpe_files(tok_dir, read_merges(find_bpe_gz()))
    tok = CLIPTokenizer(vocab=str(v), merges=str(m), pad_token=spec["pad_token"], model_max_length=77)
    tok.save_pretrained(str(tok_dir))
    index = {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": diffusers.__version__,
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", spec["scheduler"]["_class_name"]],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (dst / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")

    # Reference outputs from the files as saved (sparse configs included), not from the objects above.
    print(f"{name}: reference outputs", flush=True)
    tok = CLIPTokenizer.from_pretrained(str(tok_dir))
    te = CLIPTextModel.from_pretrained(str(dst / "text_encoder")).eval()
    unet = UNet2DConditionModel.from_pretrained(str(dst / "unet")).eval()
    vae = AutoencoderKL.from_pretrained(str(dst / "vae")).eval()
    g = torch.Generator("cpu").manual_seed(seed)
    t = {}
    ids = tok(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    t["text_encoder.input_ids"] = ids
    t["text_encoder.last_hidden_state"] = te(ids)[0]
    sample = torch.randn((2, 4, LATENT, LATENT), generator=g)
    t["unet.sample"] = sample
    t["unet.timestep"] = torch.tensor(500, dtype=torch.int64)
    t["unet.encoder_hidden_states"] = t["text_encoder.last_hidden_state"]
    t["unet.out"] = unet(sample, 500, encoder_hidden_states=t["text_encoder.last_hidden_state"]).sample
    img = torch.nn.functional.interpolate(image_tensor(), size=(VAE_SIZE, VAE_SIZE), mode="bilinear", align_corners=False)
    t["vae.encode.image"] = img
    dist = vae.encode(img).latent_dist
    t["vae.encode.mean"] = dist.mean
    t["vae.encode.logvar"] = dist.logvar
    t["vae.decode.image"] = vae.decode(dist.mean).sample
    save_tensors(dst / "reference.safetensors", t)
    for k, x in t.items():
        if x.dtype.is_floating_point:
            print(f"  {k:34s} {list(x.shape)} std {x.std():.4f}", flush=True)


@torch.no_grad()
def build_sdxl(root: Path) -> None:
    """SDXL base's UNet (2.6 B parameters) and OpenCLIP bigG text encoder with projection, published configs,
    seeded random weights; reference: bigG's penultimate states and text_embeds, one UNet step with text_time
    conditioning. (CLIP ViT-L and the VAE are SD 1.5's, checked by the sd15 variant.)"""
    import diffusers
    import transformers
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer

    dst = root / "sdxl"
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    dv = ("_diffusers_version", diffusers.__version__)
    print("sdxl: building text_encoder_2", flush=True)
    te_cfg = {k: v for k, v in SDXL_TEXT_ENCODER_2.items() if k not in ("architectures", "model_type", "torch_dtype")}
    te = CLIPTextModelWithProjection(CLIPTextConfig(**te_cfg)).eval()
    randomize(te, SDXL_SEED + 1)
    te.save_pretrained(str(dst / "text_encoder_2"), safe_serialization=True)
    write_config(dst / "text_encoder_2" / "config.json", SDXL_TEXT_ENCODER_2, "transformers_version", transformers.__version__)
    del te
    print("sdxl: building unet", flush=True)
    unet = UNet2DConditionModel(**{k: v for k, v in SDXL_UNET.items() if k != "_class_name"}).eval()
    randomize(unet, SDXL_SEED + 2)
    unet.save_pretrained(str(dst / "unet"), safe_serialization=True)
    write_config(dst / "unet" / "config.json", SDXL_UNET, *dv)
    del unet
    tok_dir = dst / "tokenizer_2"
    v, m = write_bpe_files(tok_dir, read_merges(find_bpe_gz()))
    CLIPTokenizer(vocab=str(v), merges=str(m), pad_token="!", model_max_length=77).save_pretrained(str(tok_dir))

    print("sdxl: reference outputs", flush=True)
    tok = CLIPTokenizer.from_pretrained(str(tok_dir))
    te = CLIPTextModelWithProjection.from_pretrained(str(dst / "text_encoder_2")).eval()
    t = {}
    ids = tok(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    out = te(ids, output_hidden_states=True)
    t["text_encoder_2.input_ids"] = ids
    t["text_encoder_2.hidden_states_penultimate"] = out.hidden_states[-2]
    t["text_encoder_2.text_embeds"] = out.text_embeds
    # A random 32-layer tower is ill-conditioned: float32 rounding alone moves its output by ~1e-3 (relative
    # L2). The float64 run says how far float32 may be: texaug's error against it must be transformers' own.
    out64 = te.double()(ids, output_hidden_states=True)
    t["text_encoder_2.hidden_states_penultimate.f64"] = out64.hidden_states[-2]
    t["text_encoder_2.text_embeds.f64"] = out64.text_embeds
    del te, out, out64
    unet = UNet2DConditionModel.from_pretrained(str(dst / "unet")).eval()
    g = torch.Generator("cpu").manual_seed(SDXL_SEED)
    sample = torch.randn((1, 4, LATENT, LATENT), generator=g)
    ehs = torch.randn((1, 77, 2048), generator=g)
    text_embeds = torch.randn((1, 1280), generator=g)
    time_ids = torch.tensor([[1024.0, 1024.0, 0.0, 0.0, 1024.0, 1024.0]])
    t["unet.sample"] = sample
    t["unet.timestep"] = torch.tensor(500, dtype=torch.int64)
    t["unet.encoder_hidden_states"] = ehs
    t["unet.text_embeds"] = text_embeds
    t["unet.time_ids"] = time_ids
    cond = {"text_embeds": text_embeds, "time_ids": time_ids}
    t["unet.out"] = unet(sample, 500, encoder_hidden_states=ehs, added_cond_kwargs=cond).sample
    save_tensors(dst / "reference.safetensors", t)
    for k, x in t.items():
        if x.dtype.is_floating_point:
            print(f"  {k:42s} {list(x.shape)} std {x.std():.4f}", flush=True)


def write_single_file(root: Path, name: str) -> None:
    """The variant as one single-file checkpoint in the original layout, verified by diffusers (see
    single_file.py): texaug's ignored test loads it with its built-in published configs."""
    import single_file

    dst = root / name
    text_kind = "clip" if name == "sd15" else "openclip"
    print(f"{name}: single file", flush=True)
    entries = single_file.build_recipe(dst, text_kind)
    ckpt = dst / "single_file.safetensors"
    from safetensors.torch import save_file

    tensors = single_file.assemble(dst, entries)
    save_file(tensors, str(ckpt))
    del tensors
    print(f"  {single_file.verify(dst, ckpt, text_kind)} tensors load back through diffusers", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="output directory (large: ~9 GB for both variants)")
    ap.add_argument("--only", default="sd15,sd21,sdxl", help="comma-separated subset of sd15,sd21,sdxl")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n]
    for n in names:
        if n not in [*VARIANTS, "sdxl"]:
            ap.error(f"unknown variant {n!r}; choose from {[*VARIANTS, 'sdxl']}")
    set_determinism()
    torch.set_num_threads(int(os.environ.get("TEXAUG_FULLSIZE_THREADS", "1")))
    for n in names:
        if n == "sdxl":
            build_sdxl(args.out)
            continue
        build_variant(args.out, n)
        write_single_file(args.out, n)


if __name__ == "__main__":
    main()
