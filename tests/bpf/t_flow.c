// SPDX-License-Identifier: GPL-2.0-only
/*
 * Conntrack: replies of tracked flows, established packets, revocation by
 * endpoint revision, and timeouts.
 */
#include <errno.h>
#include <netinet/in.h>
#include <unistd.h>

#include "fixture.h"
#include "suites.h"

#define ISO SEG_EPF_ISOLATED

/* The reply of a flow s: addresses and ports swapped; TCP SYN|ACK, ICMP
 * echo reply. */
static struct tp_spec reply_of(const struct tp_spec *s, int family)
{
	struct tp_spec r = *s;

	r.src = s->dst;
	r.dst = s->src;
	r.sport = s->dport;
	r.dport = s->sport;
	r.tcp_flags = TP_SYN | TP_ACK;
	if (s->proto == IPPROTO_ICMP || s->proto == IPPROTO_ICMPV6)
		r.icmp_type = family == 6 ? 129 : 0;
	return r;
}

struct reply_case {
	struct fx_row row;
	enum fx_hook req_hook; /* the request's hook */
	enum fx_hook reply_hook;
	__u8 proto;
	bool rule; /* request allowed by a rule (else: its direction not isolated) */
};

/* clang-format off */
static const struct reply_case reply_cases[] = {
	{ { "TCP reply to pod (request not isolated)" }, FX_FROM_POD, FX_TO_POD, IPPROTO_TCP,
	  false },
	{ { "TCP reply to pod (request allowed by rule)" }, FX_FROM_POD, FX_TO_POD, IPPROTO_TCP,
	  true },
	{ { "UDP reply to pod" }, FX_FROM_POD, FX_TO_POD, IPPROTO_UDP, false },
	{ { "SCTP reply to pod" }, FX_FROM_POD, FX_TO_POD, IPPROTO_SCTP_, true },
	{ { "ICMP echo reply to pod" }, FX_FROM_POD, FX_TO_POD, IPPROTO_ICMP, true },
	{ { "TCP reply from pod" }, FX_TO_POD, FX_FROM_POD, IPPROTO_TCP, true },
	{ { "UDP reply from pod (xdp)" }, FX_TO_POD, FX_XDP_FROM_POD, IPPROTO_UDP, false },
	{ { "ICMP echo reply from pod" }, FX_TO_POD, FX_FROM_POD, IPPROTO_ICMP, false },
};
/* clang-format on */

static __u8 fam_proto(int family, __u8 proto)
{
	return proto == IPPROTO_ICMP && family == 6 ? IPPROTO_ICMPV6 : proto;
}

/* Request, then its reply into a direction that is isolated with no rule:
 * the reply passes as established; another port of the same peer does not. */
static void test_reply(void **state)
{
	const struct fx_inst *in = *state;
	const struct reply_case *c = (const void *)in->row;
	__u8 req_dir = fx_hook_dir(c->req_hook);
	__u8 rep_dir = fx_hook_dir(c->reply_hook);
	bool out = c->req_hook != FX_TO_POD;
	__u16 lport = out ? FX_CLIENT_PORT : 8080;
	__u16 rport = out ? 8080 : FX_CLIENT_PORT;
	__u8 proto = fam_proto(in->family, c->proto);
	struct fx_rule r = { .dir = req_dir,
			     .remote_id = FX_ID_A,
			     .proto = proto,
			     .lo = 8080,
			     .hi = 8080,
			     .action = SEG_ACT_ALLOW,
			     .rule_id = 40 };
	struct tp_spec req, rep, other;
	struct seg_ct_entry e;
	int req_len, rep_len;

	fx_ep_flags(rep_dir == SEG_DIR_INGRESS || c->rule ? ISO : 0,
		    rep_dir == SEG_DIR_EGRESS || c->rule ? ISO : 0);
	if (c->rule)
		fx_rule_add(&r);
	req = fx_flow(in->family, c->req_hook, FX_A, proto, lport, rport);
	rep = reply_of(&req, in->family);
	assert_int_equal(fx_run(c->req_hook, &req, &req_len), FX_PASS);
	assert_int_equal(fx_run(c->reply_hook, &rep, &rep_len), FX_PASS);
	assert_int_equal(fx_reason(SEG_R_ALLOW_ESTABLISHED).packets, 1);
	assert_int_equal(fx_reason(SEG_R_ALLOW_ESTABLISHED).bytes, rep_len);

	assert_int_equal(fx_ct(in->family, FX_A, lport, rport, proto, &e), 0);
	assert_int_equal(e.dir, req_dir);
	assert_int_equal(e.packets[req_dir], 1);
	assert_int_equal(e.packets[rep_dir], 1);
	assert_int_equal(e.bytes[req_dir], req_len);
	assert_int_equal(e.bytes[rep_dir], rep_len);
	if (proto == IPPROTO_TCP) {
		assert_int_equal(e.tcp_flags[req_dir], TP_SYN);
		assert_int_equal(e.tcp_flags[rep_dir], TP_SYN | TP_ACK);
	}
	if (c->rule) /* the request the rule decided; the reply is in the entry */
		assert_int_equal(fx_rule_ctr(r.rule_id).packets, 1);
	assert_int_equal(fx_ct_count(), 1);
	/* one NEW event for the flow, none for its reply */
	assert_int_equal(fx_events(), 1);
	assert_int_equal(fx()->ev[0].type, SEG_EV_NEW);

	/* the same peer on another pod port is not part of the flow */
	if (fx_proto_has_ports(proto)) {
		other = rep;
		if (out)
			other.dport = lport + 1;
		else
			other.sport = lport + 1;
		assert_int_equal(fx_run(c->reply_hook, &other, NULL), FX_DROP);
		assert_int_equal(fx_reason(SEG_DROP_POLICY).packets, 1);
	} else { /* ICMP echo: another id is another flow */
		other = rep;
		other.icmp_id++;
		assert_int_equal(fx_run(c->reply_hook, &other, NULL), FX_DROP);
		assert_int_equal(fx_reason(SEG_DROP_POLICY).packets, 1);
	}
	/* another peer with the same ports is not either */
	other = rep;
	if (out)
		other.src = fx_addr(FX_B, in->family);
	else
		other.dst = fx_addr(FX_B, in->family);
	assert_int_equal(fx_run(c->reply_hook, &other, NULL), FX_DROP);
}

