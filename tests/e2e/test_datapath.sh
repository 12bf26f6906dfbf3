#!/usr/bin/env bash
# seg end to end: two pods behind a Calico-style node (routed host veths
# cali*), seg attached to the host veths, real TCP, UDP and SCTP (raw INIT ->
# INIT-ACK) over IPv4 and IPv6, both directions. Checks that connections
# pass or drop exactly as the maps say, that policy changes apply without
# reattaching (added -> allowed, removed -> blocked, an established TCP
# connection cut after the revision bump), and the counters and events.
# Also: port ranges vs deny rules, audit mode, node traffic (--allow-host),
# anti-spoofing, and the other attach modes (inside the pod netns, XDP).
#
#   test_datapath.sh SEGCTL SEGPROBE
#
# Prints one line per check (ok/FAIL), then "N passed, N failed". Exit 0 all
# passed, 1 any failed, 77 not root. Uses netns he-<rand>-{node,a,b,c,d} and the
# pin dir /sys/fs/bpf/he-<rand>; removes both on exit.
# e2e_pod_add sets E2E_IF_<pod>, E2E_IP4_<pod>, E2E_IP6_<pod> indirectly:
# shellcheck disable=SC2154
set -euo pipefail

SEGCTL=${1:-${SEGCTL:-}}
SEGPROBE=${2:-${SEGPROBE:-}}
here=$(cd "$(dirname "$0")" && pwd)

# shellcheck source=scripts/e2e-lib.sh
source "$here/../../scripts/e2e-lib.sh"
e2e_require "creates network namespaces, loads BPF" "SEGCTL SEGPROBE" SEGCTL SEGPROBE
e2e_node_env he
TO_ALLOW=3000 # ms: an answer normally takes < 1 ms; patience for a loaded CI box
TO_DENY=700   # ms: a drop costs this much per probe

cleanup() {
	local rc=$?
	set +e
	e2e_stopped_early "$rc"
	e2e_node_down
}
trap cleanup EXIT
trap 'exit 1' INT TERM

sc() { "$SEGCTL" --pin-dir "$PIN" "$@"; }
scj() { "$SEGCTL" --pin-dir "$PIN" -o json "$@"; }

# expect allow|deny FROM_POD TO_POD FAMILY PORT/PROTO [segprobe options]
# allow: every round answered. deny: silence (a drop), never a refusal:
# every port probed is served, so only seg can make it go quiet.
expect() {
	local want=$1 from=$2 to=$3 fam=$4 pp=$5 addr out res to_ms=$TO_DENY
	shift 5
	if [ "$fam" = 4 ]; then addr=E2E_IP4_$to; else addr=E2E_IP6_$to; fi
	addr=${!addr}
	[ "$want" = allow ] && to_ms=$TO_ALLOW
	out=$(e2e_probe "$from" "$addr" "$pp" --timeout "$to_ms" "$@") || true
	res=$(e2e_result "$out")
	if { [ "$want" = allow ] && [ "$res" = ok ]; } ||
		{ [ "$want" = deny ] && [ "$res" = timeout ]; }; then
		e2e_ok "$want $from -> $to $pp IPv$fam${*:+ $*} ($res)"
	else
		e2e_fail "$want $from -> $to $pp IPv$fam${*:+ $*}: got ${res:-nothing} ($out)"
	fi
}

# both allow|deny FROM TO PORT/PROTO: IPv4 and IPv6.
both() {
	expect "$1" "$2" "$3" 4 "$4"
	expect "$1" "$2" "$3" 6 "$4"
}

# Summed packets of one reason (by number) / one rule id.
reason_pkts() {
	scj bpf counters | jq -r --argjson r "$1" \
		'[.. | objects | select((.reason_id // .reason) == $r) | .packets] | add // 0'
}
rule_pkts() {
	scj bpf counters --rules | jq -r --argjson r "$1" \
		'[.. | objects | select((.rule_id // .rule) == $r) | .packets] | add // 0'
}
# check_grew DESCRIPTION BEFORE AFTER
check_grew() {
	if [ "$3" -gt "$2" ]; then e2e_ok "$1 ($2 -> $3)"; else e2e_fail "$1 (stayed $2 -> $3)"; fi
}

