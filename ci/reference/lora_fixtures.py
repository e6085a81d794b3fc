"""LoRA fixtures: seeded LoRAs for sd1-tiny in the formats users hold, and diffusers' img2img images with each.

    kohya_alpha     kohya/A1111 keys (`lora_unet_*`, `lora_te_*`, `.lora_down/.lora_up`), `.alpha` (scale alpha/rank),
                    attention, projection, feed-forward and text-encoder layers, and LoCon 3x3 convolutions
    kohya_no_alpha  the same layout without `.alpha` (scale 1), UNet attention and text encoder only
    peft            diffusers/PEFT keys (`unet.<module>.lora_A.weight` / `lora_B.weight`), UNet only
    diffusers_saved a PEFT adapter saved by diffusers' `save_lora_weights`, its config (lora_alpha 8, rank 4) in
                    the file's metadata

Each is loaded by diffusers itself (`load_lora_weights`, then `fuse_lora(lora_scale=...)`) into sd1-tiny, and the
img2img cases of `outputs/sd1-tiny-lora/<name>/cases.json` are its images, in the layout of the other img2img
fixtures. Rust tests load the same file into texaug and must give those images.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from safetensors.torch import save_file

from common import dump_json
from img2img_fixtures import NEGATIVE, PROMPT, SEED, input_image, run_case

RANK = 4

# name: (format, alpha, which modules, lora_scale given to fuse_lora, seed)
LORAS = {
    "kohya_alpha": ("kohya", 2.0, ("attn", "proj", "ff", "conv", "te"), 0.8, 31),
    "kohya_no_alpha": ("kohya", None, ("attn", "te"), 1.0, 32),
    "peft": ("peft", None, ("attn", "proj", "ff"), 0.7, 33),
    # Written by diffusers' own `save_lora_weights` from a PEFT adapter (lora_alpha 8 at rank 4: scale 2), with
    # the adapter config in the file's metadata, as diffusers' training scripts save them.
    "diffusers_saved": ("saved", None, ("attn",), 0.9, 34),
}


def targets(pipe, groups):
    """(component, module name, module) of the layers a LoRA of these groups adapts."""
    out = []
    for name, m in pipe.unet.named_modules():
        is_linear = isinstance(m, torch.nn.Linear)
        is_conv = isinstance(m, torch.nn.Conv2d)
        leaf = name.rsplit(".", 1)[-1]
        if "attn" in groups and is_linear and ".attn" in name and leaf in ("to_q", "to_k", "to_v", "0"):
            out.append(("unet", name, m))
        elif "proj" in groups and leaf in ("proj_in", "proj_out") and (is_linear or is_conv):
            out.append(("unet", name, m))
        elif "ff" in groups and is_linear and ".ff.net." in name:
            out.append(("unet", name, m))
        elif "conv" in groups and is_conv and m.kernel_size == (3, 3) and ".resnets." in name and leaf == "conv1":
            out.append(("unet", name, m))
    if "te" in groups:
        for name, m in pipe.text_encoder.named_modules():
            if isinstance(m, torch.nn.Linear) and (name.endswith("_proj") or ".mlp.fc" in name):
                out.append(("text_encoder", name, m))
    return out


def make_lora(pipe, fmt, alpha, groups, seed) -> dict:
    g = torch.Generator("cpu").manual_seed(seed)
    sd = {}
    for comp, name, m in targets(pipe, groups):
        if isinstance(m, torch.nn.Conv2d):
            out_c, in_c, kh, kw = m.weight.shape
            down = torch.randn((RANK, in_c, kh, kw), generator=g) / math.sqrt(in_c * kh * kw)
            up = torch.randn((out_c, RANK, 1, 1), generator=g) * 0.6 / math.sqrt(RANK)
        else:
            out_c, in_c = m.weight.shape
            down = torch.randn((RANK, in_c), generator=g) / math.sqrt(in_c)
            up = torch.randn((out_c, RANK), generator=g) * 0.6 / math.sqrt(RANK)
        if fmt == "kohya":
            # transformers 5 names CLIPTextModel's modules without `text_model.`; kohya files always carry it.
            module = ("text_model." + name) if comp == "text_encoder" else name
            key = ("lora_te_" if comp == "text_encoder" else "lora_unet_") + module.replace(".", "_")
            sd[f"{key}.lora_down.weight"] = down.contiguous()
            sd[f"{key}.lora_up.weight"] = up.contiguous()
            if alpha is not None:
                sd[f"{key}.alpha"] = torch.tensor(alpha)
        else:
            sd[f"{comp}.{name}.lora_A.weight"] = down.contiguous()
            sd[f"{comp}.{name}.lora_B.weight"] = up.contiguous()
    return sd


def save_with_diffusers(pipe, path: Path, seed: int) -> dict:
    """A PEFT adapter on the UNet's attention (random A and B, lora_alpha 8, rank 4), saved by diffusers."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    cfg = LoraConfig(r=RANK, lora_alpha=8, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False)
    pipe.unet.add_adapter(cfg)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet))
    StableDiffusionPipeline.save_lora_weights(
        str(path.parent),
        unet_lora_layers=layers,
        # Sets (target_modules) sorted: diffusers writes them in hash order, which changes from run to run.
        unet_lora_adapter_metadata={k: sorted(v) if isinstance(v, set) else v for k, v in cfg.to_dict().items()},
        weight_name=path.name,
        safe_serialization=True,
    )
    rewrite_in_fixed_order(path)
    return layers


