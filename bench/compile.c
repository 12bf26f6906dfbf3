// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench/compile: the policy compiler and lib/apply at cluster scale.
 *
 * Generates a cluster in memory (default 1 000 pods in 50 namespaces and
 * 10 000 NetworkPolicies: pod selectors, namespace selectors, ipBlocks,
 * ingress and egress, numbered and named ports), then measures:
 *   parse        YAML text -> objects (libfyaml)
 *   compile      objects -> identities, ipcache, endpoints, policy entries
 *   recompile    the same again, numbering carried over (nothing changed)
 *   relabel      one pod's labels change: the full recompile + apply, then
 *                seg_compile_update() + apply (to a private data path when
 *                root, else the plan only), the update segd does: to a
 *                label set no pod has (a new identity) and to one another
 *                pod of its namespace has (an existing identity)
 *   policy       one NetworkPolicy's port changes, in a second manifests
 *                object (segd builds one per change): seg_compile_update()
 *                takes its full path, keeping prev's pod identities and
 *                peer lists (seg_compile_opts.reuse), + apply
 * with peak RSS and the allocations made by seg's own code (malloc, calloc
 * and realloc calls wrapped at link time; libfyaml's are not counted).
 * Target: relabel (recompile + apply) well under 10 ms.
 *
 *   ./build/bench/compile [--pods N] [--policies N] [--namespaces N] [--rounds N]
 */
#include "apply/apply.h"
#include "apply/plan.h"
#include "dp/dp.h"
#include "log.h"
#include "policy/policy.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---- allocation counting (-Wl,--wrap=...) ------------------------------------ */

static unsigned long long n_alloc;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t sz);
void *__real_realloc(void *p, size_t n);

void *__wrap_malloc(size_t n)
{
	n_alloc++;
	return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t sz)
{
	n_alloc++;
	return __real_calloc(n, sz);
}

void *__wrap_realloc(void *p, size_t n)
{
	n_alloc++;
	return __real_realloc(p, n);
}

/* ---- measuring -------------------------------------------------------------------- */

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static long peak_rss_mib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss / 1024;
}

struct row {
	const char *what;
	double ms;
	unsigned long long allocs;
	long rss_mib;
	char note[160];
};

static void row_print(const struct row *r)
{
	printf("| %-34s | %10.2f | %12llu | %8ld | %s |\n", r->what, r->ms, r->allocs, r->rss_mib,
	       r->note);
}

/* ---- the generated cluster ----------------------------------------------------------- */

struct gen {
	unsigned int pods, pols, nss;
	char *buf;
	size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void put(struct gen *g, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(g->buf + g->len, g->cap - g->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < g->cap - g->len)
			break;
		g->cap = g->cap ? g->cap * 2 : 1 << 20;
		g->buf = realloc(g->buf, g->cap);
		if (!g->buf) {
			fprintf(stderr, "out of memory\n");
			exit(1);
		}
	}
	g->len += (size_t)n;
}

/* Namespace i: labels team=t<i%5>. Pod j of a namespace: app=a<j%10>,
 * tier=<front|back|db>, 10.<i>.<j/250>.<j%250+1>, port http 8080/TCP and
 * dns 53/UDP. Policy k, in namespace k%nss, selects app=a<k%10> and allows
 * ingress from app=a<(k+1)%10> on 8080 (or by name every 2nd), every 4th
 * also from namespaces team=t<k%5> on a port range, every 10th from an
 * ipBlock with an except; every 3rd has egress to tier=db on 53/UDP. */
