// SPDX-License-Identifier: GPL-2.0-only
/*
 * seg_compile_update() against seg_compile(): a generated cluster (pods
 * with labels, named ports and addresses, some inside ipBlocks; namespaces
 * with labels and audit; policies with pod, namespace and ipBlock peers,
 * numbered, named and ranged ports, both directions) takes hundreds of
 * random changes: pods relabelled (to label sets that exist and to fresh
 * ones, in place and in new manifests), added, deleted, given other named
 * port numbers; namespace labels changed; policies added, deleted,
 * replaced, changed in one port only (selector and peers kept: the
 * full compile then reuses the pod identities, and the sets of the other
 * policies copy their entries), and changed in what selects pods only
 * (pod selector, policyTypes, an ingress port numbered or named: the
 * other pods of that namespace keep their selections).
 * After each, the update must equal a full compile of the same manifests:
 * the same verdict and reason for every pod pair on several ports and
 * protocols and from addresses outside the cluster, and the same entries
 * (endpoints, policy sets, ipcache, LPM) once identity and policy numbers
 * are replaced by what they stand for. Pod-only changes must take the
 * incremental path; the others the full one.
 *
 *   test_policy_incr [SEED] [STEPS]
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

#define MAX_PODS 64
#define MAX_POLS 64
#define NNS 4

static unsigned int seed = 1, seed0 = 1, steps = 100;

static unsigned int rnd(unsigned int n)
{
	/* xorshift: the same sequence for a seed everywhere */
	seed ^= seed << 13;
	seed ^= seed >> 17;
	seed ^= seed << 5;
	return n ? seed % n : 0;
}

struct mpod {
	bool live;
	unsigned int ns, app, tier, http; /* tier 3: no tier label */
	unsigned int ip;
};

struct model {
	unsigned int ns_team[NNS];
	bool ns_audit[NNS];
	struct mpod pods[MAX_PODS];
	char *pols[MAX_POLS]; /* YAML, NULL: none */
};

struct buf {
	char *p;
	size_t n, cap;
};

__attribute__((format(printf, 2, 3))) static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
		va_end(ap);
		if (b->p && (size_t)n < b->cap - b->n)
			break;
		b->cap = b->cap ? b->cap * 2 : 65536;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	b->n += (size_t)n;
}

static const char *const tiers[] = { "front", "back", "db" };

static void pod_labels(struct buf *b, const struct mpod *p)
{
	put(b, "{app: a%u", p->app);
	if (p->tier < 3)
		put(b, ", tier: %s", tiers[p->tier]);
	put(b, "}");
}

static char *model_yaml(const struct model *md)
{
	struct buf b = {};

	for (unsigned int i = 0; i < NNS; i++) {
		put(&b,
		    "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: n%u, labels: {team: t%u}",
		    i, md->ns_team[i]);
		if (md->ns_audit[i])
			put(&b, ", annotations: {seg.io/enforcement: audit}");
		put(&b, "}\n");
	}
	for (unsigned int i = 0; i < MAX_PODS; i++) {
		const struct mpod *p = &md->pods[i];

		if (!p->live)
			continue;
		put(&b,
		    "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p%u, namespace: n%u, labels: ",
		    i, p->ns);
		pod_labels(&b, p);
		put(&b,
		    "}\nspec: {containers: [{name: c, ports: [{name: http, containerPort: %u}, "
		    "{name: dns, containerPort: 53, protocol: UDP}]}]}\nstatus: {podIP: 10.%u.0.%u}\n",
		    p->http, p->ip / 200, p->ip % 200 + 1);
	}
	for (unsigned int i = 0; i < MAX_POLS; i++) {
		if (md->pols[i])
			put(&b, "%s", md->pols[i]);
	}
	return b.p;
}

