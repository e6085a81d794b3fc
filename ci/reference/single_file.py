"""Single-file (original LDM / CompVis layout) checkpoints of the tiny models, verified by diffusers.

For each tiny diffusers pipeline this writes the *recipe* of its single-file checkpoint, not the checkpoint itself
(the fixtures stay small): every LDM key with the diffusers tensors it is made of and how (as is, a linear weight
unsqueezed to a 1x1 conv, q/k/v concatenated into OpenCLIP's `in_proj`), its shape and the SHA-256 of its float32
bytes. The checkpoint assembled from that recipe is first loaded back by diffusers' own
`from_single_file(..., config=<the tiny folder>)`, and every weight of every component must come back bit for bit;
the script fails otherwise. Rust tests assemble the same file from the same recipe (checking each tensor's digest),
load it with texaug's single-file loader and must give diffusers' images for that model.

The mapping below is texaug's own inverse of the LDM -> diffusers conversion (written from the layout, not copied);
diffusers is the judge of it.

    python ci/reference/single_file.py --fixtures tests/fixtures          # writes tests/fixtures/single_file/*.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

# The tiny models and how their text encoders are stored in a single file: SD 1's CLIP under
# `cond_stage_model.transformer.`, SD 2's OpenCLIP under `cond_stage_model.model.`, and SDXL's SGM layout
# (`xl`: CLIP ViT-L under `conditioner.embedders.0.transformer.`, OpenCLIP bigG under `conditioner.embedders.1.model.`;
# `xl-refiner`: bigG alone under `conditioner.embedders.0.model.`).
MODELS = {
    "sd1-tiny": "clip",
    "sd2-tiny": "openclip",
    "sd2-depth-tiny": "openclip",
    "sd1-inpaint-tiny": "clip",
    "sdxl-tiny": "xl",
    "sdxl-refiner-tiny": "xl-refiner",
}

RESNET_RENAMES = [
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("time_emb_proj", "emb_layers.1"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("conv_shortcut", "skip_connection"),
]


def _resnet(rest: str) -> str:
    head, _, tail = rest.partition(".")
    for new, old in RESNET_RENAMES:
        if head == new:
            return f"{old}.{tail}"
    raise KeyError(rest)


def unet_key(name: str, cfg: dict) -> str:
    """diffusers UNet2DConditionModel key -> `model.diffusion_model.` key."""
    per = cfg["layers_per_block"]
    n = len(cfg["down_block_types"])
    layers = [per] * n if isinstance(per, int) else list(per)
    p = name.split(".")
    simple = {
        "time_embedding.linear_1": "time_embed.0",
        "time_embedding.linear_2": "time_embed.2",
        "conv_in": "input_blocks.0.0",
        "conv_norm_out": "out.0",
        "conv_out": "out.2",
        # SDXL's text_time embedding (SGM's `label_emb`: Sequential(Linear, SiLU, Linear)).
        "add_embedding.linear_1": "label_emb.0.0",
        "add_embedding.linear_2": "label_emb.0.2",
    }
    head2 = ".".join(p[:2])
    if head2 in simple:
        return f"{simple[head2]}.{'.'.join(p[2:])}"
    if p[0] in simple:
        return f"{simple[p[0]]}.{'.'.join(p[1:])}"
    if p[0] == "down_blocks":
        b, kind, i, rest = int(p[1]), p[2], int(p[3]), ".".join(p[4:])
        start = 1 + sum(layers[k] + 1 for k in range(b))
        if kind == "resnets":
            return f"input_blocks.{start + i}.0.{_resnet(rest)}"
        if kind == "attentions":
            return f"input_blocks.{start + i}.1.{rest}"
        if kind == "downsamplers":
            return f"input_blocks.{start + layers[b]}.0.op.{'.'.join(p[5:])}"
    if p[0] == "mid_block":
        kind, i, rest = p[1], int(p[2]), ".".join(p[3:])
        if kind == "resnets":
            return f"middle_block.{2 * i}.{_resnet(rest)}"
        return f"middle_block.1.{rest}"
    if p[0] == "up_blocks":
        rev = list(reversed(layers))
        b, kind, i, rest = int(p[1]), p[2], int(p[3]), ".".join(p[4:])
        start = sum(rev[k] + 1 for k in range(b))
        if kind == "resnets":
            return f"output_blocks.{start + i}.0.{_resnet(rest)}"
        if kind == "attentions":
            return f"output_blocks.{start + i}.1.{rest}"
        if kind == "upsamplers":
            has_attn = cfg["up_block_types"][b].startswith("CrossAttn")
            return f"output_blocks.{start + rev[b]}.{2 if has_attn else 1}.conv.{'.'.join(p[5:])}"
    raise KeyError(name)


VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def vae_key(name: str, cfg: dict) -> tuple[str, bool]:
    """diffusers AutoencoderKL key -> (`first_stage_model.` key, whether a linear weight becomes a 1x1 conv)."""
    n = len(cfg["up_block_types"])
    p = name.split(".")
    side = p[0]
    if side in ("quant_conv", "post_quant_conv"):
        return name, False
    rest = p[1:]
    if rest[0] == "conv_norm_out":
        return f"{side}.norm_out.{rest[1]}", False
    if rest[0] in ("conv_in", "conv_out"):
        return name, False
    if rest[0] == "mid_block":
        if rest[1] == "resnets":
            tail = ".".join(rest[3:]).replace("conv_shortcut", "nin_shortcut")
            return f"{side}.mid.block_{int(rest[2]) + 1}.{tail}", False
        inner = ".".join(rest[3:-1])
        squeeze = inner != "group_norm" and rest[-1] == "weight"
        return f"{side}.mid.attn_1.{VAE_ATTN[inner]}.{rest[-1]}", squeeze
    if rest[0] in ("down_blocks", "up_blocks"):
        i = int(rest[1])
        ldm_i, block = (i, "down") if rest[0] == "down_blocks" else (n - 1 - i, "up")
        if rest[2] == "resnets":
            tail = ".".join(rest[4:]).replace("conv_shortcut", "nin_shortcut")
            return f"{side}.{block}.{ldm_i}.block.{rest[3]}.{tail}", False
        sampler = "downsample" if block == "down" else "upsample"
        return f"{side}.{block}.{ldm_i}.{sampler}.conv.{rest[-1]}", False
    raise KeyError(name)


OPENCLIP_LAYER = {
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
    "self_attn.out_proj": "attn.out_proj",
}


def _open_clip_entries(pre: str, comp: str, names: list[str]) -> list[dict]:
    """open_clip's keys under `pre` for a transformers CLIPTextModel[WithProjection] saved as `comp`."""
    entries = []
    for name in names:
        # transformers 5 saves CLIPTextModel without `text_model.`, CLIPTextModelWithProjection with it
        inner = name.removeprefix("text_model.")
        prefix = name[: len(name) - len(inner)]
        p = inner.split(".")
        if inner == "embeddings.token_embedding.weight":
            entries.append(dict(key=pre + "token_embedding.weight", op="same", src=[f"{comp}:{name}"]))
        elif inner == "embeddings.position_embedding.weight":
            entries.append(dict(key=pre + "positional_embedding", op="same", src=[f"{comp}:{name}"]))
        elif p[0] == "final_layer_norm":
            entries.append(dict(key=pre + f"ln_final.{p[1]}", op="same", src=[f"{comp}:{name}"]))
        elif name == "text_projection.weight":
            # open_clip multiplies x @ text_projection: the Linear's weight transposed
            entries.append(dict(key=pre + "text_projection", op="transpose", src=[f"{comp}:{name}"]))
        elif p[:2] == ["encoder", "layers"]:
            i, module, leaf = p[2], ".".join(p[3:-1]), p[-1]
            block = pre + f"transformer.resblocks.{i}."
            if module == "self_attn.q_proj":
                src = [f"{comp}:{prefix}encoder.layers.{i}.self_attn.{x}_proj.{leaf}" for x in "qkv"]
                entries.append(dict(key=block + f"attn.in_proj_{leaf}", op="cat", src=src))
            elif module in ("self_attn.k_proj", "self_attn.v_proj"):
                continue
            else:
                entries.append(dict(key=block + f"{OPENCLIP_LAYER[module]}.{leaf}", op="same", src=[f"{comp}:{name}"]))
        else:
            raise KeyError(name)
    return entries


