# Hosts made of Linux network namespaces on one bridge, for the scripts that run the cluster's roles
# as separate hosts on one machine: tools/multihost/netns_test.sh, tools/chaos/chaos.sh and
# tools/bench/scaling.sh. Sourced (bash), never run. The caller defines `fail MESSAGE` (prints and
# exits 1) before it makes anything.
#
#   netns_preflight BIN_DIR EXE…      SKIP (exit 0) without root, `ip netns` or the right to make
#                                     namespaces and bridges; FAIL (exit 1) when an executable is missing
#   netns_bridge BRIDGE [MTU]         makes the bridge every host's link joins, and brings it up
#   netns_host NS ADDR VETH PEER [MTU]  a namespace with address ADDR/24 on PEER, whose other end VETH
#                                     is on the bridge (loopback up too)
#   netns_remove_hosts [PID…]         kill -9 of every process in the hosts (and of the PIDs given: the
#                                     caller's background jobs), then the hosts and their links go
#   netns_remove_all [PID…]           the same, then the bridge
#   netns_keep_or_remove DIR RC KEEP  keeps DIR (says so) when RC or FAILED is non-zero or KEEP is 1,
#                                     else removes it
#
# Interface names must stay within 15 characters: callers put their PID in them (at most 7 digits),
# so that runs side by side do not collide.

NETNS_HOSTS=()      # namespaces made
NETNS_LINKS=()      # root-side veth ends made
NETNS_BRIDGE=""

skip() { echo "SKIP: $*"; exit 0; }

netns_preflight() {
    local bin_dir=$1 b
    shift
    [ "$(id -u)" = 0 ] || skip "needs root to create network namespaces"
    command -v ip >/dev/null 2>&1 || skip "the ip command (iproute2) is not installed"
    ip netns list >/dev/null 2>&1 || skip "ip netns is unavailable here"
    # Root inside a container may still lack the capability to make namespaces and bridges: probe first.
    ip netns add "prcs-pr-$$" 2>/dev/null || skip "cannot create network namespaces here (no CAP_SYS_ADMIN?)"
    ip netns del "prcs-pr-$$" 2>/dev/null
    ip link add "prcs-pb-$$" type bridge 2>/dev/null || skip "cannot create a bridge here"
    ip link del "prcs-pb-$$" 2>/dev/null
    for b in "$@"; do
        [ -x "$bin_dir/$b" ] || { echo "FAIL: $bin_dir/$b is missing; build first (make build, or set BIN_DIR)"; exit 1; }
    done
}

netns_bridge() {
    local br=$1 mtu=${2:-}
    ip link add "$br" type bridge || fail "cannot create the bridge $br"
    NETNS_BRIDGE=$br
    [ -z "$mtu" ] || ip link set "$br" mtu "$mtu" 2>/dev/null
    ip link set "$br" up || fail "cannot bring up the bridge $br"
}

netns_host() {
    local ns=$1 addr=$2 veth=$3 peer=$4 mtu=${5:-}
    ip netns add "$ns" || fail "ip netns add $ns"
    NETNS_HOSTS+=("$ns")
    ip link add "$veth" type veth peer name "$peer" || fail "cannot create veth $veth"
    NETNS_LINKS+=("$veth")
    if [ -n "$mtu" ]; then ip link set "$veth" mtu "$mtu"; ip link set "$peer" mtu "$mtu"; fi
    ip link set "$veth" master "$NETNS_BRIDGE" && ip link set "$veth" up || fail "cannot attach $veth to $NETNS_BRIDGE"
    ip link set "$peer" netns "$ns" || fail "cannot move $peer into $ns"
    ip -n "$ns" addr add "$addr/24" dev "$peer" || fail "cannot address $peer"
    ip -n "$ns" link set "$peer" up && ip -n "$ns" link set lo up || fail "cannot bring up $ns"
}

netns_remove_hosts() {
    local ns victims=("$@") v
    for ns in "${NETNS_HOSTS[@]}"; do victims+=($(ip netns pids "$ns" 2>/dev/null)); done
    # One kill, then a wait whose stderr takes bash's "Killed" notices for the background jobs.
    [ "${#victims[@]}" = 0 ] || kill -9 "${victims[@]}" 2>/dev/null
    wait 2>/dev/null
    for ns in "${NETNS_HOSTS[@]}"; do ip netns del "$ns" 2>/dev/null; done
    for v in "${NETNS_LINKS[@]}"; do ip link del "$v" 2>/dev/null; done
    NETNS_HOSTS=(); NETNS_LINKS=()
}

netns_remove_all() {
    netns_remove_hosts "$@"
    [ -z "$NETNS_BRIDGE" ] || ip link del "$NETNS_BRIDGE" 2>/dev/null
    NETNS_BRIDGE=""
}

netns_keep_or_remove() {
    local dir=$1 rc=$2 keep=$3
    if [ "$rc" != 0 ] || [ "${FAILED:-0}" = 1 ] || [ "$keep" = 1 ]; then echo "logs, configs and outputs kept in $dir"; else rm -rf "$dir"; fi
}
