// SPDX-License-Identifier: GPL-2.0-only
/*
 * The compiler and evaluator: selectors, identities (sharing, stability,
 * label updates), ipBlock prefix partitioning, port blocks, named ports,
 * probe order and rule attribution, audit, capacity, reason texts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "policy/policy.h"

#define NS(n, labels) \
	"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: " n ", labels: " labels "}\n"
#define POD(ns, n, labels, ip, ports)                                                \
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: " n ", namespace: " ns     \
	", labels: " labels "}\nspec: {containers: [{name: c, ports: " ports "}]}\n" \
	"status: {podIP: " ip "}\n"
#define NP(ns, n, spec)                                                                   \
	"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: " n \
	", namespace: " ns "}\nspec: " spec "\n"

struct fx {
	struct seg_manifests *m;
	struct seg_compiled *c;
};

static void fx_load(struct fx *f, const char *yaml, const struct seg_compile_opts *o)
{
	struct seg_diag d = {};

	f->m = seg_manifests_new();
	assert_non_null(f->m);
	if (seg_manifests_load_buf(f->m, "t.yaml", yaml, strlen(yaml), &d))
		fail_msg("load: %s", d.msg);
	if (seg_compile(f->m, o, &f->c, &d))
		fail_msg("compile: %s", d.msg);
}

static void fx_free(struct fx *f)
{
	seg_compiled_free(f->c);
	seg_manifests_free(f->m);
}

static const struct seg_pod *pod(const struct fx *f, const char *ns, const char *name)
{
	const struct seg_pod *p = seg_manifests_pod(f->m, ns, name);

	assert_non_null(p);
	return p;
}

static struct seg_verdict probe(const struct fx *f, const char *sns, const char *s, const char *dns,
				const char *d, __u16 port, __u8 proto)
{
	struct seg_verdict v;

	assert_int_equal(seg_eval_pods(f->c, pod(f, sns, s), pod(f, dns, d), 0, port, proto, &v),
			 0);
	return v;
}

static __u32 ident_of(const struct fx *f, const char *ns, const char *name)
{
	const struct seg_ep_entry *ep = seg_compiled_endpoint(f->c, pod(f, ns, name));

	assert_non_null(ep);
	return ep->ep.identity;
}

static __u32 ipc(const struct fx *f, const char *addr)
{
	struct in6_addr a;

	assert_int_equal(seg_addr_parse(addr, &a), 0);
	return seg_ipcache_lookup(f->c, &a);
}

/* ---- selectors --------------------------------------------------------------- */

static void test_selectors(void **state)
{
	struct seg_label lv[] = { { "app", "web" }, { "tier", "front" } };
	struct seg_labels l = { lv, 2 }, none = { NULL, 0 };
	char *web[] = { "web" }, *db_api[] = { "db", "api" };
	struct seg_sel_expr e_in = { "app", SEG_SEL_IN, web, 1 };
	struct seg_sel_expr e_in_no = { "app", SEG_SEL_IN, db_api, 2 };
	struct seg_sel_expr e_notin = { "app", SEG_SEL_NOT_IN, db_api, 2 };
	struct seg_sel_expr e_notin_web = { "app", SEG_SEL_NOT_IN, web, 1 };
	struct seg_sel_expr e_ex = { "tier", SEG_SEL_EXISTS, NULL, 0 };
	struct seg_sel_expr e_ex_no = { "zone", SEG_SEL_EXISTS, NULL, 0 };
	struct seg_sel_expr e_dne = { "zone", SEG_SEL_NOT_EXISTS, NULL, 0 };
	struct seg_sel_expr e_dne_no = { "tier", SEG_SEL_NOT_EXISTS, NULL, 0 };
	struct seg_sel_expr both[] = { e_in, e_ex };
	struct seg_label ml_ok[] = { { "app", "web" } }, ml_bad[] = { { "app", "db" } };
	struct seg_selector s = {};

	assert_true(seg_selector_empty(&s));
	assert_true(seg_selector_matches(&s, &l)); /* empty matches everything */
	assert_true(seg_selector_matches(&s, &none));
#define EXPR(e, lab, want)                                                 \
	do {                                                               \
		struct seg_selector x_ = { .exprs = &(e), .nexprs = 1 };   \
		assert_int_equal(seg_selector_matches(&x_, &(lab)), want); \
	} while (0)
	EXPR(e_in, l, true);
	EXPR(e_in_no, l, false);
	EXPR(e_in, none, false); /* In needs the key */
	EXPR(e_notin, l, true);
	EXPR(e_notin_web, l, false);
	EXPR(e_notin, none, true); /* NotIn matches a missing key */
	EXPR(e_ex, l, true);
	EXPR(e_ex_no, l, false);
	EXPR(e_dne, l, true);
	EXPR(e_dne_no, l, false);
	/* matchLabels and matchExpressions: all must hold */
	s.match.v = ml_ok;
	s.match.n = 1;
	s.exprs = both;
	s.nexprs = 2;
	assert_false(seg_selector_empty(&s));
	assert_true(seg_selector_matches(&s, &l));
	s.match.v = ml_bad;
	assert_false(seg_selector_matches(&s, &l));
	s.match.v = ml_ok;
	both[1] = e_ex_no;
	assert_false(seg_selector_matches(&s, &l));
}

/* ---- identities ---------------------------------------------------------------- */

#define CLUSTER(x_labels, b_labels)                                                             \
	NS("x", x_labels)                                                                       \
	NS("y", "{}")                                                                           \
	POD("x", "a", "{app: web}", "10.0.0.1", "[]")                                           \
	POD("x", "b", b_labels, "10.0.0.2", "[]") POD("y", "a", "{app: web}", "10.0.0.3", "[]") \
		POD("x", "c", "{app: db}", "10.0.0.4", "[]")

