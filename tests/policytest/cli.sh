#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# segctl policy test, offline: output shapes (table, netpol e2e matrix, JSON
# array with exactly the stable keys), --probes files, named ports, address
# sides, and errors (bad SPEC, unknown pod, bad manifest with
# file:line:col; exit codes 2 and 1). No root needed.
# Usage: cli.sh SEGCTL NETPOL_DIR
set -u

SEGCTL=${1:?usage: cli.sh SEGCTL NETPOL_DIR}
NP=${2:?usage: cli.sh SEGCTL NETPOL_DIR}
command -v jq >/dev/null || { echo "FAIL: jq not installed"; exit 1; }
TMP=$(mktemp -d /tmp/ha-policytest.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
FAILS=0
PASSES=0

ok() { PASSES=$((PASSES + 1)); echo "ok - $1"; }
fail() { FAILS=$((FAILS + 1)); echo "not ok - $1"; }
check() {
	if [ "$(printf '%s' "$3" | jq -e "$2" 2>/dev/null)" = true ]; then ok "$1"; else
		fail "$1"; echo "  expected $2 in: $3"
	fi
}
# expect_rc NAME WANT CMD...: runs CMD (stdout, stderr in $TMP/out, $TMP/err)
expect_rc() {
	name=$1 want=$2
	shift 2
	"$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	if [ "$rc" = "$want" ]; then ok "$name (exit $rc)"; else
		fail "$name: exit $rc, want $want"; sed 's/^/  /' "$TMP/err"
	fi
}
PT() { "$SEGCTL" policy test -f "$NP/base.yaml" "$@"; }
DENY="$NP/cases/01-deny-all-ingress"

# ---- table ----
out=$(PT -f "$DENY" --probe 'y/a->x/b:80/TCP' --probe 'x/a->y/b:80/TCP')
if printf '%s\n' "$out" | head -1 | grep -Eq '^FROM +TO +PORT +PROTOCOL +VERDICT +REASON$'; then
	ok "table header"; else fail "table header: $out"; fi
if printf '%s\n' "$out" | grep -q 'deny .*isolated by x/deny-all (ingress); no rule allows$'; then
	ok "table: denied probe names the isolating policy"; else fail "table deny: $out"; fi
if printf '%s\n' "$out" | grep -q 'allow .*not isolated: no policy selects y/b for ingress$'; then
	ok "table: not isolated"; else fail "table allow: $out"; fi

# ---- matrix: exactly the expected block of the corpus ----
PT -f "$DENY" --matrix 80/TCP >"$TMP/m" 2>"$TMP/err"
awk '/^probe 80\/TCP$/{on=1; next} on && /^$/{exit} on' "$DENY/expect.txt" >"$TMP/want"
if [ -s "$TMP/want" ] && cmp -s "$TMP/m" "$TMP/want"; then ok "matrix = expect.txt 80/TCP"; else
	fail "matrix differs"; diff "$TMP/want" "$TMP/m" | sed 's/^/  /'; fi

# ---- JSON ----
j=$("$SEGCTL" -o json policy test -f "$NP/base.yaml" -f "$DENY" --probe 'y/a->x/b:80/TCP' \
	--probe 'x/a->y/b:serve-81-udp/UDP')
check "json: one array of 2" 'type == "array" and length == 2' "$j"
check "json: exactly the stable keys" \
	'map(keys) | unique == [["from","port","protocol","reason","to","verdict"]]' "$j"
check "json: types" 'all(.[]; (.port|type) == "number" and (.reason|type) == "string")' "$j"
check "json: deny" '.[0] | .from == "y/a" and .to == "x/b" and .port == 80 and
	.protocol == "TCP" and .verdict == "deny"' "$j"
check "json: named port resolved on the destination" \
	'.[1] | .port == 81 and .protocol == "UDP" and .verdict == "allow"' "$j"
j=$(PT -f "$DENY" -o json --matrix 81/SCTP)
check "json matrix: 81 probes, X where the table has X" \
	'length == 81 and ([.[] | select(.verdict == "deny")] | length) == 24' "$j"

# ---- --probes FILE: comments and blank lines ----
printf '# a comment\n\n  y/a->x/b:80/TCP  \n\t# indented comment\nx/a->x/a:80/TCP\n' >"$TMP/probes"
j=$("$SEGCTL" -o json policy test -f "$NP/base.yaml" -f "$DENY" --probes "$TMP/probes")
check "--probes: 2 probes" 'length == 2 and .[0].verdict == "deny"' "$j"
check "--probes: self is loopback" '.[1].verdict == "allow" and (.[1].reason|test("loopback"))' "$j"

# ---- address sides ----
j=$("$SEGCTL" -o json policy test -f "$NP/base.yaml" -f "$DENY" \
	--probe '192.0.2.1->x/a:80/TCP' --probe 'x/a->10.2.0.2:80/TCP')
check "address source: ingress only" '.[0].from == "192.0.2.1" and .[0].verdict == "deny"' "$j"
check "address destination: egress only" '.[1].verdict == "allow"' "$j"

# ---- errors ----
expect_rc "bad SPEC is a usage error" 2 PT -f "$DENY" --probe 'x/a-y/b:80/TCP'
grep -q "bad probe 'x/a-y/b:80/TCP'" "$TMP/err" && ok "bad SPEC named" || fail "bad SPEC msg"
expect_rc "bad protocol is a usage error" 2 PT -f "$DENY" --probe 'x/a->y/b:80/ICMPX'
expect_rc "port 0 is a usage error" 2 PT -f "$DENY" --probe 'x/a->y/b:0/TCP'
expect_rc "bad line in --probes" 2 sh -c "printf 'x/a->y/b:80/TCP\nnope\n' >'$TMP/bad'; \
	'$SEGCTL' policy test -f '$NP/base.yaml' --probes '$TMP/bad'"
grep -q "$TMP/bad:2: bad probe 'nope'" "$TMP/err" && ok "--probes error names file:line" ||
	{ fail "--probes error location"; cat "$TMP/err"; }
expect_rc "no probe option" 2 PT -f "$DENY"
expect_rc "two probe options" 2 PT -f "$DENY" --probe 'x/a->y/b:80/TCP' --matrix 80/TCP
expect_rc "bad --matrix" 2 PT -f "$DENY" --matrix 80
expect_rc "unknown pod" 1 PT -f "$DENY" --probe 'x/a->y/nope:80/TCP'
grep -q "no pod y/nope" "$TMP/err" && ok "unknown pod named" || fail "unknown pod msg"
expect_rc "unknown named port" 1 PT -f "$DENY" --probe 'x/a->y/b:nope/TCP'
printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: [oops\n' >"$TMP/bad.yaml"
expect_rc "bad manifest" 1 "$SEGCTL" policy test -f "$TMP/bad.yaml" --matrix 80/TCP
grep -Eq "$TMP/bad.yaml:[0-9]+:[0-9]+" "$TMP/err" && ok "bad manifest: file:line:col" ||
	{ fail "bad manifest location"; cat "$TMP/err"; }
printf 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.0/33}\n' >"$TMP/badcidr.yaml"
expect_rc "invalid policy" 1 PT -f "$TMP/badcidr.yaml" --matrix 80/TCP
grep -q "badcidr.yaml:[0-9]*:[0-9]*.*ipBlock.cidr" "$TMP/err" && ok "invalid policy: field path" ||
	{ fail "invalid policy message"; cat "$TMP/err"; }
out=$("$SEGCTL" -o json policy test -f "$NP/base.yaml" --probe 'x/a->y/nope:80/TCP' 2>/dev/null)
check "JSON mode error document" 'has("error")' "$out"

echo "# $PASSES passed, $FAILS failed"
[ "$FAILS" = 0 ]
