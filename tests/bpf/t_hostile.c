// SPDX-License-Identifier: GPL-2.0-only
/*
 * Hostile packets (docs/architecture.md, "Hostile packets"): truncated
 * headers, bad lengths, IPv4 options, IPv6 extension header chains,
 * fragments, unknown ethertypes, L2 control, ICMP errors. The endpoint is
 * isolated in the packet's direction and allows TCP and UDP port 80 from
 * peer A, so a packet that the parser misreads would show up as a pass.
 */
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"
#include "suites.h"

#define TCP IPPROTO_TCP
#define UDP IPPROTO_UDP
#define ICMP IPPROTO_ICMP /* ICMPv6 in v6 cases */
#define ANY_REASON ((__u32)-1)
#define RULE_TCP 50
#define RULE_UDP 51

enum cut_at { CUT_NONE, CUT_L3, CUT_L4 };

struct hcase {
	struct fx_row row;
	enum fx_hook hook; /* default to_pod */
	bool not_iso; /* endpoint not isolated: passes, counted */
	__u16 ethertype;
	__u8 proto; /* default TCP */
	__u16 port; /* default 80 */
	__u8 icmp_type;
	__u8 ttl; /* IPv4 TTL / IPv6 hop limit; 0 = the builder's 64 */
	__u16 payload;
	__u8 optlen;
	const __u8 *opts;
	__u8 ihl;
	int len_delta; /* added to the computed tot_len / payload_len */
	__u16 len_abs; /* tot_len / payload_len value if non zero */
	__u8 n_ext; /* IPv6: this many extension headers (HBH, then DSTOPTS) */
	__u8 ext0; /* type of the first one instead of HBH */
	__u16 patch_l3; /* if set: byte at this offset from the L3 header ... */
	__u8 patch_val; /* ... is overwritten with this */
	__u8 mf;
	__u8 frag; /* IPv6 fragment header even without MF/offset */
	__u16 frag_off;
	enum cut_at cut_at;
	__u16 cut_n; /* keep this many bytes of that layer */
	int verdict;
	__u32 reason;
};

/* Options whose first bytes, read as TCP ports, would say dport 80. */
static const __u8 decoy_opts[4] = { 1, 1, 0, 80 };

