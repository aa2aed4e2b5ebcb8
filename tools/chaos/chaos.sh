#!/usr/bin/env bash
# Chaos soak of a real cluster (`make chaos`): four network namespaces joined by a bridge act as
# four hosts, and a sync run is trained twice over them, the same config both times:
#
#   prcs-c1-PID  10.78.0.1  precis-coordinator (fixed port 5555, so a restart is found at the same address)
#   prcs-c2-PID  10.78.0.2  precis-ps ps0, precis-worker w0
#   prcs-c3-PID  10.78.0.3  precis-ps ps1, precis-worker w1
#   prcs-c4-PID  10.78.0.4  precis-worker w2
#
# 1. undisturbed: nothing happens to it; its final parameters are the reference.
# 2. chaos: for CHAOS_SECONDS, every few seconds one random event (drawn from CHAOS_SEED):
#    - kill -9 of a worker, a server or the coordinator, then a restart the way docs/operations.md
#      says recovery works: the same worker or server name started again (it registers and rejoins;
#      a server's return rolls every server back to the latest checkpoint), the coordinator started
#      again with `--resume` on the same address (the members register again by themselves);
#    - a network fault on one host's link, both directions, for a few seconds: with the kernel's
#      netem qdisc, delay + jitter, loss and reordering (`tc qdisc … netem`); where netem is not
#      available (this prints `SKIP netem: …`), the same knobs from linkfault (tools/chaos/linkfault.c,
#      built here with cc: the host's packets through an NFQUEUE, held delay ± jitter, verdicts in
#      release order, a fraction dropped, a fraction let through at once); without that either
#      (no iptables or libnetfilter-queue), a shallow token bucket (`tbf`: a rate limit whose
#      queue overflows, so packets are dropped and delayed) or a link flap (down 0.3–1.2 s, up).
#    After each event the driver waits until training makes progress again (a new `step N/M` line)
#    before the next one: a run that stops progressing for RECOVERY_TIMEOUT seconds is a FAIL.
#    After CHAOS_SECONDS the run finishes undisturbed.
#
# Checked at the end (FAIL with exit status 1 on any, PASS with 0):
#   - both coordinators exit 0, every surviving member exits 0, each run wrote model.safetensors;
#   - `precis checkpoint verify` loads every checkpoint of both runs and the final models (manifest
#     SHA-256, weights, AdamW moments, every value finite);
#   - sync training is deterministic whoever computes a contribution and however often steps are
#     repeated after a rollback or a resume: the chaos run's final parameters, and every checkpoint
#     step the two runs share, are bitwise equal to the undisturbed run's (the digests
#     `checkpoint verify` prints: SHA-256 of the parameters' bytes);
#   - the chaos run's trainer_state.json holds each step once, with the undisturbed run's loss (to
#     1e-12 relative: the coordinator adds the contributions' loss sums in arrival order): every
#     example of every epoch went into its step exactly once, as a step applied twice or an example
#     lost or counted twice would change the loss of that step (or of every later one).
# Figures printed: events by kind, kills by role, restarts, recoveries (min / median / max
# seconds to the next step), rollbacks and resumes the coordinator logged, TCP segments
# retransmitted per host (/proc/net/snmp of each namespace) and bytes retransmitted (the largest
# `bytes_retrans` `ss -ti` saw per connection, sampled every 2 s: a lower bound), packets the fault
# qdiscs dropped, and the steps.
#
# Usage (as root):  make chaos   or   BIN_DIR=.build/release bash tools/chaos/chaos.sh
# Environment: CHAOS_SECONDS (300), CHAOS_SEED (random; printed, give it again to replay the same
# schedule of events), CHAOS_STEPS (the run's max_steps; default from a calibration run so that the
# chaos lasts through the run), BIN_DIR (.build/release), RECOVERY_TIMEOUT (180), KEEP=1 (keep the
# temporary directory on success too; it is kept on failure).
# Without root or `ip netns` it prints `SKIP: <reason>` and exits 0.
set -u -o pipefail

