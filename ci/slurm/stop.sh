#!/bin/bash
# Stops the daemons ci/slurm/start.sh started under DIR (default /tmp/texaug-slurm) and waits until they are gone.
DIR=${1:-/tmp/texaug-slurm}
pids=()
for f in "$DIR/slurmd.pid" "$DIR/slurmctld.pid" "$DIR/munge/munged.pid"; do
    pid=$(cat "$f" 2>/dev/null) || continue
    kill "$pid" 2>/dev/null && pids+=("$pid")
    rm -f "$f"
done
for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
done
exit 0