/* clang-format off */
static const struct hcase hcases[] = {
	/* truncated. BPF_PROG_TEST_RUN refuses tc frames whose L3 header is
	 * incomplete (EINVAL from the kernel), so those go through XDP, which
	 * runs the same parser. */
	{ { "xdp: Ethernet header only" }, .hook = FX_XDP_FROM_POD, .cut_at = CUT_L3, .cut_n = 0,
	  .verdict = FX_DROP, .reason = SEG_DROP_TRUNCATED },
	{ { "xdp: L3 header cut at 10 bytes" }, .hook = FX_XDP_FROM_POD, .cut_at = CUT_L3,
	  .cut_n = 10, .verdict = FX_DROP, .reason = SEG_DROP_TRUNCATED },
	{ { "xdp: IPv4 header cut at 19 bytes", 4 }, .hook = FX_XDP_FROM_POD, .cut_at = CUT_L3,
	  .cut_n = 19, .verdict = FX_DROP, .reason = SEG_DROP_TRUNCATED },
	{ { "xdp: IPv6 header cut at 39 bytes", 6 }, .hook = FX_XDP_FROM_POD, .cut_at = CUT_L3,
	  .cut_n = 39, .verdict = FX_DROP, .reason = SEG_DROP_TRUNCATED },
	{ { "TCP header cut at 4 bytes (ports only)" }, .cut_at = CUT_L4, .cut_n = 4,
	  .verdict = FX_DROP, .reason = SEG_DROP_TRUNCATED },
	{ { "TCP header cut at 19 bytes" }, .cut_at = CUT_L4, .cut_n = 19, .verdict = FX_DROP,
	  .reason = SEG_DROP_TRUNCATED },
	{ { "UDP header cut at 7 bytes" }, .proto = UDP, .cut_at = CUT_L4, .cut_n = 7,
	  .verdict = FX_DROP, .reason = SEG_DROP_TRUNCATED },
	{ { "ICMP echo header cut at 4 bytes" }, .proto = ICMP, .cut_at = CUT_L4, .cut_n = 4,
	  .verdict = FX_DROP, .reason = SEG_DROP_TRUNCATED },
	{ { "xdp: TCP header cut at 12 bytes" }, .hook = FX_XDP_FROM_POD, .cut_at = CUT_L4,
	  .cut_n = 12, .verdict = FX_DROP, .reason = SEG_DROP_TRUNCATED },
	{ { "from_pod: UDP header cut at 2 bytes" }, .hook = FX_FROM_POD, .proto = UDP,
	  .cut_at = CUT_L4, .cut_n = 2, .verdict = FX_DROP, .reason = SEG_DROP_TRUNCATED },
	/* bad lengths */
	{ { "IPv4 ihl 4", 4 }, .ihl = 4, .verdict = FX_DROP, .reason = SEG_DROP_BAD_LEN },
	{ { "IPv4 ihl 0", 4 }, .ihl = 0xf0, .verdict = FX_DROP, .reason = SEG_DROP_BAD_LEN },
	{ { "IPv4 ihl 15 without options (ihl*4 > tot_len)", 4 }, .ihl = 15, .verdict = FX_DROP,
	  .reason = SEG_DROP_BAD_LEN },
	{ { "IPv4 tot_len 19 (< ihl*4)", 4 }, .len_abs = 19, .verdict = FX_DROP,
	  .reason = SEG_DROP_BAD_LEN },
	{ { "tot_len/payload_len one byte beyond the packet" }, .len_delta = 1, .verdict = FX_DROP,
	  .reason = SEG_DROP_BAD_LEN },
	{ { "tot_len/payload_len 1000 bytes beyond the packet" }, .len_delta = 1000,
	  .verdict = FX_DROP, .reason = SEG_DROP_BAD_LEN },
	{ { "from_pod: IPv4 ihl 4", 4 }, .hook = FX_FROM_POD, .ihl = 4, .verdict = FX_DROP,
	  .reason = SEG_DROP_BAD_LEN },
	{ { "xdp: payload_len beyond the packet" }, .hook = FX_XDP_FROM_POD, .len_delta = 8,
	  .verdict = FX_DROP, .reason = SEG_DROP_BAD_LEN },
	{ { "TCP header beyond tot_len/payload_len (in the padding)" }, .payload = 4,
	  .len_delta = -22,
	  .verdict = FX_DROP, .reason = SEG_DROP_TRUNCATED },
	{ { "UDP header partly beyond tot_len/payload_len" }, .proto = UDP, .len_delta = -4,
	  .verdict = FX_DROP, .reason = SEG_DROP_TRUNCATED },
	{ { "Ethernet padding after the datagram is fine" }, .payload = 20, .len_delta = -20,
	  .verdict = FX_PASS, .reason = SEG_R_ALLOW_RULE },
	/* IPv4 options */
	{ { "IPv4 options (4 bytes), TCP 80 allowed", 4 }, .optlen = 4, .verdict = FX_PASS,
	  .reason = SEG_R_ALLOW_RULE },
	{ { "IPv4 options (40 bytes), TCP 80 allowed", 4 }, .optlen = 40, .verdict = FX_PASS,
	  .reason = SEG_R_ALLOW_RULE },
	{ { "IPv4 options (40 bytes), UDP 80 allowed", 4 }, .proto = UDP, .optlen = 40,
	  .verdict = FX_PASS, .reason = SEG_R_ALLOW_RULE },
	{ { "IPv4 options read as port 80, real port 9999 dropped", 4 }, .port = 9999, .optlen = 4,
	  .opts = decoy_opts, .verdict = FX_DROP, .reason = SEG_DROP_POLICY },
	{ { "IPv4 options, TCP cut after them", 4 }, .optlen = 8, .cut_at = CUT_L4, .cut_n = 10,
	  .verdict = FX_DROP, .reason = SEG_DROP_TRUNCATED },
	{ { "xdp: IPv4 options (12 bytes), TCP 80 allowed", 4 }, .hook = FX_XDP_FROM_POD,
	  .optlen = 12, .verdict = FX_PASS, .reason = SEG_R_ALLOW_RULE },
	/* IPv6 extension headers */
	{ { "IPv6 1 extension header, UDP 80 allowed", 6 }, .proto = UDP, .n_ext = 1,
	  .verdict = FX_PASS, .reason = SEG_R_ALLOW_RULE },
	{ { "IPv6 SEG_MAX_EXTHDR extension headers, TCP 80 allowed", 6 }, .n_ext = SEG_MAX_EXTHDR,
	  .verdict = FX_PASS, .reason = SEG_R_ALLOW_RULE },
	{ { "IPv6 SEG_MAX_EXTHDR+1 extension headers dropped", 6 }, .n_ext = SEG_MAX_EXTHDR + 1,
	  .verdict = FX_DROP, .reason = SEG_DROP_EXTHDR },
	{ { "IPv6 16 extension headers dropped", 6 }, .n_ext = 16, .verdict = FX_DROP,
	  .reason = SEG_DROP_EXTHDR },
	{ { "IPv6 extension headers, port 9999 dropped by policy", 6 }, .port = 9999, .n_ext = 3,
	  .verdict = FX_DROP, .reason = SEG_DROP_POLICY },
	{ { "IPv6 extension header chain cut short", 6 }, .n_ext = 3, .cut_at = CUT_L3,
	  .cut_n = 40 + 12, .verdict = FX_DROP, .reason = ANY_REASON },
	{ { "IPv6 AH then destination options, TCP 80 allowed", 6 }, .n_ext = 2,
	  .ext0 = IPPROTO_AH, .verdict = FX_PASS, .reason = SEG_R_ALLOW_RULE },
	{ { "IPv6 routing header, TCP 80 allowed", 6 }, .n_ext = 1, .ext0 = IPPROTO_ROUTING,
	  .verdict = FX_PASS, .reason = SEG_R_ALLOW_RULE },
	{ { "IPv6 extension header length beyond the packet dropped", 6 }, .n_ext = 2,
	  .patch_l3 = 40 + 1, .patch_val = 0xff, .verdict = FX_DROP, .reason = ANY_REASON },
	{ { "IPv6 extension header length beyond payload_len dropped", 6 }, .n_ext = 1,
	  .payload = 64, .patch_l3 = 40 + 1, .patch_val = 4, .len_delta = -64,
	  .verdict = FX_DROP, .reason = ANY_REASON },
	{ { "xdp: IPv6 SEG_MAX_EXTHDR+1 extension headers dropped", 6 }, .hook = FX_XDP_FROM_POD,
	  .n_ext = SEG_MAX_EXTHDR + 1, .verdict = FX_DROP, .reason = SEG_DROP_EXTHDR },
	/* fragments */
	{ { "first fragment too short for UDP ports" }, .proto = UDP, .mf = 1, .cut_at = CUT_L4,
	  .cut_n = 2, .verdict = FX_DROP, .reason = SEG_DROP_FRAG_TINY },
	{ { "first fragment too short for TCP ports" }, .mf = 1, .cut_at = CUT_L4, .cut_n = 3,
	  .verdict = FX_DROP, .reason = SEG_DROP_FRAG_TINY },
	{ { "later fragment without its head dropped" }, .proto = UDP, .frag_off = 3,
	  .payload = 16, .verdict = FX_DROP, .reason = SEG_DROP_FRAG_NO_HEAD },
	{ { "last fragment without its head dropped" }, .frag_off = 100, .payload = 8,
	  .verdict = FX_DROP, .reason = SEG_DROP_FRAG_NO_HEAD },
	{ { "xdp: later fragment without its head dropped" }, .hook = FX_XDP_FROM_POD,
	  .proto = UDP, .frag_off = 1, .mf = 1, .payload = 8, .verdict = FX_DROP,
	  .reason = SEG_DROP_FRAG_NO_HEAD },
	{ { "IPv6 atomic fragment (offset 0, no MF), UDP 80 allowed", 6 }, .proto = UDP,
	  .frag = 1, .verdict = FX_PASS, .reason = SEG_R_ALLOW_RULE },
	/* L2 and unknown L3 */
	{ { "unknown ethertype 0x88cc dropped", 4 }, .ethertype = 0x88cc, .payload = 46,
	  .verdict = FX_DROP, .reason = SEG_DROP_UNKNOWN_L3 },
	{ { "xdp: unknown ethertype 0x8863 dropped", 4 }, .hook = FX_XDP_FROM_POD,
	  .ethertype = 0x8863, .payload = 46, .verdict = FX_DROP, .reason = SEG_DROP_UNKNOWN_L3 },
	{ { "802.1Q tagged frame dropped", 4 }, .ethertype = 0x8100, .payload = 46,
	  .verdict = FX_DROP, .reason = SEG_DROP_UNKNOWN_L3 },
	{ { "ARP passes", 4 }, .ethertype = ETH_P_ARP, .verdict = FX_PASS,
	  .reason = SEG_R_ALLOW_L2 },
	{ { "from_pod: ARP passes", 4 }, .hook = FX_FROM_POD, .ethertype = ETH_P_ARP,
	  .verdict = FX_PASS, .reason = SEG_R_ALLOW_L2 },
	/* ND (RFC 4861): only with hop limit 255, the proof it was not routed */
	{ { "ND router solicitation passes", 6 }, .proto = ICMP, .icmp_type = 133, .ttl = 255,
	  .payload = 8, .verdict = FX_PASS, .reason = SEG_R_ALLOW_L2 },
	{ { "ND router advertisement passes", 6 }, .proto = ICMP, .icmp_type = 134, .ttl = 255,
	  .payload = 8, .verdict = FX_PASS, .reason = SEG_R_ALLOW_L2 },
	{ { "ND neighbour solicitation passes", 6 }, .proto = ICMP, .icmp_type = 135, .ttl = 255,
	  .payload = 16, .verdict = FX_PASS, .reason = SEG_R_ALLOW_L2 },
	{ { "from_pod: ND neighbour advertisement passes", 6 }, .hook = FX_FROM_POD, .proto = ICMP,
	  .icmp_type = 136, .ttl = 255, .payload = 16, .verdict = FX_PASS,
	  .reason = SEG_R_ALLOW_L2 },
	{ { "ND redirect passes", 6 }, .proto = ICMP, .icmp_type = 137, .ttl = 255, .payload = 32,
	  .verdict = FX_PASS, .reason = SEG_R_ALLOW_L2 },
	{ { "ND with hop limit 254 is policy's to decide", 6 }, .proto = ICMP, .icmp_type = 135,
	  .ttl = 254, .payload = 16, .verdict = FX_DROP, .reason = SEG_DROP_POLICY },
	{ { "from_pod: ND-typed payload with hop limit 64 is policy's", 6 }, .hook = FX_FROM_POD,
	  .proto = ICMP, .icmp_type = 136, .payload = 16, .verdict = FX_DROP,
	  .reason = SEG_DROP_POLICY },
	{ { "ICMPv6 138 is not neighbour discovery", 6 }, .proto = ICMP, .icmp_type = 138,
	  .payload = 16, .verdict = FX_DROP, .reason = SEG_DROP_POLICY },
	{ { "unknown L4 protocol (GRE) dropped by policy" }, .proto = 47, .payload = 8,
	  .verdict = FX_DROP, .reason = SEG_DROP_POLICY },
	/* not isolated: passes, still counted under its reason */
	{ { "not isolated: unknown ethertype passes, counted", 4 }, .not_iso = true,
	  .ethertype = 0x88cc, .payload = 46, .verdict = FX_PASS, .reason = SEG_DROP_UNKNOWN_L3 },
	{ { "not isolated: truncated TCP passes, counted" }, .not_iso = true, .cut_at = CUT_L4,
	  .cut_n = 10, .verdict = FX_PASS, .reason = SEG_DROP_TRUNCATED },
	{ { "not isolated: bad ihl passes, counted", 4 }, .not_iso = true, .ihl = 4,
	  .verdict = FX_PASS, .reason = SEG_DROP_BAD_LEN },
	{ { "not isolated: too many extension headers pass, counted", 6 }, .not_iso = true,
	  .n_ext = SEG_MAX_EXTHDR + 1, .verdict = FX_PASS, .reason = SEG_DROP_EXTHDR },
	{ { "not isolated: later fragment without head passes, counted" }, .not_iso = true,
	  .proto = UDP, .frag_off = 3, .payload = 16, .verdict = FX_PASS,
	  .reason = SEG_DROP_FRAG_NO_HEAD },
};
/* clang-format on */

