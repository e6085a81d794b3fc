#!/bin/bash
# Merges the shards of one output folder (all its manifest parts) into OUTPUT-merged: one folder, one manifest,
# every planned sample exactly once (run as a job that depends on the array: see slurm-array.sh).
#SBATCH --job-name=texaug-merge
#SBATCH --cpus-per-task=2
#SBATCH --time=00:30:00
#SBATCH --output=texaug-merge-%j.log
set -euo pipefail
OUTPUT=${1:?usage: slurm-merge.sh OUTPUT}
# TEXAUG may be a command line, e.g. "apptainer run --nv /shared/texaug.sif".
read -r -a TEXAUG <<< "${TEXAUG:-texaug}"
"${TEXAUG[@]}" merge "$OUTPUT" --out "$OUTPUT-merged"
"${TEXAUG[@]}" inspect "$OUTPUT-merged"
