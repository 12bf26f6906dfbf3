// SPDX-License-Identifier: GPL-2.0-only
/*
 * Verdict paths, protocols, antispoofing and no-endpoint: one packet per
 * case, checked for verdict, reason counter (packets and bytes), conntrack
 * entry and flow event.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "fixture.h"
#include "suites.h"

#define NC 0xff /* ct / ev: do not check */
#define ISO SEG_EPF_ISOLATED
#define AUD (SEG_EPF_ISOLATED | SEG_EPF_AUDIT)
#define TCP IPPROTO_TCP
#define UDP IPPROTO_UDP
#define SCTP IPPROTO_SCTP_
#define ICMP IPPROTO_ICMP /* ICMPv6 in v6 cases */
#define ALLOW SEG_ACT_ALLOW
#define DENY SEG_ACT_DENY

struct vcase {
	struct fx_row row;
	enum fx_hook hook;
	__u8 fin, feg; /* endpoint flags, ingress / egress */
	__u32 cfg; /* seg_config flags */
	bool no_ep; /* no endpoint entry */
	enum fx_peer peer; /* remote side */
	enum fx_peer local; /* FX_POD unless spoofing */
	__u8 proto;
	__u16 port; /* the server's port (the peer's from the pod, the pod's to it) */
	struct fx_rule rule; /* in the hook's direction; action 0 = none */
	int verdict;
	__u32 reason;
	__u8 ct; /* expected conntrack verdict, 0 = no entry */
	__u8 ev; /* expected event type, 0 = none */
};

#define R(r_remote, r_proto, r_lo, r_hi, r_act, r_id)                                             \
	{                                                                                         \
		.remote_id = r_remote, .proto = r_proto, .lo = r_lo, .hi = r_hi, .action = r_act, \
		.rule_id = r_id                                                                   \
	}

