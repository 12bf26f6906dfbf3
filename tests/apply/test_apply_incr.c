// SPDX-License-Identifier: GPL-2.0-only
/*
 * lib/apply's delta plan (ap_plan_delta) for seg_compile_update(): random
 * pod changes (relabels to new and to existing label sets, adds, deletes,
 * named port numbers, in new manifests and in place) on a cluster with
 * pod, namespace and ipBlock peers and named ports, some pods not attached.
 * After each:
 *   - nothing a packet can see changes before the flip: every entry
 *     written into a set an endpoint uses now names an identity no address
 *     has now; every entry deleted from a set an endpoint still uses names
 *     an identity no address has after the flip;
 *   - the state after the plan equals the compile: a full content plan
 *     from it is empty (no set to add or remove, nothing to write);
 *   - the plan scales with the change: no more entries written than the
 *     update added (+ the sets it made), none rewritten whole.
 * With --dp (root), the same through seg_apply() on a private data path;
 * a few times the plan's new entries are written and the apply "killed"
 * before the flip: a new seg_apply (mirror read back from the maps) must
 * bring the maps to the compile, and at the end a new seg_apply must find
 * nothing to write.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apply/apply.h"
#include "apply/plan.h"
#include "dp/dp.h"
#include "log.h"
#include "policy/policy.h"

#define NPODS 48

static unsigned int seed = 7;
static bool use_dp;

static unsigned int rnd(unsigned int n)
{
	seed ^= seed << 13;
	seed ^= seed >> 17;
	seed ^= seed << 5;
	return seed % n;
}

struct mpod {
	bool live;
	unsigned int ns, app, tier, http;
};

static const char *const policies =
	"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: n0, labels: {team: t0}}\n"
	"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: n1, labels: {team: t1}}\n"
	"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: n2, labels: {team: t0}, "
	"annotations: {seg.io/enforcement: audit}}\n"
	"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	"metadata: {name: web, namespace: n0}\nspec:\n  podSelector: {matchLabels: {app: a0}}\n"
	"  ingress:\n  - from: [{podSelector: {matchLabels: {app: a1}}}]\n    ports: [{port: http}]\n"
	"  - from: [{namespaceSelector: {matchLabels: {team: t0}}}]\n"
	"    ports: [{port: 9000, endPort: 9100}]\n"
	"  - from: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.0.0.16/28]}}]\n"
	"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	"metadata: {name: db, namespace: n0}\nspec:\n  podSelector: {matchLabels: {tier: db}}\n"
	"  ingress:\n  - from: [{podSelector: {}}]\n    ports: [{port: 5432}]\n"
	"  egress:\n  - ports: [{port: http}]\n"
	"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	"metadata: {name: all, namespace: n1}\nspec:\n  podSelector: {}\n"
	"  ingress:\n  - from: [{namespaceSelector: {}, podSelector: {matchExpressions: "
	"[{key: app, operator: In, values: [a1, a2]}]}}]\n"
	"  egress:\n  - to: [{podSelector: {matchLabels: {tier: db}}}]\n"
	"    ports: [{port: dns, protocol: UDP}]\n"
	"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	"metadata: {name: aud, namespace: n2}\nspec:\n  podSelector: {matchLabels: {app: a2}}\n"
	"  ingress:\n  - from: [{podSelector: {matchLabels: {app: a3}}}]\n";

static char *yaml(const struct mpod *pods)
{
	static const char *const tiers[] = { "front", "back", "db" };
	size_t cap = 1 << 16, n = 0;
	char *b = malloc(cap);

	assert_non_null(b);
	n += (size_t)snprintf(b, cap, "%s", policies);
	for (unsigned int i = 0; i < NPODS; i++) {
		if (!pods[i].live)
			continue;
		n += (size_t)snprintf(
			b + n, cap - n,
			"---\napiVersion: v1\nkind: Pod\nmetadata: {name: p%u, namespace: n%u, labels: "
			"{app: a%u, tier: %s}}\nspec: {containers: [{name: c, ports: [{name: http, "
			"containerPort: %u}, {name: dns, containerPort: 53, protocol: UDP}]}]}\n"
			"status: {podIP: 10.0.0.%u}\n",
			i, pods[i].ns, pods[i].app, tiers[pods[i].tier], pods[i].http, i + 1);
		assert_true(n < cap);
	}
	return b;
}

static struct seg_manifests *load(const struct mpod *pods)
{
	struct seg_manifests *m = seg_manifests_new();
	struct seg_diag d = {};
	char *y = yaml(pods);

	assert_non_null(m);
	if (seg_manifests_load_buf(m, "gen.yaml", y, strlen(y), &d))
		fail_msg("load: %s", d.msg);
	free(y);
	return m;
}

/* Pods p5, p15, ... are on another node: no interface here. */
static __u32 ifkey_of(const struct seg_pod *pod, void *ctx)
{
	unsigned int i = (unsigned int)strtoul(pod->name + 1, NULL, 10);

	(void)ctx;
	return i % 10 == 5 ? 0 : 100 + i;
}

