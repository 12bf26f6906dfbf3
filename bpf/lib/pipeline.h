/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The one pipeline every entry point runs (docs/architecture.md, "Data
 * path"): parse -> endpoint -> conntrack -> identity -> policy -> conntrack
 * create -> counters and event; the entry point maps the verdict to its
 * hook's return code.
 *
 * Everything after the parser is one global function, seg_decide(): the
 * verifier checks it once per program instead of once for every way the
 * parser can finish (which took ~60% of its 1M-instruction budget when
 * all was inlined). It sees no packet pointer: struct seg_pkt and struct
 * seg_meta carry what it needs. */
#ifndef SEG_BPF_PIPELINE_H
#define SEG_BPF_PIPELINE_H

#include "common.h"
#include "parse.h"
#include "ct.h"
#include "ipcache.h"
#include "policy.h"
#include "account.h"
#include "flow.h"
#include "fast.h"

static __always_inline void seg_set(struct seg_verdict *v, int reason, __u8 event)
{
	v->reason = reason;
	v->drop = seg_reason_is_drop(reason);
	v->event = event;
}

/* A packet the parser gave a reason for (or an ICMP error without its
 * flow): isolated in this direction -> drop; else it passes, counted under
 * that reason (nothing to enforce). */
static __always_inline void seg_unclassified(const struct seg_meta *m,
					     const struct seg_endpoint *ep, int reason,
					     struct seg_verdict *v)
{
	if (!seg_reason_is_drop(reason) || !seg_ep_isolated(ep, m->dir)) {
		v->reason = reason;
		v->drop = 0;
		v->event = 0;
		return;
	}
	seg_set(v, reason, SEG_EV_DENY);
}

/* Policy for a flow: anti-spoofing of egress flows, then the decision. */
static __always_inline int seg_flow_decide(const struct seg_meta *m, const struct seg_endpoint *ep,
					   const struct seg_config *cfg, const struct seg_ct_key *k,
					   __u8 dir, struct seg_verdict *v)
{
	__u16 port = 0;

	v->remote_id = seg_identity(k->raddr, m->epoch);
	v->rule_id = 0;
	if (dir == SEG_DIR_EGRESS && (cfg->flags & SEG_CFG_ANTISPOOF) &&
	    !seg_addr_owned(k->laddr, m->ifkey, m->epoch))
		return SEG_DROP_SPOOF;
	if (seg_proto_has_ports(k->proto))
		port = dir == SEG_DIR_EGRESS ? k->rport : k->lport;
	return seg_policy_decide(ep, cfg, dir, k->proto, port, v);
}

/* Established flow whose endpoint revision or generation moved: decide it
 * again in the direction of its first packet. Still allowed -> updated entry; not ->
 * the entry stays as a tombstone (verdict DENY, SEG_DROP_REVOKED) at the
 * new revision, so the flow stays cut in both directions: deleting it would
 * let the pod's next packet of the same flow start it over as a new flow of
 * the other direction (e.g. a server's retransmission, allowed when egress
 * is not isolated), whose "replies" would then be the revoked requests.
 * A tombstone is refreshed by the packets it drops, is decided again when
 * the revision or generation moves, and gives way to a fresh TCP SYN; the
 * fast path never passes it (verdict DENY). */
static __always_inline int seg_ct_revalidate(const struct seg_meta *m,
					     const struct seg_endpoint *ep,
					     const struct seg_config *cfg,
					     const struct seg_ct_key *k, struct seg_ct_entry *e,
					     struct seg_verdict *v)
{
	__u32 old_rule = e->rule_id;
	int r = seg_flow_decide(m, ep, cfg, k, e->dir & 1, v);

	if (seg_reason_is_drop(r)) {
		int was_cut = e->verdict == SEG_VERDICT_DENY;

		e->last_seen_ns = m->now;
		e->verdict = SEG_VERDICT_DENY;
		e->reason = SEG_DROP_REVOKED;
		seg_ct_validated(e, m);
		v->rule_id = old_rule; /* the rule that had allowed it */
		seg_set(v, SEG_DROP_REVOKED, was_cut ? SEG_EV_DENY : SEG_EV_REVOKED);
		return SEG_DROP_REVOKED;
	}
	e->rule_id = v->rule_id;
	e->remote_id = v->remote_id;
	e->reason = r;
	e->verdict = seg_reason_verdict(r);
	seg_ct_validated(e, m);
	return SEG_OK;
}

/* A packet of a flow (not L2, not an ICMP error). */
static __always_inline void seg_flow(const struct seg_meta *m, const struct seg_pkt *p,
				     const struct seg_endpoint *ep, const struct seg_config *cfg,
				     struct seg_verdict *v)
{
	struct seg_ct_key k;
	struct seg_ct_entry *e;
	int r;

	seg_ct_key_make(&k, p->saddr, p->daddr, p->sport, p->dport, p->proto, m->dir);
	/* The fast path already looked for it and found no entry. */
	if (m->ct_none)
		e = NULL;
	else
		e = seg_ct_lookup(&k, ep->ep_id, cfg, m->now);
	/* A TCP SYN without ACK opens a connection in its own direction: it is
	 * never the reply of a flow the other side opened, and it starts a cut
	 * flow over. Decided as a new flow (an allowed one replaces the entry). */
	if (e && seg_ct_fresh_syn(e, m->dir, p->proto, p->tcp_flags))
		e = NULL;
	if (e) {
		/* Established: no ipcache or policy lookup unless the
		 * endpoint's revision or the generation moved. */
		if (e->revision != m->rev || e->generation != m->gen) {
			if (seg_ct_revalidate(m, ep, cfg, &k, e, v) != SEG_OK)
				return;
		} else if (e->ifkey != m->ifkey && e->verdict != SEG_VERDICT_DENY) {
			seg_ct_validated(e, m); /* this endpoint's, now on this ifkey */
		}
		if (e->verdict == SEG_VERDICT_DENY) { /* revoked, still cut */
			e->last_seen_ns = m->now;
			v->rule_id = e->rule_id;
			v->remote_id = e->remote_id;
			seg_set(v, SEG_DROP_REVOKED, SEG_EV_DENY);
			return;
		}
		seg_ct_account(e, m, p->tcp_flags);
		v->rule_id = e->rule_id;
		v->remote_id = e->remote_id;
		seg_set(v, SEG_R_ALLOW_ESTABLISHED, 0);
		return;
	}
	r = seg_flow_decide(m, ep, cfg, &k, m->dir, v);
	if (seg_reason_is_drop(r)) {
		seg_set(v, r, SEG_EV_DENY);
		return;
	}
	seg_set(v, r, SEG_EV_NEW);
	if (seg_ct_create(&k, m, p, ep, v) &&
	    (seg_ep_isolated(ep, SEG_DIR_INGRESS) || seg_ep_isolated(ep, SEG_DIR_EGRESS)))
		seg_set(v, SEG_DROP_CT_FULL, SEG_EV_DENY); /* replies would be lost */
}

/* ICMP error: allowed when it quotes a flow this endpoint tracks. The
 * quoted packet went the other way than the error. */
static __always_inline void seg_icmp_error(const struct seg_meta *m, const struct seg_pkt *p,
					   const struct seg_endpoint *ep,
					   const struct seg_config *cfg, struct seg_verdict *v)
{
	const struct seg_tuple *q = &p->quote;
	const struct seg_ct_entry *e = NULL;
	struct seg_ct_key k;

	v->remote_id = seg_identity(m->dir == SEG_DIR_EGRESS ? p->daddr : p->saddr, m->epoch);
	if (m->dir == SEG_DIR_EGRESS && (cfg->flags & SEG_CFG_ANTISPOOF) &&
	    !seg_addr_owned(p->saddr, m->ifkey, m->epoch)) {
		seg_set(v, SEG_DROP_SPOOF, SEG_EV_DENY);
		return;
	}
	/* An error goes back to the sender of the packet it quotes: a pod
	 * cannot reach another peer by quoting one of its flows. */
	seg_ct_key_make(&k, q->saddr, q->daddr, q->sport, q->dport, q->proto, m->dir ^ 1);
	if (seg_addr_eq(p->daddr, q->saddr))
		e = seg_ct_lookup(&k, ep->ep_id, cfg, m->now);
	if (e && e->verdict != SEG_VERDICT_DENY) { /* not a revoked flow */
		v->rule_id = e->rule_id;
		seg_set(v, SEG_R_ALLOW_RELATED, 0);
		return;
	}
	seg_unclassified(m, ep, SEG_DROP_ICMP_UNTRACKED, v);
}

/* Decides a parsed packet: returns 1 to drop, 0 to pass. Global (not
 * inlined, verified on its own); p and m point to the caller's stack. */
__attribute__((noinline)) int seg_decide(struct seg_pkt *p, struct seg_meta *m)
{
	const struct seg_endpoint *ep;
	const struct seg_config *cfg;
	struct seg_verdict v = {};
	__u32 zero = 0, ifkey;

	if (!p || !m)
		return 1;
	cfg = bpf_map_lookup_elem(&seg_config, &zero);
	if (!cfg) /* cannot happen: an array's entry 0 always exists */
		return 1;
	ifkey = m->ifkey;
	/* The generation before the epoch and any state it covers: writers
	 * bump it after their writes (a flip writes both in one update), so a
	 * packet that sees a generation sees at least that state. */
	m->gen = *(volatile const __u32 *)&cfg->generation;
	m->epoch = *(volatile const __u32 *)&cfg->epoch & 1;
	ep = seg_epoch_lookup(m->epoch, seg_endpoints, seg_endpoints1, &ifkey);
	if (ep)
		m->rev = ep->revision + m->gen;
	if (!ep) {
		seg_set(&v, SEG_DROP_NO_ENDPOINT, SEG_EV_DENY);
		if (cfg->flags & SEG_CFG_PASS_NO_ENDPOINT) {
			v.drop = 0;
			v.event = 0;
		}
	} else if (m->parse != SEG_OK) {
		seg_unclassified(m, ep, m->parse, &v);
		if (v.event && p->family) /* name the peer in the event */
			v.remote_id = seg_identity(m->dir == SEG_DIR_EGRESS ? p->daddr : p->saddr,
						   m->epoch);
	} else if (p->kind == SEG_PK_ICMP_ERR) {
		seg_icmp_error(m, p, ep, cfg, &v);
	} else {
		seg_flow(m, p, ep, cfg, &v);
	}
	seg_account(m, &v);
	if (v.event)
		seg_event(m, p, ep, &v, cfg);
	return v.drop;
}

/* Parse (TC: once more after pulling non-linear headers; an ICMP error's
 * quote), then decide. ctx: the __sk_buff or xdp_md; is_xdp is a constant
 * at each entry point. */
static __always_inline int seg_pipeline(struct seg_ctx *c, void *ctx, const int is_xdp)
{
	struct seg_pkt p;

	c->m.now = bpf_ktime_get_coarse_ns(); /* ~20 ns less than ktime_get_ns */
	if (seg_fast(c))
		return 0; /* established: passed and counted */
	c->m.parse = seg_parse(c, &p);
	if (!is_xdp && c->m.parse == SEG_DROP_TRUNCATED && seg_skb_pull(c, ctx))
		c->m.parse = seg_parse(c, &p);
	if (c->m.parse == SEG_OK && p.kind == SEG_PK_ICMP_ERR)
		c->m.parse = seg_parse_quote(&p, ctx, is_xdp);
	return seg_decide(&p, &c->m);
}

#endif
