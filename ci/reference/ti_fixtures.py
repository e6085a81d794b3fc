"""Textual-inversion fixtures: two seeded embeddings for sd1-tiny and diffusers' img2img images with both loaded.

    sd1-tiny-mug-style.safetensors   diffusers format (`learned_embeds`): one tensor named `<mug-style>`, 2 vectors
    sd1-tiny-bad-style.safetensors   A1111 format: `emb_params`, 3 vectors, loaded with token="<bad-style>"

diffusers loads both (`load_textual_inversion`), then runs the cases of `outputs/sd1-tiny-ti/img2img/cases.json`
with the tokens in the prompt and the negative prompt. Rust tests load the same files and must give those images.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from common import dump_json
from img2img_fixtures import SEED, input_image, run_case

PROMPT = "a photo of a <mug-style> mug on a table"
NEGATIVE = "<bad-style>, blurry"


@torch.no_grad()
def generate(out: Path, load_pipeline) -> dict:
    pipe = load_pipeline(out / "models" / "sd1-tiny")
    dim = pipe.text_encoder.config.hidden_size
    g = torch.Generator("cpu").manual_seed(77)
    emb_dir = out / "embeddings"
    emb_dir.mkdir(parents=True, exist_ok=True)
    mug = emb_dir / "sd1-tiny-mug-style.safetensors"
    bad = emb_dir / "sd1-tiny-bad-style.safetensors"
    save_file({"<mug-style>": torch.randn((2, dim), generator=g) * 0.5}, str(mug))
    save_file({"emb_params": torch.randn((3, dim), generator=g) * 0.5}, str(bad))
    vocab = len(pipe.tokenizer)
    pipe.load_textual_inversion(str(emb_dir), weight_name=mug.name)
    pipe.load_textual_inversion(str(emb_dir), weight_name=bad.name, token="<bad-style>")
    added = len(pipe.tokenizer) - vocab
    if added != 5:
        raise SystemExit(f"diffusers added {added} tokens, expected 5")
    case_dir = out / "outputs" / "sd1-tiny-ti" / "img2img"
    case_dir.mkdir(parents=True, exist_ok=True)
    input_image().save(case_dir / "input.png")
    base_config = dict(pipe.scheduler.config)
    tensors = {}
    ids = pipe.tokenizer(pipe.maybe_convert_prompt(PROMPT, pipe.tokenizer)).input_ids
    cases = [
        run_case(pipe, base_config, "ddim_g7p5", "ddim", 7.5, PROMPT, NEGATIVE, [SEED], tensors, case_dir),
        run_case(pipe, base_config, "euler_a_g7p5", "euler_a", 7.5, PROMPT, NEGATIVE, [SEED], tensors, case_dir),
    ]
    dump_json(
        case_dir / "cases.json",
        {
            "model": "sd1-tiny",
            "embeddings": [
                {"path": f"embeddings/{mug.name}", "token": None},
                {"path": f"embeddings/{bad.name}", "token": "<bad-style>"},
            ],
            "prompt_ids": ids,
            "loaded_by": "diffusers load_textual_inversion",
            "pipeline": "StableDiffusionImg2ImgPipeline",
            "input_image": "input.png",
            "cases": cases,
        },
    )
    return {"tokens_added": added, "cases": len(cases)}