static bool is_local(const struct seg_pod *pod, void *ctx)
{
	return ifkey_of(pod, ctx) != 0;
}

static const struct seg_apply_opts aopts = { .pod_ifkey = ifkey_of };
static const struct seg_compile_opts copts = { .is_local = is_local };

static int cmp_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

/* Identities a packet can get in s, sorted. */
static __u32 *live(const struct ap_state *s, size_t *n)
{
	__u32 *v = calloc(s->nipc + s->nlpm + 1, sizeof(*v));

	assert_non_null(v);
	*n = 0;
	for (size_t i = 0; i < s->nipc; i++)
		v[(*n)++] = s->ipc[i].val.identity;
	for (size_t i = 0; i < s->nlpm; i++)
		v[(*n)++] = s->lpm[i].val.identity;
	qsort(v, *n, sizeof(*v), cmp_u32);
	return v;
}

static bool has(const __u32 *v, size_t n, __u32 x)
{
	return n && bsearch(&x, v, n, sizeof(*v), cmp_u32);
}

/* Data path policy ids the endpoints of s use, sorted. */
static __u32 *used_sets(const struct ap_state *s, size_t *n)
{
	__u32 *v = calloc(2 * s->nep + 1, sizeof(*v));

	assert_non_null(v);
	*n = 0;
	for (size_t i = 0; i < s->nep; i++) {
		for (int d = 0; d < SEG_DIR_MAX; d++) {
			if (s->ep[i].ep.policy_id[d])
				v[(*n)++] = s->ep[i].ep.policy_id[d];
		}
	}
	qsort(v, *n, sizeof(*v), cmp_u32);
	return v;
}

static void check_invisible(const struct ap_state *mirror, const struct ap_plan *p,
			    unsigned int step)
{
	size_t nlo, nln, nuo, nun;
	__u32 *lo = live(mirror, &nlo), *ln = live(&p->want, &nln);
	__u32 *uo = used_sets(mirror, &nuo), *un = used_sets(&p->want, &nun);

	for (size_t i = 0; i < p->npol_add; i++) {
		const struct seg_policy_key *k = &p->pol_add[i].key;

		if (has(uo, nuo, k->policy_id) &&
		    (k->remote_id < SEG_ID_FIRST_ALLOC || has(lo, nlo, k->remote_id)))
			fail_msg("step %u: writes set %u remote %u, visible before the flip", step,
				 k->policy_id, k->remote_id);
	}
	for (size_t i = 0; i < p->npol_del; i++) {
		const struct seg_policy_key *k = &p->pol_del[i];

		if (has(un, nun, k->policy_id) &&
		    (k->remote_id < SEG_ID_FIRST_ALLOC || has(ln, nln, k->remote_id)))
			fail_msg("step %u: deletes set %u remote %u, still visible after the flip",
				 step, k->policy_id, k->remote_id);
	}
	free(lo);
	free(ln);
	free(uo);
	free(un);
}

struct run {
	struct mpod pods[NPODS];
	struct seg_manifests *m;
	struct seg_compiled *c;
	struct ap_state mirror;
	__u32 next_id, *idmap;
	size_t nidmap;
	struct seg_dp *dp;
	struct seg_apply *a;
	unsigned int in_place, delta_applies, crashes;
};

static void take(struct run *r, struct ap_plan *p)
{
	ap_state_free(&r->mirror);
	r->mirror = p->want;
	memset(&p->want, 0, sizeof(p->want));
	r->next_id = p->next_id;
	free(r->idmap);
	r->idmap = p->idmap;
	r->nidmap = p->nidmap;
	p->idmap = NULL;
	ap_plan_free(p);
}

