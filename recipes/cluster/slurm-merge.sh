#!/bin/bash
# Merges the shards of one output folder (all its manifest parts) into a single folder and manifest.
#SBATCH --job-name=texaug-merge
#SBATCH --cpus-per-task=2
#SBATCH --time=00:30:00
set -euo pipefail
OUTPUT=${1:?usage: slurm-merge.sh OUTPUT}
texaug merge "$OUTPUT" --out "$OUTPUT-merged"
texaug inspect "$OUTPUT-merged"