/* clang-format off */
static const struct vcase vcases[] = {
	/* not isolated */
	{ { "not isolated to_pod: allowed, tracked" }, FX_TO_POD, 0, 0, 0, false, FX_A, FX_POD,
	  TCP, 80, {}, FX_PASS, SEG_R_ALLOW_NOT_ISOLATED, SEG_VERDICT_ALLOW, SEG_EV_NEW },
	{ { "not isolated from_pod: allowed, tracked" }, FX_FROM_POD, 0, 0, 0, false, FX_A,
	  FX_POD, TCP, 80, {}, FX_PASS, SEG_R_ALLOW_NOT_ISOLATED, SEG_VERDICT_ALLOW, SEG_EV_NEW },
	{ { "not isolated xdp_from_pod: allowed, tracked" }, FX_XDP_FROM_POD, 0, 0, 0, false,
	  FX_A, FX_POD, TCP, 80, {}, FX_PASS, SEG_R_ALLOW_NOT_ISOLATED, SEG_VERDICT_ALLOW,
	  SEG_EV_NEW },
	{ { "egress isolated, to_pod: not isolated in its direction" }, FX_TO_POD, 0, ISO, 0,
	  false, FX_A, FX_POD, TCP, 80, {}, FX_PASS, SEG_R_ALLOW_NOT_ISOLATED, SEG_VERDICT_ALLOW,
	  SEG_EV_NEW },
	{ { "ingress isolated, from_pod: not isolated in its direction" }, FX_FROM_POD, ISO, 0, 0,
	  false, FX_A, FX_POD, TCP, 80, {}, FX_PASS, SEG_R_ALLOW_NOT_ISOLATED, SEG_VERDICT_ALLOW,
	  SEG_EV_NEW },
	/* isolated, allowed by a rule */
	{ { "isolated to_pod: allowed by rule" }, FX_TO_POD, ISO, 0, 0, false, FX_A, FX_POD, TCP,
	  80, R(FX_ID_A, TCP, 80, 80, ALLOW, 5), FX_PASS, SEG_R_ALLOW_RULE, SEG_VERDICT_ALLOW,
	  SEG_EV_NEW },
	{ { "isolated from_pod: allowed by rule" }, FX_FROM_POD, 0, ISO, 0, false, FX_A, FX_POD,
	  TCP, 443, R(FX_ID_A, TCP, 443, 443, ALLOW, 6), FX_PASS, SEG_R_ALLOW_RULE,
	  SEG_VERDICT_ALLOW, SEG_EV_NEW },
	{ { "isolated xdp_from_pod: allowed by rule" }, FX_XDP_FROM_POD, 0, ISO, 0, false, FX_A,
	  FX_POD, TCP, 443, R(FX_ID_A, TCP, 443, 443, ALLOW, 6), FX_PASS, SEG_R_ALLOW_RULE,
	  SEG_VERDICT_ALLOW, SEG_EV_NEW },
	/* isolated, no rule */
	{ { "isolated to_pod: no rule, dropped" }, FX_TO_POD, ISO, 0, 0, false, FX_A, FX_POD, TCP,
	  80, {}, FX_DROP, SEG_DROP_POLICY, 0, SEG_EV_DENY },
	{ { "isolated from_pod: no rule, dropped" }, FX_FROM_POD, 0, ISO, 0, false, FX_A, FX_POD,
	  TCP, 80, {}, FX_DROP, SEG_DROP_POLICY, 0, SEG_EV_DENY },
	{ { "isolated xdp_from_pod: no rule, dropped" }, FX_XDP_FROM_POD, 0, ISO, 0, false, FX_A,
	  FX_POD, TCP, 80, {}, FX_DROP, SEG_DROP_POLICY, 0, SEG_EV_DENY },
	{ { "isolated: rule for another peer, dropped" }, FX_TO_POD, ISO, 0, 0, false, FX_B,
	  FX_POD, TCP, 80, R(FX_ID_A, TCP, 80, 80, ALLOW, 5), FX_DROP, SEG_DROP_POLICY, 0,
	  SEG_EV_DENY },
	{ { "isolated: rule for another port, dropped" }, FX_TO_POD, ISO, 0, 0, false, FX_A,
	  FX_POD, TCP, 81, R(FX_ID_A, TCP, 80, 80, ALLOW, 5), FX_DROP, SEG_DROP_POLICY, 0,
	  SEG_EV_DENY },
	{ { "isolated: rule in the other direction only, dropped" }, FX_TO_POD, ISO, ISO, 0, false,
	  FX_A, FX_POD, TCP, 80, {}, FX_DROP, SEG_DROP_POLICY, 0, SEG_EV_DENY },
	/* deny rules */
	{ { "deny rule to_pod" }, FX_TO_POD, ISO, 0, 0, false, FX_A, FX_POD, TCP, 80,
	  R(FX_ID_A, TCP, 80, 80, DENY, 8), FX_DROP, SEG_DROP_DENY_RULE, 0, SEG_EV_DENY },
	{ { "deny rule from_pod" }, FX_FROM_POD, 0, ISO, 0, false, FX_A, FX_POD, TCP, 80,
	  R(FX_ID_A, TCP, 80, 80, DENY, 8), FX_DROP, SEG_DROP_DENY_RULE, 0, SEG_EV_DENY },
	{ { "deny rule xdp_from_pod" }, FX_XDP_FROM_POD, 0, ISO, 0, false, FX_A, FX_POD, TCP, 80,
	  R(FX_ID_A, TCP, 80, 80, DENY, 8), FX_DROP, SEG_DROP_DENY_RULE, 0, SEG_EV_DENY },
	/* audit */
	{ { "audit to_pod: no rule passes as audit, tracked" }, FX_TO_POD, AUD, 0, 0, false, FX_A,
	  FX_POD, TCP, 80, {}, FX_PASS, SEG_R_AUDIT, SEG_VERDICT_AUDIT, SEG_EV_NEW },
	{ { "audit from_pod: deny rule passes as audit, tracked" }, FX_FROM_POD, 0, AUD, 0, false,
	  FX_A, FX_POD, TCP, 80, R(FX_ID_A, TCP, 80, 80, DENY, 8), FX_PASS, SEG_R_AUDIT,
	  SEG_VERDICT_AUDIT, SEG_EV_NEW },
	{ { "audit: allowed by rule is a plain allow" }, FX_TO_POD, AUD, 0, 0, false, FX_A, FX_POD,
	  TCP, 80, R(FX_ID_A, TCP, 80, 80, ALLOW, 5), FX_PASS, SEG_R_ALLOW_RULE, SEG_VERDICT_ALLOW,
	  SEG_EV_NEW },
	/* host */
	{ { "host: allowed with SEG_CFG_ALLOW_HOST" }, FX_TO_POD, ISO, 0, SEG_CFG_ALLOW_HOST,
	  false, FX_HOST, FX_POD, TCP, 8080, {}, FX_PASS, SEG_R_ALLOW_HOST, SEG_VERDICT_ALLOW,
	  SEG_EV_NEW },
	{ { "host: from_pod to the node allowed with SEG_CFG_ALLOW_HOST" }, FX_FROM_POD, 0, ISO,
	  SEG_CFG_ALLOW_HOST, false, FX_HOST, FX_POD, UDP, 53, {}, FX_PASS, SEG_R_ALLOW_HOST,
	  SEG_VERDICT_ALLOW, SEG_EV_NEW },
	{ { "host: isolated drop without SEG_CFG_ALLOW_HOST" }, FX_TO_POD, ISO, 0, 0, false,
	  FX_HOST, FX_POD, TCP, 8080, {}, FX_DROP, SEG_DROP_POLICY, 0, SEG_EV_DENY },
	{ { "host: SEG_CFG_ALLOW_HOST does not allow other peers" }, FX_TO_POD, ISO, 0,
	  SEG_CFG_ALLOW_HOST, false, FX_A, FX_POD, TCP, 8080, {}, FX_DROP, SEG_DROP_POLICY, 0,
	  SEG_EV_DENY },
	/* remote identity sources */
	{ { "identity from the LPM trie" }, FX_TO_POD, ISO, 0, 0, false, FX_NET, FX_POD, TCP, 80,
	  R(FX_ID_NET, TCP, 80, 80, ALLOW, 9), FX_PASS, SEG_R_ALLOW_RULE, SEG_VERDICT_ALLOW,
	  SEG_EV_NEW },
	{ { "identity WORLD without ipcache entry" }, FX_FROM_POD, 0, ISO, 0, false, FX_WORLD,
	  FX_POD, TCP, 443, R(SEG_ID_WORLD, TCP, 443, 443, ALLOW, 10), FX_PASS, SEG_R_ALLOW_RULE,
	  SEG_VERDICT_ALLOW, SEG_EV_NEW },
	{ { "LPM peer is not WORLD" }, FX_TO_POD, ISO, 0, 0, false, FX_NET, FX_POD, TCP, 80,
	  R(SEG_ID_WORLD, TCP, 80, 80, ALLOW, 10), FX_DROP, SEG_DROP_POLICY, 0, SEG_EV_DENY },
	/* protocols */
	{ { "UDP allowed by UDP rule" }, FX_FROM_POD, 0, ISO, 0, false, FX_A, FX_POD, UDP, 53,
	  R(FX_ID_A, UDP, 53, 53, ALLOW, 11), FX_PASS, SEG_R_ALLOW_RULE, SEG_VERDICT_ALLOW,
	  SEG_EV_NEW },
	{ { "UDP not allowed by TCP rule" }, FX_FROM_POD, 0, ISO, 0, false, FX_A, FX_POD, UDP, 53,
	  R(FX_ID_A, TCP, 53, 53, ALLOW, 11), FX_DROP, SEG_DROP_POLICY, 0, SEG_EV_DENY },
	{ { "SCTP allowed by SCTP rule" }, FX_TO_POD, ISO, 0, 0, false, FX_A, FX_POD, SCTP, 9000,
	  R(FX_ID_A, SCTP, 9000, 9000, ALLOW, 12), FX_PASS, SEG_R_ALLOW_RULE, SEG_VERDICT_ALLOW,
	  SEG_EV_NEW },
	{ { "SCTP no rule" }, FX_TO_POD, ISO, 0, 0, false, FX_A, FX_POD, SCTP, 9000,
	  R(FX_ID_A, TCP, 9000, 9000, ALLOW, 12), FX_DROP, SEG_DROP_POLICY, 0, SEG_EV_DENY },
	{ { "ICMP echo allowed by ICMP rule" }, FX_TO_POD, ISO, 0, 0, false, FX_A, FX_POD, ICMP, 0,
	  R(FX_ID_A, ICMP, 0, 0, ALLOW, 13), FX_PASS, SEG_R_ALLOW_RULE, SEG_VERDICT_ALLOW,
	  SEG_EV_NEW },
	{ { "ICMP echo from_pod allowed by ICMP rule" }, FX_FROM_POD, 0, ISO, 0, false, FX_A,
	  FX_POD, ICMP, 0, R(FX_ID_A, ICMP, 0, 0, ALLOW, 13), FX_PASS, SEG_R_ALLOW_RULE,
	  SEG_VERDICT_ALLOW, SEG_EV_NEW },
	{ { "ICMP echo not allowed by all-ports TCP rule" }, FX_TO_POD, ISO, 0, 0, false, FX_A,
	  FX_POD, ICMP, 0, R(FX_ID_A, TCP, 0, 65535, ALLOW, 13), FX_DROP, SEG_DROP_POLICY, 0,
	  SEG_EV_DENY },
	{ { "any-protocol rule allows UDP" }, FX_TO_POD, ISO, 0, 0, false, FX_A, FX_POD, UDP, 5353,
	  R(FX_ID_A, 0, 0, 0, ALLOW, 14), FX_PASS, SEG_R_ALLOW_RULE, SEG_VERDICT_ALLOW,
	  SEG_EV_NEW },
	{ { "any-protocol rule allows ICMP echo" }, FX_TO_POD, ISO, 0, 0, false, FX_A, FX_POD, ICMP,
	  0, R(FX_ID_A, 0, 0, 0, ALLOW, 14), FX_PASS, SEG_R_ALLOW_RULE, SEG_VERDICT_ALLOW,
	  SEG_EV_NEW },
	{ { "any-protocol ANY-peer rule allows SCTP" }, FX_FROM_POD, 0, ISO, 0, false, FX_B,
	  FX_POD, SCTP, 7, R(SEG_ID_ANY, 0, 0, 0, ALLOW, 15), FX_PASS, SEG_R_ALLOW_RULE,
	  SEG_VERDICT_ALLOW, SEG_EV_NEW },
	/* anti-spoofing (new flows leaving the pod) */
	{ { "antispoof: own address passes" }, FX_FROM_POD, 0, 0, SEG_CFG_ANTISPOOF, false, FX_A,
	  FX_POD, TCP, 80, {}, FX_PASS, SEG_R_ALLOW_NOT_ISOLATED, SEG_VERDICT_ALLOW, SEG_EV_NEW },
	{ { "antispoof: own address, isolated, allowed by rule" }, FX_FROM_POD, 0, ISO,
	  SEG_CFG_ANTISPOOF, false, FX_A, FX_POD, TCP, 80, R(FX_ID_A, TCP, 80, 80, ALLOW, 5),
	  FX_PASS, SEG_R_ALLOW_RULE, SEG_VERDICT_ALLOW, SEG_EV_NEW },
	{ { "antispoof: another endpoint's address dropped" }, FX_FROM_POD, 0, 0,
	  SEG_CFG_ANTISPOOF, false, FX_A, FX_POD2, TCP, 80, {}, FX_DROP, SEG_DROP_SPOOF, 0,
	  SEG_EV_DENY },
	{ { "antispoof: unknown source dropped" }, FX_FROM_POD, 0, 0, SEG_CFG_ANTISPOOF, false,
	  FX_A, FX_WORLD, UDP, 53, {}, FX_DROP, SEG_DROP_SPOOF, 0, SEG_EV_DENY },
	{ { "antispoof: xdp_from_pod, another endpoint's address dropped" }, FX_XDP_FROM_POD, 0,
	  0, SEG_CFG_ANTISPOOF, false, FX_A, FX_POD2, TCP, 80, {}, FX_DROP, SEG_DROP_SPOOF, 0,
	  SEG_EV_DENY },
	{ { "antispoof off: unknown source passes" }, FX_FROM_POD, 0, 0, 0, false, FX_A, FX_WORLD,
	  UDP, 53, {}, FX_PASS, SEG_R_ALLOW_NOT_ISOLATED, NC, NC },
	/* no endpoint */
	{ { "no endpoint to_pod: dropped" }, FX_TO_POD, 0, 0, 0, true, FX_A, FX_POD, TCP, 80, {},
	  FX_DROP, SEG_DROP_NO_ENDPOINT, 0, NC },
	{ { "no endpoint from_pod: dropped" }, FX_FROM_POD, 0, 0, 0, true, FX_A, FX_POD, TCP, 80,
	  {}, FX_DROP, SEG_DROP_NO_ENDPOINT, 0, NC },
	{ { "no endpoint xdp_from_pod: dropped" }, FX_XDP_FROM_POD, 0, 0, 0, true, FX_A, FX_POD,
	  UDP, 53, {}, FX_DROP, SEG_DROP_NO_ENDPOINT, 0, NC },
	{ { "no endpoint with SEG_CFG_PASS_NO_ENDPOINT: passes" }, FX_TO_POD, 0, 0,
	  SEG_CFG_PASS_NO_ENDPOINT, true, FX_A, FX_POD, TCP, 80, {}, FX_PASS, (__u32)-1, 0, NC },
};
/* clang-format on */

