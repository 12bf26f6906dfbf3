/* SPDX-License-Identifier: GPL-2.0-only */
/* The groups of the BPF suite; each returns its number of failed tests. */
#ifndef SEG_TEST_SUITES_H
#define SEG_TEST_SUITES_H

int run_verdict_tests(void);
int run_policy_tests(void);
int run_flow_tests(void);
int run_hostile_tests(void);
int run_account_tests(void);
int run_fuzz_tests(void);
int run_multi_tests(void); /* last: moves the process to its own netns */

#endif
