#!/usr/bin/env bash
# A real multi-host test of the cluster roles on one Linux machine: three network namespaces joined
# by a bridge act as three hosts with their own addresses, so every message crosses a real (virtual)
# network between separate network stacks.
#
#   prcs-h1-PID  10.77.0.1  precis-coordinator --bind tcp://10.77.0.1:* --endpoint-file …
#   prcs-h2-PID  10.77.0.2  precis-ps (ps0), precis-worker (w0)
#   prcs-h3-PID  10.77.0.3  precis-worker (w1)
#
# It trains bart-tiny (64 SAMSum validation examples, batch 4, sync, heartbeats every 0.2 s, a member
# is lost after 2 s of silence) for MAX_STEPS steps. Once the coordinator logs step >= KILL_AT and w1
# has joined, every process in h3 gets SIGKILL (as if the host died). The test passes when:
#   - the coordinator logs that w1 is lost (or gone: no heartbeat),
#   - training reaches MAX_STEPS with the remaining worker,
#   - the coordinator exits 0 and output_dir/model.safetensors exists,
#   - ps0 and w0 exit 0 once the coordinator ends the run.
# On failure it exits non-zero after printing the tails of every log (KEEP=1 keeps the temporary
# directory on success too; it is always kept on failure).
#
# Usage (as root; `make test-multihost` builds first):
#   BIN_DIR=.build/release bash tools/multihost/netns_test.sh
# Environment: BIN_DIR (default .build/release), MAX_STEPS (30), KILL_AT (5), TIMEOUT (seconds for
# the whole run, 600), KEEP (1: keep the temporary directory).
#
# Needs root and iproute2 with `ip netns`; without them it prints `SKIP: <reason>` and exits 0.
# Interface and namespace names carry this script's PID (prcs-br-PID, prcs-vN-PID, prcs-hN-PID), so
# concurrent runs do not collide; a trap removes the processes, namespaces, veths and the bridge on
# every exit, including failures and Ctrl-C. If bridged traffic is filtered on this machine
# (br_netfilter with bridge-nf-call-iptables=1 and a FORWARD policy of DROP), the connectivity check
# fails with a hint.
set -u -o pipefail

