#!/usr/bin/env bash
# Runs each libFuzzer target for FUZZ_SECONDS (default 60) from its committed seed corpus
# (tools/fuzz/corpus/<target>/; what the fuzzer finds on top goes to .build-fuzz/corpus/<target>/,
# never into the repository) and prints, per target, executions, exec/s, new inputs and crashes.
# A crash (or a leak of memory past the limit, or an input slower than FUZZ_TIMEOUT seconds) stops
# that target; its input is kept in .build-fuzz/crashes/<target>/ and the script exits 1.
#   tools/fuzz/run.sh [target...]      FUZZ_SECONDS=60 FUZZ_BUILD=1 (build first) FUZZ_SEED=N FUZZ_JOBS=1
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${FUZZ_BUILD_PATH:-.build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
TIMEOUT=${FUZZ_TIMEOUT:-10}
RSS_MB=${FUZZ_RSS_MB:-2048}
TARGETS=${*:-wire safetensors tokenizer modelconfig trainconfig data torch spiece trainerstate}

if [ "${FUZZ_BUILD:-1}" = 1 ]; then
    out=$(bash tools/fuzz/build.sh $TARGETS) || { echo "$out"; exit 1; }
    echo "$out" | grep '^SKIP' || true
    case "$out" in SKIP:*|*$'\n'SKIP:*) exit 0 ;; esac
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=0}
# libFuzzer reports the crash; Swift's own backtracer, under ASan, would only slow (or hang) it.
export SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=no}
# FUZZ_SEED=N makes a run repeatable (libFuzzer's -seed; default: a random seed).
SEED_FLAG=${FUZZ_SEED:+-seed=$FUZZ_SEED}
# FUZZ_JOBS targets run side by side (libFuzzer is single-threaded; 1 keeps the exec/s figures clean).
JOBS=${FUZZ_JOBS:-1}

# One target: its figures go to $BUILD/result-$t (a table row, then any crash details).
run_one() {
    local t=$1 exe="$BUILD/fuzz/$1" seeds="tools/fuzz/corpus/$1" work="$BUILD/corpus/$1" crashes="$BUILD/crashes/$1"
    local log="$BUILD/fuzz-$1.log" out="$BUILD/result-$1"
    if [ ! -x "$exe" ]; then echo "$exe is not built (tools/fuzz/build.sh $t)" >"$out"; return 1; fi
    mkdir -p "$work" "$crashes"
    local start rc took execs rate added found
    start=$(date +%s)
    "$exe" -max_total_time="$SECONDS_EACH" -timeout="$TIMEOUT" -rss_limit_mb="$RSS_MB" -detect_leaks=0 \
        -print_final_stats=1 -artifact_prefix="$crashes/" $SEED_FLAG "$work" "$seeds" >"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    added=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -1)
    found=$(grep -c 'Test unit written to' "$log")
    if [ $rc -ne 0 ]; then
        [ "$found" -gt 0 ] || found=1
        # A crash stops libFuzzer before its final stats: count the runs from its last status line.
        [ -n "$execs" ] || execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
    fi
    printf '%-12s %10s %8s %6s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${added:-?}" "$found" "$took" >"$out"
    if [ $rc -ne 0 ]; then
        echo "  $t: exit $rc; log $log; input(s): $(grep -o 'Test unit written to .*' "$log" | sed 's/Test unit written to //' | tr '\n' ' ')" >>"$out"
        grep -m3 'ERROR: \|Fatal error\|SUMMARY' "$log" | sed 's/^/    /' >>"$out"
    fi
    return $rc
}

mkdir -p "$BUILD"
status=0
running=0
for t in $TARGETS; do
    rm -f "$BUILD/result-$t"
    if [ "$running" -ge "$JOBS" ]; then wait -n || status=1; running=$((running - 1)); fi
    run_one "$t" &
    running=$((running + 1))
done
while [ "$running" -gt 0 ]; do wait -n || status=1; running=$((running - 1)); done
printf '%-12s %10s %8s %6s %8s  %s\n' target executions exec/s new crashes "seconds"
for t in $TARGETS; do cat "$BUILD/result-$t" 2>/dev/null || { echo "$t: no result"; status=1; }; done
exit $status
