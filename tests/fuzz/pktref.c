// SPDX-License-Identifier: GPL-2.0-only
/* The packet fuzzer's reference classifier: see pktref.h. */
#include "pktref.h"

#include <netinet/in.h>
#include <seg/abi.h>
#include <stdlib.h>
#include <string.h>

#include "../bpf/fixture.h"

#define ETH_LEN 14
#define REF_MAX_EXT SEG_MAX_EXTHDR

static __u16 rd16(const __u8 *p)
{
	return (__u16)(p[0] << 8 | p[1]);
}

static void v4_mapped(__u8 out[16], const __u8 *a4)
{
	memset(out, 0, 10);
	out[10] = out[11] = 0xff;
	memcpy(out + 12, a4, 4);
}

static bool has_ports(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP_;
}

/* Fixed L4 header length a port-bearing or ICMP packet needs; 0: none. */
static size_t l4_fixed(__u8 proto, int family)
{
	switch (proto) {
	case IPPROTO_TCP:
		return 20;
	case IPPROTO_UDP:
		return 8;
	case IPPROTO_ICMP: /* ICMP in IPv6, ICMPv6 in IPv4: no header we read */
		return family == 4 ? 8 : 0;
	case IPPROTO_ICMPV6:
		return family == 6 ? 8 : 0;
	case IPPROTO_SCTP_:
		return 12;
	}
	return 0;
}

static bool icmp_error(__u8 proto, __u8 type)
{
	if (proto == IPPROTO_ICMP)
		return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
	return type >= 1 && type <= 4;
}

static bool ip6_ext(__u8 nh)
{
	return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS ||
	       nh == IPPROTO_FRAGMENT || nh == IPPROTO_AH;
}

struct l3 {
	const __u8 *l4; /* start of the L4 header */
	size_t l4len; /* bytes up to the end of the IP packet */
	__u8 proto;
	bool later, first;
	__u32 id;
	__u8 frag_nh; /* IPv6: the fragment header's next header */
	__u8 hop_limit; /* IPv6 */
};

/* IPv4 header at p (avail bytes): addresses into t; NULL why on success. */
static const char *parse_ip4(const __u8 *p, size_t avail, struct ref_tuple *t, struct l3 *o,
			     bool quote)
{
	size_t ihl, tot;
	__u16 frag;

	if (avail < 20)
		return "ipv4 header truncated";
	if (!quote && p[0] >> 4 != 4) /* a quote is judged by what it names */
		return "ipv4 version";
	ihl = (size_t)(p[0] & 0xf) * 4;
	tot = rd16(p + 2);
	if (ihl < 20)
		return "ipv4 ihl < 5";
	if (ihl > avail)
		return "ipv4 options truncated";
	if (!quote && (tot < ihl || tot > avail))
		return "ipv4 tot_len";
	if (quote) /* a quote is cut short by design: read what is there */
		tot = avail;
	t->family = 4;
	v4_mapped(t->saddr, p + 12);
	v4_mapped(t->daddr, p + 16);
	o->proto = t->proto = p[9];
	frag = rd16(p + 6);
	o->later = (frag & 0x1fff) != 0;
	o->first = !o->later && (frag & 0x2000);
	o->id = rd16(p + 4);
	o->frag_nh = p[9];
	o->l4 = p + ihl;
	o->l4len = tot - ihl;
	return NULL;
}

static const char *parse_ip6(const __u8 *p, size_t avail, struct ref_tuple *t, struct l3 *o,
			     bool quote)
{
	size_t plen, off = 40;
	__u8 nh;
	int n;

	if (avail < 40)
		return "ipv6 header truncated";
	if (!quote && p[0] >> 4 != 6)
		return "ipv6 version";
	plen = rd16(p + 4);
	if (!quote && plen > avail - 40)
		return "ipv6 payload_len";
	if (quote)
		plen = avail - 40;
	t->family = 6;
	memcpy(t->saddr, p + 8, 16);
	memcpy(t->daddr, p + 24, 16);
	nh = p[6];
	o->later = o->first = false;
	o->id = 0;
	o->frag_nh = 0;
	o->hop_limit = p[7];
	for (n = 0; ip6_ext(nh); n++) {
		size_t hl;

		if (n == REF_MAX_EXT)
			return "too many extension headers";
		if (off + 8 > 40 + plen)
			return "extension header truncated";
		if (nh == IPPROTO_FRAGMENT) {
			__u16 fo = rd16(p + off + 2);

			o->later = (fo & 0xfff8) != 0;
			/* offset 0 without M (an atomic fragment) still names the
			 * ports later fragments with its id may claim */
			o->first = !o->later;
			o->id = (__u32)p[off + 4] << 24 | (__u32)p[off + 5] << 16 |
				(__u32)p[off + 6] << 8 | p[off + 7];
			o->frag_nh = p[off];
			hl = 8;
		} else if (nh == IPPROTO_AH) {
			hl = ((size_t)p[off + 1] + 2) * 4;
		} else {
			hl = ((size_t)p[off + 1] + 1) * 8;
		}
		nh = p[off];
		if (o->later) {
			off += hl; /* the rest is payload; nh names it */
			break;
		}
		off += hl;
		if (off > 40 + plen)
			return "extension header truncated";
	}
	o->proto = t->proto = nh;
	o->l4 = p + (off < 40 + plen ? off : 40 + plen);
	o->l4len = off < 40 + plen ? 40 + plen - off : 0;
	return NULL;
}

