#!/bin/sh
# Builds one libFuzzer binary with clang, outside meson's gcc toolchain:
#   cc.sh CLANG OUTPUT DEPFILE SOURCE... -- CFLAGS... -- LDFLAGS...
# Each source is compiled on its own (with -MD), then linked; DEPFILE gets
# one rule naming every header, so ninja rebuilds when any of them changes.
set -eu
clang=$1 out=$2 dep=$3
shift 3
srcs=
while [ $# -gt 0 ] && [ "$1" != -- ]; do srcs="$srcs $1"; shift; done
[ $# -gt 0 ] && shift
cflags=
while [ $# -gt 0 ] && [ "$1" != -- ]; do cflags="$cflags $1"; shift; done
[ $# -gt 0 ] && shift
objdir=$out.p
rm -rf "$objdir"
mkdir -p "$objdir"
objs= i=0
for s in $srcs; do
	i=$((i + 1))
	# shellcheck disable=SC2086
	"$clang" $cflags -MD -MF "$objdir/$i.d" -c "$s" -o "$objdir/$i.o"
	objs="$objs $objdir/$i.o"
done
# shellcheck disable=SC2086
"$clang" $cflags $objs -o "$out" "$@"
{
	printf '%s:' "$out"
	cat "$objdir"/*.d | sed -e 's/^[^:]*://' -e 's/\\$//' | tr -s ' \n' '  '
	echo
} >"$dep"
