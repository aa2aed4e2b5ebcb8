#!/usr/bin/env bash
# Runs each libFuzzer target for FUZZ_SECONDS (default 60) from its committed seed corpus
# (tools/fuzz/corpus/<target>/; what the fuzzer finds on top goes to .build-fuzz/corpus/<target>/,
# never into the repository) and prints, per target, executions, exec/s, new inputs and crashes.
# A crash (or a leak of memory past the limit, or an input slower than FUZZ_TIMEOUT seconds) stops
# that target; its input is kept in .build-fuzz/crashes/<target>/ and the script exits 1.
#   tools/fuzz/run.sh [target...]      FUZZ_SECONDS=60 FUZZ_BUILD=1 (build first) FUZZ_SEED=N
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${FUZZ_BUILD_PATH:-.build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
TIMEOUT=${FUZZ_TIMEOUT:-10}
RSS_MB=${FUZZ_RSS_MB:-2048}
TARGETS=${*:-wire safetensors tokenizer modelconfig trainconfig data}

if [ "${FUZZ_BUILD:-1}" = 1 ]; then
    out=$(bash tools/fuzz/build.sh $TARGETS) || { echo "$out"; exit 1; }
    echo "$out" | grep -v '^building\|^linking\|^built' || true
    case "$out" in SKIP:*|*$'\n'SKIP:*) exit 0 ;; esac
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=0}
# libFuzzer reports the crash; Swift's own backtracer, under ASan, would only slow (or hang) it.
export SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=no}
# FUZZ_SEED=N makes a run repeatable (libFuzzer's -seed; default: a random seed).
SEED_FLAG=${FUZZ_SEED:+-seed=$FUZZ_SEED}
status=0
printf '%-12s %10s %8s %6s %8s  %s\n' target executions exec/s new crashes "seconds"
summary=()
for t in $TARGETS; do
    exe="$BUILD/fuzz/$t"
    [ -x "$exe" ] || { echo "$exe is not built (tools/fuzz/build.sh $t)"; status=1; continue; }
    seeds="tools/fuzz/corpus/$t"
    work="$BUILD/corpus/$t"
    crashes="$BUILD/crashes/$t"
    mkdir -p "$work" "$crashes"
    log="$BUILD/fuzz-$t.log"
    start=$(date +%s)
    "$exe" -max_total_time="$SECONDS_EACH" -timeout="$TIMEOUT" -rss_limit_mb="$RSS_MB" -detect_leaks=0 \
        -print_final_stats=1 -artifact_prefix="$crashes/" $SEED_FLAG "$work" "$seeds" >"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    added=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -1)
    found=$(grep -c '^artifact_prefix=\|Test unit written to' "$log")
    if [ $rc -ne 0 ]; then
        status=1
        [ "$found" -gt 0 ] || found=1
        # A crash stops libFuzzer before its final stats: count the runs from its last status line.
        [ -n "$execs" ] || execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
    fi
    printf '%-12s %10s %8s %6s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${added:-?}" "$found" "$took"
    if [ $rc -ne 0 ]; then
        echo "  $t: exit $rc; log $log; input(s): $(grep -o 'Test unit written to .*' "$log" | sed 's/Test unit written to //' | tr '\n' ' ')"
        grep -m3 'ERROR: \|Fatal error\|SUMMARY' "$log" | sed 's/^/    /'
    fi
done
exit $status