/* The quoted packet of an ICMP error: addresses and ports (if any). */
static bool parse_quote(const __u8 *p, size_t avail, int family, struct ref_tuple *q)
{
	struct l3 o;

	memset(q, 0, sizeof(*q));
	if ((family == 4 ? parse_ip4 : parse_ip6)(p, avail, q, &o, true))
		return false;
	if (has_ports(q->proto) && !o.later) {
		if (o.l4len < 4)
			return false;
		q->sport = rd16(o.l4);
		q->dport = rd16(o.l4 + 2);
	}
	return true;
}

static void parse_l4(const struct l3 *o, struct ref_pkt *r)
{
	size_t need = l4_fixed(o->proto, r->t.family);
	bool icmp = (o->proto == IPPROTO_ICMP && r->t.family == 4) ||
		    (o->proto == IPPROTO_ICMPV6 && r->t.family == 6);

	r->first_frag = o->first;
	r->frag_id = o->id;
	r->frag_proto = o->frag_nh ? o->frag_nh : o->proto;
	if (o->later) {
		r->cls = REF_LATER_FRAG;
		return;
	}
	if (o->l4len < need) {
		r->cls = REF_BAD;
		r->why = o->first ? "first fragment too short" : "l4 header truncated";
		return;
	}
	if (o->proto == IPPROTO_TCP && o->l4[12] >> 4 < 5) {
		r->cls = REF_BAD;
		r->why = "tcp data offset < 5";
		return;
	}
	r->cls = REF_FLOW;
	if (has_ports(o->proto)) {
		r->t.sport = rd16(o->l4);
		r->t.dport = rd16(o->l4 + 2);
	} else if (icmp && r->t.family == 6 && o->l4[0] >= 133 && o->l4[0] <= 137 &&
		   o->hop_limit == 255) { /* RFC 4861: ND never crossed a router */
		r->cls = REF_L2;
	} else if (icmp && icmp_error(o->proto, o->l4[0])) {
		r->cls = REF_ICMP_ERR;
		r->q_ok = parse_quote(o->l4 + 8, o->l4len - 8, r->t.family, &r->q);
	}
}

void ref_parse(const __u8 *pkt, size_t len, struct ref_pkt *r)
{
	const char *why;
	struct l3 o;
	__u16 type;

	memset(r, 0, sizeof(*r));
	r->cls = REF_BAD;
	if (len < ETH_LEN) {
		r->why = "no ethernet header";
		return;
	}
	type = rd16(pkt + 12);
	if (type == 0x0806) {
		r->cls = REF_L2;
		return;
	}
	if (type == 0x0800)
		why = parse_ip4(pkt + ETH_LEN, len - ETH_LEN, &r->t, &o, false);
	else if (type == 0x86dd)
		why = parse_ip6(pkt + ETH_LEN, len - ETH_LEN, &r->t, &o, false);
	else
		why = "not IPv4, IPv6 or ARP";
	if (why) {
		r->why = why;
		return;
	}
	parse_l4(&o, r);
}

/* ---- the fixed world and policy ------------------------------------------ */

static bool in_prefix(const __u8 a[16], const __u8 p[16], int plen)
{
	int bytes = plen / 8, bits = plen % 8;

	if (memcmp(a, p, (size_t)bytes))
		return false;
	return !bits || ((a[bytes] ^ p[bytes]) & (0xff << (8 - bits))) == 0;
}