cd "$(dirname "$0")/../.." || exit 1
REPO=$(pwd)
BIN_DIR=${BIN_DIR:-.build/release}
case "$BIN_DIR" in /*) ;; *) BIN_DIR="$REPO/$BIN_DIR" ;; esac
CHAOS_SECONDS=${CHAOS_SECONDS:-300}
CHAOS_SEED=${CHAOS_SEED:-$(( $(date +%s) % 100000 ))}
CHAOS_STEPS=${CHAOS_STEPS:-}
RECOVERY_TIMEOUT=${RECOVERY_TIMEOUT:-180}
KEEP=${KEEP:-0}

. "$REPO/tools/lib/netns_hosts.sh"
netns_preflight "$BIN_DIR" precis precis-coordinator precis-ps precis-worker
case "$CHAOS_SECONDS$CHAOS_SEED$RECOVERY_TIMEOUT${CHAOS_STEPS:-1}" in *[!0-9]*) echo "FAIL: CHAOS_SECONDS, CHAOS_SEED, CHAOS_STEPS and RECOVERY_TIMEOUT are whole numbers"; exit 1 ;; esac

ID=$$
BR=prcs-cb-$ID
NS=(prcs-c1-$ID prcs-c2-$ID prcs-c3-$ID prcs-c4-$ID)
VETH=(prcs-cv1-$ID prcs-cv2-$ID prcs-cv3-$ID prcs-cv4-$ID)
PEER=(prcs-cp1-$ID prcs-cp2-$ID prcs-cp3-$ID prcs-cp4-$ID)
ADDR=(10.78.0.1 10.78.0.2 10.78.0.3 10.78.0.4)
PORT=5555
EP="tcp://${ADDR[0]}:$PORT"
TMP=$(mktemp -d /tmp/precis-chaos.XXXXXX)
FAILED=0
declare -A PID=() HOSTOF=() BINOF=()
# Which namespace (index) runs each member, and its executable.
HOSTOF=([coordinator]=0 [ps0]=1 [w0]=1 [ps1]=2 [w1]=2 [w2]=3)
BINOF=([coordinator]=precis-coordinator [ps0]=precis-ps [ps1]=precis-ps [w0]=precis-worker [w1]=precis-worker [w2]=precis-worker)
MEMBERS=(ps0 ps1 w0 w1 w2)

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    netns_remove_all "${PID[@]}"
    netns_keep_or_remove "$TMP" "$rc" "$KEEP"
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT
trap 'echo "terminated"; exit 143' TERM

RUN=""          # the run in progress: undisturbed or chaos (its logs are $TMP/$RUN/NAME.log)
show_logs() {
    [ -n "$RUN" ] || return
    for n in coordinator "${MEMBERS[@]}"; do
        [ -f "$TMP/$RUN/$n.log" ] || continue
        local lines=12; [ "$n" = coordinator ] && lines=50
        echo "---- $RUN/$n.log (last $lines lines) ----"
        tail -n "$lines" "$TMP/$RUN/$n.log"
    done
}
fail() { echo "FAIL: $*"; FAILED=1; show_logs; echo "CHAOS_SEED=$CHAOS_SEED replays this schedule"; exit 1; }
START=$(date +%s)
elapsed() { echo $(( $(date +%s) - START )); }
alive() { kill -0 "$1" 2>/dev/null; }

# ---- four hosts ----
netns_bridge "$BR"
for i in 0 1 2 3; do netns_host "${NS[$i]}" "${ADDR[$i]}" "${VETH[$i]}" "${PEER[$i]}"; done
echo "hosts: $(for i in 0 1 2 3; do printf '%s %s  ' "${NS[$i]}" "${ADDR[$i]}"; done)on bridge $BR"

# Is netem there? (a kernel without sch_netem says "Specified qdisc kind is unknown")
NETEM=0
if tc qdisc add dev "${VETH[3]}" root netem delay 10ms 2>"$TMP/tc.err"; then
    NETEM=1; tc qdisc del dev "${VETH[3]}" root 2>/dev/null
    echo "netem: available (delay, jitter, loss and reordering on the links)"
else
    echo "SKIP netem: tc cannot add a netem qdisc here ($(tr -d '\n' < "$TMP/tc.err"); the sch_netem kernel module is missing)"
fi
# Where netem is missing, linkfault (tools/chaos/linkfault.c): the host's packets through an NFQUEUE
# (iptables rules in its namespace, both directions of its link), held for the delay ± jitter and
# given their verdicts in release order (reordering), a fraction dropped, a fraction let through at
# once (netem's `reorder`). tools/chaos/linkfault_check.sh measures that it does what it says.
LINKFAULT=0
if [ "$NETEM" = 0 ]; then
    if ! command -v iptables >/dev/null 2>&1; then
        echo "SKIP linkfault: iptables is not installed (make chaos installs it)"
    elif ! cc -O2 -Wall -o "$TMP/linkfault" "$REPO/tools/chaos/linkfault.c" -lnetfilter_queue 2> "$TMP/cc.err"; then
        echo "SKIP linkfault: cannot build tools/chaos/linkfault.c ($(head -c 300 "$TMP/cc.err" | tr '\n' ' '); libnetfilter-queue-dev installed?)"
    elif ! ip netns exec "${NS[3]}" iptables -w -A OUTPUT -o "${PEER[3]}" -j NFQUEUE --queue-num 3 --queue-bypass 2> "$TMP/ipt.err"; then
        echo "SKIP linkfault: iptables cannot add an NFQUEUE rule here ($(tr -d '\n' < "$TMP/ipt.err"))"
    else
        ip netns exec "${NS[3]}" iptables -w -D OUTPUT -o "${PEER[3]}" -j NFQUEUE --queue-num 3 --queue-bypass
        LINKFAULT=1
        echo "linkfault: netem's delay, jitter, loss and reordering from an NFQUEUE (tools/chaos/linkfault.c)"
    fi
fi
TBF=0
if tc qdisc add dev "${VETH[3]}" root tbf rate 1mbit burst 16kb latency 50ms 2>/dev/null; then TBF=1; tc qdisc del dev "${VETH[3]}" root 2>/dev/null; fi

# ---- the config ----
DATA="$REPO/data/samsum/validation.jsonl"
if [ ! -f "$DATA" ]; then
    xz -dc "$REPO/data/samsum/validation.jsonl.xz" > "$TMP/validation.jsonl" || fail "cannot decompress the SAMSum validation split"
    DATA="$TMP/validation.jsonl"
fi
"$BIN_DIR/precis" keys generate --out "$TMP/keys" > /dev/null || fail "precis keys generate failed"
KEYS=(--keys "$TMP/keys")
# write_config RUN STEPS: 48 examples, 3 contributions of 2 examples per step (8 steps an epoch),
# a checkpoint every 4 steps (every STEPS/60 in longer runs, so at most about 60 are kept), heartbeats every 0.2 s (a member is lost after 4 s of silence: on a
# busy 2-core machine a shorter timeout loses members of the undisturbed run too).
write_config() {
    cat > "$TMP/$1.yaml" <<EOF
training:
  output_dir: $TMP/$1/out
  model: bart-tiny
  tokenizer: $REPO/Tests/Fixtures/tokenizer/samsum-bpe-8192.json
  train_file: $DATA
  max_train_samples: 48
  per_device_train_batch_size: 2
  max_steps: $2
  max_source_length: 64
  max_target_length: 24
  logging_steps: 1
  save_steps: $(( $2 / 60 > 4 ? $2 / 60 : 4 ))
  seed: 7
  report_to: none
cluster:
  coordinator: $EP
  servers: 2
  workers: 3
  heartbeat_interval: 0.2
  heartbeat_timeout: 4
  start_timeout: 10
  consistency: sync
EOF
}

# start NAME [--resume]: the member (or coordinator) in its namespace, appending to its log.
start() {
    local n=$1; shift
    local ns=${NS[${HOSTOF[$n]}]} addr=${ADDR[${HOSTOF[$n]}]} log="$TMP/$RUN/$n.log"
    echo "==== $(date -u +%T) started ====" >> "$log"
    case $n in
        coordinator) ip netns exec "$ns" "$BIN_DIR/precis-coordinator" --config "$TMP/$RUN.yaml" --bind "$EP" "${KEYS[@]}" "$@" >> "$log" 2>&1 & ;;
        ps*) ip netns exec "$ns" "$BIN_DIR/precis-ps" --coordinator "$EP" --host "$addr" --name "$n" --threads 1 "${KEYS[@]}" >> "$log" 2>&1 & ;;
        w*) ip netns exec "$ns" "$BIN_DIR/precis-worker" --coordinator "$EP" --host "$addr" --name "$n" --threads 1 "${KEYS[@]}" >> "$log" 2>&1 & ;;
    esac
    PID[$n]=$!
}
# The number of `step N/M` lines the coordinator has logged in this run (across restarts).
step_lines() { grep -cE 'coordinator: step [0-9]+/[0-9]+' "$TMP/$RUN/coordinator.log" 2>/dev/null || true; }
last_step() { grep -oE 'coordinator: step [0-9]+/[0-9]+' "$TMP/$RUN/coordinator.log" 2>/dev/null | tail -1 | sed -E 's/.*step ([0-9]+).*/\1/' | grep . || echo 0; }

