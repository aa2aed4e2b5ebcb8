#!/usr/bin/env bash
# The clean release build time of two commits, each in a temporary clone of this repository built
# from scratch (`swift build -c release --scratch-path .build-measure`: packages resolved from their
# local copies, nothing reused from .build). Prints wall-clock and CPU (user + system) seconds for
# both and the differences: what a change (e.g. new package dependencies) adds to CI's release
# build. CPU seconds hardly depend on what else the machine runs; wall-clock seconds do.
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
    (cd "$dir" && /usr/bin/time -f "%e %U %S" -o "$work/$1.time" swift build -c release --scratch-path .build-measure >"$work/$1.log" 2>&1) \
        || { tail -20 "$work/$1.log" >&2; exit 1; }
    awk '{ printf "%.0f %.0f\n", $1, $2 + $3 }' "$work/$1.time"   # wall, cpu
}

read -r base_wall base_cpu < <(build base "$base_commit")
read -r new_wall new_cpu < <(build new "$new_commit")
echo "clean release build, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg):"
echo "  $BASE (${base_commit:0:7}): ${base_wall} s wall, ${base_cpu} s CPU"
echo "  $NEW (${new_commit:0:7}): ${new_wall} s wall, ${new_cpu} s CPU"
echo "  added: $((new_wall - base_wall)) s wall, $((new_cpu - base_cpu)) s CPU"
