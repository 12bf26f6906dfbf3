#!/usr/bin/env bash
# The matrix follows every change, while traffic flows (issue 4), calico mode:
# `seglab up` two namespaces and three pods (x/a, x/b, y/a) serving port 80,
# start a loop of segprobe connections y/a -> x/b, then after each step
# compare the live `seglab matrix 80/TCP -o json` verdicts with `segctl
# policy test --matrix 80/TCP -o json` on the manifests as they are now:
#   1. apply a deny-all ingress policy in namespace x;
#   2. change it to allow 80/TCP from pods labelled role=client;
#   3. relabel y/a role=client (its Pod manifest, where segd reads it);
#   4. add a pod x/c, role=client (`seglab pod add`);
#   5. remove pod x/c (`seglab pod del`);
#   6. delete the policy.
# Each step must converge within 2 s: segd's live `policy test` (no -f)
# must give the offline verdicts by then, and the real matrix must equal
# them (retried while the change is younger than 2 s). The traffic loop must keep running all along
# and its verdicts must flip with the policy (y/a -> x/b is blocked after 1
# and connected again after 3).
#
#   follow.sh SEGLAB SEGCTL SEGPROBE
#
# Root only (exit 77 otherwise). Lab hl-f-<random>: netns hl-f-*, pins
# /sys/fs/bpf/seg-hl-f-*, state under /tmp/hl-f-*.
set -euo pipefail

SEGLAB=${1:?usage: follow.sh SEGLAB SEGCTL SEGPROBE}
SEGCTL=${2:?usage: follow.sh SEGLAB SEGCTL SEGPROBE}
SEGPROBE=${3:?usage: follow.sh SEGLAB SEGCTL SEGPROBE}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/seglab/lib.sh
. "$HERE/lib.sh"
CONVERGE_MS=2000

if [ "$(id -u)" != 0 ]; then
	echo "skip: needs root (network namespaces, CNI plugins, bpffs)"
	exit 77
fi
for t in jq ip nsenter /usr/lib/cni/ptp /usr/lib/cni/host-local; do
	command -v "$t" >/dev/null || { echo "FAIL: $t is not installed"; exit 1; }
done

LAB=
TRAFFIC_PID=
PASSED=0
FAILED=0
TMP=$(mktemp -d /tmp/hl-f-test.XXXXXX)
cleanup() {
	# The loop ends itself (no segprobe left behind in a pod's netns).
	if [ -n "$TRAFFIC_PID" ]; then
		touch "$TMP/stop"
		wait "$TRAFFIC_PID" 2>/dev/null || true
	fi
	[ -n "$LAB" ] && "$SEGLAB" down --name "$LAB" >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

ok() {
	echo "ok   $*"
	PASSED=$((PASSED + 1))
}
fail() {
	echo "FAIL $*"
	FAILED=$((FAILED + 1))
}
now_ms() { date +%s%3N; }

# The manifests as they are now: one file each, so a step rewrites or
# removes exactly the object it changes.
M=$TMP/manifests
mkdir -p "$M"
cat >"$M/ns.yaml" <<'EOF'
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {ns: x}}
---
apiVersion: v1
kind: Namespace
metadata: {name: y, labels: {ns: y}}
EOF
pod() { # NS NAME IP LABELS
	cat <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $2, namespace: $1, labels: $4}
spec:
  containers:
  - name: c
    ports: [{containerPort: 80}]
status: {podIP: $3, podIPs: [{ip: $3}]}
EOF
}
pod x a 10.1.0.1 '{pod: a}' >"$M/pod-x-a.yaml"
pod x b 10.1.0.2 '{pod: b}' >"$M/pod-x-b.yaml"
pod y a 10.2.0.1 '{pod: a}' >"$M/pod-y-a.yaml"
model() { # the MODEL of `seglab up`: the namespaces and the first three pods
	local f
	cat "$M/ns.yaml"
	for f in "$M"/pod-x-a.yaml "$M"/pod-x-b.yaml "$M"/pod-y-a.yaml; do
		printf -- '---\n'
		cat "$f"
	done
}
model >"$TMP/model.yaml"

# The traffic: y/a -> x/b 80/TCP, one connection every 50 ms, each result
# ("connected" or "blocked") appended to $TMP/traffic, until $TMP/stop.
traffic() {
	local r
	while [ ! -e "$TMP/stop" ]; do
		if nsenter --net="/run/netns/$LAB-y-a" "$SEGPROBE" connect 10.1.0.2 80/tcp \
			--timeout 300 -q >/dev/null 2>&1; then
			r=connected
		else
			r=blocked
		fi
		echo "$r" >>"$TMP/traffic"
		sleep 0.05
	done
}

# traffic_check WHAT: the loop is alive and made new attempts since the
# last check.
TRAFFIC_SEEN=0
traffic_check() {
	local n
	n=$(wc -l <"$TMP/traffic" 2>/dev/null || echo 0)
	if kill -0 "$TRAFFIC_PID" 2>/dev/null && [ "$n" -gt "$TRAFFIC_SEEN" ]; then
		TRAFFIC_SEEN=$n
		return 0
	fi
	fail "$1: traffic y/a -> x/b stopped ($n attempts in all)"
	return 1
}

# traffic_follows WHAT VERDICT: the next connections of the loop (from
# now) end in VERDICT within 2 s.
traffic_follows() {
	local start n last
	start=$(wc -l <"$TMP/traffic")
	for _ in $(seq 40); do
		n=$(wc -l <"$TMP/traffic")
		if [ "$n" -gt "$start" ]; then
			last=$(tail -n1 "$TMP/traffic")
			[ "$last" = "$2" ] && { ok "$1: traffic y/a -> x/b $2"; return 0; }
		fi
		sleep 0.05
	done
	fail "$1: traffic y/a -> x/b not $2 within 2 s (last: ${last:-none})"
}

