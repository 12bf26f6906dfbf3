/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* flow events: seg_flow_event records in the seg_events ring buffer,
 * limited by a per-endpoint, per-CPU token bucket (seg_evt_rl). What the
 * bucket suppresses, and what a full ring buffer loses, is counted in the
 * bucket (suppressed, suppressed_total) and the count rides on the next
 * event sent. */
#ifndef SEG_BPF_FLOW_H
#define SEG_BPF_FLOW_H

#include "common.h"

#define SEG_MILLI 1000ull
#define SEG_NSEC_PER_USEC 1000ull
#define SEG_USEC_PER_SEC 1000000ull
/* Refill at most this much idle time at once (keeps the product small). */
#define SEG_RL_MAX_IDLE_US (10 * SEG_USEC_PER_SEC)

/* This endpoint's bucket on this CPU, created full on first use. */
static __always_inline struct seg_evt_rl *seg_rl_get(__u32 ifkey)
{
	struct seg_evt_rl *rl = bpf_map_lookup_elem(&seg_evt_rl, &ifkey);
	struct seg_evt_rl fresh = {};

	if (rl)
		return rl;
	/* last_ns = 0: the first take fills the bucket. */
	bpf_map_update_elem(&seg_evt_rl, &ifkey, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&seg_evt_rl, &ifkey);
}

/* 1 when a token was taken (or there is no limit). */
static __always_inline int seg_rl_take(struct seg_evt_rl *rl, const struct seg_config *cfg,
				       __u64 now)
{
	__u64 rate = cfg->evt_rate;
	__u64 cap = (__u64)(cfg->evt_burst ? cfg->evt_burst : cfg->evt_rate) * SEG_MILLI;
	__u64 idle_us, add;

	if (!rate)
		return 1;
	if (!rl->last_ns) /* new bucket (on this CPU): full */
		rl->tokens_milli = cap;
	idle_us = now > rl->last_ns ? (now - rl->last_ns) / SEG_NSEC_PER_USEC : 0;
	if (idle_us > SEG_RL_MAX_IDLE_US)
		idle_us = SEG_RL_MAX_IDLE_US;
	/* milli-tokens: idle_us * rate / 1e6 tokens. Time too short to earn
	 * one milli-token is not consumed (last_ns stays), so slow rates still
	 * refill. */
	add = idle_us * rate / SEG_MILLI;
	if (add) {
		rl->tokens_milli += add;
		if (rl->tokens_milli > cap)
			rl->tokens_milli = cap;
		rl->last_ns = now;
	}
	if (rl->tokens_milli < SEG_MILLI)
		return 0;
	rl->tokens_milli -= SEG_MILLI;
	return 1;
}

static __always_inline void seg_rl_suppress(struct seg_evt_rl *rl)
{
	if (!rl)
		return;
	rl->suppressed++;
	rl->suppressed_total++;
}

static __always_inline void seg_event(const struct seg_meta *m, const struct seg_pkt *p,
				      const struct seg_endpoint *ep, const struct seg_verdict *v,
				      const struct seg_config *cfg)
{
	struct seg_evt_rl *rl = seg_rl_get(m->ifkey);
	struct seg_flow_event *ev;

	if (rl && !seg_rl_take(rl, cfg, m->now)) {
		seg_rl_suppress(rl);
		return;
	}
	ev = bpf_ringbuf_reserve(&seg_events, sizeof(*ev), 0);
	if (!ev) {
		seg_rl_suppress(rl); /* ring buffer full: counted as suppressed */
		return;
	}
	ev->ts_ns = bpf_ktime_get_ns(); /* events only: precise */
	seg_addr_copy(ev->saddr, p->saddr);
	seg_addr_copy(ev->daddr, p->daddr);
	ev->sport = p->sport;
	ev->dport = p->dport;
	ev->ifkey = m->ifkey;
	ev->ep_id = ep ? ep->ep_id : 0;
	ev->local_id = ep ? ep->identity : 0;
	ev->remote_id = v->remote_id;
	ev->rule_id = v->rule_id;
	ev->pkt_len = m->len;
	ev->suppressed = 0;
	if (rl) {
		ev->suppressed = rl->suppressed;
		rl->suppressed = 0;
	}
	ev->type = v->event;
	ev->dir = m->dir;
	ev->proto = p->proto;
	ev->family = p->family;
	ev->verdict = seg_reason_verdict(v->reason);
	ev->reason = v->reason;
	ev->tcp_flags = p->tcp_flags;
	ev->_pad = 0;
	bpf_ringbuf_submit(ev, 0);
}

#endif