def _clip_entries(pre: str, comp: str, names: list[str]) -> list[dict]:
    return [dict(key=pre + "text_model." + n.removeprefix("text_model."), op="same", src=[f"{comp}:{n}"]) for n in names]


def build_recipe(model_dir: Path, text_kind: str) -> list[dict]:
    """The single file's entries: LDM key, op, diffusers sources (as `component:key`)."""
    entries = []
    unet_cfg = json.loads((model_dir / "unet/config.json").read_text())
    vae_cfg = json.loads((model_dir / "vae/config.json").read_text())
    for name in sorted(load_file(model_dir / "unet/diffusion_pytorch_model.safetensors")):
        entries.append(dict(key="model.diffusion_model." + unet_key(name, unet_cfg), op="same", src=[f"unet:{name}"]))
    for name in sorted(load_file(model_dir / "vae/diffusion_pytorch_model.safetensors")):
        key, squeeze = vae_key(name, vae_cfg)
        entries.append(dict(key="first_stage_model." + key, op="unsqueeze" if squeeze else "same", src=[f"vae:{name}"]))
    te = lambda comp: sorted(load_file(model_dir / comp / "model.safetensors"))  # noqa: E731
    if text_kind == "clip":
        entries += _clip_entries("cond_stage_model.transformer.", "text_encoder", te("text_encoder"))
    elif text_kind == "openclip":
        pre = "cond_stage_model.model."
        entries += _open_clip_entries(pre, "text_encoder", te("text_encoder"))
        # As in SD 2's real checkpoints: one more block than the config's layers (the penultimate-layer trick
        # drops it) and the text projection, neither used by the UNet's conditioning.
        last = json.loads((model_dir / "text_encoder/config.json").read_text())["num_hidden_layers"]
        for e in [e for e in entries if ".resblocks.0." in e["key"]]:
            entries.append(dict(e, key=e["key"].replace(".resblocks.0.", f".resblocks.{last}.")))
        entries.append(dict(key=pre + "text_projection", op="same", src=["text_encoder:encoder.layers.0.self_attn.out_proj.weight"]))
    elif text_kind == "xl":
        entries += _clip_entries("conditioner.embedders.0.transformer.", "text_encoder", te("text_encoder"))
        entries += _open_clip_entries("conditioner.embedders.1.model.", "text_encoder_2", te("text_encoder_2"))
    elif text_kind == "xl-refiner":
        entries += _open_clip_entries("conditioner.embedders.0.model.", "text_encoder_2", te("text_encoder_2"))
    else:
        raise ValueError(text_kind)
    entries.sort(key=lambda e: e["key"])
    return entries


