// SPDX-License-Identifier: GPL-2.0-only
/* The packet builders themselves: layout, lengths, checksums, hostile knobs. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "testpkt.h"

#define ETH TP_ETH_LEN

static __u16 get16(const __u8 *p)
{
	return (__u16)(p[0] << 8 | p[1]);
}

static __u32 get32(const __u8 *p)
{
	return (__u32)get16(p) << 16 | get16(p + 2);
}

/* Sum of the pseudo header of an L4 segment of len bytes. */
static __u32 pseudo_sum(const __u8 *l3, int family, __u8 proto, size_t len)
{
	size_t alen = family == 4 ? 4 : 16;
	const __u8 *sa = l3 + (family == 4 ? 12 : 8);
	__u8 buf[40] = { 0 };
	__u32 sum = 0;

	memcpy(buf, sa, 2 * alen);
	buf[2 * alen + 2] = (__u8)(len >> 8);
	buf[2 * alen + 3] = (__u8)len;
	buf[2 * alen + 7] = proto;
	for (size_t i = 0; i < 2 * alen + 8; i += 2)
		sum += get16(buf + i);
	return sum;
}

static void test_csum_known_value(void **state)
{
	/* the usual textbook IPv4 header, checksum b861 */
	__u8 h[20] = { 0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
		       0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7 };
	__u16 c = tp_csum(h, sizeof(h), 0);

	assert_memory_equal(&c, "\xb8\x61", 2);
	memcpy(h + 10, &c, 2);
	assert_int_equal(tp_csum(h, sizeof(h), 0), 0);
}

static void test_tcp4(void **state)
{
	struct tp_spec s = { .src = "10.0.0.1",
			     .dst = "10.1.0.5",
			     .proto = IPPROTO_TCP,
			     .sport = 40000,
			     .dport = 80,
			     .payload = 6 };
	__u8 b[TP_BUF_SIZE];
	const __u8 *ip = b + ETH, *tcp = b + ETH + 20;
	int len = tp_build(b, sizeof(b), &s);

	assert_int_equal(len, ETH + 20 + 20 + 6);
	assert_int_equal(get16(b + 12), ETH_P_IP);
	assert_int_equal(ip[0], 0x45);
	assert_int_equal(get16(ip + 2), 46);
	assert_int_equal(ip[9], IPPROTO_TCP);
	assert_memory_equal(ip + 12, "\x0a\x00\x00\x01\x0a\x01\x00\x05", 8);
	assert_int_equal(tp_csum(ip, 20, 0), 0);
	assert_int_equal(get16(tcp), 40000);
	assert_int_equal(get16(tcp + 2), 80);
	assert_int_equal(tcp[12], 5 << 4);
	assert_int_equal(tcp[13], TP_SYN); /* 0 = SYN */
	assert_int_equal(tp_csum(tcp, 26, pseudo_sum(ip, 4, IPPROTO_TCP, 26)), 0);
}

static void test_udp6(void **state)
{
	struct tp_spec s = { .src = "fd00::1",
			     .dst = "fd01::5",
			     .proto = IPPROTO_UDP,
			     .sport = 1,
			     .dport = 53,
			     .payload = 11 };
	__u8 b[TP_BUF_SIZE];
	const __u8 *ip = b + ETH, *udp = b + ETH + 40;
	int len = tp_build(b, sizeof(b), &s);

	assert_int_equal(len, ETH + 40 + 8 + 11);
	assert_int_equal(get16(b + 12), ETH_P_IPV6);
	assert_int_equal(ip[0] >> 4, 6);
	assert_int_equal(get16(ip + 4), 19);
	assert_int_equal(ip[6], IPPROTO_UDP);
	assert_int_equal(get16(udp + 2), 53);
	assert_int_equal(get16(udp + 4), 19);
	assert_int_equal(tp_csum(udp, 19, pseudo_sum(ip, 6, IPPROTO_UDP, 19)), 0);
}

