/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* parse: Ethernet -> IPv4/IPv6 (options, extension headers, fragments) ->
 * TCP/UDP/SCTP/ICMP/ICMPv6, every access bounds-checked. Fills struct
 * seg_pkt and returns SEG_OK, SEG_R_ALLOW_L2 (ARP, IPv6 ND) or the
 * SEG_DROP_* reason the packet cannot be classified for. The packet an ICMP
 * error quotes is read separately, by seg_parse_quote() (end of file). */
#ifndef SEG_BPF_PARSE_H
#define SEG_BPF_PARSE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/icmpv6.h>

#include "common.h"

/* Fixed L4 header parts the parser needs. */
#define SEG_TCP_HLEN 20
#define SEG_UDP_HLEN 8
#define SEG_SCTP_HLEN 12 /* common header */
#define SEG_ICMP_HLEN 8 /* type, code, csum, id/seq or unused */
#define SEG_QUOTE_L4_LEN 8 /* bytes of L4 an ICMP error quotes (RFC 792) */

/* ICMP types (linux/icmp.h drags in libc headers). */
#define SEG_ICMP_ECHOREPLY 0
#define SEG_ICMP_DEST_UNREACH 3
#define SEG_ICMP_SOURCE_QUENCH 4
#define SEG_ICMP_REDIRECT 5
#define SEG_ICMP_ECHO 8
#define SEG_ICMP_TIME_EXCEEDED 11
#define SEG_ICMP_PARAMETERPROB 12

#define SEG_IP4_MF 0x2000
#define SEG_IP4_OFFSET 0x1fff
#define SEG_IP6_FRAG_MF 0x0001
#define SEG_IP6_FRAG_OFFSET 0xfff8

/* ND: router/neighbour solicitation/advertisement, redirect. */
#define SEG_ND_FIRST 133
#define SEG_ND_LAST 137
#define SEG_ND_HOP_LIMIT 255

/* IPv6 fragment header (RFC 8200 4.5); not in the UAPI headers. */
struct seg_ip6_frag {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off; /* offset << 3 | M */
	__be32 identification;
};

/* Fragment state of the datagram being parsed. */
struct seg_frag_info {
	__u32 id;
	__u8 is_frag; /* some fragment (MF set or offset != 0) */
	__u8 later; /* offset != 0: no L4 header */
	__u8 proto; /* protocol the fragment map is keyed with */
	__u8 _pad;
};

static __always_inline int seg_icmp_is_error(__u8 family, __u8 type)
{
	if (family == 4)
		return type == SEG_ICMP_DEST_UNREACH || type == SEG_ICMP_SOURCE_QUENCH ||
		       type == SEG_ICMP_REDIRECT || type == SEG_ICMP_TIME_EXCEEDED ||
		       type == SEG_ICMP_PARAMETERPROB;
	return type >= ICMPV6_DEST_UNREACH && type <= ICMPV6_PARAMPROB;
}

static __always_inline int seg_icmp_is_echo(__u8 family, __u8 type)
{
	if (family == 4)
		return type == SEG_ICMP_ECHO || type == SEG_ICMP_ECHOREPLY;
	return type == ICMPV6_ECHO_REQUEST || type == ICMPV6_ECHO_REPLY;
}

/* Ports of an L4 header: TCP, UDP and SCTP keep them at the same offsets;
 * ICMP echo uses its id as both. Needs SEG_QUOTE_L4_LEN bytes at l4. */
static __always_inline void seg_l4_ports(const __u8 *l4, __u8 family, __u8 proto, __u16 *sport,
					 __u16 *dport)
{
	*sport = 0;
	*dport = 0;
	if (seg_proto_has_ports(proto)) {
		*sport = bpf_ntohs(*(__be16 *)l4);
		*dport = bpf_ntohs(*(__be16 *)(l4 + 2));
	} else if ((proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) &&
		   seg_icmp_is_echo(family, l4[0])) {
		*sport = bpf_ntohs(*(__be16 *)(l4 + 4));
		*dport = *sport;
	}
}

static __always_inline int seg_ip6_is_ext(__u8 nh)
{
	return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS ||
	       nh == IPPROTO_FRAGMENT || nh == IPPROTO_AH;
}