# Reason numbers from include/seg/abi.h.
R_ALLOW_RULE=0
R_ALLOW_ESTABLISHED=2
R_DROP_POLICY=16
R_DROP_REVOKED=18
R_DROP_DENY_RULE=17
R_AUDIT=6
R_ALLOW_HOST=4
R_DROP_SPOOF=27
ID_A=1001
ID_B=1002

# policy CMD POLICY DIR PEER PROTO PORT [RULE]: add or delete one entry.
policy() {
	local cmd=$1 pol=$2 dir=$3 peer=$4 proto=$5 port=$6 rule=${7:-}
	sc bpf policy "$cmd" --policy "$pol" --dir "$dir" --peer "$peer" --proto "$proto" \
		--port "$port" ${rule:+--rule "$rule"} >/dev/null
}

echo "# topology: $NODE with pods $E2E_PREFIX-a (10.77.0.2, fd77::2) and $E2E_PREFIX-b (10.77.0.3, fd77::3)"
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
e2e_up
e2e_pod_add a 2
e2e_pod_add b 3
# Every port a probe targets is served: a drop then shows as silence.
e2e_serve a --tcp 80,8080 --udp 53 --sctp 9
e2e_serve b --tcp 80,81,7999-8001,8049-8051,8100,8101 --udp 53,54 --sctp 9,10

echo "# without seg: every probed port answers"
for pp in 81/tcp 54/udp 10/sctp; do both allow a b "$pp"; done
for pp in 80/tcp 53/udp 9/sctp; do both allow b a "$pp"; done

echo "# load seg, attach to the host veths, program endpoints, ipcache and policy"
sc bpf load >/dev/null
IFK_A=$(scj bpf attach --dev "$E2E_IF_a" --netns "$NODE" --mode veth | jq -r .ifkey)
IFK_B=$(scj bpf attach --dev "$E2E_IF_b" --netns "$NODE" --mode veth | jq -r .ifkey)
e2e_check "attach printed ifkeys ($IFK_A, $IFK_B)" test "$IFK_A" -gt 0 -a "$IFK_B" -gt 0 -a "$IFK_A" != "$IFK_B"
for addr in "$E2E_IP4_a" "$E2E_IP6_a"; do
	sc bpf ipcache set "$addr" --identity $ID_A --owner-ifkey "$IFK_A" >/dev/null
done
for addr in "$E2E_IP4_b" "$E2E_IP6_b"; do
	sc bpf ipcache set "$addr" --identity $ID_B --owner-ifkey "$IFK_B" >/dev/null
done
# b (policy 10, ingress): a may reach tcp 80, udp 53, sctp 9.
policy add 10 ingress $ID_A tcp 80 101
policy add 10 ingress $ID_A udp 53 102
policy add 10 ingress $ID_A sctp 9 103
# a (policy 20, ingress): b may reach tcp 8080.
policy add 20 ingress $ID_B tcp 8080 201
sc bpf endpoint set --ifkey "$IFK_A" --ep-id 1 --identity $ID_A --ingress isolated \
	--policy-ingress 20 --egress open >/dev/null
sc bpf endpoint set --ifkey "$IFK_B" --ep-id 2 --identity $ID_B --ingress isolated \
	--policy-ingress 10 --egress open >/dev/null
e2e_check "endpoint list shows both endpoints isolated on ingress" \
	test "$(scj bpf endpoint list | jq '[.[] | select(.ingress.mode == "isolated")] | length')" = 2

drop0=$(reason_pkts $R_DROP_POLICY)
allow0=$(reason_pkts $R_ALLOW_RULE)

echo "# a -> b: allowed by b's policy, everything else dropped"
for pp in 80/tcp 53/udp 9/sctp; do both allow a b "$pp"; done
for pp in 81/tcp 54/udp 10/sctp; do both deny a b "$pp"; done
echo "# b -> a: only tcp 8080"
both allow b a 8080/tcp
for pp in 80/tcp 53/udp 9/sctp; do both deny b a "$pp"; done

