// SPDX-License-Identifier: GPL-2.0-only
/*
 * lib/apply's pure half: given mirror M and compiled C, the plan is ...
 * No kernel: mirrors are the previous plan's wanted state or built by hand.
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

#include "apply/plan.h"
#include "policy/policy.h"

#define NS(n) "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: " n "}\n"
#define POD(ns, n, labels, ip)                                                   \
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: " n ", namespace: " ns \
	", labels: " labels "}\nspec: {containers: [{name: c}]}\nstatus: {podIP: " ip "}\n"
/* x/a accepts 80 and 443/TCP from pods labelled role=client of x */
#define POLICY                                                                             \
	"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, " \
	"namespace: x}\nspec: {podSelector: {matchLabels: {pod: a}}, ingress: [{from: "    \
	"[{podSelector: {matchLabels: {role: client}}}], ports: [{port: 80}, {port: 443}]}]}\n"

#define BASE3(xa_labels, xb_labels, ya_labels) \
	NS("x")                                \
	NS("y")                                \
	POD("x", "a", xa_labels, "10.1.0.1")   \
	POD("x", "b", xb_labels, "10.1.0.2") POD("y", "a", ya_labels, "10.2.0.1") POLICY
#define BASE(xb_labels, ya_labels) BASE3("{pod: a}", xb_labels, ya_labels)

struct world {
	struct seg_manifests *m;
	struct seg_compiled *c;
	__u32 absent_ifkey; /* pod_ifkey returns 0 for this one */
};

/* ifkey = 10 + pod index; x/a 10, x/b 11, y/a 12 */
static __u32 ifkey_of(const struct seg_pod *pod, void *ctx)
{
	struct world *w = ctx;
	__u32 k = 10 + (__u32)(pod - w->m->pods);

	return k == w->absent_ifkey ? 0 : k;
}

static void load(struct world *w, const char *yaml, const struct seg_compiled *prev)
{
	struct seg_compile_opts o = { .prev = prev ? prev->numbering : NULL };
	struct seg_diag d = {};

	w->m = seg_manifests_new();
	assert_non_null(w->m);
	if (seg_manifests_load_buf(w->m, "t.yaml", yaml, strlen(yaml), &d))
		fail_msg("load: %s", d.msg);
	if (seg_compile(w->m, &o, &w->c, &d))
		fail_msg("compile: %s", d.msg);
}

static void unload(struct world *w)
{
	seg_compiled_free(w->c);
	seg_manifests_free(w->m);
	memset(w, 0, sizeof(*w));
}

static void plan_flags(struct world *w, const struct ap_state *mirror, __u32 next_id,
		       unsigned int flags, struct ap_plan *p)
{
	struct seg_apply_opts o = { .pod_ifkey = ifkey_of, .ctx = w };

	assert_int_equal(ap_plan_build(mirror, next_id, w->c, &o, flags, p), 0);
}

static void plan(struct world *w, const struct ap_state *mirror, __u32 next_id, struct ap_plan *p)
{
	plan_flags(w, mirror, next_id, 0, p);
}

static void state_copy(struct ap_state *dst, const struct ap_state *s)
{
	memset(dst, 0, sizeof(*dst));
	dst->ep = calloc(s->nep + 1, sizeof(*s->ep));
	dst->ipc = calloc(s->nipc + 1, sizeof(*s->ipc));
	dst->lpm = calloc(s->nlpm + 1, sizeof(*s->lpm));
	dst->pol = calloc(s->npol + 1, sizeof(*s->pol));
	assert_true(dst->ep && dst->ipc && dst->lpm && dst->pol);
	memcpy(dst->ep, s->ep, s->nep * sizeof(*s->ep));
	memcpy(dst->ipc, s->ipc, s->nipc * sizeof(*s->ipc));
	memcpy(dst->lpm, s->lpm, s->nlpm * sizeof(*s->lpm));
	memcpy(dst->pol, s->pol, s->npol * sizeof(*s->pol));
	dst->nep = s->nep;
	dst->nipc = s->nipc;
	dst->nlpm = s->nlpm;
	dst->npol = s->npol;
}

static const struct ap_ep *ep_at(const struct ap_state *s, __u32 ifkey)
{
	for (size_t i = 0; i < s->nep; i++) {
		if (s->ep[i].ifkey == ifkey)
			return &s->ep[i];
	}
	fail_msg("no endpoint at ifkey %u", ifkey);
	return NULL;
}

