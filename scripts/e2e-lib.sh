# shellcheck shell=bash
# seg e2e helpers, sourced by the root tests (tests/e2e, tests/segd,
# tests/faults) and scripts/demo.sh.
#
# Test scaffolding (see the section at the end):
#   e2e_require "netns, BPF" "SEGD SEGCTL" SEGD SEGCTL   # root, arguments, jq: or exit
#   e2e_node_env hs             # E2E_PREFIX=hs-<rand>, E2E_LOGDIR, NODE, PIN, RUNDIR, SOCK, MDIR
#   trap 'e2e_stopped_early $?; ...cleanup...' EXIT
#   e2e_check "what" CMD...     # "ok   what" / "FAIL what", counted in passed/failed
#   e2e_summary                 # "N passed, N failed"; status 0 when none failed
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

# ---- test scaffolding ------------------------------------------------------------

# e2e_require WHY USAGE VAR...: exits 77 (skip) unless root (WHY: what root is
# needed for), 2 with "usage: $0 USAGE" unless every VAR is set, 1 unless jq
# and the commands in E2E_NEEDS (space-separated) are installed.
e2e_require() {
	local why=$1 usage=$2 v
	shift 2
	if [ "$(id -u)" != 0 ]; then
		echo "skip: needs root ($why)"
		exit 77
	fi
	for v in "$@"; do
		if [ -z "${!v:-}" ]; then
			echo "usage: $0 $usage" >&2
			exit 2
		fi
	done
	for v in jq ${E2E_NEEDS:-}; do
		command -v "$v" >/dev/null || { echo "FAIL: $v is not installed"; exit 1; }
	done
}

# e2e_node_env TAG: the names of one run, all TAG-<random>: E2E_RAND (6 hex
# digits), E2E_PREFIX (netns E2E_PREFIX-*), E2E_LOGDIR (made:
# /tmp/E2E_PREFIX.XXXXXX), NODE (the node netns), PIN (/sys/fs/bpf/E2E_PREFIX),
# RUNDIR (/run/seg/E2E_PREFIX), SOCK (segd's socket in it), MDIR (a manifests
# directory in the log dir; not made). Only E2E_LOGDIR exists afterwards.
# shellcheck disable=SC2034 # for the scripts that source this
e2e_node_env() {
	E2E_RAND=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
	E2E_PREFIX=$1-$E2E_RAND
	E2E_LOGDIR=$(mktemp -d "/tmp/$E2E_PREFIX.XXXXXX")
	NODE=$E2E_PREFIX-node
	PIN=/sys/fs/bpf/$E2E_PREFIX
	RUNDIR=/run/seg/$E2E_PREFIX
	SOCK=$RUNDIR/segd.sock
	MDIR=$E2E_LOGDIR/manifests
}

# Checks: one line each, counted in passed and failed.
passed=0
failed=0
summary_done=false
e2e_ok() {
	echo "ok   $*"
	passed=$((passed + 1))
}
e2e_fail() {
	echo "FAIL $*"
	failed=$((failed + 1))
}
e2e_check() { # e2e_check WHAT CMD...: ok when CMD succeeds
	local what=$1
	shift
	if "$@"; then e2e_ok "$what"; else e2e_fail "$what"; fi
}

# e2e_summary: the last line of a run; status 0 when no check failed.
e2e_summary() {
	summary_done=true
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ]
}

# e2e_segd_wait PID [TRIES]: waits (0.1 s a try, 300 by default) until segd
# answers `SEGCTL --socket SOCK status`; fails, showing the end of
# E2E_LOGDIR/segd.log, if PID exits first or time runs out.
e2e_segd_wait() {
	local pid=$1 n=${2:-300}
	for _ in $(seq "$n"); do
		"$SEGCTL" --socket "$SOCK" status >/dev/null 2>&1 && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "segd did not come up:" >&2
	tail -20 "$E2E_LOGDIR/segd.log" >&2
	return 1
}

# e2e_logs_done: removes E2E_LOGDIR unless a check failed or KEEP_LOGS is set.
e2e_logs_done() {
	if [ "$failed" = 0 ] && [ -z "${KEEP_LOGS:-}" ]; then
		rm -rf "$E2E_LOGDIR"
	else
		echo "logs kept in $E2E_LOGDIR"
	fi
}

# e2e_node_down, in the EXIT trap after the processes are stopped: e2e_down,
# the data path under PIN unloaded (with SEGCTL) and PIN, RUNDIR removed,
# then e2e_logs_done.
e2e_node_down() {
	e2e_down
	[ -n "${SEGCTL:-}" ] && "$SEGCTL" --pin-dir "$PIN" bpf unload >/dev/null 2>&1
	rm -rf "$PIN" "$RUNDIR"
	e2e_logs_done
}

# e2e_stopped_early RC, first in the EXIT trap: a run that set -e stopped
# before e2e_summary counts one more failure and prints the summary.
e2e_stopped_early() {
	$summary_done && return 0
	failed=$((failed + 1))
	echo "FAIL stopped early: a command failed (exit $1)"
	echo "$passed passed, $failed failed"
}
