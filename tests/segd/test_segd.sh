#!/usr/bin/env bash
# segd end to end: a node netns with Calico-style pods (scripts/e2e-lib.sh),
# segd running in it (--node-netns) with its own pin dir and socket, a
# manifests directory, and real connections (segprobe):
#   - manifests -> pods attached, policy enforced; status/endpoint/identity/
#     policy list in -o json checked with jq
#   - a policy applied over the socket is enforced when `segctl apply` returns
#   - a bad manifest (socket or directory) is refused with file:line, the
#     old policy stays enforced, status shows the error
#   - a manifests-dir change is picked up by inotify
#   - kill -9: traffic still enforced; restart: nothing rewritten, still enforced
#   - CNI ADD through seg-cni registers a pod without a manifest; DEL removes
#     its endpoint (the interface stays attached: it then drops)
#   - a non-root client is refused; /metrics and /healthz answer; SIGTERM
#     leaves the pins in place
#
#   test_segd.sh SEGD SEGCTL SEGPROBE SEG_CNI
#
# One line per check (ok/FAIL), then "N passed, N failed". Exit 0 all passed,
# 1 any failed, 77 not root. Names: netns hs-<rand>-*, pin dir
# /sys/fs/bpf/hs-<rand>, socket /run/seg/hs-<rand>/segd.sock; all removed on exit.
# shellcheck disable=SC2154
set -euo pipefail

SEGD=${1:-${SEGD:-}}
SEGCTL=${2:-${SEGCTL:-}}
SEGPROBE=${3:-${SEGPROBE:-}}
SEG_CNI=${4:-${SEG_CNI:-}}
here=$(cd "$(dirname "$0")" && pwd)

# shellcheck source=scripts/e2e-lib.sh
source "$here/../../scripts/e2e-lib.sh"
e2e_require "network namespaces, BPF, the control socket" "SEGD SEGCTL SEGPROBE SEG_CNI" \
	SEGD SEGCTL SEGPROBE SEG_CNI
e2e_node_env hs
rand=$E2E_RAND
METRICS_PORT=$((20000 + 0x${rand:0:3} % 20000))
TO_ALLOW=3000
TO_DENY=500
segd_pid=

cleanup() {
	local rc=$?
	set +e
	e2e_stopped_early "$rc"
	[ -n "$segd_pid" ] && kill -9 "$segd_pid" 2>/dev/null && wait "$segd_pid" 2>/dev/null
	e2e_node_down
}
trap cleanup EXIT

ctl() { "$SEGCTL" --socket "$SOCK" "$@"; }
probe() { # probe FROM ADDR PORT -> ok / timeout / refused ...
	local to=$TO_ALLOW
	[ "${4:-}" = deny ] && to=$TO_DENY
	e2e_result "$(e2e_probe "$1" "$2" "$3/tcp" --timeout "$to" || true)"
}
connects() { [ "$(probe "$1" "$2" "$3")" = ok ]; }
blocked() { [ "$(probe "$1" "$2" "$3" deny)" = timeout ]; }

start_segd() {
	"$SEGD" --node-netns "/run/netns/$NODE" --pin-dir "$PIN" --socket "$SOCK" \
		--manifests "$MDIR" --debounce 20 --metrics "127.0.0.1:$METRICS_PORT" -v \
		>>"$E2E_LOGDIR/segd.log" 2>&1 &
	segd_pid=$!
	e2e_segd_wait "$segd_pid" 100
}

st() { ctl -o json status | jq -r "$1"; }

