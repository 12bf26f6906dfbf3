/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* policy: is the endpoint isolated in this direction, and if so which
 * seg_policy entry decides the flow. Probe order (abi.h): the remote
 * identity before SEG_ID_ANY, narrower port blocks before wider ones, then
 * the any-protocol entries. The first hit decides. */
#ifndef SEG_BPF_POLICY_H
#define SEG_BPF_POLICY_H

#include "common.h"
#include "ipcache.h"

#define SEG_PORT_BITS 16 /* k = 0..16 wildcarded low port bits */
#define SEG_PROBE_IDS 2 /* the remote identity, then SEG_ID_ANY */
#define SEG_PMASK_PORTS (SEG_PMASK_ALLPORTS | (SEG_PMASK_ALLPORTS - 1)) /* bits k = 0..16 */

static __always_inline const struct seg_policy_val *
seg_policy_probe(__u32 policy_id, __u32 id, __u16 port, __u8 proto, __u8 dir, __u32 k)
{
	struct seg_policy_key key;

	__builtin_memset(&key, 0, sizeof(key));
	key.policy_id = policy_id;
	key.remote_id = id;
	key.port = port & (__u16)(0xffffu << k);
	key.proto = proto;
	key.dir = dir;
	key.port_wild = k;
	return bpf_map_lookup_elem(&seg_policy, &key);
}

static __always_inline const struct seg_policy_val *
seg_policy_lookup(const struct seg_endpoint *ep, __u8 dir, __u32 remote_id, __u8 proto, __u16 port)
{
	__u32 policy_id = ep->policy_id[dir & 1];
	__u32 mask = ep->port_mask[dir & 1];
	/* without ports only whole-protocol (k = 16) entries can match */
	__u32 kmask = mask & (seg_proto_has_ports(proto) ? SEG_PMASK_PORTS : SEG_PMASK_ALLPORTS);
	const struct seg_policy_val *v;
	__u32 i, k;

	for (i = 0; i < SEG_PROBE_IDS; i++) {
		__u32 id = i ? SEG_ID_ANY : remote_id;

		for (k = 0; k <= SEG_PORT_BITS; k++) {
			if (!(kmask >> k))
				break; /* no wider block is in use */
			if (!(kmask & (1u << k)))
				continue;
			v = seg_policy_probe(policy_id, id, port, proto, dir, k);
			if (v)
				return v;
		}
	}
	if (!(mask & SEG_PMASK_ANYPROTO))
		return NULL;
	v = seg_policy_probe(policy_id, remote_id, 0, 0, dir, SEG_PORT_BITS);
	if (v)
		return v;
	return seg_policy_probe(policy_id, SEG_ID_ANY, 0, 0, dir, SEG_PORT_BITS);
}

/* Decides a flow whose first packet went in direction dir: its reason
 * (allow or drop), and v->rule_id when a rule decided. v->remote_id is
 * set by the caller. */
static __always_inline int seg_policy_decide(const struct seg_endpoint *ep,
					     const struct seg_config *cfg, __u8 dir, __u8 proto,
					     __u16 port, struct seg_verdict *v)
{
	const struct seg_policy_val *pv;
	int reason;

	v->rule_id = 0;
	if (!seg_ep_isolated(ep, dir))
		return SEG_R_ALLOW_NOT_ISOLATED;
	if (v->remote_id == SEG_ID_HOST && (cfg->flags & SEG_CFG_ALLOW_HOST))
		return SEG_R_ALLOW_HOST;
	pv = seg_policy_lookup(ep, dir, v->remote_id, proto, port);
	if (pv) {
		v->rule_id = pv->rule_id;
		/* an unknown action denies: fail closed */
		reason = pv->action == SEG_ACT_ALLOW ? SEG_R_ALLOW_RULE : SEG_DROP_DENY_RULE;
	} else {
		reason = SEG_DROP_POLICY;
	}
	/* Audit: a would-deny (no rule, or a deny rule) passes, reported. */
	if (seg_reason_is_drop(reason) && (ep->flags[dir & 1] & SEG_EPF_AUDIT))
		return SEG_R_AUDIT;
	return reason;
}

#endif