static void test_identities(void **state)
{
	const char *v1 = CLUSTER("{env: prod}", "{app: web}")
		NP("x", "web-from-prod",
		   "{podSelector: {matchLabels: {app: web}}, ingress: [{from: "
		   "[{namespaceSelector: {matchLabels: {env: prod}}}]}]}");
	const char *v2 = CLUSTER("{env: prod}", "{app: db}")
		NP("x", "web-from-prod",
		   "{podSelector: {matchLabels: {app: web}}, ingress: [{from: "
		   "[{namespaceSelector: {matchLabels: {env: prod}}}]}]}");
	const char *v3 = CLUSTER("{env: dev}", "{app: db}")
		NP("x", "web-from-prod",
		   "{podSelector: {matchLabels: {app: web}}, ingress: [{from: "
		   "[{namespaceSelector: {matchLabels: {env: prod}}}]}]}");
	struct seg_compile_opts o = {};
	struct fx f1, f2, f3;
	__u32 xa, xc, ya;

	fx_load(&f1, v1, NULL);
	xa = ident_of(&f1, "x", "a");
	xc = ident_of(&f1, "x", "c");
	ya = ident_of(&f1, "y", "a");
	assert_true(xa >= SEG_ID_FIRST_ALLOC);
	assert_int_equal(ident_of(&f1, "x", "b"), xa); /* same labels, same ns: shared */
	assert_int_not_equal(xa, ya); /* same labels, other namespace */
	assert_int_not_equal(xa, xc);
	assert_int_equal(ipc(&f1, "10.0.0.2"), xa);
	assert_int_equal(ipc(&f1, "10.9.9.9"), SEG_ID_WORLD);
	assert_int_equal(f1.c->nids, 3);
	assert_int_equal(probe(&f1, "x", "c", "x", "b", 80, IPPROTO_TCP).verdict,
			 SEG_VERDICT_ALLOW);
	assert_int_equal(probe(&f1, "y", "a", "x", "b", 80, IPPROTO_TCP).verdict, SEG_VERDICT_DENY);

	/* label update on x/b: its identity changes, the others keep theirs,
	 * and it is no longer selected by the policy */
	o.prev = f1.c->numbering;
	fx_load(&f2, v2, &o);
	assert_int_equal(ident_of(&f2, "x", "a"), xa);
	assert_int_equal(ident_of(&f2, "x", "c"), xc);
	assert_int_equal(ident_of(&f2, "y", "a"), ya);
	assert_int_equal(ident_of(&f2, "x", "b"), xc); /* now labelled like x/c */
	assert_int_equal(probe(&f2, "y", "a", "x", "b", 80, IPPROTO_TCP).verdict,
			 SEG_VERDICT_ALLOW);

	/* namespace label update: x loses env=prod, x's pods no longer match
	 * the namespaceSelector, and every identity of x changes */
	o.prev = f2.c->numbering;
	fx_load(&f3, v3, &o);
	assert_int_not_equal(ident_of(&f3, "x", "a"), xa);
	assert_int_equal(ident_of(&f3, "y", "a"), ya);
	assert_int_equal(probe(&f3, "x", "c", "x", "a", 80, IPPROTO_TCP).verdict, SEG_VERDICT_DENY);
	assert_true(ident_of(&f3, "x", "a") > xa); /* numbers held last time stay reserved */
	fx_free(&f1);
	fx_free(&f2);
	fx_free(&f3);
}

/* ---- ipBlock partitioning ------------------------------------------------------------ */

