/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The established fast path, tried before the full parser.
 *
 * Most packets belong to a tracked flow and are plain: IPv4 without options
 * and not fragmented, or IPv6 without extension headers, carrying TCP or
 * UDP whose header is in the linear area. For those, a compact parse builds
 * the conntrack key, and the configuration and conntrack lookups decide at
 * once: an entry validated for this endpoint key in the current generation,
 * unexpired, not revoked, passes as SEG_R_ALLOW_ESTABLISHED with the
 * accounting seg_flow() does. Everything else (another protocol, a header
 * the full parser could refuse or must look at more closely, no entry, an
 * entry to re-check) returns 0 and takes the full pipeline,
 * which then decides it exactly as if this file did not exist: the fast
 * path takes only packets the full parser parses to the same tuple, and
 * passes only what seg_flow() passes as established. What it learned, "no
 * entry with this key", it hands on (seg_meta.ct_none) so a new flow is not
 * looked up twice. */
#ifndef SEG_BPF_FAST_H
#define SEG_BPF_FAST_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include "common.h"
#include "ct.h"
#include "account.h"

#define SEG_FAST_V4_VIHL 0x45 /* version 4, no options */
#define SEG_FAST_V4_FRAG 0x3fff /* MF | fragment offset */

/* Source and destination go to the local/remote sides of the key. */
static __always_inline void seg_fast_ports(struct seg_ct_key *k, __u8 dir, __be16 sport,
					   __be16 dport)
{
	if (dir == SEG_DIR_EGRESS) {
		k->lport = bpf_ntohs(sport);
		k->rport = bpf_ntohs(dport);
	} else {
		k->lport = bpf_ntohs(dport);
		k->rport = bpf_ntohs(sport);
	}
}

/* 0 and the conntrack key of the packet (seg_ct_key_make's) when it is
 * plain (above), else -1. Checks everything the full parser checks on such
 * a packet. k is zeroed by the caller. */
static __always_inline int seg_fast_parse(const struct seg_ctx *c, struct seg_ct_key *k,
					  __u8 *tcp_flags)
{
	__u32 *src = c->m.dir == SEG_DIR_EGRESS ? k->laddr : k->raddr;
	__u32 *dst = c->m.dir == SEG_DIR_EGRESS ? k->raddr : k->laddr;
	const struct ethhdr *eth = seg_hdr(c, 0, sizeof(*eth));
	const struct tcphdr *th;
	const struct udphdr *uh;
	__u32 off, l4len;

	if (!eth)
		return -1;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		const struct iphdr *ip = seg_hdr(c, ETH_HLEN, sizeof(*ip));
		__u32 tot;

		if (!ip || *(const __u8 *)ip != SEG_FAST_V4_VIHL ||
		    (ip->frag_off & bpf_htons(SEG_FAST_V4_FRAG)))
			return -1;
		tot = bpf_ntohs(ip->tot_len);
		/* tot_len 0 (BIG TCP) and bad lengths: the full parser */
		if (tot < sizeof(*ip) || tot > c->m.len - ETH_HLEN)
			return -1;
		l4len = tot - sizeof(*ip);
		k->proto = ip->protocol;
		seg_addr_v4(src, ip->saddr);
		seg_addr_v4(dst, ip->daddr);
		off = ETH_HLEN + sizeof(*ip);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		const struct ipv6hdr *ip6 = seg_hdr(c, ETH_HLEN, sizeof(*ip6));

		if (!ip6 || ip6->version != 6)
			return -1;
		l4len = bpf_ntohs(ip6->payload_len);
		if (ETH_HLEN + sizeof(*ip6) + l4len > c->m.len)
			return -1;
		k->proto = ip6->nexthdr; /* an extension header: not TCP/UDP below */
		__builtin_memcpy(src, &ip6->saddr, sizeof(k->laddr));
		__builtin_memcpy(dst, &ip6->daddr, sizeof(k->raddr));
		off = ETH_HLEN + sizeof(*ip6);
	} else {
		return -1;
	}
	if (k->proto == IPPROTO_TCP) {
		th = seg_hdr(c, off, sizeof(*th));
		if (!th || l4len < sizeof(*th) || th->doff < sizeof(*th) / 4)
			return -1;
		*tcp_flags = ((const __u8 *)th)[13];
		seg_fast_ports(k, c->m.dir, th->source, th->dest);
		return 0;
	}
	if (k->proto == IPPROTO_UDP) {
		uh = seg_hdr(c, off, sizeof(*uh));
		if (!uh || l4len < sizeof(*uh))
			return -1;
		*tcp_flags = 0;
		seg_fast_ports(k, c->m.dir, uh->source, uh->dest);
		return 0;
	}
	return -1;
}

/* 1: an established packet, passed and counted; 0: take the full pipeline.
 *
 * No endpoint lookup: an entry passes only while it names this packet's
 * endpoint key (ifkey) and the current seg_config.generation, i.e. the full
 * pipeline (re)checked it against the endpoint, ipcache and policy state of
 * this generation, and every writer that changes what a flow may do bumps
 * the generation after its write (docs/architecture.md, "The established
 * fast path"). A revoked entry (verdict DENY) never passes here. */
static __always_inline int seg_fast(struct seg_ctx *c)
{
	const struct seg_config *cfg;
	struct seg_verdict v = { .reason = SEG_R_ALLOW_ESTABLISHED };
	struct seg_ct_entry *e;
	struct seg_ct_key k;
	__u32 zero = 0;
	__u8 flags;

	__builtin_memset(&k, 0, sizeof(k));
	if (seg_fast_parse(c, &k, &flags))
		return 0;
	cfg = bpf_map_lookup_elem(&seg_config, &zero);
	if (!cfg)
		return 0;
	e = bpf_map_lookup_elem(&seg_ct, &k);
	if (!e) {
		c->m.ct_none = 1; /* a new flow: not looked up again */
		return 0;
	}
	/* re-checked, cut, expired or decided afresh by seg_flow() */
	if (e->ifkey != c->m.ifkey || e->generation != cfg->generation ||
	    e->verdict == SEG_VERDICT_DENY || seg_ct_expired(e, k.proto, cfg, c->m.now) ||
	    seg_ct_fresh_syn(e, c->m.dir, k.proto, flags))
		return 0;
	seg_ct_account(e, &c->m, flags);
	/* counted under its reason and in the entry, not per rule (account.h) */
	seg_account(&c->m, &v);
	return 1;
}

#endif