static void test_icmp_echo(void **state)
{
	struct tp_spec s4 = { .src = "10.0.0.1",
			      .dst = "10.1.0.5",
			      .proto = IPPROTO_ICMP,
			      .icmp_type = 8,
			      .icmp_id = 0x1234 };
	struct tp_spec s6 = { .src = "fd00::1",
			      .dst = "fd01::5",
			      .proto = IPPROTO_ICMPV6,
			      .icmp_type = 128,
			      .icmp_id = 0x4321 };
	__u8 b[TP_BUF_SIZE];
	int len = tp_build(b, sizeof(b), &s4);

	assert_int_equal(len, ETH + 20 + 8);
	assert_int_equal(b[ETH + 20], 8);
	assert_int_equal(get16(b + ETH + 24), 0x1234);
	assert_int_equal(tp_csum(b + ETH + 20, 8, 0), 0);
	len = tp_build(b, sizeof(b), &s6);
	assert_int_equal(len, ETH + 40 + 8);
	assert_int_equal(b[ETH + 40], 128);
	assert_int_equal(get16(b + ETH + 44), 0x4321);
	assert_int_equal(tp_csum(b + ETH + 40, 8, pseudo_sum(b + ETH, 6, IPPROTO_ICMPV6, 8)), 0);
	/* ICMP in IPv6 is refused: the family decides */
	s6.proto = IPPROTO_ICMP;
	assert_int_equal(tp_build(b, sizeof(b), &s6), -EINVAL);
}

static void test_ip4_options_and_ihl(void **state)
{
	struct tp_spec s = { .src = "10.0.0.1",
			     .dst = "10.1.0.5",
			     .proto = IPPROTO_UDP,
			     .sport = 7,
			     .dport = 9,
			     .ip4_optlen = 12 };
	__u8 b[TP_BUF_SIZE];
	int len = tp_build(b, sizeof(b), &s);

	assert_int_equal(len, ETH + 32 + 8);
	assert_int_equal(b[ETH] & 0xf, 8);
	assert_int_equal(b[ETH + 20], 1); /* NOP ... */
	assert_int_equal(b[ETH + 31], 0); /* ... EOL */
	assert_int_equal(get16(b + ETH + 32 + 2), 9);
	assert_int_equal(tp_csum(b + ETH, 32, 0), 0);
	s.ihl = 4;
	assert_int_equal(tp_build(b, sizeof(b), &s), len);
	assert_int_equal(b[ETH] & 0xf, 4);
	s.ip4_optlen = 6; /* not a multiple of 4 */
	assert_int_equal(tp_build(b, sizeof(b), &s), -EINVAL);
}

static void test_ip6_ext_chain(void **state)
{
	struct tp_spec s = { .src = "fd00::1",
			     .dst = "fd01::5",
			     .proto = IPPROTO_TCP,
			     .sport = 7,
			     .dport = 80,
			     .n_ext = 3,
			     .ext = { IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS } };
	__u8 b[TP_BUF_SIZE];
	const __u8 *ip = b + ETH;
	int len = tp_build(b, sizeof(b), &s);

	assert_int_equal(len, ETH + 40 + 24 + 20);
	assert_int_equal(ip[6], IPPROTO_HOPOPTS);
	assert_int_equal(ip[40], IPPROTO_ROUTING);
	assert_int_equal(ip[41], 0); /* 8 bytes */
	assert_int_equal(ip[48], IPPROTO_DSTOPTS);
	assert_int_equal(ip[56], IPPROTO_TCP);
	assert_int_equal(get16(ip + 64 + 2), 80);
	assert_int_equal(get16(ip + 4), 44);
}

static void test_fragments(void **state)
{
	struct tp_spec s = { .src = "10.0.0.1",
			     .dst = "10.1.0.5",
			     .proto = IPPROTO_UDP,
			     .sport = 7,
			     .dport = 53,
			     .payload = 16,
			     .mf = 1,
			     .frag_id = 0x1234 };
	__u8 b[TP_BUF_SIZE];
	int len = tp_build(b, sizeof(b), &s);

	assert_int_equal(len, ETH + 20 + 8 + 16);
	assert_int_equal(get16(b + ETH + 4), 0x1234);
	assert_int_equal(get16(b + ETH + 6), 0x2000);
	/* a later fragment: no L4 header */
	s.mf = 0;
	s.frag_off = 3;
	len = tp_build(b, sizeof(b), &s);
	assert_int_equal(len, ETH + 20 + 16);
	assert_int_equal(get16(b + ETH + 6), 3);
	/* IPv6: a fragment header after the extension headers */
	s.src = "fd00::1";
	s.dst = "fd01::5";
	s.ext[0] = IPPROTO_DSTOPTS;
	s.n_ext = 1;
	s.frag_id = 0xabcdef01;
	s.mf = 1;
	len = tp_build(b, sizeof(b), &s);
	assert_int_equal(len, ETH + 40 + 8 + 8 + 16);
	assert_int_equal(b[ETH + 40], IPPROTO_FRAGMENT);
	assert_int_equal(b[ETH + 48], IPPROTO_UDP);
	assert_int_equal(get16(b + ETH + 50), 3 << 3 | 1);
	assert_int_equal(get32(b + ETH + 52), 0xabcdef01);
}