static void gen_cluster(struct gen *g)
{
	static const char *const tiers[] = { "front", "back", "db" };
	unsigned int ppn = g->pods / g->nss;

	for (unsigned int i = 0; i < g->nss; i++)
		put(g,
		    "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ns%02u, labels: {team: t%u}}\n",
		    i, i % 5);
	for (unsigned int p = 0; p < g->pods; p++) {
		unsigned int i = p % g->nss, j = p / g->nss;

		put(g,
		    "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p%04u, namespace: ns%02u, labels: {app: a%u, tier: %s}}\n"
		    "spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}, {name: dns, containerPort: 53, protocol: UDP}]}]}\n"
		    "status: {podIP: 10.%u.%u.%u}\n",
		    j, i, j % 10, tiers[j % 3], i, j / 250, j % 250 + 1);
	}
	(void)ppn;
	for (unsigned int k = 0; k < g->pols; k++) {
		unsigned int ns = k % g->nss;

		put(g,
		    "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: pol%05u, namespace: ns%02u}\n"
		    "spec:\n  podSelector: {matchLabels: {app: a%u}}\n  ingress:\n"
		    "  - from: [{podSelector: {matchLabels: {app: a%u}}}]\n    ports: [{port: %s}]\n",
		    k, ns, k % 10, (k + 1) % 10, k % 2 ? "8080" : "http");
		if (k % 4 == 0)
			put(g,
			    "  - from: [{namespaceSelector: {matchLabels: {team: t%u}}}]\n"
			    "    ports: [{port: 9000, endPort: %u}]\n",
			    k % 5, 9000 + k % 100);
		if (k % 10 == 0)
			put(g,
			    "  - from: [{ipBlock: {cidr: 172.%u.0.0/16, except: [172.%u.%u.0/24]}}]\n",
			    16 + k % 16, 16 + k % 16, k % 256);
		if (k % 3 == 0)
			put(g, "  egress:\n  - to: [{podSelector: {matchLabels: {tier: db}}}]\n"
			       "    ports: [{port: 53, protocol: UDP}]\n");
	}
}

/* ---- the runs ---------------------------------------------------------------------------- */

static __u32 ifkey_of(const struct seg_pod *pod, void *ctx)
{
	const struct seg_manifests *m = ctx;

	return 100 + (__u32)(pod - m->pods);
}

static int compile(const struct seg_manifests *m, const struct seg_compiled *prev,
		   struct seg_compiled **out)
{
	struct seg_compile_opts o = { .prev = prev ? prev->numbering : NULL };
	struct seg_diag d = {};
	int err = seg_compile(m, &o, out, &d);

	if (err)
		fprintf(stderr, "compile: %s\n", d.msg);
	return err;
}

static int set_label(struct seg_pod *p, const char *key, const char *val)
{
	for (size_t i = 0; i < p->labels.n; i++) {
		char *v;

		if (strcmp(p->labels.v[i].key, key))
			continue;
		v = strdup(val);
		if (!v)
			return -ENOMEM;
		free(p->labels.v[i].val);
		p->labels.v[i].val = v;
		return 0;
	}
	return -ENOENT;
}

/* The relabelled pod: the middle one. fresh: its app label takes a value
 * no pod has (a new identity); else its app and tier labels become those
 * of the next pod of its namespace (an identity that exists). Labels are
 * sorted by key; only values change. */
static int relabel(struct seg_manifests *m, unsigned int round, bool fresh)
{
	struct seg_pod *p = &m->pods[m->npods / 2];
	const struct seg_pod *q = NULL;
	char v[32];

	if (fresh) {
		snprintf(v, sizeof(v), "fresh%u", round);
		return set_label(p, "app", v);
	}
	for (size_t i = m->npods / 2 + 1 + round; i < m->npods && !q; i++) {
		if (!strcmp(m->pods[i].ns, p->ns))
			q = &m->pods[i];
	}
	if (!q)
		return -ENOENT;
	return set_label(p, "app", seg_labels_get(&q->labels, "app")) ?:
		       set_label(p, "tier", seg_labels_get(&q->labels, "tier"));
}

struct bench {
	struct seg_manifests *m;
	struct seg_compiled *c;
	struct seg_dp *dp;
	struct seg_apply *a;
	struct ap_state mirror; /* without root: plans only */
	__u32 next_id;
	__u32 *idmap;
	size_t nidmap;
	unsigned long long serial;
};

