"""Regenerate texaug's reference fixtures with diffusers as the ground truth.

    python ci/reference/make_fixtures.py --out tests/fixtures            # everything
    python ci/reference/make_fixtures.py --out tests/fixtures --only schedulers,img2img
    python ci/reference/make_fixtures.py --out tests/fixtures --check   # regenerate elsewhere, compare bytes

Deterministic: one thread, deterministic kernels, seeded generators; re-running gives the same bytes.
See tests/fixtures/README.md for what each file holds.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import sys
import tempfile
import warnings
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import set_determinism  # noqa: E402

SIZE_BUDGET = 23_000_000  # bytes, everything under the fixture root (17 MB until the SDXL models came)
STEPS = ("tokenizer", "models", "components", "schedulers", "img2img", "depth", "controlnet", "inpaint", "sdxl", "single_file", "lora", "ti")
MODEL_SEEDS = {"sd1": 1000, "sd2": 2000}
COMPONENT_SEED = 7


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="fixture root, normally tests/fixtures")
    ap.add_argument("--only", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)}")
    ap.add_argument(
        "--check",
        action="store_true",
        help="generate everything into a temporary directory and fail unless it matches --out byte for byte",
    )
    args = ap.parse_args()
    only = [s for s in args.only.split(",") if s]
    unknown = [s for s in only if s not in STEPS]
    if unknown:
        ap.error(f"unknown step(s) {unknown}; choose from {list(STEPS)}")
    if args.check:
        with tempfile.TemporaryDirectory() as td:
            generate(Path(td), list(STEPS))
            bad = compare(Path(td), args.out)
        if bad:
            print(f"fixtures in {args.out} differ from a fresh generation: {bad}", file=sys.stderr)
            print(f"regenerate with: python ci/reference/make_fixtures.py --out {args.out}", file=sys.stderr)
            sys.exit(1)
        print(f"{args.out}: identical to a fresh generation")
        return
    generate(args.out, only)
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"total size of {args.out}: {total} bytes", flush=True)
    if total > SIZE_BUDGET:
        sys.exit(f"fixtures are {total} bytes, over the {SIZE_BUDGET} byte budget: shrink a model or drop outputs")


def compare(fresh: Path, committed: Path) -> list[str]:
    """Relative paths that differ or exist on one side only (README.md is hand-written, and noise/ is written by
    noise_fixture.py, not by this script)."""
    def files(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}

    a = files(fresh)
    b = {p for p in files(committed) - {"README.md"} if not p.startswith("noise/")}
    bad = sorted(a ^ b)
    bad += sorted(p for p in a & b if not filecmp.cmp(fresh / p, committed / p, shallow=False))
    return bad


def generate(out: Path, only: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    set_determinism()

    import tiny_models

    if "tokenizer" in only:
        import tok_fixtures

        print("tokenizer:", tok_fixtures.generate(out), flush=True)
    if "models" in only:
        for v, seed in MODEL_SEEDS.items():
            tiny_models.save_pipeline(out / "models" / f"{v}-tiny", v, seed)
            print(f"models: {v}-tiny", flush=True)
    if "components" in only:
        import components

        for v in MODEL_SEEDS:
            set_determinism()
            pipe = tiny_models.load_pipeline(out / "models" / f"{v}-tiny")
            shapes = components.generate(pipe, out / "outputs" / f"{v}-tiny" / "components.safetensors", COMPONENT_SEED)
            print(f"components: {v}-tiny {len(shapes)} tensors", flush=True)
    if "schedulers" in only:
        import sched_fixtures

        set_determinism()
        print("schedulers:", sched_fixtures.generate(out), flush=True)
    if "img2img" in only:
        import img2img_fixtures

        for v in MODEL_SEEDS:
            set_determinism()
            pipe = tiny_models.load_pipeline(out / "models" / f"{v}-tiny")
            res = img2img_fixtures.generate(pipe, out / "outputs" / f"{v}-tiny" / "img2img", f"{v}-tiny")
            print(f"img2img: {v}-tiny", res, flush=True)
    if "depth" in only or "controlnet" in only:
        import phase2

        if "depth" in only:
            set_determinism()
            print("depth:", phase2.generate_depth(out), flush=True)
        if "controlnet" in only:
            set_determinism()
            print("controlnet:", phase2.generate_controlnet(out), flush=True)
    if "inpaint" in only:
        import inpaint_fixtures

        set_determinism()
        print("inpaint:", inpaint_fixtures.generate(out), flush=True)
    # before single_file, which writes the SDXL models' single-file recipes too
    if "sdxl" in only:
        import sdxl_fixtures

        set_determinism()
        print("sdxl:", sdxl_fixtures.generate(out), flush=True)
    if "single_file" in only:
        import single_file

        print("single_file:", single_file.generate(out), flush=True)
    if "lora" in only:
        import lora_fixtures

        set_determinism()
        print("lora:", lora_fixtures.generate(out, tiny_models.load_pipeline), flush=True)
        import lora_xl_fixtures

        set_determinism()
        print("lora (sdxl):", lora_xl_fixtures.generate(out), flush=True)
    if "ti" in only:
        import ti_fixtures

        set_determinism()
        print("ti:", ti_fixtures.generate(out, tiny_models.load_pipeline), flush=True)


if __name__ == "__main__":
    main()
