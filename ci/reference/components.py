"""Component fixtures: one forward pass of each tiny model on fixed seeded inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from common import fixture_image, save_tensors

COMPONENT_PROMPTS = ["a photo of a cat, 3.14 & 1,000 🐱", ""]
UNET_TIMESTEPS = (500, 37)


def image_tensor() -> torch.Tensor:
    """The fixture picture as the pipelines feed it to the VAE: [1, 3, 64, 64] in [-1, 1]."""
    arr = fixture_image(64).astype(np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0) * 2.0 - 1.0


@torch.no_grad()
def generate(pipe, out_file: Path, seed: int) -> dict:
    g = torch.Generator("cpu").manual_seed(seed)
    t = {}
    ids = pipe.tokenizer(
        COMPONENT_PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt"
    ).input_ids
    t["text_encoder.input_ids"] = ids.to(torch.int64)
    t["text_encoder.last_hidden_state"] = pipe.text_encoder(ids)[0]

    in_ch = pipe.unet.config.in_channels
    sample = torch.randn((2, in_ch, 8, 8), generator=g)
    ehs = torch.randn((2, 77, 32), generator=g)
    t["unet.sample"] = sample
    t["unet.encoder_hidden_states"] = ehs
    for ts in UNET_TIMESTEPS:
        t[f"unet.timestep_{ts}"] = torch.tensor(ts, dtype=torch.int64)
        t[f"unet.out_t{ts}"] = pipe.unet(sample, ts, encoder_hidden_states=ehs).sample
    # Real text embeddings into the UNet too: the pair the pipeline actually feeds.
    t["unet.out_t500_text"] = pipe.unet(sample, 500, encoder_hidden_states=t["text_encoder.last_hidden_state"]).sample

    img = image_tensor()
    t["vae.encode.image"] = img
    dist = pipe.vae.encode(img).latent_dist
    t["vae.encode.mean"] = dist.mean
    t["vae.encode.logvar"] = dist.logvar
    latent = torch.randn((1, 4, 8, 8), generator=g)
    t["vae.decode.latent"] = latent
    t["vae.decode.image"] = pipe.vae.decode(latent).sample
    # Decoding the encoder's mean: a round trip through both halves.
    t["vae.roundtrip.image"] = pipe.vae.decode(dist.mean).sample
    save_tensors(out_file, t)
    return {k: list(v.shape) for k, v in t.items()}


def stats(out_file: Path) -> None:
    from safetensors.torch import load_file

    for k, v in sorted(load_file(str(out_file)).items()):
        if v.dtype.is_floating_point:
            print(f"{k:40s} {list(v.shape)} mean {v.mean():+.3f} std {v.std():.3f} min {v.min():+.3f} max {v.max():+.3f}")