/* Established: later packets of an allowed flow pass as established and
 * are counted on the rule and the conntrack entry. */
static void test_established(void **state)
{
	const struct fx_inst *in = *state;
	struct fx_rule r = { .dir = SEG_DIR_EGRESS,
			     .remote_id = FX_ID_A,
			     .proto = IPPROTO_TCP,
			     .lo = 443,
			     .hi = 443,
			     .action = SEG_ACT_ALLOW,
			     .rule_id = 41 };
	struct tp_spec s = fx_flow(in->family, FX_FROM_POD, FX_A, IPPROTO_TCP, FX_CLIENT_PORT, 443);
	struct seg_rule_counter rc;
	struct seg_ct_entry e;
	int len1, len2;

	fx_ep_flags(ISO, ISO);
	fx_rule_add(&r);
	assert_int_equal(fx_run(FX_FROM_POD, &s, &len1), FX_PASS);
	usleep(25000); /* > one tick of the coarse clock CT entries are stamped with */
	s.tcp_flags = TP_ACK | TP_PSH;
	s.payload = 100;
	assert_int_equal(fx_run(FX_FROM_POD, &s, &len2), FX_PASS);
	assert_int_equal(fx_run(FX_XDP_FROM_POD, &s, NULL), FX_PASS);

	assert_int_equal(fx_reason(SEG_R_ALLOW_RULE).packets, 1);
	assert_int_equal(fx_reason(SEG_R_ALLOW_ESTABLISHED).packets, 2);
	assert_int_equal(fx_reason(SEG_R_ALLOW_ESTABLISHED).bytes, 2 * len2);
	/* per rule: the packet it decided; the flow's totals are in its entry */
	rc = fx_rule_ctr(r.rule_id);
	assert_int_equal(rc.packets, 1);
	assert_int_equal(rc.bytes, len1);
	assert_true(rc.last_hit_ns > 0);
	assert_int_equal(fx_ct(in->family, FX_A, FX_CLIENT_PORT, 443, IPPROTO_TCP, &e), 0);
	assert_int_equal(e.packets[SEG_DIR_EGRESS], 3);
	assert_int_equal(e.bytes[SEG_DIR_EGRESS], len1 + 2 * len2);
	assert_int_equal(e.tcp_flags[SEG_DIR_EGRESS], TP_SYN | TP_ACK | TP_PSH);
	assert_true(e.last_seen_ns > e.first_seen_ns && e.first_seen_ns > 0);
	assert_int_equal(fx_events(), 1);
}

/* The established fast path (bpf/lib/fast.h) takes plain packets only;
 * every other packet of a tracked flow goes through the full parser. Both
 * must reach the same verdict and accounting, and neither may pass what the
 * full parser refuses. */
enum fast_knob { FK_PLAIN, FK_IP4_OPTS, FK_IP6_EXT, FK_FIRST_FRAG, FK_LEN_BEYOND, FK_TCP_CUT };