static void test_ipblock_partition(void **state)
{
	const char *yaml = NS("x", "{}") POD("x", "in8", "{app: a}", "10.2.0.1", "[]") POD(
		"x", "in16", "{app: a}", "10.1.5.5",
		"[]") POD("x", "in24", "{app: a}", "10.1.2.3",
			  "[]") POD("x", "out", "{app: a}", "11.0.0.1",
				    "[]") POD("x", "srv", "{app: srv}", "11.0.0.2", "[]")
		NP("x", "p1",
		   "{podSelector: {matchLabels: {app: srv}}, ingress: [{from: [{ipBlock: "
		   "{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]}]}")
			NP("x", "p2",
			   "{podSelector: {matchLabels: {app: srv}}, ingress: [{from: [{ipBlock: "
			   "{cidr: 10.1.0.0/16, except: [10.1.2.0/24]}}]}]}")
		/* the same block again, excepts in another order: one block */
		NP("x", "p3",
		   "{podSelector: {matchLabels: {app: srv}}, egress: [{to: [{ipBlock: "
		   "{cidr: 10.1.0.0/16, except: [10.1.2.0/24]}}]}]}");
	const struct seg_identity *i8, *i16, *pin8, *pin16;
	__u32 plain;
	struct fx f;

	fx_load(&f, yaml, NULL);
	assert_int_equal(f.c->nblocks, 2);
	/* prefixes: 10/8, 10.1/16, 10.1.2/24 (the except of both: WORLD) */
	assert_int_equal(f.c->nlpm, 3);
	assert_int_equal(f.c->lpm[0].key.prefixlen, 96 + 24);
	assert_int_equal(f.c->lpm[0].val.identity, SEG_ID_WORLD);
	i16 = seg_identity_get(f.c, f.c->lpm[1].val.identity);
	i8 = seg_identity_get(f.c, f.c->lpm[2].val.identity);
	assert_non_null(i16);
	assert_non_null(i8);
	assert_int_equal(i16->nblocks, 1);
	assert_int_equal(i8->nblocks, 1);
	assert_int_not_equal(i16->blocks[0], i8->blocks[0]);
	assert_null(i8->labels); /* a CIDR identity */
	/* addresses that are not pods */
	assert_int_equal(ipc(&f, "10.200.0.1"), i8->id);
	assert_int_equal(ipc(&f, "10.1.200.1"), i16->id);
	assert_int_equal(ipc(&f, "10.1.2.200"), SEG_ID_WORLD);
	assert_int_equal(ipc(&f, "12.0.0.1"), SEG_ID_WORLD);
	/* pod addresses: (labels, set) identities; outside any block: labels only */
	plain = ident_of(&f, "x", "in8");
	assert_int_equal(ident_of(&f, "x", "in24"), plain);
	assert_int_equal(ipc(&f, "10.1.2.3"), plain);
	assert_int_equal(ipc(&f, "11.0.0.1"), plain);
	pin8 = seg_identity_get(f.c, ipc(&f, "10.2.0.1"));
	pin16 = seg_identity_get(f.c, ipc(&f, "10.1.5.5"));
	assert_non_null(pin8);
	assert_non_null(pin16);
	assert_non_null(pin8->labels);
	assert_int_equal(pin8->nblocks, 1);
	assert_int_equal(pin8->blocks[0], i8->blocks[0]);
	assert_int_equal(pin16->blocks[0], i16->blocks[0]);
	assert_int_not_equal(pin8->id, plain);
	/* and the verdicts: p1 for 10/8 minus 10.1/16, p2 for 10.1/16 minus /24 */
	assert_int_equal(probe(&f, "x", "in8", "x", "srv", 80, IPPROTO_TCP).verdict,
			 SEG_VERDICT_ALLOW);
	assert_int_equal(probe(&f, "x", "in16", "x", "srv", 80, IPPROTO_TCP).verdict,
			 SEG_VERDICT_ALLOW);
	assert_int_equal(probe(&f, "x", "in24", "x", "srv", 80, IPPROTO_TCP).verdict,
			 SEG_VERDICT_DENY);
	assert_int_equal(probe(&f, "x", "out", "x", "srv", 80, IPPROTO_TCP).verdict,
			 SEG_VERDICT_DENY);
	assert_non_null(strstr(probe(&f, "x", "in16", "x", "srv", 80, IPPROTO_TCP).reason,
			       "allowed by x/p2 ingress rule 0 (from[0])"));
	/* manifests made another way than by the parser have no block keys:
	 * the compiler makes them, to the same blocks and prefixes */
	{
		struct seg_compiled *c2 = NULL;
		struct seg_diag d = {};

		for (size_t i = 0; i < f.m->npols; i++)
			for (int dir = 0; dir < SEG_DIR_MAX; dir++)
				for (size_t r = 0; r < f.m->pols[i].nrules[dir]; r++)
					for (size_t k = 0; k < f.m->pols[i].rules[dir][r].npeers; k++) {
						struct seg_ipblock *b =
							&f.m->pols[i].rules[dir][r].peers[k].block;

						free(b->key);
						b->key = NULL;
					}
		assert_int_equal(seg_compile(f.m, NULL, &c2, &d), 0);
		assert_int_equal(c2->nblocks, 2);
		assert_int_equal(c2->nlpm, f.c->nlpm);
		for (size_t i = 0; i < c2->nlpm; i++) {
			assert_memory_equal(&c2->lpm[i].key, &f.c->lpm[i].key, sizeof(c2->lpm[i].key));
			assert_int_equal(c2->lpm[i].val.identity, f.c->lpm[i].val.identity);
		}
		seg_compiled_free(c2);
	}
	fx_free(&f);
}

/* Blocks are numbered in the order of their texts, not of first use: the
 * first policy's block sorts last, and each peer must still name its own. */
static void test_ipblock_order(void **state)
{
	const char *yaml = NS("x", "{}") POD("x", "a", "{app: a}", "192.168.1.1", "[]")
		POD("x", "b", "{app: b}", "10.1.0.1", "[]")
			POD("x", "srv", "{app: srv}", "11.0.0.2", "[]")
				NP("x", "p0",
				   "{podSelector: {matchLabels: {app: srv}}, ingress: [{from: "
				   "[{ipBlock: {cidr: 192.168.0.0/16}}], ports: [{port: 80}]}]}")
					NP("x", "p1",
					   "{podSelector: {matchLabels: {app: srv}}, ingress: [{from: "
					   "[{ipBlock: {cidr: 10.0.0.0/8}}], ports: [{port: 90}]}]}");
	static const struct {
		const char *from;
		__u16 port;
		__u32 verdict;
		const char *reason;
	} want[] = {
		{ "a", 80, SEG_VERDICT_ALLOW, "allowed by x/p0 ingress rule 0 (from[0])" },
		{ "a", 90, SEG_VERDICT_DENY, "no rule allows" },
		{ "b", 90, SEG_VERDICT_ALLOW, "allowed by x/p1 ingress rule 0 (from[0])" },
		{ "b", 80, SEG_VERDICT_DENY, "no rule allows" },
	};
	struct fx f;

	(void)state;
	fx_load(&f, yaml, NULL);
	assert_int_equal(f.c->nblocks, 2);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct seg_verdict v = probe(&f, "x", want[i].from, "x", "srv", want[i].port,
					     IPPROTO_TCP);

		assert_int_equal(v.verdict, want[i].verdict);
		if (!strstr(v.reason, want[i].reason))
			fail_msg("%s -> srv:%u: '%s'", want[i].from, want[i].port, v.reason);
	}
	fx_free(&f);
}

/* Rules of one set that name the same peers: each port spec still gets its
 * entries (the emitter skips only a (peers, ports) pair it has emitted),
 * and an entry met again keeps the rule that came first. */
#define SAME_PEER_NP(n, from, ports)                                                   \
	NP("x", n,                                                                     \
	   "{podSelector: {matchLabels: {app: srv}}, ingress: [{from: [{podSelector: " \
	   "{matchLabels: {app: " from "}}}], ports: " ports "}]}")