echo "# counters"
check_grew "reason 'allowed by rule' counted" "$allow0" "$(reason_pkts $R_ALLOW_RULE)"
check_grew "reason 'isolated, no rule allows' counted" "$drop0" "$(reason_pkts $R_DROP_POLICY)"
check_grew "reason 'established or reply' counted" 0 "$(reason_pkts $R_ALLOW_ESTABLISHED)"
for r in 101 102 103 201; do check_grew "rule $r counted" 0 "$(rule_pkts $r)"; done
check_grew "conntrack has entries" 0 "$(scj bpf ct list | jq length)"

echo "# policy changes apply without reattaching"
policy add 10 ingress $ID_A tcp 81 104
both allow a b 81/tcp
policy add 20 ingress $ID_B udp 53 202
both allow b a 53/udp
policy delete 10 ingress $ID_A tcp 81
both deny a b 81/tcp
policy delete 20 ingress $ID_B udp 53
both deny b a 53/udp

echo "# egress isolation: a may only open tcp 80 to b"
policy add 30 egress $ID_B tcp 80 301
sc bpf endpoint set --ifkey "$IFK_A" --egress isolated --policy-egress 30 >/dev/null
both allow a b 80/tcp
both deny a b 53/udp
sc bpf endpoint set --ifkey "$IFK_A" --egress open >/dev/null
both allow a b 53/udp

echo "# established flows are cut when their rule goes away (revision bump)"
revoked0=$(reason_pkts $R_DROP_REVOKED)
EP_B=2 # b's ep_id (endpoint set above)
# b's conntrack entry of the flow a:SPORT -> b:PORT/PROTO (JSON), "{}" while none.
ct_flow() { # ct_flow PORT PROTO_NUMBER SPORT
	scj bpf ct list | jq -c --argjson p "$1" --argjson pr "$2" --argjson s "$3" --argjson ep $EP_B \
		'[.[] | select(.ep_id == $ep and .lport == $p and .proto == $pr and .rport == $s)][0] // {}'
}
ep_revision() { scj bpf endpoint list | jq --argjson ep $EP_B '.[] | select(.ep_id == $ep) | .revision'; }
# cut FAM PORT PROTO RULE SPORT: a long-lived a -> b flow (from SPORT, so
# its conntrack entry is known), its rule deleted midway. In order, each
# step waiting for the previous one rather than for a fixed time:
#   1. the flow is answered: b's entry counted >= 3 packets back to a;
#   2. the rule is deleted: segctl returns once the maps are written, and
#      b's revision has moved;
#   3. the next packets are dropped: the probe (1000 rounds, 100 s) ends
#      "cut" within CUT_MS, and b's entry is a revoked tombstone, so the cut
#      was the data path's and no timeout of a slow box.
CUT_MS=30000 # an answer's timeout (TO_ALLOW) plus a round, with room for a loaded box
cut() {
	local fam=$1 port=$2 proto=$3 rule=$4 sport=$5 addr=E2E_IP${1}_b out long r c n
	local pn seen=0 rev0 rev1 e t0 ms what res
	what="IPv$fam established a -> b $port/$proto"
	pn=$(getent protocols "$proto" | awk '{print $2}')
	out=$E2E_LOGDIR/long-$proto-$fam.json
	e2e_probe a "${!addr}" "$port/$proto" --sport "$sport" --count 1000 --interval 100 \
		--timeout "$TO_ALLOW" >"$out" &
	long=$!
	for _ in $(seq 300); do
		seen=$(ct_flow "$port" "$pn" "$sport" | jq '.packets_out // 0' || true)
		seen=${seen:-0}
		[ "$seen" -ge 3 ] && break
		kill -0 "$long" 2>/dev/null || break
		sleep 0.1
	done
	if [ "$seen" -lt 3 ] || ! kill -0 "$long" 2>/dev/null; then
		kill "$long" 2>/dev/null || true
		wait "$long" || true
		e2e_fail "$what: not answered before the rule went ($seen packets back): $(cat "$out")"
		return
	fi
	rev0=$(ep_revision)
	t0=$(date +%s%3N)
	policy delete 10 ingress $ID_A "$proto" "$port" # segctl bumps b's revision
	rev1=$(ep_revision)
	while kill -0 "$long" 2>/dev/null && [ $(($(date +%s%3N) - t0)) -lt $CUT_MS ]; do
		sleep 0.05
	done
	ms=$(($(date +%s%3N) - t0))
	kill "$long" 2>/dev/null || true
	wait "$long" || true
	res=$(jq -r '"\(.result) \(.connected) \(.replies)"' "$out" 2>/dev/null || true)
	read -r r c n <<<"${res:-none false 0}"
	e=$(ct_flow "$port" "$pn" "$sport")
	if [ "$rev1" -gt "$rev0" ] && [ "$r" = cut ] && [ "$n" -ge 1 ] &&
		{ [ "$proto" != tcp ] || [ "$c" = true ]; } &&
		[ "$(jq -r '"\(.verdict) \(.reason)"' <<<"$e")" = "deny $R_DROP_REVOKED" ]; then
		e2e_ok "$what cut after $n answers (revision $rev0 -> $rev1, $ms ms after the delete)"
	else
		e2e_fail "$what not cut within $CUT_MS ms (revision $rev0 -> $rev1, $ms ms): $(cat "$out"); b's entry: $e"
	fi
	policy add 10 ingress $ID_A "$proto" "$port" "$rule" # back, for what follows
}
cut 4 80 tcp 101 44101
cut 6 80 tcp 101 44102
cut 4 53 udp 102 44103
cut 6 9 sctp 103 44104
check_grew "reason 'established flow no longer allowed' counted" "$revoked0" "$(reason_pkts $R_DROP_REVOKED)"
policy delete 10 ingress $ID_A tcp 80
both deny a b 80/tcp
policy add 10 ingress $ID_A tcp 80 101