/* plan (and apply when a data path is open) c; ms and a note. */
static int apply_step(struct bench *b, struct seg_compiled *c, struct row *r)
{
	struct seg_apply_opts o = { .pod_ifkey = ifkey_of, .ctx = b->m };
	struct seg_apply_stats st;
	struct ap_plan p;
	int err;

	struct seg_compiled_delta d;

	if (b->a) {
		err = seg_apply(b->a, c, &o, &st);
		if (!err)
			snprintf(
				r->note, sizeof(r->note),
				"apply%s: %u sets new, %u gone; %u policy writes, %u deletes; %u endpoint, %u ipcache writes",
				st.incremental ? " (delta)" : "", st.policies_added,
				st.policies_removed, st.policy_writes, st.policy_deletes,
				st.endpoint_writes, st.ipcache_writes);
		return err;
	}
	seg_compiled_delta(c, &d);
	if (d.base && d.base == b->serial)
		err = ap_plan_delta(&b->mirror, b->next_id, b->idmap, b->nidmap, c, &o, &p);
	else
		err = ap_plan_build(&b->mirror, b->next_id, c, &o, 0, &p);
	if (err)
		return err;
	snprintf(
		r->note, sizeof(r->note),
		"plan only (not root)%s: %u sets new; %zu policy writes, %zu deletes; %zu endpoint, %zu ipcache writes",
		d.base ? " (delta)" : "", p.sets_added, p.npol_add, p.npol_del, p.nep_set,
		p.nipc_set + p.nlpm_set);
	ap_state_free(&b->mirror);
	b->mirror = p.want;
	memset(&p.want, 0, sizeof(p.want));
	b->next_id = p.next_id;
	free(b->idmap);
	b->idmap = p.idmap;
	b->nidmap = p.nidmap;
	b->serial = d.serial;
	p.idmap = NULL;
	ap_plan_free(&p);
	return 0;
}

/* One relabel (already made in b->m): compile (update or full) + apply,
 * with a row for the whole and one for the apply. */
static int relabel_step(struct bench *b, const char *what, bool update, struct row *r)
{
	const struct seg_pod *p = &b->m->pods[b->m->npods / 2];
	struct seg_compile_opts o = { .prev = b->c->numbering };
	struct row ra = { .what = "  of which: apply/plan the change" };
	char name[128];
	const char *names[] = { name };
	struct seg_change chg = { .pods = names, .npods = 1 };
	struct seg_compiled *c2 = NULL;
	struct seg_diag d = {};
	unsigned long long ac;
	double t, tc;
	int err;

	snprintf(name, sizeof(name), "%s/%s", p->ns, p->name);
	*r = (struct row){ .what = what };
	n_alloc = 0;
	t = now_ms();
	err = update ? seg_compile_update(b->c, b->m, &chg, &o, &c2, &d) :
		       seg_compile(b->m, &o, &c2, &d);
	if (err) {
		fprintf(stderr, "compile: %s\n", d.msg);
		seg_compiled_free(c2);
		return err;
	}
	tc = now_ms();
	ac = n_alloc;
	err = apply_step(b, c2, &ra);
	if (err) {
		seg_compiled_free(c2);
		return err;
	}
	r->ms = now_ms() - t;
	ra.ms = now_ms() - tc;
	r->allocs = n_alloc;
	ra.allocs = n_alloc - ac;
	r->rss_mib = ra.rss_mib = peak_rss_mib();
	if (update) {
		struct seg_compiled_delta dl;

		seg_compiled_delta(c2, &dl);
		snprintf(
			r->note, sizeof(r->note),
			"%s (target < 10 ms); compile %.2f ms%s: %zu identities new, %zu gone, %zu entries added, %zu removed, %zu sets new",
			r->ms < 10 ? "PASS" : "MISS", tc - t,
			seg_compiled_updated(c2) ? "" : " (full)", dl.nnew_ids, dl.ndead_ids,
			dl.nadd, dl.ndel, dl.nfresh);
	} else {
		snprintf(r->note, sizeof(r->note), "%s (target < 10 ms); compile %.2f ms",
			 r->ms < 10 ? "PASS" : "MISS", tc - t);
	}
	row_print(r);
	row_print(&ra);
	seg_compiled_free(b->c);
	b->c = c2;
	return 0;
}