static void test_same_peers_other_ports(void **state)
{
	const char *yaml = NS("x", "{}") POD("x", "a", "{app: a}", "10.0.0.1", "[]")
		POD("x", "b", "{app: b}", "10.0.0.2", "[]")
		POD("x", "srv", "{app: srv}", "10.0.0.3", "[]")
		SAME_PEER_NP("p1", "a", "[{port: 80}]")
		SAME_PEER_NP("p2", "a", "[{port: 90}]")
		SAME_PEER_NP("p3", "a", "[{port: 80, protocol: UDP}]")
		SAME_PEER_NP("p4", "a", "[{port: 100, endPort: 110}]")
		SAME_PEER_NP("p5", "a", "[{port: 100, endPort: 120}]")
		SAME_PEER_NP("p6", "b", "[{port: 80}]")
		SAME_PEER_NP("p7", "a", "[{port: 80}]")
		SAME_PEER_NP("p8", "a", "[{protocol: SCTP}]")
		SAME_PEER_NP("p9", "a", "[{port: 95, endPort: 110}]");
	static const struct {
		const char *from;
		__u16 port;
		__u8 proto;
		const char *by; /* NULL: denied */
	} want[] = {
		{ "a", 80, IPPROTO_TCP, "x/p1 " },  { "a", 90, IPPROTO_TCP, "x/p2 " },
		{ "a", 80, IPPROTO_UDP, "x/p3 " },  { "a", 105, IPPROTO_TCP, "x/p4 " },
		{ "a", 110, IPPROTO_TCP, "x/p4 " }, { "a", 111, IPPROTO_TCP, "x/p5 " },
		{ "a", 120, IPPROTO_TCP, "x/p5 " }, { "a", 121, IPPROTO_TCP, NULL },
		{ "b", 80, IPPROTO_TCP, "x/p6 " },  { "b", 90, IPPROTO_TCP, NULL },
		{ "a", 7, IPPROTO_SCTP, "x/p8 " },  { "b", 7, IPPROTO_SCTP, NULL },
		{ "a", 95, IPPROTO_TCP, "x/p9 " },  { "a", 99, IPPROTO_TCP, "x/p9 " },
		{ "a", 100, IPPROTO_TCP, "x/p4 " }, { "a", 94, IPPROTO_TCP, NULL },
	};
	struct fx f;

	(void)state;
	fx_load(&f, yaml, NULL);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct seg_verdict v =
			probe(&f, "x", want[i].from, "x", "srv", want[i].port, want[i].proto);

		if (v.verdict != (want[i].by ? SEG_VERDICT_ALLOW : SEG_VERDICT_DENY) ||
		    (want[i].by && !strstr(v.reason, want[i].by)))
			fail_msg("%s -> srv:%u/%u: '%s'", want[i].from, want[i].port, want[i].proto,
				 v.reason);
	}
	fx_free(&f);
}

/* ---- ports ------------------------------------------------------------------------------ */

static size_t count_entries(const struct fx *f, __u32 policy_id, __u8 dir)
{
	size_t n = 0;

	for (size_t i = 0; i < f->c->npol; i++)
		n += f->c->pol[i].key.policy_id == policy_id && f->c->pol[i].key.dir == dir;
	return n;
}

static void test_port_ranges(void **state)
{
	const char *yaml = NS("x", "{}") POD("x", "a", "{app: a}", "10.0.0.1", "[]") POD(
		"x", "b", "{app: b}", "10.0.0.2", "[]") POD("x", "c", "{app: c}", "10.0.0.3", "[]")
		POD("x", "d", "{app: d}", "10.0.0.4",
		    "[]") NP("x", "range",
			     "{podSelector: {matchLabels: {app: a}}, ingress: [{ports: "
			     "[{port: 80, endPort: 90}]}]}")
			NP("x", "full",
			   "{podSelector: {matchLabels: {app: b}}, ingress: [{ports: "
			   "[{port: 1, endPort: 65535, protocol: UDP}]}]}")
				NP("x", "proto",
				   "{podSelector: {matchLabels: {app: c}}, ingress: [{ports: [{protocol: SCTP}]}]}")
					NP("x", "any",
					   "{podSelector: {matchLabels: {app: d}}, ingress: [{}]}");
	const struct seg_ep_entry *a, *b, *c, *d;
	struct fx f;

	fx_load(&f, yaml, NULL);
	a = seg_compiled_endpoint(f.c, pod(&f, "x", "a"));
	/* 80-87 (k=3), 88-89 (k=1), 90 (k=0) */
	assert_int_equal(count_entries(&f, a->ep.policy_id[SEG_DIR_INGRESS], SEG_DIR_INGRESS), 3);
	assert_int_equal(a->ep.port_mask[SEG_DIR_INGRESS], (1u << 0) | (1u << 1) | (1u << 3));
	assert_int_equal(a->ep.port_mask[SEG_DIR_EGRESS], 0);
	assert_int_equal(a->ep.flags[SEG_DIR_INGRESS], SEG_EPF_ISOLATED);
	assert_int_equal(a->ep.flags[SEG_DIR_EGRESS], 0);
	for (int p = 75; p < 95; p++)
		assert_int_equal(probe(&f, "x", "b", "x", "a", (__u16)p, IPPROTO_TCP).verdict,
				 p >= 80 && p <= 90 ? SEG_VERDICT_ALLOW : SEG_VERDICT_DENY);
	assert_int_equal(probe(&f, "x", "b", "x", "a", 85, IPPROTO_UDP).verdict, SEG_VERDICT_DENY);

	b = seg_compiled_endpoint(f.c, pod(&f, "x", "b"));
	assert_int_equal(count_entries(&f, b->ep.policy_id[SEG_DIR_INGRESS], SEG_DIR_INGRESS), 16);
	assert_int_equal(b->ep.port_mask[SEG_DIR_INGRESS], 0xffffu); /* k = 0..15 */
	assert_int_equal(probe(&f, "x", "a", "x", "b", 65535, IPPROTO_UDP).verdict,
			 SEG_VERDICT_ALLOW);
	assert_int_equal(probe(&f, "x", "a", "x", "b", 1, IPPROTO_UDP).verdict, SEG_VERDICT_ALLOW);
	assert_int_equal(probe(&f, "x", "a", "x", "b", 1, IPPROTO_TCP).verdict, SEG_VERDICT_DENY);

	c = seg_compiled_endpoint(f.c, pod(&f, "x", "c"));
	assert_int_equal(c->ep.port_mask[SEG_DIR_INGRESS], SEG_PMASK_ALLPORTS);
	assert_int_equal(count_entries(&f, c->ep.policy_id[SEG_DIR_INGRESS], SEG_DIR_INGRESS), 1);
	assert_int_equal(probe(&f, "x", "a", "x", "c", 4242, IPPROTO_SCTP).verdict,
			 SEG_VERDICT_ALLOW);
	assert_int_equal(probe(&f, "x", "a", "x", "c", 4242, IPPROTO_TCP).verdict,
			 SEG_VERDICT_DENY);

	d = seg_compiled_endpoint(f.c, pod(&f, "x", "d"));
	assert_int_equal(d->ep.port_mask[SEG_DIR_INGRESS], SEG_PMASK_ANYPROTO);
	for (size_t i = 0; i < f.c->npol; i++) {
		const struct seg_pol_entry *e = &f.c->pol[i];

		if (e->key.policy_id != d->ep.policy_id[SEG_DIR_INGRESS])
			continue;
		assert_int_equal(e->key.remote_id, SEG_ID_ANY);
		assert_int_equal(e->key.proto, 0);
		assert_int_equal(e->key.port_wild, 16);
	}
	assert_int_equal(probe(&f, "x", "a", "x", "d", 7, IPPROTO_ICMP).verdict, SEG_VERDICT_ALLOW);
	/* the four pods have four different rule sets: four policy ids */
	assert_int_not_equal(a->ep.policy_id[0], b->ep.policy_id[0]);
	assert_int_not_equal(c->ep.policy_id[0], d->ep.policy_id[0]);
	fx_free(&f);
}