/* From nothing: every endpoint, ipcache entry and used set is written. */
static void test_first_apply_writes_everything(void **state)
{
	struct world w = {};
	struct ap_state empty = {};
	struct ap_plan p;

	load(&w, BASE("{pod: b, role: client}", "{pod: a}"), NULL);
	plan(&w, &empty, 0, &p);
	assert_int_equal(p.nep_set, 3);
	assert_int_equal(p.nipc_set, 3);
	assert_int_equal(p.sets_added, 1); /* x/a ingress */
	assert_int_equal(p.npol_add, w.c->npol);
	assert_int_equal(p.want.npol, w.c->npol);
	assert_int_equal(p.nep_del + p.nipc_del + p.npol_del, 0);
	for (size_t i = 0; i < p.npol_add; i++)
		assert_int_equal(p.pol_add[i].key.policy_id, 1);
	assert_int_equal(ep_at(&p.want, 10)->ep.policy_id[SEG_DIR_INGRESS], 1);
	assert_int_equal(ep_at(&p.want, 10)->ep.revision, 1);
	assert_int_equal(ep_at(&p.want, 10)->ep.ep_id, 10);
	assert_int_equal(ep_at(&p.want, 11)->ep.policy_id[SEG_DIR_INGRESS], 0);
	/* owner_ifkey: the pod's ifkey */
	for (size_t i = 0; i < p.want.nipc; i++)
		assert_true(p.want.ipc[i].val.owner_ifkey >= 10 &&
			    p.want.ipc[i].val.owner_ifkey <= 12);
	assert_int_equal(p.next_id, 2);
	ap_plan_free(&p);
	unload(&w);
}

/* The same compiled state again: nothing to write. */
static void test_same_again_is_empty(void **state)
{
	struct world w = {};
	struct ap_state empty = {};
	struct ap_plan p1, p2;

	load(&w, BASE("{pod: b, role: client}", "{pod: a}"), NULL);
	plan(&w, &empty, 0, &p1);
	plan(&w, &p1.want, p1.next_id, &p2);
	assert_true(ap_plan_empty(&p2));
	assert_int_equal(p2.sets_added + p2.sets_removed, 0);
	assert_int_equal(p2.next_id, p1.next_id);
	assert_int_equal(ep_at(&p2.want, 10)->ep.revision, 1);
	ap_plan_free(&p1);
	ap_plan_free(&p2);
	unload(&w);
}

/* y/a's labels change and no rule selects it: its ipcache entry and its
 * endpoint (new identity) are written, nothing else. */
static void test_label_change_writes_only_affected(void **state)
{
	struct world w1 = {}, w2 = {};
	struct ap_state empty = {};
	struct ap_plan p1, p2;

	load(&w1, BASE("{pod: b, role: client}", "{pod: a}"), NULL);
	plan(&w1, &empty, 0, &p1);
	load(&w2, BASE("{pod: b, role: client}", "{pod: a, tier: new}"), w1.c);
	plan(&w2, &p1.want, p1.next_id, &p2);
	assert_int_equal(p2.npol_add + p2.npol_del, 0);
	assert_int_equal(p2.nipc_set, 1);
	assert_memory_equal(&p2.ipc_set[0].key, &w2.m->pods[2].addrs[0], 16);
	assert_int_equal(p2.nep_set, 1);
	assert_int_equal(p2.ep_set[0].ifkey, 12);
	assert_int_equal(p2.ep_set[0].ep.revision, 2); /* bumped */
	assert_int_equal(p2.nep_del + p2.nipc_del + p2.nlpm_del, 0);
	ap_plan_free(&p1);
	ap_plan_free(&p2);
	unload(&w1);
	unload(&w2);
}

/* x/b stops being a client, x/a becomes one: x/a's set changes. The new content gets a
 * fresh id (the old one is never rewritten) and the old set is deleted. */