struct fast_case {
	struct fx_row row;
	__u8 proto;
	enum fast_knob knob;
	enum fx_hook hook; /* of the second packet (the first leaves the pod) */
	int verdict;
	__u32 reason;
};

/* clang-format off */
static const struct fast_case fast_cases[] = {
	{ { "plain TCP" }, IPPROTO_TCP, FK_PLAIN, FX_FROM_POD, FX_PASS, SEG_R_ALLOW_ESTABLISHED },
	{ { "plain TCP reply" }, IPPROTO_TCP, FK_PLAIN, FX_TO_POD, FX_PASS, SEG_R_ALLOW_ESTABLISHED },
	{ { "plain UDP (xdp)" }, IPPROTO_UDP, FK_PLAIN, FX_XDP_FROM_POD, FX_PASS,
	  SEG_R_ALLOW_ESTABLISHED },
	{ { "SCTP (full parser)" }, IPPROTO_SCTP_, FK_PLAIN, FX_FROM_POD, FX_PASS,
	  SEG_R_ALLOW_ESTABLISHED },
	{ { "IPv4 options (full parser)", 4 }, IPPROTO_TCP, FK_IP4_OPTS, FX_FROM_POD, FX_PASS,
	  SEG_R_ALLOW_ESTABLISHED },
	{ { "IPv6 extension header (full parser)", 6 }, IPPROTO_TCP, FK_IP6_EXT, FX_TO_POD,
	  FX_PASS, SEG_R_ALLOW_ESTABLISHED },
	{ { "first fragment (full parser)" }, IPPROTO_UDP, FK_FIRST_FRAG, FX_FROM_POD, FX_PASS,
	  SEG_R_ALLOW_ESTABLISHED },
	{ { "length beyond the packet: dropped" }, IPPROTO_TCP, FK_LEN_BEYOND, FX_FROM_POD,
	  FX_DROP, SEG_DROP_BAD_LEN },
	{ { "TCP header cut short: dropped (xdp)" }, IPPROTO_TCP, FK_TCP_CUT, FX_XDP_FROM_POD,
	  FX_DROP, SEG_DROP_TRUNCATED },
};
/* clang-format on */

static void test_fast_path(void **state)
{
	const struct fx_inst *in = *state;
	const struct fast_case *c = (const void *)in->row;
	struct fx_rule r = { .dir = SEG_DIR_EGRESS,
			     .remote_id = FX_ID_A,
			     .proto = c->proto,
			     .lo = 8080,
			     .hi = 8080,
			     .action = SEG_ACT_ALLOW,
			     .rule_id = 45 };
	struct tp_spec s = fx_flow(in->family, FX_FROM_POD, FX_A, c->proto, FX_CLIENT_PORT, 8080);
	struct tp_spec n = c->hook == FX_TO_POD ? reply_of(&s, in->family) : s;
	bool passes = c->verdict == FX_PASS;
	struct seg_ct_entry e;
	int len1, len2 = 0;

	fx_ep_flags(ISO, ISO);
	fx_rule_add(&r);
	assert_int_equal(fx_run(FX_FROM_POD, &s, &len1), FX_PASS);
	n.tcp_flags = TP_ACK;
	n.payload = 64;
	switch (c->knob) {
	case FK_PLAIN:
		break;
	case FK_IP4_OPTS:
		n.ip4_optlen = 8;
		break;
	case FK_IP6_EXT:
		n.ext[0] = IPPROTO_DSTOPTS;
		n.n_ext = 1;
		break;
	case FK_FIRST_FRAG:
		n.mf = 1;
		n.frag_id = 77;
		break;
	case FK_LEN_BEYOND:
		n.ip_len = in->family == 4 ? 20 + 20 + 64 + 1 : 20 + 64 + 1;
		break;
	case FK_TCP_CUT:
		n.cut = 14 + (in->family == 4 ? 20 : 40) + 12;
		break;
	}
	assert_int_equal(fx_run(c->hook, &n, &len2), c->verdict);

	assert_int_equal(fx_reason(SEG_R_ALLOW_RULE).packets, 1);
	assert_int_equal(fx_reason(c->reason).packets, 1);
	assert_int_equal(fx_reason(c->reason).bytes, len2);
	/* established packets are not counted per rule, on either path */
	assert_int_equal(fx_rule_ctr(r.rule_id).packets, 1);
	assert_int_equal(fx_rule_ctr(r.rule_id).bytes, len1);
	assert_int_equal(fx_ct(in->family, FX_A, FX_CLIENT_PORT, 8080, c->proto, &e), 0);
	assert_int_equal(e.packets[SEG_DIR_EGRESS] + e.packets[SEG_DIR_INGRESS], passes ? 2 : 1);
	assert_int_equal(e.bytes[fx_hook_dir(c->hook)],
			 (fx_hook_dir(c->hook) == SEG_DIR_EGRESS ? len1 : 0) + (passes ? len2 : 0));
	if (passes && c->proto == IPPROTO_TCP)
		assert_int_equal(e.tcp_flags[fx_hook_dir(c->hook)] & TP_ACK, TP_ACK);
}