static void test_named_ports(void **state)
{
	const char *yaml = NS("x", "{}") POD(
		"x", "w1", "{app: web}", "10.0.0.1",
		"[{name: web, containerPort: 8080}]") POD("x", "w2", "{app: web}", "10.0.0.2",
							  "[{name: web, containerPort: 9090}]")
		POD("x", "w3", "{app: web}", "10.0.0.3", "[{name: other, containerPort: 8080}]") POD(
			"x", "w4", "{app: web}", "10.0.0.4",
			"[{name: web, containerPort: 8080}]") POD("x", "cl", "{app: client}",
								  "10.0.0.9", "[]")
			NP("x", "in-web",
			   "{podSelector: {matchLabels: {app: web}}, ingress: [{ports: [{port: web}]}]}")
				NP("x", "out-web",
				   "{podSelector: {matchLabels: {app: client}}, policyTypes: [Egress], "
				   "egress: [{to: [{podSelector: {}}], ports: [{port: web}]}]}");
	const struct seg_ep_entry *w1, *w2, *w3, *w4;
	struct fx f;

	fx_load(&f, yaml, NULL);
	w1 = seg_compiled_endpoint(f.c, pod(&f, "x", "w1"));
	w2 = seg_compiled_endpoint(f.c, pod(&f, "x", "w2"));
	w3 = seg_compiled_endpoint(f.c, pod(&f, "x", "w3"));
	w4 = seg_compiled_endpoint(f.c, pod(&f, "x", "w4"));
	/* resolved per destination pod: 8080 and 9090 need two rule sets;
	 * w1 and w4 share one */
	assert_int_not_equal(w1->ep.policy_id[0], w2->ep.policy_id[0]);
	assert_int_equal(w1->ep.policy_id[0], w4->ep.policy_id[0]);
	/* w3 has no port named web: isolated, nothing matches */
	assert_int_equal(w3->ep.flags[0], SEG_EPF_ISOLATED);
	assert_int_equal(count_entries(&f, w3->ep.policy_id[0], 0), 0);
	assert_int_equal(probe(&f, "x", "w3", "x", "w1", 8080, IPPROTO_TCP).verdict,
			 SEG_VERDICT_ALLOW);
	assert_int_equal(probe(&f, "x", "w3", "x", "w1", 9090, IPPROTO_TCP).verdict,
			 SEG_VERDICT_DENY);
	assert_int_equal(probe(&f, "x", "w3", "x", "w2", 9090, IPPROTO_TCP).verdict,
			 SEG_VERDICT_ALLOW);
	assert_int_equal(probe(&f, "x", "w3", "x", "w2", 8080, IPPROTO_TCP).verdict,
			 SEG_VERDICT_DENY);
	assert_int_equal(probe(&f, "x", "w1", "x", "w3", 8080, IPPROTO_TCP).verdict,
			 SEG_VERDICT_DENY);
	/* egress: the client may reach each pod on that pod's own web port,
	 * though w1 and w2 have the same labels */
	assert_int_not_equal(ipc(&f, "10.0.0.1"), ipc(&f, "10.0.0.2"));
	assert_int_equal(ipc(&f, "10.0.0.1"), ipc(&f, "10.0.0.4"));
	assert_int_equal(
		probe(&f, "x", "cl", "x", "w1", 8080, IPPROTO_TCP).dir[SEG_DIR_EGRESS].verdict,
		SEG_VERDICT_ALLOW);
	assert_int_equal(
		probe(&f, "x", "cl", "x", "w1", 9090, IPPROTO_TCP).dir[SEG_DIR_EGRESS].verdict,
		SEG_VERDICT_DENY);
	assert_int_equal(
		probe(&f, "x", "cl", "x", "w2", 9090, IPPROTO_TCP).dir[SEG_DIR_EGRESS].verdict,
		SEG_VERDICT_ALLOW);
	assert_int_equal(
		probe(&f, "x", "cl", "x", "w2", 8080, IPPROTO_TCP).dir[SEG_DIR_EGRESS].verdict,
		SEG_VERDICT_DENY);
	assert_int_equal(
		probe(&f, "x", "cl", "x", "w3", 8080, IPPROTO_TCP).dir[SEG_DIR_EGRESS].verdict,
		SEG_VERDICT_DENY);
	fx_free(&f);
}

/* ---- probe order and attribution, reasons, audit, capacity -------------------------------- */