static void test_changed_set_gets_fresh_id(void **state)
{
	struct world w1 = {}, w2 = {};
	struct ap_state empty = {};
	struct ap_plan p1, p2;

	load(&w1, BASE("{pod: b, role: client}", "{pod: a}"), NULL);
	plan(&w1, &empty, 0, &p1);
	load(&w2, BASE3("{pod: a, role: client}", "{pod: b}", "{pod: a}"), w1.c);
	plan(&w2, &p1.want, p1.next_id, &p2);
	assert_int_equal(p2.sets_added, 1);
	assert_int_equal(p2.sets_removed, 1);
	assert_int_equal(p2.npol_del, p1.want.npol);
	for (size_t i = 0; i < p2.npol_del; i++)
		assert_int_equal(p2.pol_del[i].policy_id, 1);
	for (size_t i = 0; i < p2.npol_add; i++)
		assert_int_equal(p2.pol_add[i].key.policy_id, 2);
	assert_int_equal(ep_at(&p2.want, 10)->ep.policy_id[SEG_DIR_INGRESS], 2);
	assert_int_equal(p2.next_id, 3);
	/* every key written is under an id no packet can be using */
	for (size_t i = 0; i < p2.npol_add; i++)
		assert_true(p2.pol_add[i].key.policy_id >= p1.next_id);
	ap_plan_free(&p1);
	ap_plan_free(&p2);
	unload(&w1);
	unload(&w2);
}

/* A mirror holding the same content under another id (say, written by an
 * earlier segd): the id is reused, nothing written. */
static void test_content_addressed_reuse(void **state)
{
	struct world w = {};
	struct ap_state empty = {}, m;
	struct ap_plan p1, p2;

	load(&w, BASE("{pod: b, role: client}", "{pod: a}"), NULL);
	plan(&w, &empty, 0, &p1);
	state_copy(&m, &p1.want);
	for (size_t i = 0; i < m.npol; i++)
		m.pol[i].key.policy_id = 77;
	for (size_t i = 0; i < m.nep; i++) {
		if (m.ep[i].ep.policy_id[SEG_DIR_INGRESS])
			m.ep[i].ep.policy_id[SEG_DIR_INGRESS] = 77;
	}
	plan(&w, &m, 78, &p2);
	assert_true(ap_plan_empty(&p2));
	assert_int_equal(ep_at(&p2.want, 10)->ep.policy_id[SEG_DIR_INGRESS], 77);
	assert_int_equal(p2.idmap[ep_at(&p1.want, 10)->ep.policy_id[SEG_DIR_INGRESS]], 77);
	ap_state_free(&m);
	ap_plan_free(&p1);
	ap_plan_free(&p2);
	unload(&w);
}

/* A stale set in the mirror that nothing references (a segd killed before
 * its cleanup) is deleted; a partial copy of a set never matches it. */
static void test_stale_and_partial_sets_deleted(void **state)
{
	struct world w = {};
	struct ap_state empty = {}, m;
	struct ap_plan p1, p2;
	size_t n;

	load(&w, BASE("{pod: b, role: client}", "{pod: a}"), NULL);
	plan(&w, &empty, 0, &p1);
	n = p1.want.npol;
	assert_true(n >= 1);
	state_copy(&m, &p1.want);
	m.pol = realloc(m.pol, (2 * n) * sizeof(*m.pol));
	assert_non_null(m.pol);
	memcpy(m.pol + n, m.pol, n * sizeof(*m.pol)); /* id 9: all but the last entry */
	for (size_t i = n; i < 2 * n; i++)
		m.pol[i].key.policy_id = 9;
	m.npol = 2 * n - 1;
	ap_state_sort(&m);
	plan(&w, &m, 10, &p2);
	assert_int_equal(p2.sets_removed, 1);
	assert_int_equal(p2.npol_del, n - 1);
	assert_int_equal(p2.npol_add + p2.nep_set + p2.nipc_set, 0);
	ap_state_free(&m);
	ap_plan_free(&p1);
	ap_plan_free(&p2);
	unload(&w);
}

/* x/c stops being a client while x/b (same labels before) stays one: the
 * client identity still exists, x/a's set is unchanged, but a flow x/c
 * opened to x/a must be re-checked. With AP_BUMP_REIDENTIFIED x/a's
 * revision is bumped (and x/c's endpoint, whose identity changed, written);
 * x/b is untouched. Without it only x/c's endpoint is written. */
#define CLIENTS(xc_labels)                    \
	NS("x")                               \
	POD("x", "a", "{pod: a}", "10.1.0.1") \
	POD("x", "b", "{role: client}", "10.1.0.2") POD("x", "c", xc_labels, "10.1.0.3") POLICY

