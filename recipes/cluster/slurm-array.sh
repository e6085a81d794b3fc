#!/bin/bash
# One texaug shard per array task; every task writes its own manifest part into the same output folder, which
# must be on a shared file system. Submit, then merge once all tasks are done:
#
#   N=16 sbatch --array=0-15 recipes/cluster/slurm-array.sh recipes/texture-randomization.toml
#   sbatch --dependency=afterok:<jobid> recipes/cluster/slurm-merge.sh /shared/out/texture-randomization
#
# A task that was preempted or killed is simply resubmitted: --resume skips what its journal already holds.
#SBATCH --job-name=texaug
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=32G
#SBATCH --time=04:00:00
#SBATCH --output=logs/texaug-%A_%a.log
set -euo pipefail

RECIPE=${1:?usage: slurm-array.sh RECIPE [OUTPUT]}
OUTPUT=${2:-/shared/out/$(basename "$RECIPE" .toml)}
N=${N:-${SLURM_ARRAY_TASK_COUNT:?run as an array job}}
I=${SLURM_ARRAY_TASK_ID:?run as an array job}

texaug validate "$RECIPE"
# JSON progress: one event per line in the task's log.
texaug run "$RECIPE" --shard "$I/$N" --output "$OUTPUT" --devices auto --progress json --resume
