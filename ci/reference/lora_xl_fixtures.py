"""SDXL LoRA fixtures: seeded LoRAs for sdxl-tiny in the layouts SDXL LoRAs are shared in, and diffusers' SDXL
img2img images with each.

    kohya_sgm   kohya/A1111 keys as SDXL trainers write them: the UNet after SGM's blocks
                (`lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q`), the two text encoders as
                `lora_te1_` (CLIP ViT-L) and `lora_te2_` (OpenCLIP bigG), `.alpha` (scale alpha/rank)
    peft        diffusers/PEFT keys: `unet.<module>.lora_A/B`, `text_encoder_2.text_model.<module>.lora_A/B`

diffusers loads each (`StableDiffusionXLImg2ImgPipeline.lora_state_dict` with the UNet's config, which maps SGM
names to its own, then `load_lora_into_unet` and `load_lora_into_text_encoder` for both towers, as its
`load_lora_weights` does) and fuses it; `outputs/sdxl-tiny-lora/<name>/cases.json` holds its images.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from safetensors.torch import save_file

import img2img_fixtures as i2i
from common import dump_json
from single_file import unet_key

RANK = 4

# name: (format, alpha, towers adapted, lora_scale given to fuse_lora, seed)
LORAS = {
    "kohya_sgm": ("kohya", 2.0, ("unet", "text_encoder", "text_encoder_2"), 0.8, 41),
    "peft": ("peft", None, ("unet", "text_encoder_2"), 0.7, 42),
}


def targets(pipe, towers):
    """(component, module name, module) of every layer the LoRA adapts: UNet attention, projections and
    feed-forward; each text tower's attention projections and MLP."""
    out = []
    if "unet" in towers:
        for name, m in pipe.unet.named_modules():
            leaf = name.rsplit(".", 1)[-1]
            if isinstance(m, torch.nn.Linear) and (
                (".attn" in name and leaf in ("to_q", "to_k", "to_v", "0"))
                or leaf in ("proj_in", "proj_out")
                or ".ff.net." in name
            ):
                out.append(("unet", name, m))
    for comp in ("text_encoder", "text_encoder_2"):
        if comp in towers:
            for name, m in getattr(pipe, comp).named_modules():
                if isinstance(m, torch.nn.Linear) and (name.endswith("_proj") or ".mlp.fc" in name):
                    out.append((comp, name, m))
    return out


def _text_module(comp: str, name: str) -> str:
    # transformers 5 names CLIPTextModel's modules without `text_model.` (CLIPTextModelWithProjection keeps it);
    # kohya and PEFT files always carry it.
    return name if name.startswith("text_model.") else "text_model." + name


def make_lora(pipe, fmt, alpha, towers, seed) -> dict:
    g = torch.Generator("cpu").manual_seed(seed)
    unet_cfg = dict(pipe.unet.config)
    sd = {}
    for comp, name, m in targets(pipe, towers):
        out_c, in_c = m.weight.shape
        down = torch.randn((RANK, in_c), generator=g) / math.sqrt(in_c)
        up = torch.randn((out_c, RANK), generator=g) * 0.6 / math.sqrt(RANK)
        if fmt == "kohya":
            if comp == "unet":
                key = "lora_unet_" + unet_key(name + ".weight", unet_cfg).removesuffix(".weight").replace(".", "_")
            else:
                prefix = "lora_te1_" if comp == "text_encoder" else "lora_te2_"
                key = prefix + _text_module(comp, name).replace(".", "_")
            sd[f"{key}.lora_down.weight"] = down.contiguous()
            sd[f"{key}.lora_up.weight"] = up.contiguous()
            if alpha is not None:
                sd[f"{key}.alpha"] = torch.tensor(alpha)
        else:
            module = name if comp == "unet" else _text_module(comp, name)
            sd[f"{comp}.{module}.lora_A.weight"] = down.contiguous()
            sd[f"{comp}.{module}.lora_B.weight"] = up.contiguous()
    return sd