# The state file (next to the socket) names one item file per applied
# object: state_items_are N checks that it names N and the item directory
# holds exactly those.
STATE="$(dirname "$SOCK")/segd-state.json"
state_items_are() {
	local named held
	named=$(jq -r '[.applied[].item | "applied-\(.)"] | sort | join(" ")' "$STATE") || return 1
	held=$(ls "$STATE.d" | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')
	[ "$named" = "$held" ] && [ "$(jq '.applied | length' "$STATE")" = "$1" ] ||
		{ echo "state index names [$named], $STATE.d holds [$held]" >&2; return 1; }
}

pod_yaml() { # pod_yaml NAME N LABEL
	cat <<-EOF
	---
	apiVersion: v1
	kind: Pod
	metadata: {name: $1, namespace: default, labels: {app: $3}}
	spec: {containers: [{name: c, ports: [{containerPort: 80}, {containerPort: 81}]}]}
	status: {podIP: 10.77.0.$2, podIPs: [{ip: 10.77.0.$2}, {ip: "fd77::$2"}]}
	EOF
}

np_yaml() { # np_yaml NAME SELECTOR-APP PORTS...: ingress from app=a on PORTS
	local name=$1 app=$2 p
	shift 2
	cat <<-EOF
	apiVersion: networking.k8s.io/v1
	kind: NetworkPolicy
	metadata: {name: $name, namespace: default}
	spec:
	  podSelector: {matchLabels: {app: $app}}
	  policyTypes: [Ingress]
	  ingress:
	  - from: [{podSelector: {matchLabels: {app: a}}}]
	    ports:
	EOF
	for p in "$@"; do echo "    - {port: $p, protocol: TCP}"; done
}

# ---- the node -------------------------------------------------------------------
e2e_up
e2e_pod_add a 2
e2e_pod_add b 3
mkdir -p "$MDIR"
{
	printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {env: hs}}\n'
	pod_yaml a 2 a
	pod_yaml b 3 b
} >"$MDIR/pods.yaml"
np_yaml b-from-a b 80 >"$MDIR/np.yaml"
e2e_serve a --tcp 80 --tcp 81
e2e_serve b --tcp 80 --tcp 81
start_segd

# ---- manifests -> enforcement ---------------------------------------------------------
e2e_check "a -> b:80 allowed by b-from-a" connects a 10.77.0.3 80
e2e_check "a -> b:81 dropped (b isolated)" blocked a 10.77.0.3 81
e2e_check "b -> a:80 allowed (a not isolated)" connects b 10.77.0.2 80
e2e_check "status: 2 pods, 2 attached, 1 policy, no error" \
	test "$(st '[.counts.pods, .counts.endpoints_attached, .counts.policies, .last_error] | tostring')" = '[2,2,1,null]'
e2e_check "endpoint list: b isolated on ingress, a not, both in the maps" \
	test "$(ctl -o json endpoint list | jq -c '[.[] | [.pod, .ingress.isolated, .in_maps]] | sort')" = \
	'[["default/a",false,true],["default/b",true,true]]'
e2e_check "identity list: a and b have their own identities" \
	test "$(ctl -o json identity list | jq '[.[] | select(.labels.app == "a" or .labels.app == "b")] | length')" = 2
idb=$(ctl -o json endpoint get default/b | jq .identity)
e2e_check "identity get: the identity of b has app=b, in namespace default" \
	test "$(ctl -o json identity get "$idb" | jq -r '"\(.labels.app) \(.namespace)"')" = "b default"
e2e_check "status: the Namespace is counted" test "$(st .counts.namespaces)" = 1
e2e_check "policy list: b-from-a selects 1 endpoint, from its file" \
	test "$(ctl -o json policy list | jq -r '.[] | select(.name == "b-from-a") | "\(.endpoints) \(.source)"')" = "1 $MDIR/np.yaml:1"
pt=$(ctl -o json policy test --probe 'default/a->default/b:80/TCP' --probe 'default/a->default/b:81')
e2e_check "policy test (segd's live state): a->b:80 allow, a->b:81 deny" \
	test "$(jq -c '[.[].verdict]' <<<"$pt")" = '["allow","deny"]'
e2e_check "policy test --matrix from segd equals the offline one from the same manifests" \
	test "$(ctl -o json policy test --matrix 80/TCP | jq -c '[.[] | [.from, .to, .verdict]] | sort')" = \
	"$("$SEGCTL" -o json policy test -f "$MDIR" --matrix 80/TCP | jq -c '[.[] | [.from, .to, .verdict]] | sort')"
e2e_check "table output has a header" bash -c "'$SEGCTL' --socket '$SOCK' endpoint list | head -1 | grep -q '^POD '"