/* The first numbered port of policy k (round-robin over the policies that
 * have one) moves by one: another rule, the same identity keys. */
static int change_policy(struct seg_manifests *m, unsigned int round)
{
	for (size_t n = 0; n < m->npols; n++) {
		struct seg_netpol *np = &m->pols[(round * 7919 + n) % m->npols];

		for (int dir = 0; dir < SEG_DIR_MAX; dir++)
			for (size_t i = 0; i < np->nrules[dir]; i++)
				for (size_t j = 0; j < np->rules[dir][i].nports; j++) {
					struct seg_port *pt = &np->rules[dir][i].ports[j];

					if (!pt->has_port || pt->name || pt->end_port != pt->port)
						continue;
					pt->port = pt->end_port = (__u16)(pt->port + 1 + round % 2);
					return 0;
				}
	}
	return -ENOENT;
}

/* A policy changed in a fresh manifests object (parsed from the same text,
 * untimed): seg_compile_update() from the previous compile + apply. */
static int policy_step(struct bench *b, const struct gen *g, unsigned int round)
{
	struct seg_compile_opts o = { .prev = b->c->numbering };
	struct row r = { .what = "policy change: update (full, reuse) + apply" };
	struct row ra = { .what = "  of which: apply/plan the change" };
	struct seg_manifests *m = seg_manifests_new(), *old;
	struct seg_compiled *c2 = NULL;
	struct seg_diag d = {};
	double t, tc;
	int err;

	if (!m)
		return -ENOMEM;
	err = seg_manifests_load_buf(m, "generated.yaml", g->buf, g->len, &d);
	if (!err)
		err = change_policy(m, round);
	if (err) {
		fprintf(stderr, "policy change: %s\n", d.msg[0] ? d.msg : strerror(-err));
		seg_manifests_free(m);
		return err;
	}
	n_alloc = 0;
	t = now_ms();
	err = seg_compile_update(b->c, m, NULL, &o, &c2, &d);
	if (err) {
		fprintf(stderr, "compile: %s\n", d.msg);
		seg_manifests_free(m);
		return err;
	}
	tc = now_ms();
	old = b->m;
	b->m = m; /* the apply's pods (ifkey_of) */
	err = apply_step(b, c2, &ra);
	if (err) {
		b->m = old;
		seg_compiled_free(c2);
		seg_manifests_free(m);
		return err;
	}
	r.ms = now_ms() - t;
	ra.ms = now_ms() - tc;
	r.allocs = n_alloc;
	r.rss_mib = ra.rss_mib = peak_rss_mib();
	snprintf(r.note, sizeof(r.note), "%s (target < 10 ms); compile %.2f ms, identities %s",
		 r.ms < 10 ? "PASS" : "MISS", tc - t,
		 seg_compiled_ids_reused(c2) ? "reused" : "rebuilt");
	row_print(&r);
	row_print(&ra);
	seg_compiled_free(b->c);
	seg_manifests_free(old);
	b->c = c2;
	return 0;
}

/* ---- segd's parse cache: one file per policy ------------------------------------
 * segd keeps each source file (or applied file) parsed on its own and puts
 * the parts together with seg_manifests_append(); a change parses again
 * only the file that changed, and the policies of the others are the same
 * objects as in the previous compile. Here: the namespaces and pods in one
 * part, each NetworkPolicy document in a part of its own. */
struct parts {
	struct seg_manifests **v;
	char **text; /* each part's YAML */
	size_t n;
	size_t first_pol; /* index of the first policy part */
};