# start_run RUN STEPS: the coordinator, then every member once it listens.
start_run() {
    RUN=$1; mkdir -p "$TMP/$RUN"
    write_config "$RUN" "$2"
    start coordinator
    local t0; t0=$(date +%s)
    until grep -q "listening on" "$TMP/$RUN/coordinator.log" 2>/dev/null; do
        alive "${PID[coordinator]}" || fail "the $RUN coordinator exited before it was listening"
        [ $(( $(date +%s) - t0 )) -lt 120 ] || fail "the $RUN coordinator was not listening within 120 s"
        sleep 0.2
    done
    for n in "${MEMBERS[@]}"; do start "$n"; done
}

# finish_run TIMEOUT: waits for the coordinator, then for every member; all must exit 0.
finish_run() {
    local t0; t0=$(date +%s)
    while alive "${PID[coordinator]}"; do
        [ $(( $(date +%s) - t0 )) -lt "$1" ] || fail "the $RUN run did not finish within $1 s (at step $(last_step))"
        sleep 0.5
    done
    wait "${PID[coordinator]}"; local rc=$?
    [ "$rc" = 0 ] || fail "the $RUN coordinator exited with status $rc"
    [ -s "$TMP/$RUN/out/model.safetensors" ] || fail "the $RUN run wrote no model.safetensors"
    for n in "${MEMBERS[@]}"; do
        t0=$(date +%s)
        while alive "${PID[$n]}"; do
            [ $(( $(date +%s) - t0 )) -lt 60 ] || fail "$RUN: $n (pid ${PID[$n]}) still running 60 s after the coordinator ended the run"
            sleep 0.2
        done
        wait "${PID[$n]}"; rc=$?
        [ "$rc" = 0 ] || fail "$RUN: $n exited with status $rc"
    done
}

