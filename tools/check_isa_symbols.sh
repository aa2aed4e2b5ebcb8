#!/usr/bin/env bash
# Fails when the AVX-512 module (compiled for skylake-avx512) defines a weak symbol that another
# module defines too. Swift emits a stdlib generic's specialization (e.g. SIMD8<Float>.max()) into
# every module that uses it, with linkonce linkage; the linker keeps one copy for all, so the copy
# compiled with AVX-512 instructions could run in the portable kernels on a CPU without AVX-512
# (SIGILL). Usage: bash tools/check_isa_symbols.sh [BUILD_DIR]   (default .build/release)
set -euo pipefail
BUILD="${1:-.build/release}"
AVX="$BUILD/PrecisAVX512.build"
if ! ls "$AVX"/*.o >/dev/null 2>&1; then echo "check_isa_symbols: no objects in $AVX (build first)" >&2; exit 2; fi
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
# Weak or linkonce definitions (W/V), leaving out the per-module reflection markers every module has.
nm "$AVX"/*.o | awk '$2 ~ /^[WV]$/ {print $3}' | grep -v -E '^(__swift_reflection_version|symbolic.*)$' | sort -u > "$tmp/avx"
status=0
for dir in "$BUILD"/*.build; do
  [ "$dir" = "$AVX" ] && continue
  ls "$dir"/*.o >/dev/null 2>&1 || continue
  nm "$dir"/*.o 2>/dev/null | awk '$2 ~ /^[TtWwVv]$/ {print $3}' | sort -u > "$tmp/other"
  shared="$(comm -12 "$tmp/avx" "$tmp/other")"
  if [ -n "$shared" ]; then
    echo "check_isa_symbols: $(basename "$dir" .build) and PrecisAVX512 both define:" >&2
    echo "$shared" | swift demangle 2>/dev/null | sed 's/^/  /' >&2 || echo "$shared" | sed 's/^/  /' >&2
    status=1
  fi
done
[ $status -eq 0 ] && echo "check_isa_symbols: PrecisAVX512 shares no weak symbol with another module"
exit $status