static void parts_free(struct parts *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		seg_manifests_free(ps->v[i]);
		free(ps->text[i]);
	}
	free(ps->v);
	free(ps->text);
	memset(ps, 0, sizeof(*ps));
}

static struct seg_manifests *part_load(const char *text, size_t i)
{
	struct seg_manifests *m = seg_manifests_new();
	struct seg_diag d = {};
	char name[32];

	snprintf(name, sizeof(name), "part%05zu.yaml", i);
	if (m && seg_manifests_load_buf(m, name, text, strlen(text), &d)) {
		fprintf(stderr, "%s: %s\n", name, d.msg);
		seg_manifests_free(m);
		return NULL;
	}
	return m;
}

static int parts_load(struct parts *ps, const struct gen *g)
{
	const char *pol = strstr(g->buf, "---\napiVersion: networking.k8s.io/v1");
	size_t cap = 0;

	if (!pol)
		return -ENOENT;
	for (const char *p = g->buf; p && *p;) {
		const char *end = p == g->buf ? pol : strstr(p + 4, "---\n");
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (ps->n == cap) {
			cap = cap ? cap * 2 : 1024;
			ps->v = realloc(ps->v, cap * sizeof(*ps->v));
			ps->text = realloc(ps->text, cap * sizeof(*ps->text));
			if (!ps->v || !ps->text)
				return -ENOMEM;
		}
		ps->text[ps->n] = strndup(p, len);
		if (!ps->text[ps->n])
			return -ENOMEM;
		ps->v[ps->n] = part_load(ps->text[ps->n], ps->n);
		if (!ps->v[ps->n]) {
			free(ps->text[ps->n]);
			return -EINVAL;
		}
		ps->n++;
		p = end;
	}
	ps->first_pol = 1;
	return 0;
}

static struct seg_manifests *parts_merge(const struct parts *ps)
{
	struct seg_manifests *all = seg_manifests_new();
	struct seg_diag d = {};

	if (all && seg_manifests_append(all, ps->v, ps->n, &d)) {
		fprintf(stderr, "merge: %s\n", d.msg);
		seg_manifests_free(all);
		return NULL;
	}
	return all;
}

/* Policy part k's text with its numbered port (8080, every 2nd policy)
 * moved to 8080 + 1 + round % 2. */
static char *part_edit(const struct parts *ps, size_t k, unsigned int round)
{
	const char *t = ps->text[k], *at = strstr(t, "port: 8080}");
	char *out;

	if (!at)
		return NULL;
	out = strdup(t);
	if (out)
		out[at - t + 9] = (char)('1' + round % 2);
	return out;
}

/* The chain of compiles over the parts: the first (untimed, full, applied
 * whole), then one policy file edited per round: parse it, merge, update
 * (seg_compile_update), apply. */
