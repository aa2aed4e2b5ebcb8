#!/usr/bin/env bash
# Builds the libFuzzer targets (tools/fuzz/<target>.swift): the package's library modules compiled
# by SwiftPM with -sanitize=fuzzer,address in their own build path (.build-fuzz, debug: overflow and
# bounds checks stay on, so a parser that leans on them instead of throwing is a crash here, as it
# would be silent memory corruption in the -Ounchecked release build), then each target linked
# against them with swiftc. Prints SKIP and exits 0 when the toolchain has no libFuzzer.
#   tools/fuzz/build.sh [target...]        (default: every target)
set -euo pipefail
cd "$(dirname "$0")/../.."
SWIFT=${SWIFT:-swift}
SWIFTC=${SWIFTC:-swiftc}
BUILD=${FUZZ_BUILD_PATH:-.build-fuzz}
ALL_TARGETS="wire safetensors tokenizer modelconfig trainconfig data torch spiece trainerstate"
TARGETS=${*:-$ALL_TARGETS}
SANITIZE=-sanitize=fuzzer,address

# Each target: the module it fuzzes (SwiftPM builds that module's dependencies with it) and the
# modules whose objects it links (that module and its dependencies, as in Package.swift).
module_of() {
    case $1 in
        wire) echo PrecisWire ;;
        safetensors) echo PrecisCore ;;
        tokenizer) echo PrecisText ;;
        modelconfig) echo PrecisModels ;;
        trainconfig) echo PrecisTrain ;;
        data) echo PrecisData ;;
        torch) echo PrecisCore ;;
        spiece) echo PrecisText ;;
        trainerstate) echo PrecisTrain ;;
        *) echo "unknown fuzz target '$1' (targets: $ALL_TARGETS)" >&2; exit 2 ;;
    esac
}
CORE="PrecisCore PrecisKernels PrecisAVX512 PrecisAVX2 CSpin CBF16Kernels"
links_of() {
    case $1 in
        wire) echo "PrecisWire CCRC32C" ;;
        safetensors) echo "$CORE" ;;
        tokenizer) echo "PrecisText" ;;
        modelconfig) echo "PrecisModels $CORE" ;;
        trainconfig) echo "PrecisTrain PrecisWire CCRC32C PrecisHub PrecisData PrecisModels PrecisText $CORE Yams CYaml" ;;
        data) echo "PrecisData PrecisModels PrecisText $CORE" ;;
        torch) echo "$CORE" ;;
        spiece) echo "PrecisText" ;;
        trainerstate) echo "PrecisTrain PrecisWire CCRC32C PrecisHub PrecisData PrecisModels PrecisText $CORE Yams CYaml" ;;
    esac
}

# Does this toolchain have libFuzzer? (Apple's Xcode toolchain, for one, does not.)
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
cat > "$probe/probe.swift" <<'EOF'
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt { 0 }
EOF
if ! "$SWIFTC" $SANITIZE -parse-as-library "$probe/probe.swift" -o "$probe/probe" >"$probe/log" 2>&1; then
    echo "SKIP: $SWIFTC cannot build a libFuzzer target ($SANITIZE): $(head -c 300 "$probe/log" | tr '\n' ' ')"
    exit 0
fi

# One `swift build` per module that no other requested target already builds (a module is built
# with everything it links, `links_of`): each invocation costs ~10 s of package loading even when
# there is nothing to compile.
wanted=""
for t in $TARGETS; do m=$(module_of "$t"); case " $wanted " in *" $m "*) ;; *) wanted="$wanted $m" ;; esac; done
modules=""
for m in $wanted; do
    covered=0
    for t in $TARGETS; do
        [ "$(module_of "$t")" = "$m" ] && continue
        case " $(links_of "$t") " in *" $m "*) covered=1 ;; esac
    done
    [ $covered = 1 ] || modules="$modules $m"
done
for m in $modules; do
    echo "building $m (instrumented) in $BUILD"
    "$SWIFT" build --build-path "$BUILD" --target "$m" -Xswiftc $SANITIZE -Xcc -fsanitize=fuzzer-no-link,address
done

BIN=$("$SWIFT" build --build-path "$BUILD" --show-bin-path)
mkdir -p "$BUILD/fuzz"
for t in $TARGETS; do
    objects=()
    for m in $(links_of "$t"); do
        mapfile -t objs < <(find "$BIN/$m.build" -name '*.o' | sort)
        if [ -d "Sources/$m" ]; then
            # Only the objects of sources that exist now: a renamed or deleted file leaves its old
            # object behind in an incremental build, and linking it would define symbols twice.
            kept=()
            for o in "${objs[@]}"; do
                [ -n "$(find "Sources/$m" -name "$(basename "$o" .o)" -print -quit)" ] && kept+=("$o")
            done
            objs=("${kept[@]}")
        fi
        [ ${#objs[@]} -gt 0 ] || { echo "no objects for $m in $BIN/$m.build" >&2; exit 1; }
        objects+=("${objs[@]}")
    done
    # The C modules' maps SwiftPM wrote (the system libraries' are in Sources/).
    maps=()
    for map in "$BIN"/*.build/module.modulemap; do [ -f "$map" ] && maps+=(-Xcc -fmodule-map-file="$map"); done
    echo "linking $BUILD/fuzz/$t"
    "$SWIFTC" $SANITIZE -parse-as-library -g -module-name "Fuzz_$t" "tools/fuzz/$t.swift" "${objects[@]}" \
        -I "$BIN/Modules" -I Sources/CZMQ -I Sources/CLZ4 -I Sources/COpenBLAS -I Sources/CCurl "${maps[@]}" \
        -lzmq -llz4 -lopenblas -lcurl -o "$BUILD/fuzz/$t" 2>&1 | { grep -v 'Cannot export local symbol' || true; }
    [ -x "$BUILD/fuzz/$t" ] || { echo "linking $t failed" >&2; exit 1; }
done
echo "built: $(for t in $TARGETS; do printf '%s ' "$BUILD/fuzz/$t"; done)"