static void isolate_with_rules(enum fx_hook hook, bool iso)
{
	__u8 dir = fx_hook_dir(hook);
	struct fx_rule tcp = { .dir = dir,
			       .remote_id = FX_ID_A,
			       .proto = TCP,
			       .lo = 80,
			       .hi = 80,
			       .action = SEG_ACT_ALLOW,
			       .rule_id = RULE_TCP };
	struct fx_rule udp = tcp;

	udp.proto = UDP;
	udp.rule_id = RULE_UDP;
	if (iso)
		fx_ep_flags(dir == SEG_DIR_INGRESS ? SEG_EPF_ISOLATED : 0,
			    dir == SEG_DIR_EGRESS ? SEG_EPF_ISOLATED : 0);
	fx_rule_add(&tcp);
	fx_rule_add(&udp);
}

/* The packet of a case: from peer A to the pod's port (to_pod) or from the
 * pod to A's port (from_pod). */
static int build_case(const struct hcase *c, int family, __u8 *buf, size_t cap)
{
	__u16 port = c->port ? c->port : 80;
	bool out = c->hook != FX_TO_POD;
	struct tp_spec s = fx_flow(family, c->hook, FX_A, c->proto ? c->proto : TCP,
				   out ? FX_CLIENT_PORT : port, out ? port : FX_CLIENT_PORT);
	size_t l3 = family == 4 ? TP_IP4_LEN + c->optlen : TP_IP6_LEN;
	int len;

	s.ethertype = c->ethertype;
	if (c->icmp_type)
		s.icmp_type = c->icmp_type;
	s.ttl = c->ttl;
	s.payload = c->payload;
	s.ip4_optlen = c->optlen;
	s.ip4_opts = c->opts;
	s.ihl = c->ihl == 0xf0 ? 0 : c->ihl;
	s.mf = c->mf;
	s.frag = c->frag;
	s.frag_off = c->frag_off;
	s.frag_id = 0x4242;
	for (int i = 0; i < c->n_ext; i++)
		s.ext[i] = i ? IPPROTO_DSTOPTS : c->ext0 ? c->ext0 : IPPROTO_HOPOPTS;
	s.n_ext = c->n_ext;
	if (family == 6)
		l3 += 8 * (c->n_ext + (c->mf || c->frag_off || c->frag ? 1 : 0));
	if (c->cut_at == CUT_L3)
		s.cut = (__u16)(TP_ETH_LEN + c->cut_n);
	else if (c->cut_at == CUT_L4)
		s.cut = (__u16)(TP_ETH_LEN + l3 + c->cut_n);
	len = tp_build(buf, cap, &s);
	assert_true(len > 0);
	if (c->len_delta || c->len_abs) {
		int computed = len - TP_ETH_LEN - (family == 6 ? TP_IP6_LEN : 0);

		s.ip_len = c->len_abs ? c->len_abs : (__u32)(computed + c->len_delta);
		len = tp_build(buf, cap, &s);
		assert_true(len > 0);
	}
	if (c->patch_l3)
		buf[TP_ETH_LEN + c->patch_l3] = c->patch_val;
	if (c->ihl == 0xf0) { /* ihl 0: the builder treats 0 as "computed" */
		buf[TP_ETH_LEN] = 4 << 4;
	}
	return len;
}