static __u8 fam_proto(int family, __u8 proto)
{
	return proto == IPPROTO_ICMP && family == 6 ? IPPROTO_ICMPV6 : proto;
}

static void check_ct(const struct vcase *c, int family, __u16 lport, __u16 rport, int len)
{
	__u8 proto = fam_proto(family, c->proto);
	__u8 dir = fx_hook_dir(c->hook);
	struct seg_ct_entry e;
	int err;

	if (c->ct == NC || c->local != FX_POD)
		return;
	err = fx_ct(family, c->peer, lport, rport, proto, &e);
	if (!c->ct) {
		assert_int_equal(err, -ENOENT);
		assert_int_equal(fx_ct_count(), 0);
		return;
	}
	assert_int_equal(err, 0);
	assert_int_equal(e.verdict, c->ct);
	assert_int_equal(e.reason, c->reason);
	assert_int_equal(e.dir, dir);
	assert_int_equal(e.ep_id, FX_EP_ID);
	assert_int_equal(e.remote_id, fx_peer_id(c->peer));
	assert_int_equal(e.revision, FX_REV);
	if (c->reason == SEG_R_ALLOW_RULE)
		assert_int_equal(e.rule_id, c->rule.rule_id);
	if (c->reason == SEG_R_ALLOW_NOT_ISOLATED || c->reason == SEG_R_ALLOW_HOST)
		assert_int_equal(e.rule_id, 0);
	assert_int_equal(e.packets[dir], 1);
	assert_int_equal(e.packets[!dir], 0);
	assert_int_equal(e.bytes[dir], len);
	assert_true(e.first_seen_ns > 0);
	assert_true(e.last_seen_ns >= e.first_seen_ns);
	if (proto == IPPROTO_TCP)
		assert_int_equal(e.tcp_flags[dir], TP_SYN);
}