echo "# port ranges, any-peer and deny entries: the most specific entry wins"
policy add 10 ingress any tcp 8000-8100 105
for port in 8000 8050 8100; do expect allow a b 4 "$port/tcp"; done
expect deny a b 4 8101/tcp
expect deny a b 4 7999/tcp
deny0=$(reason_pkts $R_DROP_DENY_RULE)
sc bpf policy add --policy 10 --dir ingress --peer $ID_A --proto tcp --port 8050 --deny \
	--rule 106 >/dev/null
both deny a b 8050/tcp
both allow a b 8049/tcp
check_grew "reason 'denied by rule' counted" "$deny0" "$(reason_pkts $R_DROP_DENY_RULE)"
check_grew "deny rule 106 counted" 0 "$(rule_pkts 106)"

echo "# audit mode: would-be drops pass and are counted as audit"
audit0=$(reason_pkts $R_AUDIT)
sc bpf endpoint set --ifkey "$IFK_B" --ingress audit >/dev/null
both allow a b 81/tcp
check_grew "reason 'audit' counted" "$audit0" "$(reason_pkts $R_AUDIT)"
sc bpf endpoint set --ifkey "$IFK_B" --ingress isolated >/dev/null
both deny a b 81/tcp

echo "# the node: denied while isolated, allowed with --allow-host (ipcache: node = HOST)"
host_probe() { # host_probe allow|deny PORT/PROTO: from the node netns to b over IPv4
	local out res
	out=$(ip netns exec "$NODE" "$SEGPROBE" connect "$E2E_IP4_b" "$2" -o json \
		--timeout "$([ "$1" = allow ] && echo $TO_ALLOW || echo $TO_DENY)") || true
	res=$(e2e_result "$out")
	if { [ "$1" = allow ] && [ "$res" = ok ]; } || { [ "$1" = deny ] && [ "$res" = timeout ]; }; then
		e2e_ok "$1 node -> b $2 IPv4 ($res)"
	else
		e2e_fail "$1 node -> b $2 IPv4: got ${res:-nothing} ($out)"
	fi
}
sc bpf ipcache set "$E2E_GW4" --identity 1 >/dev/null # SEG_ID_HOST
host_probe deny 81/tcp
host0=$(reason_pkts $R_ALLOW_HOST)
sc bpf config set --allow-host on >/dev/null
host_probe allow 81/tcp
check_grew "reason 'to or from the node' counted" "$host0" "$(reason_pkts $R_ALLOW_HOST)"
sc bpf config set --allow-host off >/dev/null
host_probe deny 81/tcp