static int parts_run(struct bench *b, const struct gen *g, unsigned int rounds)
{
	struct parts ps = {};
	struct seg_manifests *all = NULL;
	struct seg_compiled *c = NULL;
	struct row r = { .what = "policy files: load 1 + N parts, merge, compile, apply" };
	double t;
	int err;

	t = now_ms();
	err = parts_load(&ps, g);
	if (!err && !(all = parts_merge(&ps)))
		err = -EINVAL;
	if (!err)
		err = compile(all, b->c, &c);
	if (err) {
		seg_manifests_free(all);
		parts_free(&ps);
		return err;
	}
	seg_compiled_free(b->c);
	seg_manifests_free(b->m);
	b->m = all;
	b->c = c;
	err = apply_step(b, c, &r);
	r.ms = now_ms() - t;
	r.rss_mib = peak_rss_mib();
	snprintf(r.note, sizeof(r.note), "%zu parts (untimed set-up of the rows below)", ps.n);
	row_print(&r);
	for (unsigned int i = 0; i < rounds && !err; i++) {
		size_t k = ps.first_pol + (i * 7919 + 1) % (ps.n - ps.first_pol);
		struct row rr = {
			.what = "policy change, 1 file of N: parse + merge + update + apply"
		};
		struct row ra = { .what = "  of which: apply/plan the change" };
		struct seg_compile_opts o = { .prev = b->c->numbering };
		struct seg_manifests *part = NULL, *old_part, *m2 = NULL, *old;
		struct seg_compiled *c2 = NULL;
		struct seg_diag d = {};
		char *text = NULL;
		double tp, tc;

		while (!(text = part_edit(&ps, k, i)))
			k = ps.first_pol + (k + 1 - ps.first_pol) % (ps.n - ps.first_pol);
		n_alloc = 0;
		t = now_ms();
		part = part_load(text, k);
		if (!part) {
			free(text);
			err = -EINVAL;
			break;
		}
		old_part = ps.v[k];
		ps.v[k] = part;
		m2 = parts_merge(&ps);
		tp = now_ms();
		err = m2 ? seg_compile_update(b->c, m2, NULL, &o, &c2, &d) : -EINVAL;
		tc = now_ms();
		if (err) {
			fprintf(stderr, "policy file change: %s\n", d.msg);
			ps.v[k] = old_part;
			seg_manifests_free(part);
			seg_manifests_free(m2);
			free(text);
			break;
		}
		old = b->m;
		b->m = m2;
		err = apply_step(b, c2, &ra);
		rr.ms = now_ms() - t;
		ra.ms = now_ms() - tc;
		rr.allocs = n_alloc;
		rr.rss_mib = ra.rss_mib = peak_rss_mib();
		snprintf(
			rr.note, sizeof(rr.note),
			"%s (target < 10 ms); parse + merge %.2f ms, compile %.2f ms (%s, %zu sets copied)",
			rr.ms < 10 ? "PASS" : "MISS", tp - t, tc - tp,
			seg_compiled_updated(c2)    ? "update" :
			seg_compiled_ids_reused(c2) ? "full, identities reused" :
						      "full",
			seg_compiled_sets_copied(c2));
		row_print(&rr);
		row_print(&ra);
		seg_compiled_free(b->c);
		b->c = c2;
		seg_manifests_free(old);
		seg_manifests_free(old_part);
		free(ps.text[k]);
		ps.text[k] = text;
	}
	parts_free(&ps);
	return err;
}

