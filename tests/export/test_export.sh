#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# segd's exporter end to end (issue 5): two seglab labs are two nodes, each
# with its own segd (pins, socket, spool) exporting to one seg-topology.
#   1. every connection the test makes shows up once in the service's graph,
#      with the right workloads and verdicts, and the bytes of each allowed
#      edge equal what conntrack counted for it (NEW packet + UPDATE deltas);
#   2. the service is stopped under traffic for OUTAGE seconds (default 30,
#      as issue 5 asks) and restarted: segd reports it unreachable and
#      spools; afterwards every outage connection is in the new service, and
#      the records it holds equal exactly what the exporters count as sent
#      since (nothing dropped, or the exact dropped count is reported). The
#      restarted service does not announce columns (--no-columns, as a
#      service older than them): the spooled columnar batches are delivered
#      as Flow messages, still exactly once;
#   3. `segctl observe --follow` (from segd) prints a new connection within
#      a second;
#   4. a pod's link-local traffic (fe80::, ff02::: neighbour discovery,
#      MLD, router solicitations) is that pod's, not world -> world: the
#      edges x/a -> world and world -> x/a, the pod's own records in
#      `segctl observe --pod`, and no world -> world edge in the graph;
#   5. a service whose certificate another CA signed: segd's status names
#      the TLS failure (last_error says "certificate verify failed"),
#      nothing is sent, the service holds nothing.
# The exporters send columnar batches (the service announces them): status
# says wire = columns.
#
#   test_export.sh SEGLAB SEGCTL SEG_TOPOLOGY
#
# Root only (exit 77 otherwise). Labs sf-e1, sf-e2; files in /tmp/sf-export.*.
# The service listens on a unix socket: segd runs in its lab's node netns,
# where 127.0.0.1 is not the host's.
set -uo pipefail

SEGLAB=${1:?usage: test_export.sh SEGLAB SEGCTL SEG_TOPOLOGY}
SEGCTL=${2:?usage}
TOPO=${3:?usage}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUTAGE=${OUTAGE:-30}

if [ "$(id -u)" != 0 ]; then
	echo "skip: needs root (network namespaces, bpffs)"
	exit 77
fi
for t in jq curl ip nsenter openssl; do
	command -v "$t" >/dev/null || { echo "FAIL: $t is not installed"; exit 1; }
done

dir=$(mktemp -d /tmp/sf-export.XXXXXX)
export SEGLAB_STATE_DIR=$dir
L1=sf-e1 L2=sf-e2
topo_pid='' follow_pid='' tls_pid=''
fails=0
ok() { echo "ok - $*"; }
bad() { echo "not ok - $*"; fails=$((fails + 1)); }

cleanup() {
	[ -n "$follow_pid" ] && kill "$follow_pid" 2>/dev/null
	[ -n "$topo_pid" ] && kill "$topo_pid" 2>/dev/null && wait "$topo_pid" 2>/dev/null
	[ -n "$tls_pid" ] && kill "$tls_pid" 2>/dev/null && wait "$tls_pid" 2>/dev/null
	cp "$dir/$L1/segd.log" "$dir/segd-node-1.log" 2>/dev/null
	cp "$dir/$L2/segd.log" "$dir/segd-node-2.log" 2>/dev/null
	"$SEGLAB" down --name $L1 >/dev/null 2>&1
	"$SEGLAB" down --name $L2 >/dev/null 2>&1
	if [ "$fails" = 0 ] && [ -z "${KEEP_LOGS:-}" ]; then rm -rf "$dir"; else echo "# logs in $dir"; fi
}
trap cleanup EXIT

topo_start() { # topo_start [seg-topology args]
	rm -f "$dir/ports" "$dir/grpc.sock"
	"$TOPO" --grpc "unix:$dir/grpc.sock" --http 127.0.0.1:0 --ports-file "$dir/ports" "$@" \
		>>"$dir/topo.log" 2>&1 &
	topo_pid=$!
	for _ in $(seq 50); do [ -s "$dir/ports" ] && break; sleep 0.1; done
	[ -s "$dir/ports" ] || { echo "FAIL: seg-topology did not start"; cat "$dir/topo.log"; exit 1; }
	HTTP=http://127.0.0.1:$(awk '$1=="http"{print $2}' "$dir/ports")
}

