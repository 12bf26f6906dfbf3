#!/usr/bin/env bash
# segprobe itself, over a veth pair between two netns (no seg): served
# ports answer on TCP, UDP and SCTP over IPv4 and IPv6; unserved ports are
# refused (TCP, UDP) or silent (SCTP); exit codes and JSON are what scripts
# rely on. The kernel's own conntrack (which knows SCTP, checks the CRC32c
# and matches INIT-ACK to INIT by tag) judges our raw SCTP packets.
#
#   test_segprobe.sh SEGPROBE
#
# One line per check, then "N passed, N failed". Exit 1 on failure, 77 if
# not root. Uses netns he-<rand>-{c,s}.
set -euo pipefail

SEGPROBE=${1:-${SEGPROBE:-}}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/e2e-lib.sh
source "$here/../../scripts/e2e-lib.sh"
E2E_NEEDS=nft e2e_require "creates network namespaces, raw sockets" SEGPROBE SEGPROBE
e2e_node_env he
C=$E2E_PREFIX-c
S=$E2E_PREFIX-s
log=$E2E_LOGDIR/serve.log
srv=

cleanup() {
	local rc=$?
	set +e
	e2e_stopped_early "$rc"
	[ -n "$srv" ] && kill "$srv" 2>/dev/null && wait "$srv" 2>/dev/null
	ip netns del "$C" 2>/dev/null
	ip netns del "$S" 2>/dev/null
	e2e_logs_done
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ip netns add "$C"
ip netns add "$S"
ip -n "$C" link add eth0 type veth peer name eth0 netns "$S"
for ns in "$C" "$S"; do
	ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	ip -n "$ns" link set lo up
	ip -n "$ns" link set eth0 up
done
ip -n "$C" addr add 10.78.0.1/24 dev eth0
ip -n "$S" addr add 10.78.0.2/24 dev eth0
ip -n "$C" addr add fd78::1/64 dev eth0 nodad
ip -n "$S" addr add fd78::2/64 dev eth0 nodad
# Kernel conntrack as the SCTP referee: INITs must be "new" at the server,
# INIT-ACKs "established" at the client, nothing "invalid" (bad CRC32c).
for ns in "$C" "$S"; do
	ip netns exec "$ns" nft -f - <<'EOF'
table inet heprobe {
	chain pre {
		type filter hook prerouting priority 0; policy accept;
		meta l4proto sctp ct state invalid counter
		meta l4proto sctp ct state new counter
		meta l4proto sctp ct state established counter
	}
}
EOF
done

ip netns exec "$S" "$SEGPROBE" -v serve --tcp 80 --udp 53 --sctp 9 >"$log" 2>&1 &
srv=$!
for _ in $(seq 50); do
	grep -q '^segprobe: serving' "$log" && break
	sleep 0.1
done
if grep -q '^segprobe: serving' "$log"; then e2e_ok "serve started"; else e2e_fail "serve started: $(cat "$log")"; fi

# probe WANT_RESULT WANT_STATUS ADDR PORT/PROTO [options]
probe() {
	local want=$1 want_rc=$2 addr=$3 pp=$4 out rc=0
	shift 4
	out=$(ip netns exec "$C" "$SEGPROBE" connect "$addr" "$pp" --timeout 500 -o json "$@") || rc=$?
	if [ "$(jq -r .result <<<"$out" 2>/dev/null)" = "$want" ] && [ "$rc" = "$want_rc" ]; then
		e2e_ok "$pp to $addr: $want, exit $rc"
	else
		e2e_fail "$pp to $addr: want $want/exit $want_rc, got exit $rc: $out"
	fi
}

for addr in 10.78.0.2 fd78::2; do
	probe ok 0 "$addr" 80/tcp
	probe ok 0 "$addr" 53/udp
	probe ok 0 "$addr" 9/sctp
	probe ok 0 "$addr" 80 --count 3 --interval 10
	probe ok 0 "$addr" 9/sctp --count 3 --interval 10 --sport 4242
	probe refused 1 "$addr" 81/tcp
	probe refused 1 "$addr" 54/udp
	probe timeout 1 "$addr" 10/sctp
done

out=$(ip netns exec "$C" "$SEGPROBE" connect fd78::2 53/udp --count 2 --interval 0 -o json)
if jq -e '.proto == "udp" and .family == 6 and .src == "fd78::1" and .dst == "fd78::2" and
	.dport == 53 and .count == 2 and .replies == 2 and (.rtt_ms | type) == "number"' \
	<<<"$out" >/dev/null; then
	e2e_ok "JSON fields"
else
	e2e_fail "JSON fields: $out"
fi

rc=0
ip netns exec "$C" "$SEGPROBE" connect 10.78.0.2 80/icmp >/dev/null 2>&1 || rc=$?
if [ "$rc" = 2 ]; then e2e_ok "bad protocol is a usage error (exit 2)"; else e2e_fail "bad protocol: exit $rc"; fi
rc=0
"$SEGPROBE" connect 10.78.0.2 80 --count 0 >/dev/null 2>&1 || rc=$?
if [ "$rc" = 2 ]; then e2e_ok "--count 0 is a usage error (exit 2)"; else e2e_fail "--count 0: exit $rc"; fi
if "$SEGPROBE" --help | grep -q 'EXIT STATUS'; then e2e_ok "--help"; else e2e_fail "--help"; fi

# 3 single INITs + 3 rounds per family = 8 INIT-ACKs seen by the client's conntrack.
cnt() { ip netns exec "$1" nft list chain inet heprobe pre | sed -n "s/.*state $2 counter packets \([0-9]*\).*/\1/p"; }
if [ "$(cnt "$S" invalid)" = 0 ] && [ "$(cnt "$C" invalid)" = 0 ]; then
	e2e_ok "kernel conntrack: no SCTP packet invalid (CRC32c, tags)"
else
	e2e_fail "kernel conntrack: invalid SCTP packets (server $(cnt "$S" invalid), client $(cnt "$C" invalid))"
fi
n=$(cnt "$C" established)
if [ "$n" -ge 8 ]; then e2e_ok "kernel conntrack: INIT-ACKs match their INIT ($n)"; else e2e_fail "kernel conntrack: $n INIT-ACKs established, want >= 8"; fi

kill "$srv"
rc=0
wait "$srv" || rc=$?
srv=
if [ "$rc" = 0 ]; then e2e_ok "serve exits 0 on SIGTERM"; else e2e_fail "serve exit on SIGTERM: $rc"; fi
# Nothing reads SCTP now: the kernel answers ICMP protocol unreachable.
probe refused 1 10.78.0.2 9/sctp
probe refused 1 fd78::2 9/sctp

e2e_summary
