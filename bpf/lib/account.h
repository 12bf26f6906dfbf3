/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* account: per-CPU counters by reason (every packet) and by rule id
 * (every packet a rule decided, established ones included). */
#ifndef SEG_BPF_ACCOUNT_H
#define SEG_BPF_ACCOUNT_H

#include "common.h"

static __always_inline void seg_account(const struct seg_meta *m, const struct seg_verdict *v)
{
	__u32 key = v->reason;
	struct seg_counter *rc;
	struct seg_rule_counter *ru;

	rc = bpf_map_lookup_elem(&seg_reasons, &key);
	if (rc) {
		rc->packets++;
		rc->bytes += m->len;
	}
	if (!v->rule_id)
		return; /* 0 = no rule */
	key = v->rule_id;
	ru = bpf_map_lookup_elem(&seg_rules, &key);
	if (ru) {
		ru->packets++;
		ru->bytes += m->len;
		ru->last_hit_ns = m->now;
	}
}

#endif
