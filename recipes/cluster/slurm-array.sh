#!/bin/bash
# One texaug shard per array task (`--shard auto` reads SLURM_ARRAY_TASK_ID and the array's size); every task writes
# its own manifest part into the same output folder, which must be on a shared file system. Submit the array, then
# the merge as a job that waits for it:
#
#   J=$(sbatch --parsable --array=0-15%4 recipes/cluster/slurm-array.sh recipes/texture-randomization.toml /shared/out/tr)
#   sbatch --dependency=afterok:$J recipes/cluster/slurm-merge.sh /shared/out/tr recipes/texture-randomization.toml
#
# Options on the sbatch command line override the #SBATCH lines below: on a CPU-only cluster pass --gres=none
# (and --mem / --cpus-per-task to fit its nodes). Logs go to the submit folder; for a logs/ folder, `mkdir -p logs`
# first and pass --output=logs/texaug-%A_%a.log (Slurm does not create it).
# A task that was preempted, cancelled or killed is resubmitted alone with the run's shard count, e.g. task 5 of 16:
#   sbatch --array=5 --export=ALL,TEXAUG_SHARDS=16 recipes/cluster/slurm-array.sh RECIPE OUTPUT
# --resume keeps what its journal already holds and makes the rest; a second process on the same shard is refused
# by the shard's lock. The merge refuses to finish while a planned sample is missing, naming its shard.
#SBATCH --job-name=texaug
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=32G
#SBATCH --time=04:00:00
#SBATCH --output=texaug-%A_%a.log
set -euo pipefail

RECIPE=${1:?usage: slurm-array.sh RECIPE [OUTPUT]}
OUTPUT=${2:-/shared/out/$(basename "$RECIPE" .toml)}
# TEXAUG may be a command line, e.g. "apptainer run --nv /shared/texaug.sif".
read -r -a TEXAUG <<< "${TEXAUG:-texaug}"

# JSON progress: one event per line in the task's log.
"${TEXAUG[@]}" run "$RECIPE" --shard auto --output "$OUTPUT" --devices auto --progress json --resume
