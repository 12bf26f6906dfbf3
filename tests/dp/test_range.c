// SPDX-License-Identifier: GPL-2.0-only
/*
 * Port range -> aligned power-of-two blocks (lib/dp/range.c), pure.
 * Property checked for every range tried: the blocks are in order,
 * aligned, adjacent (so disjoint and exactly covering [lo, hi]), at most
 * 30, and minimal (no two neighbours could merge into one aligned block).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dp/dp.h"

static int max_seen;

/* Checks one range; returns the block count. */
static int check_range(__u32 lo, __u32 hi)
{
	struct seg_port_block b[SEG_PORT_BLOCKS_MAX];
	__u32 next = lo, mask = 0;
	int n = seg_port_range_blocks((__u16)lo, (__u16)hi, b, SEG_PORT_BLOCKS_MAX);

	if (n < 1 || n > SEG_PORT_BLOCKS_MAX)
		fail_msg("[%u, %u]: %d blocks", lo, hi, n);
	for (int i = 0; i < n; i++) {
		__u32 size = 1u << b[i].wild;

		if (b[i].wild > 16)
			fail_msg("[%u, %u] block %d: wild %u", lo, hi, i, b[i].wild);
		if (b[i].port & (size - 1))
			fail_msg("[%u, %u] block %d: %u not aligned to 2^%u", lo, hi, i, b[i].port,
				 b[i].wild);
		if (b[i].port != next)
			fail_msg("[%u, %u] block %d starts at %u, expected %u", lo, hi, i,
				 b[i].port, next);
		next = b[i].port + size;
		/* Minimal: two equal neighbours on a 2^(k+1) boundary could merge. */
		if (i > 0 && b[i - 1].wild == b[i].wild && b[i].wild < 16 &&
		    !(b[i - 1].port & ((size << 1) - 1)))
			fail_msg("[%u, %u] blocks %d and %d could merge", lo, hi, i - 1, i);
		mask |= 1u << b[i].wild;
	}
	if (next != hi + 1)
		fail_msg("[%u, %u]: blocks end at %u", lo, hi, next - 1);
	if (seg_port_blocks_mask(b, n) != mask)
		fail_msg("[%u, %u]: mask %#x, expected %#x", lo, hi, seg_port_blocks_mask(b, n),
			 mask);
	if (n > max_seen)
		max_seen = n;
	return n;
}

/* Slow and obviously right: one byte per port. Used on a few ranges. */
static void check_cover_bitmap(__u32 lo, __u32 hi)
{
	static unsigned char seen[65536];
	struct seg_port_block b[SEG_PORT_BLOCKS_MAX];
	int n = seg_port_range_blocks((__u16)lo, (__u16)hi, b, SEG_PORT_BLOCKS_MAX);

	assert_true(n > 0);
	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < n; i++)
		for (__u32 p = b[i].port; p < b[i].port + (1u << b[i].wild); p++)
			seen[p]++;
	for (__u32 p = 0; p < 65536; p++)
		if (seen[p] != (p >= lo && p <= hi))
			fail_msg("[%u, %u]: port %u covered %u times", lo, hi, p, seen[p]);
}

