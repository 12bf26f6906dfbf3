// SPDX-License-Identifier: GPL-2.0-only
/*
 * Two endpoints on one node: the endpoint key is the packet's own ifindex
 * (not a constant), conntrack entries and event buckets are per endpoint.
 * The group runs in a private network namespace (unshare) holding a dummy
 * veth ht-d0 (peer ht-d1) whose ifindex is the second endpoint's key; the namespace,
 * and the device with it, go away with the process.
 */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>

#include "fixture.h"
#include "suites.h"

#define ISO SEG_EPF_ISOLATED
#define DEV "ht-d0"
#define EP2_ID 8

static __u32 dev_ifindex;

static int multi_group_setup(void **state)
{
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "bpf tests: unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return -1;
	}
	if (system("ip link add " DEV " type veth peer name ht-d1 && ip link set " DEV " up") !=
	    0) {
		fprintf(stderr, "bpf tests: cannot create veth %s\n", DEV);
		return -1;
	}
	dev_ifindex = if_nametoindex(DEV);
	if (!dev_ifindex || dev_ifindex == FX_IFKEY)
		return -1;
	return fx_group_setup(state);
}

/* The second endpoint: pod FX_POD2 on ht-d0, isolated both ways, no rule. */
static void ep2_write(__u8 flags)
{
	struct seg_endpoint ep = fx()->ep;

	ep.ep_id = EP2_ID;
	ep.flags[SEG_DIR_INGRESS] = flags;
	ep.flags[SEG_DIR_EGRESS] = flags;
	ep.port_mask[SEG_DIR_INGRESS] = 0;
	ep.port_mask[SEG_DIR_EGRESS] = 0;
	ep.policy_id[SEG_DIR_INGRESS] = 20;
	ep.policy_id[SEG_DIR_EGRESS] = 21;
	assert_int_equal(bpf_map_update_elem(fx()->fd_ep, &dev_ifindex, &ep, BPF_ANY), 0);
}

/* Each interface is decided by its own endpoint. */
static void test_endpoint_by_ifindex(void **state)
{
	struct tp_spec s = fx_flow(4, FX_TO_POD, FX_A, IPPROTO_TCP, 80, FX_CLIENT_PORT);
	struct tp_spec x = fx_flow(4, FX_XDP_FROM_POD, FX_A, IPPROTO_TCP, FX_CLIENT_PORT, 80);

	ep2_write(ISO);
	assert_int_equal(fx_run_on(FX_TO_POD, &s, FX_IFKEY), FX_PASS);
	assert_int_equal(fx_run_on(FX_TO_POD, &s, dev_ifindex), FX_DROP);
	assert_int_equal(fx_run_on(FX_XDP_FROM_POD, &x, FX_IFKEY), FX_PASS);
	assert_int_equal(fx_run_on(FX_XDP_FROM_POD, &x, dev_ifindex), FX_DROP);
	assert_int_equal(fx_reason(SEG_DROP_POLICY).packets, 2);
	assert_int_equal(fx_events(), 4);
	assert_int_equal(fx()->ev[1].ifkey, dev_ifindex);
	assert_int_equal(fx()->ev[1].ep_id, EP2_ID);
	assert_int_equal(fx()->ev[3].ifkey, dev_ifindex);
	/* no endpoint on the interface: SEG_DROP_NO_ENDPOINT, whatever others say */
	assert_int_equal(bpf_map_delete_elem(fx()->fd_ep, &dev_ifindex), 0);
	assert_int_equal(fx_run_on(FX_TO_POD, &s, dev_ifindex), FX_DROP);
	assert_int_equal(fx_reason(SEG_DROP_NO_ENDPOINT).packets, 1);
}

