/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* account: per-CPU counters by reason (every packet) and by rule id (the
 * packets a rule decided: the first packet of each flow it allowed, audited
 * or denied, the drops of a revoked flow it had allowed, ICMP errors of its
 * flows). Established packets (SEG_R_ALLOW_ESTABLISHED, also the one that
 * re-checked a flow and kept it) are counted under that reason and in the
 * flow's conntrack entry, which names the rule, not per rule: at 65 536
 * rule ids the per-CPU rule counter is a random cache line per packet. */
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
	if (!v->rule_id || v->reason == SEG_R_ALLOW_ESTABLISHED)
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
