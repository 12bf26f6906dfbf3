// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench/datapath: ns per packet through seg's TC program (BPF_PROG_TEST_RUN)
 * next to three floors measured in the same run. Not a test: it prints a
 * markdown report (stdout) and PASS/MISS per target, and exits 0 on a miss.
 * Method and what each row measures: bench/README.md.
 */
#include "datapath.h"
#include "seg_bpf.skel.h"
#include "seg_floors.skel.h"
#include "bench_abi.h"
#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <linux/magic.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <seg/abi.h>

static const struct bench_opts bench_defaults = {
	.repeat = 1000000,
	.rounds = 5,
	.slices = 4,
	.chunk = 32768,
	.nvar = 65536,
	.ipcache = 100000,
	.sizes = { 10, 10000, 100000 },
	.entries_per_rule = 1,
	.deny_rate = 1000,
	.seed = 0x5e6b3c4d,
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: datapath [options]\n"
		"  -n, --repeat N     packets per sample (default %ld, min 1000)\n"
		"  -r, --rounds N     interleaved rounds, min/median/max over them (default %d, max %d)\n"
		"  -s, --slices N     each round runs every case's packets as N slices, all cases\n"
		"                     once per slice in a new order (default %d, max %d)\n"
		"  -c, --chunk N      repetitions per BPF_PROG_TEST_RUN call; the ring buffers are\n"
		"                     drained between calls (default %d, max 40000)\n"
		"  -k, --variants N   distinct packets per 'vary' set, power of two (default %u, max %u)\n"
		"  -i, --ipcache N    ipcache entries, both families, 9/10 exact + 1/10 LPM (default %u)\n"
		"  -e, --entries-per-rule N  policy entries sharing one rule id (default %u:\n"
		"                     every entry its own rule, the worst case for rule counters)\n"
		"  -o, --only LIST    seg rows to run, comma-separated: est, new, deny (floors\n"
		"                     always run; targets of rows not run are not printed)\n"
		"  -H, --hot-only     only the rows with one hot key (no 'vary' rows)\n"
		"  -q, --quick        smoke run: --repeat 100000 --rounds 2 --slices 1\n"
		"  -v, --verbose      libbpf messages\n"
		"  -h, --help\n"
		"Needs root; JIT should be on (/proc/sys/net/core/bpf_jit_enable). Nothing is pinned.\n",
		bench_defaults.repeat, bench_defaults.rounds, BENCH_MAX_ROUNDS,
		bench_defaults.slices, BENCH_MAX_SLICES, bench_defaults.chunk, bench_defaults.nvar,
		BENCH_MAX_VARIANTS / BENCH_NSETS, bench_defaults.ipcache,
		bench_defaults.entries_per_rule);
}

