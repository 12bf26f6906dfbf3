// SPDX-License-Identifier: GPL-2.0-only
/*
 * Policy lookup: wildcard precedence (named identity before SEG_ID_ANY,
 * narrower port block before wider, any-protocol last) and port ranges at
 * their edges, written as aligned power-of-two blocks the documented way.
 */
#include <netinet/in.h>
#include <stdio.h>

#include "fixture.h"
#include "suites.h"

#define TCP IPPROTO_TCP
#define UDP IPPROTO_UDP
#define ALLOW SEG_ACT_ALLOW
#define DENY SEG_ACT_DENY
#define MAX_RULES 3

/* Ingress, isolated, pod is the server on `port`. */
struct pcase {
	struct fx_row row;
	struct fx_rule rules[MAX_RULES]; /* action 0 ends the list */
	enum fx_peer peer;
	__u8 proto;
	__u16 port;
	int verdict;
	__u32 reason;
	__u32 rule_id; /* the deciding rule */
};

#define R(r_remote, r_proto, r_lo, r_hi, r_act, r_id)                                        \
	{                                                                                    \
		.dir = SEG_DIR_INGRESS, .remote_id = r_remote, .proto = r_proto, .lo = r_lo, \
		.hi = r_hi, .action = r_act, .rule_id = r_id                                 \
	}
#define PASS(id) FX_PASS, SEG_R_ALLOW_RULE, id
#define DROP_DENY(id) FX_DROP, SEG_DROP_DENY_RULE, id
#define DROP_NONE FX_DROP, SEG_DROP_POLICY, 0

/* clang-format off */
#define ID_A_DENY_ANY_ALLOW \
	{ R(FX_ID_A, TCP, 80, 80, DENY, 11), R(SEG_ID_ANY, TCP, 80, 80, ALLOW, 12) }
#define ID_A_ALLOW_ANY_DENY \
	{ R(FX_ID_A, TCP, 80, 80, ALLOW, 13), R(SEG_ID_ANY, TCP, 80, 80, DENY, 14) }
#define PORT_DENY_ALL_ALLOW \
	{ R(SEG_ID_ANY, TCP, 80, 80, DENY, 15), R(SEG_ID_ANY, TCP, 0, 65535, ALLOW, 16) }
#define PORT_ALLOW_ALL_DENY \
	{ R(SEG_ID_ANY, TCP, 80, 80, ALLOW, 17), R(SEG_ID_ANY, TCP, 0, 65535, DENY, 18) }
#define BLOCK_DENY_PORT_ALLOW \
	{ R(SEG_ID_ANY, TCP, 64, 127, DENY, 19), R(SEG_ID_ANY, TCP, 80, 80, ALLOW, 20) }
#define ID_WIDE_ANY_NARROW \
	{ R(FX_ID_A, TCP, 0, 65535, ALLOW, 21), R(SEG_ID_ANY, TCP, 80, 80, DENY, 22) }
#define ANYPROTO_A_TCP_ANY { R(FX_ID_A, 0, 0, 0, ALLOW, 24), R(SEG_ID_ANY, TCP, 80, 80, DENY, 25) }
#define ANYPROTO_DENY_PORT_ALLOW \
	{ R(FX_ID_A, 0, 0, 0, DENY, 26), R(FX_ID_A, TCP, 80, 80, ALLOW, 27) }
#define ANYPROTO_A_ANY { R(FX_ID_A, 0, 0, 0, ALLOW, 28), R(SEG_ID_ANY, 0, 0, 0, DENY, 29) }

