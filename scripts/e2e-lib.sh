# shellcheck shell=bash
# seg e2e helpers, sourced by tests/e2e/*.sh and scripts/demo.sh.
#
# A "node" network namespace holds the host ends of the pods' veths, wired
# Calico-style: host veths named cali*, no bridge, a /32 (/128) route per pod
# and the ptp trick for the gateway (every host veth carries 10.77.0.1/32 and
# fe80::1, the pods route everything via them). Pods are namespaces holding
# eth0 only. Everything is named <prefix>-*; e2e_down removes it all.
#
#   E2E_PREFIX=he-1a2b
#   e2e_up                      # node netns: forwarding on
#   e2e_pod_add a 2             # pod netns he-1a2b-a, 10.77.0.2 + fd77::2, host link caliXXXXXXXXXXa
#   e2e_serve a --tcp 80        # segprobe serve in the pod, waits until it listens
#   e2e_probe a 10.77.0.3 80/tcp --timeout 500   # prints segprobe's JSON line, returns its status
#   e2e_down
#
# Needs: SEGPROBE (path), iproute2. Sets per pod: E2E_IF_<pod> (host link),
# E2E_IP4_<pod>, E2E_IP6_<pod>.

E2E_PREFIX=${E2E_PREFIX:-}
E2E_NET4=10.77.0
E2E_NET6=fd77:
E2E_GW4=10.77.0.1
E2E_GW6=fe80::1
E2E_PIDS=()
E2E_LOGDIR=${E2E_LOGDIR:-}

e2e_node() { echo "$E2E_PREFIX-node"; }

# Host-side link name: cali + 11 characters, like Calico's.
e2e_hostif() {
	local tag=${E2E_PREFIX#*-}
	tag=$(printf '%s0000000000' "${tag//[^0-9a-z]/}")
	echo "cali${tag:0:10}$1"
}

e2e_up() {
	local node
	node=$(e2e_node)
	[ -n "$E2E_PREFIX" ] || { echo "e2e_up: E2E_PREFIX is not set" >&2; return 1; }
	[ -n "$E2E_LOGDIR" ] || E2E_LOGDIR=$(mktemp -d "/tmp/$E2E_PREFIX.XXXXXX")
	ip netns add "$node"
	ip -n "$node" link set lo up
	ip netns exec "$node" sysctl -q -w net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
		net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
}

# e2e_pod_add NAME N: pod NAME with 10.77.0.N and fd77::N.
e2e_pod_add() {
	local pod=$1 n=$2 ns=$E2E_PREFIX-$1 node hif
	node=$(e2e_node)
	hif=$(e2e_hostif "$pod")
	ip netns add "$ns"
	ip netns exec "$ns" sysctl -q -w net.ipv6.conf.default.accept_dad=0 \
		net.ipv6.conf.all.accept_dad=0
	ip -n "$ns" link set lo up
	ip -n "$node" link add "$hif" type veth peer name eth0 netns "$ns"
	# Host side: the gateway addresses (same on every host veth) and the pod routes.
	ip -n "$node" addr add "$E2E_GW4/32" dev "$hif"
	ip -n "$node" addr add "$E2E_GW6/64" dev "$hif" nodad
	ip -n "$node" link set "$hif" up
	ip -n "$node" route add "$E2E_NET4.$n/32" dev "$hif" scope link
	ip -n "$node" -6 route add "$E2E_NET6:$n/128" dev "$hif"
	# Pod side: one address per family, everything via the gateway.
	ip -n "$ns" addr add "$E2E_NET4.$n/32" dev eth0
	ip -n "$ns" addr add "$E2E_NET6:$n/128" dev eth0 nodad
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route add "$E2E_GW4" dev eth0 scope link
	ip -n "$ns" route add default via "$E2E_GW4" dev eth0
	ip -n "$ns" -6 route add default via "$E2E_GW6" dev eth0
	printf -v "E2E_IF_$pod" '%s' "$hif"
	printf -v "E2E_IP4_$pod" '%s' "$E2E_NET4.$n"
	printf -v "E2E_IP6_$pod" '%s' "$E2E_NET6:$n"
}

# e2e_serve POD ARGS...: segprobe serve in the pod, in the background.
e2e_serve() {
	local pod=$1 log
	shift
	log=$E2E_LOGDIR/serve-$pod.log
	ip netns exec "$E2E_PREFIX-$pod" "$SEGPROBE" -v serve "$@" >"$log" 2>&1 &
	E2E_PIDS+=($!)
	for _ in $(seq 50); do
		grep -q '^segprobe: serving' "$log" 2>/dev/null && return 0
		kill -0 "${E2E_PIDS[-1]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "e2e_serve: segprobe did not start in $pod:" >&2
	cat "$log" >&2
	return 1
}

# e2e_probe POD ADDR PORT/PROTO [segprobe connect options]: JSON line on stdout.
e2e_probe() {
	local pod=$1
	shift
	ip netns exec "$E2E_PREFIX-$pod" "$SEGPROBE" connect "$@" -o json
}

# Result field of a segprobe JSON line ("ok", "timeout", ...).
e2e_result() { sed -n 's/.*"result":"\([a-z]*\)".*/\1/p' <<<"$1"; }

e2e_down() {
	local pid ns
	for pid in "${E2E_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${E2E_PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	E2E_PIDS=()
	[ -n "$E2E_PREFIX" ] || return 0
	for ns in $(ip netns list | awk '{print $1}' | grep -E "^$E2E_PREFIX-" || true); do
		ip netns del "$ns" 2>/dev/null || true
	done
}