sc() { # sc LAB segctl-args...
	local lab=$1
	shift
	SEG_SOCKET=/run/seg/$lab/segd.sock "$SEGCTL" "$@"
}
xstat() { sc "$1" status -o json | jq -r ".exporter.$2"; }
probe() { "$SEGLAB" probe --name "$@" >/dev/null 2>&1; }
# an allowed connection must connect; a denied one is probed once (one SYN)
allow() { probe "$1" "$2" "$3" "$4" || bad "$1: $2 -> $3 $4 should connect"; }
deny() { ! probe "$1" "$2" "$3" "$4" --timeout 400 --retries 0 || bad "$1: $2 -> $3 $4 should be blocked"; }

wait_for() { # wait_for SECONDS COMMAND...: until COMMAND succeeds
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.2
	done
}
spool_empty() { [ "$(xstat $L1 spooled)" = 0 ] && [ "$(xstat $L2 spooled)" = 0 ]; }

edge() { # edge SRC DST PORT FIELD: from /api/v1/graph
	curl -sf "$HTTP/api/v1/graph" |
		jq -r --arg s "$1" --arg d "$2" --argjson p "$3" --arg f "$4" \
			'[.edges[] | select(.src==$s and .dst==$d and .port==$p)][0][$f] // 0'
}
is() { # is DESCRIPTION GOT WANT
	if [ "$2" = "$3" ]; then ok "$1 ($2)"; else bad "$1: got '$2', want '$3'"; fi
}

# bytes conntrack counted for connections into LADDR:LPORT from RADDR
# (ingress entries on the destination: what the edge is counted from)
ct_bytes() { # ct_bytes LAB LADDR LPORT RADDR
	"$SEGCTL" --pin-dir "/sys/fs/bpf/seg-$1" bpf ct list -o json |
		jq --arg l "$2" --argjson p "$3" --arg r "$4" \
			'[.[] | select(.laddr==$l and .lport==$p and .raddr==$r and .dir=="ingress") |
			  .bytes_in + .bytes_out] | add // 0'
}

# ---- two nodes exporting to one service -----------------------------------------
topo_start
echo "# service: unix:$dir/grpc.sock, $HTTP"
EXPORT=unix:$dir/grpc.sock
up() { # up LAB NODE MODEL POLICY [segd args]: exports to $EXPORT
	SEGLAB_SEGD_ARGS="--export $EXPORT --node-name $2 --ct-walk 1 --flow-idle 2 --export-spool $dir/spool-$2 --resync 5 --metrics 127.0.0.1:9464 ${5:-}" \
		"$SEGLAB" up --name "$1" -f "$3" --network calico >"$dir/up-$1.log" 2>&1 ||
		{ echo "FAIL: seglab up $1"; cat "$dir/up-$1.log"; exit 1; }
	sc "$1" apply -f "$4" >/dev/null || { echo "FAIL: apply $4 on $1"; exit 1; }
}
up $L1 node-1 "$ROOT/tests/seglab/model.yaml" "$ROOT/tests/seglab/policy.yaml"
# node-2's spool is small (6000 bytes): the outage overflows it, and what
# it drops must be counted exactly
up $L2 node-2 "$HERE/model-b.yaml" "$HERE/policy-b.yaml" "--export-spool-max 6000"

