#!/usr/bin/env bash
# Fetches the real CLIP BPE vocabulary (bpe_simple_vocab_16e6.txt.gz), which ships inside the PyPI package
# open-clip-torch, into the cache once. Prints the file's path on stdout.
set -euo pipefail
OPEN_CLIP_VERSION=3.3.0
cache="${TEXAUG_CACHE:-$HOME/.cache/texaug}"
dest="$cache/clip/bpe_simple_vocab_16e6.txt.gz"
if [[ -s "$dest" ]]; then
    echo "$dest"
    exit 0
fi
python="${PYTHON:-python3}"
mkdir -p "$cache/downloads" "$(dirname "$dest")"
echo "setup-vocab: fetching open-clip-torch==$OPEN_CLIP_VERSION from PyPI for the CLIP BPE vocabulary (first use only)" >&2
"$python" -m pip download --quiet --no-deps --dest "$cache/downloads" "open-clip-torch==$OPEN_CLIP_VERSION" >&2
"$python" - "$cache/downloads" "$dest" "$OPEN_CLIP_VERSION" <<'PY'
import glob, os, sys, zipfile
downloads, dest, version = sys.argv[1:4]
(wheel,) = glob.glob(os.path.join(downloads, f"open_clip_torch-{version}-*.whl"))
with zipfile.ZipFile(wheel) as z:
    data = z.read("open_clip/bpe_simple_vocab_16e6.txt.gz")
tmp = dest + ".tmp"
with open(tmp, "wb") as f:
    f.write(data)
os.replace(tmp, dest)
PY
echo "$dest"
