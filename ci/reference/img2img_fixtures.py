"""End-to-end img2img fixtures: StableDiffusionImg2ImgPipeline on CPU fp32, per scheduler and guidance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common import dump_json, fixture_image, save_tensors, tolist
from sched_fixtures import clean_config

PROMPT = "a wooden mug on a table, highly detailed"
NEGATIVE = "blurry, low quality"
BATCH_PROMPTS = ["a red apple on a blue table", "a cat 🐱 in the snow"]
BATCH_NEGATIVES = ["blurry", "ugly, deformed"]
STRENGTH = 0.6
STEPS = 10
SEED = 42
BATCH_SEEDS = [7, 8]
GUIDANCES = (1.0, 7.5)


def scheduler_swaps():
    import diffusers as d

    # name -> (class, overrides applied on top of the pipeline's own scheduler config)
    return {
        "ddim": (d.DDIMScheduler, {}),
        "euler": (d.EulerDiscreteScheduler, {}),
        "euler_a": (d.EulerAncestralDiscreteScheduler, {}),
        "dpmpp2m": (d.DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
        "dpmpp2m_karras": (
            d.DPMSolverMultistepScheduler,
            {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
        ),
        "pndm": (d.PNDMScheduler, {}),
    }


def input_image() -> Image.Image:
    return Image.fromarray(fixture_image(64))


class Recorder:
    """Captures what the pipeline computes internally: add_noise arguments and per-step latents."""

    def __init__(self, pipe):
        self.steps = []
        self.add_noise_args = None
        sched = pipe.scheduler
        orig = sched.add_noise

        def add_noise(original, noise, timesteps):
            out = orig(original, noise, timesteps)
            self.add_noise_args = (original.clone(), noise.clone(), timesteps.clone(), out.clone())
            return out

        sched.add_noise = add_noise

    def callback(self, pipe, i, t, kwargs):
        self.steps.append((t_value(t), kwargs["latents"].clone()))
        return kwargs


def t_value(t):
    t = torch.as_tensor(t)
    return float(t) if t.dtype.is_floating_point else int(t)


@torch.no_grad()
def run_case(pipe, base_config, name, sched_name, guidance, prompt, negative, seeds, tensors, out_dir, extra_args=None):
    """One pipeline call (three, for the np/latent/pil outputs) with a scheduler built from base_config.

    base_config must be the model's own scheduler config: from_config on the previous swap's config
    would carry its keys (timestep_spacing, use_karras_sigmas, ...) into the next scheduler.
    """
    cls, overrides = scheduler_swaps()[sched_name]

    def fresh():
        pipe.scheduler = cls.from_config(base_config, **overrides)
        return Recorder(pipe)

    def gens():
        g = [torch.Generator("cpu").manual_seed(s) for s in seeds]
        return g if isinstance(prompt, list) else g[0]

    args = dict(
        prompt=prompt,
        negative_prompt=negative,
        image=input_image(),
        strength=STRENGTH,
        num_inference_steps=STEPS,
        guidance_scale=guidance,
    )
    args.update(extra_args or {})
    rec = fresh()
    res = pipe(**args, generator=gens(), output_type="np", callback_on_step_end=rec.callback)
    images = torch.from_numpy(res.images)  # [b, h, w, 3] in [0, 1]
    sched_config = clean_config(pipe.scheduler.config)
    timesteps = [t for t, _ in rec.steps]
    orig, noise, lt, noisy = rec.add_noise_args

    rec2 = fresh()
    lat = pipe(**args, generator=gens(), output_type="latent").images
    assert torch.equal(lat, rec.steps[-1][1]), f"{name}: latent run differs from np run"
    rec3 = fresh()
    pil = pipe(**args, generator=gens(), output_type="pil").images
    pngs = []
    for i, im in enumerate(pil):
        expect = (res.images[i] * 255).round().astype("uint8")
        assert np.array_equal(np.asarray(im), expect), f"{name}: PIL output is not round(np * 255)"
        fn = f"{name}.png" if len(pil) == 1 else f"{name}_{i}.png"
        im.save(out_dir / fn)
        pngs.append(fn)
    del rec2, rec3

    # The float image only where guidance is on: the g1 cases keep their PNG and latents, and the
    # fixtures stay under their size budget.
    if guidance > 1.0:
        tensors[f"{name}.image"] = images
    tensors[f"{name}.latents"] = lat
    tensors[f"{name}.step_latents"] = torch.stack([x for _, x in rec.steps])
    tensors[f"{name}.init_latents"] = orig
    tensors[f"{name}.noise"] = noise
    tensors[f"{name}.start_latents"] = noisy
    return {
        "name": name,
        "scheduler": sched_name,
        "scheduler_class": cls.__name__,
        "scheduler_overrides": overrides,
        "scheduler_config": sched_config,
        "prompt": prompt,
        "negative_prompt": negative,
        "negative_prompt_used": guidance > 1.0,
        "strength": STRENGTH,
        "num_inference_steps": STEPS,
        "guidance_scale": guidance,
        "seeds": seeds,
        "generator": "torch.Generator('cpu').manual_seed(seed)" + (" per prompt (list)" if isinstance(prompt, list) else ""),
        "timesteps": timesteps,
        "latent_timestep": tolist(lt),
        "output_png": pngs,
    }


@torch.no_grad()
def generate(pipe, out_dir: Path, model_name: str) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    input_image().save(out_dir / "input.png")
    tensors = {}
    pe, ne = pipe.encode_prompt(PROMPT, "cpu", 1, True, NEGATIVE)
    tensors["embeds.single.prompt_embeds"] = pe
    tensors["embeds.single.negative_prompt_embeds"] = ne
    pe, ne = pipe.encode_prompt(BATCH_PROMPTS, "cpu", 1, True, BATCH_NEGATIVES)
    tensors["embeds.batch.prompt_embeds"] = pe
    tensors["embeds.batch.negative_prompt_embeds"] = ne
    base_config = dict(pipe.scheduler.config)
    cases = []
    for sched_name in scheduler_swaps():
        for g in GUIDANCES:
            name = f"{sched_name}_g{g:g}".replace(".", "p")
            cases.append(run_case(pipe, base_config, name, sched_name, g, PROMPT, NEGATIVE, [SEED], tensors, out_dir))
    for sched_name in ("ddim", "euler_a"):
        name = f"batch_{sched_name}_g7p5"
        cases.append(
            run_case(pipe, base_config, name, sched_name, 7.5, BATCH_PROMPTS, BATCH_NEGATIVES, BATCH_SEEDS, tensors, out_dir)
        )
    save_tensors(out_dir / "img2img.safetensors", tensors)
    doc = {
        "model": model_name,
        "pipeline": "StableDiffusionImg2ImgPipeline",
        "device": "cpu",
        "dtype": "float32",
        "input_image": "input.png",
        "tensors_file": "img2img.safetensors",
        "prompt_embeds": {
            "single": {"prompt": PROMPT, "negative_prompt": NEGATIVE},
            "batch": {"prompt": BATCH_PROMPTS, "negative_prompt": BATCH_NEGATIVES},
        },
        "cases": cases,
    }
    dump_json(out_dir / "cases.json", doc)
    return {"cases": len(cases)}