__u32 ref_identity(const __u8 addr[16])
{
	static const struct {
		__u8 a[16];
		int plen;
		__u32 id;
	} tab[] = {
		/* exact entries first, then the prefixes (fixture's base world) */
		{ { [10] = 0xff, 0xff, 10, 0, 0, 1 }, 128, FX_LOCAL_ID },
		{ { [10] = 0xff, 0xff, 10, 0, 0, 2 }, 128, FX_LOCAL_ID },
		{ { [10] = 0xff, 0xff, 10, 1, 0, 5 }, 128, FX_ID_A },
		{ { [10] = 0xff, 0xff, 10, 1, 0, 6 }, 128, FX_ID_B },
		{ { [10] = 0xff, 0xff, 10, 0, 0, 254 }, 128, SEG_ID_HOST },
		{ { 0xfd, 0x00, [15] = 1 }, 128, FX_LOCAL_ID },
		{ { 0xfd, 0x00, [15] = 2 }, 128, FX_LOCAL_ID },
		{ { 0xfd, 0x01, [15] = 5 }, 128, FX_ID_A },
		{ { 0xfd, 0x01, [15] = 6 }, 128, FX_ID_B },
		{ { 0xfd, 0x00, [15] = 0xfe }, 128, SEG_ID_HOST },
		{ { [10] = 0xff, 0xff, 10, 2 }, 96 + 16, FX_ID_NET },
		{ { 0xfd, 0x02 }, 64, FX_ID_NET },
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (in_prefix(addr, tab[i].a, tab[i].plen))
			return tab[i].id;
	return SEG_ID_WORLD;
}

bool ref_src_owned(const __u8 addr[16])
{
	static const __u8 own4[16] = { [10] = 0xff, 0xff, 10, 0, 0, 1 };
	static const __u8 own6[16] = { 0xfd, 0x00, [15] = 1 };
	static const __u8 ll[16] = { 0xfe, 0x80 }, any[16] = { 0 };

	return !memcmp(addr, own4, 16) || !memcmp(addr, own6, 16) || in_prefix(addr, ll, 10) ||
	       !memcmp(addr, any, 16);
}

bool ref_policy_allows(const struct ref_tuple *t, __u8 dir)
{
	if (dir == SEG_DIR_INGRESS) {
		__u32 id = ref_identity(t->saddr);

		if (t->proto == IPPROTO_TCP && id == FX_ID_A && t->dport == 80)
			return true;
		return t->proto == IPPROTO_UDP && id == FX_ID_NET && t->dport >= 1000 &&
		       t->dport <= 1999;
	}
	return t->proto == IPPROTO_UDP && ref_identity(t->daddr) == FX_ID_B && t->dport == 53;
}

void ref_key_of(const struct ref_tuple *t, __u8 dir, struct ref_key *k)
{
	bool in = dir == SEG_DIR_INGRESS;

	memset(k, 0, sizeof(*k));
	memcpy(k->laddr, in ? t->daddr : t->saddr, 16);
	memcpy(k->raddr, in ? t->saddr : t->daddr, 16);
	k->lport = in ? t->dport : t->sport;
	k->rport = in ? t->sport : t->dport;
	k->proto = t->proto;
}

/* ---- state ------------------------------------------------------------------ */

struct ref_frag {
	struct ref_tuple t;
	__u32 id;
};

struct ref_state {
	struct ref_key *ct;
	size_t nct, capct;
	struct ref_frag *frag;
	size_t nfrag, capfrag;
};

struct ref_state *ref_state_new(void)
{
	return calloc(1, sizeof(struct ref_state));
}

void ref_state_free(struct ref_state *s)
{
	if (!s)
		return;
	free(s->ct);
	free(s->frag);
	free(s);
}

void ref_state_clear(struct ref_state *s)
{
	s->nct = s->nfrag = 0;
}

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
	void *nv;

	if (n < *cap)
		return 0;
	nv = realloc(*v, (*cap ? *cap * 2 : 256) * size);
	if (!nv)
		return -1;
	*v = nv;
	*cap = *cap ? *cap * 2 : 256;
	return 0;
}

int ref_ct_add(struct ref_state *s, const struct ref_key *k)
{
	if (ref_ct_has(s, k))
		return 0;
	if (grow((void **)&s->ct, &s->capct, s->nct, sizeof(*k)))
		return -1;
	s->ct[s->nct++] = *k;
	return 0;
}

bool ref_ct_has(const struct ref_state *s, const struct ref_key *k)
{
	for (size_t i = 0; i < s->nct; i++)
		if (!memcmp(&s->ct[i], k, sizeof(*k)))
			return true;
	return false;
}

static bool frag_same(const struct ref_frag *f, const struct ref_tuple *t, __u32 id)
{
	return f->id == id && f->t.proto == t->proto && !memcmp(f->t.saddr, t->saddr, 16) &&
	       !memcmp(f->t.daddr, t->daddr, 16);
}

int ref_frag_add(struct ref_state *s, const struct ref_tuple *t, __u32 id)
{
	for (size_t i = 0; i < s->nfrag; i++)
		if (frag_same(&s->frag[i], t, id) && s->frag[i].t.sport == t->sport &&
		    s->frag[i].t.dport == t->dport)
			return 0;
	if (grow((void **)&s->frag, &s->capfrag, s->nfrag, sizeof(*s->frag)))
		return -1;
	s->frag[s->nfrag].t = *t;
	s->frag[s->nfrag++].id = id;
	return 0;
}

bool ref_frag_any(const struct ref_state *s, const struct ref_tuple *t, __u32 id,
		  bool (*fn)(const struct ref_tuple *full, void *ctx), void *ctx)
{
	for (size_t i = 0; i < s->nfrag; i++)
		if (frag_same(&s->frag[i], t, id) && fn(&s->frag[i].t, ctx))
			return true;
	return false;
}
