# shellcheck shell=bash
# Shared by the seglab tests (sourced, needs $SEGLAB and $SEGCTL; segctl
# talks to the lab's segd through $SEG_SOCKET): the live matrix of a lab
# against `segctl policy test --matrix` on the manifests that describe it.

# The verdicts of a matrix, sorted: [{from, to, verdict}].
verdicts() { jq -S '[.[] | {from, to, verdict}] | sort_by(.from, .to)'; }

# matrix_equal LAB DIR MANIFEST...: `seglab matrix 80/TCP` of LAB (real
# connections) into DIR/lab.json, segctl's verdicts for MANIFEST... into
# DIR/ctl.json; 0 if they are equal and not empty.
matrix_equal() {
	local lab=$1 dir=$2 args=() f
	shift 2
	for f in "$@"; do args+=(-f "$f"); done
	"$SEGLAB" matrix 80/TCP --name "$lab" -o json | verdicts >"$dir/lab.json"
	"$SEGCTL" -o json policy test "${args[@]}" --matrix 80/TCP | verdicts >"$dir/ctl.json"
	[ "$(jq length "$dir/lab.json")" -gt 0 ] && cmp -s "$dir/lab.json" "$dir/ctl.json"
}

# matrix_show_diff LAB DIR: what the last matrix_equal found, indented.
matrix_show_diff() {
	diff <(jq -c '.[]' "$2/lab.json") <(jq -c '.[]' "$2/ctl.json") | sed 's/^/    /' || true
	"$SEGLAB" matrix 80/TCP --name "$1" | sed 's/^/    /'
}