N1=3 N2=4
for _ in $(seq $N1); do allow $L1 y/a x/b 80/TCP; done
deny $L1 x/a x/b 80/TCP
for _ in $(seq $N2); do allow $L2 shop/web shop/api 8080/TCP; done
deny $L2 shop/batch shop/api 8080/TCP
deny $L2 shop/batch shop/api 8080/TCP
# Link-local traffic of node-1's pod x/a, both ways over its veth: UDP
# from its fe80:: address to the host side's (egress, open), and from the
# host side to it (ingress, isolated in x: denied). No address of either
# is in an ipcache entry; only the endpoint tells whose traffic it is.
PROBE=${SEGLAB_SEGPROBE:-$(dirname "$SEGLAB")/../segprobe/segprobe}
ll_addr() { # ll_addr NETNS IFNAME: its fe80:: address, once DAD is done
	ip -n "$1" -6 -j addr show dev "$2" scope link -tentative | jq -r '.[0].addr_info[0].local // empty'
}
LL_POD=$L1-x-a
LL_HIF=$(ip -n $L1-node -j link | jq -r --argjson i "$(ip -n $LL_POD -j link show eth0 |
	jq '.[0].link_index')" '.[] | select(.ifindex == $i) | .ifname')
ll_ready() { [ -n "$(ll_addr $LL_POD eth0)" ] && [ -n "$(ll_addr $L1-node "$LL_HIF")" ]; }
wait_for 10 ll_ready || bad "x/a and its host veth $LL_HIF have link-local addresses"
ip netns exec $LL_POD "$PROBE" connect "$(ll_addr $L1-node "$LL_HIF")%eth0" 44053/udp \
	--timeout 300 -q || true
ip netns exec $L1-node "$PROBE" connect "$(ll_addr $LL_POD eth0)%$LL_HIF" 44054/udp \
	--timeout 300 -q || true
# flows end (idle 2 s) at the next walk; then everything is acked
sleep 4
wait_for 15 spool_empty || bad "spools drained (node-1 $(xstat $L1 spooled), node-2 $(xstat $L2 spooled))"
is "node-1: allowed y/a -> x/b:80" "$(edge y/a x/b 80 allowed)" $N1
is "node-1: no denied y/a -> x/b:80" "$(edge y/a x/b 80 denied)" 0
is "node-1: denied x/a -> x/b:80" "$(edge x/a x/b 80 denied)" 1
is "node-1: nothing allowed x/a -> x/b:80" "$(edge x/a x/b 80 allowed)" 0
is "node-2: allowed shop/web -> shop/api:8080" "$(edge shop/web shop/api 8080 allowed)" $N2
is "node-2: denied shop/batch -> shop/api:8080" "$(edge shop/batch shop/api 8080 denied)" 2
is "node-1: edge bytes = conntrack bytes" "$(edge y/a x/b 80 bytes)" "$(ct_bytes $L1 10.1.0.2 80 10.2.0.1)"
is "node-2: edge bytes = conntrack bytes" "$(edge shop/web shop/api 8080 bytes)" "$(ct_bytes $L2 10.5.0.2 8080 10.5.0.1)"
g=$(curl -sf "$HTTP/api/v1/flows?limit=1000")
is "records name both nodes" "$(jq -r '[.flows[].node] | unique | join(",")' <<<"$g")" "node-1,node-2"
is "labels travel with the workload" \
	"$(curl -sf "$HTTP/api/v1/graph" | jq -r '.nodes[] | select(.id=="shop/web") | .labels.app')" web
is "policy named on the allowed ingress record" \
	"$(jq -r '[.flows[] | select(.kind=="new" and .direction=="ingress" and .dst.workload=="x/b" and .dst.port==80 and .verdict=="allow") | .policy] | unique | join(",")' <<<"$g")" \
	"x/b-from-y"
is "exporter connected (node-1)" "$(xstat $L1 connected)" true
is "node-1 sends columnar batches (the service announced them)" "$(xstat $L1 wire)" columns
is "node-2 sends columnar batches" "$(xstat $L2 wire)" columns
is "nothing dropped (node-1)" "$(xstat $L1 dropped)" 0
is "link-local: x/a -> world 44053/UDP (fe80:: to its host veth) allowed" \
	"$(edge x/a world 44053 allowed)" 1
is "link-local: world -> x/a 44054/UDP (its host veth to its fe80::) denied" \
	"$(edge world x/a 44054 denied)" 1
is "link-local: no world -> world edge (ND, MLD, fe80:: of the pods)" \
	"$(curl -sf "$HTTP/api/v1/graph" | jq -c '[.edges[] | select(.src=="world" and .dst=="world")]')" "[]"