static char *random_policy(unsigned int k)
{
	struct buf b = {};
	unsigned int ns = rnd(NNS), i;

	put(&b,
	    "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
	    "metadata: {name: pol%u, namespace: n%u}\nspec:\n",
	    k, ns);
	switch (rnd(4)) {
	case 0:
		put(&b, "  podSelector: {}\n");
		break;
	case 1:
		put(&b, "  podSelector: {matchExpressions: [{key: tier, operator: %s}]}\n",
		    rnd(2) ? "Exists" : "DoesNotExist");
		break;
	default:
		put(&b, "  podSelector: {matchLabels: {app: a%u}}\n", rnd(4));
	}
	unsigned int nr = rnd(4);
	bool types_only = nr == 3, egress = rnd(3) == 0, types = egress && rnd(2);

	if (types_only || types)
		put(&b, "  policyTypes: [Ingress%s]\n", egress ? ", Egress" : "");
	if (types_only)
		nr = 0;
	else if (nr)
		put(&b, "  ingress:\n");
	for (unsigned int r = 0; r < nr; r++) {
		switch (rnd(7)) {
		case 0:
			put(&b, "  - from: [{podSelector: {matchLabels: {app: a%u}}}]\n", rnd(4));
			break;
		case 1:
			put(&b, "  - from: [{namespaceSelector: {matchLabels: {team: t%u}}}]\n",
			    rnd(3));
			break;
		case 2:
			put(&b,
			    "  - from: [{namespaceSelector: {}, podSelector: {matchExpressions: "
			    "[{key: app, operator: In, values: [a%u, a%u]}]}}]\n",
			    rnd(4), rnd(4));
			break;
		case 3:
			i = rnd(2);
			put(&b,
			    "  - from: [{ipBlock: {cidr: 10.%u.0.0/16, except: [10.%u.0.%u/30]}}]\n",
			    i, i, 4 * rnd(8));
			break;
		case 4:
			put(&b, "  - {}\n");
			continue;
		case 5:
			put(&b,
			    "  - from: [{podSelector: {matchLabels: {tier: %s}}}, "
			    "{podSelector: {matchLabels: {app: a%u}}}]\n",
			    tiers[rnd(3)], rnd(4));
			break;
		default:
			put(&b, "  - from: [{podSelector: {}}]\n");
		}
		switch (rnd(5)) {
		case 0:
			put(&b, "    ports: [{port: 80}]\n");
			break;
		case 1:
			put(&b, "    ports: [{port: http}]\n");
			break;
		case 2:
			put(&b, "    ports: [{port: 80, endPort: %u}, {protocol: UDP, port: 53}]\n",
			    81 + rnd(20));
			break;
		case 3:
			put(&b, "    ports: [{protocol: UDP}]\n");
			break;
		default:
			break;
		}
	}
	if (egress) {
		put(&b, "  egress:\n");
		switch (rnd(4)) {
		case 0:
			put(&b, "  - to: [{podSelector: {matchLabels: {tier: db}}}]\n"
				"    ports: [{port: dns, protocol: UDP}]\n");
			break;
		case 1:
			put(&b, "  - ports: [{port: http}]\n");
			break;
		case 2:
			put(&b, "  - to: [{namespaceSelector: {matchLabels: {team: t%u}}}]\n",
			    rnd(3));
			break;
		default:
			put(&b, "  - to: [{ipBlock: {cidr: 10.0.0.0/8}}]\n");
		}
	}
	return b.p;
}

static void random_pod(struct model *md, unsigned int i)
{
	struct mpod *p = &md->pods[i];

	p->live = true;
	p->ns = rnd(NNS);
	p->app = rnd(5);
	p->tier = rnd(4);
	p->http = rnd(3) ? 8080 : 8081;
	p->ip = i; /* 10.0.0.x and 10.0.1.x: some inside the ipBlocks */
}

/* ---- comparing two compiles up to numbering -------------------------------------- */

struct strs {
	char **v;
	size_t n, cap;
};

static void strs_add(struct strs *s, char *x)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		assert_non_null(s->v);
	}
	s->v[s->n++] = x;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *id_text(const struct seg_compiled *c, __u32 id)
{
	const struct seg_identity *x = seg_identity_get(c, id);

	if (id == 0)
		return "ANY";
	if (id == 2)
		return "WORLD";
	assert_non_null(x);
	return x->key;
}

