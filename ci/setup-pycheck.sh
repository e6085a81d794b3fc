#!/usr/bin/env bash
# A small Python environment used only by tests that open texaug's Parquet manifests with pyarrow and DuckDB (the
# readers our users have). Prints the interpreter's path on stdout.
set -euo pipefail
cache="${TEXAUG_CACHE:-$HOME/.cache/texaug}"
venv="$cache/pycheck"
if [[ -x "$venv/bin/python" && -f "$venv/.complete" ]]; then
    echo "$venv/bin/python"
    exit 0
fi
python="${PYTHON:-python3}"
echo "setup-pycheck: installing pyarrow and duckdb into $venv (first use only)" >&2
rm -rf "$venv"
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$(dirname "$0")/pycheck-requirements.txt" >&2
touch "$venv/.complete"
echo "$venv/bin/python"
