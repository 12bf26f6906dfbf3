#!/usr/bin/env bash
# seg demo: a node with two pods, one allow-list, one allowed and one denied
# connection, then the counters and flow events.
#
#   scripts/demo.sh BUILD_DIR [--keep]     run the demo (BUILD_DIR: a built tree)
#   scripts/demo.sh --stop                 remove what a --keep run left
#
# The node is the netns sd-node, wired like Calico (host veths cali*, one
# route per pod); the pods are sd-a (10.77.0.2) and sd-b (10.77.0.3). seg is
# pinned under /sys/fs/bpf/sd-demo, apart from a real installation. Needs
# root. Builds nothing: run `ninja -C BUILD_DIR` (or ./setup.sh demo) first.
# e2e_pod_add sets E2E_IF_<pod> indirectly:
# shellcheck disable=SC2154
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
PIN=/sys/fs/bpf/sd-demo
STATE=/run/seg-demo # server pids of a --keep run
LOGS=/tmp/sd-demo    # server logs
E2E_PREFIX=sd
E2E_LOGDIR=
ID_A=1001
ID_B=1002

if [ -t 1 ]; then
	B=$'\033[1m' D=$'\033[2m' G=$'\033[32m' R=$'\033[31m' N=$'\033[0m'
else
	B='' D='' G='' R='' N=''
fi
step() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
say() { printf '   %s\n' "$*"; }
die() { printf 'demo.sh: error: %s\n' "$*" >&2; exit 1; }
usage() {
	sed -n '5,6p' "$0" | sed 's/^# \{0,1\}/usage: /'
	exit 2
}

# Shows a segctl command as a user would type it, then runs it.
segctl() {
	printf '   %s$ segctl %s%s\n' "$D" "$*" "$N"
	"$SEGCTL" --pin-dir "$PIN" "$@" | sed 's/^/   /'
	return "${PIPESTATUS[0]}"
}
# The same, without the output.
segctl_q() {
	printf '   %s$ segctl %s%s\n' "$D" "$*" "$N"
	"$SEGCTL" --pin-dir "$PIN" "$@" >/dev/null
}

# probe FROM ADDR PORT/PROTO: one connection attempt, told as allowed/denied.
probe() {
	local from=$1 addr=$2 pp=$3 out
	printf '   %s$ ip netns exec sd-%s segprobe connect %s %s%s\n' "$D" "$from" "$addr" "$pp" "$N"
	if out=$(ip netns exec "sd-$from" "$SEGPROBE" connect "$addr" "$pp" --timeout 1000); then
		printf '   %sALLOWED%s  %s\n' "$G" "$N" "$out"
	else
		printf '   %sDENIED%s   %s\n' "$R" "$N" "$out"
	fi
}

stop_demo() {
	local pid
	if [ -f "$STATE" ]; then
		while read -r pid; do
			kill "$pid" 2>/dev/null || true
		done <"$STATE"
		rm -f "$STATE"
	fi
	# --stop comes here without the lib; sourcing it again would forget E2E_PIDS.
	if ! declare -F e2e_down >/dev/null; then
		# shellcheck source=scripts/e2e-lib.sh
		source "$here/e2e-lib.sh"
	fi
	e2e_down
	rm -rf "$LOGS"
	if [ -d "$PIN" ]; then
		if [ -n "${SEGCTL:-}" ]; then
			"$SEGCTL" --pin-dir "$PIN" bpf unload >/dev/null 2>&1 || rm -rf "$PIN"
		else
			rm -rf "$PIN" # unpinning the links detaches them
		fi
	fi
}

[ $# -ge 1 ] || usage
case $1 in
-h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
--stop)
	[ "$(id -u)" = 0 ] || die "run as root"
	stop_demo
	echo "demo stopped: netns sd-*, servers and $PIN removed"
	exit 0 ;;
