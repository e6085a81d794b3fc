#!/usr/bin/env bash
# Installs libtorch 2.11.0 (the version tch 0.24 is built against) from the PyPI torch wheel into a cache folder,
# once. Prints the folder on stdout; everything else goes to stderr.
#
#   TEXAUG_CACHE   where to put it (default: ~/.cache/texaug)
#   TEXAUG_TORCH   "cpu" (default without nvidia-smi): the wheel alone plus the two CUDA runtime libraries that
#                  libtorch_cpu links against; "cuda": the full wheel with its CUDA dependencies.
set -euo pipefail

TORCH_VERSION=2.11.0
CUDA_RUNTIME_VERSION=13.0.96
CUDA_CUPTI_VERSION=13.0.85
cache="${TEXAUG_CACHE:-$HOME/.cache/texaug}"
flavor="${TEXAUG_TORCH:-$(command -v nvidia-smi >/dev/null 2>&1 && echo cuda || echo cpu)}"
dest="$cache/libtorch-$TORCH_VERSION-$flavor"

if [[ -f "$dest/.complete" ]]; then
    echo "$dest"
    exit 0
fi

python="${PYTHON:-python3}"
command -v "$python" >/dev/null || { echo "setup-libtorch: python3 with pip is needed to fetch the torch wheel from PyPI (apt-get install python3-pip)" >&2; exit 1; }

mkdir -p "$cache/downloads"
staging="$(mktemp -d "$cache/.libtorch-staging.XXXXXX")"
trap 'rm -rf "$staging"' EXIT

echo "setup-libtorch: fetching torch==$TORCH_VERSION ($flavor) from PyPI into $dest (first use only)" >&2
if [[ "$flavor" == cuda ]]; then
    "$python" -m pip install --quiet --no-warn-script-location --target "$staging/site" "torch==$TORCH_VERSION" >&2
    site="$staging/site"
    mkdir -p "$staging/libtorch"
    cp -a "$site/torch/lib" "$site/torch/include" "$staging/libtorch/"
    # libtorch_cuda needs the NVIDIA libraries next to it; copy every shared object the nvidia wheels ship.
    find "$site/nvidia" -name '*.so*' -exec cp -a {} "$staging/libtorch/lib/" \; 2>/dev/null || true
else
    "$python" -m pip download --quiet --no-deps --dest "$cache/downloads" \
        "torch==$TORCH_VERSION" "nvidia-cuda-runtime==$CUDA_RUNTIME_VERSION" "nvidia-cuda-cupti==$CUDA_CUPTI_VERSION" >&2
    mkdir -p "$staging/wheel" "$staging/libtorch/lib"
    "$python" - "$cache/downloads" "$staging" "$TORCH_VERSION" <<'PY' >&2
import glob, os, shutil, sys, zipfile
downloads, staging, version = sys.argv[1:4]
out = os.path.join(staging, "libtorch")
(wheel,) = glob.glob(os.path.join(downloads, f"torch-{version}-*.whl"))
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.endswith("/") or not (name.startswith("torch/lib/") or name.startswith("torch/include/")):
            continue
        if os.path.basename(name).startswith("libtorch_cuda"):
            continue  # needs the full CUDA stack; libtorch_cpu runs without it
        target = os.path.join(out, name[len("torch/"):])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(name) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
for pattern in ("nvidia_cuda_runtime-*.whl", "nvidia_cuda_cupti-*.whl"):
    (extra,) = glob.glob(os.path.join(downloads, pattern))
    with zipfile.ZipFile(extra) as z:
        for name in z.namelist():
            if "/lib/" in name and ".so" in os.path.basename(name):
                with z.open(name) as src, open(os.path.join(out, "lib", os.path.basename(name)), "wb") as dst:
                    shutil.copyfileobj(src, dst)
PY
fi
touch "$staging/libtorch/.complete"
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mv "$staging/libtorch" "$dest"
echo "$dest"
