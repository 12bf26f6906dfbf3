#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time (see tests/fuzz/README.md):
#   run.sh BINARY SEED_DIR WORK_DIR MAX_LEN
# SEG_FUZZ_SECONDS sets the time (default 60; CI uses the default). The seed
# corpus (tests/fuzz/corpus/<target>, regressions included) is replayed
# first; new inputs go to WORK_DIR/corpus, crashers to WORK_DIR/artifacts.
# Fails on a crash, a leak, UB, an input slower than 25 s, an invariant
# breach (the targets abort), or if fewer than 100 inputs ran.
set -u
bin=$1 seeds=$2 work=$3 maxlen=$4
secs=${SEG_FUZZ_SECONDS:-60}
name=$(basename "$bin")
log=$work/$name.log

mkdir -p "$work/corpus" "$work/artifacts"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:halt_on_error=1"
echo "$name: fuzzing for ${secs}s, seeds $seeds, log $log"
timeout -k 10 $((secs + 300)) "$bin" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 \
	-max_len="$maxlen" -detect_leaks=1 -print_final_stats=1 \
	-artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds" >"$log" 2>&1
rc=$?
# The interesting part of the log: everything but progress lines.
grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|RELOAD)|^[[:space:]]+NEW_FUNC|^"' "$log" | tail -40
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
corpus=$(find "$work/corpus" -type f | wc -l)
echo "FIGURES $name: ${runs:-0} inputs in ${secs}s (${rate:-0}/s), corpus $corpus, exit $rc"
if [ "$rc" != 0 ]; then
	echo "$name: FAILED (exit $rc). Reproduce: $bin $work/artifacts/<file>" >&2
	ls -l "$work/artifacts" >&2
	exit 1
fi
if [ "${runs:-0}" -lt 100 ]; then
	echo "$name: FAILED: only ${runs:-0} inputs ran" >&2
	exit 1
fi
