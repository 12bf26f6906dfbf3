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
ART=${ART_DIR:-$(cd "$(dirname "$T_EXPORT")/../.." && pwd)/tests/artifacts}
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
curl -sf "$HTTP/metrics" >"$dir/metrics.txt"
grep -qx 'seg_topology_rejected_messages_total 2' "$dir/metrics.txt" &&
	grep -qx 'seg_topology_duplicate_batches_total [0-9]*' "$dir/metrics.txt" && ok "/metrics" ||
	bad "/metrics: $(head -5 "$dir/metrics.txt")"
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
jq_is "graph: rejected messages counted (junk bytes, columns that do not fit)" "$dir/graph.json" '.stats.rejected_messages' 2
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
grep -q '"shop/frontend" -> "pay/db" \[color="#d62828".*class="verdict-deny"' "$dir/graph.dot" &&
	ok "DOT: denied edge red" || bad "DOT: denied edge red"
dot -Tsvg "$dir/graph.dot" -o /dev/null 2>"$dir/dot.err" && ok "DOT parses with dot(1)" ||
	bad "DOT parses with dot(1): $(cat "$dir/dot.err")"

# ---- segctl -------------------------------------------------------------------------
"$SEGCTL" -o json topology --server "$GRPC" >"$dir/st.json" || bad "segctl topology -o json"
jq_is "segctl topology -o json: denied edge" "$dir/st.json" \
	'.[] | select(.src=="shop/frontend" and .dst=="pay/db") | [.denied,.allowed,.port] | @csv' '40,0,5432'
jq_is "segctl topology -o json: edges" "$dir/st.json" 'length' 7
"$SEGCTL" topology --server "$GRPC" >"$dir/st.txt" || bad "segctl topology (table)"
grep -Eq '^shop/frontend +pay/db +5432 +TCP +0 +40 +0 ' "$dir/st.txt" && ok "segctl topology table row" ||
	bad "segctl topology table row: $(cat "$dir/st.txt")"
"$SEGCTL" topology --server "$GRPC" --dot | dot -Tsvg -o /dev/null && ok "segctl topology --dot parses" ||
	bad "segctl topology --dot parses"
"$SEGCTL" -o json observe --server "$GRPC" --verdict deny --namespace pay --since 5m >"$dir/obs.json" ||
	bad "segctl observe --server"
jq_is "segctl observe: deny flows of pay, counts" "$dir/obs.json" \
	'[length, ([.[] | select(.verdict=="deny" and ((.src.workload|startswith("pay/")) or (.dst.workload|startswith("pay/"))))] | length)] | @csv' \
	'80,80'
"$SEGCTL" -o json observe --server "$GRPC" --pod pay/db --last 3 >"$dir/obs2.json"
jq_is "segctl observe --pod --last 3" "$dir/obs2.json" '[length, ([.[] | select(.dst.workload=="pay/db")] | length)] | @csv' '3,3'
"$SEGCTL" observe --server "$GRPC" --pod nopod >/dev/null 2>&1
[ $? = 2 ] && ok "segctl observe --pod without / is a usage error" || bad "segctl observe --pod usage"
"$SEGCTL" observe --server 127.0.0.1:1 >/dev/null 2>"$dir/err.txt"
[ $? = 1 ] && grep -q "127.0.0.1:1" "$dir/err.txt" && ok "segctl observe: unreachable service fails" ||
	bad "segctl observe: unreachable service fails"

# observe --follow prints a new connection within a second
"$SEGCTL" -o json observe --server "$GRPC" --follow --namespace follow >"$dir/follow.out" 2>&1 &
fpid=$!
sleep 0.5
t0=$(date +%s%N)
TOPO_GRPC=$GRPC "$T_EXPORT" send follow node-f || bad "t_export send"
seen=
while [ $(($(date +%s%N) - t0)) -lt 1000000000 ]; do
	grep -q '"follow/b"' "$dir/follow.out" && { seen=1; break; }
	sleep 0.02
done
kill "$fpid" 2>/dev/null; wait "$fpid" 2>/dev/null
[ -n "$seen" ] && ok "observe --follow printed the new flow within 1 s ($((($(date +%s%N) - t0) / 1000000)) ms)" ||
	bad "observe --follow within 1 s: $(cat "$dir/follow.out")"

# ---- the page in headless Chromium ---------------------------------------------------
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
	bad "chromium not installed (apt-get install chromium)"
