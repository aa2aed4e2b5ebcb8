#!/usr/bin/env bash
# Fails when a vector-ISA module (PrecisAVX512, compiled for skylake-avx512; PrecisAVX2, for
# haswell) defines a weak symbol that another module defines too. Swift emits a stdlib generic's
# specialization (e.g. SIMD8<Float>.max()) into every module that uses it, with linkonce linkage;
# the linker keeps one copy for all, so a copy compiled with AVX-512 (or AVX2) instructions could
# run in the portable kernels, or in the AVX2 build, on a CPU without that ISA (SIGILL). The two
# ISA modules compile the same source, so they are checked against each other too.
# Usage: bash tools/check_isa_symbols.sh [BUILD_DIR]   (default .build/release)
set -euo pipefail
BUILD="${1:-.build/release}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
status=0
for isa in PrecisAVX512 PrecisAVX2; do
  mod="$BUILD/$isa.build"
  if ! ls "$mod"/*.o >/dev/null 2>&1; then echo "check_isa_symbols: no objects in $mod (build first)" >&2; exit 2; fi
  # Weak or linkonce definitions (W/V), leaving out the per-module reflection markers every module
  # has and GOT entries (`got.…`: addresses of other modules' descriptors, data, not code).
  nm "$mod"/*.o | awk '$2 ~ /^[WV]$/ {print $3}' | grep -v -E '^(__swift_reflection_version|symbolic.*|got\..*)$' | sort -u > "$tmp/isa" || true
  for dir in "$BUILD"/*.build; do
    [ "$dir" = "$mod" ] && continue
    ls "$dir"/*.o >/dev/null 2>&1 || continue
    nm "$dir"/*.o 2>/dev/null | awk '$2 ~ /^[TtWwVv]$/ {print $3}' | sort -u > "$tmp/other"
    shared="$(comm -12 "$tmp/isa" "$tmp/other")"
    if [ -n "$shared" ]; then
      echo "check_isa_symbols: $(basename "$dir" .build) and $isa both define:" >&2
      echo "$shared" | swift demangle 2>/dev/null | sed 's/^/  /' >&2 || echo "$shared" | sed 's/^/  /' >&2
      status=1
    fi
  done
done
[ $status -eq 0 ] && echo "check_isa_symbols: PrecisAVX512 and PrecisAVX2 share no weak symbol with another module"
exit $status