static void test_probe_order_and_reasons(void **state)
{
	const char *yaml = NS("x", "{}") NS("y", "{}") POD(
		"x", "a", "{app: a}", "10.0.0.1",
		"[]") POD("x", "b", "{app: b}", "10.0.0.2",
			  "[]") POD("x", "c", "{app: c}", "10.0.0.3",
				    "[]") POD("y", "b", "{app: b}", "10.0.1.2", "[]")
		NP("x", "wide",
		   "{podSelector: {matchLabels: {app: a}}, ingress: [{ports: [{port: 80, endPort: 95}]}]}")
			NP("x", "narrow",
			   "{podSelector: {matchLabels: {app: a}}, ingress: ["
			   "{from: [{podSelector: {matchLabels: {app: c}}}], ports: [{port: 81}]},"
			   "{from: [{podSelector: {matchLabels: {app: b}}}], ports: [{port: 85}]}]}")
				NP("x", "deny-all", "{podSelector: {matchLabels: {app: b}}}");
	struct seg_verdict v;
	char buf[128];
	struct fx f;

	fx_load(&f, yaml, NULL);
	/* 85 from x/b: exact port (k=0) before the 80-95 block (k=4) */
	v = probe(&f, "x", "b", "x", "a", 85, IPPROTO_TCP);
	assert_int_equal(v.verdict, SEG_VERDICT_ALLOW);
	seg_rule_describe(f.c, v.dir[SEG_DIR_INGRESS].rule_id, buf, sizeof(buf));
	assert_string_equal(buf, "x/narrow ingress rule 1 (from[0])");
	/* 81 from x/b: only the wide block (ANY) */
	v = probe(&f, "x", "b", "x", "a", 81, IPPROTO_TCP);
	seg_rule_describe(f.c, v.dir[SEG_DIR_INGRESS].rule_id, buf, sizeof(buf));
	assert_string_equal(buf, "x/wide ingress rule 0");
	/* 81 from x/c: the named identity before ANY */
	v = probe(&f, "x", "c", "x", "a", 81, IPPROTO_TCP);
	assert_int_equal(v.dir[SEG_DIR_INGRESS].rule_id, f.c->rules[1].rule_id);
	assert_string_equal(v.reason, "not isolated: no policy selects x/c for egress; "
				      "allowed by x/narrow ingress rule 0 (from[0])");
	assert_int_equal(v.dir[SEG_DIR_INGRESS].reason, SEG_R_ALLOW_RULE);
	/* texts from the issue */
	v = probe(&f, "x", "a", "x", "b", 80, IPPROTO_TCP);
	assert_int_equal(v.verdict, SEG_VERDICT_DENY);
	assert_int_equal(v.dir[SEG_DIR_INGRESS].reason, SEG_DROP_POLICY);
	assert_string_equal(v.reason, "isolated by x/deny-all (ingress); no rule allows");
	v = probe(&f, "x", "a", "y", "b", 80, IPPROTO_TCP);
	assert_int_equal(v.dir[SEG_DIR_INGRESS].reason, SEG_R_ALLOW_NOT_ISOLATED);
	assert_non_null(strstr(v.reason, "not isolated: no policy selects y/b for ingress"));
	v = probe(&f, "x", "a", "x", "a", 1, IPPROTO_TCP);
	assert_int_equal(v.verdict, SEG_VERDICT_ALLOW);
	assert_non_null(strstr(v.reason, "loopback"));
	/* the rule table */
	assert_int_equal(f.c->nrules, 3);
	assert_int_equal(seg_rule_get(f.c, 3)->rule, 1);
	assert_int_equal(seg_rule_get(f.c, 3)->peer, 0);
	assert_null(seg_rule_get(f.c, 0));
	fx_free(&f);
}

static void test_audit(void **state)
{
	const char *yaml =
		"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: aud, annotations: "
		"{seg.io/enforcement: audit}}\n"
		"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: enf, annotations: "
		"{seg.io/enforcement: enforce}}\n" NS("dft", "{}") POD(
			"aud", "a", "{}", "10.0.0.1", "[]") POD("enf", "a", "{}", "10.0.0.2", "[]")
			POD("dft", "a", "{}", "10.0.0.3", "[]")
				NP("aud", "deny-all", "{podSelector: {}}")
					NP("enf", "deny-all", "{podSelector: {}}")
						NP("dft", "deny-all", "{podSelector: {}}");
	struct seg_compile_opts o = { .audit_default = true };
	struct seg_verdict v;
	struct fx f, g;

	fx_load(&f, yaml, NULL);
	v = probe(&f, "enf", "a", "aud", "a", 80, IPPROTO_TCP);
	assert_int_equal(v.verdict, SEG_VERDICT_AUDIT);
	assert_int_equal(v.dir[SEG_DIR_INGRESS].reason, SEG_R_AUDIT);
	assert_string_equal(v.reason,
			    "not isolated: no policy selects enf/a for egress; "
			    "audit: isolated by aud/deny-all (ingress); no rule allows; passed");
	assert_int_equal(probe(&f, "aud", "a", "dft", "a", 80, IPPROTO_TCP).verdict,
			 SEG_VERDICT_DENY);
	assert_int_equal(probe(&f, "aud", "a", "enf", "a", 80, IPPROTO_TCP).verdict,
			 SEG_VERDICT_DENY);
	/* global default audit: the annotation "enforce" still enforces */
	fx_load(&g, yaml, &o);
	assert_int_equal(probe(&g, "aud", "a", "dft", "a", 80, IPPROTO_TCP).verdict,
			 SEG_VERDICT_AUDIT);
	assert_int_equal(probe(&g, "aud", "a", "enf", "a", 80, IPPROTO_TCP).verdict,
			 SEG_VERDICT_DENY);
	assert_true(seg_compiled_endpoint(g.c, pod(&g, "dft", "a"))->ep.flags[0] & SEG_EPF_AUDIT);
	assert_false(seg_compiled_endpoint(g.c, pod(&g, "enf", "a"))->ep.flags[0] & SEG_EPF_AUDIT);
	fx_free(&f);
	fx_free(&g);
}

static bool only_x(const struct seg_pod *p, void *ctx)
{
	return !strcmp(p->ns, ctx);
}

