// SPDX-License-Identifier: GPL-2.0-only
/*
 * lib/apply against the real maps of a private lib/dp instance (root):
 * apply the corpus -> maps hold exactly the compiled state; apply again ->
 * nothing written; one pod's labels change -> only its entries written; a
 * new seg_apply on the same maps reconciles (mirror = maps) and writes
 * nothing; a write failing half-way leaves the old state; a peer changing
 * identity revokes the flows it no longer may have. Argument: the
 * tests/netpol directory.
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

#include <bpf/bpf.h>
#include <linux/pkt_cls.h>

#include "apply/apply.h"
#include "testpkt.h"
#include "dp/dp.h"
#include "log.h"
#include "policy/policy.h"

static const char *netpol_dir;

struct world {
	struct seg_manifests *m;
	struct seg_compiled *c;
};

struct fx {
	struct seg_dp *dp;
	struct seg_apply *a;
};

static __u32 ifkey_of(const struct seg_pod *pod, void *ctx)
{
	struct world *w = ctx;

	return 100 + (__u32)(pod - w->m->pods);
}

static void load_paths(struct world *w, const char *const *paths, const struct seg_compiled *prev)
{
	struct seg_compile_opts o = { .prev = prev ? prev->numbering : NULL };
	struct seg_diag d = {};

	w->m = seg_manifests_new();
	assert_non_null(w->m);
	for (; *paths; paths++) {
		if (seg_manifests_load_path(w->m, *paths, &d))
			fail_msg("load %s: %s", *paths, d.msg);
	}
	if (seg_compile(w->m, &o, &w->c, &d))
		fail_msg("compile: %s", d.msg);
}

static void load_corpus(struct world *w, const char *yaml_extra, const struct seg_compiled *prev)
{
	char base[4096], cas[4096];
	const char *paths[] = { base, cas, NULL };
	struct seg_compile_opts o = { .prev = prev ? prev->numbering : NULL };
	struct seg_diag d = {};

	snprintf(base, sizeof(base), "%s/base.yaml", netpol_dir);
	snprintf(cas, sizeof(cas), "%s/cases/29-union", netpol_dir);
	if (!yaml_extra) {
		load_paths(w, paths, prev);
		return;
	}
	paths[1] = NULL;
	w->m = seg_manifests_new();
	assert_non_null(w->m);
	if (seg_manifests_load_path(w->m, base, &d) ||
	    seg_manifests_load_buf(w->m, "extra.yaml", yaml_extra, strlen(yaml_extra), &d))
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

static void do_apply(struct fx *f, struct world *w, struct seg_apply_stats *st)
{
	struct seg_apply_opts o = { .pod_ifkey = ifkey_of, .ctx = w };

	assert_int_equal(seg_apply(f->a, w->c, &o, st), 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || seg_dp_open(&f->dp, NULL) || seg_apply_new(f->dp, &f->a))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	seg_apply_free(f->a);
	seg_dp_close(f->dp);
	free(f);
	return 0;
}

static int count_pol(const struct seg_policy_key *k, const struct seg_policy_val *v, void *ctx)
{
	(*(size_t *)ctx)++;
	return 0;
}

static int count_ep(__u32 ifkey, const struct seg_endpoint *ep, void *ctx)
{
	(*(size_t *)ctx)++;
	return 0;
}

/* Both epochs hold the same endpoints (epoch 1 listed by its own name,
 * the active one through the typed getter). */
static void check_epochs_equal(struct fx *f)
{
	int fd = seg_dp_map_fd(f->dp, SEG_MAP_ENDPOINTS1);
	__u32 k, *prev = NULL;
	size_t n1 = 0, n = 0;
	struct seg_endpoint a, b;

	assert_true(fd >= 0);
	while (!bpf_map_get_next_key(fd, prev, &k)) {
		assert_int_equal(bpf_map_lookup_elem(fd, &k, &b), 0);
		assert_int_equal(seg_dp_endpoint_get(f->dp, k, &a), 0);
		assert_memory_equal(&a, &b, sizeof(a));
		n1++;
		prev = &k;
	}
	assert_int_equal(seg_dp_endpoint_foreach(f->dp, count_ep, &n), 0);
	assert_int_equal(n1, n);
}

/* The maps hold exactly c: every endpoint, ipcache entry and policy entry
 * (under the data path id lib/apply chose), and nothing else. */