static void check_event(const struct vcase *c, const struct tp_spec *s, int family, int len)
{
	struct fx *f = fx();
	const struct seg_flow_event *ev = &f->ev[0];
	__u32 saddr[4], daddr[4];

	if (c->ev == NC)
		return;
	if (!c->ev) {
		assert_int_equal(fx_events(), 0);
		return;
	}
	assert_int_equal(fx_events(), 1);
	assert_int_equal(ev->type, c->ev);
	assert_int_equal(ev->reason, c->reason);
	assert_int_equal(ev->verdict, c->verdict == FX_PASS ?
					      (c->reason == SEG_R_AUDIT ? SEG_VERDICT_AUDIT :
									  SEG_VERDICT_ALLOW) :
					      SEG_VERDICT_DENY);
	assert_int_equal(ev->dir, fx_hook_dir(c->hook));
	assert_int_equal(ev->proto, s->proto);
	assert_int_equal(ev->family, family);
	assert_int_equal(ev->ifkey, FX_IFKEY);
	assert_int_equal(ev->ep_id, FX_EP_ID);
	assert_int_equal(ev->local_id, FX_LOCAL_ID);
	assert_int_equal(ev->remote_id, fx_peer_id(c->peer));
	assert_int_equal(ev->pkt_len, len);
	assert_int_equal(ev->suppressed, 0);
	assert_true(ev->ts_ns > 0);
	if (c->reason == SEG_R_ALLOW_RULE || c->reason == SEG_DROP_DENY_RULE)
		assert_int_equal(ev->rule_id, c->rule.rule_id);
	tp_addr(s->src, saddr);
	tp_addr(s->dst, daddr);
	assert_memory_equal(ev->saddr, saddr, 16);
	assert_memory_equal(ev->daddr, daddr, 16);
	if (fx_proto_has_ports(s->proto)) {
		assert_int_equal(ev->sport, s->sport);
		assert_int_equal(ev->dport, s->dport);
	}
	if (s->proto == IPPROTO_TCP)
		assert_int_equal(ev->tcp_flags, TP_SYN);
}