static int run(struct gen *g, unsigned int rounds)
{
	struct bench b = {};
	struct seg_diag d = {};
	struct seg_compiled *c2 = NULL;
	struct row r = {};
	double t;
	int err;

	printf("| step | ms | allocations | peak RSS MiB | notes |\n|---|---:|---:|---:|---|\n");
	b.m = seg_manifests_new();
	if (!b.m)
		return -ENOMEM;
	r = (struct row){ .what = "parse (libfyaml)" };
	n_alloc = 0;
	t = now_ms();
	err = seg_manifests_load_buf(b.m, "generated.yaml", g->buf, g->len, &d);
	if (err) {
		fprintf(stderr, "load: %s\n", d.msg);
		goto out;
	}
	r.ms = now_ms() - t;
	r.allocs = n_alloc;
	r.rss_mib = peak_rss_mib();
	snprintf(r.note, sizeof(r.note), "%zu ns, %zu pods, %zu policies, %.1f MiB of YAML",
		 b.m->nnss, b.m->npods, b.m->npols, (double)g->len / (1 << 20));
	row_print(&r);

	r = (struct row){ .what = "compile (first)" };
	n_alloc = 0;
	t = now_ms();
	err = compile(b.m, NULL, &b.c);
	if (err)
		goto out;
	r.ms = now_ms() - t;
	r.allocs = n_alloc;
	r.rss_mib = peak_rss_mib();
	snprintf(
		r.note, sizeof(r.note),
		"%zu identities, %zu ipcache + %zu LPM, %zu endpoints, %zu policy entries, %zu rules",
		b.c->nids, b.c->nipc, b.c->nlpm, b.c->neps, b.c->npol, b.c->nrules);
	row_print(&r);

	if (geteuid() == 0) {
		struct seg_dp_opts o = { .max_ct = 1024 };

		err = seg_dp_open(&b.dp, &o);
		if (!err)
			err = seg_apply_new(b.dp, &b.a);
		if (err)
			goto out;
	}
	r = (struct row){ .what = b.a ? "apply (first, private maps)" : "plan (first)" };
	n_alloc = 0;
	t = now_ms();
	err = apply_step(&b, b.c, &r);
	if (err)
		goto out;
	r.ms = now_ms() - t;
	r.allocs = n_alloc;
	r.rss_mib = peak_rss_mib();
	row_print(&r);

	r = (struct row){ .what = "recompile, nothing changed" };
	n_alloc = 0;
	t = now_ms();
	err = compile(b.m, b.c, &c2);
	if (err)
		goto out;
	r.ms = now_ms() - t;
	r.allocs = n_alloc;
	r.rss_mib = peak_rss_mib();
	snprintf(r.note, sizeof(r.note), "the whole cluster is compiled again");
	row_print(&r);
	seg_compiled_free(b.c);
	b.c = c2;
	c2 = NULL;

	/* policy changes, each in a fresh parse of the same text (so before
	 * the relabels, which change b->m's pods in place) */
	for (unsigned int i = 0; i < rounds && !err; i++)
		err = policy_step(&b, g, i);
	if (err)
		goto out;
	/* the old way, for comparison: the whole cluster recompiled */
	err = relabel(b.m, 0, true);
	if (!err)
		err = relabel_step(&b, "relabel, full recompile + apply", false, &r);
	if (err)
		goto out;
	for (unsigned int i = 0; i < rounds * 2; i++) {
		bool fresh = i % 2 == 0;

		err = relabel(b.m, i + 1, fresh);
		if (!err)
			err = relabel_step(&b,
					   fresh ? "relabel to a new label set: update + apply" :
						   "relabel to an existing set: update + apply",
					   true, &r);
		if (err)
			goto out;
	}
	/* a policy file edited among 10 000, as segd's parse cache has them */
	err = parts_run(&b, g, rounds);
out:
	seg_compiled_free(c2);
	seg_apply_free(b.a);
	seg_dp_close(b.dp);
	ap_state_free(&b.mirror);
	free(b.idmap);
	seg_compiled_free(b.c);
	seg_manifests_free(b.m);
	return err;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "pods", required_argument, NULL, 'p' },
		{ "policies", required_argument, NULL, 'P' },
		{ "namespaces", required_argument, NULL, 'n' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct gen g = { .pods = 1000, .pols = 10000, .nss = 50 };
	unsigned int rounds = 5;
	int opt, err;

	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (opt) {
		case 'p':
			g.pods = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'P':
			g.pols = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			g.nss = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			rounds = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		default:
			printf("usage: %s [--pods N] [--policies N] [--namespaces N] [--rounds N]\n",
			       argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (!g.pods || !g.nss || g.nss > 99 || g.pods / g.nss > 60000) {
		fprintf(stderr, "need 1..99 namespaces and pods\n");
		return 2;
	}
	log_init("bench-compile", LOG_LVL_WARN);
	log_hook_libbpf();
	printf("# policy compiler: %u pods, %u namespaces, %u NetworkPolicies\n\n", g.pods, g.nss,
	       g.pols);
	gen_cluster(&g);
	err = run(&g, rounds);
	if (!err)
		printf("\nNotes: 'full' is seg_compile() of the whole cluster and lib/apply's content\n"
		       "plan (a changed policy set rewritten whole under a fresh id). 'update' is\n"
		       "seg_compile_update() from the previous compile and lib/apply's delta plan:\n"
		       "a new identity's entries added in place to the live sets (invisible until\n"
		       "the ipcache flip maps an address to it), a gone identity's entries deleted\n"
		       "after the flip; its cost scales with the change, not with the cluster.\n");
	free(g.buf);
	return err ? 1 : 0;
}