static const struct pcase pcases[] = {
	/* a named identity beats SEG_ID_ANY, whichever way the actions go */
	{ { "identity deny beats ANY allow" }, ID_A_DENY_ANY_ALLOW, FX_A, TCP, 80, DROP_DENY(11) },
	{ { "ANY allow applies to other peers" }, ID_A_DENY_ANY_ALLOW, FX_B, TCP, 80, PASS(12) },
	{ { "identity allow beats ANY deny" }, ID_A_ALLOW_ANY_DENY, FX_A, TCP, 80, PASS(13) },
	{ { "ANY deny applies to other peers" },
	  ID_A_ALLOW_ANY_DENY, FX_B, TCP, 80, DROP_DENY(14) },
	/* a narrower port block beats a wider one */
	{ { "port deny beats all-ports allow" },
	  PORT_DENY_ALL_ALLOW, FX_A, TCP, 80, DROP_DENY(15) },
	{ { "all-ports allow on another port" }, PORT_DENY_ALL_ALLOW, FX_A, TCP, 81, PASS(16) },
	{ { "all-ports deny does not beat port allow" },
	  PORT_ALLOW_ALL_DENY, FX_A, TCP, 80, PASS(17) },
	{ { "all-ports deny on another port" }, PORT_ALLOW_ALL_DENY, FX_A, TCP, 81, DROP_DENY(18) },
	{ { "block deny 64-127 does not beat port 80 allow" }, BLOCK_DENY_PORT_ALLOW, FX_A, TCP, 80,
	  PASS(20) },
	{ { "block deny 64-127 on port 100" },
	  BLOCK_DENY_PORT_ALLOW, FX_A, TCP, 100, DROP_DENY(19) },
	{ { "block deny 64-127, port 128 has no rule" }, BLOCK_DENY_PORT_ALLOW, FX_A, TCP, 128,
	  DROP_NONE },
	/* identity is probed before port width */
	{ { "identity all-ports allow beats ANY port deny" }, ID_WIDE_ANY_NARROW, FX_A, TCP, 80,
	  PASS(21) },
	{ { "ANY port deny for other peers" }, ID_WIDE_ANY_NARROW, FX_B, TCP, 80, DROP_DENY(22) },
	/* any-protocol entries come after every port probe */
	{ { "any-proto allow: TCP port without port rule" }, ANYPROTO_A_TCP_ANY, FX_A, TCP, 443,
	  PASS(24) },
	{ { "any-proto allow loses to ANY port deny" }, ANYPROTO_A_TCP_ANY, FX_A, TCP, 80,
	  DROP_DENY(25) },
	{ { "any-proto allow: UDP" }, ANYPROTO_A_TCP_ANY, FX_A, UDP, 80, PASS(24) },
	{ { "port allow beats any-proto deny" },
	  ANYPROTO_DENY_PORT_ALLOW, FX_A, TCP, 80, PASS(27) },
	{ { "any-proto deny on another port" }, ANYPROTO_DENY_PORT_ALLOW, FX_A, TCP, 81,
	  DROP_DENY(26) },
	{ { "any-proto identity allow beats any-proto ANY deny" }, ANYPROTO_A_ANY, FX_A, UDP, 9,
	  PASS(28) },
	{ { "any-proto ANY deny for other peers" }, ANYPROTO_A_ANY, FX_B, UDP, 9, DROP_DENY(29) },
};
/* clang-format on */

static void test_precedence(void **state)
{
	const struct fx_inst *in = *state;
	const struct pcase *c = (const void *)in->row;
	struct tp_spec s;
	int len;

	fx_ep_flags(SEG_EPF_ISOLATED, 0);
	for (int i = 0; i < MAX_RULES && c->rules[i].action; i++)
		fx_rule_add(&c->rules[i]);
	s = fx_flow(in->family, FX_TO_POD, c->peer, c->proto, c->port, FX_CLIENT_PORT);
	assert_int_equal(fx_run(FX_TO_POD, &s, &len), c->verdict);
	fx_assert_only_reason(c->reason, 1, len);
	if (c->verdict == FX_PASS) {
		struct seg_ct_entry e;

		assert_int_equal(fx_ct(in->family, c->peer, c->port, FX_CLIENT_PORT, c->proto, &e),
				 0);
		assert_int_equal(e.rule_id, c->rule_id);
		assert_int_equal(fx_rule_ctr(c->rule_id).packets, 1);
	} else if (c->rule_id) {
		assert_int_equal(fx_events(), 1);
		assert_int_equal(fx()->ev[0].rule_id, c->rule_id);
	}
}

/* Port ranges: allowed [lo, hi] (plus an unrelated rule of another block
 * width, so the endpoint's port_mask has several bits), probed at lo-1,
 * lo, hi, hi+1 and in the middle. */
struct rcase {
	struct fx_row row;
	__u8 proto;
	__u16 lo, hi;
	int max_blocks; /* what the split must stay within */
};

/* clang-format off */
static const struct rcase rcases[] = {
	{ { "range 1000-2000" }, TCP, 1000, 2000, 30 },
	{ { "range 8080-8090" }, TCP, 8080, 8090, 30 },
	{ { "range 1-65535" }, TCP, 1, 65535, 16 },
	{ { "range 32768-65535 (one block)" }, UDP, 32768, 65535, 1 },
	{ { "range 5-5 (single port)" }, UDP, 5, 5, 1 },
	{ { "range 1023-1025 (unaligned edges)" }, TCP, 1023, 1025, 3 },
	{ { "range 30000-32767" }, IPPROTO_SCTP_, 30000, 32767, 30 },
	{ { "range 2-65534 (worst case)" }, TCP, 2, 65534, 30 },
};
/* clang-format on */

