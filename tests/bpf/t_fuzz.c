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

#define FUZZ_ROUNDS_DEFAULT 3000 /* per hook; SEG_FUZZ_ROUNDS overrides */
#define FUZZ_SEED 0x5e6 /* SEG_FUZZ_SEED overrides */

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

static int fuzz_rounds(void)
{
	const char *env = getenv("SEG_FUZZ_ROUNDS");
	int n = env ? atoi(env) : 0;

	return n > 0 ? n : FUZZ_ROUNDS_DEFAULT;
}

static unsigned int fuzz_seed(void)
{
	const char *env = getenv("SEG_FUZZ_SEED");

	return env ? (unsigned int)strtoul(env, NULL, 0) : FUZZ_SEED;
}

static void fuzz_hook(enum fx_hook hook, unsigned int seed)
{
	__u8 buf[TP_BUF_SIZE];
	__u64 passed = 0, dropped = 0, events = 0, total = 0;

	fx_reset(NULL);
	fx_ep_flags(SEG_EPF_ISOLATED, SEG_EPF_ISOLATED);
	for (int i = 0; i < fuzz_rounds(); i++) {
		unsigned int case_seed = seed + (unsigned int)i;
		int len = fuzz_packet(buf, sizeof(buf), &case_seed);
		int v;

		if (hook != FX_XDP_FROM_POD && len < TP_ETH_LEN + 40)
			continue; /* tc test runs refuse short L3 headers */
		v = fx_run_raw(hook, buf, len);
		if (v == FX_OTHER)
			fail_msg("%s: SEG_FUZZ_SEED=%u round %d: unexpected return code",
				 fx_hook_name(hook), fuzz_seed(), i);
		if (v == FX_PASS) {
			__u16 type = (__u16)(buf[12] << 8 | buf[13]);

			if (type != ETH_P_ARP && type != ETH_P_IPV6)
				fail_msg("%s: SEG_FUZZ_SEED=%u round %d: ethertype %#x passed",
					 fx_hook_name(hook), fuzz_seed(), i, type);
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

/* Seeds for the rule case: most are allowed before mutation. */
static const struct tp_spec rule_seeds[] = {
	{ .src = "10.1.0.5", .dst = "10.0.0.1", .proto = IPPROTO_TCP, .sport = 1, .dport = 80 },
	{ .src = "10.1.0.5",
	  .dst = "10.0.0.1",
	  .proto = IPPROTO_UDP,
	  .sport = 2,
	  .dport = 80,
	  .payload = 8 },
	{ .src = "10.1.0.5",
	  .dst = "10.0.0.1",
	  .proto = IPPROTO_TCP,
	  .sport = 3,
	  .dport = 80,
	  .ip4_optlen = 12 },
	{ .src = "fd01::5", .dst = "fd00::1", .proto = IPPROTO_TCP, .sport = 4, .dport = 80 },
	{ .src = "fd01::5",
	  .dst = "fd00::1",
	  .proto = IPPROTO_UDP,
	  .sport = 5,
	  .dport = 80,
	  .n_ext = 3,
	  .ext = { IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS } },
	{ .src = "fd01::5",
	  .dst = "fd00::1",
	  .proto = IPPROTO_TCP,
	  .sport = 6,
	  .dport = 80,
	  .n_ext = 1,
	  .ext = { IPPROTO_AH } },
};

/* The peer's addresses. The destination is not judged: the endpoint is the
 * interface, and its policy does not name the pod's own address. */
static const __u8 ref_a4[4] = { 10, 1, 0, 5 };
static const __u8 ref_a6[16] = { 0xfd, 0x01, [15] = 5 };

static int ref_ports(const __u8 *l4, int l4len, __u8 proto, bool ok_addrs)
{
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 0; /* no rule for anything else */
	if (l4len < (proto == IPPROTO_TCP ? 20 : 8))
		return 0;
	return ok_addrs && (l4[2] << 8 | l4[3]) == 80;
}

static bool ref_ip6_ext(__u8 nh)
{
	return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS ||
	       nh == IPPROTO_AH || nh == IPPROTO_FRAGMENT;
}

/* A reading of docs/architecture.md, as far as "TCP or UDP to the pod's
 * port 80 from A" goes: 1 = such a packet, 0 = certainly not, -1 = cannot
 * tell here (ARP, ND and other ICMPv6, ICMP errors, fragments). */
static int ref_allowed(const __u8 *b, int len)
{
	__u16 type = (__u16)(b[12] << 8 | b[13]);
	const __u8 *ip = b + TP_ETH_LEN;
	int avail = len - TP_ETH_LEN;

	if (type == ETH_P_IP && avail >= 20) {
		int hl = (ip[0] & 0xf) * 4, tot = ip[2] << 8 | ip[3];
		bool addrs = !memcmp(ip + 12, ref_a4, 4);

		if (ip[0] >> 4 != 4 || hl < 20 || tot < hl || tot > avail)
			return 0;
		if ((ip[6] << 8 | ip[7]) & 0x3fff)
			return -1;
		if (ip[9] == IPPROTO_ICMP && tot - hl >= 1 &&
		    (ip[hl] == 3 || ip[hl] == 4 || ip[hl] == 5 || ip[hl] == 11 || ip[hl] == 12))
			return -1;
		return ref_ports(ip + hl, tot - hl, ip[9], addrs);
	}
	if (type == ETH_P_IPV6 && avail >= 40) {
		int end = 40 + (ip[4] << 8 | ip[5]), off = 40;
		__u8 nh = ip[6];
		bool addrs = !memcmp(ip + 8, ref_a6, 16);

		if (ip[0] >> 4 != 6 || end > avail)
			return 0;
		for (int i = 0; ref_ip6_ext(nh); i++) {
			__u8 cur = nh;

			if (i == SEG_MAX_EXTHDR || off + 8 > end)
				return 0;
			if (cur == IPPROTO_FRAGMENT)
				return -1;
			nh = ip[off];
			off += cur == IPPROTO_AH ? (ip[off + 1] + 2) * 4 : (ip[off + 1] + 1) * 8;
			if (off > end)
				return 0;
		}
		if (nh == IPPROTO_ICMPV6)
			return -1;
		return ref_ports(ip + off, end - off, nh, addrs);
	}
	return type == ETH_P_ARP ? -1 : 0;
}

/* Mutated packets against an isolated endpoint allowing TCP and UDP port 80
 * from A: whatever passes must be such a packet by the reference reading
 * (or something it cannot judge: ARP/ND, fragments, ICMP errors). */
static void test_fuzz_with_rule(void **state)
{
	size_t n_seeds = sizeof(rule_seeds) / sizeof(rule_seeds[0]);
	struct fx_rule r = { .dir = SEG_DIR_INGRESS,
			     .remote_id = FX_ID_A,
			     .proto = IPPROTO_TCP,
			     .lo = 80,
			     .hi = 80,
			     .action = SEG_ACT_ALLOW,
			     .rule_id = 70 };
	__u8 buf[TP_BUF_SIZE];
	int passed = 0, judged = 0;

	fx_reset(NULL);
	fx_ep_flags(SEG_EPF_ISOLATED, 0);
	fx_rule_add(&r);
	r.proto = IPPROTO_UDP;
	fx_rule_add(&r);
	for (int i = 0; i < fuzz_rounds(); i++) {
		unsigned int seed = fuzz_seed() + 300000 + (unsigned int)i;
		const struct tp_spec *s = &rule_seeds[(size_t)rand_r(&seed) % n_seeds];
		int len = tp_build(buf, sizeof(buf), s);
		int flips = 1 + rand_r(&seed) % 3, ref;

		for (int k = 0; k < flips; k++)
			buf[12 + rand_r(&seed) % (len - 12)] = (__u8)rand_r(&seed);
		if (rand_r(&seed) % 4 == 0)
			len = TP_ETH_LEN + 40 + rand_r(&seed) % (len - TP_ETH_LEN - 40 + 1);
		if (fx_run_raw(FX_TO_POD, buf, len) != FX_PASS)
			continue;
		passed++;
		ref = ref_allowed(buf, len);
		if (ref == 0) {
			for (int k = 0; k < len; k++)
				print_error("%02x%s", buf[k], k % 16 == 15 ? "\n" : " ");
			print_error("\n");
			for (__u32 rs = 0; rs < SEG_REASON_MAX; rs++)
				if (fx_reason(rs).packets)
					print_error("reason %u: %llu\n", rs,
						    (unsigned long long)fx_reason(rs).packets);
		}
		if (ref == 0)
			fail_msg(
				"SEG_FUZZ_SEED=%u round %d: passed, but not TCP/UDP port 80 from A",
				fuzz_seed(), i);
		judged += ref == 1;
		if (i % 512 == 511)
			fx_events();
	}
	assert_true(judged > 0); /* the property was exercised */
	print_message("with rule: %d passed, %d judged allowed\n", passed, judged);
}

static void test_fuzz_to_pod(void **state)
{
	fuzz_hook(FX_TO_POD, fuzz_seed());
}

static void test_fuzz_from_pod(void **state)
{
	fuzz_hook(FX_FROM_POD, fuzz_seed() + 100000);
}

static void test_fuzz_xdp(void **state)
{
	fuzz_hook(FX_XDP_FROM_POD, fuzz_seed() + 200000);
}

int run_fuzz_tests(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fuzz_to_pod),
		cmocka_unit_test(test_fuzz_from_pod),
		cmocka_unit_test(test_fuzz_xdp),
		cmocka_unit_test(test_fuzz_with_rule),
	};

	return cmocka_run_group_tests_name("bpf mutated packets", tests, fx_group_setup,
					   fx_group_teardown);
}