/* Every entry, numbers replaced by what they stand for. */
static void describe(const struct seg_compiled *c, struct strs *out)
{
	char rule[256], *s;

	for (size_t i = 0; i < c->neps; i++) {
		const struct seg_ep_entry *e = &c->eps[i];
		const struct seg_pod *p = &c->m->pods[e->pod];

		for (int d = 0; d < SEG_DIR_MAX; d++) {
			assert_true(asprintf(&s, "ep %s/%s %d id=%s flags=%u mask=%#x nsel=%zu",
					     p->ns, p->name, d, id_text(c, e->ep.identity),
					     e->ep.flags[d], e->ep.port_mask[d], e->nsel[d]) > 0);
			strs_add(out, s);
			/* the set's entries, as this endpoint sees them */
			for (size_t k = 0; e->ep.policy_id[d] && k < c->npol; k++) {
				const struct seg_pol_entry *pe = &c->pol[k];

				if (pe->key.policy_id != e->ep.policy_id[d] || pe->key.dir != d)
					continue;
				seg_rule_describe(c, pe->val.rule_id, rule, sizeof(rule));
				assert_true(asprintf(&s, "pol %s/%s %d %s %u/%u/%u %s %u", p->ns,
						     p->name, d, id_text(c, pe->key.remote_id),
						     pe->key.port, pe->key.proto, pe->key.port_wild,
						     rule, pe->val.action) > 0);
				strs_add(out, s);
			}
		}
	}
	for (size_t i = 0; i < c->nipc; i++) {
		char a[INET6_ADDRSTRLEN];

		assert_true(
			asprintf(&s, "ipc %s %s %s/%s", seg_addr_str(&c->ipc[i].addr, a, sizeof(a)),
				 id_text(c, c->ipc[i].val.identity), c->m->pods[c->ipc[i].pod].ns,
				 c->m->pods[c->ipc[i].pod].name) > 0);
		strs_add(out, s);
	}
	for (size_t i = 0; i < c->nlpm; i++) {
		char a[INET6_ADDRSTRLEN];
		struct in6_addr x;

		memcpy(&x, c->lpm[i].key.addr, sizeof(x));
		assert_true(asprintf(&s, "lpm %s/%u %s", seg_addr_str(&x, a, sizeof(a)),
				     c->lpm[i].key.prefixlen,
				     id_text(c, c->lpm[i].val.identity)) > 0);
		strs_add(out, s);
	}
	for (size_t i = 0; i < c->nids; i++) {
		assert_true(asprintf(&s, "id %s", c->ids[i].key) > 0);
		strs_add(out, s);
	}
	qsort(out->v, out->n, sizeof(*out->v), str_cmp);
}