static void test_hostile(void **state)
{
	const struct fx_inst *in = *state;
	const struct hcase *c = (const void *)in->row;
	__u8 buf[TP_BUF_SIZE];
	int len = build_case(c, in->family, buf, sizeof(buf));

	isolate_with_rules(c->hook, !c->not_iso);
	assert_int_equal(fx_run_raw(c->hook, buf, len), c->verdict);
	if (c->reason == ANY_REASON)
		return;
	fx_assert_only_reason(c->reason, 1, len);
	if (c->verdict == FX_PASS) {
		/* a new flow is reported; L2 and unclassified packets are not flows */
		assert_int_equal(fx_events(), c->reason == SEG_R_ALLOW_RULE ? 1 : 0);
	} else {
		assert_int_equal(fx_events(), 1);
		assert_int_equal(fx()->ev[0].type, SEG_EV_DENY);
		assert_int_equal(fx()->ev[0].reason, c->reason);
		assert_int_equal(fx()->ev[0].ep_id, FX_EP_ID);
		assert_int_equal(fx_ct_count(), 0);
	}
}

/* Fragments of one datagram: the first one is classified by its ports and
 * remembered; the later ones follow its verdict. */
static struct tp_spec frag(int family, __u16 dport, __u16 off, __u8 mf, __u32 id, __u16 payload)
{
	struct tp_spec s = fx_flow(family, FX_TO_POD, FX_A, UDP, dport, FX_CLIENT_PORT);

