#!/usr/bin/env bash
# Soak benchmark (not a test): one `texaug run` of N tiny-model samples (default 10,000: the demo's 4 images and
# 4 meshes, cycled, style stage), with the process's resident memory sampled every second. Prints the RSS after
# warm-up (the first 10% of the run): min, median, max and the spread (max - min) / median; the target is flat
# within 10%. The samples go to a scratch folder, removed afterwards unless SOAK_KEEP=1.
#   make soak            (or:)  bash bench/soak.sh [N]
# Needs target/release/texaug and output/models/tiny-sd1 (`make demo` makes both).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
bin=target/release/texaug
model=$PWD/output/models/tiny-sd1
[[ -x $bin && -f $model/model_index.json ]] || { echo "run 'make demo' first (binary and tiny model)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/texaug-soak.XXXXXX")
[[ ${SOAK_KEEP:-0} == 1 ]] || trap 'rm -rf "$work"' EXIT
demo=$PWD/manifests/demo
sources=(apple.png:apple chessboard.jpg:chessboard flower.webp:flower sunset.png:sunset mug.glb:mug
    crate.glb:crate ball.gltf:ball can/can.gltf:can)
{
    echo "id,path,label"
    for ((i = 0; i < n; i++)); do
        s=${sources[i % ${#sources[@]}]}
        printf 's%05d,%s/%s,%s\n' "$i" "$demo" "${s%%:*}" "${s##*:}"
    done
} >"$work/soak.csv"
cat >"$work/soak.toml" <<TOML
name = "soak"
seed = 7
output = "out"
[sources]
manifest = "soak.csv"
[model]
path = "$model"
scheduler = "ddim"
[devices]
use = "cpu"
batch = 4
[[stage]]
kind = "style"
prompts = ["a {label} made of brushed copper"]
strength = 0.5
steps = 2
guidance = 7.5
size = 32
TOML

"$bin" run "$work/soak.toml" --progress none >"$work/run.log" 2>&1 &
pid=$!
t0=$(date +%s.%N)
since() { awk -v now="$(date +%s.%N)" -v t0="$t0" 'BEGIN { printf "%.1f", now - t0 }'; }
echo "elapsed_s,rss_kib" >"$work/rss.csv"
while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    [[ -n $rss ]] && echo "$(since),$rss" >>"$work/rss.csv"
    sleep 1
done
rc=0
wait "$pid" || rc=$?
wall=$(since)
tail -n 3 "$work/run.log"
((rc == 0)) || { echo "texaug run failed with exit code $rc; log: $work/run.log" >&2; SOAK_KEEP=1; exit 1; }
"$bin" inspect "$work/out" >"$work/inspect.txt"
head -n 3 "$work/inspect.txt"
[[ ${SOAK_KEEP:-0} == 1 ]] && echo "kept: $work (rss.csv, run.log, out/)"
python3 - "$work/rss.csv" "$n" "$wall" <<'PY'
import csv, statistics, sys
rows = [(float(r["elapsed_s"]), int(r["rss_kib"])) for r in csv.DictReader(open(sys.argv[1]))]
n, wall = int(sys.argv[2]), float(sys.argv[3])
steady = [kib for t, kib in rows if t >= 0.1 * wall] or [kib for _, kib in rows]
lo, med, hi = min(steady), statistics.median(steady), max(steady)
spread = (hi - lo) / med
print(f"{n} samples in {wall:.0f} s ({n / wall:.1f} samples/s); {len(rows)} RSS samples, peak {max(k for _, k in rows) / 1024:.0f} MiB")
print(f"RSS after warm-up: min {lo / 1024:.0f} MiB, median {med / 1024:.0f} MiB, max {hi / 1024:.0f} MiB, "
      f"spread {100 * spread:.1f}% (target <= 10%)")
last = [kib for t, kib in rows if t >= 0.9 * wall] or steady
print(f"median RSS, first vs last tenth after warm-up: {statistics.median(steady[:max(1, len(steady) // 9)]) / 1024:.0f}"
      f" -> {statistics.median(last) / 1024:.0f} MiB")
PY