# ---- how many steps ----
if [ -z "$CHAOS_STEPS" ]; then
    start_run calibration 24
    finish_run 600
    # Seconds per step from the coordinator's own timestamps, step 4 to step 24 (start-up left out).
    secs=$(grep -E 'coordinator: step (4|24)/24 ' "$TMP/calibration/coordinator.log" | awk '
        { split($1, t, ":"); s = t[1] * 3600 + t[2] * 60 + t[3]; if (!a) a = s; else b = s }
        END { if (b > a) printf "%.4f", (b - a) / 20; else print 1 }')
    # The chaos costs the run about a quarter of its speed (losses, rollbacks, resumes, slow links).
    CHAOS_STEPS=$(awk -v c="$CHAOS_SECONDS" -v s="$secs" 'BEGIN { n = int(c / s / 1.25); print (n < 24 ? 24 : n) }')
    echo "calibration: $secs s per step; the runs take $CHAOS_STEPS steps"
fi

# ---- 1. the undisturbed run ----
echo "== undisturbed run: $CHAOS_STEPS steps =="
T0=$(date +%s)
start_run undisturbed "$CHAOS_STEPS"
finish_run 3600
UNDISTURBED_SECONDS=$(( $(date +%s) - T0 ))
echo "undisturbed: $CHAOS_STEPS steps in $UNDISTURBED_SECONDS s ($(grep -cE ' lost: | registered again' "$TMP/undisturbed/coordinator.log" || true) member(s) lost to stalls on this machine)"

# ---- 2. the chaos run ----
echo "== chaos run: $CHAOS_STEPS steps, CHAOS_SECONDS=$CHAOS_SECONDS, CHAOS_SEED=$CHAOS_SEED =="
RANDOM=$CHAOS_SEED
: > "$TMP/retrans.samples"
snmp_retrans() { ip netns exec "$1" awk '/^Tcp:/ { if (h) { print $13; exit } h=1 }' /proc/net/snmp; }
declare -a RETRANS0=()
for i in 0 1 2 3; do RETRANS0[$i]=$(snmp_retrans "${NS[$i]}"); done
# Every connection's bytes_retrans, keyed by namespace and 4-tuple (the largest seen is its total).
sample_retrans() {
    local i   # not the caller's: link_fault's own `i` names the faulty host
    for i in 0 1 2 3; do
        ip netns exec "${NS[$i]}" ss -tinH 2>/dev/null | awk -v ns="$i" '
            /^[A-Z]/ { key = ns " " $4 " " $5; next }
            { if (match($0, /bytes_retrans:[0-9]+/)) print key, substr($0, RSTART + 14, RLENGTH - 14) }'
    done >> "$TMP/retrans.samples"
}

declare -A KILLS=([coordinator]=0 [server]=0 [worker]=0)
declare -A EVENTS=()
RESTARTS=0; RECOVERIES=(); QDISC_DROPS=0
event_note() { echo "[$(printf '%4d' $(( $(date +%s) - CHAOS_START )))s] $*" | tee -a "$TMP/events.log"; }

# kill_and_restart NAME: kill -9, a pause of 0.5–3 s, the same name started again.
kill_and_restart() {
    local n=$1 role
    case $n in coordinator) role=coordinator ;; ps*) role=server ;; *) role=worker ;; esac
    if ! alive "${PID[$n]}"; then
        [ "$n" = coordinator ] && { wait "${PID[$n]}"; fail "the coordinator had exited (status $?) before chaos killed it"; }
        supervise; return
    fi
    kill -9 "${PID[$n]}"; wait "${PID[$n]}" 2>/dev/null
    KILLS[$role]=$(( KILLS[$role] + 1 ))
    local pause=$(( 500 + RANDOM % 2500 ))
    event_note "kill -9 $n (pid ${PID[$n]}) at step $(last_step); restart in $pause ms"
    sleep "$(printf '%d.%03d' $((pause / 1000)) $((pause % 1000)))"
    if [ "$n" = coordinator ]; then start coordinator --resume; else start "$n"; fi
    RESTARTS=$(( RESTARTS + 1 ))
}