/* Revocation: an allowed flow, then a change, then the next packet (a
 * plain TCP ACK: the established fast path takes it when the entry is
 * current). What a writer bumps after its change decides what the fast path
 * sees: only seg_config.generation (docs/architecture.md, "The established
 * fast path"); the endpoint revision is compared by the full pipeline. */
enum change { CH_DEL_RULE, CH_KEEP_RULE, CH_IDENTITY, CH_DENY_RULE, CH_NEW_RULE_ID, CH_DEL_EP };
enum bump { B_NONE, B_REV, B_GEN, B_BOTH };
#define NEW_RULE_ID 43

struct revoke_case {
	struct fx_row row;
	enum change change;
	enum bump bump; /* after the change */
	enum fx_hook next_hook; /* the next packet: request direction again, or reply */
	int verdict;
	__u32 reason;
};

/* clang-format off */
static const struct revoke_case revoke_cases[] = {
	{ { "rule removed + revision and generation bump: next packet revoked" }, CH_DEL_RULE,
	  B_BOTH, FX_FROM_POD, FX_DROP, SEG_DROP_REVOKED },
	{ { "rule removed + revision and generation bump: reply revoked too" }, CH_DEL_RULE,
	  B_BOTH, FX_TO_POD, FX_DROP, SEG_DROP_REVOKED },
	{ { "rule removed + revision and generation bump: xdp packet revoked" }, CH_DEL_RULE,
	  B_BOTH, FX_XDP_FROM_POD, FX_DROP, SEG_DROP_REVOKED },
	{ { "rule removed + generation bump alone (a flip, a policy write): revoked" },
	  CH_DEL_RULE, B_GEN, FX_FROM_POD, FX_DROP, SEG_DROP_REVOKED },
	{ { "rule removed + generation bump alone: reply revoked" }, CH_DEL_RULE, B_GEN,
	  FX_TO_POD, FX_DROP, SEG_DROP_REVOKED },
	{ { "rule removed, no bump: established still passes" }, CH_DEL_RULE, B_NONE, FX_FROM_POD,
	  FX_PASS, SEG_R_ALLOW_ESTABLISHED },
	/* the contract: a revision bump without a generation bump is not seen
	 * by the fast path (every writer bumps both, tests/dp/test_dp_gen) */
	{ { "rule removed + revision bump alone: the fast path still passes" }, CH_DEL_RULE,
	  B_REV, FX_FROM_POD, FX_PASS, SEG_R_ALLOW_ESTABLISHED },
	{ { "rule kept + revision and generation bump: passes, entry takes them" }, CH_KEEP_RULE,
	  B_BOTH, FX_FROM_POD, FX_PASS, (__u32)-1 },
	{ { "rule kept + generation bump: reply passes" }, CH_KEEP_RULE, B_GEN, FX_TO_POD, FX_PASS,
	  (__u32)-1 },
	{ { "allow rule replaced by a deny rule + bump: revoked" }, CH_DENY_RULE, B_BOTH, FX_TO_POD,
	  FX_DROP, SEG_DROP_REVOKED },
	{ { "rule replaced by another allow rule + bump: entry takes its id" }, CH_NEW_RULE_ID,
	  B_BOTH, FX_FROM_POD, FX_PASS, (__u32)-1 },
	{ { "peer identity changed + generation bump: revoked" }, CH_IDENTITY, B_GEN, FX_FROM_POD,
	  FX_DROP, SEG_DROP_REVOKED },
	{ { "endpoint deleted + generation bump: no endpoint" }, CH_DEL_EP, B_GEN, FX_FROM_POD,
	  FX_DROP, SEG_DROP_NO_ENDPOINT },
	{ { "endpoint deleted, no bump: the fast path still passes" }, CH_DEL_EP, B_NONE,
	  FX_FROM_POD, FX_PASS, SEG_R_ALLOW_ESTABLISHED },
};
/* clang-format on */

