#!/usr/bin/env bash
# The NetworkPolicy conformance corpus (tests/netpol/cases) on live pods: for
# each network mode, one lab of tests/netpol/base.yaml (x, y, z with pods a,
# b, c; every pod serves 80 and 81 on TCP, UDP and SCTP), then per case: `segctl apply` its policy, `seglab matrix` (real
# connections) for each probe of its expect.txt must print exactly the
# expected table; `segctl delete` it again. The same tables the compiler's
# unit test checks offline, so all four modes give the same matrix.
#
#   netpol.sh SEGLAB SEGCTL [MODE...]     (MODE: calico flannel ovs macvlan)
#
# NETPOL_CASES=REGEX runs only the cases whose directory name matches.
# Cases with their own cluster (cluster.yaml/json) or "audit-default" run in
# a lab of their own. Root only (exit 77 otherwise). Labs hl-<random>.
set -euo pipefail

SEGLAB=${1:?usage: netpol.sh SEGLAB SEGCTL [MODE...]}
SEGCTL=${2:?usage}
shift 2
MODES=("$@")
[ ${#MODES[@]} -gt 0 ] || MODES=(calico flannel ovs macvlan)
CASES=$(cd "$(dirname "$0")/../netpol" && pwd)

if [ "$(id -u)" != 0 ]; then
	echo "skip: needs root (network namespaces, CNI plugins, bpffs, OVS)"
	exit 77
fi

LAB=
FAILS=0
PASSES=0
TMP=$(mktemp -d /tmp/hl-netpol.XXXXXX)
cleanup() {
	[ -n "$LAB" ] && "$SEGLAB" down --name "$LAB" >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

lab_up() { # MODE CLUSTER [segd args]
	LAB=hl-$(od -An -N2 -tx2 /dev/urandom | tr -d ' \n')
	export SEG_SOCKET=/run/seg/$LAB/segd.sock
	if ! SEGLAB_SEGD_ARGS=${3:-} "$SEGLAB" up -f "$2" --network "$1" --name "$LAB" --serve 80,81 \
		>"$TMP/up.log" 2>&1; then
		echo "FAIL $1: seglab up -f $2:"
		sed 's/^/    /' "$TMP/up.log"
		LAB=
		return 1
	fi
}

lab_down() {
	"$SEGLAB" down --name "$LAB" >/dev/null
	LAB=
}

# run_case MODE DIR: every probe block of DIR/expect.txt against the lab
run_case() {
	local mode=$1 dir=$2 name want got spec fam args
	name=$(basename "$dir")
	if ! "$SEGCTL" apply -f "$dir/policy.yaml" >"$TMP/apply.log" 2>&1; then
		echo "FAIL $mode $name: segctl apply:"
		sed 's/^/    /' "$TMP/apply.log"
		FAILS=$((FAILS + 1))
		return 0
	fi
	while read -r spec fam; do
		args=()
		[ "$fam" = v6 ] && args+=(-6)
		want=$(awk -v p="probe $spec${fam:+ $fam}" '$0 == p {on = 1; next}
			on && /^$/ {exit} on && !/^#/ {print}' "$dir/expect.txt")
		got=$("$SEGLAB" matrix "$spec" "${args[@]}" --name "$LAB" --timeout 500)
		if [ "$got" = "$want" ]; then
			PASSES=$((PASSES + 1))
		else
			echo "FAIL $mode $name: probe $spec $fam (< expected, > seglab):"
			diff <(echo "$want") <(echo "$got") | sed 's/^/    /' || true
			FAILS=$((FAILS + 1))
		fi
	done < <(sed -n 's/^probe \([^ ]*\) *\(.*\)$/\1 \2/p' "$dir/expect.txt")
	"$SEGCTL" delete -f "$dir/policy.yaml" >/dev/null 2>&1 ||
		echo "warning: $mode $name: segctl delete failed"
}

wanted() { [[ $(basename "$1") =~ ${NETPOL_CASES:-.} ]]; }

own_lab() { # DIR: the case needs a lab of its own
	ls "$1"/cluster.* >/dev/null 2>&1 || grep -qx 'audit-default' "$1/expect.txt"
}

for mode in "${MODES[@]}"; do
	before=$FAILS
	if lab_up "$mode" "$CASES/base.yaml"; then
		for dir in "$CASES"/cases/*/; do
			wanted "$dir" && ! own_lab "$dir" && run_case "$mode" "${dir%/}"
		done
		lab_down
	else
		FAILS=$((FAILS + 1))
	fi
	for dir in "$CASES"/cases/*/; do
		wanted "$dir" && own_lab "$dir" || continue
		cluster=$(ls "$dir"/cluster.* 2>/dev/null | head -n1 || true)
		segd_args=
		grep -qx 'audit-default' "$dir/expect.txt" && segd_args=--audit-default
		if lab_up "$mode" "${cluster:-$CASES/base.yaml}" "$segd_args"; then
			run_case "$mode" "${dir%/}"
			lab_down
		else
			FAILS=$((FAILS + 1))
		fi
	done
	echo "$mode: $((FAILS - before)) failed"
done
echo "$PASSES probe tables matched, $FAILS failed"
[ "$FAILS" = 0 ]
