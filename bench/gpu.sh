#!/usr/bin/env bash
# GPU benchmark, texaug against diffusers on one GPU (#13): an SD 1.5-architecture model with random weights in the
# diffusers layout, img2img 512², 20 steps, strength 0.75 (15 denoising steps), guidance 7.5, fp16, batch 1/8/16.
# diffusers: StableDiffusionImg2ImgPipeline fp16 + SDPA, then with the UNet under torch.compile; texaug: a
# `texaug run` per batch size, images/s from its `device_batch` events (the first batch excluded as warm-up).
# MFU: UNet FLOPs only, 803 GFLOP per 512² sample per call, two calls per step (guidance), against 989 TFLOP/s.
#
# Two halves, because the GPU machine builds nothing and reaches nothing:
#   bash bench/gpu.sh pack bench/out/gpu-pack     # here: a texaug built against the CUDA wheel (TEXAUG_CUDA_BIN,
#                                                 # from `TEXAUG_TORCH=cuda make build`), stripped and gzipped,
#                                                 # the diffusers wheels and the CLIP vocabulary (< 64 MiB in all)
#   bash bench/gpu.sh run bench/out/gpu-pack      # there: venv over its torch, the model made in place, the runs;
#                                                 # results.json and results.md into $OUT (else the pack folder)
#   BENCH_GPU_DRY=1 bash bench/gpu.sh pack DIR    # here, without the CUDA check: the packing itself
#   BENCH_GPU_DRY=1 bash bench/gpu.sh run DIR     # here, on the CPU at toy sizes (tiny model, 64², 2 steps,
#                                                 # batch 1/2, the reference venv, target/release/texaug): every
#                                                 # part of the script but the GPU itself
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: bench/gpu.sh pack|run DIR}
pack=${2:?usage: bench/gpu.sh pack|run DIR}
cache=${TEXAUG_CACHE:-$HOME/.cache/texaug}
dry=${BENCH_GPU_DRY:-0}