# link_fault HOST SECONDS: a fault on both directions of one host's link, then cleared.
link_fault() {
    local i=$1 secs=$2 kind
    local dev_out=(ip netns exec "${NS[$i]}" tc qdisc) dev_in=(tc qdisc)
    if [ "$NETEM" = 1 ]; then
        local d=$(( 5 + RANDOM % 60 )) j=$(( RANDOM % 20 )) loss=$(( RANDOM % 5 )) re=$(( 5 + RANDOM % 20 ))
        kind="netem delay ${d}ms ${j}ms loss ${loss}% reorder ${re}%"
        "${dev_out[@]}" add dev "${PEER[$i]}" root netem delay ${d}ms ${j}ms loss ${loss}% reorder ${re}% 50% || fail "tc netem failed"
        "${dev_in[@]}" add dev "${VETH[$i]}" root netem delay ${d}ms ${j}ms loss ${loss}% reorder ${re}% 50% || fail "tc netem failed"
        EVENTS[netem]=$(( ${EVENTS[netem]:-0} + 1 ))
    elif [ "$LINKFAULT" = 1 ]; then
        local d=$(( 5 + RANDOM % 60 )) j=$(( RANDOM % 20 )) loss=$(( RANDOM % 5 )) re=$(( 5 + RANDOM % 20 ))
        kind="linkfault delay ${d}ms ${j}ms loss ${loss}% reorder ${re}%"
        local rule
        for rule in "OUTPUT -o" "INPUT -i"; do
            ip netns exec "${NS[$i]}" iptables -w -A ${rule} "${PEER[$i]}" -j NFQUEUE --queue-num "$i" --queue-bypass || fail "iptables NFQUEUE failed"
        done
        ip netns exec "${NS[$i]}" "$TMP/linkfault" --queue "$i" --delay "$d" --jitter "$j" --loss "$loss" --reorder "$re" \
            --seed "$(( RANDOM + 1 ))" >> "$TMP/linkfault.stats" 2>> "$TMP/linkfault.log" &
        local lf=$!
        EVENTS[linkfault]=$(( ${EVENTS[linkfault]:-0} + 1 ))
        event_note "${NS[$i]} (${ADDR[$i]}): $kind for $secs s"
        local t_end=$(( $(date +%s) + secs ))
        while [ "$(date +%s)" -lt "$t_end" ]; do sample_retrans; sleep 1; done
        # The rules first (packets pass again), then linkfault lets what it holds go and prints its counters.
        for rule in "OUTPUT -o" "INPUT -i"; do
            ip netns exec "${NS[$i]}" iptables -w -D ${rule} "${PEER[$i]}" -j NFQUEUE --queue-num "$i" --queue-bypass
        done
        kill -TERM "$lf" 2>/dev/null; wait "$lf" 2>/dev/null
        ip netns exec "${NS[$i]}" iptables -w -S | grep -q NFQUEUE && fail "the fault on ${NS[$i]} could not be cleared"
        return
    elif [ "$TBF" = 1 ] && [ $(( RANDOM % 2 )) = 0 ]; then
        local rate=$(( 2 + RANDOM % 20 ))
        kind="tbf rate ${rate}mbit, 8 kB queue (drops and queueing delay)"
        "${dev_out[@]}" add dev "${PEER[$i]}" root tbf rate ${rate}mbit burst 16kb limit 8kb || fail "tc tbf failed"
        "${dev_in[@]}" add dev "${VETH[$i]}" root tbf rate ${rate}mbit burst 16kb limit 8kb || fail "tc tbf failed"
        EVENTS[tbf]=$(( ${EVENTS[tbf]:-0} + 1 ))
    else
        local down=$(( 300 + RANDOM % 900 ))
        event_note "link flap ${NS[$i]}: down ${down} ms"
        ip link set "${VETH[$i]}" down
        sleep "$(printf '0.%03d' $((down % 1000)))"; [ $down -ge 1000 ] && sleep 1
        ip link set "${VETH[$i]}" up
        EVENTS[flap]=$(( ${EVENTS[flap]:-0} + 1 ))
        return
    fi
    event_note "${NS[$i]} (${ADDR[$i]}): $kind for $secs s"
    local t_end=$(( $(date +%s) + secs ))
    while [ "$(date +%s)" -lt "$t_end" ]; do sample_retrans; sleep 1; done
    local dropped
    dropped=$( { ip netns exec "${NS[$i]}" tc -s qdisc show dev "${PEER[$i]}"; tc -s qdisc show dev "${VETH[$i]}"; } \
               | grep -oE 'dropped [0-9]+' | awk '{ s += $2 } END { print s + 0 }')
    QDISC_DROPS=$(( QDISC_DROPS + dropped ))
    ip netns exec "${NS[$i]}" tc qdisc del dev "${PEER[$i]}" root 2>/dev/null
    tc qdisc del dev "${VETH[$i]}" root 2>/dev/null
    if { ip netns exec "${NS[$i]}" tc qdisc show dev "${PEER[$i]}"; tc qdisc show dev "${VETH[$i]}"; } | grep -qE 'netem|tbf'; then
        fail "the fault on ${NS[$i]} could not be cleared"
    fi
}

