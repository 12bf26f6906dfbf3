/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What every pipeline stage shares: the context abstraction over
 * __sk_buff / xdp_md, the parsed packet, the verdict being built, and
 * small address helpers. Stages return SEG_OK (go on) or a reason. */
#ifndef SEG_BPF_COMMON_H
#define SEG_BPF_COMMON_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <seg/abi.h>

#include "maps.h"

/* Not a reason: "this stage has no verdict, go on". Reasons are 0..63. */
#define SEG_OK (-1)

/* Bytes made linear by bpf_skb_pull_data when headers are not (TC only). */
#define SEG_PULL_LEN 512
/* Largest header offset the parser follows (keeps offsets bounded). */
#define SEG_HDR_OFF_MAX 1024

#define SEG_NSEC_PER_SEC 1000000000ull

/* Packet kinds the parser tells apart (struct seg_pkt.kind). */
#define SEG_PK_FLOW 0 /* a packet of some flow: tuple valid */
#define SEG_PK_ICMP_ERR 1 /* ICMP error: quote_off, then quote (seg_parse_quote) */

/* What the stages after the parser know of the packet besides its
 * headers: plain scalars, so it can be handed to the decision function. */
struct seg_meta {
	__u64 now; /* bpf_ktime_get_coarse_ns() once per packet (CT, counters) */
	__u32 len; /* packet bytes, for counters and length checks */
	__u32 ifkey;
	__u32 dir; /* SEG_DIR_* */
	__s32 parse; /* parser result: SEG_OK or a reason */
	__u32 epoch; /* seg_config.epoch, read once per packet */
	__u32 gen; /* seg_config.generation, read once, before the endpoint */
	__u32 rev; /* endpoint revision + gen: CT entries made under another
		    * value (or another gen) are re-checked */
	__u32 ct_none; /* 1: the fast path found no conntrack entry with
			* this packet's key (fast.h) */
};

/* The hook's context as the parser sees it. data/data_end are set by the
 * entry point and re-derived after anything that may move the packet. */
struct seg_ctx {
	void *data;
	void *data_end;
	struct seg_meta m;
	__u32 pulled;
	__u32 _pad;
};

/* A packet's addresses, ports and protocol as sent (not endpoint view). */
struct seg_tuple {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport; /* host order */
	__u16 dport;
	__u8 proto;
	__u8 _pad[3];
};

struct seg_pkt {
	__u32 saddr[4]; /* v4-mapped for IPv4 */
	__u32 daddr[4];
	__u16 sport; /* host order; ICMP echo: id in both */
	__u16 dport;
	__u8 proto;
	__u8 family; /* 4, 6; 0 = not IP */
	__u8 tcp_flags;
	__u8 kind; /* SEG_PK_* */
	__u8 hop_limit; /* IPv6 only (neighbour discovery needs 255) */
	__u8 _pad2;
	__u16 quote_off; /* SEG_PK_ICMP_ERR: frame offset of the quoted packet */
	__u16 quote_end; /* ... and of the end of the datagram quoting it */
	struct seg_tuple quote; /* SEG_PK_ICMP_ERR: the packet it quotes */
};

struct seg_verdict {
	__u32 rule_id;
	__u32 remote_id;
	__u8 reason; /* enum seg_reason */
	__u8 drop;
	__u8 event; /* SEG_EV_*, 0 = none */
	__u8 _pad;
};

/* Pointer to len bytes at off, or NULL when they are not in the (linear)
 * packet. len is a compile-time constant at every call site. */
static __always_inline void *seg_hdr(const struct seg_ctx *c, __u32 off, __u32 len)
{
	void *data = c->data;

	if (off > SEG_HDR_OFF_MAX)
		return NULL;
	if (data + off + len > c->data_end)
		return NULL;
	return data + off;
}

/* TC: make up to SEG_PULL_LEN bytes linear, once, when the headers were not.
 * Returns 1 when it did (the caller parses again). */
static __always_inline int seg_skb_pull(struct seg_ctx *c, struct __sk_buff *skb)
{
	__u32 linear, want;

	if (c->pulled)
		return 0;
	c->pulled = 1;
	linear = skb->data_end - skb->data;
	want = skb->len < SEG_PULL_LEN ? skb->len : SEG_PULL_LEN;
	if (linear >= want || bpf_skb_pull_data(skb, want))
		return 0;
	c->data = (void *)(long)skb->data;
	c->data_end = (void *)(long)skb->data_end;
	return 1;
}

static __always_inline void seg_addr_v4(__u32 a[4], __be32 v4)
{
	a[0] = 0;
	a[1] = 0;
	a[2] = bpf_htonl(0xffff);
	a[3] = v4;
}

static __always_inline void seg_addr_copy(__u32 dst[4], const __u32 src[4])
{
	dst[0] = src[0];
	dst[1] = src[1];
	dst[2] = src[2];
	dst[3] = src[3];
}

static __always_inline int seg_addr_eq(const __u32 a[4], const __u32 b[4])
{
	return !((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]));
}

static __always_inline int seg_proto_has_ports(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

static __always_inline int seg_reason_is_drop(int reason)
{
	return reason >= SEG_DROP_POLICY;
}

static __always_inline __u8 seg_reason_verdict(int reason)
{
	if (reason == SEG_R_AUDIT)
		return SEG_VERDICT_AUDIT;
	return seg_reason_is_drop(reason) ? SEG_VERDICT_DENY : SEG_VERDICT_ALLOW;
}

static __always_inline int seg_ep_isolated(const struct seg_endpoint *ep, __u8 dir)
{
	return ep->flags[dir & 1] & SEG_EPF_ISOLATED;
}

#endif
