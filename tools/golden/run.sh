#!/usr/bin/env bash
# Regenerate the BART golden fixtures (Tests/Fixtures/bart/) with PyTorch + transformers.
#
#   bash tools/golden/run.sh                     # throwaway venv in .venv-golden (gitignored)
#   VENV=/work/venv bash tools/golden/run.sh     # reuse an existing venv
#   bash tools/golden/run.sh --check             # regenerate into a temp dir and compare with the committed files
#   bash tools/golden/run.sh --venv-only         # only create/refresh the venv (for benchmarks and full checks)
#   bash tools/golden/run.sh --family t5 [--check]       # the T5 fixtures (Tests/Fixtures/t5, Tests/Fixtures/generation/t5_*)
#   bash tools/golden/run.sh --family pegasus [--check]  # the Pegasus fixtures (Tests/Fixtures/pegasus, …/pegasus/generation)
#   bash tools/golden/run.sh --family formats [--check]  # checkpoint/tokenizer formats (Tests/Fixtures/formats)
#   bash tools/golden/run.sh --family bf16 [--check]     # one training step under torch.autocast bf16 (Tests/Fixtures/bf16)
#
# Extra arguments are passed to make_bart_golden.py.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${VENV:-$ROOT/.venv-golden}"
REQ="$HERE/requirements.txt"
PY="$VENV/bin/python"

have_stack() {
  [ -x "$PY" ] && "$PY" - <<'PYEOF' >/dev/null 2>&1
import torch, transformers, safetensors, tokenizers, rouge_score, accelerate
assert torch.__version__ == "2.13.0+cpu", torch.__version__
assert transformers.__version__ == "5.24.0", transformers.__version__
PYEOF
}

if [ ! -x "$PY" ]; then
  echo "golden: creating venv $VENV"
  python3 -m venv "$VENV"
fi

if have_stack; then
  echo "golden: $VENV already has the pinned stack, skipping install"
else
  echo "golden: installing $REQ into $VENV"
  "$PY" -m pip install --upgrade pip >/dev/null 2>&1 || true
  if ! "$PY" -m pip install -r "$REQ"; then
    echo "golden: plain install failed, retrying with the PyTorch CPU index"
    "$PY" -m pip install --extra-index-url https://download.pytorch.org/whl/cpu -r "$REQ"
  fi
  have_stack || { echo "golden: pinned stack still missing after install" >&2; exit 1; }
fi

cd "$ROOT"
if [ "${1:-}" = "--venv-only" ]; then exit 0; fi
# `--family t5|pegasus`: that family's fixtures (numerics, then generation); extra arguments (--check) go to both.
if [ "${1:-}" = "--family" ]; then
  family="${2:-}"; shift 2
  case "$family" in
    t5)
      "$PY" "$HERE/make_t5_golden.py" --out "$ROOT/Tests/Fixtures/t5" "$@"
      exec "$PY" "$HERE/make_t5_generation_golden.py" --out "$ROOT/Tests/Fixtures/generation" "$@" ;;
    pegasus)
      "$PY" "$HERE/make_pegasus_golden.py" --out "$ROOT/Tests/Fixtures/pegasus" "$@"
      exec "$PY" "$HERE/make_pegasus_generation_golden.py" --out "$ROOT/Tests/Fixtures/pegasus/generation" "$@" ;;
    formats)
      exec "$PY" "$HERE/make_formats_golden.py" --out "$ROOT/Tests/Fixtures/formats" "$@" ;;
    bf16)
      exec "$PY" "$HERE/make_bf16_golden.py" --out "$ROOT/Tests/Fixtures/bf16" "$@" ;;
    *) echo "golden: --family t5, pegasus, formats or bf16" >&2; exit 2 ;;
  esac
fi
exec "$PY" "$HERE/make_bart_golden.py" --out "$ROOT/Tests/Fixtures/bart" "$@"