static void test_capacity_and_local(void **state)
{
	const char *yaml = NS("x", "{}") NS("y", "{}") POD("x", "a", "{}", "10.0.0.1", "[]") POD(
		"y", "a", "{}", "10.0.0.2", "[]")
		NP("x", "r", "{podSelector: {}, ingress: [{ports: [{port: 1, endPort: 1000}]}]}");
	struct seg_manifests *m = seg_manifests_new();
	const char *dup = NS("x", "{}") POD("x", "a", "{}", "10.0.0.1", "[]")
		POD("x", "b", "{}", "10.0.0.1", "[]");
	struct seg_compile_opts o = { .caps = { .policy = 4 } };
	struct seg_compiled *c = NULL;
	struct seg_diag d = {};

	assert_int_equal(seg_manifests_load_buf(m, "t.yaml", yaml, strlen(yaml), &d), 0);
	assert_int_equal(seg_compile(m, &o, &c, &d), -E2BIG);
	assert_non_null(strstr(d.msg, "seg_policy needs"));
	assert_non_null(strstr(d.msg, "capacity 4"));
	assert_non_null(c); /* the report is there to print */
	assert_true(c->caps.used[3] > 4);
	assert_int_equal(c->caps.cap[3], 4);
	assert_int_equal(c->caps.cap[1], SEG_MAX_IPCACHE);
	seg_compiled_free(c);

	/* endpoints only for local pods; remote pods still in the ipcache */
	o.caps.policy = 0;
	o.is_local = only_x;
	o.ctx = "x";
	assert_int_equal(seg_compile(m, &o, &c, &d), 0);
	assert_int_equal(c->neps, 1);
	assert_int_equal(c->nipc, 2);
	assert_null(seg_compiled_endpoint(c, seg_manifests_pod(m, "y", "a")));
	seg_compiled_free(c);
	seg_manifests_free(m);

	/* two running pods with one address: refused, naming both */
	m = seg_manifests_new();
	assert_non_null(m);
	assert_int_equal(seg_manifests_load_buf(m, "dup.yaml", dup, strlen(dup), &d), 0);
	assert_int_equal(seg_compile(m, NULL, &c, &d), -EINVAL);
	assert_null(c);
	assert_non_null(strstr(d.msg, "pods x/a and x/b share the address 10.0.0.1"));
	assert_non_null(strstr(d.msg, "dup.yaml:"));
	seg_manifests_free(m);
}

/* ---- diff ------------------------------------------------------------------------------- */

/* A fake data path: the maps as arrays, written only through the diff. */
struct fakedp {
	struct seg_ipc_entry ipc[64];
	struct seg_lpm_entry lpm[64];
	struct seg_pol_entry pol[512];
	struct {
		char pod[64];
		struct seg_endpoint ep;
	} eps[64];
	size_t nipc, nlpm, npol, neps, ops;
};

#define FAKE_FIND(arr, n, cond)              \
	({                                   \
		size_t i_;                   \
		for (i_ = 0; i_ < (n); i_++) \
			if (cond)            \
				break;       \
		i_;                          \
	})

static int f_ipc_set(void *ctx, const struct seg_compiled *c, const struct seg_ipc_entry *e)
{
	struct fakedp *f = ctx;
	size_t i = FAKE_FIND(f->ipc, f->nipc, !memcmp(&f->ipc[i_].addr, &e->addr, 16));

	f->ops++;
	f->ipc[i] = *e;
	f->nipc += i == f->nipc;
	return 0;
}

static int f_ipc_del(void *ctx, const struct in6_addr *a)
{
	struct fakedp *f = ctx;
	size_t i = FAKE_FIND(f->ipc, f->nipc, !memcmp(&f->ipc[i_].addr, a, 16));

	f->ops++;
	assert_true(i < f->nipc);
	f->ipc[i] = f->ipc[--f->nipc];
	return 0;
}

static int f_lpm_set(void *ctx, const struct seg_lpm_entry *e)
{
	struct fakedp *f = ctx;
	size_t i = FAKE_FIND(f->lpm, f->nlpm, !memcmp(&f->lpm[i_].key, &e->key, sizeof(e->key)));

	f->ops++;
	f->lpm[i] = *e;
	f->nlpm += i == f->nlpm;
	return 0;
}

static int f_lpm_del(void *ctx, const struct seg_lpm_key *k)
{
	struct fakedp *f = ctx;
	size_t i = FAKE_FIND(f->lpm, f->nlpm, !memcmp(&f->lpm[i_].key, k, sizeof(*k)));

	f->ops++;
	assert_true(i < f->nlpm);
	f->lpm[i] = f->lpm[--f->nlpm];
	return 0;
}

static int f_pol_set(void *ctx, const struct seg_pol_entry *e)
{
	struct fakedp *f = ctx;
	size_t i = FAKE_FIND(f->pol, f->npol, !memcmp(&f->pol[i_].key, &e->key, sizeof(e->key)));

	f->ops++;
	assert_true(i < 512);
	f->pol[i] = *e;
	f->npol += i == f->npol;
	return 0;
}

static int f_pol_del(void *ctx, const struct seg_policy_key *k)
{
	struct fakedp *f = ctx;
	size_t i = FAKE_FIND(f->pol, f->npol, !memcmp(&f->pol[i_].key, k, sizeof(*k)));

	f->ops++;
	assert_true(i < f->npol);
	f->pol[i] = f->pol[--f->npol];
	return 0;
}

static int f_ep_set(void *ctx, const struct seg_compiled *c, const struct seg_ep_entry *e)
{
	const struct seg_pod *p = &c->m->pods[e->pod];
	struct fakedp *f = ctx;
	char name[64];
	size_t i;

	snprintf(name, sizeof(name), "%s/%s", p->ns, p->name);
	i = FAKE_FIND(f->eps, f->neps, !strcmp(f->eps[i_].pod, name));
	f->ops++;
	snprintf(f->eps[i].pod, sizeof(f->eps[i].pod), "%s", name);
	f->eps[i].ep = e->ep;
	f->neps += i == f->neps;
	return 0;
}