static void test_revoke(void **state)
{
	const struct fx_inst *in = *state;
	const struct revoke_case *c = (const void *)in->row;
	struct fx_rule r = { .dir = SEG_DIR_EGRESS,
			     .remote_id = FX_ID_A,
			     .proto = IPPROTO_TCP,
			     .lo = 80,
			     .hi = 80,
			     .action = SEG_ACT_ALLOW,
			     .rule_id = 42 };
	struct tp_spec s = fx_flow(in->family, FX_FROM_POD, FX_A, IPPROTO_TCP, FX_CLIENT_PORT, 80);
	struct tp_spec next = s;
	struct seg_ct_entry e;
	int err;

	fx_ep_flags(ISO, ISO); /* ingress isolated, no rule: replies need the CT */
	fx_rule_add(&r);
	assert_int_equal(fx_run(FX_FROM_POD, &s, NULL), FX_PASS);
	assert_int_equal(fx_events(), 1);
	assert_int_equal(fx_ct(in->family, FX_A, FX_CLIENT_PORT, 80, IPPROTO_TCP, &e), 0);
	assert_int_equal(e.generation, fx_gen());
	assert_int_equal(e.ifkey, fx()->ifkey);
	/* established, on the fast path */
	next.tcp_flags = TP_ACK;
	assert_int_equal(fx_run(FX_FROM_POD, &next, NULL), FX_PASS);
	assert_int_equal(fx_reason(SEG_R_ALLOW_ESTABLISHED).packets, 1);

	switch (c->change) {
	case CH_DEL_RULE:
		fx_rule_del(&r);
		break;
	case CH_KEEP_RULE:
		break;
	case CH_DENY_RULE:
	case CH_NEW_RULE_ID:
		r.action = c->change == CH_DENY_RULE ? SEG_ACT_DENY : SEG_ACT_ALLOW;
		r.rule_id = c->change == CH_DENY_RULE ? r.rule_id + 100 : NEW_RULE_ID;
		fx_rule_add(&r); /* same key, new value */
		break;
	case CH_IDENTITY:
		fx_ipcache(fx_addr(FX_A, in->family), FX_ID_B, 0);
		break;
	case CH_DEL_EP:
		fx_ep_delete();
		break;
	}
	if (c->bump == B_REV || c->bump == B_BOTH)
		fx_ep_bump_only();
	if (c->bump == B_GEN || c->bump == B_BOTH)
		fx_gen_bump();
	if (c->next_hook == FX_TO_POD)
		next = reply_of(&s, in->family);
	next.tcp_flags = TP_ACK;
	assert_int_equal(fx_run(c->next_hook, &next, NULL), c->verdict);
	if (c->reason != (__u32)-1)
		assert_int_equal(fx_reason(c->reason).packets,
				 c->reason == SEG_R_ALLOW_ESTABLISHED ? 2 : 1);
	if (c->change == CH_DEL_EP)
		return;

	err = fx_ct(in->family, FX_A, FX_CLIENT_PORT, 80, IPPROTO_TCP, &e);
	if (c->verdict == FX_DROP) {
		/* the entry stays, cut: a tombstone of the new state */
		assert_int_equal(err, 0);
		assert_int_equal(e.verdict, SEG_VERDICT_DENY);
		assert_int_equal(e.reason, SEG_DROP_REVOKED);
		assert_int_equal(e.revision, fx()->ep.revision + fx_gen());
		assert_int_equal(e.generation, fx_gen());
		assert_int_equal(fx_events(), 2);
		assert_int_equal(fx()->ev[1].type, SEG_EV_REVOKED);
		assert_int_equal(fx()->ev[1].reason, SEG_DROP_REVOKED);
		assert_int_equal(fx()->ev[1].ep_id, FX_EP_ID);
		/* and the flow stays cut, both ways, though the entry is of
		 * this generation */
		s.tcp_flags = TP_ACK;
		assert_int_equal(fx_run(FX_FROM_POD, &s, NULL), FX_DROP);
		next = reply_of(&s, in->family);
		next.tcp_flags = TP_ACK;
		assert_int_equal(fx_run(FX_TO_POD, &next, NULL), FX_DROP);
		assert_int_equal(fx_reason(SEG_DROP_REVOKED).packets, 3);
		return;
	}
	assert_int_equal(err, 0);
	assert_int_equal(fx_reason(SEG_DROP_REVOKED).packets, 0);
	if (c->bump == B_REV || c->bump == B_NONE) {
		/* not re-checked: the entry is as it was */
		assert_int_equal(e.revision, FX_REV + fx_gen());
		return;
	}
	assert_int_equal(e.revision, fx()->ep.revision + fx_gen());
	assert_int_equal(e.generation, fx_gen());
	assert_int_equal(e.rule_id, r.rule_id);
	/* and now it is established in the new generation */
	assert_int_equal(fx_run(c->next_hook, &next, NULL), FX_PASS);
	assert_int_equal(fx_reason(SEG_R_ALLOW_ESTABLISHED).packets, 3);
}