is "link-local: segctl observe --pod x/a (segd) names x/a on its fe80:: records" \
	"$(sc $L1 observe --pod x/a --last 1000 -o json | jq -rs '[.. | objects |
		select((.addr // "") | startswith("fe80:")) | .workload // ""] |
		map(select(. != "")) | unique | join(",")')" x/a

# ---- the service goes away under traffic ----------------------------------------
sent0=$(($(xstat $L1 sent) + $(xstat $L2 sent)))
kill "$topo_pid"
wait "$topo_pid" 2>/dev/null
topo_pid=
echo "# service stopped for ${OUTAGE}s; traffic goes on"
K1=0 K2=0
end=$((SECONDS + OUTAGE))
while [ $SECONDS -lt $end ]; do
	allow $L1 y/a x/b 80/TCP && K1=$((K1 + 1))
	allow $L2 shop/web shop/api 8080/TCP && K2=$((K2 + 1))
	sleep 0.5
done
deny $L1 x/a x/b 80/TCP
sleep 1.5
sp=$(xstat $L1 spooled)
[ "$sp" -gt 0 ] && ok "node-1 spools while the service is down ($sp records)" ||
	bad "node-1 spools while the service is down (spooled $sp)"
is "node-1 reports it disconnected" "$(xstat $L1 connected)" false
[ "$(xstat $L1 last_error)" != null ] && ok "node-1 last_error: $(xstat $L1 last_error)" ||
	bad "node-1 reports a last_error"
topo_start --no-columns
echo "# service restarted without columns: $HTTP"
# backoff doubles from 200 ms up to 30 s (jitter: half to all of it): after
# a 30 s outage the next attempt is at most ~26 s away
wait_for 60 spool_empty || bad "spools delivered after the restart"
sleep 4 # the outage flows' END records
wait_for 15 spool_empty
d1=$(xstat $L1 dropped) d2=$(xstat $L2 dropped)
is "node-1 dropped nothing" "$d1" 0
[ "$d2" -gt 0 ] && ok "node-2's small spool overflowed: $d2 records dropped, counted" ||
	echo "# node-2's spool did not overflow (dropped 0)"
is "every outage connection arrived (node-1)" "$(edge y/a x/b 80 allowed)" $K1
a2=$(edge shop/web shop/api 8080 allowed)
if [ "$d2" = 0 ]; then
	is "every outage connection arrived (node-2)" "$a2" $K2
else
	[ "$a2" -le $K2 ] && ok "node-2: $a2 of $K2 outage connections arrived, the rest counted as dropped" ||
		bad "node-2: $a2 outage connections arrived, more than the $K2 made"
fi
for l in $L1 $L2; do
	j=$(sc $l status -o json | jq -c .exporter)
	is "$l: queued = sent + spooled + dropped" "$(jq -r .queued <<<"$j")" \
		"$(jq -r '.sent + .spooled + .dropped' <<<"$j")"
done
is "the outage deny arrived" "$(edge x/a x/b 80 denied)" 1
is "node-1 sent the spooled columnar batches as Flow messages" "$(xstat $L1 wire)" flows
sent1=$(($(xstat $L1 sent) + $(xstat $L2 sent)))
st=$(curl -sf "$HTTP/api/v1/graph" | jq -c .stats)
is "service records = records the exporters sent since the restart" \
	"$(jq -r .records <<<"$st")" $((sent1 - sent0))
told() { [ "$(curl -sf "$HTTP/api/v1/graph" | jq -r .stats.dropped_by_senders)" = $((d1 + d2)) ]; }
wait_for 5 told
is "the service was told exactly what the nodes dropped" \
	"$(curl -sf "$HTTP/api/v1/graph" | jq -r .stats.dropped_by_senders)" $((d1 + d2))
m=$(ip netns exec $L1-node curl -sf http://127.0.0.1:9464/metrics)
# the /metrics text is a snapshot refreshed once a second: sent can trail status
ms=$(awk '$1=="seg_export_records_total{outcome=\"sent\"}"{print $2}' <<<"$m")
[ "${ms:-0}" -gt 0 ] && [ "$ms" -le "$(xstat $L1 sent)" ] && ok "/metrics: records sent ($ms)" ||
	bad "/metrics: records sent: '$ms'"
is "/metrics: dropped (queue full)" \
	"$(awk '$1=="seg_export_records_total{outcome=\"dropped_queue_full\"}"{print $2}' <<<"$m")" 0
is "/metrics: connected" "$(awk '$1=="seg_export_connected"{print $2}' <<<"$m")" 1

# ---- segctl observe --follow from segd ----------------------------------------------
sc $L2 observe --follow -o json >"$dir/follow.json" 2>"$dir/follow.err" &
follow_pid=$!
sleep 0.5
allow $L2 shop/web shop/api 8080/TCP
t0=$(date +%s%N)
seen=
while [ $(($(date +%s%N) - t0)) -lt 1000000000 ]; do
	if jq -se '[.. | objects | select(.kind=="new" and .src.workload=="shop/web")] | length > 0' \
		"$dir/follow.json" >/dev/null 2>&1; then
		seen=$(($(date +%s%N) - t0))
		break
	fi
	sleep 0.05
done
[ -n "$seen" ] && ok "observe --follow printed the new connection $((seen / 1000000)) ms after it was made" ||
	{ bad "observe --follow printed the new connection within a second"; cat "$dir/follow.json" "$dir/follow.err" | tail -5; }
kill "$follow_pid" 2>/dev/null
follow_pid=

# ---- a service whose certificate another CA signed ------------------------------------
# node-2 again, now trusting only its own CA; the service's certificate
# (for localhost: gRPC checks that name over unix:) is self-signed.
mkdir -p "$dir/tls"
(
	cd "$dir/tls" || exit 1
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=sf-other-ca \
		-keyout ca.key -out ca.pem &&
		openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
			-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout srv.key -out srv.pem
) >"$dir/tls/openssl.log" 2>&1 || { bad "openssl: $(tail -3 "$dir/tls/openssl.log")"; }
"$TOPO" --grpc "unix:$dir/tls.sock" --http 127.0.0.1:0 --ports-file "$dir/tls.ports" \
	--tls-cert "$dir/tls/srv.pem" --tls-key "$dir/tls/srv.key" >>"$dir/topo-tls.log" 2>&1 &
tls_pid=$!
for _ in $(seq 50); do [ -s "$dir/tls.ports" ] && break; sleep 0.1; done
TLS_HTTP=http://127.0.0.1:$(awk '$1=="http"{print $2}' "$dir/tls.ports")
"$SEGLAB" down --name $L2 >/dev/null 2>&1
EXPORT=unix:$dir/tls.sock
up $L2 node-2-tls "$HERE/model-b.yaml" "$HERE/policy-b.yaml" "--export-tls-ca $dir/tls/ca.pem"
allow $L2 shop/web shop/api 8080/TCP
tls_err() { xstat $L2 last_error | grep -qi 'certificate verify failed'; }
wait_for 15 tls_err
e=$(xstat $L2 last_error)
echo "# node-2 last_error: $e"
grep -qi 'certificate verify failed' <<<"$e" && ok "wrong CA: last_error names the certificate failure" ||
	bad "wrong CA: last_error names the certificate failure: '$e'"
grep -qi 'handshake' <<<"$e" && ok "  ... and the TLS handshake" || bad "  ... and the TLS handshake: '$e'"
m=$(ip netns exec $L2-node curl -sf http://127.0.0.1:9464/metrics)
is "wrong CA: not connected, nothing sent, streams 0" \
	"$(sc $L2 status -o json | jq -c '.exporter | [.connected, .sent, .streams]')" '[false,0,0]'
is "  ... /metrics: connected 0" "$(awk '$1=="seg_export_connected"{print $2}' <<<"$m")" 0
is "  ... the service holds no flow" "$(curl -sf "$TLS_HTTP/api/v1/graph" | jq '.edges | length')" 0

if [ "$fails" = 0 ]; then echo "# all passed"; else echo "# $fails failed"; fi
[ "$fails" = 0 ]
