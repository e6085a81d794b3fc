"""Reference fixtures for texaug's CLIP scorer (stages/src/score), with transformers' CLIPModel as the ground truth.

    cargo build --release -p texaug-pipeline      # the script runs `texaug model init-tiny --kind clip`
    $HOME/.cache/texaug/reference/bin/python ci/reference/clip_score.py --out stages/tests/fixtures/clip
    ... --check     # regenerate into a temporary folder and fail unless it matches --out byte for byte

Writes (see README.md there):
  model/                  a small CLIPModel (vocabulary 1000: CLIP's first 486 merges) saved by transformers'
                          save_pretrained, with its vocab.json, merges.txt and preprocessor_config.json
  picture.png             a 70x53 picture, preprocessed by CLIPImageProcessor (PIL backend)
  prompts.json            the prompts, seeds and versions
  expected.safetensors    inputs and transformers' outputs (float32, CPU):
    pixel_values          [2, 3, 32, 32]: the picture as CLIPImageProcessor makes it, then seeded noise
    input_ids             [P, 77] the prompts by CLIPTokenizer from model/'s vocab.json + merges.txt
    image_embeds          [2, 16], text_embeds [P, 16]: CLIPModel's normalised embeddings of the small model
    picture_cosine        [P] cos(picture, prompt) of the small model from the reference pixel values
    tiny_input_ids        [P, 77] the prompts by CLIPTokenizer with CLIP's full vocabulary (49408)
    tiny_image_embeds     [2, 16], tiny_text_embeds [P, 16]: the same for `texaug model init-tiny --kind clip
                          --seed 0`, loaded by CLIPModel.from_pretrained (proving its layout is transformers')

Deterministic: one thread, deterministic kernels, seeded generators; re-running gives the same bytes.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import dump_json, find_bpe_gz, fixture_image, read_merges, save_tensors, set_determinism, write_bpe_files  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
MODEL_SEED = 4242
NOISE_SEED = 77
TINY_SEED = 0
# 512 byte tokens + 486 merges + 2 specials: a 1000-row embedding table keeps the committed model small.
SMALL_MERGES = 486
IMAGE_SIZE = 32
PROMPTS = [
    "a photo of a cat",
    "A wooden CHAIR, highly detailed; 8k!",
    "café crème brûlée",
    "",
]
SIZE_BUDGET = 300_000  # bytes, everything under --out


def small_config():
    from transformers import CLIPConfig

    text = dict(
        vocab_size=512 + SMALL_MERGES + 2, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=16,
        # The current ids (the end token found by value, not as the largest id); the tiny model has the legacy ones.
        bos_token_id=998, eos_token_id=999, pad_token_id=1,
    )
    vision = dict(
        hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=IMAGE_SIZE,
        patch_size=8, hidden_act="quick_gelu", projection_dim=16,
    )
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)


def tokenizer(vocab: Path, merges: Path):
    from transformers import CLIPTokenizer

    return CLIPTokenizer(vocab=str(vocab), merges=str(merges), pad_token="<|endoftext|>")


def encode(tok, prompts: list[str]):
    import torch

    ids = tok(prompts, padding="max_length", max_length=77, truncation=True).input_ids
    return torch.tensor(ids, dtype=torch.int64)


def embeds(model, pixel_values, input_ids):
    import torch

    with torch.no_grad():
        out = model(input_ids=input_ids, pixel_values=pixel_values)
    return out.image_embeds, out.text_embeds


def make_small_model(dir_: Path, merges: list[str]):
    import torch
    from transformers import CLIPImageProcessorPil, CLIPModel

    torch.manual_seed(MODEL_SEED)
    model = CLIPModel(small_config()).eval()
    # transformers' init leaves layer norms at 1/0 and biases at 0; perturb everything so every parameter matters.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(str(dir_), safe_serialization=True)
    write_bpe_files(dir_, merges[:SMALL_MERGES])
    processor = CLIPImageProcessorPil(size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    processor.save_pretrained(str(dir_))
    return CLIPModel.from_pretrained(str(dir_)).eval(), processor


def init_tiny(texaug: Path, out: Path) -> None:
    if not texaug.is_file():
        raise SystemExit(f"{texaug} does not exist: build it first with `cargo build --release -p texaug-pipeline`")
    env = dict(os.environ, TEXAUG_CLIP_VOCAB=str(find_bpe_gz()))
    subprocess.run(
        [str(texaug), "model", "init-tiny", "--kind", "clip", "--out", str(out), "--seed", str(TINY_SEED)],
        check=True, env=env,
    )


def generate(out: Path, texaug: Path) -> None:
    import numpy as np
    import torch
    import transformers
    from PIL import Image
    from transformers import CLIPModel

    set_determinism()
    out.mkdir(parents=True, exist_ok=True)
    merges = read_merges(find_bpe_gz())
    model, processor = make_small_model(out / "model", merges)

    picture = fixture_image(72)[:53, :70]  # 70 wide, 53 high: both sides resized, the long one cropped
    Image.fromarray(picture).save(out / "picture.png")
    picture = Image.open(out / "picture.png").convert("RGB")
    picture_pixels = processor(picture, return_tensors="pt")["pixel_values"].to(torch.float32)
    gen = torch.Generator().manual_seed(NOISE_SEED)
    noise = torch.randn((1, 3, IMAGE_SIZE, IMAGE_SIZE), generator=gen)
    pixel_values = torch.cat([picture_pixels, noise], 0)

    small_ids = encode(tokenizer(out / "model" / "vocab.json", out / "model" / "merges.txt"), PROMPTS)
    assert int(small_ids.max()) < 512 + SMALL_MERGES + 2
    image_embeds, text_embeds = embeds(model, pixel_values, small_ids)
    picture_cosine = (image_embeds[:1] * text_embeds).sum(-1)

    with tempfile.TemporaryDirectory() as td:
        full_vocab, full_merges = write_bpe_files(Path(td) / "tok", merges)
        tiny_ids = encode(tokenizer(full_vocab, full_merges), PROMPTS)
        tiny_dir = Path(td) / "tiny"
        init_tiny(texaug, tiny_dir)
        tiny, info = CLIPModel.from_pretrained(str(tiny_dir), output_loading_info=True)
        bad = {k: v for k, v in info.items() if v}
        if bad:
            raise SystemExit(f"transformers does not load `texaug model init-tiny --kind clip` cleanly: {bad}")
        tiny_image, tiny_text = embeds(tiny.eval(), pixel_values, tiny_ids)

    save_tensors(
        out / "expected.safetensors",
        {
            "pixel_values": pixel_values,
            "input_ids": small_ids,
            "image_embeds": image_embeds,
            "text_embeds": text_embeds,
            "picture_cosine": picture_cosine,
            "tiny_input_ids": tiny_ids,
            "tiny_image_embeds": tiny_image,
            "tiny_text_embeds": tiny_text,
        },
    )
    dump_json(
        out / "prompts.json",
        {
            "prompts": PROMPTS,
            "model_seed": MODEL_SEED,
            "noise_seed": NOISE_SEED,
            "init_tiny_seed": TINY_SEED,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "numpy": np.__version__,
        },
    )


def compare(fresh: Path, committed: Path) -> list[str]:
    def files(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}

    a, b = files(fresh), files(committed) - {"README.md"}
    return sorted(a ^ b) + sorted(p for p in a & b if not filecmp.cmp(fresh / p, committed / p, shallow=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="fixture folder, normally stages/tests/fixtures/clip")
    ap.add_argument("--texaug", type=Path, default=REPO / "target" / "release" / "texaug", help="the texaug binary")
    ap.add_argument("--check", action="store_true", help="fail unless a fresh generation matches --out byte for byte")
    args = ap.parse_args()
    if args.check:
        with tempfile.TemporaryDirectory() as td:
            generate(Path(td), args.texaug)
            bad = compare(Path(td), args.out)
        if bad:
            sys.exit(f"{args.out} differs from a fresh generation: {bad}; regenerate with "
                     f"`python ci/reference/clip_score.py --out {args.out}`")
        print(f"{args.out}: identical to a fresh generation")
        return
    generate(args.out, args.texaug)
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"total size of {args.out}: {total} bytes")
    if total > SIZE_BUDGET:
        sys.exit(f"fixtures are {total} bytes, over the {SIZE_BUDGET} byte budget: shrink the model")


if __name__ == "__main__":
    main()