static void check_maps(struct fx *f, struct world *w)
{
	size_t npol = 0, nep = 0, want_pol = 0;
	bool *used = calloc(w->c->npol + w->c->neps * 2 + 2, 1);

	assert_non_null(used);
	for (size_t i = 0; i < w->c->neps; i++) {
		const struct seg_ep_entry *e = &w->c->eps[i];
		struct seg_endpoint got;

		assert_int_equal(seg_dp_endpoint_get(f->dp, 100 + (__u32)e->pod, &got), 0);
		assert_int_equal(got.identity, e->ep.identity);
		for (int d = 0; d < SEG_DIR_MAX; d++) {
			assert_int_equal(got.flags[d], e->ep.flags[d]);
			assert_int_equal(got.port_mask[d], e->ep.port_mask[d]);
			assert_int_equal(got.policy_id[d],
					 seg_apply_policy_id(f->a, e->ep.policy_id[d]));
			used[e->ep.policy_id[d]] = true;
		}
	}
	for (size_t i = 0; i < w->c->npol; i++) {
		struct seg_policy_key k = w->c->pol[i].key;
		struct seg_policy_val v;

		if (!used[k.policy_id])
			continue;
		want_pol++;
		k.policy_id = seg_apply_policy_id(f->a, k.policy_id);
		assert_int_not_equal(k.policy_id, 0);
		assert_int_equal(seg_dp_policy_get(f->dp, &k, &v), 0);
		assert_memory_equal(&v, &w->c->pol[i].val, sizeof(v));
	}
	for (size_t i = 0; i < w->c->nipc; i++) {
		struct seg_ipcache_val v;

		assert_int_equal(seg_dp_ipcache_get(f->dp, &w->c->ipc[i].addr, &v), 0);
		assert_int_equal(v.identity, w->c->ipc[i].val.identity);
		assert_int_equal(v.owner_ifkey, 100 + w->c->ipc[i].pod);
	}
	assert_int_equal(seg_dp_policy_foreach(f->dp, count_pol, &npol), 0);
	assert_int_equal(seg_dp_endpoint_foreach(f->dp, count_ep, &nep), 0);
	assert_int_equal(npol, want_pol);
	assert_int_equal(nep, w->c->neps);
	free(used);
	check_epochs_equal(f);
}

static void test_corpus_then_same_again(void **state)
{
	struct fx *f = *state;
	struct world w = {};
	struct seg_apply_stats st;

	__u32 gen;

	load_corpus(&w, NULL, NULL);
	do_apply(f, &w, &st);
	assert_true(st.flipped);
	assert_int_equal(st.epoch, 1);
	gen = st.generation;
	assert_int_equal(st.endpoint_writes, w.c->neps);
	assert_int_equal(st.ipcache_writes, w.c->nipc + w.c->nlpm);
	check_maps(f, &w);
	do_apply(f, &w, &st);
	assert_false(st.flipped);
	assert_int_equal(st.generation, gen); /* no flip: flows not re-checked */
	assert_int_equal(st.endpoint_writes + st.ipcache_writes + st.policy_writes +
				 st.endpoint_deletes + st.ipcache_deletes + st.policy_deletes,
			 0);
	check_maps(f, &w);
	unload(&w);
}

/* Pod z/extra's labels change; nothing selects it by label: its ipcache
 * entry and its endpoint are written, nothing else. */
#define DENY_X                                                                             \
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: from-y, " \
	"namespace: x}\nspec: {podSelector: {}, ingress: [{from: [{namespaceSelector: "    \
	"{matchLabels: {ns: y}}}]}]}\n"
#define RELABEL                                                                                \
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: extra, namespace: z, labels: {pod: " \
	"%s}}\nspec: {containers: [{name: c}]}\nstatus: {podIP: 10.3.0.9}\n"

static void test_label_change_writes_only_affected(void **state)
{
	struct fx *f = *state;
	struct world w1 = {}, w2 = {};
	struct seg_apply_stats st;
	char y1[1024], y2[1024];

	snprintf(y1, sizeof(y1), DENY_X RELABEL, "e1");
	snprintf(y2, sizeof(y2), DENY_X RELABEL, "e2");
	load_corpus(&w1, y1, NULL);
	do_apply(f, &w1, &st);
	check_maps(f, &w1);
	load_corpus(&w2, y2, w1.c);
	do_apply(f, &w2, &st);
	check_maps(f, &w2);
	assert_true(st.flipped);
	assert_int_equal(st.endpoint_writes, 1);
	assert_int_equal(st.ipcache_writes, 1);
	assert_int_equal(st.policy_writes + st.policy_deletes, 0);
	assert_int_equal(st.endpoint_deletes + st.ipcache_deletes, 0);
	unload(&w1);
	unload(&w2);
}