# ---- apply over the socket ------------------------------------------------------------------
np_yaml a-from-a a 81 >"$E2E_LOGDIR/np-a.yaml"
t0=$(date +%s%N)
ctl apply -f "$E2E_LOGDIR/np-a.yaml" >/dev/null
t1=$(date +%s%N)
e2e_check "b -> a:80 dropped right after apply returned ($(((t1 - t0) / 1000000)) ms)" blocked b 10.77.0.2 80
e2e_check "apply took under 1 s" test $(((t1 - t0) / 1000000)) -lt 1000
e2e_check "status: 2 policies, 1 applied object" \
	test "$(st '[.counts.policies, .counts.applied_objects] | tostring')" = '[2,1]'
e2e_check "state: its text in one item file" state_items_are 1
item0=$(jq '.applied[0].item' "$STATE")
np_yaml a-from-a a 82 >"$E2E_LOGDIR/np-a.yaml"
ctl apply -f "$E2E_LOGDIR/np-a.yaml" >/dev/null
e2e_check "state: applied again, changed: a new item file, the old one removed" \
	bash -c "$(declare -f state_items_are); $(declare -p STATE); state_items_are 1 && \
		test \"\$(jq '.applied[0].item' '$STATE')\" != '$item0'"
ctl delete -f "$E2E_LOGDIR/np-a.yaml" >/dev/null
e2e_check "b -> a:80 allowed again after delete" connects b 10.77.0.2 80

# ---- bad manifests ---------------------------------------------------------------------------
printf 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: bad, namespace: default}\nspec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: 99999}]\n' >"$E2E_LOGDIR/bad.yaml"
out=$(ctl -o json apply -f "$E2E_LOGDIR/bad.yaml" || true)
e2e_check "bad manifest over the socket: refused with file:line:col" \
	grep -q "bad.yaml:7:20:" <<<"$(jq -r .error <<<"$out")"
e2e_check "  ... and the old policy is still enforced (a -> b:81 dropped)" blocked a 10.77.0.3 81
e2e_check "  ... a -> b:80 still allowed" connects a 10.77.0.3 80
e2e_check "  ... and nothing of it was kept (1 policy)" test "$(st .counts.policies)" = 1
mkdir "$E2E_LOGDIR/batch"
cp "$E2E_LOGDIR/np-a.yaml" "$E2E_LOGDIR/bad.yaml" "$E2E_LOGDIR/batch/"
e2e_check "apply -f DIR with one bad file: all refused (the good one not applied)" \
	bash -c "! '$SEGCTL' --socket '$SOCK' apply -f '$E2E_LOGDIR/batch' 2>/dev/null && \
		test \"\$('$SEGCTL' --socket '$SOCK' -o json status | jq .counts.policies)\" = 1"
rm "$E2E_LOGDIR/batch/bad.yaml"
cp "$MDIR/pods.yaml" "$E2E_LOGDIR/batch/pods-copy.yaml.txt"
e2e_check "apply -f DIR: its files in one request (2 policies after)" \
	bash -c "'$SEGCTL' --socket '$SOCK' apply -f '$E2E_LOGDIR/batch' >/dev/null && \
		test \"\$('$SEGCTL' --socket '$SOCK' -o json status | jq .counts.policies)\" = 2"
e2e_check "delete -f DIR: back to 1 policy" \
	bash -c "'$SEGCTL' --socket '$SOCK' delete -f '$E2E_LOGDIR/batch' >/dev/null && \
		test \"\$('$SEGCTL' --socket '$SOCK' -o json status | jq .counts.policies)\" = 1"
cp "$E2E_LOGDIR/bad.yaml" "$MDIR/zz-bad.yaml"
sleep 0.5
e2e_check "bad manifest in the directory: status shows file:line" \
	grep -q "zz-bad.yaml:7:20:" <<<"$(st .last_error)"
e2e_check "  ... old policy still enforced" blocked a 10.77.0.3 81
rm "$MDIR/zz-bad.yaml"
sleep 0.5
e2e_check "  ... removed: the error clears" test "$(st .last_error)" = null

