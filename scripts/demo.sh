#!/usr/bin/env bash
# seg demo: a lab node with real pods, the example policies, allowed,
# denied and audited traffic, and the service map of it in the browser.
#
#   scripts/demo.sh [BUILD_DIR] [--network MODE] [--http ADDR] [--name LAB] [--once]
#   scripts/demo.sh [BUILD_DIR] --stop [--name LAB]
#
#   --network MODE  calico (default), flannel, ovs or macvlan: how the pods are wired
#   --http ADDR     where the service map listens (default 127.0.0.1:4246; :0 = any free port)
#   --name LAB      lab name (default segdemo): node netns LAB-node, pods LAB-NS-POD
#   --once          one round of traffic, print what was seen, tear everything down
#   --stop          remove a running demo (lab, segd, seg-topology, traffic)
#
# What runs: `seglab up` (tools/seglab) makes the node netns and the pods of
# policies/demo/model.yaml with the real CNI plugins and seg-cni; the lab's
# segd enforces and exports flow records (--export) to seg-topology, which
# draws the service map (http://ADDR/). policies/allow-from-monitoring-8080.yaml,
# policies/allow-port-range.yaml and policies/demo/legacy-deny-all.yaml are
# applied with segctl; seglab probes make the traffic, and a background loop
# repeats it every 10 s so the map stays alive. Needs root. Builds nothing:
# run `ninja -C BUILD_DIR` (or ./setup.sh demo) first.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
BUILD=$top/build
NETWORK=calico HTTP=127.0.0.1:4246 LAB=segdemo ONCE=false STOP=false LOOP=false

if [ -t 1 ]; then
	B=$'\033[1m' D=$'\033[2m' G=$'\033[32m' R=$'\033[31m' Y=$'\033[33m' N=$'\033[0m'
else
	B='' D='' G='' R='' Y='' N=''
fi
step() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
say() { printf '   %s\n' "$*"; }
die() { printf 'demo.sh: error: %s\n' "$*" >&2; exit 1; }
usage() {
	sed -n '5,6p' "$0" | sed 's/^# \{0,1\}/usage: /'
	exit 2
}

[ $# -gt 0 ] && [ -d "$1" ] && { BUILD=$(cd "$1" && pwd); shift; }
while [ $# -gt 0 ]; do
	case $1 in
	--network) NETWORK=${2:?--network needs a value}; shift ;;
	--http) HTTP=${2:?--http needs a value}; shift ;;
	--name) LAB=${2:?--name needs a value}; shift ;;
	--once) ONCE=true ;;
	--stop) STOP=true ;;
	--traffic-loop) LOOP=true ;; # internal: the background traffic
	--keep) ;; # the old demo's flag: the demo now stays up by default
	-h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) usage ;;
	esac
	shift
done
case $NETWORK in calico | flannel | ovs | macvlan) ;; *) die "--network: calico, flannel, ovs or macvlan, not '$NETWORK'" ;; esac
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, BPF)"

SEGLAB=$BUILD/tools/seglab/seglab
SEGCTL_BIN=$BUILD/tools/segctl/segctl
TOPO=$BUILD/tools/topology/seg-topology
STATE=/run/seg-demo/$LAB # pids, the service's socket and log
export SEGLAB_STATE_DIR=${SEGLAB_STATE_DIR:-/tmp}
export SEG_SOCKET=/run/seg/$LAB/segd.sock

# Shows a command as a user would type it, then runs it.
segctl() {
	printf '   %s$ segctl %s%s\n' "$D" "$*" "$N"
	"$SEGCTL_BIN" "$@" | sed 's/^/   /'
	return "${PIPESTATUS[0]}"
}

stop_demo() {
	local pid f
	for f in traffic.pid topology.pid; do
		[ -f "$STATE/$f" ] || continue
		pid=$(cat "$STATE/$f")
		kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
	done
	[ -x "$SEGLAB" ] && "$SEGLAB" down --name "$LAB" >/dev/null 2>&1 || true
	rm -rf "$STATE"
}

# One round: FROM TO PORT/PROTO EXPECT
ROUND=(
	"monitoring/prometheus default/web 8080/TCP allow"
	"default/frontend default/web 80/TCP allow"
	"default/batch default/web 8080/TCP deny"
	"default/frontend default/web 8080/TCP deny"
	"default/batch default/media 10000/UDP allow"
	"default/web kube-system/coredns 53/UDP allow"
	"monitoring/prometheus default/frontend 80/TCP allow"
	"default/frontend legacy/app 80/TCP audit"
)
round() { # round [quiet]
	local l from to pp want out
	for l in "${ROUND[@]}"; do
		read -r from to pp want <<<"$l"
		if [ "$want" = deny ]; then
			out=$("$SEGLAB" probe --name "$LAB" "$from" "$to" "$pp" --timeout 500 --retries 0 2>&1) || true
		else
			out=$("$SEGLAB" probe --name "$LAB" "$from" "$to" "$pp" 2>&1) || true
		fi
		[ -n "${1:-}" ] && continue
		case $out in
		*connected*) printf '   %sCONNECTED%s %s%s\n' "$G" "$N" "$out" "$([ "$want" = audit ] && printf '  %s(audit: would be denied)%s' "$Y" "$N")" ;;
		*) printf '   %sBLOCKED%s   %s\n' "$R" "$N" "$out" ;;
		esac
	done
}

