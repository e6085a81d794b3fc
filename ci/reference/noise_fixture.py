"""Expected values of torch.Generator("cpu").manual_seed(seed) draws, for texaug's noise parity test.

texaug draws a job's noise with tch's global generator seeded inside a lock; these numbers are what
diffusers' per-job torch.Generator("cpu") gives for the same seeds, shapes and order.

    python ci/reference/noise_fixture.py --out tests/fixtures/noise/torch_randn.json
"""
import argparse
import json

import torch

# Shapes in the order one img2img job draws them: VAE posterior eps, img2img noise, then per-step noise.
# A tiny shape too: torch.randn takes a scalar path below 16 elements and a vectorized one above.
SHAPES = [[1, 4, 8, 8], [1, 4, 8, 8], [1, 4, 3, 3], [1, 2, 2, 2]]
SEEDS = [0, 42, 1234, 2**32 + 7, 2**63 + 5]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    cases = []
    for seed in SEEDS:
        g = torch.Generator("cpu").manual_seed(seed)
        draws = [torch.randn(shape, generator=g, dtype=torch.float32).flatten().tolist() for shape in SHAPES]
        cases.append({"seed": seed, "draws": draws})
    doc = {
        "torch": torch.__version__,
        "generator": 'torch.Generator("cpu").manual_seed(seed); torch.randn(shape, generator=g) per shape, in order',
        "shapes": SHAPES,
        "cases": cases,
    }
    with open(args.out, "w") as f:
        json.dump(doc, f)
        f.write("\n")


if __name__ == "__main__":
    main()