	s.frag_id = id;
	s.frag_off = off;
	s.mf = mf;
	s.payload = payload;
	return s;
}

struct frag_case {
	struct fx_row row;
	bool hdrs; /* IPv4 options / an IPv6 hop-by-hop header before the fragment */
	enum fx_hook hook;
};

static const struct frag_case frag_cases[] = {
	{ { "fragments follow an allowed head" }, false, FX_TO_POD },
	{ { "fragments with options/extension headers follow an allowed head" }, true, FX_TO_POD },
	{ { "xdp: fragments follow an allowed head" }, false, FX_XDP_FROM_POD },
};

static void test_frag_allowed(void **state)
{
	const struct fx_inst *in = *state;
	const struct frag_case *c = (const void *)in->row;
	struct tp_spec f[5] = {
		frag(in->family, 80, 0, 1, 77, 16), /* first */
		frag(in->family, 80, 3, 1, 77, 16), /* middle */
		frag(in->family, 80, 5, 0, 77, 8), /* last */
		frag(in->family, 80, 3, 0, 78, 8), /* another datagram */
		frag(in->family, 80, 5, 0, 77, 8), /* from another peer */
	};
	bool out = c->hook != FX_TO_POD;

	isolate_with_rules(c->hook, true);
	for (int i = 0; i < 5; i++) {
		if (out) { /* the same datagram leaving the pod to A:80 */
			const char *a = f[i].src;

			f[i].src = f[i].dst;
			f[i].dst = a;
			f[i].sport = FX_CLIENT_PORT;
			f[i].dport = 80;
		}
		if (c->hdrs && in->family == 4) {
			f[i].ip4_optlen = 8;
		} else if (c->hdrs) {
			f[i].ext[0] = IPPROTO_HOPOPTS;
			f[i].n_ext = 1;
		}
	}
	if (out)
		f[4].dst = fx_addr(FX_B, in->family);
	else
		f[4].src = fx_addr(FX_B, in->family);
	assert_int_equal(fx_run(c->hook, &f[0], NULL), FX_PASS);
	assert_int_equal(fx_reason(SEG_R_ALLOW_RULE).packets, 1);
	assert_int_equal(fx_map_count(fx()->fd_frag), 1);
	assert_int_equal(fx_run(c->hook, &f[1], NULL), FX_PASS);
	assert_int_equal(fx_run(c->hook, &f[2], NULL), FX_PASS);
	/* the head was decided by the rule; the fragments after it are
	 * established packets of its flow (under their reason, not per rule) */
	assert_int_equal(fx_rule_ctr(RULE_UDP).packets, 1);
	assert_int_equal(fx_reason(SEG_R_ALLOW_ESTABLISHED).packets, 2);
	/* the head of one datagram is not the head of another */
	assert_int_equal(fx_run(c->hook, &f[3], NULL), FX_DROP);
	assert_int_equal(fx_run(c->hook, &f[4], NULL), FX_DROP);
	assert_int_equal(fx_reason(SEG_DROP_FRAG_NO_HEAD).packets, 2);
}