# A member that exits during the chaos with a non-zero status is started again, as systemd's
# Restart=on-failure (ops/systemd) would. (Roles before the `retryAfter` refusal exited 2 when
# started again before the coordinator had noticed their predecessor's death; now they register
# again until admitted, and exit 1 only after --connect-timeout.)
SUPERVISED=0
supervise() {
    local n
    for n in "${MEMBERS[@]}"; do
        alive "${PID[$n]}" && continue
        wait "${PID[$n]}"; local rc=$?
        alive "${PID[coordinator]}" || return 0
        event_note "$n exited with status $rc ($(grep -v '^====' "$TMP/$RUN/$n.log" | tail -1 | cut -c1-160)): started again"
        start "$n"
        SUPERVISED=$(( SUPERVISED + 1 ))
    done
}

# wait_progress LINES WHAT: until the coordinator logs more than LINES step lines.
wait_progress() {
    local before=$1 what=$2 t0; t0=$(date +%s.%N)
    while [ "$(step_lines)" -le "$before" ]; do
        alive "${PID[coordinator]}" || { wait "${PID[coordinator]}"; local rc=$?; [ "$rc" = 0 ] && return 0; fail "the coordinator exited with status $rc after: $what"; }
        [ "$(awk -v a="$(date +%s.%N)" -v b="$t0" -v l="$RECOVERY_TIMEOUT" 'BEGIN { print (a - b < l) }')" = 1 ] || fail "no training progress within $RECOVERY_TIMEOUT s after: $what"
        sample_retrans
        supervise
        sleep 0.5
    done
    RECOVERIES+=("$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')")
}

T0=$(date +%s)
start_run chaos "$CHAOS_STEPS"
until [ "$(step_lines)" -ge 2 ]; do
    alive "${PID[coordinator]}" || fail "the chaos coordinator exited before training"
    [ $(( $(date +%s) - T0 )) -lt 300 ] || fail "the chaos run did not start training within 300 s"
    sleep 0.2