/* A new seg_apply on maps written by another: reads them back, and the
 * same compiled state writes nothing. */
static void test_reconcile_from_maps(void **state)
{
	struct fx *f = *state;
	struct world w = {};
	struct seg_apply_stats st;
	struct seg_apply *a2 = NULL;

	load_corpus(&w, NULL, NULL);
	do_apply(f, &w, &st);
	assert_int_equal(seg_apply_new(f->dp, &a2), 0);
	seg_apply_free(f->a);
	f->a = a2;
	do_apply(f, &w, &st);
	assert_false(st.flipped);
	assert_int_equal(st.endpoint_writes + st.ipcache_writes + st.policy_writes +
				 st.endpoint_deletes + st.ipcache_deletes + st.policy_deletes,
			 0);
	check_maps(f, &w);
	unload(&w);
}

/* A segd killed after a flip leaves the inactive epoch stale: a new
 * seg_apply brings it back in line with the active one. */
static void test_new_apply_resyncs_inactive_epoch(void **state)
{
	struct fx *f = *state;
	struct world w1 = {}, w2 = {};
	struct seg_apply_stats st;
	struct seg_endpoint junk = { .ep_id = 999, .identity = 12345 };
	struct seg_apply *a2 = NULL;
	char y1[1024], y2[1024];

	snprintf(y1, sizeof(y1), DENY_X RELABEL, "e1");
	snprintf(y2, sizeof(y2), DENY_X RELABEL, "e2");
	load_corpus(&w1, y1, NULL);
	do_apply(f, &w1, &st);
	load_corpus(&w2, y2, w1.c);
	do_apply(f, &w2, &st);
	assert_int_equal(st.epoch, 0); /* two flips: epoch 1 is inactive */
	assert_int_equal(seg_dp_endpoint_set_in(f->dp, 1, 999, &junk), 0);
	assert_int_equal(seg_dp_endpoint_set_in(f->dp, 1, 100, &junk), 0);
	assert_int_equal(seg_apply_new(f->dp, &a2), 0);
	seg_apply_free(f->a);
	f->a = a2;
	do_apply(f, &w2, &st);
	assert_false(st.flipped); /* the mirror is the active epoch */
	check_maps(f, &w2); /* and both epochs are equal again */
	/* the same with epoch 0 inactive: junk there must not come back when
	 * the next update flips to it */
	do_apply(f, &w1, &st);
	assert_int_equal(st.epoch, 1);
	assert_int_equal(seg_dp_endpoint_set_in(f->dp, 0, 999, &junk), 0);
	assert_int_equal(seg_apply_new(f->dp, &a2), 0);
	seg_apply_free(f->a);
	f->a = a2;
	do_apply(f, &w2, &st);
	assert_int_equal(st.epoch, 0);
	assert_int_equal(seg_dp_endpoint_get(f->dp, 999, &junk), -ENOENT);
	check_maps(f, &w2);
	unload(&w1);
	unload(&w2);
}

/* A write fails half-way (policy map too small): no flip, the active
 * epoch still holds the old state (here: none), and the next apply starts
 * from what is really in the maps, removing the partial set. */
static void test_failed_write_keeps_old_state(void **state)
{
	struct seg_dp_opts o = { .max_policy = 2 };
	struct world w1 = {}, w0 = {};
	struct seg_apply_stats st;
	struct seg_apply_opts ao = { .pod_ifkey = ifkey_of, .ctx = &w1 };
	struct fx f = {};
	size_t npol = 0, nep = 0;

	assert_int_equal(seg_dp_open(&f.dp, &o), 0);
	assert_int_equal(seg_apply_new(f.dp, &f.a), 0);
	load_corpus(&w1, DENY_X, NULL);
	assert_true(w1.c->npol > 2);
	assert_int_not_equal(seg_apply(f.a, w1.c, &ao, &st), 0);
	assert_false(st.flipped);
	assert_int_equal(st.epoch, 0); /* never flipped to the half-written state */
	assert_int_equal(seg_dp_endpoint_foreach(f.dp, count_ep, &nep), 0);
	assert_int_equal(nep, 0);
	assert_int_equal(seg_dp_policy_foreach(f.dp, count_pol, &npol), 0);
	assert_int_equal(npol, 2); /* the partial set */
	load_corpus(&w0, "", w1.c);
	do_apply(&f, &w0, &st);
	check_maps(&f, &w0);
	assert_int_equal(st.policy_deletes, 2);
	unload(&w0);
	unload(&w1);
	seg_apply_free(f.a);
	seg_dp_close(f.dp);
}