/* Audit: a would-deny flow passes, is tracked (its replies pass), and is
 * cut once the endpoint enforces. */
static void test_audit_flow(void **state)
{
	const struct fx_inst *in = *state;
	struct tp_spec req =
		fx_flow(in->family, FX_TO_POD, FX_A, IPPROTO_TCP, 8080, FX_CLIENT_PORT);
	struct tp_spec rep = reply_of(&req, in->family);
	struct seg_ct_entry e;

	fx_ep_flags(SEG_EPF_ISOLATED | SEG_EPF_AUDIT, ISO);
	assert_int_equal(fx_run(FX_TO_POD, &req, NULL), FX_PASS);
	assert_int_equal(fx_reason(SEG_R_AUDIT).packets, 1);
	assert_int_equal(fx_ct(in->family, FX_A, 8080, FX_CLIENT_PORT, IPPROTO_TCP, &e), 0);
	assert_int_equal(e.verdict, SEG_VERDICT_AUDIT);
	assert_int_equal(e.reason, SEG_R_AUDIT);
	assert_int_equal(fx_run(FX_FROM_POD, &rep, NULL), FX_PASS);
	assert_int_equal(fx_reason(SEG_R_ALLOW_ESTABLISHED).packets, 1);
	assert_int_equal(fx_events(), 1);
	assert_int_equal(fx()->ev[0].type, SEG_EV_NEW);
	assert_int_equal(fx()->ev[0].verdict, SEG_VERDICT_AUDIT);

	/* audit off: enforce */
	fx()->ep.flags[SEG_DIR_INGRESS] = ISO;
	fx_ep_bump();
	req.tcp_flags = TP_ACK;
	assert_int_equal(fx_run(FX_TO_POD, &req, NULL), FX_DROP);
	assert_int_equal(fx_reason(SEG_DROP_REVOKED).packets, 1);
	assert_int_equal(fx_ct(in->family, FX_A, 8080, FX_CLIENT_PORT, IPPROTO_TCP, &e), 0);
	assert_int_equal(e.verdict, SEG_VERDICT_DENY);
	/* the pod's reply does not start the flow over as its own egress flow */
	rep.tcp_flags = TP_ACK;
	assert_int_equal(fx_run(FX_FROM_POD, &rep, NULL), FX_DROP);
	assert_int_equal(fx_reason(SEG_DROP_REVOKED).packets, 2);
}

/* Conntrack entries belong to their endpoint: a new endpoint on the same
 * interface (pod replaced, same address) does not inherit them. */
static void test_ct_other_endpoint(void **state)
{
	const struct fx_inst *in = *state;
	struct tp_spec req =
		fx_flow(in->family, FX_FROM_POD, FX_A, IPPROTO_UDP, FX_CLIENT_PORT, 53);
	struct tp_spec rep = reply_of(&req, in->family);

	fx_ep_flags(ISO, 0);
	assert_int_equal(fx_run(FX_FROM_POD, &req, NULL), FX_PASS);
	fx()->ep.ep_id = FX_EP_ID + 1;
	fx_ep_bump();
	assert_int_equal(fx_run(FX_TO_POD, &rep, NULL), FX_DROP);
	assert_int_equal(fx_reason(SEG_DROP_POLICY).packets, 1);
	assert_int_equal(fx_reason(SEG_R_ALLOW_ESTABLISHED).packets, 0);
}

/* A flow allowed while the pod was not isolated is cut when a policy
 * starts selecting it (isolation is part of the revision). */
static void test_revoke_on_isolation(void **state)
{
	for (int fam = 4; fam <= 6; fam += 2) {
		struct tp_spec s = fx_flow(fam, FX_FROM_POD, FX_A, IPPROTO_UDP, FX_CLIENT_PORT, 53);

		fx_reset(NULL);
		assert_int_equal(fx_run(FX_FROM_POD, &s, NULL), FX_PASS);
		fx()->ep.flags[SEG_DIR_EGRESS] = ISO;
		fx_ep_bump();
		assert_int_equal(fx_run(FX_FROM_POD, &s, NULL), FX_DROP);
		assert_int_equal(fx_reason(SEG_DROP_REVOKED).packets, 1);
		assert_int_equal(fx_ct_count(), 1); /* the tombstone */
		assert_int_equal(fx_run(FX_FROM_POD, &s, NULL), FX_DROP);
		assert_int_equal(fx_reason(SEG_DROP_REVOKED).packets, 2);
	}
}

