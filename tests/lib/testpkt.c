// SPDX-License-Identifier: GPL-2.0-only
/* Packet builders: see testpkt.h. */
#include "testpkt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#define TP_EXT_LEN 8 /* every extension header we write is 8 bytes */
#define TP_IPPROTO_SCTP 132

static const __u8 tp_mac_dst[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 };
static const __u8 tp_mac_src[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };

struct tp_l3 {
	int family;
	__u8 saddr[16];
	__u8 daddr[16];
};

int tp_family(const char *addr)
{
	__u8 tmp[16];

	if (!addr)
		return 0;
	if (inet_pton(AF_INET, addr, tmp) == 1)
		return 4;
	if (inet_pton(AF_INET6, addr, tmp) == 1)
		return 6;
	return 0;
}

int tp_addr(const char *addr, __u32 out[4])
{
	__u8 *b = (__u8 *)out;

	memset(out, 0, 16);
	if (inet_pton(AF_INET, addr, b + 12) == 1) {
		b[10] = 0xff;
		b[11] = 0xff;
		return 0;
	}
	if (inet_pton(AF_INET6, addr, b) == 1)
		return 0;
	return -EINVAL;
}

static __u32 tp_sum(const void *data, size_t len, __u32 sum)
{
	const __u8 *p = data;

	for (; len > 1; len -= 2, p += 2)
		sum += (__u32)p[0] << 8 | p[1];
	if (len)
		sum += (__u32)p[0] << 8;
	return sum;
}

__u16 tp_csum(const void *data, size_t len, __u32 sum)
{
	sum = tp_sum(data, len, sum);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((__u16)~sum);
}

