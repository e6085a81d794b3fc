"""Scheduler fixtures: schedules, scalings and step() outputs of diffusers' schedulers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from common import dump_json, save_tensors, tolist

SAMPLE_SHAPE = (1, 4, 3, 3)
FULL_STEPS = 20
IMG2IMG_STEPS = 10
IMG2IMG_STRENGTH = 0.6
SCHEDULE_ONLY_STEPS = (1, 7, 50)
EULER_A_SEED = 1234

BASE = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
)


def cls_of(kind: str):
    import diffusers as d

    return {
        "ddim": d.DDIMScheduler,
        "euler": d.EulerDiscreteScheduler,
        "euler_a": d.EulerAncestralDiscreteScheduler,
        "dpmpp2m": d.DPMSolverMultistepScheduler,
        "pndm": d.PNDMScheduler,
    }[kind]


def kind_defaults(kind: str) -> dict:
    if kind == "ddim":
        return dict(clip_sample=False, set_alpha_to_one=False)
    if kind == "pndm":
        return dict(skip_prk_steps=True, set_alpha_to_one=False)
    if kind == "dpmpp2m":
        return dict(algorithm_type="dpmsolver++", solver_order=2)
    return {}


# (kind, timestep_spacing, steps_offset, prediction_type, extra overrides)
CASES = [
    ("ddim", "leading", 1, "epsilon", {}),
    ("ddim", "leading", 1, "v_prediction", {}),
    ("ddim", "trailing", 0, "v_prediction", {}),
    ("ddim", "linspace", 0, "epsilon", {}),
    ("ddim", "leading", 0, "epsilon", {"set_alpha_to_one": True}),
    ("euler", "linspace", 1, "epsilon", {}),
    ("euler", "leading", 1, "epsilon", {}),
    ("euler", "trailing", 0, "v_prediction", {}),
    ("euler", "linspace", 1, "v_prediction", {}),
    ("euler", "leading", 1, "epsilon", {"use_karras_sigmas": True}),
    ("euler_a", "linspace", 1, "epsilon", {}),
    ("euler_a", "leading", 1, "epsilon", {}),
    ("euler_a", "trailing", 0, "v_prediction", {}),
    ("dpmpp2m", "linspace", 1, "epsilon", {}),
    ("dpmpp2m", "leading", 1, "epsilon", {}),
    ("dpmpp2m", "trailing", 0, "v_prediction", {}),
    ("dpmpp2m", "linspace", 0, "v_prediction", {}),
    ("dpmpp2m", "linspace", 1, "epsilon", {"use_karras_sigmas": True}),
    ("dpmpp2m", "leading", 1, "v_prediction", {"use_karras_sigmas": True}),
    ("dpmpp2m", "trailing", 0, "epsilon", {"use_karras_sigmas": True}),
    ("pndm", "leading", 1, "epsilon", {}),
    ("pndm", "leading", 0, "v_prediction", {}),
    ("pndm", "trailing", 0, "epsilon", {}),
    ("pndm", "linspace", 1, "v_prediction", {}),
]


def case_name(kind, spacing, offset, pred, extra) -> str:
    name = f"{kind}_{spacing}_off{offset}_{'eps' if pred == 'epsilon' else 'v'}"
    if extra.get("use_karras_sigmas"):
        name = name.replace(kind, kind + "_karras", 1)
    if extra.get("set_alpha_to_one"):
        name += "_alpha1"
    return name


def fake_model(scaled: torch.Tensor, t) -> torch.Tensor:
    """Deterministic stand-in for the UNet: 0.1 * input + sin(t / 100), all in float32."""
    tt = torch.as_tensor(t, dtype=torch.float32)
    return 0.1 * scaled + torch.sin(tt / 100.0)


def clean_config(cfg) -> dict:
    out = {}
    for k, v in dict(cfg).items():
        if k in ("_diffusers_version", "_use_default_values"):
            continue
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(v, float) and not math.isfinite(v):
            # JSON has no infinities (Python would write the invalid token -Infinity): use a string.
            v = "inf" if v > 0 else ("-inf" if v < 0 else "nan")
        out[k] = v
    json.dumps(out, allow_nan=False)
    return out


def sigmas_of(s):
    return tolist(s.sigmas) if hasattr(s, "sigmas") and isinstance(s.sigmas, torch.Tensor) else None


def scalar(x) -> float:
    return float(torch.as_tensor(x, dtype=torch.float32))


def t_value(t):
    """Timesteps are int64 for most schedulers and float32 for some (Euler with linspace)."""
    t = torch.as_tensor(t)
    return float(t) if t.dtype.is_floating_point else int(t)


def run_loop(s, timesteps, sample, kind, tensors, prefix):
    gen = shadow = None
    if kind == "euler_a":
        gen = torch.Generator("cpu").manual_seed(EULER_A_SEED)
        shadow = torch.Generator("cpu").manual_seed(EULER_A_SEED)
    factors, mos, prevs, x0s, noises = [], [], [], [], []
    for t in timesteps:
        scaled = s.scale_model_input(sample, t)
        # Every scheduler's input scaling is one scalar per step; read it off a tensor of ones
        # (a second call does not advance any scheduler state).
        factors.append(scalar(s.scale_model_input(torch.ones(()), t)))
        mo = fake_model(scaled, t)
        kw = {"generator": gen} if gen is not None else {}
        out = s.step(mo, t, sample, **kw)
        if shadow is not None:
            noises.append(torch.randn(mo.shape, generator=shadow, dtype=mo.dtype))
        mos.append(mo)
        prevs.append(out.prev_sample)
        if getattr(out, "pred_original_sample", None) is not None:
            x0s.append(out.pred_original_sample)
        sample = out.prev_sample
    tensors[f"{prefix}.model_output"] = torch.stack(mos)
    tensors[f"{prefix}.prev_sample"] = torch.stack(prevs)
    if x0s:
        tensors[f"{prefix}.pred_original_sample"] = torch.stack(x0s)
    if noises:
        tensors[f"{prefix}.step_noise"] = torch.stack(noises)
    return factors


def one_case(spec, tensors) -> dict:
    kind, spacing, offset, pred, extra = spec
    name = case_name(*spec)
    cfg = dict(BASE, **kind_defaults(kind), timestep_spacing=spacing, steps_offset=offset, prediction_type=pred)
    cfg.update(extra)
    cls = cls_of(kind)
    g = torch.Generator("cpu").manual_seed(sum(map(ord, name)))

    # Full denoising run from pure noise, as txt2img does.
    s = cls(**cfg)
    s.set_timesteps(FULL_STEPS)
    full = {
        "num_inference_steps": FULL_STEPS,
        "timesteps": [t_value(t) for t in s.timesteps],
        "sigmas": sigmas_of(s),
        "init_noise_sigma": scalar(s.init_noise_sigma),
        "order": s.order,
    }
    start = torch.randn(SAMPLE_SHAPE, generator=g) * s.init_noise_sigma
    tensors[f"{name}.full.start"] = start
    full["scale_factors"] = run_loop(s, s.timesteps, start, kind, tensors, f"{name}.full")

    # img2img: the pipeline's get_timesteps + set_begin_index + add_noise, then the same loop.
    s = cls(**cfg)
    s.set_timesteps(IMG2IMG_STEPS)
    init_timestep = min(int(IMG2IMG_STEPS * IMG2IMG_STRENGTH), IMG2IMG_STEPS)
    t_start = max(IMG2IMG_STEPS - init_timestep, 0)
    timesteps = s.timesteps[t_start * s.order :]
    begin_index = None
    if hasattr(s, "set_begin_index"):
        begin_index = t_start * s.order
        s.set_begin_index(begin_index)
    latent_timestep = timesteps[:1]
    original = torch.randn(SAMPLE_SHAPE, generator=g)
    noise = torch.randn(SAMPLE_SHAPE, generator=g)
    noisy = s.add_noise(original, noise, latent_timestep)
    tensors[f"{name}.img2img.original"] = original
    tensors[f"{name}.img2img.noise"] = noise
    tensors[f"{name}.img2img.noisy"] = noisy
    img = {
        "num_inference_steps": IMG2IMG_STEPS,
        "strength": IMG2IMG_STRENGTH,
        "t_start": t_start,
        "begin_index": begin_index,
        "all_timesteps": [t_value(t) for t in s.timesteps],
        "timesteps": [t_value(t) for t in timesteps],
        "sigmas": sigmas_of(s),
        "latent_timestep": t_value(latent_timestep[0]),
        "init_noise_sigma": scalar(s.init_noise_sigma),
    }
    img["scale_factors"] = run_loop(s, timesteps, noisy, kind, tensors, f"{name}.img2img")

    schedules = {}
    for n in SCHEDULE_ONLY_STEPS:
        s = cls(**cfg)
        s.set_timesteps(n)
        schedules[str(n)] = {"timesteps": [t_value(t) for t in s.timesteps], "sigmas": sigmas_of(s)}

    return {
        "name": name,
        "kind": kind,
        "class": cls.__name__,
        "config": clean_config(cls(**cfg).config),
        "generator_seed": EULER_A_SEED if kind == "euler_a" else None,
        "full": full,
        "img2img": img,
        "schedules": schedules,
    }


def generate(out: Path) -> dict:
    tensors = {}
    cases = [one_case(spec, tensors) for spec in CASES]
    names = [c["name"] for c in cases]
    assert len(set(names)) == len(names), names
    doc = {
        "sample_shape": list(SAMPLE_SHAPE),
        "model_output": "0.1 * scale_model_input(sample, t) + sin(float32(t) / 100)  (float32)",
        "tensors_file": "schedulers.safetensors",
        "cases": cases,
    }
    dump_json(out / "outputs" / "schedulers.json", doc)
    save_tensors(out / "outputs" / "schedulers.safetensors", tensors)
    return {"cases": len(cases), "tensors": len(tensors)}


if __name__ == "__main__":
    import sys

    from common import set_determinism

    set_determinism()
    print(generate(Path(sys.argv[1])))