/* One random change; returns the update. */
static struct seg_compiled *change(struct run *r, unsigned int step)
{
	struct seg_compiled *c2;
	struct seg_diag d = {};
	unsigned int i = rnd(NPODS), k = rnd(6);
	struct mpod *p = &r->pods[i];

	if (!p->live || k == 0) { /* add (or re-add) */
		p->live = true;
		p->ns = rnd(3);
		p->app = rnd(4);
		p->tier = rnd(3);
		p->http = 8080;
	} else if (k == 1) {
		p->live = false;
	} else if (k == 2) {
		p->http = p->http == 8080 ? 8081 : 8080;
	} else if (k == 3) {
		p->app = 4 + step; /* a label set nobody has */
	} else {
		/* the labels of another pod of its namespace (an identity in use) */
		for (unsigned int j = 0; j < NPODS; j++) {
			if (j != i && r->pods[j].live && r->pods[j].ns == p->ns) {
				p->app = r->pods[j].app;
				p->tier = r->pods[j].tier;
				break;
			}
		}
	}
	if (k >= 3 && rnd(2) && p->live) {
		/* in place: the same manifests object, the labels' values changed */
		static const char *const tiers[] = { "front", "back", "db" };
		char name[32], ns[8], app[16];
		const char *names[] = { name };
		struct seg_change chg = { .pods = names, .npods = 1 };
		struct seg_pod *sp;

		snprintf(ns, sizeof(ns), "n%u", p->ns);
		snprintf(name, sizeof(name), "p%u", i);
		sp = (struct seg_pod *)seg_manifests_pod(r->m, ns, name);
		if (sp) {
			snprintf(name, sizeof(name), "n%u/p%u", p->ns, i);
			snprintf(app, sizeof(app), "a%u", p->app);
			for (size_t l = 0; l < sp->labels.n; l++) {
				char **v = &sp->labels.v[l].val;

				if (!strcmp(sp->labels.v[l].key, "app")) {
					free(*v);
					*v = strdup(app);
				} else if (!strcmp(sp->labels.v[l].key, "tier")) {
					free(*v);
					*v = strdup(tiers[p->tier]);
				}
			}
			if (seg_compile_update(r->c, r->m, &chg, &copts, &c2, &d))
				fail_msg("step %u: update: %s", step, d.msg);
			r->in_place++;
			return c2;
		}
	}
	{
		struct seg_manifests *m2 = load(r->pods);

		if (seg_compile_update(r->c, m2, NULL, &copts, &c2, &d))
			fail_msg("step %u: update: %s", step, d.msg);
		/* the old manifests must outlive only the update */
		seg_compiled_free(r->c);
		r->c = NULL;
		seg_manifests_free(r->m);
		r->m = m2;
	}
	return c2;
}

