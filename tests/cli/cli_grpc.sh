#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# segctl loads gRPC only for the commands that talk to the topology service
# (issue 6): segctl itself does not link libgrpc; the local commands never
# map it (LD_DEBUG, and /proc/PID/maps of a live one); observe --server and
# topology load segctl-grpc.so and work against a real seg-topology, with
# -o dot (== --dot) for topology and a usage error for -o dot elsewhere; a
# broken module is an error of those two commands only.
# Usage: cli_grpc.sh SEGCTL SEG_TOPOLOGY
set -u

SEGCTL=${1:?usage: cli_grpc.sh SEGCTL SEG_TOPOLOGY}
TOPO=${2:?usage: cli_grpc.sh SEGCTL SEG_TOPOLOGY}
MODULE=$(dirname "$SEGCTL")/segctl-grpc.so
command -v jq >/dev/null || { echo "FAIL: jq not installed"; exit 1; }

dir=$(mktemp -d /tmp/sc-cli-grpc.XXXXXX)
pids=
FAILS=0
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
ok() { echo "ok - $1"; }
fail() { FAILS=$((FAILS + 1)); echo "not ok - $1"; }
NOSEGD=(--socket "$dir/no-segd.sock" --pin-dir "$dir/no-pins")

# ---- linking ----------------------------------------------------------------------
if ldd "$SEGCTL" | grep -q libgrpc; then fail "segctl links libgrpc: $(ldd "$SEGCTL" | grep grpc)"
else ok "segctl does not link libgrpc ($(ldd "$SEGCTL" | wc -l) libraries)"; fi
if ldd "$MODULE" | grep -q 'libgrpc\.so'; then ok "segctl-grpc.so links libgrpc"
else fail "segctl-grpc.so does not link libgrpc"; fi

# ---- what each command loads (LD_DEBUG=libs lists every object, dlopen too) ------
loads_grpc() { # loads_grpc ARGS...: 0 if that segctl run loaded libgrpc
	LD_DEBUG=libs "$SEGCTL" "$@" 2>&1 >/dev/null | grep -q 'calling init: .*libgrpc\.so'
}
for args in "version" "--help" "status" "apply -f $dir/none.yaml" "endpoint list" \
	"bpf endpoint list" "bpf counters" "policy test --help" "observe" "observe --follow" \
	"completion bash"; do
	# shellcheck disable=SC2086
	if loads_grpc "${NOSEGD[@]}" $args; then fail "segctl $args loads libgrpc"
	else ok "segctl $args does not load libgrpc"; fi
done
if loads_grpc topology --server 127.0.0.1:1; then ok "segctl topology loads libgrpc"
else fail "segctl topology does not load libgrpc"; fi
if loads_grpc observe --server 127.0.0.1:1; then ok "segctl observe --server loads libgrpc"
else fail "segctl observe --server does not load libgrpc"; fi

# A live local command: apply blocks opening a FIFO; its maps must not hold libgrpc.
mkfifo "$dir/np.yaml"
"$SEGCTL" "${NOSEGD[@]}" apply -f "$dir/np.yaml" >/dev/null 2>&1 &
apid=$!
pids="$pids $apid"
# every linked library is mapped before main(); apply then blocks in open()
for _ in $(seq 50); do grep -q libjansson "/proc/$apid/maps" 2>/dev/null && break; sleep 0.1; done
if ! grep -q 'libjansson' "/proc/$apid/maps" 2>/dev/null; then fail "segctl apply is not running"
elif grep -q libgrpc "/proc/$apid/maps"; then fail "segctl apply maps libgrpc"
else ok "a running segctl apply maps no libgrpc ($(awk '$6 ~ /\.so/ {print $6}' "/proc/$apid/maps" | sort -u | wc -l) shared objects)"; fi
echo 'kind: Namespace' >"$dir/np.yaml"
wait "$apid" 2>/dev/null