else
	chr() { # chr ARGS... URL: headless, no network beyond the URL, own profile
		timeout 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
			--disable-background-networking --disable-component-update --disable-sync \
			--user-data-dir="$dir/chrome" "$@" 2>>"$dir/chrome.log"
	}
	chr --dump-dom "$HTTP/" >"$dir/dom.html"
	n_nodes=$(grep -c 'class="node workload' "$dir/dom.html")
	n_edges=$(grep -c 'class="edge verdict-' "$dir/dom.html")
	# 6 workloads + world from t_export, 2 from the --follow check
	[ "$n_nodes" = 9 ] && ok "page: 9 workload nodes in the DOM" || bad "page: nodes $n_nodes, want 9"
	[ "$n_edges" = 8 ] && ok "page: 8 edges in the DOM" || bad "page: edges $n_edges, want 8"
	grep -q 'id="wl-shop-frontend" class="node workload"' "$dir/dom.html" && ok "page: node shop/frontend" ||
		bad "page: node shop/frontend"
	grep -A4 'id="e-shop/frontend-pay/db-5432-deny" class="edge verdict-deny"' "$dir/dom.html" |
		grep -q 'stroke="#d62828"' && ok "page: denied edge drawn red with class verdict-deny" ||
		bad "page: denied edge drawn as denied"
	grep -A4 'id="e-shop/frontend-shop/cart-8080-allow" class="edge verdict-allow"' "$dir/dom.html" |
		grep -q 'stroke="#2e9e44"' && ok "page: allowed edge green" || bad "page: allowed edge green"
	# filters: namespace (what the form submits) and verdict
	chr --dump-dom "$HTTP/?namespace=resume&window=5m" >"$dir/dom2.html"
	grep -q 'id="wl-resume-x"' "$dir/dom2.html" && ! grep -q 'id="wl-shop-frontend"' "$dir/dom2.html" &&
		ok "page filter namespace=resume: only resume nodes" || bad "page filter namespace"
	rows=$(grep -c '<tr class="flow' "$dir/dom2.html")
	other=$(grep '<tr class="flow' "$dir/dom2.html" | grep -vc 'resume/')
	[ "$rows" -gt 0 ] && [ "$other" = 0 ] && ok "page filter: $rows flow rows, all of resume" ||
		bad "page filter rows: $rows rows, $other not resume"
	grep -q '<option value="5m" selected' "$dir/dom2.html" && ok "page filter: window kept in the form" ||
		bad "page filter: window kept"
	chr --dump-dom "$HTTP/?verdict=deny" >"$dir/dom3.html"
	[ "$(grep -c 'class="edge verdict-' "$dir/dom3.html")" = 2 ] &&
		[ "$(grep -c 'class="edge verdict-deny' "$dir/dom3.html")" = 2 ] &&
		ok "page filter verdict=deny: the 2 denied edges only" || bad "page filter verdict=deny"
	rows=$(grep -c '<tr class="flow' "$dir/dom3.html")
	[ "$rows" = 80 ] && [ "$(grep -c '<tr class="flow verdict-deny">' "$dir/dom3.html")" = 80 ] &&
		ok "page filter verdict=deny: 80 denied flow rows" || bad "page filter verdict=deny rows: $rows"
	# auto-refresh: after 6 s (virtual time) the page has fetched its fragment
	# again and replaced graph and table, keeping the filter
	chr --virtual-time-budget=6000 --dump-dom "$HTTP/?namespace=resume" >"$dir/dom4.html"
	grep -q '<body data-refreshed="[1-9]' "$dir/dom4.html" && grep -q 'id="wl-resume-x"' "$dir/dom4.html" &&
		! grep -q 'id="wl-shop-frontend"' "$dir/dom4.html" &&
		ok "page auto-refresh replaced the content, filter kept" || bad "page auto-refresh"
	mkdir -p "$ART"
	rm -f "$ART/topology-page.png"
	chr --screenshot="$ART/topology-page.png" --window-size=1280,900 "$HTTP/" >/dev/null
	size=$(stat -c %s "$ART/topology-page.png" 2>/dev/null || echo 0)
	[ "$size" -gt 20000 ] && ok "page screenshot: $ART/topology-page.png ($size bytes)" ||
		bad "page screenshot ($size bytes)"
fi
curl -sf "$HTTP/?fragment=1" | grep -q '^<div id="graph">' && ok "auto-refresh fragment" || bad "auto-refresh fragment"

# ---- bounded memory: eviction counted ---------------------------------------------------
start_service() { # start_service NAME ARGS...: sets SVC_PID SVC_GRPC SVC_HTTP
	local name=$1
	shift
	"$TOPO" --grpc 127.0.0.1:0 --http 127.0.0.1:0 --ports-file "$dir/$name.ports" "$@" 2>"$dir/$name.log" &
	SVC_PID=$!
	for _ in $(seq 50); do [ -s "$dir/$name.ports" ] && break; sleep 0.1; done
	SVC_GRPC=127.0.0.1:$(awk '$1=="grpc"{print $2}' "$dir/$name.ports")
	SVC_HTTP=http://127.0.0.1:$(awk '$1=="http"{print $2}' "$dir/$name.ports")
}
# (this one also stands for a service older than columnar batches)
start_service small --max-edges 16 --max-flows 32 --no-columns
small_pid=$SVC_PID
is_wire() { # is_wire GRPC WANT
	local got
	got=$(TOPO_GRPC=$1 "$T_EXPORT" wire 2>&1)
	if [ "$got" = "$2" ]; then ok "Export stream to $1 carries $2"; else bad "wire to $1: got '$got', want '$2'"; fi
}
is_wire "$GRPC" columns
is_wire "$SVC_GRPC" flows
TOPO_GRPC=$SVC_GRPC "$T_EXPORT" spread evict 50 || bad "t_export spread"
curl -sf "$SVC_HTTP/api/v1/graph" >"$dir/small.json"
jq_is "--max-edges 16: 16 edges held, 34 evicted" "$dir/small.json" '[(.edges|length), .stats.evicted_edges, .complete] | @csv' '16,34,false'
jq_is "--max-edges 16: the most recent edges kept" "$dir/small.json" '[.edges[].port] | min' 35
jq_is "--max-flows 32: 18 records evicted" "$dir/small.json" '[.stats.flows, .stats.evicted_flows] | @csv' '32,18'
curl -sf "$SVC_HTTP/api/v1/graph?window=1h" >"$dir/small-w.json"
# the window is built from the 32 held records: 32 edges, and it says it is partial
jq_is "window over an evicted ring is not complete" "$dir/small-w.json" '[(.edges|length), .complete] | @csv' '32,false'
kill "$small_pid"; wait "$small_pid" || bad "small service exit status $?"

# ---- TLS: server certificate, client certificates required -------------------------------
if command -v openssl >/dev/null; then
	(
		cd "$dir" || exit 1
		openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=seg-test-ca -keyout ca.key -out ca.pem
		openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout srv.key -out srv.csr
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >srv.ext
		openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile srv.ext -out srv.pem
		openssl req -newkey rsa:2048 -nodes -subj /CN=node-t -keyout cli.key -out cli.csr
		openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -out cli.pem
	) >"$dir/openssl.log" 2>&1 || bad "openssl: $(tail -3 "$dir/openssl.log")"
	start_service tls --tls-cert "$dir/srv.pem" --tls-key "$dir/srv.key" --tls-client-ca "$dir/ca.pem"
	tls_pid=$SVC_PID
	TOPO_GRPC=$SVC_GRPC TOPO_TLS_CA=$dir/ca.pem TOPO_TLS_CERT=$dir/cli.pem TOPO_TLS_KEY=$dir/cli.key \
		"$T_EXPORT" send tls node-t 2>"$dir/tls1.err" && ok "TLS export with a client certificate" ||
		bad "TLS export with a client certificate: $(cat "$dir/tls1.err")"
	TOPO_GRPC=$SVC_GRPC TOPO_TLS_CA=$dir/ca.pem "$T_EXPORT" send tls node-t 2>/dev/null &&
		bad "TLS export without a client certificate is refused" ||
		ok "TLS export without a client certificate is refused"
	TOPO_GRPC=$SVC_GRPC "$T_EXPORT" send tls node-t 2>/dev/null &&
		bad "plaintext export to the TLS service is refused" ||
		ok "plaintext export to the TLS service is refused"
	"$SEGCTL" -o json topology --server "$SVC_GRPC" --tls-ca "$dir/ca.pem" --tls-cert "$dir/cli.pem" \
		--tls-key "$dir/cli.key" >"$dir/tls.json" 2>"$dir/tls2.err"
	jq_is "segctl topology over TLS: the one edge" "$dir/tls.json" '[length, .[0].src, .[0].allowed] | @csv' '1,"tls/a",1'
	kill "$tls_pid"; wait "$tls_pid" || bad "TLS service exit status $?"
else
	bad "openssl missing: TLS not tested"
fi

# ---- the services stop cleanly (SIGTERM: exit 0; sanitizers: nothing reported) ------
kill "$pid"
wait "$pid"
rc=$?
pid=
[ "$rc" = 0 ] && ok "service exits 0 on SIGTERM" || bad "service exit status $rc"
if grep -hE 'ERROR: (Address|Leak)Sanitizer|runtime error' "$dir"/*.log >/dev/null 2>&1; then
	bad "sanitizer reports in the service logs:"
	grep -hE -A20 'ERROR: (Address|Leak)Sanitizer|runtime error' "$dir"/*.log | head -60
else
	ok "no sanitizer reports in the service logs"
fi

echo "# failures: $fails"
[ "$fails" = 0 ]