echo "# anti-spoofing: a new flow from a source the pod does not own is dropped"
# a gets a second address the ipcache does not know; b accepts 8000 from anyone.
ip -n "$E2E_PREFIX-a" addr add "$E2E_NET4.12/32" dev eth0
ip -n "$NODE" route add "$E2E_NET4.12/32" dev "$E2E_IF_a" scope link
expect allow a b 4 8000/tcp --bind "$E2E_NET4.12"
spoof0=$(reason_pkts $R_DROP_SPOOF)
sc bpf config set --antispoof on >/dev/null
expect deny a b 4 8000/tcp --bind "$E2E_NET4.12"
expect allow a b 4 8000/tcp --bind "$E2E_IP4_a"
both allow a b 53/udp
check_grew "reason 'source address not owned by the pod' counted" "$spoof0" "$(reason_pkts $R_DROP_SPOOF)"
sc bpf config set --antispoof off >/dev/null

echo "# other attach modes: c enforced inside its netns (--mode pod), d by XDP (--mode ovs)"
ID_C=1003
ID_D=1004
e2e_pod_add c 4
e2e_pod_add d 5
e2e_serve c --tcp 80,81
IFK_C=$(scj bpf attach --dev eth0 --netns "$E2E_PREFIX-c" --mode pod --ep-id 3 | jq -r .ifkey)
IFK_D=$(scj bpf attach --dev "$E2E_IF_d" --netns "$NODE" --mode ovs | jq -r .ifkey)
e2e_check "pod-mode ifkey is 0x80000000|ep-id ($IFK_C)" test "$IFK_C" = $((0x80000003))
for addr in "$E2E_IP4_c" "$E2E_IP6_c"; do
	sc bpf ipcache set "$addr" --identity $ID_C --owner-ifkey "$IFK_C" >/dev/null
done
for addr in "$E2E_IP4_d" "$E2E_IP6_d"; do
	sc bpf ipcache set "$addr" --identity $ID_D --owner-ifkey "$IFK_D" >/dev/null
done
# c (policy 40, ingress): a may reach tcp 80. d (policy 50, egress): tcp 80 to b only.
policy add 40 ingress $ID_A tcp 80 401
policy add 50 egress $ID_B tcp 80 501
policy add 10 ingress $ID_D tcp 80-81 107 # b lets d in on 80 and 81: only d's egress decides
sc bpf endpoint set --ifkey "$IFK_C" --ep-id 3 --identity $ID_C --ingress isolated \
	--policy-ingress 40 >/dev/null
sc bpf endpoint set --ifkey "$IFK_D" --ep-id 4 --identity $ID_D --egress isolated \
	--policy-egress 50 >/dev/null
both allow a c 80/tcp
both deny a c 81/tcp
both deny b c 80/tcp
both allow d b 80/tcp
both deny d b 81/tcp
check_grew "rule 401 (pod mode) counted" 0 "$(rule_pkts 401)"
check_grew "rule 501 (XDP) counted" 0 "$(rule_pkts 501)"

echo "# events"
events=$(scj bpf events --count 10000 --timeout 1 || true)
for t in new deny revoked; do
	n=$(jq -s --arg t "$t" '[.[] | select((.type | ascii_downcase) == $t)] | length' <<<"$events" 2>/dev/null || echo 0)
	check_grew "events of type $t reported" 0 "$n"
done

echo "# detach: c is open again, the others stay enforced"
sc bpf detach --ifkey "$IFK_C" >/dev/null
for _ in $(seq 30); do # detaching completes in a kernel work item
	e2e_probe a "$E2E_IP4_c" 81/tcp --timeout 100 -q && break
done
both allow a c 81/tcp
both deny a b 81/tcp

echo "# unload: detaches, traffic flows again"
sc bpf unload >/dev/null
# Unpinning a link detaches it from a kernel work item, just after unload
# returns: give it a moment before probing.
for _ in $(seq 30); do
	e2e_probe b "$E2E_IP4_a" 80/tcp --timeout 100 -q && break
done
both allow b a 80/tcp

e2e_summary