static void test_verdict(void **state)
{
	const struct fx_inst *in = *state;
	const struct vcase *c = (const void *)in->row;
	bool out = c->hook != FX_TO_POD;
	__u16 lport = out ? FX_CLIENT_PORT : c->port;
	__u16 rport = out ? c->port : FX_CLIENT_PORT;
	struct tp_spec s;
	int len;

	fx_config(c->cfg);
	fx_ep_flags(c->fin, c->feg);
	if (c->rule.action) {
		struct fx_rule r = c->rule;

		r.dir = fx_hook_dir(c->hook);
		r.proto = fam_proto(in->family, r.proto);
		fx_rule_add(&r);
	}
	if (c->no_ep)
		fx_ep_delete();
	s = fx_flow(in->family, c->hook, c->peer, c->proto, lport, rport);
	if (c->local != FX_POD)
		s.src = fx_addr(c->local, in->family);

	assert_int_equal(fx_run(c->hook, &s, &len), c->verdict);
	if (c->reason != (__u32)-1)
		fx_assert_only_reason(c->reason, 1, len);
	check_ct(c, in->family, lport, rport, len);
	check_event(c, &s, in->family, len);
}

int run_verdict_tests(void)
{
	return FX_RUN_TABLE("bpf verdicts", test_verdict, vcases);
}
