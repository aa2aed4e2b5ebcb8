#!/usr/bin/env bash
# Scaling bench (`make bench-scaling`; docs/benchmarks.md, "Scaling past one host"): short sync
# training runs over network namespaces, one per role host, each host's link capped with tc.
#
#   prcs-sc-PID         10.79.0.1       precis-coordinator
#   prcs-ss<i>-PID      10.79.0.(10+i)  precis-ps ps<i>        (i = 1…servers)
#   prcs-sw<j>-PID      10.79.0.(100+j) precis-worker w<j>     (j = 1…workers, 1 thread each)
#
# Every host has its own veth into one bridge. Each direction of each host's link is capped with a
# token bucket (tc tbf: upload on the namespace's side, download on the bridge's side). Latency: this
# kernel has no sch_netem, so a one-way delay on each host's ingress comes from linkfault
# (tools/chaos/linkfault.c, an NFQUEUE program; needs iptables and libnetfilter-queue-dev): a packet
# between two hosts is delayed once, a round trip by twice the delay. (On egress, TCP's small-queue
# limit counts the held packets as still unsent and caps a flow near 15 MB/s at 2 ms; held on the
# receiver's side they are not.) The links run with an MTU of
# $MTU (jumbo frames by default: NFQUEUE cannot keep up with 1500-byte packets at these rates on two
# cores). The runs use the coordinator's `--insecure` mode (no CURVE encryption), like the loopback
# `precis bench cluster`, so what is measured is the links, not the cipher (KEYS=1: with keys).
#
# Per run, one JSON line to $OUT (config; the coordinator's @summary: s/step, compute, encoding,
# waiting, gradient and parameter MB; bytes per link and direction per timed step from each host's
# /sys/class/net counters between the end of step 2 and the last step; the measured round trip
# worker → server), and at the end a table (tools/bench/scaling_table.py).
#
# The grid: GRID, one run per line "MODEL SERVERS WORKERS RATE DELAY_MS" (RATE as tc writes it,
# e.g. 1gbit, 10gbit; DELAY_MS 0 = no linkfault). Default: bart-small over 1 and 10 Gbit/s, 0.1 and
# 2 ms, 1 server × 2 workers and 2 servers × 4 workers; bart-base shapes (facebook/bart-base's
# dimensions and vocabulary, 139.4 M parameters; written to BASE_CONFIG) on 1 and 10 Gbit/s.
# MODEL is bart-base or any preset name (bart-tiny for a quick check of the script).
#
# Environment: BIN_DIR (.build/release: precis, precis-coordinator, precis-ps, precis-worker),
# OUT (runs/bench-scaling/scaling.jsonl, appended to), GRID, STEPS_SMALL (12), STEPS_BASE (6),
# PULL_CODEC (bf16-delta), CODEC (bf16), OVERLAP (true: cluster.overlap_pull), MTU (9000), KEYS (0),
# KEEP (1: keep the temporary folder),
# SAMPLES (512 training examples: start-up stays short).
# bart-small runs batch 8, source ≤ 256, target ≤ 64 (the main job's shape); bart-base runs batch 1,
# source ≤ 64, target ≤ 16 (a shortened step: the bytes per step are the full model's).
# Needs root; without it, or without ip netns, prints `SKIP: <reason>` and exits 0.
set -u -o pipefail

