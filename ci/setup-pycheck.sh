#!/usr/bin/env bash
# A small Python environment used only by tests that read texaug's outputs with the readers our users have: the
# Parquet manifests with pyarrow and DuckDB, `texaug export` folders with datasets, pycocotools, webdataset and
# PyYAML. Prints the interpreter's path on stdout.
set -euo pipefail
cache="${TEXAUG_CACHE:-$HOME/.cache/texaug}"
venv="$cache/pycheck"
requirements="$(dirname "$0")/pycheck-requirements.txt"
# The marker holds the requirements' hash, so a cache made from an older list is rebuilt rather than kept.
wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$venv/.complete" && "$(cat "$venv/.complete")" == "$wanted" ]]; then
    echo "$venv/bin/python"
    exit 0
fi
python="${PYTHON:-python3}"
echo "setup-pycheck: installing $(grep -c . "$requirements") packages of $requirements into $venv" >&2
rm -rf "$venv"
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
echo "$wanted" >"$venv/.complete"
echo "$venv/bin/python"
