// SPDX-License-Identifier: GPL-2.0-only
/*
 * Port range -> aligned power-of-two blocks, for the policy map.
 *
 * A block (port, wild) covers [port, port + 2^wild - 1] and has the low
 * `wild` bits of port zero, so the data path finds it with one masked
 * lookup per block width (abi.h, policy map). Greedy from the low end:
 *
 *   p = lo
 *   while p <= hi:
 *       k = the largest k <= 16 such that p is a multiple of 2^k
 *           and p + 2^k - 1 <= hi
 *       emit (p, k); p += 2^k
 *
 * Each step takes the largest aligned block that starts at p and fits, so
 * the blocks are disjoint, aligned, and cover [lo, hi] exactly. Block sizes
 * first grow (alignment of p increases) and then shrink (the remainder
 * hi - p + 1 decreases), each size at most once on each side, so there are
 * at most 2 * 16 - 2 = 30 blocks (e.g. [1, 65534]); [0, 65535] is a single
 * k = 16 block. Pure code: no I/O, no libbpf.
 */
#include "dp/dp.h"

#include <errno.h>

int seg_port_range_blocks(__u16 lo, __u16 hi, struct seg_port_block *out, size_t max)
{
	__u32 p = lo, end = (__u32)hi + 1; /* 32 bits: hi = 65535 must not wrap */
	size_t n = 0;

	if (lo > hi)
		return -EINVAL;
	while (p < end) {
		__u32 k = 16;

		/* Shrink until aligned at p and inside [p, hi]. */
		while ((p & ((1u << k) - 1)) || p + (1u << k) > end)
			k--;
		if (n == max)
			return -E2BIG;
		out[n++] = (struct seg_port_block){ .port = (__u16)p, .wild = (__u8)k };
		p += 1u << k;
	}
	return (int)n;
}

__u32 seg_port_blocks_mask(const struct seg_port_block *b, size_t n)
{
	__u32 mask = 0;

	for (size_t i = 0; i < n; i++)
		mask |= 1u << b[i].wild;
	return mask;
}