/* A revoked flow is not resurrected through the direction that is not
 * isolated: the pod's own packets of the flow (a server retransmitting)
 * must not start it over as an egress flow whose "replies" are the revoked
 * requests. Re-allowed, it passes again; a fresh SYN is decided afresh. */
static void test_revoke_no_resurrect(void **state)
{
	(void)state;
	for (int fam = 4; fam <= 6; fam += 2) {
		for (int udp = 0; udp <= 1; udp++) {
			__u8 proto = udp ? IPPROTO_UDP : IPPROTO_TCP;
			struct fx_rule r = { .dir = SEG_DIR_INGRESS,
					     .remote_id = FX_ID_A,
					     .proto = proto,
					     .lo = 80,
					     .hi = 80,
					     .action = SEG_ACT_ALLOW,
					     .rule_id = 7 };
			struct tp_spec req =
				fx_flow(fam, FX_TO_POD, FX_A, proto, 80, FX_CLIENT_PORT);
			struct tp_spec rep = reply_of(&req, fam);

			fx_reset(NULL);
			fx_ep_flags(ISO, 0); /* ingress isolated, egress open */
			fx_rule_add(&r);
			assert_int_equal(fx_run(FX_TO_POD, &req, NULL), FX_PASS);
			fx_rule_del(&r);
			fx_ep_bump();
			rep.tcp_flags = TP_ACK;
			assert_int_equal(fx_run(FX_FROM_POD, &rep, NULL), FX_DROP);
			/* the server retransmits: still cut, not a new egress flow */
			assert_int_equal(fx_run(FX_FROM_POD, &rep, NULL), FX_DROP);
			req.tcp_flags = TP_ACK;
			assert_int_equal(fx_run(FX_TO_POD, &req, NULL), FX_DROP);
			assert_int_equal(fx_reason(SEG_DROP_REVOKED).packets, 3);
			assert_int_equal(fx_reason(SEG_R_ALLOW_ESTABLISHED).packets, 0);
			if (!udp) { /* a new connection on the same tuple: the policy's */
				req.tcp_flags = TP_SYN;
				assert_int_equal(fx_run(FX_TO_POD, &req, NULL), FX_DROP);
				assert_int_equal(fx_reason(SEG_DROP_POLICY).packets, 1);
				req.tcp_flags = TP_ACK;
			}
			/* allowed again: the cut flow passes again */
			fx_rule_add(&r);
			fx_ep_bump();
			assert_int_equal(fx_run(FX_TO_POD, &req, NULL), FX_PASS);
			assert_int_equal(fx_run(FX_FROM_POD, &rep, NULL), FX_PASS);
		}
	}
}

/* A TCP SYN from the remote side is never the reply of a flow the pod
 * opened from the same port: it is a new connection, decided by policy. */
static void test_syn_against_flow(void **state)
{
	(void)state;
	for (int fam = 4; fam <= 6; fam += 2) {
		struct tp_spec out =
			fx_flow(fam, FX_FROM_POD, FX_A, IPPROTO_TCP, 80, FX_CLIENT_PORT);
		struct tp_spec in = reply_of(&out, fam);

		fx_reset(NULL);
		fx_ep_flags(ISO, 0); /* ingress isolated without rules, egress open */
		out.tcp_flags = TP_SYN;
		assert_int_equal(fx_run(FX_FROM_POD, &out, NULL), FX_PASS);
		in.tcp_flags = TP_SYN; /* not SYN-ACK: the peer opening to port 80 */
		assert_int_equal(fx_run(FX_TO_POD, &in, NULL), FX_DROP);
		assert_int_equal(fx_reason(SEG_DROP_POLICY).packets, 1);
		in.tcp_flags = TP_SYN | TP_ACK; /* the real reply */
		assert_int_equal(fx_run(FX_TO_POD, &in, NULL), FX_PASS);
		assert_int_equal(fx_reason(SEG_R_ALLOW_ESTABLISHED).packets, 1);
	}
}