static void test_cut_and_lengths(void **state)
{
	struct tp_spec s = { .src = "10.0.0.1",
			     .dst = "10.1.0.5",
			     .proto = IPPROTO_TCP,
			     .sport = 7,
			     .dport = 80,
			     .cut = ETH + 20 + 4 };
	__u8 b[TP_BUF_SIZE];
	int len = tp_build(b, sizeof(b), &s);

	assert_int_equal(len, ETH + 24);
	assert_int_equal(get16(b + ETH + 2), 24); /* follows the cut frame */
	assert_int_equal(tp_csum(b + ETH, 20, 0), 0);
	s.ip_len = 1000;
	assert_int_equal(tp_build(b, sizeof(b), &s), ETH + 24);
	assert_int_equal(get16(b + ETH + 2), 1000);
	s.cut = ETH + 3; /* inside the IP header */
	assert_int_equal(tp_build(b, sizeof(b), &s), ETH + 3);
	s.cut = 10; /* inside Ethernet */
	assert_int_equal(tp_build(b, sizeof(b), &s), 10);
}

static void test_icmp_error_quote(void **state)
{
	struct tp_spec inner = { .src = "10.0.0.1",
				 .dst = "10.1.0.5",
				 .proto = IPPROTO_UDP,
				 .sport = 40000,
				 .dport = 53 };
	struct tp_spec s = { .src = "10.9.9.9",
			     .dst = "10.0.0.1",
			     .proto = IPPROTO_ICMP,
			     .icmp_type = 3,
			     .icmp_code = 3,
			     .inner = &inner };
	__u8 b[TP_BUF_SIZE], q[TP_BUF_SIZE];
	int qlen = tp_build_l3(q, sizeof(q), &inner);
	int len = tp_build(b, sizeof(b), &s);

	assert_int_equal(qlen, 28);
	assert_int_equal(len, ETH + 20 + 8 + qlen);
	assert_memory_equal(b + ETH + 28, q, (size_t)qlen);
	assert_int_equal(tp_csum(b + ETH + 20, (size_t)(8 + qlen), 0), 0);
	s.inner = NULL; /* an error type needs its quote */
	assert_int_equal(tp_build(b, sizeof(b), &s), -EINVAL);
}

static void test_l2_and_errors(void **state)
{
	struct tp_spec arp = { .ethertype = ETH_P_ARP };
	struct tp_spec lldp = { .ethertype = 0x88cc, .payload = 46 };
	struct tp_spec bad = { .src = "10.0.0.1", .dst = "fd00::1", .proto = IPPROTO_UDP };
	struct tp_spec big = {
		.src = "10.0.0.1", .dst = "10.0.0.2", .proto = IPPROTO_UDP, .payload = 1500
	};
	__u8 b[TP_BUF_SIZE];
	__u32 a[4];

	assert_int_equal(tp_build(b, sizeof(b), &arp), ETH + 28);
	assert_int_equal(get16(b + 12), ETH_P_ARP);
	assert_int_equal(tp_build(b, sizeof(b), &lldp), ETH + 46);
	assert_int_equal(get16(b + 12), 0x88cc);
	assert_int_equal(tp_build(b, sizeof(b), &bad), -EINVAL);
	assert_int_equal(tp_build(b, 100, &big), -ENOSPC);
	assert_int_equal(tp_family("10.0.0.1"), 4);
	assert_int_equal(tp_family("fd00::1"), 6);
	assert_int_equal(tp_family("nope"), 0);
	assert_int_equal(tp_addr("10.0.0.1", a), 0);
	assert_memory_equal(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff\x0a\0\0\x01", 16);
	assert_int_equal(tp_addr("nope", a), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csum_known_value),
		cmocka_unit_test(test_tcp4),
		cmocka_unit_test(test_udp6),
		cmocka_unit_test(test_icmp_echo),
		cmocka_unit_test(test_ip4_options_and_ihl),
		cmocka_unit_test(test_ip6_ext_chain),
		cmocka_unit_test(test_fragments),
		cmocka_unit_test(test_cut_and_lengths),
		cmocka_unit_test(test_icmp_error_quote),
		cmocka_unit_test(test_l2_and_errors),
	};

	return cmocka_run_group_tests_name("testpkt", tests, NULL, NULL);
}