/* Length of the extension header at h (type nh). */
static __always_inline __u32 seg_ip6_ext_len(__u8 nh, const __u8 *h)
{
	if (nh == IPPROTO_FRAGMENT)
		return 8;
	if (nh == IPPROTO_AH)
		return ((__u32)h[1] + 2) * 4;
	return ((__u32)h[1] + 1) * 8;
}

/* L4 at off, with l4len bytes of it in this datagram (per the IP header). */
static __always_inline int seg_parse_l4(const struct seg_ctx *c, struct seg_pkt *p, __u32 off,
					__u32 l4len, const struct seg_frag_info *fi)
{
	int short_reason = fi->is_frag ? SEG_DROP_FRAG_TINY : SEG_DROP_TRUNCATED;
	const __u8 *l4;
	__u32 need;

	switch (p->proto) {
	case IPPROTO_TCP:
		need = SEG_TCP_HLEN;
		break;
	case IPPROTO_UDP:
		need = SEG_UDP_HLEN;
		break;
	case IPPROTO_SCTP:
		need = SEG_SCTP_HLEN;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if ((p->proto == IPPROTO_ICMP) != (p->family == 4))
			return SEG_OK; /* ICMP in IPv6 or ICMPv6 in IPv4: no ports */
		need = SEG_ICMP_HLEN;
		break;
	default:
		return SEG_OK; /* no ports */
	}
	if (l4len < need)
		return short_reason;
	/* Every header above is at least SEG_QUOTE_L4_LEN long. */
	l4 = seg_hdr(c, off, SEG_QUOTE_L4_LEN);
	if (!l4)
		return SEG_DROP_TRUNCATED;
	if (p->proto == IPPROTO_TCP) {
		const struct tcphdr *th = seg_hdr(c, off, SEG_TCP_HLEN);

		if (!th)
			return SEG_DROP_TRUNCATED;
		if (th->doff < SEG_TCP_HLEN / 4)
			return SEG_DROP_BAD_LEN;
		p->tcp_flags = ((const __u8 *)th)[13];
	} else if (p->proto == IPPROTO_SCTP) {
		if (!seg_hdr(c, off, SEG_SCTP_HLEN))
			return SEG_DROP_TRUNCATED;
	}
	seg_l4_ports(l4, p->family, p->proto, &p->sport, &p->dport);
	if (seg_proto_has_ports(p->proto))
		return SEG_OK;
	/* ICMP / ICMPv6 */
	/* ND passes like ARP, but only as RFC 4861 has it: hop limit 255
	 * (never routed). Anything else with an ND type is ICMPv6 for the
	 * policy to decide, so it cannot carry data past an isolated pod. */
	if (p->family == 6 && l4[0] >= SEG_ND_FIRST && l4[0] <= SEG_ND_LAST &&
	    p->hop_limit == SEG_ND_HOP_LIMIT)
		return SEG_R_ALLOW_L2;
	if (seg_icmp_is_error(p->family, l4[0])) {
		/* the quote is read by seg_parse_quote() */
		p->kind = SEG_PK_ICMP_ERR;
		p->quote_off = off + SEG_ICMP_HLEN;
		p->quote_end = off + l4len > 0xffff ? 0xffff : off + l4len;
	}
	return SEG_OK;
}

static __always_inline void seg_frag_key_make(struct seg_frag_key *k, const struct seg_pkt *p,
					      const struct seg_frag_info *fi)
{
	__builtin_memset(k, 0, sizeof(*k));
	seg_addr_copy(k->saddr, p->saddr);
	seg_addr_copy(k->daddr, p->daddr);
	k->id = fi->id;
	k->proto = fi->proto;
}

/* After the L4 part: later fragments take the ports their first fragment
 * recorded; a first fragment records them. */
static __always_inline int seg_parse_frag(const struct seg_ctx *c, struct seg_pkt *p, __u32 off,
					  __u32 l4len, const struct seg_frag_info *fi)
{
	struct seg_frag_key k;
	struct seg_frag_val v = {};
	const struct seg_frag_val *hv;
	int r;

	if (fi->later) {
		seg_frag_key_make(&k, p, fi);
		hv = bpf_map_lookup_elem(&seg_frag, &k);
		if (!hv)
			return SEG_DROP_FRAG_NO_HEAD;
		p->sport = hv->sport;
		p->dport = hv->dport;
		return SEG_OK;
	}
	r = seg_parse_l4(c, p, off, l4len, fi);
	/* ICMP errors are never fragmented legitimately: later parts of one
	 * find no head and are dropped where isolated. */
	if (r != SEG_OK || !fi->is_frag || p->kind != SEG_PK_FLOW)
		return r;
	seg_frag_key_make(&k, p, fi);
	v.sport = p->sport;
	v.dport = p->dport;
	bpf_map_update_elem(&seg_frag, &k, &v, BPF_ANY); /* a miss: later parts drop */
	return SEG_OK;
}

