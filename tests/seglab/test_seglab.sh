#!/usr/bin/env bash
# seglab + seg-cni + segd end to end, once per network mode:
#   1. `seglab up` a small model (tests/seglab/model.yaml), apply policy.yaml
#      with segctl; `seglab matrix 80/TCP -o json` (real connections) must
#      give the verdicts of `segctl policy test --matrix 80/TCP -o json` on
#      the same manifests;
#   2. seg-cni prints prevResult unchanged, CHECK passes for a registered pod,
#      fails (CNI error JSON) for an unknown one, ADD without segd is error 11;
#   3. a new pod (pod-new.yaml) is protected before its first packet: its
#      endpoint is in the pinned map, isolated, when `seglab pod add` returns
#      and the first connection to it is blocked;
#   4. a pod wired by a chain WITHOUT seg-cni (pod-nocni.yaml) is discovered
#      by segd and enforced;
#   5. every endpoint segd reports has its two links pinned; the matrix of all five pods equals segctl's again; `seglab down`
#      leaves nothing (netns, pins, socket dir, state dir, processes).
#
#   test_seglab.sh SEGLAB SEGCTL SEG_CNI [MODE...]    (MODE: calico flannel ovs macvlan)
#
# Root only (exit 77 otherwise; CI treats a skip as a failure). Labs are
# named hl-<random>: netns hl-*, pins /sys/fs/bpf/seg-hl-*, state and OVS
# under /tmp/hl-*.
set -euo pipefail