done
CHAOS_START=$(date +%s)
while [ $(( $(date +%s) - CHAOS_START )) -lt "$CHAOS_SECONDS" ] && alive "${PID[coordinator]}"; do
    sleep "$(( 2 + RANDOM % 5 )).$(( RANDOM % 10 ))"
    alive "${PID[coordinator]}" || break
    supervise
    # No kill in the last steps: a coordinator restarted after the run's end would wait for members that are gone.
    [ "$(last_step)" -lt $(( CHAOS_STEPS - 3 )) ] || break
    lines=$(step_lines)
    r=$(( RANDOM % 100 ))
    if [ $r -lt 35 ]; then
        victim=w$(( RANDOM % 3 )); kill_and_restart "$victim"; EVENTS[kill]=$(( ${EVENTS[kill]:-0} + 1 ))
        wait_progress "$lines" "kill -9 $victim"
    elif [ $r -lt 55 ]; then
        victim=ps$(( RANDOM % 2 )); kill_and_restart "$victim"; EVENTS[kill]=$(( ${EVENTS[kill]:-0} + 1 ))
        wait_progress "$lines" "kill -9 $victim"
    elif [ $r -lt 70 ]; then
        kill_and_restart coordinator; EVENTS[kill]=$(( ${EVENTS[kill]:-0} + 1 ))
        wait_progress "$lines" "kill -9 coordinator"
    else
        host=$(( RANDOM % 4 )); link_fault "$host" $(( 3 + RANDOM % 8 ))
        wait_progress "$lines" "a network fault on ${NS[$host]}"
    fi
done
CHAOS_RAN=$(( $(date +%s) - CHAOS_START ))
echo "chaos over after $CHAOS_RAN s at step $(last_step) of $CHAOS_STEPS; the run finishes undisturbed"
[ "$CHAOS_RAN" -ge "$CHAOS_SECONDS" ] || echo "note: the run ended before CHAOS_SECONDS; raise CHAOS_STEPS for a longer soak"
finish_run 3600
CHAOS_TOTAL=$(( $(date +%s) - T0 ))
sample_retrans

# ---- checks ----
echo "== checks =="
verify() { "$BIN_DIR/precis" checkpoint verify "$@"; }
digest_of() { sed -nE 's/.*parameters sha256 ([0-9a-f]+).*/\1/p'; }
for r in undisturbed chaos; do
    cps=$(ls -d "$TMP/$r/out"/checkpoint-* 2>/dev/null | sort -t- -k2 -n)
    [ -n "$cps" ] || fail "the $r run kept no checkpoint"
    verify $cps "$TMP/$r/out" > "$TMP/$r.verify" 2> "$TMP/$r.verify.err" || { cat "$TMP/$r.verify.err"; fail "a checkpoint or the final model of the $r run does not load (above)"; }
    echo "$r: $(( $(wc -l < "$TMP/$r.verify") - 1 )) checkpoint(s) and the final model load, every value finite"
done
REF=$(tail -1 "$TMP/undisturbed.verify" | digest_of); GOT=$(tail -1 "$TMP/chaos.verify" | digest_of)
[ -n "$REF" ] && [ "$REF" = "$GOT" ] || fail "the chaos run's final parameters differ from the undisturbed run's (sha256 $GOT, expected $REF)"
echo "final parameters bitwise equal to the undisturbed run's (sha256 $REF)"
shared=0
while read -r line; do
    step=$(echo "$line" | sed -nE 's/.*checkpoint-([0-9]+): step.*/\1/p'); [ -n "$step" ] || continue
    other=$(grep "checkpoint-$step: step" "$TMP/chaos.verify" | digest_of)
    [ -n "$other" ] || continue
    [ "$other" = "$(echo "$line" | digest_of)" ] || fail "checkpoint-$step differs between the runs"
    shared=$(( shared + 1 ))
done < "$TMP/undisturbed.verify"
echo "$shared checkpoint step(s) kept by both runs: bitwise equal"
# Each logged step once, with the undisturbed run's loss.
losses() { tr -d ' \n' < "$1" | grep -oE '\{[^{}]*"loss":[^{}]*\}' | while read -r o; do
    s=$(echo "$o" | grep -oE '"step":[0-9]+' | cut -d: -f2); l=$(echo "$o" | grep -oE '"loss":[-0-9.eE+]+' | cut -d: -f2); echo "$s $l"; done | sort -n; }
losses "$TMP/undisturbed/out/trainer_state.json" > "$TMP/undisturbed.losses"
losses "$TMP/chaos/out/trainer_state.json" > "$TMP/chaos.losses"
[ "$(wc -l < "$TMP/undisturbed.losses")" = "$CHAOS_STEPS" ] || fail "the undisturbed trainer_state.json logs $(wc -l < "$TMP/undisturbed.losses") steps, not $CHAOS_STEPS"
dups=$(cut -d' ' -f1 "$TMP/chaos.losses" | uniq -d | head -3 | tr '\n' ' ')
[ -z "$dups" ] || fail "the chaos run's trainer_state.json logs step(s) $dups more than once"
# The coordinator adds the contributions' loss sums in the order they report, so a logged loss may
# differ in its last bits (1e-16 relative); anything beyond 1e-12 is another loss.
[ "$(cut -d' ' -f1 "$TMP/undisturbed.losses")" = "$(cut -d' ' -f1 "$TMP/chaos.losses")" ] || fail "the chaos run's trainer_state.json does not log the same steps as the undisturbed run's"
bad=$(paste -d' ' "$TMP/undisturbed.losses" "$TMP/chaos.losses" | awk '{ d = $2 - $4; if (d < 0) d = -d; a = $2 < 0 ? -$2 : $2; if (d > 1e-12 * a) print "step " $1 ": loss " $2 " undisturbed, " $4 " chaos" }' | head -5)
[ -z "$bad" ] || { echo "$bad"; fail "the chaos run logged other losses than the undisturbed run (above)"; }
echo "trainer_state.json: each of the $CHAOS_STEPS steps logged once, with the undisturbed run's loss (to 1e-12)"