def rewrite_in_fixed_order(path: Path) -> None:
    """The same file with its header's keys in a fixed order: safetensors writes metadata from a hash map, so two
    saves of one adapter differ in bytes, and the fixtures must not."""
    import json
    import struct

    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        metadata = f.metadata() or {}
        tensors = {k: f.get_tensor(k).contiguous() for k in sorted(f.keys())}
    dtypes = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
    header, data, offset = {"__metadata__": dict(sorted(metadata.items()))}, b"", 0
    for name, t in tensors.items():
        raw = t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        data += raw
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + data)


def load_lora(pipe, path: Path, adapter: str) -> None:
    """diffusers' `load_lora_weights`, step for step, with one adjustment: diffusers 0.36 names text-encoder LoRA
    targets `text_model.encoder.…` (transformers 4's module names), and transformers 5's CLIPTextModel names them
    `encoder.…`, so its conversion finds no layer. The keys diffusers converted are renamed to the modules they
    name; every conversion, scale and merge is still diffusers'."""
    state_dict, alphas, metadata = pipe.lora_state_dict(
        str(path.parent), weight_name=path.name, return_lora_metadata=True
    )
    rename = lambda k: k.replace("text_encoder.text_model.", "text_encoder.")  # noqa: E731
    state_dict = {rename(k): v for k, v in state_dict.items()}
    alphas = {rename(k): v for k, v in alphas.items()} if alphas else alphas
    pipe.load_lora_into_unet(
        state_dict, network_alphas=alphas, unet=pipe.unet, adapter_name=adapter, metadata=metadata, _pipeline=pipe
    )
    pipe.load_lora_into_text_encoder(
        state_dict,
        network_alphas=alphas,
        text_encoder=pipe.text_encoder,
        lora_scale=pipe.lora_scale,
        adapter_name=adapter,
        _pipeline=pipe,
        metadata=metadata,
    )


@torch.no_grad()
def generate(out: Path, load_pipeline) -> dict:
    report = {}
    lora_dir = out / "loras"
    lora_dir.mkdir(parents=True, exist_ok=True)
    for name, (fmt, alpha, groups, scale, seed) in LORAS.items():
        pipe = load_pipeline(out / "models" / "sd1-tiny")
        before = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
        te_before = {k: v.clone() for k, v in pipe.text_encoder.state_dict().items()}
        path = lora_dir / f"sd1-tiny-{name}.safetensors"
        if fmt == "saved":
            sd = save_with_diffusers(load_pipeline(out / "models" / "sd1-tiny"), path, seed)
        else:
            sd = make_lora(pipe, fmt, alpha, groups, seed)
            save_file(sd, str(path))
        load_lora(pipe, path, name)
        pipe.fuse_lora(components=["unet", "text_encoder"], lora_scale=scale)
        pipe.unload_lora_weights()
        # The LoRA changed the networks it names (a conversion that dropped keys would show here).
        changed = sum(not torch.equal(before[k], v) for k, v in pipe.unet.state_dict().items() if k in before)
        te_changed = sum(
            not torch.equal(te_before[k], v) for k, v in pipe.text_encoder.state_dict().items() if k in te_before
        )
        n_unet = sum(1 for c, _, _ in targets(pipe, groups) if c == "unet")
        n_te = sum(1 for c, _, _ in targets(pipe, groups) if c == "text_encoder")
        if changed != n_unet or te_changed != n_te:
            raise SystemExit(
                f"{name}: diffusers merged {changed} UNet / {te_changed} text-encoder weights, "
                f"the LoRA has {n_unet} / {n_te}"
            )
        case_dir = out / "outputs" / "sd1-tiny-lora" / name
        case_dir.mkdir(parents=True, exist_ok=True)
        input_image().save(case_dir / "input.png")
        base_config = dict(pipe.scheduler.config)
        tensors = {}
        cases = [
            run_case(pipe, base_config, "ddim_g7p5", "ddim", 7.5, PROMPT, NEGATIVE, [SEED], tensors, case_dir),
            run_case(pipe, base_config, "euler_a_g7p5", "euler_a", 7.5, PROMPT, NEGATIVE, [SEED], tensors, case_dir),
        ]
        dump_json(
            case_dir / "cases.json",
            {
                "model": "sd1-tiny",
                "lora": f"loras/sd1-tiny-{name}.safetensors",
                "lora_format": fmt,
                "lora_scale": scale,
                "lora_alpha": alpha,
                "lora_rank": RANK,
                "merged_by": "diffusers load_lora_weights + fuse_lora(components=[unet, text_encoder])",
                "pipeline": "StableDiffusionImg2ImgPipeline",
                "input_image": "input.png",
                "cases": cases,
            },
        )
        report[name] = {"unet_layers": n_unet, "text_encoder_layers": n_te, "tensors": len(sd)}
    return report