if [[ $mode == pack ]]; then
    bin=${TEXAUG_CUDA_BIN:?set TEXAUG_CUDA_BIN to a texaug built with TEXAUG_TORCH=cuda (make build)}
    [[ $dry == 1 ]] || ldd "$bin" | grep -q libtorch_cuda ||
        { echo "$bin does not link libtorch_cuda: build it with TEXAUG_TORCH=cuda" >&2; exit 1; }
    rm -rf "$pack" && mkdir -p "$pack/wheels"
    strip -o "$pack/texaug" "$bin" && gzip -9 "$pack/texaug"
    # torch is there already; peft would pull it in again (2.9 GB) and the bench needs no LoRA. Wheels the GPU
    # machine's Python already has can be left out to fit the carry limit: BENCH_GPU_SKIP="numpy pillow".
    skip="torch peft ${BENCH_GPU_SKIP:-}"
    grep -vE '^#|^$' ci/reference/requirements.txt | grep -viE "^(${skip// /|})==" >"$pack/requirements.txt" || true
    pyver=${BENCH_GPU_PYVER:-$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')}
    python3 -m pip download -q --only-binary=:all: --python-version "$pyver" -d "$pack/wheels" \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform any -r "$pack/requirements.txt"
    for name in ${BENCH_GPU_SKIP:-}; do rm -f "$pack/wheels/$name"-*.whl; done  # also when pulled in as a dependency
    cp "${TEXAUG_CLIP_VOCAB:-$cache/clip/bpe_simple_vocab_16e6.txt.gz}" "$pack/"
    bytes=$(du -sb "$pack" | cut -f1)
    echo "pack: $pack, $((bytes >> 20)) MiB (Python $pyver wheels; BENCH_GPU_PYVER for another)"
    ((bytes <= 64 << 20)) || { echo "over the 64 MiB a device run carries: set BENCH_GPU_SKIP" >&2; exit 1; }
    exit 0
fi
[[ $mode == run ]] || { echo "usage: bench/gpu.sh pack|run DIR" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/texaug-gpu.XXXXXX")
trap 'rm -rf "$work"' EXIT
out=${OUT:-$pack}
mkdir -p "$out"
if [[ $dry == 1 ]]; then
    device=cpu dtype=fp32 size=64 steps=2 strength=0.5 batches="1 2" compile=0
    py=$cache/reference/bin/python
    if [[ ! -x $py ]]; then
        python3 -m venv "$cache/reference"
        "$py" -m pip install -q -r ci/reference/requirements.txt
    fi
    bin=target/release/texaug
    export TEXAUG_CLIP_VOCAB=${TEXAUG_CLIP_VOCAB:-$cache/clip/bpe_simple_vocab_16e6.txt.gz}
    model=$work/model
    "$bin" model init-tiny --kind sd1 --out "$model" >&2
else
    command -v nvidia-smi >/dev/null || { echo "no nvidia-smi: this half runs on the GPU machine" >&2; exit 1; }
    device=cuda:0 dtype=fp16 size=512 steps=20 strength=0.75 batches="1 8 16" compile=1
    python3 -m venv --system-site-packages "$work/venv"
    py=$work/venv/bin/python
    "$py" -m pip install -q --no-index --find-links "$pack/wheels" -r "$pack/requirements.txt"
    gunzip -c "$pack/texaug.gz" >"$work/texaug" && chmod +x "$work/texaug"
    bin=$work/texaug
    export TEXAUG_CLIP_VOCAB=$pack/bpe_simple_vocab_16e6.txt.gz
    (cd ci/reference && HF_HUB_OFFLINE=1 "$py" fullsize.py --out "$work/fullsize" --only sd15 >&2)
    model=$work/fullsize/sd15
    [[ -f $model/model_index.json ]] || { echo "fullsize.py wrote no model at $model" >&2; exit 1; }
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$out/gpu.txt"
fi
"$py" - "$work/in.png" "$size" <<'PY'
import sys
import numpy as np
from PIL import Image
n = int(sys.argv[2])
y, x = np.mgrid[0:n, 0:n]
Image.fromarray((np.stack([x, y, (x + y) // 2], -1) * 256 // n).astype(np.uint8)).save(sys.argv[1])
PY

texaug_run() {  # batch → one JSON line
    local b=$1 n=$(($1 * 3))
    { echo "id,path,label"; for ((i = 0; i < n; i++)); do echo "s$i,$work/in.png,mug"; done; } >"$work/s$b.csv"
    cat >"$work/b$b.toml" <<TOML
name = "gpu-bench"
seed = 1
output = "$work/out-$b"
[sources]
manifest = "$work/s$b.csv"
[model]
path = "$model"
dtype = "$dtype"
scheduler = "ddim"
[devices]
use = "$device"
batch = $b
[[stage]]
kind = "style"
prompts = ["a wooden {label}"]
negative_prompt = "blurry"
strength = $strength
steps = $steps
guidance = 7.5
size = $size
TOML
    "$bin" run "$work/b$b.toml" --progress json >"$work/events-$b.jsonl"
    "$py" - "$work/events-$b.jsonl" "$b" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
batches = [e for e in ev if e.get("event") == "device_batch"][1:]  # the first one is the warm-up
images = sum(e["images"] for e in batches)
model_s = sum(e["model_s"] for e in batches)
print(json.dumps({"engine": "texaug", "batch": int(sys.argv[2]), "images_per_s": round(images / model_s, 3)}))
PY
}
diffusers_run() {  # batch [--compile] → one JSON line
    local b=$1
    shift
    "$py" bench/diffusers_img2img.py "$model" "$work/in.png" --device "$device" --dtype "$dtype" --batch "$b" \
        --steps "$steps" --strength "$strength" --runs 2 --threads "$(nproc)" "$@" | tail -n 1
}

: >"$work/results.jsonl"
for b in $batches; do
    texaug_run "$b" | tee -a "$work/results.jsonl"
    diffusers_run "$b" | tee -a "$work/results.jsonl"
    if [[ $compile == 1 ]]; then diffusers_run "$b" --compile | tee -a "$work/results.jsonl" || true; fi
done
"$py" - "$work/results.jsonl" "$out" "$steps" "$strength" "$size" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
out, steps, strength, size = sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
calls = 2 * int(steps * strength)  # UNet samples per image: guidance doubles each denoising step
flop = 803e9 * (size / 512) ** 2 * calls
for r in rows:
    if r["engine"] == "diffusers":
        r["images_per_s"] = round(1 / r["s_per_image"], 3)
        if r.get("compile"):
            r["engine"] = "diffusers+compile"
    r["mfu"] = round(r["images_per_s"] * flop / 989e12, 4)
json.dump(rows, open(f"{out}/results.json", "w"), indent=1)
by = {(r["engine"], r["batch"]): r for r in rows}
lines = ["| batch | texaug images/s (MFU) | diffusers fp16+SDPA | diffusers + torch.compile | texaug / diffusers |",
         "|---|---|---|---|---|"]
for b in sorted({r["batch"] for r in rows}):
    t, d, c = by.get(("texaug", b)), by.get(("diffusers", b)), by.get(("diffusers+compile", b))
    cell = lambda r: f"{r['images_per_s']} ({100 * r['mfu']:.1f}%)" if r else "—"
    ratio = f"{t['images_per_s'] / d['images_per_s']:.2f}" if t and d else "—"
    lines.append(f"| {b} | {cell(t)} | {cell(d)} | {cell(c)} | {ratio} |")
open(f"{out}/results.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
