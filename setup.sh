#!/usr/bin/env bash
# seg set-up entry point for a fresh Debian 12 machine, as root.
#
#   ./setup.sh demo    install what seg needs, build, run the demo node
#   ./setup.sh test    install what seg needs, build, run every test
#   ./setup.sh deps    only install the Debian packages
#   ./setup.sh build   deps + build (build/ and the ASan/UBSan build-asan/)
set -euo pipefail

cd "$(dirname "$0")"
top=$PWD

# One list: what building, testing and the demo need. Keep docs/ in step.
DEBS=(
	build-essential clang llvm pkg-config meson ninja-build
	libbpf-dev bpftool linux-libc-dev
	libcmocka-dev libfyaml-dev libjansson-dev
	libnl-3-dev libnl-route-3-dev libmnl-dev libnftnl-dev
	libprotobuf-c-dev protobuf-c-compiler libgrpc-dev
	libmicrohttpd-dev libgraphviz-dev graphviz libclang-rt-14-dev
	containernetworking-plugins iproute2 iputils-ping ethtool jq curl openssl iperf3 nftables
	openvswitch-switch chromium
)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'setup.sh: error: %s\n' "$*" >&2; exit 1; }

need_root() {
	[ "$(id -u)" = 0 ] || die "run as root (seg loads BPF programs and creates network namespaces)"
}

deps() {
	local missing=()
	for p in "${DEBS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		say "installing ${#missing[@]} Debian packages: ${missing[*]}"
		apt-get update -q
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
	fi
	if ! mountpoint -q /sys/fs/bpf; then
		say "mounting bpffs on /sys/fs/bpf"
		mount -t bpf bpf /sys/fs/bpf
	fi
}

build() {
	say "building build/${1:+ and build-asan/ (ASan + UBSan, for tests)}"
	[ -f build/build.ninja ] || meson setup build >/dev/null
	ninja -C build
	[ -n "${1:-}" ] || return 0
	[ -f build-asan/build.ninja ] ||
		meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
	ninja -C build-asan
}

run_tests() {
	local log=build-asan/meson-logs/testlog.txt rc=0
	say "running every test (unit, dp, bpf, cli, e2e) under ASan + UBSan"
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	# the packet fuzzer replays one fixed stream here (time-bounded), so a
	# red run is reproducible; set SEG_FUZZ_SEED / SEG_FUZZ_SECONDS to explore
	export SEG_FUZZ_SEED=${SEG_FUZZ_SEED:-20261128}
	meson test -C build-asan -v --print-errorlogs --num-processes 2 || rc=$?
	# meson's summary; a skipped test is a failure here: CI runs as root on
	# a kernel that supports every test.
	local ok fail skip to
	read -r ok fail skip to < <(python3 - "$top/build-asan/meson-logs/testlog.json" <<'PY'
import json, sys
c = {"OK": 0, "FAIL": 0, "SKIP": 0, "TIMEOUT": 0, "EXPECTEDFAIL": 0, "UNEXPECTEDPASS": 0, "ERROR": 0}
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    c[r] = c.get(r, 0) + 1
print(c["OK"] + c["EXPECTEDFAIL"], c["FAIL"] + c["ERROR"] + c["UNEXPECTEDPASS"], c["SKIP"], c["TIMEOUT"])
PY
	)
	echo "tests: ok $ok, failed $fail, skipped $skip, timed out $to (log: $log)"
	if [ "$skip" != 0 ]; then
		echo "setup.sh: error: $skip test(s) skipped; every test must run here (root, bpffs, kernel 6.6+)" >&2
		rc=1
	fi
	[ "$fail" = 0 ] && [ "$to" = 0 ] || rc=1
	echo "$ok passed, $((fail + skip + to)) failed"
	return $rc
}

case "${1:-}" in
deps) need_root; deps ;;
build) need_root; deps; build asan ;;
test) need_root; deps; build asan; run_tests ;;
demo) need_root; deps; build; shift; exec "$top/scripts/demo.sh" "$top/build" "$@" ;;
-h | --help | "")
	sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
	[ -n "${1:-}" ] || exit 2 ;;
*) die "unknown command '$1' (demo, test, deps, build)" ;;
esac