/* Anti-spoofing compares the owner with the interface the packet came from. */
static void test_antispoof_per_interface(void **state)
{
	struct tp_spec s = fx_flow(4, FX_FROM_POD, FX_A, IPPROTO_UDP, FX_CLIENT_PORT, 53);

	fx_config(SEG_CFG_ANTISPOOF);
	ep2_write(0);
	fx_ipcache(fx_addr(FX_POD2, 4), FX_LOCAL_ID, dev_ifindex);
	s.src = fx_addr(FX_POD2, 4);
	assert_int_equal(fx_run_on(FX_FROM_POD, &s, dev_ifindex), FX_PASS);
	assert_int_equal(fx_run_on(FX_FROM_POD, &s, FX_IFKEY), FX_DROP);
	assert_int_equal(fx_reason(SEG_DROP_SPOOF).packets, 1);
}

/* A conntrack entry passes on the fast path only for the endpoint key it
 * was validated for: another interface sending a packet with the same key
 * (here ht-d0 using the first pod's address, anti-spoofing off) is decided
 * by its own endpoint, and the first pod's flow goes on. */
static void test_fast_path_other_interface(void **state)
{
	struct tp_spec s = fx_flow(4, FX_FROM_POD, FX_A, IPPROTO_UDP, FX_CLIENT_PORT, 53);
	struct seg_ct_entry e;

	fx_ep_flags(ISO, 0); /* egress open: the flow is allowed */
	ep2_write(ISO); /* isolated, no rule */
	assert_int_equal(fx_run_on(FX_FROM_POD, &s, FX_IFKEY), FX_PASS);
	assert_int_equal(fx_run_on(FX_FROM_POD, &s, FX_IFKEY), FX_PASS);
	assert_int_equal(fx_reason(SEG_R_ALLOW_ESTABLISHED).packets, 1);
	assert_int_equal(fx_run_on(FX_FROM_POD, &s, dev_ifindex), FX_DROP);
	assert_int_equal(fx_reason(SEG_DROP_POLICY).packets, 1);
	assert_int_equal(fx_reason(SEG_R_ALLOW_ESTABLISHED).packets, 1);
	assert_int_equal(fx_ct(4, FX_A, FX_CLIENT_PORT, 53, IPPROTO_UDP, &e), 0);
	assert_int_equal(e.ifkey, FX_IFKEY);
	assert_int_equal(e.ep_id, FX_EP_ID);
	assert_int_equal(fx_run_on(FX_FROM_POD, &s, FX_IFKEY), FX_PASS);
	assert_int_equal(fx_reason(SEG_R_ALLOW_ESTABLISHED).packets, 2);
}

/* Event token buckets are per endpoint: one endpoint's burst does not
 * silence another's. */
static void test_rate_limit_per_endpoint(void **state)
{
	struct seg_config cfg = { .evt_rate = 1, .evt_burst = 1 };

	/* all within a token's refill time (1 s): retry if descheduled */
	for (int attempt = 0;; attempt++) {
		struct timespec t0, t1;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		fx_reset(NULL);
		fx_config_full(&cfg);
		fx_ep_flags(ISO, ISO);
		ep2_write(ISO);
		for (int i = 0; i < 3; i++) {
			struct tp_spec s = fx_flow(4, FX_TO_POD, FX_A, IPPROTO_TCP, 80,
						   (__u16)(FX_CLIENT_PORT + i));

			assert_int_equal(fx_run_on(FX_TO_POD, &s, FX_IFKEY), FX_DROP);
			assert_int_equal(fx_run_on(FX_TO_POD, &s, dev_ifindex), FX_DROP);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if ((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec) < 500000000L)
			break;
		assert_true(attempt < 3);
	}
	assert_int_equal(fx_events(), 2);
	assert_int_not_equal(fx()->ev[0].ifkey, fx()->ev[1].ifkey);
	assert_int_equal(fx_evt_rl(FX_IFKEY).suppressed, 2);
	assert_int_equal(fx_evt_rl(dev_ifindex).suppressed, 2);
}

int run_multi_tests(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_endpoint_by_ifindex, fx_reset),
		cmocka_unit_test_setup(test_antispoof_per_interface, fx_reset),
		cmocka_unit_test_setup(test_fast_path_other_interface, fx_reset),
		cmocka_unit_test_setup(test_rate_limit_per_endpoint, fx_reset),
	};

	return cmocka_run_group_tests_name("bpf two endpoints", tests, multi_group_setup,
					   fx_group_teardown);
}