static int f_ep_del(void *ctx, const struct seg_compiled *c, const struct seg_ep_entry *e)
{
	const struct seg_pod *p = &c->m->pods[e->pod];
	struct fakedp *f = ctx;
	char name[64];
	size_t i;

	snprintf(name, sizeof(name), "%s/%s", p->ns, p->name);
	i = FAKE_FIND(f->eps, f->neps, !strcmp(f->eps[i_].pod, name));
	f->ops++;
	assert_true(i < f->neps);
	f->eps[i] = f->eps[--f->neps];
	return 0;
}

static const struct seg_diff_ops fake_ops = {
	.ipcache_set = f_ipc_set,
	.ipcache_del = f_ipc_del,
	.lpm_set = f_lpm_set,
	.lpm_del = f_lpm_del,
	.policy_set = f_pol_set,
	.policy_del = f_pol_del,
	.endpoint_set = f_ep_set,
	.endpoint_del = f_ep_del,
};

/* The fake maps hold exactly c's state. */
static void fake_equals(const struct fakedp *f, const struct fx *x)
{
	const struct seg_compiled *c = x->c;

	assert_int_equal(f->nipc, c->nipc);
	assert_int_equal(f->nlpm, c->nlpm);
	assert_int_equal(f->npol, c->npol);
	assert_int_equal(f->neps, c->neps);
	for (size_t i = 0; i < c->npol; i++) {
		size_t j = FAKE_FIND(f->pol, f->npol,
				     !memcmp(&f->pol[i_], &c->pol[i], sizeof(c->pol[i])));

		assert_true(j < f->npol);
	}
	for (size_t i = 0; i < c->nipc; i++) {
		size_t j =
			FAKE_FIND(f->ipc, f->nipc, !memcmp(&f->ipc[i_].addr, &c->ipc[i].addr, 16));

		assert_true(j < f->nipc);
		assert_memory_equal(&f->ipc[j].val, &c->ipc[i].val, sizeof(c->ipc[i].val));
	}
	for (size_t i = 0; i < c->nlpm; i++) {
		size_t j = FAKE_FIND(f->lpm, f->nlpm,
				     !memcmp(&f->lpm[i_], &c->lpm[i], sizeof(c->lpm[i])));

		assert_true(j < f->nlpm);
	}
	for (size_t i = 0; i < c->neps; i++) {
		const struct seg_pod *p = &x->m->pods[c->eps[i].pod];
		char name[64];
		size_t j;

		snprintf(name, sizeof(name), "%s/%s", p->ns, p->name);
		j = FAKE_FIND(f->eps, f->neps, !strcmp(f->eps[i_].pod, name));
		assert_true(j < f->neps);
		assert_memory_equal(&f->eps[j].ep, &c->eps[i].ep, sizeof(c->eps[i].ep));
	}
}

#define DIFF_CLUSTER(b_app)                                                                            \
	NS("x", "{}")                                                                                  \
	NS("y", "{}")                                                                                  \
	POD("x", "a", "{app: web}", "10.0.0.1",                                                        \
	    "[]") POD("x", "b", "{app: " b_app "}", "10.0.0.2",                                        \
		      "[]") POD("x", "c", "{app: db}", "10.0.0.3",                                     \
				"[]") POD("y", "a", "{app: web}", "10.0.1.1",                          \
					  "[]") POD("y", "b", "{app: db}", "10.0.1.2", "[]")           \
		POD("y", "c", "{app: cache}", "10.0.1.3", "[]") NP(                                    \
			"x", "db",                                                                     \
			"{podSelector: {matchLabels: {app: db}}, ingress: [{from: [{podSelector: "     \
			"{matchLabels: {app: web}}}], ports: [{port: 5432}]}]}")                       \
			NP("y", "all",                                                                 \
			   "{podSelector: {}, ingress: [{from: [{namespaceSelector: {}, podSelector: " \
			   "{matchLabels: {app: web}}}, {ipBlock: {cidr: 192.168.0.0/16}}]}]}")

static void test_diff(void **state)
{
	struct seg_compile_opts o = {};
	struct fakedp *f = calloc(1, sizeof(*f));
	struct fx v1, v2, v3;
	size_t full;

	assert_non_null(f);
	fx_load(&v1, DIFF_CLUSTER("web"), NULL);
	assert_int_equal(seg_compiled_diff(NULL, v1.c, &fake_ops, f), 0);
	full = f->ops;
	assert_int_equal(full, v1.c->nipc + v1.c->nlpm + v1.c->npol + v1.c->neps);
	fake_equals(f, &v1);

	/* nothing changed: no operation */
	o.prev = v1.c->numbering;
	fx_load(&v2, DIFF_CLUSTER("web"), &o);
	f->ops = 0;
	assert_int_equal(seg_compiled_diff(v1.c, v2.c, &fake_ops, f), 0);
	assert_int_equal(f->ops, 0);

	/* x/b: web -> db. Only x/b's ipcache entry and endpoint change: its
	 * new identity is x/c's, it joins x/c's policy id, and the entries
	 * naming x's web identity stay since x/a still has it. */
	o.prev = v2.c->numbering;
	fx_load(&v3, DIFF_CLUSTER("db"), &o);
	f->ops = 0;
	assert_int_equal(seg_compiled_diff(v2.c, v3.c, &fake_ops, f), 0);
	fake_equals(f, &v3);
	assert_int_equal(f->ops, 2);
	assert_int_equal(ident_of(&v3, "x", "b"), ident_of(&v3, "x", "c"));
	fx_free(&v1);
	fx_free(&v2);
	fx_free(&v3);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_selectors),
		cmocka_unit_test(test_identities),
		cmocka_unit_test(test_ipblock_partition),
		cmocka_unit_test(test_ipblock_order),
		cmocka_unit_test(test_same_peers_other_ports),
		cmocka_unit_test(test_port_ranges),
		cmocka_unit_test(test_named_ports),
		cmocka_unit_test(test_probe_order_and_reasons),
		cmocka_unit_test(test_audit),
		cmocka_unit_test(test_capacity_and_local),
		cmocka_unit_test(test_diff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
