#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# The kernel and the userspace evaluator agree: for every case of the
# conformance corpus, every pod pair, ports 80 and 81 on TCP, UDP and SCTP,
# over IPv4 and IPv6, plus addresses outside the pods (in and out of the
# corpus's ipBlocks) on either side of each pod, `segctl policy test --datapath` (BPF_PROG_TEST_RUN on
# private maps) prints the same verdict and reason as the offline mode.
# Needs root (exit 77 otherwise).
# Usage: agree.sh SEGCTL NETPOL_DIR
set -u

SEGCTL=${1:?usage: agree.sh SEGCTL NETPOL_DIR}
NP=${2:?usage: agree.sh SEGCTL NETPOL_DIR}
if [ "$(id -u)" != 0 ]; then
	echo "SKIP: needs root (loads the BPF program for --datapath)"
	exit 77
fi
command -v jq >/dev/null || { echo "FAIL: jq not installed"; exit 1; }
TMP=$(mktemp -d /tmp/ha-agree.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
FAILS=0
PASSES=0
PROBES=0

for case in "$NP"/cases/*/; do
	case=${case%/}
	name=${case##*/}
	extra=
	base="-f $NP/base.yaml"
	grep -qx 'audit-default' "$case/expect.txt" 2>/dev/null && extra=--audit-default
	grep -qx 'no-base' "$case/expect.txt" 2>/dev/null && base=
	# every pod of the case (the matrix header), every pair, 2 ports x 3 protocols
	"$SEGCTL" policy test $base -f "$case" $extra --matrix 80/TCP >"$TMP/m" \
		2>"$TMP/err" || { FAILS=$((FAILS + 1)); echo "not ok - $name: offline matrix";
		cat "$TMP/err"; continue; }
	head -1 "$TMP/m" | tr '\t' '\n' | tail -n +2 >"$TMP/pods"
	: >"$TMP/probes"
	while read -r s; do
		while read -r d; do
			for pp in 80/TCP 81/TCP 80/UDP 81/UDP 80/SCTP 81/SCTP; do
				echo "$s->$d:$pp" >>"$TMP/probes"
			done
		done <"$TMP/pods"
	done <"$TMP/pods"
	# addresses outside the pods (inside and outside the corpus's ipBlocks)
	# on either side of each pod
	for fam in 4 6; do
		cp "$TMP/probes" "$TMP/probes.$fam"
		if [ $fam = 4 ]; then addrs="10.2.0.9 10.3.0.3 10.9.0.1 192.0.2.1"; else
			addrs="fd00:2::9 fd00:2::3 fd00:9::1 2001:db8::1"; fi
		while read -r p; do
			for a in $addrs; do
				echo "$a->$p:80/TCP" >>"$TMP/probes.$fam"
				echo "$p->$a:81/UDP" >>"$TMP/probes.$fam"
			done
		done <"$TMP/pods"
	done
	for fam in 4 6; do
		for mode in offline datapath; do
			flag=
			[ $mode = datapath ] && flag=--datapath
			"$SEGCTL" -o json policy test $base -f "$case" $extra \
				--family $fam --probes "$TMP/probes.$fam" $flag >"$TMP/$mode" 2>"$TMP/err.$mode"
			echo $? >"$TMP/rc.$mode"
		done
		n=$(jq length "$TMP/offline" 2>/dev/null || echo 0)
		if [ "$fam" = 6 ] && [ "$(cat "$TMP/rc.offline")" = 1 ] &&
			grep -q 'has no IPv6 address' "$TMP/err.offline"; then
			echo "ok - $name IPv6: the case's pods have no IPv6 address (nothing to compare)"
		elif [ "$(cat "$TMP/rc.offline")" != 0 ] || [ "$(cat "$TMP/rc.datapath")" != 0 ]; then
			FAILS=$((FAILS + 1))
			echo "not ok - $name IPv$fam: exit offline $(cat "$TMP/rc.offline"), datapath $(cat "$TMP/rc.datapath")"
			sed 's/^/  /' "$TMP/err.offline" "$TMP/err.datapath" | head -5
		elif cmp -s "$TMP/offline" "$TMP/datapath"; then
			PASSES=$((PASSES + 1))
			PROBES=$((PROBES + n))
			echo "ok - $name IPv$fam: $n probes agree"
		else
			FAILS=$((FAILS + 1))
			echo "not ok - $name IPv$fam: offline and datapath differ"
			jq -c '.[]' "$TMP/offline" >"$TMP/o.l"
			jq -c '.[]' "$TMP/datapath" >"$TMP/d.l"
			diff "$TMP/o.l" "$TMP/d.l" | head -6 | sed 's/^/  /'
		fi
	done
done
echo "# $PASSES passed, $FAILS failed, $PROBES probes compared"
[ "$FAILS" = 0 ] && [ "$PASSES" -gt 0 ]