SEGLAB=${1:?usage: test_seglab.sh SEGLAB SEGCTL SEG_CNI [MODE...]}
SEGCTL=${2:?usage}
SEGCNI=${3:?usage}
shift 3
MODES=("$@")
[ ${#MODES[@]} -gt 0 ] || MODES=(calico flannel ovs macvlan)
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/seglab/lib.sh
. "$HERE/lib.sh"

if [ "$(id -u)" != 0 ]; then
	echo "skip: needs root (network namespaces, CNI plugins, bpffs, OVS)"
	exit 77
fi
for t in jq ip ovsdb-server ovs-vswitchd ovs-vsctl ethtool nsenter /usr/lib/cni/ptp \
	/usr/lib/cni/bridge /usr/lib/cni/macvlan /usr/lib/cni/host-local; do
	command -v "$t" >/dev/null || { echo "FAIL: $t is not installed"; exit 1; }
done

LAB=
FAILS=0
TMP=$(mktemp -d /tmp/hl-test.XXXXXX)
cleanup() {
	[ -n "$LAB" ] && "$SEGLAB" down --name "$LAB" >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

ok() { echo "ok   $MODE: $*"; }
fail() {
	echo "FAIL $MODE: $*"
	FAILS=$((FAILS + 1))
}

compare_matrix() { # WHAT MANIFEST...
	local what=$1
	shift
	if matrix_equal "$LAB" "$TMP" "$@"; then
		ok "$what: matrix 80/TCP equals segctl policy test ($(jq length "$TMP/lab.json") pairs)"
	else
		fail "$what: matrix 80/TCP differs from segctl policy test (< seglab, > segctl):"
		matrix_show_diff "$LAB" "$TMP"
	fi
}

# endpoint_json POD: segd's endpoint of NS/POD (null if none)
endpoint_json() {
	"$SEGCTL" -o json endpoint list | jq -c --arg p "$1" '[.[] | select(.pod == $p)][0]'
}

wait_endpoint() { # POD SECONDS: until segd has an endpoint for POD in the maps
	for _ in $(seq $(($2 * 10))); do
		[ "$(endpoint_json "$1" | jq -r '.in_maps // false')" = true ] && return 0
		sleep 0.1
	done
	return 1
}

# Every endpoint segd reports must have both of its links pinned (a pod
# whose programs were detached would pass everything).
check_links() { # WHAT
	local missing="" pod ifkey
	while read -r pod ifkey; do
		[ -e "/sys/fs/bpf/seg-$LAB/links/$ifkey-from" ] &&
			[ -e "/sys/fs/bpf/seg-$LAB/links/$ifkey-to" ] || missing+=" $pod(ifkey $ifkey)"
	done < <("$SEGCTL" -o json endpoint list | jq -r '.[] | "\(.pod) \(.ifkey)"')
	[ -z "$missing" ] && ok "$1: every endpoint has its links pinned" ||
		fail "$1: endpoints without pinned links (programs detached):$missing"
}

check_cni_plugin() {
	local d=/tmp/$LAB/pods/x_a/cni in rc out
	# ADD's output is the previous plugin's result, unchanged.
	if jq -e -n --slurpfile a "$d/ADD.0.out" --slurpfile b "$d/ADD.1.out" '$a == $b' >/dev/null; then
		ok "seg-cni ADD printed prevResult unchanged"
	else
		fail "seg-cni ADD changed prevResult"
	fi
	# CHECK on the registered pod, through the same config and env.
	in=$d/ADD.1.in
	rc=0
	out=$(CNI_COMMAND=CHECK CNI_CONTAINERID=$LAB-x-a CNI_NETNS=/run/netns/$LAB-x-a CNI_IFNAME=eth0 \
		CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=a" "$SEGCNI" <"$in" 2>&1) || rc=$?
	[ "$rc" = 0 ] && ok "seg-cni CHECK x/a passes" || fail "seg-cni CHECK x/a: rc $rc: $out"
	rc=0
	out=$(CNI_COMMAND=CHECK CNI_CONTAINERID=nope CNI_NETNS=/run/netns/$LAB-x-a CNI_IFNAME=eth0 \
		"$SEGCNI" <"$in" 2>/dev/null) || rc=$?
	if [ "$rc" != 0 ] && jq -e '.code == 999 and (.msg | length > 0) and .cniVersion == "1.0.0"' \
		<<<"$out" >/dev/null; then
		ok "seg-cni CHECK of an unknown container: CNI error 999"
	else
		fail "seg-cni CHECK of an unknown container: rc $rc, $out"
	fi
	# No segd: ADD is "try again later", DEL succeeds.
	jq '.socket = "/run/seg/'"$LAB"'/none.sock"' "$in" >"$TMP/nosegd.json"
	rc=0
	out=$(CNI_COMMAND=ADD CNI_CONTAINERID=$LAB-x-a CNI_NETNS=/run/netns/$LAB-x-a CNI_IFNAME=eth0 \
		"$SEGCNI" <"$TMP/nosegd.json" 2>/dev/null) || rc=$?
	[ "$rc" != 0 ] && jq -e '.code == 11' <<<"$out" >/dev/null &&
		ok "seg-cni ADD without segd: CNI error 11" || fail "seg-cni ADD without segd: rc $rc, $out"
	rc=0
	CNI_COMMAND=DEL CNI_CONTAINERID=$LAB-x-a CNI_IFNAME=eth0 "$SEGCNI" <"$TMP/nosegd.json" \
		>/dev/null 2>&1 || rc=$?
	[ "$rc" = 0 ] && ok "seg-cni DEL without segd succeeds" || fail "seg-cni DEL without segd: rc $rc"
}

check_new_pod() {
	local ep ifkey pinned
	"$SEGLAB" pod add -f "$HERE/pod-new.yaml" --name "$LAB" >/dev/null
	# Right after ADD: segd's endpoint, and the kernel's pinned map, have it.
	ep=$(endpoint_json x/c)
	ifkey=$(jq -r '.ifkey // empty' <<<"$ep")
	pinned=$("$SEGCTL" --pin-dir "/sys/fs/bpf/seg-$LAB" -o json bpf endpoint list |
		jq -c --argjson k "${ifkey:-0}" '[.[] | select(.ifkey == $k)][0]')
	if [ -n "$ifkey" ] && [ "$(jq -r .in_maps <<<"$ep")" = true ] &&
		[ "$(jq -r '.ingress.mode // empty' <<<"$pinned")" = isolated ]; then
		ok "new pod x/c: isolated endpoint in the pinned map when ADD returned (ifkey $ifkey)"
	else
		fail "new pod x/c: no isolated endpoint right after ADD (segd: $ep; map: $pinned)"
	fi
	if "$SEGLAB" probe y/a x/c 80/TCP --name "$LAB" -q; then
		fail "new pod x/c: first connection to it passed (deny-all covers it)"
	else
		ok "new pod x/c: first connection to it blocked"
	fi
}

check_no_seg_cni() {
	"$SEGLAB" pod add -f "$HERE/pod-nocni.yaml" --name "$LAB" --no-seg-cni >/dev/null
	if wait_endpoint y/b 15; then
		ok "pod y/b wired without seg-cni: discovered by segd"
	else
		fail "pod y/b wired without seg-cni: no endpoint after 15 s"
		"$SEGCTL" endpoint list | sed 's/^/    /'
		return 0
	fi
	if "$SEGLAB" probe x/a y/b 80/TCP --name "$LAB" -q; then
		fail "pod y/b wired without seg-cni: not enforced (x/a reached it)"
	else
		ok "pod y/b wired without seg-cni: enforced (x/a blocked)"
	fi
}

check_down_clean() {
	local left
	"$SEGLAB" down --name "$LAB" >/dev/null
	"$SEGLAB" down --name "$LAB" >/dev/null || fail "second down failed"
	left=$(
		ip netns list | awk '{print $1}' | grep "^$LAB-" || true
		ls -d "/sys/fs/bpf/seg-$LAB" "/run/seg/$LAB" "/tmp/$LAB" 2>/dev/null || true
		pgrep -af -- "$LAB" | grep -v "test_seglab" || true
	)
	[ -z "$left" ] && ok "down leaves nothing" || fail "down left: $left"
	LAB=
}

run_mode() {
	MODE=$1
	LAB=hl-$(od -An -N2 -tx2 /dev/urandom | tr -d ' \n')
	export SEG_SOCKET=/run/seg/$LAB/segd.sock
	# --resync 1: macvlan pods make no event in the node netns; segd finds
	# the ones without seg-cni on its periodic rescan.
	if ! SEGLAB_SEGD_ARGS="--resync 1" "$SEGLAB" up -f "$HERE/model.yaml" --network "$MODE" \
		--name "$LAB" >"$TMP/up.log" 2>&1; then
		fail "seglab up failed:"
		sed 's/^/    /' "$TMP/up.log"
		LAB=
		return 0
	fi
	grep -qx "export SEG_SOCKET=$SEG_SOCKET" "$TMP/up.log" && ok "up (prints the SEG_SOCKET line)" ||
		fail "up did not print export SEG_SOCKET=$SEG_SOCKET"
	"$SEGCTL" apply -f "$HERE/policy.yaml" >/dev/null
	check_links "3 pods"
	compare_matrix "3 pods + policy" "$HERE/model.yaml" "$HERE/policy.yaml"
	check_cni_plugin
	check_new_pod
	check_no_seg_cni
	check_links "5 pods"
	compare_matrix "5 pods + policy" "$HERE/model.yaml" "$HERE/pod-new.yaml" \
		"$HERE/pod-nocni.yaml" "$HERE/policy.yaml"
	"$SEGLAB" pod del x/c --name "$LAB" >/dev/null
	sleep 0.5
	[ "$(endpoint_json x/c)" = null ] && ok "pod del x/c: endpoint gone" ||
		fail "pod del x/c: endpoint still there: $(endpoint_json x/c)"
	check_down_clean
}

for m in "${MODES[@]}"; do
	run_mode "$m"
done
if [ "$FAILS" -gt 0 ]; then
	echo "$FAILS check(s) failed"
	exit 1
fi
echo "all checks passed (${MODES[*]})"