# step WHAT [VERDICT]: after a change, segd's live answer (`segctl policy
# test --matrix` without -f: its state, a few ms per ask) must equal
# segctl's offline answer for the manifests in $M within CONVERGE_MS; then
# the live matrix (real connections, ~3 s with its retries) must equal it
# too. A matrix that differs is retried while the change is younger than
# CONVERGE_MS. With VERDICT, the traffic loop must then follow
# (traffic_follows).
step() {
	local what=$1 t0 t tries=0 args=() f
	t0=$(now_ms)
	for f in "$M"/*.yaml; do args+=(-f "$f"); done
	"$SEGCTL" -o json policy test "${args[@]}" --matrix 80/TCP | verdicts >"$TMP/want.json"
	while :; do
		"$SEGCTL" -o json policy test --matrix 80/TCP 2>/dev/null | verdicts >"$TMP/live.json" || true
		t=$(now_ms)
		cmp -s "$TMP/live.json" "$TMP/want.json" && break
		if [ $((t - t0)) -ge "$CONVERGE_MS" ]; then
			fail "$what: segd's live policy test differs after $((t - t0)) ms (< segd, > manifests):"
			diff <(jq -c '.[]' "$TMP/live.json") <(jq -c '.[]' "$TMP/want.json") |
				sed 's/^/    /' || true
			break
		fi
		sleep 0.05
	done
	t=$(now_ms)
	while :; do
		tries=$((tries + 1))
		if matrix_equal "$LAB" "$TMP" "$M"/*.yaml; then
			ok "$what: matrix 80/TCP equals segctl policy test" \
				"($(jq length "$TMP/lab.json") pairs; segd converged in $((t - t0)) ms; matrix try $tries)"
			break
		fi
		if [ $(($(now_ms) - t0)) -ge "$CONVERGE_MS" ]; then
			fail "$what: matrix 80/TCP still differs after $tries tries (< seglab, > segctl):"
			matrix_show_diff "$LAB" "$TMP"
			break
		fi
		sleep 0.2
	done
	traffic_check "$what" || true
	[ -z "${2:-}" ] || traffic_follows "$what" "$2"
}

# x_policy [RULES]: the NetworkPolicy of steps 1 and 2, isolating every pod
# of namespace x on ingress, with these ingress rules (YAML lines).
x_policy() {
	cat <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: x-ingress, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress]
EOF
	[ -z "${1:-}" ] || printf '  ingress:\n%s\n' "$1"
}

LAB=hl-f-$(od -An -N2 -tx2 /dev/urandom | tr -d ' \n')
export SEG_SOCKET=/run/seg/$LAB/segd.sock
if ! SEGLAB_SEGD_ARGS="--resync 1" "$SEGLAB" up -f "$TMP/model.yaml" --network calico \
	--name "$LAB" >"$TMP/up.log" 2>&1; then
	fail "seglab up failed:"
	sed 's/^/    /' "$TMP/up.log"
	echo "$PASSED passed, $FAILED failed"
	exit 1
fi
traffic &
TRAFFIC_PID=$!
sleep 0.3
step "0 no policy" connected

# 1. Deny all ingress in x.
x_policy >"$M/policy.yaml"
"$SEGCTL" apply -f "$M/policy.yaml" >/dev/null
step "1 deny-all ingress in x" blocked

# 2. The same policy, now allowing 80/TCP from role=client in any namespace.
x_policy '  - from: [{namespaceSelector: {}, podSelector: {matchLabels: {role: client}}}]
    ports: [{port: 80, protocol: TCP}]' >"$M/policy.yaml"
"$SEGCTL" apply -f "$M/policy.yaml" >/dev/null
step "2 allow from role=client"

# 3. y/a becomes a client. Its Pod object comes from the MODEL, which
# seglab copied into the lab's manifests directory (segd's inotify label
# source); `segctl apply -f` of a Pod defined there is refused as a
# duplicate name, so the label changes where the Pod is defined: the
# model copy is replaced in one rename.
pod y a 10.2.0.1 '{pod: a, role: client}' >"$M/pod-y-a.yaml"
model >"/tmp/$LAB/model.yaml.new"
mv "/tmp/$LAB/model.yaml.new" "/tmp/$LAB/manifests/model-model.yaml"
step "3 relabel y/a role=client" connected

# 4. A new pod x/c, a client too (so it reaches x/a and x/b).
pod x c 10.1.0.3 '{pod: c, role: client}' >"$M/pod-x-c.yaml"
"$SEGLAB" pod add -f "$M/pod-x-c.yaml" --name "$LAB" >/dev/null
step "4 add pod x/c"

# 5. Remove x/c again (its manifest goes with it).
"$SEGLAB" pod del x/c --name "$LAB" >/dev/null
rm "$M/pod-x-c.yaml"
step "5 remove pod x/c"

# 6. Delete the policy.
"$SEGCTL" delete -f "$M/policy.yaml" >/dev/null
rm "$M/policy.yaml"
step "6 delete the policy" connected

echo "traffic: $(grep -c . "$TMP/traffic") connections y/a -> x/b during the test" \
	"($(grep -c '^connected' "$TMP/traffic" || true) connected," \
	"$(grep -c '^blocked' "$TMP/traffic" || true) blocked)"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