def assemble(model_dir: Path, entries: list[dict]) -> dict[str, torch.Tensor]:
    files = {
        c: load_file(model_dir / c / f)
        for c, f in (
            ("unet", "diffusion_pytorch_model.safetensors"),
            ("vae", "diffusion_pytorch_model.safetensors"),
            ("text_encoder", "model.safetensors"),
            ("text_encoder_2", "model.safetensors"),
        )
        if (model_dir / c / f).is_file()
    }
    out = {}
    for e in entries:
        srcs = [files[c][k] for c, k in (s.split(":", 1) for s in e["src"])]
        if e["op"] == "same":
            t = srcs[0]
        elif e["op"] == "unsqueeze":
            t = srcs[0][:, :, None, None]
        elif e["op"] == "transpose":
            t = srcs[0].T
        else:
            t = torch.cat(srcs, dim=0)
        out[e["key"]] = t.to(torch.float32).contiguous().clone()
    return out


def verify(model_dir: Path, ckpt: Path, text_kind: str) -> int:
    """diffusers loads the single file back to exactly the folder's weights; returns the tensors compared.

    The UNet and VAE go through the models' own `from_single_file`. The pipeline-level `from_single_file` of
    diffusers 0.36 cannot build a transformers-5 `CLIPTextModel` (it reads `model.text_model`, which transformers
    5 no longer has), so the text encoder is checked with the conversion function that loader calls.
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders import single_file_utils as sfu

    compared = 0

    def same(what: str, got: dict, want: dict, extras_ok=lambda k: False) -> int:
        missing = sorted(set(want) - set(got))
        extra = sorted(k for k in set(got) - set(want) if not extras_ok(k))
        if missing or extra:
            raise SystemExit(f"{model_dir.name} {what}: missing {missing[:5]}, unexpected {extra[:5]}")
        for k, v in want.items():
            if not torch.equal(got[k].float(), v.float()):
                raise SystemExit(f"{model_dir.name} {what}.{k}: the single file converts to other values")
        return len(want)

    for comp, cls in (("unet", UNet2DConditionModel), ("vae", AutoencoderKL)):
        sf = cls.from_single_file(str(ckpt), config=str(model_dir), subfolder=comp, local_files_only=True)
        ref = cls.from_pretrained(str(model_dir), subfolder=comp)
        compared += same(comp, sf.state_dict(), ref.state_dict())

    checkpoint = load_file(str(ckpt))
    if text_kind in ("clip", "openclip"):
        want = load_file(str(model_dir / "text_encoder/model.safetensors"))
        if text_kind == "clip":
            assert sfu.is_clip_model(checkpoint)
            converted = sfu.convert_ldm_clip_checkpoint(checkpoint)
        else:
            assert sfu.is_open_clip_model(checkpoint)
            converted = sfu.convert_open_clip_checkpoint(None, checkpoint)
        # transformers 5 names CLIPTextModel's tensors without the `text_model.` prefix.
        converted = {k.removeprefix("text_model."): v for k, v in converted.items()}
        layers = json.loads((model_dir / "text_encoder/config.json").read_text())["num_hidden_layers"]
        # Dropped as diffusers drops them (load_state_dict(strict=False)): the block past the config's layers and
        # the projection CLIPTextModel does not have.
        dropped = lambda k: k.startswith(f"encoder.layers.{layers}.") or k == "text_projection.weight"  # noqa: E731
        return compared + same("text_encoder", converted, want, dropped)
    # SDXL: each tower converts back with the function diffusers' SDXL loader calls. (Its model-type detection
    # looks for `resblocks.9`, which three-layer tiny towers lack; texaug tells SDXL by the prefixes.)
    if text_kind == "xl":
        te1 = sfu.convert_ldm_clip_checkpoint(checkpoint, remove_prefix="conditioner.embedders.0.transformer.")
        te1 = {k.removeprefix("text_model."): v for k, v in te1.items()}
        compared += same("text_encoder", te1, load_file(str(model_dir / "text_encoder/model.safetensors")))
        prefix = "conditioner.embedders.1.model."
    else:
        prefix = "conditioner.embedders.0.model."
    te2 = sfu.convert_open_clip_checkpoint(None, checkpoint, prefix=prefix)
    compared += same("text_encoder_2", te2, load_file(str(model_dir / "text_encoder_2/model.safetensors")))
    return compared


def generate(fixtures: Path) -> dict:
    out_dir = fixtures / "single_file"
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {}
    for model, text_kind in MODELS.items():
        model_dir = fixtures / "models" / model
        entries = build_recipe(model_dir, text_kind)
        tensors = assemble(model_dir, entries)
        for e in entries:
            t = tensors[e["key"]]
            e["shape"] = list(t.shape)
            e["sha256"] = hashlib.sha256(t.numpy().tobytes()).hexdigest()
        with tempfile.TemporaryDirectory() as td:
            ckpt = Path(td) / f"{model}.safetensors"
            save_file(tensors, str(ckpt))
            compared = verify(model_dir, ckpt, text_kind)
        doc = {
            "about": f"recipe of {model}'s single-file (LDM) checkpoint; see ci/reference/single_file.py",
            "model": model,
            "text_encoder": text_kind,
            "checked_by": f"diffusers {__import__('diffusers').__version__}: UNet2DConditionModel and AutoencoderKL "
            f".from_single_file, {text_kind} conversion; {compared} tensors equal",
            "entries": entries,
        }
        # One line per entry: small, and a diff shows which keys changed.
        head = json.dumps({k: v for k, v in doc.items() if k != "entries"}, indent=1)[:-2]
        body = ",\n".join(json.dumps(e, separators=(",", ":")) for e in entries)
        (out_dir / f"{model}.json").write_text(f'{head},\n "entries": [\n{body}\n]}}\n')
        report[model] = compared
    return report


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", required=True, type=Path)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    print(generate(args.fixtures))