static void test_delta_plans(void **state)
{
	struct run r = {};
	struct ap_plan p;
	bool crash = false;
	struct seg_diag d = {};

	(void)state;
	for (unsigned int i = 0; i < NPODS; i++) {
		r.pods[i].live = rnd(4) != 0;
		r.pods[i].ns = rnd(3);
		r.pods[i].app = rnd(4);
		r.pods[i].tier = rnd(3);
		r.pods[i].http = 8080;
	}
	r.m = load(r.pods);
	if (seg_compile(r.m, &copts, &r.c, &d))
		fail_msg("compile: %s", d.msg);
	if (use_dp) {
		struct seg_apply_stats st;

		assert_int_equal(seg_dp_open(&r.dp, NULL), 0);
		assert_int_equal(seg_apply_new(r.dp, &r.a), 0);
		assert_int_equal(seg_apply(r.a, r.c, &aopts, &st), 0);
		assert_false(st.incremental);
	}
	assert_int_equal(ap_plan_build(&r.mirror, 1, r.c, &aopts, 0, &p), 0);
	take(&r, &p);
	for (unsigned int step = 0; step < 200; step++) {
		struct seg_compiled *c2 = change(&r, step);
		struct seg_compiled_delta dl;
		struct ap_plan full;
		size_t whole = 0;

		assert_true(seg_compiled_updated(c2));
		seg_compiled_delta(c2, &dl);
		assert_int_equal(
			ap_plan_delta(&r.mirror, r.next_id, r.idmap, r.nidmap, c2, &aopts, &p), 0);
		check_invisible(&r.mirror, &p, step);
		for (size_t i = 0; i < dl.nfresh; i++) {
			for (size_t k = 0; k < c2->npol; k++)
				whole += c2->pol[k].key.policy_id == dl.fresh[i];
		}
		if (p.npol_add > dl.nadd + whole)
			fail_msg("step %u: %zu entries written for %zu added + %zu in new sets",
				 step, p.npol_add, dl.nadd, whole);
		crash |= step % 50 == 25;
		if (r.a && crash && p.npol_add) {
			/* segd killed after writing the new entries, before the
			 * flip; restarted, it reconciles from the maps */
			struct seg_apply_stats st;

			for (size_t i = 0; i < p.npol_add; i++)
				assert_int_equal(seg_dp_policy_set(r.dp, &p.pol_add[i].key,
								   &p.pol_add[i].val),
						 0);
			seg_apply_free(r.a);
			assert_int_equal(seg_apply_new(r.dp, &r.a), 0);
			assert_int_equal(seg_apply(r.a, c2, &aopts, &st), 0);
			assert_false(st.incremental);
			r.crashes++;
			crash = false;
		}
		take(&r, &p);
		/* the state reached is the compile's: nothing left to do */
		assert_int_equal(ap_plan_build(&r.mirror, r.next_id, c2, &aopts, 0, &full), 0);
		for (size_t i = 0; i < full.nep_set; i++) {
			const struct ap_ep *e = &full.ep_set[i];
			const struct ap_ep *o = NULL;

			for (size_t k = 0; k < r.mirror.nep; k++)
				if (r.mirror.ep[k].ifkey == e->ifkey)
					o = &r.mirror.ep[k];
			print_error(
				"ep %u: full id %u pol %u/%u mask %#x/%#x flags %u/%u; delta %s id %u pol %u/%u mask %#x/%#x flags %u/%u\n",
				e->ifkey, e->ep.identity, e->ep.policy_id[0], e->ep.policy_id[1],
				e->ep.port_mask[0], e->ep.port_mask[1], e->ep.flags[0],
				e->ep.flags[1], o ? "has" : "lacks", o ? o->ep.identity : 0,
				o ? o->ep.policy_id[0] : 0, o ? o->ep.policy_id[1] : 0,
				o ? o->ep.port_mask[0] : 0, o ? o->ep.port_mask[1] : 0,
				o ? o->ep.flags[0] : 0, o ? o->ep.flags[1] : 0);
		}
		if (!ap_plan_empty(&full) || full.sets_added || full.sets_removed)
			fail_msg(
				"step %u: after the delta a full plan still writes %zu policy, %zu "
				"endpoint, %zu ipcache, deletes %zu policy, %zu endpoint",
				step, full.npol_add, full.nep_set, full.nipc_set, full.npol_del,
				full.nep_del);
		ap_plan_free(&full);
		if (r.a) {
			struct seg_apply_stats st;

			assert_int_equal(seg_apply(r.a, c2, &aopts, &st), 0);
			/* right after a crash the maps already hold c2: nothing to do */
			assert_true(st.incremental || !st.flipped);
			r.delta_applies += st.incremental;
		}
		seg_compiled_free(r.c);
		r.c = c2;
	}
	if (r.a) {
		/* what the maps hold is the compile: a new apply reading them back
		 * writes nothing */
		struct seg_apply *a2;
		struct seg_apply_stats st;

		assert_int_equal(seg_apply_new(r.dp, &a2), 0);
		assert_int_equal(seg_apply(a2, r.c, &aopts, &st), 0);
		assert_false(st.flipped);
		assert_int_equal(st.policies_added, 0);
		assert_int_equal(st.policies_removed, 0);
		seg_apply_free(a2);
		seg_apply_free(r.a);
		seg_dp_close(r.dp);
	}
	print_message("200 changes, %u in place, %u applied to the maps by delta, %u crashes\n",
		      r.in_place, r.delta_applies, r.crashes);
	assert_true(!r.a || r.crashes > 0);
	assert_true(r.in_place > 10);
	ap_state_free(&r.mirror);
	free(r.idmap);
	seg_compiled_free(r.c);
	seg_manifests_free(r.m);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delta_plans),
	};

	use_dp = argc > 1 && !strcmp(argv[1], "--dp");
	if (use_dp && geteuid() != 0) {
		fprintf(stderr, "test_apply_incr --dp: needs root (private BPF maps)\n");
		return 77;
	}
	log_init("test_apply_incr", LOG_LVL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