static int parse_num(const char *flag, const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || *end || v < min || v > max) {
		log_error("%s: '%s' is not a number in [%ld, %ld]", flag, s, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* "est,new" -> kind bits; -EINVAL (reported) on an unknown name. */
static int parse_only(const char *s, unsigned int *out)
{
	static const struct {
		const char *name;
		enum bench_kind k;
	} names[] = { { "est", BK_EST }, { "new", BK_NEW }, { "deny", BK_DENY } };
	char buf[64], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", s);
	*out = 0;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		size_t i;

		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (!strcmp(t, names[i].name))
				break;
		if (i == sizeof(names) / sizeof(names[0])) {
			log_error("--only: unknown row '%s' (est, new, deny)", t);
			return -EINVAL;
		}
		*out |= 1u << names[i].k;
	}
	return 0;
}

/* 0, 1 = help printed, -EINVAL = usage error (already reported). */
static int parse_opts(int argc, char **argv, struct bench_opts *o)
{
	static const struct option lopts[] = {
		{ "repeat", required_argument, NULL, 'n' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "slices", required_argument, NULL, 's' },
		{ "chunk", required_argument, NULL, 'c' },
		{ "variants", required_argument, NULL, 'k' },
		{ "ipcache", required_argument, NULL, 'i' },
		{ "entries-per-rule", required_argument, NULL, 'e' },
		{ "only", required_argument, NULL, 'o' },
		{ "hot-only", no_argument, NULL, 'H' },
		{ "quick", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	long v = 0;
	int c, err = 0;

	*o = bench_defaults;
	while (!err && (c = getopt_long(argc, argv, "n:r:s:c:k:i:e:o:Hqvh", lopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			err = parse_num("--repeat", optarg, 1000, 1L << 40, &o->repeat);
			break;
		case 'r':
			err = parse_num("--rounds", optarg, 1, BENCH_MAX_ROUNDS, &v);
			o->rounds = v;
			break;
		case 's':
			err = parse_num("--slices", optarg, 1, BENCH_MAX_SLICES, &v);
			o->slices = v;
			break;
		case 'c':
			err = parse_num("--chunk", optarg, 1, 40000, &v);
			o->chunk = v;
			break;
		case 'k':
			err = parse_num("--variants", optarg, 1, BENCH_MAX_VARIANTS / BENCH_NSETS,
					&v);
			if (!err && (v & (v - 1))) {
				log_error("--variants: %ld is not a power of two", v);
				err = -EINVAL;
			}
			o->nvar = v;
			break;
		case 'i':
			err = parse_num("--ipcache", optarg, 20, 290000, &v);
			o->ipcache = v;
			break;
		case 'e':
			err = parse_num("--entries-per-rule", optarg, 1, 1000000, &v);
			o->entries_per_rule = v;
			break;
		case 'o':
			err = parse_only(optarg, &o->only);
			break;
		case 'H':
			o->hot_only = true;
			break;
		case 'q':
			o->repeat = 100000;
			o->rounds = 2;
			o->slices = 1;
			break;
		case 'v':
			log_set_level(LOG_LVL_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			err = -EINVAL;
		}
	}
	if (!err && optind < argc) {
		log_error("unexpected argument '%s'", argv[optind]);
		err = -EINVAL;
	}
	if (err)
		usage(stderr);
	return err;
}

static int read_machine(struct bench_machine *m)
{
	char line[256];
	struct statfs sfs;
	struct utsname u;
	FILE *f;

	m->nproc = sysconf(_SC_NPROCESSORS_ONLN);
	snprintf(m->cpu, sizeof(m->cpu), "unknown");
	f = fopen("/proc/cpuinfo", "r");
	while (f && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (!strncmp(line, "model name", 10) && colon) {
			snprintf(m->cpu, sizeof(m->cpu), "%s", colon + 2);
			m->cpu[strcspn(m->cpu, "\n")] = 0;
			break;
		}
	}
	if (f)
		fclose(f);
	snprintf(m->kernel, sizeof(m->kernel), "%s", uname(&u) ? "unknown" : u.release);
	m->jit_enable = -1;
	f = fopen("/proc/sys/net/core/bpf_jit_enable", "r");
	if (!f || fscanf(f, "%d", &m->jit_enable) != 1)
		log_warn("cannot read /proc/sys/net/core/bpf_jit_enable");
	if (f)
		fclose(f);
	m->bpffs = !statfs("/sys/fs/bpf", &sfs) && sfs.f_type == BPF_FS_MAGIC;
	if (geteuid() != 0)
		return log_err(-EPERM, "needs root: loading BPF programs and "
				       "BPF_PROG_TEST_RUN on TC programs need CAP_BPF, "
				       "CAP_NET_ADMIN and CAP_PERFMON; run it with sudo");
	if (m->jit_enable == 0)
		log_warn("BPF JIT is off (net.core.bpf_jit_enable=0): numbers "
			 "are interpreter numbers, not what seg costs");
	return 0;
}

static bool prog_jited(const struct bpf_program *p)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len))
		return false;
	return info.jited_prog_len > 0;
}

static int count_event(void *ctx, void *data, size_t size)
{
	return 0;
}

static int load_all(struct bench *b)
{
	int err;

	b->fl = seg_floors__open_and_load();
	if (!b->fl)
		return log_err(-errno, "load bench/floors.bpf.c (verifier log above, -v for all)");
	b->floor_rb =
		ring_buffer__new(bpf_map__fd(b->fl->maps.floor_events), count_event, NULL, NULL);
	if (!b->floor_rb)
		return log_err(-errno, "ring buffer floor_events");
	for (int i = 0; i < BENCH_NSIZES; i++) {
		struct bench_seg *s = &b->seg[i];

		s->entries = b->o.sizes[i];
		s->skel = seg_bpf__open_and_load();
		if (!s->skel)
			return log_err(
				-errno,
				"load seg_bpf (bpf/seg_dp.bpf.c; verifier log above, -v for all)");
		s->rb = ring_buffer__new(bpf_map__fd(s->skel->maps.seg_events), count_event, NULL,
					 NULL);
		if (!s->rb)
			return log_err(-errno, "ring buffer %s", SEG_MAP_EVENTS);
		log_info("filling seg instance %d: %u policy entries, %u ipcache entries", i,
			 s->entries, b->o.ipcache);
		err = bench_fill_seg(b, s);
		if (err)
			return err;
	}
	b->m.jited = prog_jited(b->fl->progs.bench_drive) &&
		     prog_jited(b->seg[0].skel->progs.seg_tc_from_pod);
	return bench_fill_variants(b);
}

static void unload_all(struct bench *b)
{
	for (int i = 0; i < BENCH_NSIZES; i++) {
		ring_buffer__free(b->seg[i].rb);
		seg_bpf__destroy(b->seg[i].skel);
	}
	ring_buffer__free(b->floor_rb);
	seg_floors__destroy(b->fl);
}

static const enum seg_reason expect_reason[BK_MAX] = {
	[BK_EST] = SEG_R_ALLOW_ESTABLISHED,
	[BK_NEW] = SEG_R_ALLOW_RULE,
	[BK_DENY] = SEG_DROP_POLICY,
};

/* Packets per reason, summed over CPUs. */
static int read_reasons(struct bench *b, const struct bench_seg *s, __u64 *out)
{
	int fd = bpf_map__fd(s->skel->maps.seg_reasons);
	struct seg_counter per_cpu[b->ncpus];

	for (__u32 r = 0; r < SEG_REASON_MAX; r++) {
		out[r] = 0;
		if (bpf_map_lookup_elem(fd, &r, per_cpu))
			return log_err(-errno, "read %s[%u]", SEG_MAP_REASONS, r);
		for (int c = 0; c < b->ncpus; c++)
			out[r] += per_cpu[c].packets;
	}
	return 0;
}

struct bench_run {
	int prog_fd; /* what BPF_PROG_TEST_RUN runs */
	const __u8 *pkt;
	__u32 len;
	struct ring_buffer *rb;
	double ns; /* out: sum of duration x repetitions */
	long events; /* out: ring buffer records drained */
	__u32 retval; /* out: verdict of the last packet */
};

static int run_packets(const struct bench *b, struct bench_run *r, long packets)
{
	r->ns = 0;
	r->events = 0;
	for (long done = 0; done < packets;) {
		int rep = packets - done < b->o.chunk ? packets - done : b->o.chunk;
		LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = r->pkt, .data_size_in = r->len,
			    .repeat = rep);
		int n;

		if (bpf_prog_test_run_opts(r->prog_fd, &t))
			return log_err(-errno, "BPF_PROG_TEST_RUN (repeat %d)", rep);
		r->ns += (double)t.duration * rep;
		r->retval = t.retval;
		n = r->rb ? ring_buffer__consume(r->rb) : 0;
		if (n < 0)
			return log_err(n, "drain ring buffer");
		r->events += n;
		done += rep;
	}
	return 0;
}

static int set_target(struct bench *b, const struct bpf_program *p)
{
	__u32 zero = 0;
	int fd = bpf_program__fd(p);

	if (bpf_map_update_elem(bpf_map__fd(b->fl->maps.bench_target), &zero, &fd, BPF_ANY))
		return log_err(-errno, "bench_target <- %s", bpf_program__name(p));
	return 0;
}

static int set_evt_rate(struct bench_seg *s, __u32 rate)
{
	struct seg_config cfg = { .evt_rate = rate, .evt_burst = rate };
	__u32 zero = 0;

	if (bpf_map_update_elem(bpf_map__fd(s->skel->maps.seg_config), &zero, &cfg, BPF_ANY))
		return log_err(-errno, "write %s", SEG_MAP_CONFIG);
	return 0;
}

/* Point the driver at a variant set: one hot key or the whole set. */
static void set_driver(struct bench *b, const struct bench_case *c, __u32 set, bool fresh)
{
	b->fl->bss->bench_base = set * b->o.nvar;
	b->fl->bss->bench_mask = c->hot ? 0 : b->o.nvar - 1;
	b->fl->bss->bench_fresh = fresh;
	b->fl->bss->bench_v6 = c->v6;
}

/* Untimed: put every flow of the set into the conntrack the case reads
 * (twice: the second pass finds them all, or the check column shows it). */
static int warm_flows(struct bench *b, const struct bench_case *c, __u32 set,
		      const struct bpf_program *creator, const struct bench_run *r)
{
	struct bench_run w = *r;
	long n = c->hot ? 1 : b->o.nvar;
	int err;

	set_driver(b, c, set, false);
	err = set_target(b, creator);
	w.pkt = b->pkt[c->v6][0]; /* SYN */
	for (int pass = 0; !err && pass < 2; pass++)
		err = run_packets(b, &w, n);
	return err;
}

/* One slice and its checks: verdict, expected reason, events per packet
 * (the worst slice is kept). after/before: reason counters, NULL for floors.
 * The slice's time adds to the round's; run_rounds() divides at its end. */
static void record(struct bench_case *c, int round, long packets, const struct bench_run *r,
		   const __u64 *after, const __u64 *before)
{
	__u32 want = c->kind == BK_DENY ? TC_ACT_SHOT : (__u32)TC_ACT_UNSPEC;
	double ev = (double)r->events / packets;
	bool first = !c->pk[round] && round == 0;

	c->ns[round] += r->ns;
	c->pk[round] += packets;
	c->n = round + 1;
	if (r->retval != want)
		c->retval_bad = true;
	if (first || ev < c->ev_per_pkt)
		c->ev_per_pkt = ev;
	if (after) {
		enum seg_reason want_r = expect_reason[c->kind];
		__u64 total = 0;
		double ok;

		for (int i = 0; i < SEG_REASON_MAX; i++)
			total += after[i] - before[i];
		ok = total ? (double)(after[want_r] - before[want_r]) / total : -1;
		if (first || ok < c->reason_ok)
			c->reason_ok = ok;
	}
}

/* One slice of a case: packets timed, after an untimed warm-up chunk. */
static int measure(struct bench *b, struct bench_case *c, int round, long packets)
{
	struct bench_seg *s = c->size >= 0 ? &b->seg[c->size] : NULL;
	const struct bpf_program *target = NULL;
	__u64 before[SEG_REASON_MAX], after[SEG_REASON_MAX];
	struct bench_run r = {
		.prog_fd = bpf_program__fd(b->fl->progs.bench_drive),
		.pkt = b->pkt[c->v6][c->kind == BK_EST || c->kind == BK_CLASSIFY],
		.len = b->pkt_len[c->v6],
		.rb = s ? s->rb : b->floor_rb,
	};
	__u32 set = s ? (c->kind == BK_DENY ? bench_set_denied(c->v6) :
					      bench_set_allowed(c->size, c->v6)) :
			bench_set_allowed(BENCH_NSIZES - 1, c->v6);
	int err = 0;

	switch (c->kind) {
	case BK_EMPTY_DIRECT:
		r.prog_fd = bpf_program__fd(b->fl->progs.floor_empty);
		break;
	case BK_EMPTY:
		target = b->fl->progs.floor_empty;
		break;
	case BK_CLASSIFY: /* lookups that hit: flows put there by the stateful floor */
		err = warm_flows(b, c, set, b->fl->progs.floor_stateful, &r);
		if (!err)
			ring_buffer__consume(b->floor_rb);
		target = b->fl->progs.floor_classify;
		break;
	case BK_STATEFUL:
		target = b->fl->progs.floor_stateful;
		break;
	case BK_EST:
		err = set_evt_rate(s, 0);
		if (!err)
			err = warm_flows(b, c, set, s->skel->progs.seg_tc_from_pod, &r);
		if (!err)
			ring_buffer__consume(s->rb);
		target = s->skel->progs.seg_tc_from_pod;
		break;
	case BK_NEW:
	case BK_DENY:
		err = set_evt_rate(s, c->kind == BK_DENY ? b->o.deny_rate : 0);
		target = s->skel->progs.seg_tc_from_pod;
		break;
	default:
		break;
	}
	if (err)
		return err;
	if (target) {
		err = set_target(b, target);
		set_driver(b, c, set,
			   c->kind == BK_NEW || c->kind == BK_DENY || c->kind == BK_STATEFUL);
	}
	/* untimed warm-up chunk (new flows stay new: fresh mode never repeats) */
	if (!err)
		err = run_packets(b, &r, b->o.chunk < packets ? b->o.chunk : packets);
	if (!err && s)
		err = read_reasons(b, s, before);
	if (!err)
		err = run_packets(b, &r, packets);
	if (!err && s)
		err = read_reasons(b, s, after);
	if (err)
		return err;

	record(c, round, packets, &r, s ? after : NULL, before);
	return 0;
}

static int add_case(struct bench *b, enum bench_kind k, int v6, int hot, int size)
{
	struct bench_case *c = &b->cases[b->ncases++];

	c->kind = k;
	c->v6 = v6;
	c->hot = hot;
	c->size = size;
	c->reason_ok = -1;
	return 0;
}

static int make_cases(struct bench *b)
{
	b->cases = calloc(3 + 2 * 2 * 2 + 3 * 2 * 2 * BENCH_NSIZES, sizeof(*b->cases));
	if (!b->cases)
		return log_err(-ENOMEM, "cases");
	add_case(b, BK_EMPTY_DIRECT, 0, 1, -1);
	add_case(b, BK_EMPTY, 0, 1, -1);
	add_case(b, BK_EMPTY, 0, 0, -1);
	for (int v6 = 0; v6 < 2; v6++) {
		for (int hot = 1; hot >= (b->o.hot_only ? 1 : 0); hot--) {
			add_case(b, BK_CLASSIFY, v6, hot, -1);
			add_case(b, BK_STATEFUL, v6, hot, -1);
			for (enum bench_kind k = BK_EST; k <= BK_DENY; k++)
				for (int sz = 0;
				     sz < BENCH_NSIZES && (!b->o.only || b->o.only & 1u << k); sz++)
					add_case(b, k, v6, hot, sz);
		}
	}
	return 0;
}

static void shuffle(int *order, int n, __u64 *rng)
{
	for (int i = n - 1; i > 0; i--) {
		int j = bench_rand(rng) % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
}

/* Each round runs every case's packets in slices: all cases once per
 * slice, in a new shuffled order each slice, so every case of a round is
 * spread over the whole round and a case and the floor it is compared with
 * see the same load (report: per-round ratios). */
static int run_rounds(struct bench *b)
{
	int order[b->ncases];
	__u64 rng = b->o.seed ^ 0x9e3779b97f4a7c15ull;
	long slice = b->o.repeat / b->o.slices;

	for (int i = 0; i < b->ncases; i++)
		order[i] = i;
	for (int round = 0; round < b->o.rounds; round++) {
		log_info("round %d/%d: %d cases x %ld packets in %d slices", round + 1, b->o.rounds,
			 b->ncases, b->o.repeat, b->o.slices);
		for (int sl = 0; sl < b->o.slices; sl++) {
			long n = sl == b->o.slices - 1 ? b->o.repeat - sl * slice : slice;

			shuffle(order, b->ncases, &rng);
			for (int i = 0; i < b->ncases; i++) {
				int err = measure(b, &b->cases[order[i]], round, n);

				if (err)
					return err;
			}
		}
		for (int i = 0; i < b->ncases; i++)
			b->cases[i].ns[round] /= b->cases[i].pk[round];
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct bench b = {};
	int err;

	log_init(argv[0], LOG_LVL_INFO);
	log_hook_libbpf();
	err = parse_opts(argc, argv, &b.o);
	if (err)
		return err > 0 ? 0 : 2;
	if (read_machine(&b.m))
		return 1;
	b.ncpus = libbpf_num_possible_cpus();
	b.ifkey = if_nametoindex("lo");
	if (b.ncpus <= 0 || !b.ifkey) {
		log_error("cannot count CPUs or find the loopback device");
		return 1;
	}
	for (int v6 = 0; v6 < 2; v6++) {
		b.pkt_len[v6] = bench_build_pkt(b.pkt[v6][0], v6, false);
		bench_build_pkt(b.pkt[v6][1], v6, true);
	}
	err = load_all(&b);
	if (!err)
		err = make_cases(&b);
	if (!err)
		err = run_rounds(&b);
	if (!err) {
		bench_stats(&b);
		bench_report(&b);
	}
	unload_all(&b);
	free(b.cases);
	return err ? 1 : 0;
}