if $LOOP; then
	while sleep 10; do round quiet; done
fi
if $STOP; then
	stop_demo
	echo "demo $LAB stopped: lab, segd, seg-topology and traffic are gone"
	exit 0
fi
for t in "$SEGLAB" "$SEGCTL_BIN" "$TOPO"; do
	[ -x "$t" ] || die "$t is missing: build first (ninja -C $BUILD, or ./setup.sh demo)"
done
command -v jq >/dev/null || die "jq is missing (./setup.sh deps)"

stop_demo # a previous run's leftovers
mkdir -p "$STATE"
trap 'echo "demo.sh: failed; cleaning up" >&2; stop_demo' ERR

step "The topology service (seg-topology): collects flow records, draws the service map"
# gRPC on a unix socket: segd runs inside the lab's node netns, where
# 127.0.0.1 is not this host's loopback; a path is the same everywhere.
setsid "$TOPO" --grpc "unix:$STATE/topology.sock" --http "$HTTP" --ports-file "$STATE/ports" \
	</dev/null >"$STATE/topology.log" 2>&1 &
echo $! >"$STATE/topology.pid"
for _ in $(seq 50); do [ -s "$STATE/ports" ] && break; sleep 0.1; done
[ -s "$STATE/ports" ] || { cat "$STATE/topology.log" >&2; die "seg-topology did not start (is $HTTP free? --http 127.0.0.1:0 picks a free port)"; }
URL=http://${HTTP%:*}:$(awk '$1=="http"{print $2}' "$STATE/ports")/
say "gRPC unix:$STATE/topology.sock, web page $URL"

step "A node with pods (seglab, --network $NETWORK): policies/demo/model.yaml"
SEGLAB_SEGD_ARGS="--export unix:$STATE/topology.sock --node-name $LAB --ct-walk 2 --flow-idle 10" \
	"$SEGLAB" up --name "$LAB" -f "$top/policies/demo/model.yaml" --network "$NETWORK" 2>&1 |
	grep -v '^export ' | sed 's/^/   /'
[ "${PIPESTATUS[0]}" = 0 ] || die "seglab up failed"

step "Example policies, applied to segd"
segctl apply -f "$top/policies/allow-from-monitoring-8080.yaml" -f "$top/policies/allow-port-range.yaml" \
	-f "$top/policies/demo/legacy-deny-all.yaml" >/dev/null
say "default/allow-from-monitoring: web takes 8080/TCP from namespaces purpose=monitoring, http (80) from role=frontend"
say "default/allow-rtp: media takes UDP 10000-20000 from anyone"
say "legacy/deny-all: legacy is isolated, in audit mode (seg.io/enforcement: audit)"
segctl policy list

step "Traffic: real connections between the pods (seglab probe)"
round
sleep 3 # conntrack walk + a batch to the service

step "What segd saw (segctl observe: the flow records it exports)"
segctl observe --last 12
step "The service map's edges (segctl topology --server unix:$STATE/topology.sock)"
segctl topology --server "unix:$STATE/topology.sock"
step "Exporter status (segctl status)"
"$SEGCTL_BIN" status -o json | jq -c '.exporter | {node, target, connected, sent, spooled, dropped, last_error}' | sed 's/^/   /'

if $ONCE; then
	trap - ERR
	stop_demo
	step "Done (--once): everything removed"
	exit 0
fi

# More traffic every 10 s, so the map's 5-minute window stays alive.
setsid "$0" "$BUILD" --name "$LAB" --traffic-loop </dev/null >/dev/null 2>&1 &
echo $! >"$STATE/traffic.pid"
trap - ERR

step "The service map"
say "${B}$URL${N}   (graph coloured by verdict, flow table, filters; refreshes every 5 s)"
say "JSON: ${URL}api/v1/graph  ${URL}api/v1/flows   DOT: ${URL}graph.dot"
say "from a shell: export SEG_SOCKET=$SEG_SOCKET; segctl observe --follow"
say "traffic repeats every 10 s; more: $SEGLAB probe --name $LAB default/batch default/web 80/TCP"
say ""
say "stop it all:  ./setup.sh demo --stop   (or scripts/demo.sh --stop$([ "$LAB" != segdemo ] && printf ' --name %s' "$LAB"))"