static void test_frag_denied(void **state)
{
	const struct fx_inst *in = *state;
	struct tp_spec first = frag(in->family, 9999, 0, 1, 79, 16);
	struct tp_spec last = frag(in->family, 9999, 3, 0, 79, 8);

	isolate_with_rules(FX_TO_POD, true);
	assert_int_equal(fx_run(FX_TO_POD, &first, NULL), FX_DROP);
	assert_int_equal(fx_reason(SEG_DROP_POLICY).packets, 1);
	/* the rest of a denied datagram never passes, whatever the reason */
	assert_int_equal(fx_run(FX_TO_POD, &last, NULL), FX_DROP);
	assert_int_equal(fx_reason(SEG_R_ALLOW_RULE).packets, 0);
}

/* ICMP errors: belong to the flow they quote. */
enum err_kind { ERR_UNREACH, ERR_TIME, ERR_TOOBIG };

struct icase {
	struct fx_row row;
	enum fx_hook flow_hook; /* the quoted flow's first packet; 0 = none */
	bool tracked; /* the flow was sent before the error */
	__u8 proto; /* the quoted flow's protocol */
	enum err_kind kind;
	bool other_port; /* the error quotes another port than the flow's */
	__u16 quote_l4; /* bytes of quoted L4 header (0 = all) */
	bool not_iso;
	int verdict;
	__u32 reason;
	bool xdp; /* a from_pod error through seg_xdp_from_pod */
	bool quote_opts; /* the quoted packet has IPv4 options / an IPv6 ext header */
	enum fx_peer outer_peer; /* the error's remote address if not the flow's peer */
	bool spoof; /* from the pod, SEG_CFG_ANTISPOOF, outer source not the pod's */
	bool reversed; /* the quote is the flow's packet in the wrong direction */
	__u8 quote_ihl; /* IPv4 ihl of the quoted header if set */
	__u16 quote_l3; /* keep only this many bytes of the quoted L3 header */
};

