// SPDX-License-Identifier: GPL-2.0-only
/* segprobe's pure parts: CRC32c, SCTP INIT/INIT-ACK build and parse, port lists. */
#include "segprobe.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

static void test_crc32c_vectors(void **state)
{
	uint8_t buf[32];

	/* The check value of CRC-32C and the iSCSI vectors (RFC 3720 B.4). */
	assert_int_equal(crc32c(0, "123456789", 9), 0xe3069283);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(crc32c(0, buf, sizeof(buf)), 0x8a9136aa);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(crc32c(0, buf, sizeof(buf)), 0x62a8ab43);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(crc32c(0, buf, sizeof(buf)), 0x46dd794e);
	/* Chaining equals one pass. */
	assert_int_equal(crc32c(crc32c(0, buf, 5), buf + 5, 27), 0x46dd794e);
}

static void test_init_roundtrip(void **state)
{
	uint8_t pkt[SCTP_PKT_MAX];
	struct sctp_info in;
	size_t len = sctp_build_init(pkt, sizeof(pkt), 40000, 9, 0xdeadbeef, 77);

	assert_int_equal(len, SCTP_COMMON_LEN + SCTP_INIT_LEN);
	assert_int_equal(sctp_parse(pkt, len, &in), 0);
	assert_int_equal(in.type, SCTP_CHUNK_INIT);
	assert_int_equal(in.sport, 40000);
	assert_int_equal(in.dport, 9);
	assert_int_equal(in.vtag, 0);
	assert_int_equal(in.init_tag, 0xdeadbeef);
	assert_int_equal(in.tsn, 77);
	assert_int_equal(in.os, 1);
	assert_int_equal(in.mis, 1);
	/* Wire layout: ports, then the INIT chunk header at offset 12. */
	assert_int_equal(pkt[0], 40000 >> 8);
	assert_int_equal(pkt[12], SCTP_CHUNK_INIT);
	assert_int_equal(pkt[15], SCTP_INIT_LEN);
	/* Checksum stored little-endian over the packet with a zero field. */
	{
		uint8_t copy[SCTP_PKT_MAX];
		uint32_t crc;

		memcpy(copy, pkt, len);
		memset(copy + 8, 0, 4);
		crc = crc32c(0, copy, len);
		assert_int_equal(pkt[8], crc & 0xff);
		assert_int_equal(pkt[11], crc >> 24);
	}
	assert_int_equal(sctp_build_init(pkt, 31, 1, 2, 3, 4), 0);
}

static void test_init_ack_answers_init(void **state)
{
	uint8_t pkt[SCTP_PKT_MAX];
	struct sctp_info init, ack;
	size_t len = sctp_build_init(pkt, sizeof(pkt), 40000, 9, 0x11223344, 5);

	assert_int_equal(sctp_parse(pkt, len, &init), 0);
	len = sctp_build_init_ack(pkt, sizeof(pkt), &init, 0x55667788, 9);
	assert_int_equal(len, SCTP_COMMON_LEN + SCTP_INIT_LEN + 4 + SCTP_COOKIE_LEN);
	assert_int_equal(sctp_parse(pkt, len, &ack), 0);
	assert_int_equal(ack.type, SCTP_CHUNK_INIT_ACK);
	assert_int_equal(ack.sport, 9);
	assert_int_equal(ack.dport, 40000);
	assert_int_equal(ack.vtag, 0x11223344); /* the INIT's initiate tag */
	assert_int_equal(ack.init_tag, 0x55667788);
	assert_int_equal(ack.cookie_len, SCTP_COOKIE_LEN);
}

static void test_parse_rejects(void **state)
{
	uint8_t pkt[SCTP_PKT_MAX];
	struct sctp_info in;
	size_t len = sctp_build_init(pkt, sizeof(pkt), 1000, 2000, 7, 8);

	pkt[20] ^= 1; /* a flipped bit in the a_rwnd */
	assert_int_equal(sctp_parse(pkt, len, &in), -EBADMSG);
	pkt[20] ^= 1;
	assert_int_equal(sctp_parse(pkt, len, &in), 0);
	assert_int_equal(sctp_parse(pkt, 15, &in), -EMSGSIZE);
	/* A packet cut short no longer matches its checksum. */
	len = sctp_build_init(pkt, sizeof(pkt), 1000, 2000, 7, 8);
	assert_int_equal(sctp_parse(pkt, len - 4, &in), -EBADMSG);
}

static void test_port_lists(void **state)
{
	uint16_t ports[PROBE_MAX_PORTS];
	int n = 0;

	assert_int_equal(port_list_parse("80,443,8000-8002", ports, &n, PROBE_MAX_PORTS), 0);
	assert_int_equal(n, 5);
	assert_int_equal(ports[0], 80);
	assert_int_equal(ports[4], 8002);
	n = 0;
	assert_int_equal(port_list_parse("0", ports, &n, PROBE_MAX_PORTS), -EINVAL);
	assert_int_equal(port_list_parse("70000", ports, &n, PROBE_MAX_PORTS), -EINVAL);
	assert_int_equal(port_list_parse("9-5", ports, &n, PROBE_MAX_PORTS), -EINVAL);
	assert_int_equal(port_list_parse("1-100", ports, &n, PROBE_MAX_PORTS), -E2BIG);
}

static void test_sockaddr(void **state)
{
	struct sockaddr_storage ss;
	char buf[64];
	socklen_t len;

	assert_int_equal(sockaddr_parse("10.1.2.3", 80, &ss, &len), 0);
	assert_string_equal(sockaddr_str(&ss, buf, sizeof(buf)), "10.1.2.3:80");
	assert_int_equal(sockaddr_parse("[fd00::1]", 9, &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_string_equal(sockaddr_str(&ss, buf, sizeof(buf)), "[fd00::1]:9");
	assert_int_equal(sockaddr_parse("fd00::zz", 9, &ss, &len), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_vectors),
		cmocka_unit_test(test_init_roundtrip),
		cmocka_unit_test(test_init_ack_answers_init),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_port_lists),
		cmocka_unit_test(test_sockaddr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
