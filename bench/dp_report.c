// SPDX-License-Identifier: GPL-2.0-only
/* bench/datapath report: statistics over rounds, the markdown table with
 * ratios to the floors and to the 10-entry case, and PASS/MISS per target. */
#include "datapath.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define TARGET_SIZE 1.15 /* 100 000 entries vs 10 */
#define TARGET_EST 1.5 /* established vs minimal classifier */
#define TARGET_NEW 1.2 /* new allowed flow vs minimal stateful step */
#define CHECK_MIN 0.99 /* share of packets with the expected reason */

const char *bench_kind_name(enum bench_kind k)
{
	static const char *const names[BK_MAX] = {
		[BK_EMPTY_DIRECT] = "floor: empty program",
		[BK_EMPTY] = "driver + empty (calibration)",
		[BK_CLASSIFY] = "floor: minimal classifier",
		[BK_STATEFUL] = "floor: minimal stateful step",
		[BK_EST] = "established",
		[BK_NEW] = "new allowed flow",
		[BK_DENY] = "denied flow",
	};

	return names[k];
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sorts s[0..n-1] and returns its median. */
static double median(double *s, int n)
{
	qsort(s, n, sizeof(s[0]), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void case_stats(struct bench_case *c)
{
	double s[BENCH_MAX_ROUNDS];

	for (int i = 0; i < c->n; i++)
		s[i] = c->ns[i];
	c->med = median(s, c->n);
	c->min = s[0];
	c->max = s[c->n - 1];
}

/* c against base: the median over rounds of the ratio within each round
 * (both ran interleaved in it, slice by slice), so load that comes and goes
 * between rounds cancels; 0 when there is nothing to compare. */
static double paired(const struct bench_case *c, const struct bench_case *base)
{
	double q[BENCH_MAX_ROUNDS];
	int n = 0;

	for (int r = 0; r < c->n && r < base->n; r++)
		if (base->ns[r] > 0)
			q[n++] = c->ns[r] / base->ns[r];
	return n ? median(q, n) : 0;
}

static const struct bench_case *find(const struct bench *b, enum bench_kind k, int v6, int hot,
				     int size)
{
	for (int i = 0; i < b->ncases; i++) {
		const struct bench_case *c = &b->cases[i];

		if (c->kind == k && (k == BK_EMPTY_DIRECT || (k == BK_EMPTY && c->hot == hot) ||
				     (c->v6 == v6 && c->hot == hot && c->size == size)))
			return c;
	}
	return NULL;
}

/* Driven rows lose the driver's own cost: (driver -> empty) - (empty),
 * from the minima: both are a few ns, where one preemption in a round
 * would move a median more than the quantity itself. */
void bench_stats(struct bench *b)
{
	for (int i = 0; i < b->ncases; i++)
		case_stats(&b->cases[i]);
	for (int hot = 0; hot < 2; hot++) {
		b->driver_ns[hot] = find(b, BK_EMPTY, 0, hot, -1)->min -
				    find(b, BK_EMPTY_DIRECT, 0, 1, -1)->min;
		if (b->driver_ns[hot] < 0)
			b->driver_ns[hot] = 0;
	}
	for (int i = 0; i < b->ncases; i++) {
		struct bench_case *c = &b->cases[i];

		if (c->kind == BK_EMPTY_DIRECT)
			continue;
		for (int r = 0; r < c->n; r++)
			c->ns[r] -= b->driver_ns[c->hot];
		case_stats(c);
	}
}

static bool case_suspect(const struct bench_case *c)
{
	return c->retval_bad || (c->size >= 0 && c->reason_ok < CHECK_MIN) ||
	       ((c->kind == BK_STATEFUL || c->kind == BK_NEW) && c->ev_per_pkt < CHECK_MIN);
}

static void ratio(const struct bench_case *c, const struct bench_case *base)
{
	double q = base && base != c ? paired(c, base) : 0;

	if (q > 0)
		printf(" %.2f |", q);
	else
		printf(" - |");
}

static void print_row(const struct bench *b, const struct bench_case *c)
{
	const struct bench_case *empty = find(b, BK_EMPTY_DIRECT, 0, 1, -1);
	bool floor = c->size < 0;

	printf("| %s | %s | %s | %s | %.1f | %.1f | %.1f |", bench_kind_name(c->kind),
	       c->kind <= BK_EMPTY ? "-" :
	       c->v6		   ? "v6" :
				     "v4",
	       c->kind <= BK_EMPTY ? "-" :
	       c->hot		   ? "hot" :
				     "vary",
	       floor	    ? "-" :
	       c->size == 0 ? "10" :
	       c->size == 1 ? "10 000" :
			      "100 000",
	       c->min, c->med, c->max);
	ratio(c, empty);
	ratio(c, c->kind <= BK_EMPTY ? NULL : find(b, BK_CLASSIFY, c->v6, c->hot, -1));
	ratio(c, c->kind <= BK_EMPTY ? NULL : find(b, BK_STATEFUL, c->v6, c->hot, -1));
	ratio(c, floor ? NULL : find(b, c->kind, c->v6, c->hot, 0));
	if (!floor && c->reason_ok >= 0)
		printf(" %.1f%% |", 100 * c->reason_ok);
	else
		printf(" %s |", floor ? (c->retval_bad ? "miss" : "ok") : "none counted");
	if (c->kind == BK_EMPTY_DIRECT || c->kind == BK_EMPTY || c->kind == BK_CLASSIFY)
		printf(" - |");
	else
		printf(" %.3f |", c->ev_per_pkt);
	printf("%s\n", case_suspect(c) ? " **!**" : "");
}

/* 1 when printed; 0 when a row was not run (--only). */
static int target(const char *what, const struct bench_case *c, const struct bench_case *base,
		  double limit, int *pass)
{
	double q;
	bool ok;

	if (!c || !base)
		return 0;
	q = paired(c, base);
	ok = q > 0 && q <= limit;

	printf("| %s | %s | %s | %s | %.3f | %.2f | %s%s |\n", what, c->v6 ? "v6" : "v4",
	       c->hot ? "hot" : "vary",
	       c->size == 0 ? "10" :
	       c->size == 1 ? "10 000" :
			      "100 000",
	       q, limit, ok ? "PASS" : "MISS",
	       case_suspect(c) || case_suspect(base) ? " (row !)" : "");
	*pass += ok;
	return 1;
}

static void print_targets(const struct bench *b)
{
	int pass = 0, total = 0;

	printf("\n| target | fam | keys | policy | ratio | limit | result |\n"
	       "|---|---|---|---|---|---|---|\n");
	for (enum bench_kind k = BK_EST; k <= BK_DENY; k++)
		for (int v6 = 0; v6 < 2; v6++)
			for (int hot = 1; hot >= 0; hot--)
				total += target(k == BK_EST ? "established: 100 000 vs 10 entries" :
						k == BK_NEW ? "new flow: 100 000 vs 10 entries" :
							      "denied: 100 000 vs 10 entries",
						find(b, k, v6, hot, BENCH_NSIZES - 1),
						find(b, k, v6, hot, 0), TARGET_SIZE, &pass);
	for (int v6 = 0; v6 < 2; v6++)
		for (int hot = 1; hot >= 0; hot--)
			for (int sz = 0; sz < BENCH_NSIZES; sz++)
				total += target("established vs minimal classifier",
						find(b, BK_EST, v6, hot, sz),
						find(b, BK_CLASSIFY, v6, hot, -1), TARGET_EST,
						&pass);
	for (int v6 = 0; v6 < 2; v6++)
		for (int hot = 1; hot >= 0; hot--)
			for (int sz = 0; sz < BENCH_NSIZES; sz++)
				total += target("new allowed flow vs minimal stateful step",
						find(b, BK_NEW, v6, hot, sz),
						find(b, BK_STATEFUL, v6, hot, -1), TARGET_NEW,
						&pass);
	printf("\ntargets: %d PASS, %d MISS (a miss does not fail the run)\n", pass, total - pass);
}

void bench_report(const struct bench *b)
{
	const struct bench_machine *m = &b->m;
	char when[64];
	time_t now = time(NULL);

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", gmtime(&now));
	printf("## bench/datapath, %s\n\n", when);
	printf("- machine: %ld CPUs online, %s, kernel %s\n", m->nproc, m->cpu, m->kernel);
	printf("- JIT: %s (net.core.bpf_jit_enable=%d; programs %s)\n",
	       m->jit_enable > 0  ? "on" :
	       m->jit_enable == 0 ? "OFF" :
				    "unknown",
	       m->jit_enable, m->jited ? "JIT-compiled" : "NOT JIT-compiled");
	printf("- bpffs: %s (not needed: nothing is pinned)\n",
	       m->bpffs ? "mounted" : "not mounted");
	printf("- %ld packets per case and round (BPF_PROG_TEST_RUN calls of %d repetitions, "
	       "ring buffers drained between calls), run as %d slices: every case once per "
	       "slice, shuffled; %d rounds, min/median/max over rounds, ns per packet; "
	       "ratios (x columns, targets) are the median over rounds of the ratio within "
	       "the round\n",
	       b->o.repeat, b->o.chunk, b->o.slices, b->o.rounds);
	printf("- tables: ipcache %u entries (9/10 exact hash, 1/10 LPM, half v4 half v6); "
	       "policy %u / %u / %u entries, %u per rule id; 'vary' = %u distinct "
	       "packets per set, 'hot' = one\n",
	       b->o.ipcache, b->o.sizes[0], b->o.sizes[1], b->o.sizes[2], b->o.entries_per_rule,
	       b->o.nvar);
	printf("- driver + tail call overhead %.1f ns hot, %.1f ns vary (min of driver+empty "
	       "minus min of empty), subtracted from every row but "
	       "the empty program; denied rows: evt_rate %u/s; new-flow rows: evt_rate "
	       "unlimited (one event per flow, like the stateful floor)\n\n",
	       b->driver_ns[1], b->driver_ns[0], b->o.deny_rate);
	printf("| row | fam | keys | policy | min | median | max | x empty | x classify "
	       "| x stateful | x 10-entry | reason ok | ev/pkt |\n"
	       "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	for (enum bench_kind k = BK_EMPTY_DIRECT; k < BK_MAX; k++) {
		if (k == BK_EMPTY)
			continue;
		for (int v6 = 0; v6 < 2; v6++)
			for (int hot = 1; hot >= 0; hot--)
				for (int sz = -1; sz < BENCH_NSIZES; sz++) {
					const struct bench_case *c = find(b, k, v6, hot, sz);

					if (c && c->size == sz && (k > BK_EMPTY || (!v6 && hot)))
						print_row(b, c);
				}
	}
	print_targets(b);
	printf("rows marked **!** did not measure what they claim (wrong verdict, "
	       "reason below %.0f%%, or missing events): see bench/README.md\n",
	       100 * CHECK_MIN);
}
