// SPDX-License-Identifier: GPL-2.0-only
/*
 * Accounting: reason and rule counters, conntrack packets/bytes, flow
 * events (fields, revocation), the per-endpoint event rate limit, and the
 * in-netns endpoint key (seg_cfg_ifkey set before load).
 */
#include <bpf/bpf.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "suites.h"

#define ISO SEG_EPF_ISOLATED
#define NETNS_IFKEY (SEG_IFKEY_NETNS | 7)

static __u64 mono_ns(void)
{
	struct timespec ts;

	/* the data path stamps CT entries and counters with the coarse
	 * monotonic clock (bpf_ktime_get_coarse_ns) */
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

/* Every packet is counted under its reason; every packet of a flow a rule
 * allowed (replies too) under the rule. */
static void test_counters(void **state)
{
	const struct fx_inst *in = *state;
	struct fx_rule r = { .dir = SEG_DIR_EGRESS,
			     .remote_id = FX_ID_A,
			     .proto = IPPROTO_TCP,
			     .lo = 80,
			     .hi = 80,
			     .action = SEG_ACT_ALLOW,
			     .rule_id = 60 };
	struct tp_spec s = fx_flow(in->family, FX_FROM_POD, FX_A, IPPROTO_TCP, FX_CLIENT_PORT, 80);
	struct tp_spec deny =
		fx_flow(in->family, FX_FROM_POD, FX_A, IPPROTO_TCP, FX_CLIENT_PORT, 81);
	struct tp_spec rep = fx_flow(in->family, FX_TO_POD, FX_A, IPPROTO_TCP, FX_CLIENT_PORT, 80);
	struct seg_rule_counter rc;
	struct seg_ct_entry e;
	int l1, l2, l3, l4;
	__u64 t0 = mono_ns();

	fx_ep_flags(0, ISO);
	fx_rule_add(&r);
	assert_int_equal(fx_run(FX_FROM_POD, &s, &l1), FX_PASS);
	s.tcp_flags = TP_ACK;
	s.payload = 1000;
	assert_int_equal(fx_run(FX_FROM_POD, &s, &l2), FX_PASS);
	assert_int_equal(fx_run(FX_FROM_POD, &deny, &l3), FX_DROP);
	rep.tcp_flags = TP_SYN | TP_ACK;
	rep.payload = 10;
	assert_int_equal(fx_run(FX_TO_POD, &rep, &l4), FX_PASS);

	assert_int_equal(fx_reason(SEG_R_ALLOW_RULE).packets, 1);
	assert_int_equal(fx_reason(SEG_R_ALLOW_RULE).bytes, l1);
	assert_int_equal(fx_reason(SEG_R_ALLOW_ESTABLISHED).packets, 2);
	assert_int_equal(fx_reason(SEG_R_ALLOW_ESTABLISHED).bytes, l2 + l4);
	assert_int_equal(fx_reason(SEG_DROP_POLICY).packets, 1);
	assert_int_equal(fx_reason(SEG_DROP_POLICY).bytes, l3);
	assert_int_equal(fx_reason(SEG_R_ALLOW_NOT_ISOLATED).packets, 0);

	/* per rule: the packets it decided (the flow's first); the established
	 * ones are under their reason and in the entry */
	rc = fx_rule_ctr(r.rule_id);
	assert_int_equal(rc.packets, 1);
	assert_int_equal(rc.bytes, l1);
	assert_true(rc.last_hit_ns >= t0 && rc.last_hit_ns <= mono_ns());
	assert_int_equal(fx_rule_ctr(61).packets, 0);

	assert_int_equal(fx_ct(in->family, FX_A, FX_CLIENT_PORT, 80, IPPROTO_TCP, &e), 0);
	assert_int_equal(e.packets[SEG_DIR_EGRESS], 2);
	assert_int_equal(e.bytes[SEG_DIR_EGRESS], l1 + l2);
	assert_int_equal(e.packets[SEG_DIR_INGRESS], 1);
	assert_int_equal(e.bytes[SEG_DIR_INGRESS], l4);
	assert_true(e.first_seen_ns >= t0 && e.last_seen_ns <= mono_ns());
	assert_int_equal(fx_ct_count(), 1);

	/* the rule goes: the flow's next packet is a drop counted under the
	 * rule that had allowed it */
	fx_rule_del(&r);
	fx_ep_bump();
	assert_int_equal(fx_run(FX_FROM_POD, &s, &l2), FX_DROP);
	assert_int_equal(fx_reason(SEG_DROP_REVOKED).packets, 1);
	rc = fx_rule_ctr(r.rule_id);
	assert_int_equal(rc.packets, 2);
	assert_int_equal(rc.bytes, l1 + l2);
}

/* A revoked flow's event names the flow, the rule that had allowed it and
 * the cut. */
static void test_revoked_event(void **state)
{
	const struct fx_inst *in = *state;
	struct fx_rule r = { .dir = SEG_DIR_INGRESS,
			     .remote_id = FX_ID_A,
			     .proto = IPPROTO_UDP,
			     .lo = 5353,
			     .hi = 5353,
			     .action = SEG_ACT_ALLOW,
			     .rule_id = 62 };
	struct tp_spec s = fx_flow(in->family, FX_TO_POD, FX_A, IPPROTO_UDP, 5353, FX_CLIENT_PORT);
	const struct seg_flow_event *ev = &fx()->ev[1];
	__u32 saddr[4], daddr[4];
	int len;

	fx_ep_flags(ISO, 0);
	fx_rule_add(&r);
	assert_int_equal(fx_run(FX_TO_POD, &s, NULL), FX_PASS);
	fx_rule_del(&r);
	fx_ep_bump();
	assert_int_equal(fx_run(FX_TO_POD, &s, &len), FX_DROP);
	assert_int_equal(fx_events(), 2);
	assert_int_equal(fx()->ev[0].type, SEG_EV_NEW);
	assert_int_equal(fx()->ev[0].rule_id, r.rule_id);
	assert_int_equal(ev->type, SEG_EV_REVOKED);
	assert_int_equal(ev->reason, SEG_DROP_REVOKED);
	assert_int_equal(ev->verdict, SEG_VERDICT_DENY);
	assert_int_equal(ev->rule_id, r.rule_id);
	assert_int_equal(ev->dir, SEG_DIR_INGRESS);
	assert_int_equal(ev->proto, IPPROTO_UDP);
	assert_int_equal(ev->family, in->family);
	assert_int_equal(ev->ep_id, FX_EP_ID);
	assert_int_equal(ev->ifkey, FX_IFKEY);
	assert_int_equal(ev->local_id, FX_LOCAL_ID);
	assert_int_equal(ev->remote_id, FX_ID_A);
	assert_int_equal(ev->pkt_len, len);
	assert_int_equal(ev->sport, FX_CLIENT_PORT);
	assert_int_equal(ev->dport, 5353);
	tp_addr(s.src, saddr);
	tp_addr(s.dst, daddr);
	assert_memory_equal(ev->saddr, saddr, 16);
	assert_memory_equal(ev->daddr, daddr, 16);
	assert_int_equal(fx_reason(SEG_DROP_REVOKED).packets, 1);
	/* Whether the revoked packet also counts on the rule that had allowed
	 * the flow is not specified ("every packet of a flow a rule allowed"):
	 * only the allowed one is certain. */
	assert_true(fx_rule_ctr(r.rule_id).packets >= 1);
}

static void send_denied(int n, __u16 first_port)
{
	for (int i = 0; i < n; i++) {
		struct tp_spec s =
			fx_flow(4, FX_TO_POD, FX_A, IPPROTO_TCP, 80, (__u16)(first_port + i));

		assert_int_equal(fx_run(FX_TO_POD, &s, NULL), FX_DROP);
	}
}

/* Token bucket: burst 2 at 1/s; what it suppresses is counted in the
 * bucket and reported by the next event sent. */
static void test_rate_limit(void **state)
{
	struct seg_config cfg = { .evt_rate = 1, .evt_burst = 2 };
	struct seg_evt_rl rl;

	/* the burst must go out well within a token's refill time (1 s):
	 * retry if this process was descheduled meanwhile */
	for (int attempt = 0;; attempt++) {
		__u64 t0 = mono_ns();

		fx_reset(NULL);
		fx_config_full(&cfg);
		fx_ep_flags(ISO, 0);
		send_denied(5, 1000);
		if (mono_ns() - t0 < 500000000ull)
			break;
		assert_true(attempt < 3);
	}
	assert_int_equal(fx_events(), 2);
	assert_int_equal(fx()->ev[0].suppressed, 0);
	assert_int_equal(fx()->ev[1].suppressed, 0);
	rl = fx_evt_rl(FX_IFKEY);
	assert_int_equal(rl.suppressed, 3);
	assert_int_equal(rl.suppressed_total, 3);
	/* counters do not depend on events */
	assert_int_equal(fx_reason(SEG_DROP_POLICY).packets, 5);

	usleep(1200 * 1000);
	send_denied(1, 2000);
	assert_int_equal(fx_events(), 3);
	assert_int_equal(fx()->ev[2].type, SEG_EV_DENY);
	assert_int_equal(fx()->ev[2].suppressed, 3);
	assert_int_equal(fx()->ev[2].sport, 2000);
	rl = fx_evt_rl(FX_IFKEY);
	assert_int_equal(rl.suppressed, 0);
	assert_int_equal(rl.suppressed_total, 3);
}

/* evt_rate 0: no limit. */
static void test_no_rate_limit(void **state)
{
	fx_ep_flags(ISO, 0);
	send_denied(20, 3000);
	assert_int_equal(fx_events(), 20);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(fx()->ev[i].sport, 3000 + i);
		assert_int_equal(fx()->ev[i].suppressed, 0);
	}
	assert_int_equal(fx_evt_rl(FX_IFKEY).suppressed_total, 0);
}