/* x/c stops being a client while x/b keeps the client identity alive: x/a's
 * policy set and endpoint are unchanged, yet the flow x/c had opened to
 * x/a must be cut: the flip's generation bump makes the data path re-check
 * it. */
#define CLIENTS(xc)                                                                             \
	"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"                           \
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {pod: a}}\n" \
	"spec: {containers: [{name: c}]}\nstatus: {podIP: 10.1.0.1}\n"                          \
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x, labels: {role: "     \
	"client}}\nspec: {containers: [{name: c}]}\nstatus: {podIP: 10.1.0.2}\n"                \
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: c, namespace: x, labels: {role: " xc  \
	"}}\nspec: {containers: [{name: c}]}\nstatus: {podIP: 10.1.0.3}\n"                      \
	"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, "      \
	"namespace: x}\nspec: {podSelector: {matchLabels: {pod: a}}, ingress: [{from: "         \
	"[{podSelector: {matchLabels: {role: client}}}], ports: [{port: 80}]}]}\n"

static void load_buf(struct world *w, const char *yaml, const struct seg_compiled *prev)
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

/* Runs x/c -> x/a:80 (flags) on x/a's endpoint, copied to ifkey 1 (the
 * loopback's ifindex, which BPF_PROG_TEST_RUN reports). */
static int to_pod(struct fx *f, __u8 flags)
{
	struct tp_spec sp = { .src = "10.1.0.3",
			      .dst = "10.1.0.1",
			      .proto = IPPROTO_TCP,
			      .tcp_flags = flags,
			      .sport = 40000,
			      .dport = 80 };
	__u8 pkt[TP_BUF_SIZE];
	int len = tp_build(pkt, sizeof(pkt), &sp);
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = (__u32)len, .repeat = 1);
	struct seg_endpoint ep;

	assert_true(len > 0);
	assert_int_equal(seg_dp_endpoint_get(f->dp, 100, &ep), 0);
	assert_int_equal(seg_dp_endpoint_set(f->dp, 1, &ep), 0);
	assert_int_equal(bpf_prog_test_run_opts(seg_dp_prog_fd(f->dp, SEG_PROG_TC_TO_POD), &o), 0);
	return o.retval;
}

static void test_reidentified_peer_flow_revoked(void **state)
{
	struct fx *f = *state;
	struct world w1 = {}, w2 = {};
	struct seg_apply_stats st;
	struct seg_counter before, after;

	load_buf(&w1, CLIENTS("client"), NULL);
	do_apply(f, &w1, &st);
	assert_int_not_equal(to_pod(f, TP_SYN), TC_ACT_SHOT);
	assert_int_not_equal(to_pod(f, TP_ACK), TC_ACT_SHOT); /* established */
	load_buf(&w2, CLIENTS("other"), w1.c);
	do_apply(f, &w2, &st);
	assert_int_equal(st.policy_writes, 0); /* x/a's set did not change */
	assert_int_equal(st.endpoint_writes, 1); /* x/c only */
	assert_int_equal(seg_dp_reason_get(f->dp, SEG_DROP_REVOKED, &before), 0);
	assert_int_equal(to_pod(f, TP_ACK), TC_ACT_SHOT);
	assert_int_equal(seg_dp_reason_get(f->dp, SEG_DROP_REVOKED, &after), 0);
	assert_int_equal(after.packets, before.packets + 1);
	unload(&w1);
	unload(&w2);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_corpus_then_same_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_label_change_writes_only_affected, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_from_maps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_apply_resyncs_inactive_epoch, setup,
						teardown),
		cmocka_unit_test(test_failed_write_keeps_old_state),
		cmocka_unit_test_setup_teardown(test_reidentified_peer_flow_revoked, setup,
						teardown),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s NETPOL_DIR\n", argv[0]);
		return 1;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "test_apply_dp: needs root (private BPF maps)\n");
		return 77;
	}
	netpol_dir = argv[1];
	log_init("test_apply_dp", LOG_LVL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
