/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Shared between bench/floors.bpf.c and bench/datapath: the per-packet
 * variant the driver program writes into the test packet before it
 * tail-calls the program under measurement.
 */
#ifndef SEG_BENCH_ABI_H
#define SEG_BENCH_ABI_H

#include <linux/types.h>

/* Variants held by the driver's array (all sets back to back). */
#define BENCH_MAX_VARIANTS (1u << 20)

/* Fresh mode: local port = BENCH_FRESH_PORT0 + (seq & 0x7fff) and the low
 * 16 bits of the local address = (seq >> 15) & 0xffff, so 2^31 packets in a
 * row are 2^31 distinct flows. Fixed-mode variants use local ports at or
 * above BENCH_FIXED_PORT0, so the two kinds of flows never collide. */
#define BENCH_FRESH_PORT0 1024
#define BENCH_FIXED_PORT0 40000

/* Driver return values when it could not hand the packet on. */
#define BENCH_RET_NO_VARIANT 0x5e60
#define BENCH_RET_SHORT 0x5e61
#define BENCH_RET_NO_TARGET 0x5e62

struct bench_variant {
	__u32 raddr[4]; /* network order; IPv4 in raddr[3] */
	__u16 rport; /* host order */
	__u16 lport; /* host order; used when not in fresh mode */
	__u32 _pad;
};
_Static_assert(sizeof(struct bench_variant) == 24, "bench_variant");

#endif
