/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * `segctl policy test`: probes over compiled manifests, decided offline
 * (lib/policy's evaluator) or by the kernel (policy_dp.c: a private data
 * path filled through lib/apply, packets through BPF_PROG_TEST_RUN).
 */
#ifndef SEGCTL_POLICY_TEST_H
#define SEGCTL_POLICY_TEST_H

#include "policy/policy.h"

#include <stdbool.h>

struct pt_probe {
	char from[96], to[96]; /* "x/a" or an address, as shown */
	struct seg_endpoint_ref src, dst;
	__u16 port;
	__u8 proto;
	struct seg_verdict v;
};

/* The kernel's answer for each probe (v filled like seg_eval does: per
 * direction verdict/reason/rule and the overall text). 0 or -errno
 * (logged); needs root. */
int pt_datapath_run(const struct seg_compiled *c, struct pt_probe *p, size_t n);

/* The reason text for a decided probe, worded like lib/policy's evaluator,
 * from its per-direction verdicts (used for the kernel's answers). */
void pt_reason_text(const struct seg_compiled *c, const struct pt_probe *p, struct seg_verdict *v);

#endif