/* The split covers exactly [lo, hi] with aligned blocks. */
static void check_split(__u16 lo, __u16 hi, int max)
{
	__u16 port[32];
	__u8 k[32];
	int n = fx_range_blocks(lo, hi, port, k, 32);
	__u32 next = lo;

	assert_true(n >= 1 && n <= max);
	for (int i = 0; i < n; i++) {
		assert_int_equal(port[i], next);
		assert_int_equal(port[i] & ((1u << k[i]) - 1), 0);
		next += 1u << k[i];
	}
	assert_int_equal(next, (__u32)hi + 1);
}

static void probe(int family, __u8 proto, __u16 port, int verdict, __u32 rule_id)
{
	struct tp_spec s = fx_flow(family, FX_TO_POD, FX_A, proto, port, FX_CLIENT_PORT);
	struct seg_counter before =
		fx_reason(verdict == FX_PASS ? SEG_R_ALLOW_RULE : SEG_DROP_POLICY);
	__u64 hits = fx_rule_ctr(rule_id).packets;

	if (fx_run(FX_TO_POD, &s, NULL) != verdict)
		fail_msg("port %u: expected %s", port, verdict == FX_PASS ? "pass" : "drop");
	assert_int_equal(fx_reason(verdict == FX_PASS ? SEG_R_ALLOW_RULE : SEG_DROP_POLICY).packets,
			 before.packets + 1);
	if (verdict == FX_PASS)
		assert_int_equal(fx_rule_ctr(rule_id).packets, hits + 1);
}

static void test_range(void **state)
{
	const struct fx_inst *in = *state;
	const struct rcase *c = (const void *)in->row;
	struct fx_rule r = { .dir = SEG_DIR_INGRESS,
			     .remote_id = FX_ID_A,
			     .proto = c->proto,
			     .lo = c->lo,
			     .hi = c->hi,
			     .action = SEG_ACT_ALLOW,
			     .rule_id = 31 };
	/* another width in port_mask: a port block of 8 on another protocol */
	struct fx_rule other = { .dir = SEG_DIR_INGRESS,
				 .remote_id = FX_ID_A,
				 .proto = c->proto == TCP ? UDP : TCP,
				 .lo = 8,
				 .hi = 15,
				 .action = SEG_ACT_ALLOW,
				 .rule_id = 32 };
	__u32 mid = ((__u32)c->lo + c->hi) / 2;

	/* lo-1, lo, mid, hi, hi+1, and 8 (the other protocol's block) */
	__u32 ports[] = { (__u32)c->lo - 1, c->lo, mid, c->hi, (__u32)c->hi + 1, 8 };
	bool seen[65536 + 1] = { false };

	check_split(c->lo, c->hi, c->max_blocks);
	fx_ep_flags(SEG_EPF_ISOLATED, 0);
	fx_rule_add(&other);
	fx_rule_add(&r);
	for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
		__u32 p = ports[i];

		if (p > 65535 || seen[p]) /* lo-1 of 0 wraps above 65535 */
			continue;
		seen[p] = true;
		probe(in->family, c->proto, (__u16)p, c->lo <= p && p <= c->hi ? FX_PASS : FX_DROP,
		      r.rule_id);
	}
}

/* Only the widths in port_mask are probed; an unknown action fails closed. */
static void test_mask_and_action(void **state)
{
	const struct fx_inst *in = *state;
	struct fx_rule r = { .dir = SEG_DIR_INGRESS,
			     .remote_id = FX_ID_A,
			     .proto = TCP,
			     .lo = 80,
			     .hi = 80,
			     .action = ALLOW,
			     .rule_id = 33 };
	struct tp_spec s = fx_flow(in->family, FX_TO_POD, FX_A, TCP, 80, FX_CLIENT_PORT);

	fx_ep_flags(SEG_EPF_ISOLATED, 0);
	fx_rule_add(&r);
	fx()->ep.port_mask[SEG_DIR_INGRESS] = 1u << 3; /* not width 0 */
	fx_ep_write();
	assert_int_equal(fx_run(FX_TO_POD, &s, NULL), FX_DROP);
	assert_int_equal(fx_reason(SEG_DROP_POLICY).packets, 1);

	r.action = 7; /* neither SEG_ACT_ALLOW nor SEG_ACT_DENY */
	fx_rule_add(&r); /* restores the mask bit too */
	assert_int_equal(fx_run(FX_TO_POD, &s, NULL), FX_DROP);
	assert_int_equal(fx_reason(SEG_R_ALLOW_RULE).packets, 0);
	assert_int_equal(fx_ct_count(), 0);
}

int run_policy_tests(void)
{
	static const struct fx_row mask_rows[] = {
		{ "port_mask limits the probes; unknown action fails closed", 0 }
	};
	int failed = FX_RUN_TABLE("bpf policy precedence", test_precedence, pcases);

	failed += FX_RUN_TABLE("bpf policy probes", test_mask_and_action, mask_rows);
	return failed + FX_RUN_TABLE("bpf port ranges", test_range, rcases);
}