cd "$(dirname "$0")/../.." || exit 1
REPO=$(pwd)
BIN_DIR=${BIN_DIR:-.build/release}
case "$BIN_DIR" in /*) ;; *) BIN_DIR="$REPO/$BIN_DIR" ;; esac
MAX_STEPS=${MAX_STEPS:-30}
KILL_AT=${KILL_AT:-5}
TIMEOUT=${TIMEOUT:-600}
KEEP=${KEEP:-0}

. "$REPO/tools/lib/netns_hosts.sh"
netns_preflight "$BIN_DIR" precis precis-coordinator precis-ps precis-worker
[ "$KILL_AT" -lt "$MAX_STEPS" ] || { echo "FAIL: KILL_AT ($KILL_AT) must be below MAX_STEPS ($MAX_STEPS)"; exit 1; }

ID=$$
BR=prcs-br-$ID                         # interface names stay within 15 characters (PIDs have at most 7 digits)
NS=(prcs-h1-$ID prcs-h2-$ID prcs-h3-$ID)
VETH=(prcs-v1-$ID prcs-v2-$ID prcs-v3-$ID)
PEER=(prcs-p1-$ID prcs-p2-$ID prcs-p3-$ID)
ADDR=(10.77.0.1 10.77.0.2 10.77.0.3)
TMP=$(mktemp -d /tmp/precis-netns.XXXXXX)
PIDS=()
FAILED=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    netns_remove_all "${PIDS[@]}"
    netns_keep_or_remove "$TMP" "$rc" "$KEEP"
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT
trap 'echo "terminated"; exit 143' TERM

LOGS=(coordinator ps0 w0 w1)
show_logs() {
    for n in "${LOGS[@]}"; do
        [ -f "$TMP/$n.log" ] || continue
        local lines=15
        [ "$n" = coordinator ] && lines=40
        echo "---- $n.log (last $lines lines) ----"
        tail -n "$lines" "$TMP/$n.log"
    done
}
fail() {
    echo "FAIL: $*"
    FAILED=1
    show_logs
    exit 1
}

# ---- three hosts ----
netns_bridge "$BR"
for i in 0 1 2; do netns_host "${NS[$i]}" "${ADDR[$i]}" "${VETH[$i]}" "${PEER[$i]}"; done
echo "hosts: ${NS[0]} ${ADDR[0]}, ${NS[1]} ${ADDR[1]}, ${NS[2]} ${ADDR[2]} on bridge $BR"

# ---- the run ----
DATA="$REPO/data/samsum/validation.jsonl"
if [ ! -f "$DATA" ]; then
    xz -dc "$REPO/data/samsum/validation.jsonl.xz" > "$TMP/validation.jsonl" || fail "cannot decompress the SAMSum validation split"
    DATA="$TMP/validation.jsonl"
fi
cat > "$TMP/train.yaml" <<EOF
training:
  output_dir: $TMP/out
  model: bart-tiny
  tokenizer: $REPO/Tests/Fixtures/tokenizer/samsum-bpe-8192.json
  train_file: $DATA
  max_train_samples: 64
  per_device_train_batch_size: 4
  max_steps: $MAX_STEPS
  max_source_length: 128
  max_target_length: 32
  logging_steps: 1
cluster:
  coordinator: tcp://10.77.0.1:*
  servers: 1
  workers: 2
  heartbeat_interval: 0.2
  heartbeat_timeout: 2
  consistency: sync
EOF

START=$(date +%s)
elapsed() { echo $(( $(date +%s) - START )); }
# The highest "step N/M" progress line of the coordinator's log (0 if none yet).
max_step() { grep -oE 'step [0-9]+/[0-9]+' "$TMP/coordinator.log" 2>/dev/null | sed -E 's/step ([0-9]+).*/\1/' | sort -n | tail -1 | grep . || echo 0; }
alive() { kill -0 "$1" 2>/dev/null; }

# The roles listen on the bridge, not loopback: they need the cluster's keys (CurveZMQ).
"$BIN_DIR/precis" keys generate --out "$TMP/keys" > /dev/null || fail "precis keys generate failed"
KEYS=(--keys "$TMP/keys")
ip netns exec "${NS[0]}" "$BIN_DIR/precis-coordinator" --config "$TMP/train.yaml" --bind "tcp://${ADDR[0]}:*" "${KEYS[@]}" \
    --endpoint-file "$TMP/coordinator.endpoint" > "$TMP/coordinator.log" 2>&1 &
COORD=$!; PIDS+=("$COORD")
until [ -s "$TMP/coordinator.endpoint" ]; do
    alive "$COORD" || fail "the coordinator exited before it was listening"
    [ "$(elapsed)" -lt 120 ] || fail "the coordinator did not write its endpoint file within 120 s"
    sleep 0.2
