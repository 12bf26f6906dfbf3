/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Conntrack: one seg_ct entry per endpoint and flow, keyed from the
 * endpoint's view (local = the pod's side), so both directions of a flow
 * find it. Timeouts are checked on lookup; expired = a new flow. */
#ifndef SEG_BPF_CT_H
#define SEG_BPF_CT_H

#include "common.h"

#define SEG_TCP_FIN 0x01
#define SEG_TCP_SYN 0x02
#define SEG_TCP_RST 0x04
#define SEG_TCP_ACK 0x10

/* Key of a packet (saddr -> daddr) travelling in direction dir. */
static __always_inline void seg_ct_key_make(struct seg_ct_key *k, const __u32 saddr[4],
					    const __u32 daddr[4], __u16 sport, __u16 dport,
					    __u8 proto, __u8 dir)
{
	__builtin_memset(k, 0, sizeof(*k));
	if (dir == SEG_DIR_EGRESS) {
		seg_addr_copy(k->laddr, saddr);
		seg_addr_copy(k->raddr, daddr);
		k->lport = sport;
		k->rport = dport;
	} else {
		seg_addr_copy(k->laddr, daddr);
		seg_addr_copy(k->raddr, saddr);
		k->lport = dport;
		k->rport = sport;
	}
	k->proto = proto;
}

static __always_inline __u64 seg_ct_timeout_ns(const struct seg_ct_entry *e, __u8 proto,
					       const struct seg_config *cfg)
{
	__u32 s;

	if (proto != IPPROTO_TCP) {
		s = cfg->ct_timeout_other ? cfg->ct_timeout_other : SEG_CT_TIMEOUT_OTHER;
	} else if ((e->tcp_flags[0] | e->tcp_flags[1]) & (SEG_TCP_FIN | SEG_TCP_RST)) {
		s = cfg->ct_timeout_tcp_close ? cfg->ct_timeout_tcp_close :
						SEG_CT_TIMEOUT_TCP_CLOSE;
	} else {
		s = cfg->ct_timeout_tcp ? cfg->ct_timeout_tcp : SEG_CT_TIMEOUT_TCP;
	}
	return (__u64)s * SEG_NSEC_PER_SEC;
}

static __always_inline int seg_ct_expired(const struct seg_ct_entry *e, __u8 proto,
					  const struct seg_config *cfg, __u64 now)
{
	/* last_seen may be a little ahead: another CPU wrote it meanwhile */
	return now > e->last_seen_ns && now - e->last_seen_ns > seg_ct_timeout_ns(e, proto, cfg);
}

/* The entry of key k for endpoint ep_id, or NULL (none, another endpoint's
 * leftover, or expired). */
static __always_inline struct seg_ct_entry *seg_ct_lookup(const struct seg_ct_key *k, __u32 ep_id,
							  const struct seg_config *cfg, __u64 now)
{
	struct seg_ct_entry *e = bpf_map_lookup_elem(&seg_ct, k);

	if (!e || e->ep_id != ep_id || seg_ct_expired(e, k->proto, cfg, now))
		return NULL;
	return e;
}

/* Entry e was (re)checked by the full pipeline against the state this
 * packet sees (endpoint revision and generation m->rev, m->gen): the fast
 * path may pass its packets from now on, until the generation moves. The
 * generation is written last, after the verdict and rule, by the caller's
 * order of stores (a barrier keeps the compiler from moving it up). */
static __always_inline void seg_ct_validated(struct seg_ct_entry *e, const struct seg_meta *m)
{
	if (e->revision != m->rev)
		e->revision = m->rev;
	if (e->ifkey != m->ifkey)
		e->ifkey = m->ifkey;
	asm volatile("" ::: "memory");
	if (e->generation != m->gen)
		e->generation = m->gen;
}

/* A TCP SYN without ACK that must be decided as a new flow, not passed on
 * entry e: one against the entry's direction (the other side opening a
 * connection is not a reply), or any on a revoked flow (a new connection
 * reusing the tuple). */
static __always_inline int seg_ct_fresh_syn(const struct seg_ct_entry *e, __u8 dir, __u8 proto,
					    __u8 f)
{
	if (proto != IPPROTO_TCP || (f & (SEG_TCP_SYN | SEG_TCP_ACK)) != SEG_TCP_SYN)
		return 0;
	return (e->dir & 1) != (dir & 1) || e->verdict == SEG_VERDICT_DENY;
}

/* An established packet (TCP flags f): counters of its direction, flags,
 * last seen. */
static __always_inline void seg_ct_account(struct seg_ct_entry *e, const struct seg_meta *m, __u8 f)
{
	__u8 d = m->dir & 1;

	/* Plain adds, not atomics (~15 ns less per packet): packets of one
	 * direction of one flow are handled by one CPU at a time in practice
	 * (one socket, one RSS queue), and the directions use separate words. */
	e->packets[d]++;
	e->bytes[d] += m->len;
	if (f) {
		/* A fresh SYN on a closed flow (port reuse) starts it over, so the
		 * short after-FIN timeout no longer applies. */
		if ((f & (SEG_TCP_SYN | SEG_TCP_ACK)) == SEG_TCP_SYN &&
		    ((e->tcp_flags[0] | e->tcp_flags[1]) & (SEG_TCP_FIN | SEG_TCP_RST))) {
			e->tcp_flags[d ^ 1] = 0;
			e->tcp_flags[d] = f;
		} else if ((e->tcp_flags[d] | f) != e->tcp_flags[d]) {
			e->tcp_flags[d] |= f;
		}
	}
	e->last_seen_ns = m->now;
}

/* Creates (or replaces an expired) entry for a new flow. 0 or -errno. */
static __always_inline int seg_ct_create(const struct seg_ct_key *k, const struct seg_meta *m,
					 const struct seg_pkt *p, const struct seg_endpoint *ep,
					 const struct seg_verdict *v)
{
	struct seg_ct_entry e = {};

	e.first_seen_ns = m->now;
	e.last_seen_ns = m->now;
	/* constant indexes: the verifier refuses variable stack offsets
	 * the compiler builds with OR */
	if (m->dir == SEG_DIR_EGRESS) {
		e.packets[SEG_DIR_EGRESS] = 1;
		e.bytes[SEG_DIR_EGRESS] = m->len;
		e.tcp_flags[SEG_DIR_EGRESS] = p->tcp_flags;
	} else {
		e.packets[SEG_DIR_INGRESS] = 1;
		e.bytes[SEG_DIR_INGRESS] = m->len;
		e.tcp_flags[SEG_DIR_INGRESS] = p->tcp_flags;
	}
	e.revision = m->rev;
	e.generation = m->gen;
	e.ifkey = m->ifkey;
	e.rule_id = v->rule_id;
	e.remote_id = v->remote_id;
	e.ep_id = ep->ep_id;
	e.dir = m->dir;
	e.verdict = seg_reason_verdict(v->reason);
	e.reason = v->reason;
	return bpf_map_update_elem(&seg_ct, k, &e, BPF_ANY);
}

#endif