static void test_known(void **state)
{
	struct seg_port_block b[SEG_PORT_BLOCKS_MAX];

	assert_int_equal(seg_port_range_blocks(0, 65535, b, 30), 1);
	assert_int_equal(b[0].port, 0);
	assert_int_equal(b[0].wild, 16);
	assert_int_equal(seg_port_blocks_mask(b, 1), SEG_PMASK_ALLPORTS);

	assert_int_equal(seg_port_range_blocks(80, 80, b, 30), 1);
	assert_int_equal(b[0].port, 80);
	assert_int_equal(b[0].wild, 0);

	assert_int_equal(seg_port_range_blocks(65535, 65535, b, 30), 1);
	assert_int_equal(b[0].port, 65535);
	assert_int_equal(b[0].wild, 0);

	/* 8080-8090: 8080/4 (8080..8095 is too wide), so 8080/3, 8088/1, 8090/0 */
	assert_int_equal(seg_port_range_blocks(8080, 8090, b, 30), 3);
	assert_int_equal(b[0].port, 8080);
	assert_int_equal(b[0].wild, 3);
	assert_int_equal(b[1].port, 8088);
	assert_int_equal(b[1].wild, 1);
	assert_int_equal(b[2].port, 8090);
	assert_int_equal(b[2].wild, 0);

	/* 1024-65535: six growing blocks 1024/10 .. 32768/15 */
	assert_int_equal(seg_port_range_blocks(1024, 65535, b, 30), 6);
	assert_int_equal(seg_port_blocks_mask(b, 6), 0xfc00u);

	/* The worst case is 30. */
	assert_int_equal(seg_port_range_blocks(1, 65534, b, 30), 30);
}

static void test_errors(void **state)
{
	struct seg_port_block b[SEG_PORT_BLOCKS_MAX];

	assert_int_equal(seg_port_range_blocks(10, 9, b, 30), -EINVAL);
	assert_int_equal(seg_port_range_blocks(65535, 0, b, 30), -EINVAL);
	assert_int_equal(seg_port_range_blocks(1, 65534, b, 29), -E2BIG);
	assert_int_equal(seg_port_range_blocks(8080, 8090, b, 2), -E2BIG);
	assert_int_equal(seg_port_range_blocks(0, 0, b, 0), -E2BIG);
}

/* Every range with an end at a power of two +-1, 0 or 65535. */
static void test_edges(void **state)
{
	__u32 e[80];
	int ne = 0;

	e[ne++] = 0;
	e[ne++] = 65535;
	for (int k = 0; k <= 16; k++) {
		__u32 p = 1u << k;

		if (p - 1 <= 65535)
			e[ne++] = p - 1;
		if (p <= 65535)
			e[ne++] = p;
		if (p + 1 <= 65535)
			e[ne++] = p + 1;
		if (p >= 2 && 65536 - p <= 65535)
			e[ne++] = 65536 - p; /* high aligned values */
	}
	for (int i = 0; i < ne; i++)
		for (int j = 0; j < ne; j++)
			if (e[i] <= e[j])
				check_range(e[i], e[j]);
	check_cover_bitmap(1, 65534);
	check_cover_bitmap(0, 65535);
	check_cover_bitmap(0, 0);
	check_cover_bitmap(65535, 65535);
	check_cover_bitmap(32767, 32768);
	check_cover_bitmap(1023, 49153);
}

/* Every range starting at 0 or ending at 65535, and every small range near
 * both ends and near 32768. */
static void test_exhaustive_slices(void **state)
{
	for (__u32 p = 0; p <= 65535; p++) {
		check_range(0, p);
		check_range(p, 65535);
	}
	const __u32 bases[] = { 0, 32768 - 300, 65535 - 300 };

	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++)
		for (__u32 lo = bases[i]; lo <= bases[i] + 300; lo++)
			for (__u32 hi = lo; hi <= bases[i] + 300; hi++)
				check_range(lo, hi);
}

static void test_random(void **state)
{
	unsigned int seed = 12345;

	for (int i = 0; i < 500000; i++) {
		__u32 a = rand_r(&seed) & 0xffff, b = rand_r(&seed) & 0xffff;

		check_range(a < b ? a : b, a < b ? b : a);
	}
	for (int i = 0; i < 50; i++) {
		__u32 a = rand_r(&seed) & 0xffff, b = rand_r(&seed) & 0xffff;

		check_cover_bitmap(a < b ? a : b, a < b ? b : a);
	}
	/* Over everything tried, the bound was reached and never exceeded. */
	assert_int_equal(max_seen, 30);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known),  cmocka_unit_test(test_errors),
		cmocka_unit_test(test_edges),  cmocka_unit_test(test_exhaustive_slices),
		cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests_name("dp_range", tests, NULL, NULL);
}