done
EP=$(cat "$TMP/coordinator.endpoint")
PORT=${EP##*:}
echo "coordinator (pid $COORD) listening at $EP"
case "$EP" in tcp://${ADDR[0]}:*) ;; *) fail "the coordinator's endpoint is $EP, expected tcp://${ADDR[0]}:PORT" ;; esac

# The network between the hosts works (a plain TCP connect to the coordinator from h2 and h3).
for i in 1 2; do
    ip netns exec "${NS[$i]}" timeout 5 bash -c "exec 3<>/dev/tcp/${ADDR[0]}/$PORT" 2>/dev/null \
        || fail "${NS[$i]} cannot reach ${ADDR[0]}:$PORT over $BR (is bridged traffic filtered? see /proc/sys/net/bridge/bridge-nf-call-iptables and the FORWARD chain)"
done

ip netns exec "${NS[1]}" "$BIN_DIR/precis-ps" --coordinator "$EP" --host "${ADDR[1]}" --name ps0 --threads 1 "${KEYS[@]}" > "$TMP/ps0.log" 2>&1 &
PS0=$!; PIDS+=("$PS0")
ip netns exec "${NS[1]}" "$BIN_DIR/precis-worker" --coordinator "$EP" --host "${ADDR[1]}" --name w0 --threads 1 "${KEYS[@]}" > "$TMP/w0.log" 2>&1 &
W0=$!; PIDS+=("$W0")
ip netns exec "${NS[2]}" "$BIN_DIR/precis-worker" --coordinator "$EP" --host "${ADDR[2]}" --name w1 --threads 1 "${KEYS[@]}" > "$TMP/w1.log" 2>&1 &
W1=$!; PIDS+=("$W1")
echo "started ps0 (pid $PS0) and w0 (pid $W0) in ${NS[1]}, w1 (pid $W1) in ${NS[2]}"

# ---- kill host 3 mid-run ----
until [ "$(max_step)" -ge "$KILL_AT" ] && grep -qE 'worker w1 .*joined' "$TMP/coordinator.log"; do
    alive "$COORD" || fail "the coordinator exited at step $(max_step), before step $KILL_AT with w1 joined"
    [ "$(elapsed)" -lt "$TIMEOUT" ] || fail "no step $KILL_AT with w1 joined within $TIMEOUT s"
    sleep 0.1
done
AT=$(max_step)
[ "$AT" -lt "$MAX_STEPS" ] || fail "training reached step $AT of $MAX_STEPS before w1 could be killed; raise MAX_STEPS"
VICTIMS=$(ip netns pids "${NS[2]}" | tr '\n' ' ')
[ -n "${VICTIMS// /}" ] || fail "no process in ${NS[2]} to kill (w1 already gone?)"
kill -9 $VICTIMS
echo "step $AT: killed every process in ${NS[2]} ($VICTIMS) with SIGKILL"
wait "$W1" 2>/dev/null

# ---- the coordinator notices and carries on ----
until grep -qE 'w1\b.*(lost|no heartbeat|gone|dead)' "$TMP/coordinator.log"; do
    alive "$COORD" || break
    [ "$(elapsed)" -lt "$TIMEOUT" ] || fail "the coordinator did not report w1 lost within $TIMEOUT s"
    sleep 0.2
done
grep -qE 'w1\b.*(lost|no heartbeat|gone|dead)' "$TMP/coordinator.log" || fail "the coordinator ended without reporting w1 lost"
echo "coordinator: $(grep -E 'w1\b.*(lost|no heartbeat|gone|dead)' "$TMP/coordinator.log" | head -1)"

while alive "$COORD"; do
    [ "$(elapsed)" -lt "$TIMEOUT" ] || fail "training did not finish within $TIMEOUT s (at step $(max_step) of $MAX_STEPS)"
    sleep 0.5
done
wait "$COORD"; CRC=$?
[ "$CRC" = 0 ] || fail "the coordinator exited with status $CRC"
LAST=$(max_step)
[ "$LAST" -ge "$MAX_STEPS" ] || fail "the coordinator exited at step $LAST, not $MAX_STEPS"
[ -s "$TMP/out/model.safetensors" ] || fail "no model written ($TMP/out/model.safetensors missing)"
echo "coordinator exited 0 after step $LAST/$MAX_STEPS; model written to $TMP/out/model.safetensors"

# ---- the surviving members leave when told ----
for pair in "ps0:$PS0" "w0:$W0"; do
    n=${pair%%:*}; p=${pair#*:}
    t0=$(date +%s)
    while alive "$p"; do
        [ $(( $(date +%s) - t0 )) -lt 30 ] || fail "$n (pid $p) still running 30 s after the coordinator ended the run"
        sleep 0.2
    done
    wait "$p"; rc=$?
    [ "$rc" = 0 ] || fail "$n exited with status $rc"
done
echo "ps0 and w0 exited 0"
echo "PASS: multi-host run over ${NS[*]} survived losing ${NS[2]} at step $AT and finished $MAX_STEPS steps in $(elapsed) s"

# ---- the same three hosts through `precis cluster up / status / down` over "ssh" ----
# `precis cluster` reaches a host with ssh: `$PRECIS_SSH DEST 'SCRIPT'`. Here the stand-in for ssh
# runs SCRIPT inside the network namespace named DEST, so the remote-host path of cluster up (roles
# started in another host's network, pid files, the endpoint file, status queries, down) runs for
# real against three hosts. This machine joins the bridge as 10.77.0.254 to reach the coordinator.
[ -x "$BIN_DIR/precis" ] || fail "$BIN_DIR/precis is missing; build first"
ip addr add 10.77.0.254/24 dev "$BR" || fail "cannot give this machine an address on $BR"
printf '#!/bin/sh\n# ssh DEST SCRIPT: SCRIPT in network namespace DEST\nns=$1; shift\nexec ip netns exec "$ns" sh -c "$*"\n' > "$TMP/fake-ssh"
chmod +x "$TMP/fake-ssh"
sed -e "s#output_dir: $TMP/out#output_dir: $TMP/out2#" -e "s#max_steps: $MAX_STEPS#max_steps: 100000#" "$TMP/train.yaml" > "$TMP/train2.yaml"
{
    echo "config: $TMP/train2.yaml"
    echo "run_dir: $TMP/run"
    echo "bin_dir: $BIN_DIR"
    echo "coordinator: {host: ${ADDR[0]}, port: \"*\"}"
    echo "hosts:"
    echo "  - {address: ${ADDR[0]}, ssh: ${NS[0]}, workdir: $REPO, servers: 0, workers: 0}"
    echo "  - {address: ${ADDR[1]}, ssh: ${NS[1]}, workdir: $REPO, servers: 1, workers: 1}"
    echo "  - {address: ${ADDR[2]}, ssh: ${NS[2]}, workdir: $REPO, servers: 0, workers: 1}"
} > "$TMP/cluster.yaml"
LOGS=()
export PRECIS_SSH="$TMP/fake-ssh"
"$BIN_DIR/precis" cluster up --cluster "$TMP/cluster.yaml" > "$TMP/up.out" 2>&1 || { cat "$TMP/up.out"; fail "precis cluster up failed"; }
for n in coordinator ps0 w0 w1; do
    [ -f "$TMP/run/$n.pid" ] || { cat "$TMP/up.out"; fail "cluster up wrote no $TMP/run/$n.pid"; }
done
in_ns() { ip netns pids "$1" | grep -qx "$2"; }
in_ns "${NS[0]}" "$(cat "$TMP/run/coordinator.pid")" || fail "the coordinator does not run in ${NS[0]}"
in_ns "${NS[1]}" "$(cat "$TMP/run/ps0.pid")" || fail "ps0 does not run in ${NS[1]}"
in_ns "${NS[2]}" "$(cat "$TMP/run/w1.pid")" || fail "w1 does not run in ${NS[2]}"
t0=$(date +%s)
until grep -qE 'step [0-9]+/' "$TMP/run/coordinator.log" 2>/dev/null; do
    [ $(( $(date +%s) - t0 )) -lt 120 ] || { tail -20 "$TMP/run/coordinator.log"; fail "the cluster started with cluster up did not train within 120 s"; }
    sleep 0.5
done
"$BIN_DIR/precis" cluster status --cluster "$TMP/cluster.yaml" > "$TMP/status.out" 2>&1 || { cat "$TMP/status.out"; fail "precis cluster status failed"; }
grep -q "4 of 4 process(es) alive (2 worker(s))" "$TMP/status.out" || { cat "$TMP/status.out"; fail "cluster status does not show 4 live processes"; }
"$BIN_DIR/precis" cluster down --cluster "$TMP/cluster.yaml" --timeout 20 > "$TMP/down.out" 2>&1 || { cat "$TMP/down.out"; fail "precis cluster down failed"; }
for ns in "${NS[@]}"; do
    [ -z "$(ip netns pids "$ns" | tr -d '\n')" ] || fail "processes left in $ns after cluster down"
done
echo "PASS: precis cluster up / status / down over ssh (into the namespaces) started the roles on three hosts, trained, and stopped them"
