#!/usr/bin/env bash
# Proves that linkfault (tools/chaos/linkfault.c, the netem substitute chaos.sh uses where the
# kernel has no sch_netem) really delays, drops and reorders: two network namespaces joined by a
# veth pair, ping between them undisturbed, then with linkfault on one end (both directions), and
# the measured round trip, loss and reordering printed and checked against the knobs.
#
# Usage (as root): bash tools/chaos/linkfault_check.sh [DELAY_MS JITTER_MS LOSS_PCT REORDER_PCT]
# (default 40 10 10 20). Builds linkfault with cc (needs libnetfilter-queue-dev and iptables:
# `make chaos` installs them). Prints SKIP without root, PASS or FAIL (exit 1).
set -u -o pipefail
cd "$(dirname "$0")" || exit 1
DELAY=${1:-40}; JITTER=${2:-10}; LOSS=${3:-10}; REORDER=${4:-20}
skip() { echo "SKIP: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root to create network namespaces"
command -v iptables >/dev/null || skip "iptables is not installed (make chaos installs it)"
TMP=$(mktemp -d /tmp/linkfault-check.XXXXXX)
cc -O2 -Wall -o "$TMP/linkfault" linkfault.c -lnetfilter_queue 2> "$TMP/cc.err" || { cat "$TMP/cc.err"; echo "FAIL: cannot build linkfault (libnetfilter-queue-dev installed?)"; exit 1; }
A=lfa-$$; B=lfb-$$
LF=""
cleanup() {
    [ -n "$LF" ] && kill "$LF" 2>/dev/null && wait "$LF" 2>/dev/null
    ip netns del "$A" 2>/dev/null; ip netns del "$B" 2>/dev/null; rm -rf "$TMP"
}
trap cleanup EXIT
ip netns add "$A" && ip netns add "$B" || skip "cannot create network namespaces here"
ip link add lfva-$$ netns "$A" type veth peer name lfvb-$$ netns "$B" || { echo "FAIL: veth"; exit 1; }
ip -n "$A" addr add 10.79.0.1/24 dev lfva-$$; ip -n "$B" addr add 10.79.0.2/24 dev lfvb-$$
ip -n "$A" link set lfva-$$ up; ip -n "$B" link set lfvb-$$ up; ip -n "$A" link set lo up; ip -n "$B" link set lo up

# ping -c N -i I from B to A: "loss% avg_rtt out_of_order" (replies printed in arrival order;
# a sequence number smaller than one before it arrived late).
measure() {
    ip netns exec "$B" ping -n -c "$1" -i "$2" -W 2 10.79.0.1 > "$TMP/ping.out" 2>&1
    local loss rtt ooo
    loss=$(grep -oE '[0-9.]+% packet loss' "$TMP/ping.out" | cut -d% -f1)
    rtt=$(grep -oE 'rtt min/avg/max/mdev = [0-9./]+' "$TMP/ping.out" | cut -d= -f2 | cut -d/ -f2)
    ooo=$(grep -oE 'icmp_seq=[0-9]+' "$TMP/ping.out" | cut -d= -f2 | awk '{ if (NR > 1 && $1 < m) n++; if ($1 > m) m = $1 } END { print n + 0 }')
    echo "${loss:-100} ${rtt:-0} $ooo"
}
read -r l0 r0 o0 <<< "$(measure 100 0.01)"
echo "undisturbed: loss ${l0}%, mean RTT ${r0} ms, $o0 replies out of order"

# Both directions of A's link through queue 0 (--queue-bypass: without linkfault, packets pass).
ip netns exec "$A" iptables -w -A OUTPUT -o lfva-$$ -j NFQUEUE --queue-num 0 --queue-bypass || { echo "FAIL: iptables NFQUEUE rule"; exit 1; }
ip netns exec "$A" iptables -w -A INPUT -i lfva-$$ -j NFQUEUE --queue-num 0 --queue-bypass || { echo "FAIL: iptables NFQUEUE rule"; exit 1; }
ip netns exec "$A" "$TMP/linkfault" --queue 0 --delay "$DELAY" --jitter "$JITTER" --loss "$LOSS" --reorder "$REORDER" --seed 3 > "$TMP/lf.out" 2> "$TMP/lf.err" &
LF=$!
sleep 0.5
kill -0 "$LF" 2>/dev/null || { cat "$TMP/lf.err"; echo "FAIL: linkfault exited"; exit 1; }
read -r l1 r1 o1 <<< "$(measure 1000 0.005)"
kill "$LF"; wait "$LF"; LF=""
stats=$(cat "$TMP/lf.out")
echo "linkfault delay ${DELAY}ms jitter ${JITTER}ms loss ${LOSS}% reorder ${REORDER}% on both directions of one end:"
echo "  measured: loss ${l1}%, mean RTT ${r1} ms, $o1 of 1000 replies out of order"
echo "  $stats"
# Expected: each ping crosses the faulty link twice. RTT ≈ 2 × delay × (1 − reorder) (reordered
# packets go at once); loss ≈ 1 − (1 − loss)²; out of order > 0 when jitter or reorder is set.
fail=0
exp_rtt=$(awk -v d="$DELAY" -v r="$REORDER" 'BEGIN { printf "%.1f", 2 * d * (1 - r / 100) }')
exp_loss=$(awk -v l="$LOSS" 'BEGIN { printf "%.1f", 100 * (1 - (1 - l / 100) ^ 2) }')
echo "  expected: loss ≈ ${exp_loss}%, mean RTT ≈ ${exp_rtt} ms"
awk -v m="$r1" -v e="$exp_rtt" 'BEGIN { exit !(m > 0.7 * e && m < 1.3 * e + 2) }' || { echo "FAIL: mean RTT $r1 ms is not near $exp_rtt ms"; fail=1; }
awk -v m="$l1" -v e="$exp_loss" 'BEGIN { exit !((e == 0 && m < 1) || (m > 0.5 * e && m < 1.5 * e + 1)) }' || { echo "FAIL: loss $l1% is not near $exp_loss%"; fail=1; }
if [ "$REORDER" != 0 ] || [ "$JITTER" != 0 ]; then
    [ "$o1" -gt 0 ] || { echo "FAIL: no reply arrived out of order"; fail=1; }
fi
[ "$fail" = 0 ] && echo "PASS: linkfault delays, drops and reorders as configured" || exit 1