static void test_reidentified_address_bumps_who_names_it(void **state)
{
	struct world w1 = {}, w2 = {};
	struct ap_state empty = {};
	struct ap_plan p1, p2;
	bool a = false, c = false;

	load(&w1, CLIENTS("{role: client}"), NULL);
	plan(&w1, &empty, 0, &p1);
	load(&w2, CLIENTS("{role: other}"), w1.c);
	plan(&w2, &p1.want, p1.next_id, &p2); /* epochs: the flip re-checks flows */
	assert_int_equal(p2.nep_set, 1);
	assert_int_equal(p2.ep_set[0].ifkey, 12);
	ap_plan_free(&p2);
	plan_flags(&w2, &p1.want, p1.next_id, AP_BUMP_REIDENTIFIED, &p2);
	assert_int_equal(p2.npol_add + p2.npol_del, 0); /* x/a's set: the same */
	assert_int_equal(p2.nipc_set, 1);
	assert_int_equal(p2.nep_set, 2);
	for (size_t i = 0; i < p2.nep_set; i++) {
		a |= p2.ep_set[i].ifkey == 10 && p2.ep_set[i].ep.revision == 2;
		c |= p2.ep_set[i].ifkey == 12 && p2.ep_set[i].ep.revision == 2;
	}
	assert_true(a && c);
	assert_int_equal(ep_at(&p2.want, 11)->ep.revision, 1);
	assert_int_equal(ep_at(&p2.want, 10)->ep.revision, 2);
	ap_plan_free(&p1);
	ap_plan_free(&p2);
	unload(&w1);
	unload(&w2);
}

/* A pod no longer attached here: its endpoint goes, its address loses
 * its owner. */
static void test_detached_pod(void **state)
{
	struct world w = {};
	struct ap_state empty = {};
	struct ap_plan p1, p2;

	load(&w, BASE("{pod: b, role: client}", "{pod: a}"), NULL);
	plan(&w, &empty, 0, &p1);
	w.absent_ifkey = 12;
	plan(&w, &p1.want, p1.next_id, &p2);
	assert_int_equal(p2.nep_del, 1);
	assert_int_equal(p2.ep_del[0], 12);
	assert_int_equal(p2.nipc_set, 1);
	assert_int_equal(p2.ipc_set[0].val.owner_ifkey, 0);
	assert_int_equal(p2.nep_set + p2.npol_add + p2.npol_del, 0);
	ap_plan_free(&p1);
	ap_plan_free(&p2);
	unload(&w);
}

/* Two pods claiming one ifkey is refused, not half-planned. */
static __u32 same_ifkey(const struct seg_pod *pod, void *ctx)
{
	return 5;
}

static void test_duplicate_ifkey_refused(void **state)
{
	struct world w = {};
	struct ap_state empty = {};
	struct seg_apply_opts o = { .pod_ifkey = same_ifkey };
	struct ap_plan p;

	load(&w, BASE("{pod: b, role: client}", "{pod: a}"), NULL);
	assert_int_equal(ap_plan_build(&empty, 0, w.c, &o, 0, &p), -EEXIST);
	unload(&w);
}

/* The content hash ignores the policy id and sees every other byte. */
static void test_set_hash(void **state)
{
	struct ap_pol a[2] = {}, b[2];

	a[0].key.policy_id = 1;
	a[0].key.port = 80;
	a[1].key.policy_id = 1;
	a[1].key.port = 81;
	memcpy(b, a, sizeof(a));
	b[0].key.policy_id = b[1].key.policy_id = 2;
	assert_true(ap_set_hash(a, 2) == ap_set_hash(b, 2));
	b[1].val.rule_id = 3;
	assert_false(ap_set_hash(a, 2) == ap_set_hash(b, 2));
	/* any one byte after the policy id, of the key or the value */
	for (size_t off = sizeof(a[0].key.policy_id); off < sizeof(a[0]); off++) {
		memcpy(b, a, sizeof(a));
		((unsigned char *)&b[1])[off] ^= 0x40;
		assert_false(ap_set_hash(a, 2) == ap_set_hash(b, 2));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_apply_writes_everything),
		cmocka_unit_test(test_same_again_is_empty),
		cmocka_unit_test(test_label_change_writes_only_affected),
		cmocka_unit_test(test_changed_set_gets_fresh_id),
		cmocka_unit_test(test_content_addressed_reuse),
		cmocka_unit_test(test_stale_and_partial_sets_deleted),
		cmocka_unit_test(test_reidentified_address_bumps_who_names_it),
		cmocka_unit_test(test_detached_pod),
		cmocka_unit_test(test_duplicate_ifkey_refused),
		cmocka_unit_test(test_set_hash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