-*) usage ;;
esac
BUILD=$1
KEEP=false
[ "${2:-}" = --keep ] && KEEP=true
if [ $# -gt 2 ] || { [ $# = 2 ] && ! $KEEP; }; then usage; fi

[ "$(id -u)" = 0 ] || die "run as root (seg loads BPF programs and creates network namespaces)"
SEGCTL=$(realpath "$BUILD/tools/segctl/segctl" 2>/dev/null) || true
SEGPROBE=$(realpath "$BUILD/tools/segprobe/segprobe" 2>/dev/null) || true
if [ ! -x "$SEGCTL" ] || [ ! -x "$SEGPROBE" ]; then
	die "no segctl/segprobe under $BUILD/tools: build first (ninja -C $BUILD)"
fi
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
# shellcheck source=scripts/e2e-lib.sh
source "$here/e2e-lib.sh"
if ip netns list | grep -qE '^sd-' || [ -d "$PIN" ]; then
	echo "removing what an earlier demo left (netns sd-*, $PIN)"
	stop_demo
fi
mkdir -p "$LOGS"
E2E_LOGDIR=$LOGS
$KEEP || trap stop_demo EXIT

cat <<EOF
${B}seg demo${N}: Kubernetes NetworkPolicy in the kernel, on a node with two pods.

   pod a  10.77.0.2  (identity $ID_A)
   pod b  10.77.0.3  (identity $ID_B), serving TCP 80 and TCP 81
   policy on b: ingress from a on TCP 80 only
EOF

step "1. Create the node and the pods (network namespaces sd-node, sd-a, sd-b)"
e2e_up
e2e_pod_add a 2
e2e_pod_add b 3
e2e_serve b --tcp 80,81
say "host veths in sd-node: $E2E_IF_a -> sd-a, $E2E_IF_b -> sd-b (routed, Calico-style)"
say "pod b runs 'segprobe serve --tcp 80,81': an echo server on both ports"

step "2. Without seg, a reaches b on both ports"
probe a 10.77.0.3 80/tcp
probe a 10.77.0.3 81/tcp

step "3. Load seg and attach it to the pods' host veths"
segctl bpf load
IFK_A=$("$SEGCTL" --pin-dir "$PIN" -o json bpf attach --dev "$E2E_IF_a" --netns sd-node --mode veth |
	jq -r .ifkey)
printf '   %s$ segctl bpf attach --dev %s --netns sd-node --mode veth%s\n   ifkey %s\n' \
	"$D" "$E2E_IF_a" "$N" "$IFK_A"
IFK_B=$("$SEGCTL" --pin-dir "$PIN" -o json bpf attach --dev "$E2E_IF_b" --netns sd-node --mode veth |
	jq -r .ifkey)
printf '   %s$ segctl bpf attach --dev %s --netns sd-node --mode veth%s\n   ifkey %s\n' \
	"$D" "$E2E_IF_b" "$N" "$IFK_B"

step "4. Tell seg who is who (ipcache: address -> identity) and what b allows"
segctl_q bpf ipcache set 10.77.0.2 --identity $ID_A --owner-ifkey "$IFK_A"
segctl_q bpf ipcache set 10.77.0.3 --identity $ID_B --owner-ifkey "$IFK_B"
segctl_q bpf ipcache set fd77::2 --identity $ID_A --owner-ifkey "$IFK_A"
segctl_q bpf ipcache set fd77::3 --identity $ID_B --owner-ifkey "$IFK_B"
segctl_q bpf policy add --policy 10 --dir ingress --peer $ID_A --proto tcp --port 80 --rule 1
segctl_q bpf endpoint set --ifkey "$IFK_A" --ep-id 1 --identity $ID_A
say "pod b's endpoint: isolated on ingress, decided by policy 10 (port_mask: which port"
say "block sizes policy 10 uses, so the lookup probes only those):"
segctl bpf endpoint set --ifkey "$IFK_B" --ep-id 2 --identity $ID_B --ingress isolated \
	--policy-ingress 10

step "5. Now a reaches b on TCP 80, and TCP 81 is dropped"
probe a 10.77.0.3 80/tcp
probe a 10.77.0.3 81/tcp

step "6. Counters: every packet by verdict reason, and by rule"
segctl bpf counters --rules

step "7. Flow events (new allowed flows and drops)"
segctl bpf events --count 50 --timeout 1 || true

if $KEEP; then
	printf '%s\n' "${E2E_PIDS[@]}" >"$STATE"
	disown -a
	cat <<EOF

${B}The demo keeps running.${N} Try, for instance:
   ip netns exec sd-a $SEGPROBE connect 10.77.0.3 81/tcp
   $SEGCTL --pin-dir $PIN bpf policy add --policy 10 --dir ingress --peer $ID_A --proto tcp --port 81 --rule 2
   $SEGCTL --pin-dir $PIN bpf counters --rules
   $SEGCTL --pin-dir $PIN bpf events --follow
Stop it with:
   $here/demo.sh --stop
EOF
else
	step "Done: removing the pods, the node and seg's pins"
fi
