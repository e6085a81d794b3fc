#!/usr/bin/env bash
# CPU benchmark, texaug against diffusers on the same machine and the same libtorch version (torch 2.11, float32):
# an SD 1.5-architecture model with random weights in the diffusers layout, img2img at 256², 10 steps, strength 0.5,
# guidance 7.5, DDIM, 2 threads each. Alternating runs: diffusers batch 1, texaug batch 1, diffusers batch 4,
# texaug batch 4. diffusers: steady state (model loaded, one warm-up call), best of BENCH_RUNS calls. texaug: a
# `texaug run` per batch size, its model time per image from the `device_batch` events
# (steady state, the first of BENCH_BATCHES batches excluded as warm-up) and the share of the run's wall time
# outside the model after the load (the first run also hashes the model once into the digest cache); plus
# one whole-process `texaug generate`.
#   make bench-cpu      (or:)  bash bench/cpu_vs_diffusers.sh
# Needs target/release/texaug (`make build`) and the reference Python environment (`make fixtures` makes it; this
# script installs it on first use). The model is the one `make fullsize-check` writes, made here if absent.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${TEXAUG_CACHE:-$HOME/.cache/texaug}
py=$cache/reference/bin/python
bin=target/release/texaug
runs=${BENCH_RUNS:-2}
batches=${BENCH_BATCHES:-3}  # texaug: batches per run, the first one the warm-up
[[ -x $bin ]] || { echo "run 'make build' first" >&2; exit 1; }
if [[ ! -x $py ]]; then
    python3 -m venv "$cache/reference"
    "$py" -m pip install -q -r ci/reference/requirements.txt
fi
model=$cache/fullsize/sd15
if [[ ! -f $model/model_index.json ]]; then
    HF_HUB_OFFLINE=1 "$py" ci/reference/fullsize.py --out "$cache/fullsize" --only sd15 >&2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/texaug-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$py" - "$work/in.png" <<'PY'
import sys
import numpy as np
from PIL import Image
y, x = np.mgrid[0:256, 0:256]
img = np.stack([x, y, (x + y) // 2], -1).astype(np.uint8)
Image.fromarray(img).save(sys.argv[1])
PY
texaug_run() {  # batch → one JSON line
    local b=$1
    local out=$work/out-$b
    {
        echo "id,path,label"
        for ((i = 0; i < b * batches; i++)); do echo "s$i,$work/in.png,mug"; done
    } >"$work/s$b.csv"
    cat >"$work/b$b.toml" <<TOML
name = "bench"
seed = 1
output = "$out"
[sources]
manifest = "$work/s$b.csv"
[model]
path = "$model"
scheduler = "ddim"
[devices]
use = "cpu"
batch = $b
threads = 2
[[stage]]
kind = "style"
prompts = ["a wooden {label}"]
negative_prompt = "blurry"
strength = 0.5
steps = 10
guidance = 7.5
size = 256
TOML
    local t0 t1
    t0=$(date +%s.%N)
    "$bin" run "$work/b$b.toml" --progress json >"$work/events-$b.jsonl"
    t1=$(date +%s.%N)
    "$py" - "$work/events-$b.jsonl" "$b" "$t0" "$t1" <<'PY'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
b, t0, t1 = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
batches = [e for e in events if e.get("event") == "device_batch"]
ready = [e for e in events if e.get("event") == "device_ready"]
# device_batch carries the device's running totals: the steady state is the difference after the first batch.
first, last = batches[0], batches[-1]
images = last["images"] - first["images"]
model_s = last["model_s"] - first["model_s"]
load_s = ready[0]["load_s"] if ready else 0.0
wall = t1 - t0
print(json.dumps({"engine": "texaug", "batch": b, "load_s": round(load_s, 2), "wall_s": round(wall, 2),
                  "model_s_total": last["model_s"], "images": last["images"],
                  "s_per_image": round(model_s / max(images, 1), 3),
                  "outside_model_share": round(1 - last["model_s"] / max(wall - load_s, 1e-9), 4)}))
PY
}
results=()
results+=("$("$py" bench/diffusers_img2img.py "$model" "$work/in.png" --batch 1 --runs "$runs")")
results+=("$(texaug_run 1)")
results+=("$("$py" bench/diffusers_img2img.py "$model" "$work/in.png" --batch 4 --runs "$runs")")
results+=("$(texaug_run 4)")
t0=$(date +%s.%N)
"$bin" generate --model "$model" --image "$work/in.png" --prompt "a wooden mug" --negative blurry \
    --strength 0.5 --steps 10 --guidance 7.5 --scheduler ddim --out "$work/g.png" >/dev/null 2>&1
t1=$(date +%s.%N)
results+=("{\"engine\": \"texaug generate (whole process)\", \"batch\": 1, \"wall_s\": $("$py" -c "print(round($t1 - $t0, 2))")}")
printf '%s\n' "${results[@]}"
"$py" - "${results[@]}" <<'PY'
import json, sys
r = [json.loads(a) for a in sys.argv[1:]]
d = {(x["engine"], x["batch"]): x for x in r}
for b in (1, 4):
    dif, tex = d[("diffusers", b)], d[("texaug", b)]
    print(f"batch {b}: diffusers {dif['s_per_image']:.2f} s/image, texaug {tex['s_per_image']:.2f} s/image "
          f"(ratio {tex['s_per_image'] / dif['s_per_image']:.2f}; target <= 0.8 at batch 4), texaug time outside "
          f"the model {100 * tex['outside_model_share']:.1f}% of the run after load")
PY
