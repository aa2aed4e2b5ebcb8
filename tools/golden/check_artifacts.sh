#!/usr/bin/env bash
# The model folders a run leaves, loaded by transformers 5 (`make check-artifacts`):
# short runs of each family (in process, and on a local cluster with checkpoints, evaluation
# and load_best_model_at_end), then tools/golden/check_model_folder.py on every output_dir and a
# checkpoint: AutoTokenizer with the family's class (or TokenizersBackend when the family's class
# would rebuild the tokenizer differently) and model_max_length, the same token ids as
# tokenizer.json, truncation + generate, and the model card's usage snippet.
#
#   PRECIS=.build/release/precis VENV=.venv-golden bash tools/golden/check_artifacts.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
PRECIS="${PRECIS:-.build/release/precis}"
PY="${VENV:-$ROOT/.venv-golden}/bin/python"
DATA="${DATA:-data/samsum/validation.jsonl}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

run() {  # NAME MODEL TOKENIZER CLASS [extra training keys...]
  local name=$1 model=$2 tok=$3 cls=$4; shift 4
  {
    echo "training:"
    echo "  output_dir: $WORK/$name"
    echo "  model: $model"
    echo "  tokenizer: $tok"
    echo "  train_file: $DATA"
    echo "  max_train_samples: 16"
    echo "  max_source_length: 64"
    echo "  max_target_length: 16"
    echo "  per_device_train_batch_size: 4"
    echo "  max_steps: 4"
    echo "  logging_steps: 2"
    echo "  save_strategy: 'no'"
    for kv in "$@"; do echo "  $kv"; done
  } > "$WORK/$name.yaml"
  echo "== $name: $model with $(basename "$tok")"
  "$PRECIS" train --config "$WORK/$name.yaml" --in-process --threads 1 > "$WORK/$name.log"
  "$PY" tools/golden/check_model_folder.py "$WORK/$name" --tokenizer-class "$cls" --card
}

run bart bart-tiny Tests/Fixtures/tokenizer/samsum-bpe-8192.json BartTokenizer
run t5 t5-tiny Tests/Fixtures/tokenizer/unigram/t5.json T5Tokenizer "source_prefix: 'summarize: '"
# T5's layout under Pegasus: PegasusTokenizer would add its reserved tokens, so the generic class.
run pegasus pegasus-tiny Tests/Fixtures/tokenizer/unigram/t5.json TokenizersBackend
# A tokenizer Precis trains (SentencePiece Unigram, T5's layout) for T5: it normalizes with NMT + NFKC,
# which T5Tokenizer's rebuild would drop ("ﬁne Ｔｅｓｔ" would tokenize differently), so the generic class.
"$PRECIS" tokenizer train --model unigram --data "$DATA" --fields dialogue,summary --vocab-size 800 --out "$WORK/unigram.json" 2> /dev/null
run t5-trained t5-tiny "$WORK/unigram.json" TokenizersBackend

# A local cluster per family: checkpoints every 2 steps, evaluation on the worker, the best model
# loaded at the end; the output folder and a checkpoint must load in transformers.
cluster_run() {  # NAME MODEL TOKENIZER CLASS [extra training keys...]
  local name=$1 model=$2 tok=$3 cls=$4; shift 4
  {
    echo "training:"
    echo "  output_dir: $WORK/$name"
    echo "  model: $model"
    echo "  tokenizer: $tok"
    echo "  train_file: $DATA"
    echo "  validation_file: $DATA"
    echo "  max_train_samples: 16"
    echo "  max_eval_samples: 4"
    echo "  max_source_length: 64"
    echo "  max_target_length: 16"
    echo "  per_device_train_batch_size: 4"
    echo "  max_steps: 4"
    echo "  logging_steps: 2"
    echo "  save_strategy: steps"
    echo "  save_steps: 2"
    echo "  eval_strategy: steps"
    echo "  eval_steps: 2"
    echo "  predict_with_generate: true"
    echo "  generation_max_length: 8"
    echo "  load_best_model_at_end: true"
    echo "  metric_for_best_model: loss"
    for kv in "$@"; do echo "  $kv"; done
    echo "cluster:"
    echo "  servers: 1"
    echo "  workers: 1"
  } > "$WORK/$name.yaml"
  echo "== $name: $model on a local cluster, checkpoints and load_best_model_at_end"
  "$PRECIS" train --config "$WORK/$name.yaml" > "$WORK/$name.log"
  "$PY" tools/golden/check_model_folder.py "$WORK/$name" --tokenizer-class "$cls" --card
  "$PY" tools/golden/check_model_folder.py "$WORK/$name/checkpoint-2" --tokenizer-class "$cls"
}

cluster_run cluster bart-tiny Tests/Fixtures/tokenizer/samsum-bpe-8192.json BartTokenizer
cluster_run cluster-t5 t5-tiny Tests/Fixtures/tokenizer/unigram/t5.json T5Tokenizer "source_prefix: 'summarize: '"
cluster_run cluster-pegasus pegasus-tiny Tests/Fixtures/tokenizer/unigram/t5.json TokenizersBackend
echo "check-artifacts: every folder loads in transformers 5"
