// SPDX-License-Identifier: GPL-2.0-only
/*
 * Mutated packets against an endpoint isolated with no rule: whatever the
 * bytes, the only packets that may pass are ARP and IPv6 neighbour
 * discovery (SEG_R_ALLOW_L2); every packet is counted under exactly one
 * reason; every drop sends one deny event; nothing is tracked. Seeded, so
 * a failure names a reproducible case.
 */
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "suites.h"

#define FUZZ_ROUNDS 3000 /* per hook */
#define FUZZ_SEED 0x5e6

static const struct tp_spec fuzz_seeds[] = {
	{ .src = "10.1.0.5", .dst = "10.0.0.1", .proto = IPPROTO_TCP, .sport = 1, .dport = 80 },
	{ .src = "10.1.0.5", .dst = "10.0.0.1", .proto = IPPROTO_UDP, .dport = 53, .payload = 8 },
	{ .src = "10.1.0.5", .dst = "10.0.0.1", .proto = IPPROTO_ICMP, .icmp_type = 8 },
	{ .src = "10.1.0.5",
	  .dst = "10.0.0.1",
	  .proto = IPPROTO_TCP,
	  .dport = 80,
	  .ip4_optlen = 8 },
	{ .src = "10.1.0.5",
	  .dst = "10.0.0.1",
	  .proto = IPPROTO_UDP,
	  .dport = 53,
	  .mf = 1,
	  .payload = 16 },
	{ .src = "fd01::5", .dst = "fd00::1", .proto = IPPROTO_TCP, .sport = 1, .dport = 80 },
	{ .src = "fd01::5",
	  .dst = "fd00::1",
	  .proto = IPPROTO_UDP,
	  .dport = 53,
	  .n_ext = 2,
	  .ext = { IPPROTO_HOPOPTS, IPPROTO_DSTOPTS } },
	{ .src = "fd01::5", .dst = "fd00::1", .proto = IPPROTO_ICMPV6, .icmp_type = 128 },
	{ .src = "fd01::5",
	  .dst = "fd00::1",
	  .proto = IPPROTO_UDP,
	  .dport = 53,
	  .frag_off = 2,
	  .payload = 8 },
	{ .src = "fd01::5",
	  .dst = "fd00::1",
	  .proto = IPPROTO_ICMPV6,
	  .icmp_type = 135,
	  .payload = 16 },
	{ .ethertype = ETH_P_ARP },
};

static const struct tp_spec fuzz_quote = { .src = "10.0.0.1",
					   .dst = "10.1.0.5",
					   .proto = IPPROTO_UDP,
					   .sport = 40000,
					   .dport = 53 };
static const struct tp_spec fuzz_err = { .src = "10.9.9.9",
					 .dst = "10.0.0.1",
					 .proto = IPPROTO_ICMP,
					 .icmp_type = 3,
					 .inner = &fuzz_quote };

/* A seed packet with 1-4 random bytes changed (IP and L4 headers mostly)
 * and, half the time, a random length. */
static int fuzz_packet(__u8 *buf, size_t cap, unsigned int *seed)
{
	size_t n_seeds = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);
	size_t pick = (size_t)rand_r(seed) % (n_seeds + 1);
	const struct tp_spec *s = pick < n_seeds ? &fuzz_seeds[pick] : &fuzz_err;
	int len = tp_build(buf, cap, s);
	int flips = 1 + rand_r(seed) % 4;

	assert_true(len > TP_ETH_LEN);
	for (int i = 0; i < flips; i++) {
		/* bytes 12.. (ethertype on), biased to the first 80 */
		int span = rand_r(seed) % 2 ? 80 : len;
		int off = 12 + rand_r(seed) % (span - 12 < len - 12 ? span - 12 : len - 12);

		buf[off] = (__u8)rand_r(seed);
	}
	if (rand_r(seed) % 2)
		len = TP_ETH_LEN + rand_r(seed) % (len - TP_ETH_LEN + 1);
	return len;
}

static void fuzz_hook(enum fx_hook hook, unsigned int seed)
{
	__u8 buf[TP_BUF_SIZE];
	__u64 passed = 0, dropped = 0, events = 0, total = 0;

	fx_reset(NULL);
	fx_ep_flags(SEG_EPF_ISOLATED, SEG_EPF_ISOLATED);
	for (int i = 0; i < FUZZ_ROUNDS; i++) {
		unsigned int case_seed = seed + (unsigned int)i;
		int len = fuzz_packet(buf, sizeof(buf), &case_seed);
		int v;

		if (hook != FX_XDP_FROM_POD && len < TP_ETH_LEN + 40)
			continue; /* tc test runs refuse short L3 headers */
		v = fx_run_raw(hook, buf, len);
		if (v == FX_OTHER)
			fail_msg("%s seed %u: unexpected return code", fx_hook_name(hook),
				 seed + (unsigned int)i);
		if (v == FX_PASS) {
			__u16 type = (__u16)(buf[12] << 8 | buf[13]);

			if (type != ETH_P_ARP && type != ETH_P_IPV6)
				fail_msg("%s seed %u: ethertype %#x passed", fx_hook_name(hook),
					 seed + (unsigned int)i, type);
			passed++;
		} else {
			dropped++;
		}
		if (i % 512 == 511)
			fx_events(); /* keep the ring buffer from filling */
	}
	fx_events();
	events = (__u64)fx()->n_ev_seen;
	for (__u32 r = 0; r < SEG_REASON_MAX; r++)
		total += fx_reason(r).packets;
	assert_int_equal(total, passed + dropped);
	assert_int_equal(fx_reason(SEG_R_ALLOW_L2).packets, passed);
	assert_int_equal(events, dropped);
	assert_int_equal(fx_ct_count(), 0);
	assert_true(dropped > passed); /* the mutations did reach the parser */
	print_message("%s: %llu passed (ARP/ND), %llu dropped\n", fx_hook_name(hook),
		      (unsigned long long)passed, (unsigned long long)dropped);
}

static void test_fuzz_to_pod(void **state)
{
	fuzz_hook(FX_TO_POD, FUZZ_SEED);
}

static void test_fuzz_from_pod(void **state)
{
	fuzz_hook(FX_FROM_POD, FUZZ_SEED + 100000);
}

static void test_fuzz_xdp(void **state)
{
	fuzz_hook(FX_XDP_FROM_POD, FUZZ_SEED + 200000);
}

int run_fuzz_tests(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fuzz_to_pod),
		cmocka_unit_test(test_fuzz_from_pod),
		cmocka_unit_test(test_fuzz_xdp),
	};

	return cmocka_run_group_tests_name("bpf mutated packets", tests, fx_group_setup,
					   fx_group_teardown);
}
