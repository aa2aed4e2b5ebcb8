# Precis — build, test and run. Every target installs what it needs first (idempotently).
SHELL := /bin/bash
SWIFT ?= swift
APT_PACKAGES := libzmq3-dev libopenblas-dev liblz4-dev libcurl4-openssl-dev pkg-config xz-utils
SAMSUM := data/samsum
SPLITS := train validation test

.PHONY: setup build test data train eval golden golden-venv check-tokenizer-full check-tensorboard check-artifacts bench bench-compare bench-generate clean

# Install the system libraries only when one is missing (apt-get needs root; CI runs as root).
setup:
	@missing=""; for p in $(APT_PACKAGES) $(EXTRA_APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update && $$SUDO apt-get install -y $$missing; \
	fi

# Decompress the bundled corpus and verify it against the checksums in SOURCE.md.
data: $(foreach s,$(SPLITS),$(SAMSUM)/$(s).jsonl)

$(SAMSUM)/%.jsonl: $(SAMSUM)/%.jsonl.xz | setup
	@xz -dc $< > $@.tmp
	@want=$$(grep -F "| $*.jsonl |" $(SAMSUM)/SOURCE.md | sed -E 's/.*`([0-9a-f]{64})`.*/\1/'); \
	 got=$$(sha256sum $@.tmp | cut -d' ' -f1); \
	 if [ "$$want" != "$$got" ]; then echo "$@: sha256 $$got does not match SOURCE.md ($$want)"; rm -f $@.tmp; exit 1; fi
	@mv $@.tmp $@

build: setup
	$(SWIFT) build -c release

# The tests also need a browser: the live page is drawn by headless Chromium against a real cluster.
test: EXTRA_APT_PACKAGES := chromium
test: setup data
	$(SWIFT) build -c release --build-tests
	@# No AVX-512 or AVX2 code may reach the portable kernels through a shared specialization (SIGILL without them).
	bash tools/check_isa_symbols.sh .build/release
	@# The test process loads OpenBLAS with the kernels the executables end with (BLASKernel: Debian's
	@# OpenBLAS falls back to generic SSE3 kernels on CPUs it does not know, and the executables re-exec
	@# with better ones), so the in-process tests multiply as the product does. (The cluster tests'
	@# references are `precis train --in-process` processes and pick the same kernels without this.)
	blas=$$(OPENBLAS_VERBOSE=2 .build/release/precis --help 2>&1 | sed -n 's/^Core: //p' | tail -n 1); \
	  env $${blas:+OPENBLAS_CORETYPE=$${OPENBLAS_CORETYPE:-$$blas}} $(SWIFT) test -c release --skip-build
	@# Again with the vector-ISA kernels off, so the portable kernels are proven on this machine too.
	PRECIS_NO_AVX512=1 PRECIS_NO_AVX2=1 $(SWIFT) test -c release --skip-build --filter "PrecisCoreTests|PrecisModelsTests|PrecisBenchTests"
	@# Three network namespaces as three hosts (needs root, as CI has; prints SKIP without it).
	BIN_DIR=.build/release bash tools/multihost/netns_test.sh
	@# A 20-second libFuzzer smoke of each parser, two at a time (tools/fuzz/; docs/benchmarks.md,
	@# "Fuzzing", has the cost); prints SKIP when the toolchain has no libFuzzer.
	FUZZ_SECONDS=20 FUZZ_SEED=1 FUZZ_JOBS=2 bash tools/fuzz/run.sh

# The main job: a byte-level BPE tokenizer trained on SAMSum train (once), then bart-small from
# scratch on the bundled SAMSum in two stages on the local cluster: BART's denoising pre-training on
# SAMSum's own texts (PRETRAIN=configs/pretrain-samsum.yaml), then summarization fine-tuning from it
# (configs/train-samsum-finetune.yaml); progress bars with ETA; the model folder lands in
# runs/bart-small-samsum. CONFIG=... picks another config (and then no pre-training unless PRETRAIN=
# is given; configs/train-samsum.yaml is the one-stage job from scratch). BF16=auto (the default)
# gives the matrix products bf16 operands where this CPU has AMX and keeps fp32 where it has not,
# AVX-512-BF16 alone being slower than fp32 (docs/benchmarks.md, "The main job in bf16"); BF16=false
# trains in fp32 everywhere, BF16=true refuses a CPU without a bf16 kernel.
CONFIG ?= configs/train-samsum-finetune.yaml
PRETRAIN ?= $(if $(filter configs/train-samsum-finetune.yaml,$(CONFIG)),configs/pretrain-samsum.yaml,)
BF16 ?= auto
train: build data
	@mkdir -p runs
	@# A config with training.tokenizer_model (configs/train-samsum-t5.yaml) has `precis train` train its own.
	@grep -Eq '^[[:space:]]*tokenizer_model:' $(CONFIG) || [ -f runs/tokenizer.json ] || \
	  .build/release/precis tokenizer train --data $(SAMSUM)/train.jsonl \
	  --fields dialogue,summary --vocab-size 8192 --out runs/tokenizer.json
	$(if $(PRETRAIN),.build/release/precis train --config $(PRETRAIN) --bf16 $(BF16))
	.build/release/precis train --config $(CONFIG) --bf16 $(BF16)

# The best from-scratch recipe: denoising pre-training on SAMSum's own texts
# (configs/pretrain-samsum-best.yaml), fine-tuning from it (configs/train-samsum-best.yaml), both in
# one process, then test ROUGE written into the model card; prints the wall time of each stage.
.PHONY: train-best
train-best: build data
	@mkdir -p runs
	@[ -f runs/tokenizer.json ] || .build/release/precis tokenizer train --data $(SAMSUM)/train.jsonl \
	  --fields dialogue,summary --vocab-size 8192 --out runs/tokenizer.json
	BF16=$(BF16) bash tools/recipes/train_best.sh

# Evaluate a saved checkpoint (loss, ROUGE, predictions written beside it in eval-<split>/): on the
# running cluster's workers when its coordinator answers at the config's address, else in this process.
# make eval CHECKPOINT=runs/bart-small-samsum/checkpoint-1000 [SPLIT=test] [EVAL_CONFIG=configs/train-samsum.yaml]
SPLIT ?= test
EVAL_CONFIG ?= configs/train-samsum.yaml
eval: build data
	@[ -n "$(CHECKPOINT)" ] || { echo "usage: make eval CHECKPOINT=DIR [SPLIT=test]"; exit 2; }
	.build/release/precis-coordinator evaluate --checkpoint $(CHECKPOINT) --split $(SPLIT) --config $(EVAL_CONFIG)

# Regenerate the golden fixtures with PyTorch + transformers in a throwaway venv (needs PyPI).
golden:
	bash tools/golden/run.sh

# The throwaway venv alone (.venv-golden), for the checks and benchmarks below.
golden-venv:
	bash tools/golden/run.sh --venv-only

# Every SAMSum dialogue and summary through the Swift tokenizer and Python `tokenizers`: identical ids.
check-tokenizer-full: build data golden-venv
	PRECIS=.build/release/precis bash tools/golden/check_tokenizer_full.sh data/samsum

# A run's TensorBoard event files read by TensorBoard's own reader: every scalar printed.
# The model folders, results and model card a run leaves, loaded by transformers 5 (tokenizer class,
# model_max_length, truncation + generate, the card's usage snippet): tools/golden/check_artifacts.sh.
check-artifacts: build data golden-venv
	PRECIS=.build/release/precis VENV=.venv-golden bash tools/golden/check_artifacts.sh

# Folders `precis init` writes for each family (bart-tiny, t5-tiny and a flan-like T5, pegasus-tiny),
# loaded by transformers' *ForConditionalGeneration with no missing or unexpected keys: the same loss,
# logits and gradients as `precis inspect loss-grad`.
.PHONY: check-roundtrip
check-roundtrip: build golden-venv
	.venv-golden/bin/python tools/golden/check_roundtrip.py --precis .build/release/precis
	.venv-golden/bin/python tools/golden/check_t5_roundtrip.py --precis .build/release/precis
	.venv-golden/bin/python tools/golden/check_pegasus_roundtrip.py --precis .build/release/precis

check-tensorboard: golden-venv
	@[ -n "$(LOGDIR)" ] || { echo "usage: make check-tensorboard LOGDIR=OUTPUT_DIR/runs"; exit 2; }
	.venv-golden/bin/python tools/golden/check_tensorboard.py $(LOGDIR) --expect train/loss train/learning_rate train/grad_norm train/epoch

# Precis's Hub downloads and huggingface_hub's cache read each other (loopback hub; not part of
# `make test`). GOLDEN_PYTHON: a Python with huggingface_hub (default: the golden venv);
# PRECIS: a built precis to check instead of building the release one.
.PHONY: check-hub-cache
check-hub-cache: $(if $(PRECIS),,build)
	@py="$${GOLDEN_PYTHON:-.venv-golden/bin/python}"; [ -x "$$py" ] || bash tools/golden/run.sh --venv-only; \
	"$$py" tools/golden/check_hub_cache.py --precis "$(or $(PRECIS),.build/release/precis)"

# The Hugging Face round trip (tools/golden/check_hub_roundtrip.py; not part of `make test`): transformers
# saves a tiny random BART (and T5 with spiece.model only), a loopback Hub serves it, `precis train` fine-tunes
# it on a cluster (1 server, 2 workers) and pushes it back, transformers loads the push and generates the
# same summaries as `precis summarize --model org/name`. ROUNDTRIP_FAMILIES=bart limits it; PRECIS/GOLDEN_PYTHON as above.
ROUNDTRIP_FAMILIES ?= bart,t5
.PHONY: check-hub-roundtrip
check-hub-roundtrip: data $(if $(PRECIS),,build)
	@py="$${GOLDEN_PYTHON:-.venv-golden/bin/python}"; [ -x "$$py" ] || bash tools/golden/run.sh --venv-only; \
	"$$py" tools/golden/check_hub_roundtrip.py --precis "$(or $(PRECIS),.build/release/precis)" --families "$(ROUNDTRIP_FAMILIES)"

# The training-step benchmark (docs/benchmarks.md); `tools/bench/compare_step.sh` adds PyTorch.
bench: build
	.build/release/precis bench step --config bart-small --batch 8 --source-len 256 --target-len 64 --threads $$(nproc) --profile

# Precis and PyTorch (plain loop and HF Trainer) interleaved on the same step; see docs/benchmarks.md.
bench-compare: build golden-venv
	bash tools/bench/compare_step.sh

# Precis and transformers' generate() interleaved, greedy and 4 beams; see docs/benchmarks.md.
bench-generate: build golden-venv
	bash tools/bench/compare_generate.sh

# 300 steps of the default bart-small recipe in fp32 and with bf16 products, loss curves compared
# against 1 % (docs/benchmarks.md, "bf16 loss curve"). On a CPU without AMX or AVX-512-BF16:
# make bf16-loss-curve PRECIS_BF16_EMULATE=1 (the portable kernel: slow). STEPS=, THREADS= as the script.
.PHONY: bf16-loss-curve
bf16-loss-curve: build data
	bash tools/bench/bf16_loss_curve.sh

clean:
	rm -rf .build

# libFuzzer targets (tools/fuzz/: wire, safetensors, tokenizer, modelconfig, trainconfig, data, torch, spiece, trainerstate), built
# instrumented into .build-fuzz, each run for FUZZ_SECONDS from its seed corpus; prints executions and
# crashes per target (SKIP when the toolchain has no libFuzzer). make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="wire data"]
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
.PHONY: fuzz
fuzz: setup
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash tools/fuzz/run.sh $(FUZZ_TARGETS)

# ---- The cluster (docs/operations.md, "Running a cluster") ----
# CLUSTER names the cluster file (cluster/local.yaml: this machine, 1 server, 2 workers); the processes
# run detached, with logs and pid files in its run_dir (run/ by default).
CLUSTER ?= cluster/local.yaml
PRECIS_BIN ?= .build/release/precis
.PHONY: cluster-up cluster-down cluster-status scale test-multihost

# Builds, decompresses the data and trains the tokenizer configs/train-samsum.yaml names (once, as
# `make train` does), then starts the coordinator, the servers and the workers.
cluster-up: build data
	@mkdir -p runs
	@[ -f runs/tokenizer.json ] || $(PRECIS_BIN) tokenizer train --data $(SAMSUM)/train.jsonl \
	  --fields dialogue,summary --vocab-size 8192 --out runs/tokenizer.json
	$(PRECIS_BIN) cluster up --cluster $(CLUSTER)

cluster-down:
	$(PRECIS_BIN) cluster down --cluster $(CLUSTER)

cluster-status:
	$(PRECIS_BIN) cluster status --cluster $(CLUSTER)

# make scale WORKERS=4
scale:
	@[ -n "$(WORKERS)" ] || { echo "usage: make scale WORKERS=N [CLUSTER=$(CLUSTER)]"; exit 2; }
	$(PRECIS_BIN) cluster scale --workers $(WORKERS) --cluster $(CLUSTER)

# Three network namespaces joined by a bridge act as three hosts; one loses its worker to kill -9
# mid-run and training must still finish. Needs root (prints SKIP otherwise).
test-multihost: build data
	BIN_DIR=.build/release bash tools/multihost/netns_test.sh

# The live page (Sources/PrecisCoordinator/LivePage.swift) in headless Chromium against a recorded
# status: served with python3 -m http.server on loopback, self-check attributes read from the DOM.
# Needs `chromium` (apt-get install chromium). OUT=docs/live-page.png keeps the screenshot.
.PHONY: live-page-check
live-page-check: build
	@command -v chromium >/dev/null || { command -v apt-get >/dev/null && apt-get install -y --no-install-recommends chromium; }
	BIN_DIR=.build/release bash tools/live/check.sh tools/live/status-sample.json $(OUT)

# Scaling bench (tools/bench/scaling.sh; docs/benchmarks.md, "Scaling past one host"): short sync runs
# over network namespaces (a host per role) with tc-capped links, the grid without and then with
# cluster.overlap_pull (the model fits its link, push and update terms on the first set and the pull's
# hidden share on the second); one JSON line per run to runs/bench-scaling/scaling.jsonl and a table. Needs root (SKIP otherwise); the delays come from
# tools/chaos/linkfault.c (iptables, libnetfilter-queue-dev). make bench-scaling [GRID="…"] [BENCH_CORES=1]
# (BENCH_CORES: cores of arithmetic the roles share; this project's VM: 1, its two vCPUs share one core)
.PHONY: bench-scaling
bench-scaling: EXTRA_APT_PACKAGES := libnetfilter-queue-dev iptables iputils-ping
bench-scaling: build data
	rm -f runs/bench-scaling/scaling.jsonl
	OVERLAP=false BIN_DIR=.build/release bash tools/bench/scaling.sh
	OVERLAP=true BIN_DIR=.build/release bash tools/bench/scaling.sh
	.build/release/precis bench scaling --measured runs/bench-scaling/scaling.jsonl $(if $(BENCH_CORES),--bench-cores $(BENCH_CORES))

# Chaos soak (tools/chaos/chaos.sh; docs/operations.md, "Chaos soak"): a sync run over four network
# namespaces with random kill -9 of workers, servers and the coordinator (restarted as recovery
# works) and network faults, checked bitwise against the same run undisturbed. Needs root (SKIP
# otherwise). make chaos [CHAOS_SECONDS=300] [CHAOS_SEED=N] [CHAOS_STEPS=N]
# Without sch_netem in the kernel the delay/jitter/loss/reordering come from tools/chaos/linkfault.c
# (an NFQUEUE program built by chaos.sh): it needs libnetfilter-queue-dev and iptables.
CHAOS_SECONDS ?= 300
.PHONY: chaos
chaos: EXTRA_APT_PACKAGES := libnetfilter-queue-dev iptables iputils-ping
chaos: build data
	CHAOS_SECONDS=$(CHAOS_SECONDS) BIN_DIR=.build/release bash tools/chaos/chaos.sh
