"""diffusers' side of bench/cpu_vs_diffusers.sh and bench/gpu.sh: StableDiffusionImg2ImgPipeline, steady state
(model loaded, one warm-up call), seconds per image at a batch size. Prints one JSON line. CPU float32 by default;
on a GPU fp16 with PyTorch's SDPA attention (diffusers' default under torch 2), optionally the UNet compiled.

    python bench/diffusers_img2img.py MODEL_DIR IMAGE --batch 4 --runs 2
    python bench/diffusers_img2img.py MODEL_DIR IMAGE --device cuda --dtype fp16 --steps 20 --strength 0.75 --batch 8
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
ap.add_argument("--device", default="cpu")
ap.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"])
ap.add_argument("--compile", action="store_true", help="torch.compile the UNet (counted after its warm-up)")
args = ap.parse_args()
torch.set_num_threads(args.threads)
dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype]

t0 = time.perf_counter()
pipe = StableDiffusionImg2ImgPipeline.from_pretrained(args.model, safety_checker=None, requires_safety_checker=False,
                                                      torch_dtype=dtype).to(args.device)
if args.compile:
    pipe.unet = torch.compile(pipe.unet)
pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
pipe.set_progress_bar_config(disable=True)
load_s = time.perf_counter() - t0
image = Image.open(args.image).convert("RGB")
prompts = [f"a wooden mug, variant {i}" for i in range(args.batch)]


def call():
    gens = [torch.Generator("cpu").manual_seed(i) for i in range(args.batch)]
    return pipe(prompt=prompts, image=[image] * args.batch, strength=args.strength, num_inference_steps=args.steps,
         guidance_scale=args.guidance, generator=gens, negative_prompt=["blurry"] * args.batch)


def sync():
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()


call()  # warm-up (and compilation)
sync()
times = []
for _ in range(args.runs):
    t = time.perf_counter()
    call()
    sync()
    times.append(time.perf_counter() - t)
print(json.dumps({"engine": "diffusers", "batch": args.batch, "load_s": round(load_s, 2),
                  "s_per_call": [round(x, 2) for x in times],
                  "s_per_image": round(min(times) / args.batch, 3), "threads": args.threads,
                  "device": args.device, "dtype": args.dtype, "compile": args.compile}))