/* clang-format off */
static const struct icase icases[] = {
	{ { "unreachable for a tracked UDP flow passes" }, FX_FROM_POD, true, UDP, ERR_UNREACH,
	  false, 0, false, FX_PASS, SEG_R_ALLOW_RELATED },
	{ { "time exceeded for a tracked TCP flow passes" }, FX_FROM_POD, true, TCP, ERR_TIME,
	  false, 0, false, FX_PASS, SEG_R_ALLOW_RELATED },
	{ { "too big for a tracked TCP flow passes" }, FX_FROM_POD, true, TCP, ERR_TOOBIG, false,
	  0, false, FX_PASS, SEG_R_ALLOW_RELATED },
	{ { "error quoting 8 bytes of TCP (RFC 792 minimum) passes" }, FX_FROM_POD, true, TCP,
	  ERR_UNREACH, false, 8, false, FX_PASS, SEG_R_ALLOW_RELATED },
	{ { "time exceeded for a tracked echo passes" }, FX_FROM_POD, true, ICMP, ERR_TIME, false,
	  0, false, FX_PASS, SEG_R_ALLOW_RELATED },
	{ { "unreachable for an untracked flow dropped" }, FX_FROM_POD, false, UDP, ERR_UNREACH,
	  false, 0, false, FX_DROP, SEG_DROP_ICMP_UNTRACKED },
	{ { "unreachable quoting another port of a tracked peer dropped" }, FX_FROM_POD, true, UDP,
	  ERR_UNREACH, true, 0, false, FX_DROP, SEG_DROP_ICMP_UNTRACKED },
	{ { "from_pod: unreachable for a tracked incoming flow passes" }, FX_TO_POD, true, UDP,
	  ERR_UNREACH, false, 0, false, FX_PASS, SEG_R_ALLOW_RELATED },
	{ { "from_pod: unreachable for an untracked flow dropped" }, FX_TO_POD, false, UDP,
	  ERR_UNREACH, false, 0, false, FX_DROP, SEG_DROP_ICMP_UNTRACKED },
	{ { "xdp_from_pod: unreachable for a tracked incoming flow passes" }, FX_TO_POD, true, TCP,
	  ERR_UNREACH, false, 0, false, FX_PASS, SEG_R_ALLOW_RELATED, true },
	{ { "error quoting a packet with IPv4 options / IPv6 ext header passes" }, FX_FROM_POD,
	  true, UDP, ERR_UNREACH, false, 0, false, FX_PASS, SEG_R_ALLOW_RELATED, false, true },
	{ { "error quoting options, another port: dropped" }, FX_FROM_POD, true, UDP, ERR_UNREACH,
	  true, 0, false, FX_DROP, SEG_DROP_ICMP_UNTRACKED, false, true },
	{ { "quoted packet in the wrong direction dropped" }, FX_FROM_POD, true, UDP, ERR_UNREACH,
	  false, 0, false, FX_DROP, SEG_DROP_ICMP_UNTRACKED, .reversed = true },
	/* the error goes back to where the quoted packet came from: a pod
	 * cannot reach other peers, or spoof, by quoting one of its flows */
	{ { "from_pod: error to another peer quoting a tracked flow dropped" }, FX_TO_POD, true,
	  UDP, ERR_UNREACH, false, 0, false, FX_DROP, ANY_REASON, .outer_peer = FX_B },
	{ { "from_pod: error with a spoofed source quoting a tracked flow dropped" }, FX_TO_POD,
	  true, UDP, ERR_UNREACH, false, 0, true, FX_DROP, ANY_REASON, .spoof = true },
	{ { "error quoting 4 bytes of UDP dropped" }, FX_FROM_POD, true, UDP, ERR_UNREACH, false,
	  4, false, FX_DROP, ANY_REASON },
	{ { "error quoting a header with ihl 4 dropped", 4 }, FX_FROM_POD, true, UDP, ERR_UNREACH,
	  false, 0, false, FX_DROP, ANY_REASON, .quote_ihl = 4 },
	{ { "error quoting 12 bytes of an IP header dropped" }, FX_FROM_POD, true, UDP,
	  ERR_UNREACH, false, 0, false, FX_DROP, ANY_REASON, .quote_l3 = 12 },
	{ { "not isolated: untracked error passes" }, FX_FROM_POD, false, UDP, ERR_UNREACH, false,
	  0, true, FX_PASS, ANY_REASON },
};
/* clang-format on */

