/* SPDX-License-Identifier: GPL-2.0-only */
/* bench/datapath internals: the run's state, its cases, and the three parts
 * (tables: fill maps and build packets; datapath.c: measure; report: print). */
#ifndef SEG_BENCH_DATAPATH_H
#define SEG_BENCH_DATAPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#define BENCH_NSIZES 3 /* policy table sizes, one seg instance each */
#define BENCH_MAX_ROUNDS 64
#define BENCH_MAX_SLICES 64
#define BENCH_NID_MAX 1000 /* remote identities used by the policy */
#define BENCH_PORT0 1000 /* allowed remote ports: BENCH_PORT0 + n */
#define BENCH_DENY_PORT0 2000 /* denied remote ports: never in the policy */
#define BENCH_PKT_MAX 128
#define BENCH_NSETS (2 * BENCH_NSIZES + 2) /* allowed per size+family, denied per family */

enum bench_kind {
	BK_EMPTY_DIRECT, /* floor_empty run directly: the test-run loop itself */
	BK_EMPTY, /* driver -> floor_empty: calibrates the driver */
	BK_CLASSIFY,
	BK_STATEFUL,
	BK_EST,
	BK_NEW,
	BK_DENY,
	BK_MAX
};

struct bench_opts {
	long repeat; /* packets per sample */
	int rounds;
	int slices; /* per round: each case's packets in this many interleaved parts */
	int chunk; /* repetitions per BPF_PROG_TEST_RUN call */
	__u32 nvar; /* variants per "vary" set (power of two) */
	__u32 ipcache; /* ipcache entries (exact + LPM, both families) */
	__u32 sizes[BENCH_NSIZES]; /* policy entries per seg instance */
	__u32 entries_per_rule; /* policy entries sharing one rule id */
	__u32 deny_rate; /* seg_config.evt_rate for the denied rows */
	unsigned int only; /* bit per seg row kind (1 << BK_EST ...); 0 = all */
	bool hot_only; /* only the one-hot-key rows */
	__u64 seed;
};

struct bench_case {
	enum bench_kind kind;
	int v6;
	int hot; /* 1: one hot key; 0: keys vary over the tables */
	int size; /* seg instance index; -1 for floors */
	double ns[BENCH_MAX_ROUNDS]; /* per round; net of the driver once done */
	long pk[BENCH_MAX_ROUNDS]; /* packets timed per round */
	int n;
	double min, med, max;
	double reason_ok; /* worst round: share of packets with the expected
			   * reason (seg rows), or -1 when nothing was counted */
	double ev_per_pkt; /* worst round: ring buffer records per packet */
	bool retval_bad; /* the last packet's verdict was not the expected one */
};

struct bench_seg {
	struct seg_bpf *skel;
	struct ring_buffer *rb;
	__u32 entries; /* policy entries */
	__u32 nid; /* remote identities they name */
};

struct bench_machine {
	long nproc;
	char cpu[128];
	char kernel[128];
	int jit_enable; /* /proc/sys/net/core/bpf_jit_enable, -1 unknown */
	bool jited; /* the loaded programs carry JIT images */
	bool bpffs;
};

struct bench {
	struct bench_opts o;
	struct bench_machine m;
	struct seg_floors *fl;
	struct ring_buffer *floor_rb;
	struct bench_seg seg[BENCH_NSIZES];
	__u32 ifkey; /* loopback ifindex: the test-run skb's device */
	__u8 pkt[2][2][BENCH_PKT_MAX]; /* [v6][ack] */
	__u32 pkt_len[2];
	struct bench_case *cases;
	int ncases;
	int ncpus;
	double driver_ns[2]; /* driver + tail call overhead by hot, subtracted */
};

/* bench/dp_tables.c */
__u64 bench_rand(__u64 *state);
int bench_fill_seg(struct bench *b, struct bench_seg *s);
int bench_fill_variants(struct bench *b);
__u32 bench_set_allowed(int size, int v6);
__u32 bench_set_denied(int v6);
size_t bench_build_pkt(__u8 *buf, int v6, bool ack);

/* bench/dp_report.c */
const char *bench_kind_name(enum bench_kind k);
void bench_stats(struct bench *b);
void bench_report(const struct bench *b);

#endif