/* Timeouts from seg_config: one sleep for every flow. */
static void test_timeouts(void **state)
{
	struct seg_config cfg = { .ct_timeout_other = 1, .ct_timeout_tcp_close = 1 };
	struct tp_spec udp[2], fin[2], rst[2], open[2];
	struct seg_ct_entry e;

	fx_config_full(&cfg);
	fx_ep_flags(ISO, 0); /* replies need the CT */
	for (int i = 0; i < 2; i++) {
		int fam = i ? 6 : 4;

		udp[i] = fx_flow(fam, FX_FROM_POD, FX_A, IPPROTO_UDP, FX_CLIENT_PORT, 53);
		fin[i] = fx_flow(fam, FX_FROM_POD, FX_A, IPPROTO_TCP, FX_CLIENT_PORT, 80);
		rst[i] = fx_flow(fam, FX_FROM_POD, FX_A, IPPROTO_TCP, FX_CLIENT_PORT, 81);
		open[i] = fx_flow(fam, FX_FROM_POD, FX_A, IPPROTO_TCP, FX_CLIENT_PORT, 82);
		assert_int_equal(fx_run(FX_FROM_POD, &udp[i], NULL), FX_PASS);
		assert_int_equal(fx_run(FX_FROM_POD, &fin[i], NULL), FX_PASS);
		assert_int_equal(fx_run(FX_FROM_POD, &rst[i], NULL), FX_PASS);
		assert_int_equal(fx_run(FX_FROM_POD, &open[i], NULL), FX_PASS);
		fin[i].tcp_flags = TP_FIN | TP_ACK;
		rst[i].tcp_flags = TP_RST;
		assert_int_equal(fx_run(FX_FROM_POD, &fin[i], NULL), FX_PASS);
		assert_int_equal(fx_run(FX_FROM_POD, &rst[i], NULL), FX_PASS);
	}
	/* before the timeout, replies pass */
	{
		struct tp_spec r = reply_of(&udp[0], 4);

		assert_int_equal(fx_run(FX_TO_POD, &r, NULL), FX_PASS);
	}
	sleep(2);
	for (int i = 0; i < 2; i++) {
		int fam = i ? 6 : 4;
		struct tp_spec r;

		r = reply_of(&udp[i], fam);
		assert_int_equal(fx_run(FX_TO_POD, &r, NULL), FX_DROP);
		r = reply_of(&fin[i], fam);
		r.tcp_flags = TP_ACK;
		assert_int_equal(fx_run(FX_TO_POD, &r, NULL), FX_DROP);
		r = reply_of(&rst[i], fam);
		r.tcp_flags = TP_ACK;
		assert_int_equal(fx_run(FX_TO_POD, &r, NULL), FX_DROP);
		r = reply_of(&open[i], fam);
		r.tcp_flags = TP_ACK;
		assert_int_equal(fx_run(FX_TO_POD, &r, NULL), FX_PASS);
		/* an expired entry is a new flow */
		assert_int_equal(fx_run(FX_FROM_POD, &udp[i], NULL), FX_PASS);
		assert_int_equal(fx_ct(fam, FX_A, FX_CLIENT_PORT, 53, IPPROTO_UDP, &e), 0);
		assert_int_equal(e.packets[SEG_DIR_EGRESS], 1);
		assert_int_equal(e.packets[SEG_DIR_INGRESS], 0);
	}
	assert_int_equal(fx_reason(SEG_DROP_POLICY).packets, 6);
	assert_int_equal(fx_reason(SEG_R_ALLOW_NOT_ISOLATED).packets, 2 * 4 + 2);

	/* now the open TCP flow's timeout */
	cfg.ct_timeout_tcp = 1;
	fx_config_full(&cfg);
	sleep(2);
	for (int i = 0; i < 2; i++) {
		struct tp_spec r = reply_of(&open[i], i ? 6 : 4);

		r.tcp_flags = TP_ACK;
		assert_int_equal(fx_run(FX_TO_POD, &r, NULL), FX_DROP);
	}
}

int run_flow_tests(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_revoke_on_isolation, fx_reset),
		cmocka_unit_test_setup(test_revoke_no_resurrect, fx_reset),
		cmocka_unit_test_setup(test_syn_against_flow, fx_reset),
		cmocka_unit_test_setup(test_timeouts, fx_reset),
	};
	int failed = FX_RUN_TABLE("bpf replies", test_reply, reply_cases);
	static const struct fx_row est_rows[] = { { "established packets", 0 } };

	failed += FX_RUN_TABLE("bpf established", test_established, est_rows);
	failed += FX_RUN_TABLE("bpf fast path", test_fast_path, fast_cases);
	static const struct fx_row audit_rows[] = {
		{ "audit flow: tracked, replies pass, cut on enforce", 0 }
	};
	static const struct fx_row owner_rows[] = { { "conntrack entries belong to their endpoint",
						      0 } };

	failed += FX_RUN_TABLE("bpf revocation", test_revoke, revoke_cases);
	failed += FX_RUN_TABLE("bpf audit flow", test_audit_flow, audit_rows);
	failed += FX_RUN_TABLE("bpf conntrack owner", test_ct_other_endpoint, owner_rows);
	failed += cmocka_run_group_tests_name("bpf conntrack", tests, fx_group_setup,
					      fx_group_teardown);
	return failed;
}