/* In-netns instance: endpoint keyed by seg_cfg_ifkey, not the ifindex. */
static int netns_group_setup(void **state)
{
	return fx_load(NETNS_IFKEY);
}

static void test_netns_ifkey(void **state)
{
	struct tp_spec s = fx_flow(4, FX_TO_POD, FX_A, IPPROTO_TCP, 80, FX_CLIENT_PORT);
	struct fx_rule r = { .dir = SEG_DIR_INGRESS,
			     .remote_id = FX_ID_A,
			     .proto = IPPROTO_TCP,
			     .lo = 80,
			     .hi = 80,
			     .action = SEG_ACT_ALLOW,
			     .rule_id = 63 };
	struct seg_endpoint at_ifindex = fx()->ep;
	__u32 ifindex = FX_IFKEY;

	assert_int_equal(fx()->ifkey, NETNS_IFKEY);
	fx_ep_flags(ISO, 0);
	assert_int_equal(fx_run(FX_TO_POD, &s, NULL), FX_DROP);
	fx_assert_only_reason(SEG_DROP_POLICY, 1, -1);
	assert_int_equal(fx_events(), 1);
	assert_int_equal(fx()->ev[0].ifkey, NETNS_IFKEY);
	fx_rule_add(&r);
	assert_int_equal(fx_run(FX_TO_POD, &s, NULL), FX_PASS);
	assert_int_equal(fx_reason(SEG_R_ALLOW_RULE).packets, 1);

	/* the XDP program of this instance uses the same key */
	fx()->ep.flags[SEG_DIR_EGRESS] = ISO;
	fx_ep_write();
	s = fx_flow(4, FX_XDP_FROM_POD, FX_A, IPPROTO_TCP, FX_CLIENT_PORT, 443);
	assert_int_equal(fx_run(FX_XDP_FROM_POD, &s, NULL), FX_DROP);
	assert_int_equal(fx_reason(SEG_DROP_POLICY).packets, 2);
	assert_int_equal(fx_events(), 3);
	assert_int_equal(fx()->ev[2].ifkey, NETNS_IFKEY);
	assert_int_equal(fx()->ev[2].dir, SEG_DIR_EGRESS);
	s = fx_flow(4, FX_TO_POD, FX_A, IPPROTO_TCP, 80, FX_CLIENT_PORT);

	/* an endpoint under the ifindex alone does not count for it */
	fx_ep_delete();
	at_ifindex.flags[SEG_DIR_INGRESS] = 0;
	assert_int_equal(bpf_map_update_elem(fx()->fd_ep, &ifindex, &at_ifindex, BPF_ANY), 0);
	s.sport++;
	assert_int_equal(fx_run(FX_TO_POD, &s, NULL), FX_DROP);
	assert_int_equal(fx_reason(SEG_DROP_NO_ENDPOINT).packets, 1);
	assert_int_equal(bpf_map_delete_elem(fx()->fd_ep, &ifindex), 0);
}

int run_account_tests(void)
{
	static const struct fx_row counter_rows[] = { { "reason, rule and conntrack counters",
							0 } };
	static const struct fx_row revoked_rows[] = { { "revoked flow event", 0 } };
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_rate_limit, fx_reset),
		cmocka_unit_test_setup(test_no_rate_limit, fx_reset),
	};
	const struct CMUnitTest netns_tests[] = {
		cmocka_unit_test_setup(test_netns_ifkey, fx_reset),
	};
	int failed = FX_RUN_TABLE("bpf counters", test_counters, counter_rows);

	failed += FX_RUN_TABLE("bpf revoked event", test_revoked_event, revoked_rows);
	failed +=
		cmocka_run_group_tests_name("bpf events", tests, fx_group_setup, fx_group_teardown);
	failed += cmocka_run_group_tests_name("bpf in-netns ifkey", netns_tests, netns_group_setup,
					      fx_group_teardown);
	return failed;
}