cd "$(dirname "$0")/../.." || exit 1
REPO=$(pwd)
BIN_DIR=${BIN_DIR:-.build/release}
case "$BIN_DIR" in /*) ;; *) BIN_DIR="$REPO/$BIN_DIR" ;; esac
OUT=${OUT:-runs/bench-scaling/scaling.jsonl}
case "$OUT" in /*) ;; *) OUT="$REPO/$OUT" ;; esac
STEPS_SMALL=${STEPS_SMALL:-12}
STEPS_BASE=${STEPS_BASE:-6}
PULL_CODEC=${PULL_CODEC:-bf16-delta}
CODEC=${CODEC:-bf16}
OVERLAP=${OVERLAP:-true}
MTU=${MTU:-9000}
KEYS=${KEYS:-0}
KEEP=${KEEP:-0}
SAMPLES=${SAMPLES:-512}
DEFAULT_GRID="bart-small 1 2 1gbit 0.1
bart-small 1 2 1gbit 2
bart-small 1 2 10gbit 0.1
bart-small 1 2 10gbit 2
bart-small 2 4 1gbit 0.1
bart-small 2 4 1gbit 2
bart-small 2 4 10gbit 0.1
bart-small 2 4 10gbit 2
bart-base 1 2 1gbit 0.1
bart-base 1 2 10gbit 0.1
bart-base 2 2 1gbit 0.1"
GRID=${GRID:-$DEFAULT_GRID}

. "$REPO/tools/lib/netns_hosts.sh"
netns_preflight "$BIN_DIR" precis precis-coordinator precis-ps precis-worker
command -v tc >/dev/null 2>&1 || skip "tc (iproute2) is not installed"
command -v python3 >/dev/null 2>&1 || { echo "FAIL: python3 is needed for the JSON lines and the table"; exit 1; }

ID=$$
BR=psbr$ID                 # interface names stay within 15 characters (PIDs have at most 7 digits)
TMP=$(mktemp -d /tmp/precis-scaling.XXXXXX)
PIDS=()         # this run's background processes (the roles, linkfault)
FAILED=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    teardown
    netns_remove_all
    netns_keep_or_remove "$TMP" "$rc" "$KEEP"
    exit "$rc"
}
# Ends this run's processes (the namespaces' and linkfault's) and removes its hosts.
teardown() {
    netns_remove_hosts "${PIDS[@]}"
    PIDS=()
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT
trap 'echo "terminated"; exit 143' TERM
fail() { echo "FAIL: $*"; FAILED=1; exit 1; }

# linkfault for the delays (no sch_netem here).
netns_bridge "$BR" "$MTU"
LINKFAULT=""
if tc qdisc add dev "$BR" root netem delay 1ms 2>/dev/null; then
    tc qdisc del dev "$BR" root 2>/dev/null
    NETEM=1
else
    NETEM=0
    if command -v iptables >/dev/null 2>&1 && cc -O2 -Wall -o "$TMP/linkfault" "$REPO/tools/chaos/linkfault.c" -lnetfilter_queue 2>"$TMP/cc.err"; then
        LINKFAULT="$TMP/linkfault"
    fi
fi


DATA="$TMP/train.jsonl"
# (head stops reading early: xz's SIGPIPE is expected, so the check is on the result.)
xz -dc "$REPO/data/samsum/train.jsonl.xz" 2>/dev/null | head -n "$SAMPLES" > "$DATA"
[ -s "$DATA" ] || fail "cannot decompress the SAMSum training split (data/samsum/train.jsonl.xz)"
# bart-base's shapes (facebook/bart-base: d_model 768, 6 + 6 layers, 12 heads, FFN 3072, 50265 tokens).
BASE_CONFIG="$TMP/bart-base.json"
cat > "$BASE_CONFIG" <<'EOF'
{"activation_dropout": 0.0, "activation_function": "gelu", "architectures": ["BartForConditionalGeneration"],
 "attention_dropout": 0.0, "bos_token_id": 0, "d_model": 768, "decoder_attention_heads": 12, "decoder_ffn_dim": 3072,
 "decoder_layers": 6, "decoder_start_token_id": 2, "dropout": 0.1, "encoder_attention_heads": 12, "encoder_ffn_dim": 3072,
 "encoder_layers": 6, "eos_token_id": 2, "forced_bos_token_id": 0, "forced_eos_token_id": 2, "init_std": 0.02,
 "is_encoder_decoder": true, "max_position_embeddings": 1024, "model_type": "bart", "pad_token_id": 1,
 "scale_embedding": false, "tie_word_embeddings": true, "vocab_size": 50265}
EOF
KEYARGS=()
if [ "$KEYS" = 1 ]; then
    "$BIN_DIR/precis" keys generate --out "$TMP/keys" > /dev/null || fail "precis keys generate failed"
    KEYARGS=(--keys "$TMP/keys")
fi
mkdir -p "$(dirname "$OUT")"

# add_host NAME ADDR RATE DELAY_MS: a namespace with a capped veth into the bridge.
add_host() {
    local name=$1 addr=$2 rate=$3 delay=$4 n=${#NETNS_HOSTS[@]}
    local ns=prcs-s$name-$ID veth=ps${n}v$ID peer=ps${n}p$ID
    netns_host "$ns" "$addr" "$veth" "$peer" "$MTU"
    # Burst: 1 ms at the rate (at least 256 kB), so the bucket's timer granularity does not cap it.
    local bits burst
    bits=$(python3 -c "import re,sys; m=re.fullmatch(r'([0-9.]+)([kmg]?)bit','$rate'); print(int(float(m[1])*{'':1,'k':1e3,'m':1e6,'g':1e9}[m[2]]))") \
        || fail "RATE $rate is not like 1gbit or 500mbit"
    burst=$(( bits / 8 / 1000 )); [ "$burst" -ge 262144 ] || burst=262144
    ip netns exec "$ns" tc qdisc add dev "$peer" root tbf rate "$rate" burst "$burst" latency 20ms || fail "tc tbf on $peer"
    tc qdisc add dev "$veth" root tbf rate "$rate" burst "$burst" latency 20ms || fail "tc tbf on $veth"
    if [ "$delay" != 0 ]; then
        if [ "$NETEM" = 1 ]; then
            fail "netem is available here, but this script only drives linkfault; extend it"
        elif [ -n "$LINKFAULT" ]; then
            ip netns exec "$ns" iptables -w -A INPUT -i "$peer" -j NFQUEUE --queue-num 0 --queue-bypass || fail "iptables NFQUEUE in $ns"
            ip netns exec "$ns" "$LINKFAULT" --queue 0 --delay "$delay" > "$TMP/linkfault-$name.stats" 2>&1 &
            PIDS+=($!)
        else
            fail "a delay needs linkfault (iptables and libnetfilter-queue-dev: apt-get install iptables libnetfilter-queue-dev)"
        fi
    fi
    HOSTNS[$name]=$ns; HOSTLINK[$name]=$peer
}

# The counters of a host's link (bytes it sent and received).
link_bytes() { ip netns exec "${HOSTNS[$1]}" cat "/sys/class/net/${HOSTLINK[$1]}/statistics/tx_bytes" "/sys/class/net/${HOSTLINK[$1]}/statistics/rx_bytes" | tr '\n' ' '; }
max_step() { grep '^@progress ' "$1" 2>/dev/null | grep -oE '"step":[0-9]+' | grep -oE '[0-9]+' | sort -n | tail -1 | grep . || echo 0; }

RUN=0
run_one() {
    local model=$1 servers=$2 workers=$3 rate=$4 delay=$5
    RUN=$(( RUN + 1 ))
    local dir=$TMP/run$RUN steps batch src tgt modelref
    mkdir -p "$dir"
    case "$model" in
        bart-base) steps=$STEPS_BASE; batch=1; src=64; tgt=16; modelref=$BASE_CONFIG ;;
        *) steps=$STEPS_SMALL; batch=8; src=256; tgt=64; modelref=$model ;;
    esac
    declare -gA HOSTNS=() HOSTLINK=()
    add_host c 10.79.0.1 "$rate" "$delay"
    local i names=(c)
    for i in $(seq 1 "$servers"); do add_host "s$i" "10.79.0.$(( 10 + i ))" "$rate" "$delay"; names+=("s$i"); done
    for i in $(seq 1 "$workers"); do add_host "w$i" "10.79.0.$(( 100 + i ))" "$rate" "$delay"; names+=("w$i"); done
    cat > "$dir/train.yaml" <<EOF
training:
  output_dir: $dir/out
  model: $modelref
  tokenizer: $REPO/Tests/Fixtures/tokenizer/samsum-bpe-8192.json
  train_file: $DATA
  max_source_length: $src
  max_target_length: $tgt
  per_device_train_batch_size: $batch
  learning_rate: 7.0e-4
  warmup_steps: 400
  max_grad_norm: 1.0
  label_smoothing_factor: 0.1
  train_sampling_strategy: group_by_length
  max_steps: $steps
  logging_steps: 1000000
  save_strategy: "no"
  seed: 42
cluster:
  coordinator: tcp://10.79.0.1:*
  servers: $servers
  workers: $workers
  consistency: sync
  codec: $CODEC
  pull_codec: $PULL_CODEC
  overlap_pull: $OVERLAP
  threads_per_worker: 1
  start_timeout: 300
EOF
    local sec=(--insecure); [ "$KEYS" = 1 ] && sec=("${KEYARGS[@]}")
    local t0 load0; t0=$(date +%s); load0=$(cut -d' ' -f1 /proc/loadavg)
    ip netns exec "${HOSTNS[c]}" "$BIN_DIR/precis-coordinator" --config "$dir/train.yaml" --bind "tcp://10.79.0.1:*" "${sec[@]}" \
        --endpoint-file "$dir/endpoint" --progress-lines > "$dir/coordinator.log" 2>&1 &
    local coord=$!; PIDS+=("$coord")
    until [ -s "$dir/endpoint" ]; do
        kill -0 "$coord" 2>/dev/null || { tail -20 "$dir/coordinator.log"; fail "the coordinator exited before listening"; }
        [ $(( $(date +%s) - t0 )) -lt 120 ] || fail "no coordinator endpoint within 120 s"
        sleep 0.2
    done
    local ep; ep=$(cat "$dir/endpoint")
    local wk=(); [ "$KEYS" = 1 ] && wk=("${KEYARGS[@]}")
    local pk=(--insecure); [ "$KEYS" = 1 ] && pk=("${KEYARGS[@]}")
    for i in $(seq 1 "$servers"); do
        ip netns exec "${HOSTNS[s$i]}" "$BIN_DIR/precis-ps" --coordinator "$ep" --host "10.79.0.$(( 10 + i ))" --name "ps$i" --threads 1 "${pk[@]}" > "$dir/ps$i.log" 2>&1 &
        PIDS+=($!)
    done
    for i in $(seq 1 "$workers"); do
        ip netns exec "${HOSTNS[w$i]}" "$BIN_DIR/precis-worker" --coordinator "$ep" --host "10.79.0.$(( 100 + i ))" --name "w$i" --threads 1 "${wk[@]}" > "$dir/w$i.log" 2>&1 &
        PIDS+=($!)
    done
    # Round trip worker 1 → server 1 as the processes see it: `ping -U` times the reply when ping reads
    # it, not when the kernel stamped its arrival, which is before the worker's ingress delay.
    local rtt=""
    if command -v ping >/dev/null 2>&1; then
        rtt=$(ip netns exec "${HOSTNS[w1]}" ping -U -c 5 -i 0.2 -q 10.79.0.11 2>/dev/null | sed -nE 's#.*= [0-9.]+/([0-9.]+)/.*#\1#p')
    fi
    # Counters at the end of step 2 and of the last step.
    local before="" after="" s
    while kill -0 "$coord" 2>/dev/null; do
        s=$(max_step "$dir/coordinator.log")
        if [ -z "$before" ] && [ "$s" -ge 2 ]; then before=$(for n in "${names[@]}"; do echo "$n $(link_bytes "$n")"; done); fi
        if [ -z "$after" ] && [ "$s" -ge "$steps" ]; then after=$(for n in "${names[@]}"; do echo "$n $(link_bytes "$n")"; done); fi
        [ $(( $(date +%s) - t0 )) -lt 1800 ] || fail "run $RUN did not finish within 1800 s"
        sleep 0.05
    done
    wait "$coord"; local crc=$?
    [ "$crc" = 0 ] || { tail -30 "$dir/coordinator.log"; fail "run $RUN ($model ${servers}x$workers $rate ${delay}ms): the coordinator exited $crc"; }
    [ -n "$before" ] && [ -n "$after" ] || fail "run $RUN: no progress lines for steps 2 and $steps"
    grep -h '^linkfault:' "$TMP"/linkfault-*.stats 2>/dev/null > "$dir/linkfault.txt"
    teardown
    RUN_MODEL=$model RUN_SERVERS=$servers RUN_WORKERS=$workers RUN_RATE=$rate RUN_DELAY=$delay RUN_STEPS=$steps \
    RUN_BATCH=$batch RUN_SRC=$src RUN_TGT=$tgt RUN_RTT=${rtt:-} RUN_MTU=$MTU RUN_KEYS=$KEYS \
    RUN_CODEC=$CODEC RUN_PULL=$PULL_CODEC RUN_OVERLAP=$OVERLAP RUN_BEFORE="$before" RUN_AFTER="$after" RUN_WALL=$(( $(date +%s) - t0 )) \
    RUN_LOAD="$load0 $(cut -d' ' -f1 /proc/loadavg)" \
        python3 "$REPO/tools/bench/scaling_table.py" --line "$dir/coordinator.log" >> "$OUT" \
        || fail "run $RUN: no @summary line (see $dir/coordinator.log)"
    tail -1 "$OUT" | python3 "$REPO/tools/bench/scaling_table.py" --brief
    rm -f "$TMP"/linkfault-*.stats
}

echo "precis scaling bench: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) core(s); links: tbf per direction, MTU $MTU, delay: $([ -n "$LINKFAULT" ] && echo linkfault || echo none); codecs $CODEC / $PULL_CODEC; lines to $OUT"
FIRST=0; [ -f "$OUT" ] && FIRST=$(wc -l < "$OUT")
while read -r model servers workers rate delay; do
    [ -n "${model:-}" ] || continue
    run_one "$model" "$servers" "$workers" "$rate" "$delay"
done <<< "$GRID"
echo
tail -n +"$(( FIRST + 1 ))" "$OUT" | python3 "$REPO/tools/bench/scaling_table.py" --table
