#!/usr/bin/env bash
# `make fuzz`: runs every fuzz target of fuzz/ under AFL++ (afl.rs, stable Rust) for N minutes each.
#   bash ci/fuzz/run.sh MINUTES TARGET...
# Installs cargo-afl on first use and builds the instrumented targets in target/fuzz (apart from the normal build).
# Each target starts from fuzz/corpus/<target> and works in fuzz/out/<target> (not committed). Afterwards:
#   - every crash is copied to fuzz/crashes/<target>/ — fix it, keep the file: `make test` replays it for good;
#   - with FUZZ_UPDATE_CORPUS=1 the queue entries that found new coverage are added to fuzz/corpus/<target>;
#   - a line per target gives executions, corpus size and crashes, for bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

minutes=${1:?usage: run.sh MINUTES TARGET...}
shift
targets=("$@")
AFL_VERSION=0.18.2

if ! cargo afl --version >/dev/null 2>&1; then
    echo "installing cargo-afl $AFL_VERSION (first use)" >&2
    cargo install cargo-afl --locked --version "$AFL_VERSION"
fi
# Builds AFL++ itself for this toolchain on first use; a no-op (with an error we ignore) once built.
cargo afl config --build >/dev/null 2>&1 || true

export CARGO_TARGET_DIR=target/fuzz
cargo afl build --release --locked -p texaug-fuzz --features afl

export AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_AUTORESUME=1
summary=()
for t in "${targets[@]}"; do
    out=fuzz/out/$t
    mkdir -p "$out"
    echo "== $t: $minutes min" >&2
    # -t: a case over 2 s is a hang, not a crash; -m none: the limits texaug sets itself are what is tested.
    cargo afl fuzz -i "fuzz/corpus/$t" -o "$out" -V "$((minutes * 60))" -t 2000 -m none \
        "$CARGO_TARGET_DIR/release/fuzz_$t" >"$out/fuzz.log" 2>&1 || {
        echo "afl-fuzz for $t failed; the end of $out/fuzz.log:" >&2
        tail -n 20 "$out/fuzz.log" >&2
        exit 1
    }
    stats=$out/default/fuzzer_stats
    get() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
    crashes=$(find "$out/default/crashes" -type f -name 'id:*' 2>/dev/null | wc -l)
    if ((crashes)); then
        mkdir -p "fuzz/crashes/$t"
        for c in "$out"/default/crashes/id:*; do
            cp "$c" "fuzz/crashes/$t/$(sha256sum "$c" | cut -c1-16)"
        done
    fi
    if [[ ${FUZZ_UPDATE_CORPUS:-0} == 1 ]]; then
        # The queue entries that found new coverage (small ones), added to the corpus by content hash.
        for f in "$out"/default/queue/id:*+cov*; do
            [[ -f $f && $(stat -c %s "$f") -le 65536 ]] || continue
            cp "$f" "fuzz/corpus/$t/$(sha256sum "$f" | cut -c1-16)"
        done
    fi
    summary+=("$t: $(get execs_done) executions in $(get run_time) s, corpus $(get corpus_count), edges \
$(get edges_found)/$(get total_edges), crashes $crashes (saved $(get saved_crashes)), hangs $(get saved_hangs)")
done
printf '%s\n' "${summary[@]}"