# ---- against a real topology service ----------------------------------------------
"$TOPO" --grpc 127.0.0.1:0 --http 127.0.0.1:0 --ports-file "$dir/ports" 2>"$dir/topo.log" &
pids="$pids $!"
for _ in $(seq 50); do [ -s "$dir/ports" ] && break; sleep 0.1; done
[ -s "$dir/ports" ] || { echo "FAIL: seg-topology did not start"; cat "$dir/topo.log"; exit 1; }
GRPC=127.0.0.1:$(awk '$1=="grpc"{print $2}' "$dir/ports")

"$SEGCTL" topology --server "$GRPC" -o dot >"$dir/o.dot" 2>"$dir/err"; rc=$?
"$SEGCTL" topology --server "$GRPC" --dot >"$dir/alias.dot" 2>>"$dir/err"
"$SEGCTL" -o dot topology --server "$GRPC" >"$dir/first.dot" 2>>"$dir/err"
if [ $rc = 0 ] && head -1 "$dir/o.dot" | grep -qx 'digraph seg {' && tail -1 "$dir/o.dot" | grep -qx '}' &&
	cmp -s "$dir/o.dot" "$dir/alias.dot" && cmp -s "$dir/o.dot" "$dir/first.dot"; then
	ok "segctl topology -o dot prints DOT, the same as --dot and as -o dot before the command"
else fail "segctl topology -o dot (rc $rc): $(cat "$dir/o.dot" "$dir/err")"; fi
if command -v dot >/dev/null; then
	if dot -Tsvg -o /dev/null "$dir/o.dot"; then ok "Graphviz parses it"; else fail "Graphviz refuses it"; fi
fi
out=$("$SEGCTL" -o json topology --server "$GRPC")
[ "$out" = "[]" ] && ok "segctl -o json topology: an empty graph is []" || fail "segctl -o json topology: $out"
out=$("$SEGCTL" -o json observe --server "$GRPC" --since 5m)
[ "$out" = "[]" ] && ok "segctl -o json observe --server: no flows is []" || fail "observe --server: $out"

# A live gRPC command maps libgrpc (so the maps check above can fail).
"$SEGCTL" observe --server "$GRPC" --follow >/dev/null 2>&1 &
opid=$!
pids="$pids $opid"
for _ in $(seq 50); do grep -q libgrpc "/proc/$opid/maps" 2>/dev/null && break; sleep 0.1; done
if grep -q libgrpc "/proc/$opid/maps" 2>/dev/null; then ok "a running segctl observe --server --follow maps libgrpc"
else fail "segctl observe --server --follow does not map libgrpc"; fi

# ---- -o dot elsewhere is a usage error ----------------------------------------------
for args in "version" "observe --server $GRPC" "status"; do
	# shellcheck disable=SC2086
	"$SEGCTL" "${NOSEGD[@]}" -o dot $args >"$dir/out" 2>"$dir/err"; rc=$?
	if [ $rc = 2 ] && [ ! -s "$dir/out" ] && grep -q "segctl topology' only" "$dir/err"; then
		ok "segctl -o dot $args: exit 2, says it is for topology only"
	else fail "segctl -o dot $args: rc $rc, $(cat "$dir/out" "$dir/err")"; fi
done

# ---- a broken module: only observe --server and topology fail -----------------------
mkdir "$dir/bin"
cp "$SEGCTL" "$dir/bin/segctl"
echo "not an ELF file" >"$dir/bin/segctl-grpc.so"
"$dir/bin/segctl" topology --server "$GRPC" >/dev/null 2>"$dir/err"; rc=$?
if [ $rc = 1 ] && grep -q "segctl-grpc.so" "$dir/err"; then ok "a broken module: topology exits 1 naming it"
else fail "broken module: rc $rc, $(cat "$dir/err")"; fi
if [ "$("$dir/bin/segctl" -o json version | jq -r .version)" = "$("$SEGCTL" -o json version | jq -r .version)" ]; then
	ok "a broken module: segctl version still works"
else fail "a broken module breaks segctl version"; fi

[ "$FAILS" = 0 ] && echo "PASS" || echo "FAIL: $FAILS"
[ "$FAILS" = 0 ]