static void error_type(int family, enum err_kind kind, __u8 *type, __u8 *code)
{
	static const __u8 v4[][2] = {
		[ERR_UNREACH] = { 3, 3 }, [ERR_TIME] = { 11, 0 }, [ERR_TOOBIG] = { 3, 4 }
	};
	static const __u8 v6[][2] = {
		[ERR_UNREACH] = { 1, 4 }, [ERR_TIME] = { 3, 0 }, [ERR_TOOBIG] = { 2, 0 }
	};

	*type = family == 6 ? v6[kind][0] : v4[kind][0];
	*code = family == 6 ? v6[kind][1] : v4[kind][1];
}

static void test_icmp_error(void **state)
{
	const struct fx_inst *in = *state;
	const struct icase *c = (const void *)in->row;
	bool pod_client = c->flow_hook != FX_TO_POD;
	enum fx_hook err_hook = pod_client ? FX_TO_POD : FX_FROM_POD;
	__u16 lport = pod_client ? FX_CLIENT_PORT : 53;
	__u16 rport = pod_client ? 53 : FX_CLIENT_PORT;
	struct tp_spec flow = fx_flow(in->family, c->flow_hook, FX_A, c->proto, lport, rport);
	struct tp_spec quoted = flow;
	struct tp_spec err = { .proto = in->family == 6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP };
	__u8 dir = fx_hook_dir(err_hook);

	if (c->xdp)
		err_hook = FX_XDP_FROM_POD;
	/* the error's direction is isolated with no rule; the flow's is not */
	if (!c->not_iso)
		fx_ep_flags(dir == SEG_DIR_INGRESS ? SEG_EPF_ISOLATED : 0,
			    dir == SEG_DIR_EGRESS ? SEG_EPF_ISOLATED : 0);
	if (c->spoof)
		fx_config(SEG_CFG_ANTISPOOF);
	if (c->tracked)
		assert_int_equal(fx_run(c->flow_hook, &flow, NULL), FX_PASS);
	if (c->other_port)
		quoted.dport++;
	if (c->reversed) {
		quoted.src = flow.dst;
		quoted.dst = flow.src;
		quoted.sport = flow.dport;
		quoted.dport = flow.sport;
	}
	if (c->quote_opts && in->family == 4) {
		quoted.ip4_optlen = 8;
	} else if (c->quote_opts) {
		quoted.ext[0] = IPPROTO_HOPOPTS;
		quoted.n_ext = 1;
	}
	if (c->quote_l4) {
		size_t l3 = in->family == 6 ? TP_IP6_LEN : TP_IP4_LEN;

		quoted.cut = (__u16)(l3 + c->quote_l4);
		quoted.ip_len = (__u32)(l3 + 20 - (in->family == 6 ? TP_IP6_LEN : 0));
	}
	if (c->quote_l3)
		quoted.cut = c->quote_l3;
	quoted.ihl = c->quote_ihl;
	/* the error comes from the remote side (the peer, or a router on the
	 * way: WORLD), about a packet that went the other way */
	err.src = pod_client ? fx_addr(c->kind == ERR_TIME ? FX_WORLD : FX_A, in->family) :
			       fx_addr(FX_POD, in->family);
	err.dst = pod_client ? fx_addr(FX_POD, in->family) : fx_addr(FX_A, in->family);
	if (c->outer_peer && pod_client)
		err.src = fx_addr(c->outer_peer, in->family);
	else if (c->outer_peer)
		err.dst = fx_addr(c->outer_peer, in->family);
	if (c->spoof)
		err.src = fx_addr(FX_POD2, in->family);
	error_type(in->family, c->kind, &err.icmp_type, &err.icmp_code);
	err.inner = &quoted;
	assert_int_equal(fx_run(err_hook, &err, NULL), c->verdict);
	if (c->reason != ANY_REASON)
		assert_int_equal(fx_reason(c->reason).packets, 1);
	if (c->verdict == FX_PASS && c->reason == SEG_R_ALLOW_RELATED) {
		struct seg_ct_entry e;

		/* the error is not a flow of its own */
		assert_int_equal(fx_ct_count(), 1);
		assert_int_equal(fx_ct(in->family, FX_A, lport, rport, c->proto, &e), 0);
	}
}

int run_hostile_tests(void)
{
	static const struct fx_row frag_deny_rows[] = { { "fragments of a denied head", 0 } };
	int failed = FX_RUN_TABLE("bpf hostile packets", test_hostile, hcases);

	failed += FX_RUN_TABLE("bpf fragments", test_frag_allowed, frag_cases);
	failed += FX_RUN_TABLE("bpf fragments denied", test_frag_denied, frag_deny_rows);
	failed += FX_RUN_TABLE("bpf ICMP errors", test_icmp_error, icases);
	return failed;
}
