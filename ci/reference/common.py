"""Shared helpers for the texaug reference-fixture generator.

Everything here exists to make the fixtures reproducible byte for byte: fixed thread count,
deterministic kernels, seeded generators, sorted JSON keys and stable float formatting.
"""

from __future__ import annotations

import gzip
import json
import os
import zipfile
from pathlib import Path

import numpy as np

# Lines 1..48894 of the BPE file are the merges CLIP uses (line 0 is a header); this is the
# 49152 - 256 - 2 slice of OpenAI's SimpleTokenizer.
CLIP_NUM_MERGES = 49152 - 256 - 2


def set_determinism() -> None:
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    np.random.seed(0)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP byte -> printable unicode table (order matters: it defines ids 0..255)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def find_bpe_gz() -> Path:
    """The real CLIP BPE file: $TEXAUG_CLIP_VOCAB, or extracted from the cached open_clip wheel."""
    env = os.environ.get("TEXAUG_CLIP_VOCAB")
    if env:
        return Path(env)
    cache = Path("/root/.cache/texaug")
    target = cache / "bpe_simple_vocab_16e6.txt.gz"
    if target.exists():
        return target
    wheels = sorted((cache / "dl").glob("open_clip_torch-*.whl"))
    if not wheels:
        raise SystemExit(
            "CLIP BPE vocabulary not found: set TEXAUG_CLIP_VOCAB to bpe_simple_vocab_16e6.txt.gz "
            "(it ships inside the open_clip_torch wheel as open_clip/bpe_simple_vocab_16e6.txt.gz)"
        )
    with zipfile.ZipFile(wheels[-1]) as z:
        target.write_bytes(z.read("open_clip/bpe_simple_vocab_16e6.txt.gz"))
    return target


def read_merges(gz_path: Path, num_merges: int = CLIP_NUM_MERGES) -> list[str]:
    lines = gzip.open(gz_path).read().decode("utf-8").split("\n")
    merges = lines[1 : num_merges + 1]
    assert len(merges) == num_merges, (len(merges), num_merges)
    return merges


def build_vocab(merges: list[str]) -> dict[str, int]:
    """vocab.json exactly as openai/clip-vit-large-patch14 has it (for the full merge list)."""
    units = list(bytes_to_unicode().values())
    tokens = units + [u + "</w>" for u in units]
    tokens += ["".join(m.split(" ")) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}


def write_bpe_files(dir_: Path, merges: list[str]) -> tuple[Path, Path]:
    dir_.mkdir(parents=True, exist_ok=True)
    vocab = build_vocab(merges)
    vocab_path = dir_ / "vocab.json"
    merges_path = dir_ / "merges.txt"
    vocab_path.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges_path.write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return vocab_path, merges_path


def dump_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False, sort_keys=False, allow_nan=False) + "\n", encoding="utf-8")


def tolist(t) -> list:
    """Tensor -> nested python list; float32 values become the doubles they exactly are."""
    import torch

    if isinstance(t, torch.Tensor):
        t = t.detach().cpu()
        if t.dtype.is_floating_point:
            t = t.to(torch.float32)
        return t.tolist()
    return list(t)


def save_tensors(path: Path, tensors: dict, metadata: dict[str, str] | None = None) -> None:
    import torch
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    clean = {}
    for k, v in tensors.items():
        v = v.detach().cpu().contiguous().clone()  # aliases (same storage) cannot be saved twice
        if v.dtype.is_floating_point:
            v = v.to(torch.float32)
        clean[k] = v
    # Sorted keys: safetensors orders the header itself, but sorting makes insertion order irrelevant.
    save_file(dict(sorted(clean.items())), str(path), metadata=metadata)


def fixture_image(size: int = 64) -> np.ndarray:
    """A structured RGB test picture (uint8 [size, size, 3]): sky gradient, sun, ground, checker block.

    Deliberately not noise: smooth regions, hard edges and saturated colours exercise the VAE the way
    real photos do, and a mistaken channel order or flip is visible at a glance.
    """
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) / (size - 1)
    img = np.zeros((size, size, 3), dtype=np.float64)
    # sky: vertical blue gradient
    img[..., 0] = 0.35 + 0.3 * y
    img[..., 1] = 0.55 + 0.25 * y
    img[..., 2] = 0.95 - 0.2 * y
    # sun: yellow disc top-right
    sun = (x - 0.75) ** 2 + (y - 0.22) ** 2 < 0.12**2
    img[sun] = [1.0, 0.85, 0.2]
    # ground: green band with a sine horizon
    ground = y > 0.62 + 0.06 * np.sin(6.0 * x)
    img[ground, 0] = 0.2 + 0.2 * x[ground]
    img[ground, 1] = 0.55 - 0.25 * y[ground]
    img[ground, 2] = 0.15
    # red/white checker block bottom-left (hard edges)
    block = (x > 0.1) & (x < 0.4) & (y > 0.45) & (y < 0.85)
    checker = ((np.floor(x * 16) + np.floor(y * 16)) % 2) == 0
    img[block & checker] = [0.9, 0.1, 0.1]
    img[block & ~checker] = [0.97, 0.97, 0.97]
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