# ---- inotify: a change in the directory -----------------------------------------------------
np_yaml b-from-a b 80 81 >"$MDIR/np.yaml.tmp" && mv "$MDIR/np.yaml.tmp" "$MDIR/np.yaml"
sleep 0.5
e2e_check "directory change: a -> b:81 allowed now" connects a 10.77.0.3 81
np_yaml b-from-a b 80 >"$MDIR/np.yaml"
sleep 0.5
e2e_check "directory change back: a -> b:81 dropped" blocked a 10.77.0.3 81

cp -r "$MDIR" "$E2E_LOGDIR/mdir-saved"
rm -rf "$MDIR"
sleep 0.5
e2e_check "manifests directory removed: no pods, no policies" \
	test "$(st '[.counts.pods, .counts.policies] | tostring')" = '[0,0]'
cp "$E2E_LOGDIR/mdir-saved/"* "$MDIR/"
sleep 0.5
e2e_check "  ... files back in the directory (watched anew): a -> b:80 allowed, b:81 dropped" \
	bash -c "$(declare -f probe connects blocked e2e_probe e2e_result); $(declare -p E2E_PREFIX SEGPROBE TO_ALLOW TO_DENY); connects a 10.77.0.3 80 && blocked a 10.77.0.3 81"

e2e_check "state: no item file left once nothing is applied" state_items_are 0

# ---- kill -9 and restart -----------------------------------------------------------------------
# One TCP connection carries a round every 50 ms across the kill and the
# restart: every round must be answered.
ip netns exec "$E2E_PREFIX-a" "$SEGPROBE" connect 10.77.0.3 80/tcp --count 200 --interval 50 \
	--timeout 2000 -o json >"$E2E_LOGDIR/long.json" 2>&1 &
long_pid=$!
sleep 0.5
kill -9 "$segd_pid"
wait "$segd_pid" 2>/dev/null || true
segd_pid=
e2e_check "segd killed: a -> b:81 still dropped" blocked a 10.77.0.3 81
e2e_check "segd killed: a -> b:80 still allowed" connects a 10.77.0.3 80
start_segd
e2e_check "restart: the first apply rewrote nothing" \
	test "$(st '.last_apply | [.flipped, .policy_writes, .endpoint_writes, .ipcache_writes, .policy_deletes, .endpoint_deletes, .ipcache_deletes] | tostring')" = '[false,0,0,0,0,0,0]'
e2e_check "restart: a -> b:81 dropped" blocked a 10.77.0.3 81
wait "$long_pid" || true
e2e_check "an allowed connection lived through kill -9 and restart (200 rounds answered)" \
	test "$(jq -r '"\(.result) \(.replies)"' "$E2E_LOGDIR/long.json")" = "ok 200"
e2e_check "restart: a -> b:80 allowed" connects a 10.77.0.3 80

# ---- CNI -------------------------------------------------------------------------------------------
e2e_pod_add c 4
e2e_serve c --tcp 80
c_srv=${E2E_PIDS[-1]}
cni_conf='{"cniVersion":"1.0.0","name":"hs","type":"seg-cni","socket":"'$SOCK'",
 "prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"'$E2E_IF_c'"},{"name":"eth0","sandbox":"/run/netns/'$E2E_PREFIX'-c"}],
 "ips":[{"address":"10.77.0.4/32","interface":1}]}}'
cni() {
	CNI_COMMAND=$1 CNI_CONTAINERID=ctr-$rand-c CNI_NETNS=/run/netns/$E2E_PREFIX-c CNI_IFNAME=eth0 \
		CNI_PATH=/usr/lib/cni CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=c" \
		"$SEG_CNI" <<<"$cni_conf"
}
e2e_check "CNI ADD returns once the pod's endpoint is in the maps" \
	bash -c "$(declare -f cni); $(declare -p cni_conf rand E2E_PREFIX SEG_CNI); cni ADD >/dev/null && \
		'$SEGCTL' --socket '$SOCK' -o json endpoint get default/c | jq -e .in_maps >/dev/null"