def load_lora(pipe, path: Path, adapter: str) -> None:
    """diffusers' SDXL `load_lora_weights`, step for step, with one adjustment: diffusers 0.36 names the first
    tower's targets `text_model.encoder.…` (transformers 4's module names), and transformers 5's CLIPTextModel
    names them `encoder.…`; the keys diffusers converted are renamed to the modules they name."""
    state_dict, alphas, metadata = pipe.lora_state_dict(
        str(path.parent), weight_name=path.name, unet_config=pipe.unet.config, return_lora_metadata=True
    )
    rename = lambda k: k.replace("text_encoder.text_model.", "text_encoder.")  # noqa: E731
    state_dict = {rename(k): v for k, v in state_dict.items()}
    alphas = {rename(k): v for k, v in alphas.items()} if alphas else alphas
    pipe.load_lora_into_unet(
        state_dict, network_alphas=alphas, unet=pipe.unet, adapter_name=adapter, metadata=metadata, _pipeline=pipe
    )
    for comp in ("text_encoder", "text_encoder_2"):
        pipe.load_lora_into_text_encoder(
            state_dict,
            network_alphas=alphas,
            text_encoder=getattr(pipe, comp),
            prefix=comp,
            lora_scale=pipe.lora_scale,
            adapter_name=adapter,
            metadata=metadata,
            _pipeline=pipe,
        )


@torch.no_grad()
def generate(out: Path) -> dict:
    import sdxl_fixtures

    report = {}
    lora_dir = out / "loras"
    lora_dir.mkdir(parents=True, exist_ok=True)
    for name, (fmt, alpha, towers, scale, seed) in LORAS.items():
        pipe = sdxl_fixtures.load_sdxl(out / "models" / "sdxl-tiny")
        comps = ("unet", "text_encoder", "text_encoder_2")
        before = {c: {k: v.clone() for k, v in getattr(pipe, c).state_dict().items()} for c in comps}
        path = lora_dir / f"sdxl-tiny-{name}.safetensors"
        sd = make_lora(pipe, fmt, alpha, towers, seed)
        save_file(sd, str(path))
        load_lora(pipe, path, name)
        pipe.fuse_lora(components=list(comps), lora_scale=scale)
        pipe.unload_lora_weights()
        # Every layer the LoRA names changed, and nothing else (a conversion that dropped keys would show here).
        counts = {}
        for c in comps:
            changed = sum(not torch.equal(before[c][k], v) for k, v in getattr(pipe, c).state_dict().items() if k in before[c])
            want = sum(1 for t, _, _ in targets(pipe, towers) if t == c)
            if changed != want:
                raise SystemExit(f"sdxl-tiny {name}: diffusers merged {changed} {c} weights, the LoRA has {want}")
            counts[c] = want
        case_dir = out / "outputs" / "sdxl-tiny-lora" / name
        case_dir.mkdir(parents=True, exist_ok=True)
        i2i.input_image().save(case_dir / "input.png")
        base_config = dict(pipe.scheduler.config)
        tensors, refs = {}, {}
        embeds = {"single": sdxl_fixtures._embeds(pipe, tensors, refs, "single", i2i.PROMPT, i2i.NEGATIVE)}
        cases = [
            sdxl_fixtures.run_case(pipe, base_config, f"{s}_g7p5", s, 7.5, i2i.PROMPT, i2i.NEGATIVE, [i2i.SEED],
                                   tensors, case_dir, "single", refs["single"])
            for s in ("ddim", "euler_a")
        ]
        sdxl_fixtures._write_cases(
            case_dir, "sdxl-tiny", "StableDiffusionXLImg2ImgPipeline", tensors, embeds, cases,
            {
                "lora": f"loras/sdxl-tiny-{name}.safetensors",
                "lora_format": fmt,
                "lora_scale": scale,
                "lora_alpha": alpha,
                "lora_rank": RANK,
                "merged_by": "diffusers lora_state_dict(unet_config) + load_lora_into_unet/text_encoder(×2) + "
                "fuse_lora(components=[unet, text_encoder, text_encoder_2])",
            },
        )
        report[name] = {**counts, "tensors": len(sd)}
    return report