static __always_inline int seg_parse_v4(const struct seg_ctx *c, struct seg_pkt *p, __u32 off)
{
	const struct iphdr *ip = seg_hdr(c, off, sizeof(*ip));
	struct seg_frag_info fi = {};
	__u32 hlen, tot, avail = c->m.len - off;
	__u16 frag;

	if (!ip)
		return SEG_DROP_TRUNCATED;
	if (ip->version != 4 || ip->ihl < 5)
		return SEG_DROP_BAD_LEN;
	hlen = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (tot == 0 && avail > 0xffff)
		tot = avail; /* BIG TCP GSO packet */
	if (tot < hlen || tot > avail)
		return SEG_DROP_BAD_LEN;
	p->family = 4;
	p->proto = ip->protocol;
	seg_addr_v4(p->saddr, ip->saddr);
	seg_addr_v4(p->daddr, ip->daddr);
	frag = bpf_ntohs(ip->frag_off);
	fi.is_frag = (frag & (SEG_IP4_MF | SEG_IP4_OFFSET)) != 0;
	fi.later = (frag & SEG_IP4_OFFSET) != 0;
	fi.id = bpf_ntohs(ip->id);
	fi.proto = p->proto;
	return seg_parse_frag(c, p, off + hlen, tot - hlen, &fi);
}

static __always_inline int seg_parse_v6(const struct seg_ctx *c, struct seg_pkt *p, __u32 off)
{
	const struct ipv6hdr *ip6 = seg_hdr(c, off, sizeof(*ip6));
	struct seg_frag_info fi = {};
	__u32 end, avail = c->m.len - off;
	__u8 nh;
	int i;

	if (!ip6)
		return SEG_DROP_TRUNCATED;
	if (ip6->version != 6)
		return SEG_DROP_BAD_LEN;
	end = off + sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	if (ip6->payload_len == 0 && avail > 0xffff + sizeof(*ip6))
		end = c->m.len; /* BIG TCP GSO packet */
	if (end > c->m.len)
		return SEG_DROP_BAD_LEN;
	p->family = 6;
	p->hop_limit = ip6->hop_limit;
	__builtin_memcpy(p->saddr, &ip6->saddr, sizeof(p->saddr));
	__builtin_memcpy(p->daddr, &ip6->daddr, sizeof(p->daddr));
	nh = ip6->nexthdr;
	off += sizeof(*ip6);

	for (i = 0; i < SEG_MAX_EXTHDR && seg_ip6_is_ext(nh) && !fi.later; i++) {
		const __u8 *h = seg_hdr(c, off, 8);

		if (!h)
			return SEG_DROP_TRUNCATED;
		if (nh == IPPROTO_FRAGMENT) {
			const struct seg_ip6_frag *fh = (const void *)h;
			__u16 fo = bpf_ntohs(fh->frag_off);

			if (fi.is_frag)
				return SEG_DROP_EXTHDR; /* two fragment headers */
			fi.is_frag = 1;
			fi.later = (fo & SEG_IP6_FRAG_OFFSET) != 0;
			fi.id = bpf_ntohl(fh->identification);
			fi.proto = fh->nexthdr;
		}
		off += seg_ip6_ext_len(nh, h);
		nh = h[0];
		if (off > end)
			return SEG_DROP_BAD_LEN;
	}
	if (seg_ip6_is_ext(nh) && !fi.later)
		return SEG_DROP_EXTHDR;
	/* Later fragments: the protocol is the fragment header's next header.
	 * ESP and no-next-header: no ports. */
	p->proto = nh;
	return seg_parse_frag(c, p, off, end - off, &fi);
}