e2e_check "CNI CHECK ok" bash -c "$(declare -f cni); $(declare -p cni_conf rand E2E_PREFIX SEG_CNI); cni CHECK"
e2e_check "CNI pod c (no labels) -> b:80 dropped" blocked c 10.77.0.3 80
e2e_check "a -> c:80 allowed (c not isolated)" connects a 10.77.0.4 80
saved_ep_c=$(ctl -o json endpoint get default/c)
cni DEL >/dev/null
e2e_check "CNI DEL: c's endpoint leaves the maps" \
	test "$(ctl -o json endpoint get default/c | jq .in_maps)" = false
e2e_check "  ... and c's traffic is dropped (no endpoint)" blocked a 10.77.0.4 80

# ---- access, metrics, SIGTERM ------------------------------------------------------------------------
e2e_check "non-root client refused" bash -c "! setpriv --reuid=65534 --regid=65534 --clear-groups \
	'$SEGCTL' --socket '$SOCK' status >/dev/null 2>&1"
e2e_check "socket is 0600" test "$(stat -c %a "$SOCK")" = 600
for _ in $(seq 30); do # the gauges follow segd's last sync: give it a moment
	metrics=$(ip netns exec "$NODE" curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" || true)
	grep -qx 'seg_endpoints 3' <<<"$metrics" && break
	sleep 0.1
done
[ -n "$metrics" ] || echo "  /metrics: no answer" >&2
grep -qx 'seg_endpoints 3' <<<"$metrics" || echo "  /metrics: $(grep '^seg_endpoints' <<<"$metrics")" >&2
e2e_check "/metrics: 3 endpoints and verdict counters" \
	bash -c "grep -qx 'seg_endpoints 3' <<<'$metrics' && grep -q 'seg_verdict_packets_total{reason=\"SEG_DROP_POLICY\"' <<<'$metrics'"
e2e_check "/healthz" test "$(ip netns exec "$NODE" curl -sf "http://127.0.0.1:$METRICS_PORT/healthz")" = ok
kill -TERM "$segd_pid"
rc=0
wait "$segd_pid" || rc=$?
segd_pid=
e2e_check "SIGTERM: segd exits 0" test "$rc" = 0
e2e_check "SIGTERM: links stay pinned" test -n "$(ls "$PIN/links")"
e2e_check "SIGTERM: a -> b:81 still dropped" blocked a 10.77.0.3 81

# ---- a pod that went away while segd was down ----------------------------------------------------
ifkey_c=$(jq -r .ifkey <<<"$saved_ep_c")
kill "$c_srv" 2>/dev/null; wait "$c_srv" 2>/dev/null || true
ip netns del "$E2E_PREFIX-c"
for _ in $(seq 50); do ip -n "$NODE" link show "$E2E_IF_c" >/dev/null 2>&1 || break; sleep 0.1; done

# ---- config file and SIGHUP --------------------------------------------------------------------------
cat >"$E2E_LOGDIR/segd.yaml" <<-EOF
	node-netns: /run/netns/$NODE
	pin-dir: $PIN
	socket: $SOCK
	manifests: $MDIR
	debounce: 20
	audit-default: false
	EOF
"$SEGD" --config "$E2E_LOGDIR/segd.yaml" >>"$E2E_LOGDIR/segd.log" 2>&1 &
segd_pid=$!
for _ in $(seq 100); do ctl status >/dev/null 2>&1 && break; sleep 0.1; done
e2e_check "config file: segd runs with its keys" test "$(st .manifests)" = "$MDIR"
e2e_check "restart: the pinned links of c (gone while segd was down) are unpinned (lib/dp)" \
	test ! -e "$PIN/links/$ifkey_c-from"
e2e_check "  ... and c is no endpoint any more" test "$(st .counts.endpoints_attached)" = 2
e2e_check "config file: a -> b:81 dropped" blocked a 10.77.0.3 81
sed -i 's/^audit-default: false/audit-default: true/' "$E2E_LOGDIR/segd.yaml"
kill -HUP "$segd_pid"
sleep 0.5
e2e_check "SIGHUP: audit-default from the reread config: b audited on ingress" \
	test "$(ctl -o json endpoint get default/b | jq .ingress.audit)" = true
e2e_check "SIGHUP: a -> b:81 passes (audit)" connects a 10.77.0.3 81
kill -TERM "$segd_pid"
wait "$segd_pid" || true
segd_pid=

e2e_summary
