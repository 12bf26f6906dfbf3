// SPDX-License-Identifier: GPL-2.0-only
/*
 * BPF_PROG_TEST_RUN suite for bpf/seg_dp.bpf.c: the real skeleton, maps
 * filled through it, crafted packets, asserts on verdict, reason counters,
 * rule counters, conntrack and ring-buffer events. Needs root (exit 77).
 */
#include <stdio.h>
#include <unistd.h>

#include "suites.h"

int main(void)
{
	int failed = 0;

	if (geteuid() != 0) {
		fprintf(stderr, "bpf tests: need root to load BPF programs, skipping\n");
		return 77;
	}
	failed += run_verdict_tests();
	failed += run_policy_tests();
	failed += run_flow_tests();
	failed += run_hostile_tests();
	failed += run_account_tests();
	failed += run_fuzz_tests();
	failed += run_multi_tests();
	return failed ? 1 : 0;
}
