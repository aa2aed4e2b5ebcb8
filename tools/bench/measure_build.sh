#!/usr/bin/env bash
# The clean release build time of two commits, each in a temporary clone of this repository built
# from scratch (`swift build -c release --scratch-path .build-measure`: packages resolved from their
# local copies, nothing reused from .build). Prints wall-clock seconds for both and the difference:
# what a change (e.g. new package dependencies) adds to CI's release build.
#
#   BASE=main NEW=HEAD bash tools/bench/measure_build.sh
#
# The two builds run one after the other; on a shared machine run it when it is otherwise idle.
set -euo pipefail
cd "$(dirname "$0")/../.."
BASE=${BASE:-main}
NEW=${NEW:-HEAD}
repo=$(pwd)
base_commit=$(git rev-parse "$BASE")
new_commit=$(git rev-parse "$NEW")
work=$(mktemp -d /tmp/precis-measure-XXXXXX)
trap 'rm -rf "$work"' EXIT

build() {   # build LABEL COMMIT
    local dir="$work/$1"
    git clone --quiet --no-checkout "$repo" "$dir"
    git -C "$dir" checkout --quiet "$2"
    (cd "$dir" && swift package --scratch-path .build-measure resolve >/dev/null 2>&1)
    local t0 t1
    t0=$(date +%s.%N)
    (cd "$dir" && swift build -c release --scratch-path .build-measure >"$work/$1.log" 2>&1) || { tail -20 "$work/$1.log"; exit 1; }
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc
}

base_s=$(build base "$base_commit")
new_s=$(build new "$new_commit")
printf 'clean release build: %s (%s) %.0f s, %s (%s) %.0f s, added %.0f s\n' \
    "$BASE" "${base_commit:0:7}" "$base_s" "$NEW" "${new_commit:0:7}" "$new_s" "$(echo "$new_s - $base_s" | bc)"