static void strs_free(struct strs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static void same_entries(const struct seg_compiled *a, const struct seg_compiled *b,
			 unsigned int step)
{
	struct strs x = {}, y = {};

	assert_int_equal(a->npol, b->npol);
	assert_int_equal(a->neps, b->neps);
	assert_int_equal(a->nipc, b->nipc);
	assert_int_equal(a->nlpm, b->nlpm);
	assert_int_equal(a->nids, b->nids);
	describe(a, &x);
	describe(b, &y);
	assert_int_equal(x.n, y.n);
	for (size_t i = 0; i < x.n; i++) {
		if (strcmp(x.v[i], y.v[i]))
			fail_msg("step %u: update has '%s', full compile '%s'", step, x.v[i],
				 y.v[i]);
	}
	strs_free(&x);
	strs_free(&y);
}

static void same_verdicts(const struct seg_compiled *a, const struct seg_compiled *b,
			  unsigned int step)
{
	static const __u16 ports[] = { 53, 80, 90, 8080, 8081 };
	static const char *const outside[] = { "10.0.0.5", "10.1.0.9", "10.0.0.200", "192.0.2.1" };
	const struct seg_manifests *m = a->m;
	struct seg_verdict va, vb;

	assert_ptr_equal(a->m, b->m);
	for (size_t i = 0; i < m->npods; i++) {
		for (size_t j = 0; j < m->npods; j++) {
			for (size_t k = 0; k < sizeof(ports) / sizeof(ports[0]); k++) {
				for (int u = 0; u < 2; u++) {
					__u8 proto = u ? IPPROTO_UDP : IPPROTO_TCP;
					int ea = seg_eval_pods(a, &m->pods[i], &m->pods[j], 0,
							       ports[k], proto, &va);
					int eb = seg_eval_pods(b, &m->pods[i], &m->pods[j], 0,
							       ports[k], proto, &vb);

					assert_int_equal(ea, eb);
					if (va.verdict != vb.verdict ||
					    strcmp(va.reason, vb.reason))
						fail_msg(
							"step %u: %s/%s -> %s/%s %u/%u: update %u '%s', full %u '%s'",
							step, m->pods[i].ns, m->pods[i].name,
							m->pods[j].ns, m->pods[j].name, ports[k],
							proto, va.verdict, va.reason, vb.verdict,
							vb.reason);
				}
			}
		}
		for (size_t o = 0; o < sizeof(outside) / sizeof(outside[0]); o++) {
			struct seg_endpoint_ref s = {}, d = { .pod = &m->pods[i] };

			assert_int_equal(seg_addr_parse(outside[o], &s.addr), 0);
			d.addr = m->pods[i].addrs[0];
			assert_int_equal(seg_eval(a, &s, &d, 80, IPPROTO_TCP, &va), 0);
			assert_int_equal(seg_eval(b, &s, &d, 80, IPPROTO_TCP, &vb), 0);
			assert_int_equal(va.verdict, vb.verdict);
			assert_string_equal(va.reason, vb.reason);
		}
	}
}

/* ---- the run ------------------------------------------------------------------------- */

/* Pods whose name ends in 3 or 7 are on another node: no endpoint. */
static bool local_even(const struct seg_pod *p, void *ctx)
{
	char last = p->name[strlen(p->name) - 1];

	(void)ctx;
	return last != '3' && last != '7';
}

static struct seg_manifests *load(const struct model *md)
{
	struct seg_manifests *m = seg_manifests_new();
	struct seg_diag d = {};
	char *y = model_yaml(md);

	assert_non_null(m);
	if (seg_manifests_load_buf(m, "gen.yaml", y, strlen(y), &d))
		fail_msg("load: %s\n%s", d.msg, y);
	free(y);
	return m;
}

enum change {
	CH_RELABEL,
	CH_RELABEL_INPLACE,
	CH_ADD,
	CH_DEL,
	CH_PORTS,
	CH_NS,
	CH_POL_ADD,
	CH_POL_DEL,
	CH_POL_CHANGE,
	CH_POL_PORT,
	CH_POL_PEER,
	CH_POL_SEL,
	CH_MAX
};

/* Port 80 <-> 79 everywhere in a policy's text (selector and peers stay):
 * how many moved. */
static unsigned int toggle_port(char *pol)
{
	unsigned int n = 0;

	for (char *p = pol; (p = strstr(p, "port: ")); p += 6) {
		if (!strncmp(p + 6, "80", 2) && (p[8] == '}' || p[8] == ','))
			memcpy(p + 6, "79", 2), n++;
		else if (!strncmp(p + 6, "79", 2) && (p[8] == '}' || p[8] == ','))
			memcpy(p + 6, "80", 2), n++;
	}
	return n;
}

/* The policy's first from/to list gains a peer, or loses the one this
 * added: the rule keys change (a rule's peer count), the name stays. NULL:
 * the policy has no list with peers. */
static char *toggle_peer(const char *pol)
{
	static const char extra[] = "{podSelector: {matchLabels: {tier: db}}}, ";
	const char *p = strstr(pol, "from: [");
	char *out;
	size_t at;

	if (!p)
		p = strstr(pol, "to: [");
	if (!p)
		return NULL;
	at = (size_t)(strchr(p, '[') + 1 - pol);
	if (!strncmp(pol + at, extra, strlen(extra))) {
		out = strdup(pol);
		if (out)
			memmove(out + at, out + at + strlen(extra),
				strlen(out + at + strlen(extra)) + 1);
	} else if (asprintf(&out, "%.*s%s%s", (int)at, pol, extra, pol + at) < 0) {
		out = NULL;
	}
	assert_non_null(out);
	return out;
}

/* s with the first from replaced by to; NULL when s has no from. */
static char *replace_first(const char *s, const char *from, const char *to)
{
	const char *p = strstr(s, from);
	char *out;

	if (!p)
		return NULL;
	if (asprintf(&out, "%.*s%s%s", (int)(p - s), s, to, p + strlen(from)) < 0)
		out = NULL;
	assert_non_null(out);
	return out;
}

/* What selects pods, not the rules: the policy's pod selector, its
 * policyTypes, or an ingress port between numbered and named (a named
 * one makes the pod's named ports part of its selection's signature).
 * The rules' peers stay, so a full compile reuses the pod identities and
 * every other namespace keeps its selections. NULL: nothing to change. */
static char *toggle_sel(const char *pol)
{
	static const char *const sels[] = {
		"  podSelector: {}\n",
		"  podSelector: {matchLabels: {app: a1}}\n",
		"  podSelector: {matchExpressions: [{key: tier, operator: Exists}]}\n",
	};
	const char *line = strstr(pol, "\n  podSelector: ");
	unsigned int how = rnd(3);
	size_t len;

	assert_non_null(line);
	line++;
	len = (size_t)(strchr(line, '\n') + 1 - line);

	/* types given where the egress rules already imply them: no change */
	if (how == 1 && !strstr(pol, "  policyTypes: ") && strstr(pol, "  egress:\n"))
		how = 0;
	switch (how) {
	case 0: {
		char cur[160];
		unsigned int j = rnd(3);

		assert_true(len < sizeof(cur));
		memcpy(cur, line, len);
		cur[len] = '\0';
		if (!strcmp(cur, sels[j]))
			j = (j + 1) % 3;
		return replace_first(pol, cur, sels[j]);
	}
	case 1:
		if (strstr(pol, "  policyTypes: [Ingress]\n"))
			return replace_first(pol, "  policyTypes: [Ingress]\n",
					     "  policyTypes: [Ingress, Egress]\n");
		if (strstr(pol, "  policyTypes: [Ingress, Egress]\n"))
			return replace_first(pol, "  policyTypes: [Ingress, Egress]\n",
					     "  policyTypes: [Ingress]\n");
		return replace_first(pol, "  podSelector: ",
				     "  policyTypes: [Ingress, Egress]\n  podSelector: ");
	default:
		if (strstr(pol, "    ports: [{port: 80}]\n"))
			return replace_first(pol, "    ports: [{port: 80}]\n",
					     "    ports: [{port: http}]\n");
		return replace_first(pol, "    ports: [{port: http}]\n",
				     "    ports: [{port: 80}]\n");
	}
}

/* Policy i as rewrite makes it (NULL from rewrite: nothing to change);
 * true when it changed. */
static bool pol_rewrite(struct model *md, unsigned int i, char *(*rewrite)(const char *))
{
	char *t = md->pols[i] ? rewrite(md->pols[i]) : NULL;

	if (!t)
		return false;
	free(md->pols[i]);
	md->pols[i] = t;
	return true;
}

static unsigned int live_pod(const struct model *md)
{
	for (;;) {
		unsigned int i = rnd(MAX_PODS);

		if (md->pods[i].live)
			return i;
	}
}

static void test_random_changes(void **state)
{
	struct seg_compile_opts o = { .is_local = local_even };
	struct model md = {};
	struct seg_manifests *m;
	struct seg_compiled *c, *full;
	struct seg_diag d = {};
	unsigned int counts[CH_MAX] = {}, incr = 0, reused = 0, copied = 0, taken = 0;

	(void)state;
	for (unsigned int i = 0; i < NNS; i++)
		md.ns_team[i] = i % 3;
	md.ns_audit[NNS - 1] = true;
	for (unsigned int i = 0; i < 40; i++)
		random_pod(&md, i);
	for (unsigned int i = 0; i < 30; i++)
		md.pols[i] = random_policy(i);
	m = load(&md);
	if (seg_compile(m, &o, &c, &d))
		fail_msg("compile: %s", d.msg);
	for (unsigned int step = 0; step < steps; step++) {
		enum change ch = (enum change)rnd(CH_MAX + 2);
		struct seg_manifests *m2 = NULL;
		struct seg_compiled *c2;
		unsigned int i;
		bool pods_only = true;

		if (ch >= CH_MAX)
			ch = rnd(2) ? CH_RELABEL : CH_RELABEL_INPLACE;
		counts[ch]++;
		switch (ch) {
		case CH_RELABEL:
			i = live_pod(&md);
			md.pods[i].app = rnd(6); /* a5: a label set nobody has */
			md.pods[i].tier = rnd(4);
			break;
		case CH_RELABEL_INPLACE:
			i = live_pod(&md);
			md.pods[i].app = rnd(6);
			break;
		case CH_ADD:
			for (i = 0; i < MAX_PODS && md.pods[i].live; i++)
				;
			if (i < MAX_PODS)
				random_pod(&md, i);
			break;
		case CH_DEL:
			md.pods[live_pod(&md)].live = false;
			break;
		case CH_PORTS:
			i = live_pod(&md);
			md.pods[i].http = md.pods[i].http == 8080 ? 8081 : 8080;
			break;
		case CH_NS:
			i = rnd(NNS);
			md.ns_team[i] = (md.ns_team[i] + 1) % 3;
			pods_only = false;
			break;
		case CH_POL_ADD:
			for (i = 0; i < MAX_POLS && md.pols[i]; i++)
				;
			if (i < MAX_POLS)
				md.pols[i] = random_policy(i);
			pods_only = false;
			break;
		case CH_POL_DEL:
			i = rnd(MAX_POLS);
			pods_only = !md.pols[i];
			free(md.pols[i]);
			md.pols[i] = NULL;
			break;
		case CH_POL_CHANGE: /* same name, new selector, peers and ports */
			i = rnd(MAX_POLS);
			pods_only = !md.pols[i];
			if (md.pols[i]) {
				free(md.pols[i]);
				md.pols[i] = random_policy(i);
			}
			break;
		case CH_POL_PORT: /* the same selector and peers, a port moved */
			i = rnd(MAX_POLS);
			pods_only = !md.pols[i] || !toggle_port(md.pols[i]);
			break;
		case CH_POL_SEL: /* what selects pods changes, the rules stay */
			i = rnd(MAX_POLS);
			pods_only = !pol_rewrite(&md, i, toggle_sel);
			break;
		case CH_POL_PEER: /* a rule gains or loses a peer */
			i = rnd(MAX_POLS);
			pods_only = !pol_rewrite(&md, i, toggle_peer);
			break;
		default:
			break;
		}
		if (ch == CH_RELABEL_INPLACE) {
			/* the same manifests object, the pod's labels changed in place */
			char name[32], app[8];
			const char *names[] = { name };
			struct seg_change chg = { .pods = names, .npods = 1 };
			struct seg_pod *p = NULL;

			for (size_t k = 0; k < m->npods; k++) {
				snprintf(name, sizeof(name), "p%u", i);
				if (!strcmp(m->pods[k].name, name))
					p = &m->pods[k];
			}
			assert_non_null(p);
			snprintf(name, sizeof(name), "n%u/p%u", md.pods[i].ns, i);
			snprintf(app, sizeof(app), "a%u", md.pods[i].app);
			for (size_t k = 0; k < p->labels.n; k++) {
				if (!strcmp(p->labels.v[k].key, "app")) {
					free(p->labels.v[k].val);
					p->labels.v[k].val = strdup(app);
				}
			}
			if (seg_compile_update(c, m, &chg, &o, &c2, &d))
				fail_msg("step %u: update: %s", step, d.msg);
		} else {
			m2 = load(&md);
			if (seg_compile_update(c, m2, NULL, &o, &c2, &d))
				fail_msg("step %u: update: %s", step, d.msg);
		}
		assert_int_equal(seg_compiled_updated(c2), pods_only);
		incr += seg_compiled_updated(c2);
		reused += seg_compiled_ids_reused(c2);
		copied += seg_compiled_sets_copied(c2) > 0;
		taken += seg_compiled_rules_taken(c2);
		/* a port moved keeps the rule keys: the rule table is prev's */
		if (ch == CH_POL_PORT && !pods_only)
			assert_true(seg_compiled_rules_taken(c2));
		if (ch == CH_POL_PEER && !pods_only)
			assert_false(seg_compiled_rules_taken(c2));
		if (seg_compile(m2 ? m2 : m, &o, &full, &d))
			fail_msg("step %u: compile: %s", step, d.msg);
		same_verdicts(c2, full, step);
		same_entries(c2, full, step);
		seg_compiled_free(full);
		seg_compiled_free(c);
		c = c2;
		if (m2) {
			seg_manifests_free(m);
			m = m2;
		}
	}
	print_message(
		"seed %u: %u steps, %u incremental, %u full with pod identities reused (%u copying "
		"unchanged sets), %u taking the rule table; relabel %u (+%u in place), add %u, del %u, ports %u, ns %u, "
		"policy add %u, del %u, change %u, port %u, peer %u, selection %u\n",
		seed0, steps, incr, reused, copied, taken, counts[CH_RELABEL],
		counts[CH_RELABEL_INPLACE], counts[CH_ADD], counts[CH_DEL], counts[CH_PORTS],
		counts[CH_NS], counts[CH_POL_ADD], counts[CH_POL_DEL], counts[CH_POL_CHANGE],
		counts[CH_POL_PORT], counts[CH_POL_PEER], counts[CH_POL_SEL]);
	assert_true(incr > steps / 2);
	/* policy changes that leave identity keys alone reuse them, and the
	 * sets of the policies they leave alone */
	assert_true(steps < 50 || reused > 0);
	assert_true(steps < 50 || copied > 0);
	seg_compiled_free(c);
	seg_manifests_free(m);
	for (unsigned int i = 0; i < MAX_POLS; i++)
		free(md.pols[i]);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_changes),
	};

	if (argc > 1)
		seed = (unsigned int)strtoul(argv[1], NULL, 10) ?: 1;
	seed0 = seed;
	if (argc > 2)
		steps = (unsigned int)strtoul(argv[2], NULL, 10);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