static void put16(__u8 *p, __u16 v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void put32(__u8 *p, __u32 v)
{
	put16(p, v >> 16);
	put16(p + 2, v & 0xffff);
}

static bool tp_is_icmp_error(int family, __u8 type)
{
	if (family == 4)
		return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
	return type >= 1 && type <= 4;
}

static bool tp_is_fragment(const struct tp_spec *s)
{
	return s->mf || s->frag_off || s->frag;
}

/* L4 header + payload at p; returns its length or -errno. A non-first
 * fragment has no L4 header: payload bytes only. */
static int tp_l4(__u8 *p, size_t cap, const struct tp_spec *s, const struct tp_l3 *l3)
{
	__u8 icmp6 = l3->family == 6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
	size_t hlen = 0;
	int inner_len;

	if (s->frag_off) {
		if (s->payload > cap)
			return -ENOSPC;
		memset(p, 0, s->payload);
		return s->payload;
	}
	if (cap < 20)
		return -ENOSPC;
	memset(p, 0, 20);
	switch (s->proto) {
	case IPPROTO_TCP:
		put16(p, s->sport);
		put16(p + 2, s->dport);
		put32(p + 4, 1); /* seq */
		put32(p + 8, (s->tcp_flags & TP_ACK) ? 1 : 0);
		p[12] = 5 << 4;
		p[13] = s->tcp_flags ? s->tcp_flags : TP_SYN;
		put16(p + 14, 65535);
		hlen = 20;
		break;
	case IPPROTO_UDP:
		put16(p, s->sport);
		put16(p + 2, s->dport);
		hlen = 8;
		break;
	case TP_IPPROTO_SCTP:
		put16(p, s->sport);
		put16(p + 2, s->dport);
		put32(p + 4, 0x5e65e6); /* verification tag */
		hlen = 12;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (s->proto != icmp6)
			return -EINVAL;
		p[0] = s->icmp_type;
		p[1] = s->icmp_code;
		hlen = 8;
		if (!tp_is_icmp_error(l3->family, s->icmp_type)) {
			put16(p + 4, s->icmp_id);
			put16(p + 6, 1); /* seq */
			break;
		}
		if (!s->inner)
			return -EINVAL;
		inner_len = tp_build_l3(p + hlen, cap - hlen, s->inner);
		if (inner_len < 0)
			return inner_len;
		hlen += (size_t)inner_len;
		break;
	default:
		break;
	}
	if (hlen + s->payload > cap)
		return -ENOSPC;
	memset(p + hlen, 0, s->payload);
	if (s->proto == IPPROTO_UDP)
		put16(p + 4, (__u16)(hlen + s->payload));
	return (int)(hlen + s->payload);
}

static void tp_l4_csum(__u8 *p, size_t len, const struct tp_spec *s, const struct tp_l3 *l3)
{
	size_t alen = l3->family == 4 ? 4 : 16;
	const __u8 *sa = l3->family == 4 ? l3->saddr + 12 : l3->saddr;
	const __u8 *da = l3->family == 4 ? l3->daddr + 12 : l3->daddr;
	__u8 pseudo[8] = { 0 };
	__u32 sum = 0;
	size_t off;
	__u16 c;

	switch (s->proto) {
	case IPPROTO_TCP:
		off = 16;
		break;
	case IPPROTO_UDP:
		off = 6;
		break;
	case IPPROTO_ICMP: /* no pseudo header */
		off = 2;
		break;
	case IPPROTO_ICMPV6:
		off = 2;
		break;
	default:
		return;
	}
	if (s->proto != IPPROTO_ICMP) {
		put32(pseudo, (__u32)len);
		pseudo[7] = s->proto;
		sum = tp_sum(sa, alen, 0);
		sum = tp_sum(da, alen, sum);
		sum = tp_sum(pseudo, sizeof(pseudo), sum);
	}
	memset(p + off, 0, 2);
	c = tp_csum(p, len, sum);
	memcpy(p + off, &c, 2);
}

static int tp_ip4(__u8 *p, size_t cap, const struct tp_spec *s, const struct tp_l3 *l3, size_t cut)
{
	size_t hlen = TP_IP4_LEN + s->ip4_optlen;
	size_t len;
	__u16 frag;
	__u16 c;
	int l4;

	if (s->ip4_optlen % 4 || s->ip4_optlen > 40)
		return -EINVAL;
	if (cap < hlen)
		return -ENOSPC;
	memset(p, 0, hlen);
	if (s->ip4_opts)
		memcpy(p + TP_IP4_LEN, s->ip4_opts, s->ip4_optlen);
	else if (s->ip4_optlen)
		memset(p + TP_IP4_LEN, 1, s->ip4_optlen - 1); /* NOPs, EOL */
	l4 = tp_l4(p + hlen, cap - hlen, s, l3);
	if (l4 < 0)
		return l4;
	if (!tp_is_fragment(s))
		tp_l4_csum(p + hlen, (size_t)l4, s, l3);
	len = hlen + (size_t)l4;
	if (cut && cut < len)
		len = cut;
	p[0] = 4 << 4 | (s->ihl ? s->ihl : hlen / 4);
	put16(p + 2, s->ip_len ? (__u16)s->ip_len : (__u16)len);
	put16(p + 4, (__u16)s->frag_id);
	frag = s->frag_off & 0x1fff;
	if (s->mf)
		frag |= 0x2000;
	put16(p + 6, frag);
	p[8] = s->ttl ? s->ttl : 64;
	p[9] = s->proto;
	memcpy(p + 12, l3->saddr + 12, 4);
	memcpy(p + 16, l3->daddr + 12, 4);
	c = tp_csum(p, hlen, 0);
	memcpy(p + 10, &c, 2);
	return (int)len;
}

static int tp_ip6(__u8 *p, size_t cap, const struct tp_spec *s, const struct tp_l3 *l3, size_t cut)
{
	bool frag = tp_is_fragment(s);
	size_t hlen = TP_IP6_LEN + TP_EXT_LEN * (s->n_ext + (frag ? 1 : 0));
	__u8 *next = p + 6; /* where the next-header value goes */
	__u8 *e = p + TP_IP6_LEN;
	size_t len;
	int l4;

	if (s->n_ext > TP_MAX_EXT)
		return -EINVAL;
	if (cap < hlen)
		return -ENOSPC;
	memset(p, 0, hlen);
	p[0] = 6 << 4;
	p[7] = s->ttl ? s->ttl : 64;
	memcpy(p + 8, l3->saddr, 16);
	memcpy(p + 24, l3->daddr, 16);
	for (int i = 0; i < s->n_ext; i++, e += TP_EXT_LEN) {
		*next = s->ext[i];
		next = e;
		if (s->ext[i] != IPPROTO_ROUTING) {
			e[2] = 1; /* PadN */
			e[3] = 4;
		}
	}
	if (frag) {
		*next = IPPROTO_FRAGMENT;
		next = e;
		put16(e + 2, (__u16)(s->frag_off << 3 | (s->mf ? 1 : 0)));
		put32(e + 4, s->frag_id);
	}
	*next = s->proto;
	l4 = tp_l4(p + hlen, cap - hlen, s, l3);
	if (l4 < 0)
		return l4;
	if (!frag)
		tp_l4_csum(p + hlen, (size_t)l4, s, l3);
	len = hlen + (size_t)l4;
	if (cut && cut < len)
		len = cut;
	put16(p + 4, s->ip_len ? (__u16)s->ip_len : (__u16)(len - TP_IP6_LEN));
	return (int)len;
}

static int tp_l3_cut(void *buf, size_t cap, const struct tp_spec *s, size_t cut)
{
	struct tp_l3 l3 = { .family = tp_family(s->src) };

	if (!l3.family || l3.family != tp_family(s->dst))
		return -EINVAL;
	tp_addr(s->src, (__u32 *)l3.saddr);
	tp_addr(s->dst, (__u32 *)l3.daddr);
	if (l3.family == 4)
		return tp_ip4(buf, cap, s, &l3, cut);
	return tp_ip6(buf, cap, s, &l3, cut);
}

int tp_build_l3(void *buf, size_t cap, const struct tp_spec *s)
{
	int len = tp_l3_cut(buf, cap, s, s->cut);

	if (len > 0 && s->cut && s->cut < len)
		len = s->cut;
	return len;
}

/* ARP request body (Ethernet/IPv4). */
static int tp_arp(__u8 *p, size_t cap)
{
	static const __u8 arp[28] = { 0,  1, 8, 0, 6, 4, 0, 1, 2, 0, 0,	 0, 0, 1,
				      10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2 };

	if (cap < sizeof(arp))
		return -ENOSPC;
	memcpy(p, arp, sizeof(arp));
	return sizeof(arp);
}

int tp_build(void *buf, size_t cap, const struct tp_spec *s)
{
	__u8 *p = buf;
	__u16 type = s->ethertype;
	size_t l3cut = 0;
	int len;

	if (cap < TP_ETH_LEN)
		return -ENOSPC;
	if (!type)
		type = tp_family(s->src) == 6 ? ETH_P_IPV6 : ETH_P_IP;
	memcpy(p, tp_mac_dst, 6);
	memcpy(p + 6, tp_mac_src, 6);
	put16(p + 12, type);
	if (s->cut)
		l3cut = s->cut > TP_ETH_LEN ? s->cut - TP_ETH_LEN : 1;
	if (type == ETH_P_ARP) {
		len = tp_arp(p + TP_ETH_LEN, cap - TP_ETH_LEN);
	} else if (type != ETH_P_IP && type != ETH_P_IPV6) {
		if (s->payload > cap - TP_ETH_LEN)
			return -ENOSPC;
		memset(p + TP_ETH_LEN, 0, s->payload);
		len = s->payload;
	} else {
		len = tp_l3_cut(p + TP_ETH_LEN, cap - TP_ETH_LEN, s, l3cut);
	}
	if (len < 0)
		return len;
	len += TP_ETH_LEN;
	if (s->cut && s->cut < len)
		len = s->cut;
	return len;
}
