"""diffusers' side of bench/cpu_vs_diffusers.sh: StableDiffusionImg2ImgPipeline on the CPU in float32, steady state
(model loaded, one warm-up call), seconds per image at a batch size. Prints one JSON line.

    python bench/diffusers_img2img.py MODEL_DIR IMAGE --batch 4 --runs 2
"""

import argparse
import json
import os
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
warnings.filterwarnings("ignore")

import torch  # noqa: E402
from diffusers import DDIMScheduler, StableDiffusionImg2ImgPipeline  # noqa: E402
from PIL import Image  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("image")
ap.add_argument("--batch", type=int, default=1)
ap.add_argument("--runs", type=int, default=2)
ap.add_argument("--steps", type=int, default=10)
ap.add_argument("--strength", type=float, default=0.5)
ap.add_argument("--guidance", type=float, default=7.5)
ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()
torch.set_num_threads(args.threads)

t0 = time.perf_counter()
pipe = StableDiffusionImg2ImgPipeline.from_pretrained(args.model, safety_checker=None, requires_safety_checker=False)
pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
pipe.set_progress_bar_config(disable=True)
load_s = time.perf_counter() - t0
image = Image.open(args.image).convert("RGB")
prompts = [f"a wooden mug, variant {i}" for i in range(args.batch)]


def call():
    gens = [torch.Generator("cpu").manual_seed(i) for i in range(args.batch)]
    pipe(prompt=prompts, image=[image] * args.batch, strength=args.strength, num_inference_steps=args.steps,
         guidance_scale=args.guidance, generator=gens, negative_prompt=["blurry"] * args.batch)


call()  # warm-up
times = []
for _ in range(args.runs):
    t = time.perf_counter()
    call()
    times.append(time.perf_counter() - t)
print(json.dumps({"engine": "diffusers", "batch": args.batch, "load_s": round(load_s, 2),
                  "s_per_call": [round(x, 2) for x in times],
                  "s_per_image": round(min(times) / args.batch, 3), "threads": args.threads}))