# ---- figures ----
CL="$TMP/chaos/coordinator.log"
ROLLBACKS=$(grep -c 'rolling back to step' "$CL" || true)
RESUMES=$(grep -c 'resuming from' "$CL" || true)
LOSSES=$(grep -cE 'lost: ' "$CL" || true)
HANDED=$(grep -c 'handed to' "$CL" || true)
DROPLINES=$(cat "$TMP/chaos"/*.log | grep -cE 'dropped [0-9]+ messages? to ' || true)
SEGS=0; PER=""
for i in 0 1 2 3; do
    d=$(( $(snmp_retrans "${NS[$i]}") - RETRANS0[$i] )); SEGS=$(( SEGS + d )); PER="$PER ${ADDR[$i]}:$d"
done
BYTES=$(awk '{ k = $1 " " $2 " " $3; if ($4 > m[k]) m[k] = $4 } END { for (k in m) s += m[k]; print s + 0 }' "$TMP/retrans.samples")
rec=$(printf '%s\n' "${RECOVERIES[@]}" | sort -n)
nrec=${#RECOVERIES[@]}
echo "== figures (CHAOS_SEED=$CHAOS_SEED) =="
echo "steps: $CHAOS_STEPS; undisturbed run $UNDISTURBED_SECONDS s, chaos run $CHAOS_TOTAL s ($CHAOS_RAN s of chaos)"
echo "events: $(for k in kill netem linkfault tbf flap; do printf '%s %s  ' "$k" "${EVENTS[$k]:-0}"; done)"
echo "kills (kill -9) by role: coordinator ${KILLS[coordinator]}, server ${KILLS[server]}, worker ${KILLS[worker]}; restarts $RESTARTS (+ $SUPERVISED of members that exited non-zero, as Restart=on-failure would)"
if [ "$nrec" -gt 0 ]; then
    echo "recoveries: $nrec (training progressed again after every event; seconds to the next step: min $(echo "$rec" | head -1), median $(echo "$rec" | sed -n "$(( (nrec + 1) / 2 ))p"), max $(echo "$rec" | tail -1))"
fi
echo "coordinator: $RESUMES resume(s) from a checkpoint, $ROLLBACKS rollback(s) to a checkpoint, $LOSSES member(s) lost, $HANDED contribution(s) handed over; $DROPLINES 'dropped N messages to …' line(s) in the logs"
echo "network: TCP segments retransmitted$PER (total $SEGS); bytes retransmitted at least $BYTES (ss bytes_retrans); packets dropped by the fault qdiscs $QDISC_DROPS"
if [ "$LINKFAULT" = 1 ] && [ -s "$TMP/linkfault.stats" ]; then
    echo "linkfault (netem substitute): $(awk '{ for (i = 2; i < NF; i += 2) if ($i != "delay-mean-ms" && $i != "held-max") s[$i] += $(i + 1) }
        END { printf "packets %d, dropped %d, reordered (sent after a later one) %d, duplicated %d", s["received"], s["dropped"], s["reordered"], s["duplicated"] }' "$TMP/linkfault.stats") over ${EVENTS[linkfault]:-0} fault(s)"
fi
[ "$NETEM" = 1 ] || [ "$LINKFAULT" = 1 ] || echo "netem: SKIPPED (no sch_netem in this kernel, and no linkfault); faults were tbf overflows and link flaps"
echo "PASS: chaos soak of $CHAOS_RAN s survived $(( KILLS[coordinator] + KILLS[server] + KILLS[worker] )) kill(s) and $(( ${EVENTS[netem]:-0} + ${EVENTS[linkfault]:-0} + ${EVENTS[tbf]:-0} + ${EVENTS[flap]:-0} )) network fault(s); final parameters bitwise equal to the undisturbed run's"