static __attribute__((noinline)) int seg_parse(struct seg_ctx *c, struct seg_pkt *p)
{
	const struct ethhdr *eth;

	__builtin_memset(p, 0, sizeof(*p));
	eth = seg_hdr(c, 0, sizeof(*eth));
	if (!eth)
		return SEG_DROP_TRUNCATED;
	switch (eth->h_proto) {
	case bpf_htons(ETH_P_IP):
		return seg_parse_v4(c, p, sizeof(*eth));
	case bpf_htons(ETH_P_IPV6):
		return seg_parse_v6(c, p, sizeof(*eth));
	case bpf_htons(ETH_P_ARP):
		return SEG_R_ALLOW_L2;
	default:
		return SEG_DROP_UNKNOWN_L3;
	}
}

/* ---- the packet an ICMP error quotes ---------------------------------------
 * Read with bpf_skb_load_bytes / bpf_xdp_load_bytes rather than packet
 * pointers: its offsets then need no exact range in the verifier, so this
 * code is checked once per program, not once per way the parser got here. */
#define SEG_QUOTE_OFF_MAX 0xffff

/* len bytes of the quote at off; bytes after the datagram that quotes
 * them (frame padding, or anything a sender put past tot_len) are not
 * part of the quote. */
static __always_inline int seg_load(const struct seg_pkt *p, void *ctx, const int is_xdp, __u32 off,
				    void *to, __u32 len)
{
	if (off > SEG_QUOTE_OFF_MAX || off + len > p->quote_end)
		return -1;
	if (is_xdp)
		return bpf_xdp_load_bytes(ctx, off, to, len);
	return bpf_skb_load_bytes(ctx, off, to, len);
}

/* Fills p->quote (the tuple as its sender sent it). */
static __always_inline int seg_parse_quote(struct seg_pkt *p, void *ctx, const int is_xdp)
{
	struct seg_tuple *q = &p->quote;
	union {
		struct iphdr ip4;
		struct ipv6hdr ip6;
		__u8 b[SEG_QUOTE_L4_LEN];
	} h;
	__u32 off = p->quote_off;
	__u8 nh;
	int i;

	if (p->family == 4) {
		if (seg_load(p, ctx, is_xdp, off, &h.ip4, sizeof(h.ip4)))
			return SEG_DROP_TRUNCATED;
		if (h.ip4.version != 4 || h.ip4.ihl < 5)
			return SEG_DROP_BAD_LEN;
		seg_addr_v4(q->saddr, h.ip4.saddr);
		seg_addr_v4(q->daddr, h.ip4.daddr);
		q->proto = h.ip4.protocol;
		if (bpf_ntohs(h.ip4.frag_off) & SEG_IP4_OFFSET)
			return SEG_OK; /* quotes a later fragment: no ports */
		off += h.ip4.ihl * 4;
	} else {
		if (seg_load(p, ctx, is_xdp, off, &h.ip6, sizeof(h.ip6)))
			return SEG_DROP_TRUNCATED;
		__builtin_memcpy(q->saddr, &h.ip6.saddr, sizeof(q->saddr));
		__builtin_memcpy(q->daddr, &h.ip6.daddr, sizeof(q->daddr));
		nh = h.ip6.nexthdr;
		off += sizeof(h.ip6);
		for (i = 0; i < SEG_MAX_EXTHDR && seg_ip6_is_ext(nh); i++) {
			/* next header, length, and a fragment's offset */
			if (off > SEG_QUOTE_OFF_MAX || seg_load(p, ctx, is_xdp, off, h.b, 4))
				return SEG_DROP_TRUNCATED;
			if (nh == IPPROTO_FRAGMENT &&
			    (bpf_ntohs(*(__be16 *)(h.b + 2)) & SEG_IP6_FRAG_OFFSET)) {
				q->proto = h.b[0];
				return SEG_OK; /* quotes a later fragment: no ports */
			}
			off += seg_ip6_ext_len(nh, h.b);
			nh = h.b[0];
		}
		if (seg_ip6_is_ext(nh))
			return SEG_DROP_EXTHDR;
		q->proto = nh;
	}
	if (off > SEG_QUOTE_OFF_MAX || seg_load(p, ctx, is_xdp, off, h.b, SEG_QUOTE_L4_LEN))
		return SEG_DROP_TRUNCATED;
	seg_l4_ports(h.b, p->family, q->proto, &q->sport, &q->dport);
	return SEG_OK;
}

#endif
