// SPDX-License-Identifier: GPL-2.0-only
/* Parsed Kubernetes objects: lifetime, lookups, label selector semantics. */
#include "policy.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

struct seg_manifests *seg_manifests_new(void)
{
	return calloc(1, sizeof(struct seg_manifests));
}

static void labels_free(struct seg_labels *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].val);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static void selector_free(struct seg_selector *s)
{
	labels_free(&s->match);
	for (size_t i = 0; i < s->nexprs; i++) {
		free(s->exprs[i].key);
		for (size_t j = 0; j < s->exprs[i].nvalues; j++)
			free(s->exprs[i].values[j]);
		free(s->exprs[i].values);
	}
	free(s->exprs);
	memset(s, 0, sizeof(*s));
}

static void rule_free(struct seg_rule *r)
{
	for (size_t i = 0; i < r->npeers; i++) {
		selector_free(&r->peers[i].pod_sel);
		selector_free(&r->peers[i].ns_sel);
		free(r->peers[i].block.except);
		free(r->peers[i].block.except_plen);
	}
	free(r->peers);
	for (size_t i = 0; i < r->nports; i++)
		free(r->ports[i].name);
	free(r->ports);
}

void seg_namespace_clear(struct seg_namespace *ns)
{
	free(ns->name);
	labels_free(&ns->labels);
}

void seg_pod_clear(struct seg_pod *p)
{
	free(p->ns);
	free(p->name);
	labels_free(&p->labels);
	for (size_t i = 0; i < p->nports; i++)
		free(p->ports[i].name);
	free(p->ports);
}

void seg_netpol_clear(struct seg_netpol *np)
{
	free(np->ns);
	free(np->name);
	selector_free(&np->pod_sel);
	for (int d = 0; d < SEG_DIR_MAX; d++) {
		for (size_t i = 0; i < np->nrules[d]; i++)
			rule_free(&np->rules[d][i]);
		free(np->rules[d]);
	}
}

void seg_manifests_free(struct seg_manifests *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nnss; i++)
		seg_namespace_clear(&m->nss[i]);
	for (size_t i = 0; i < m->npods; i++)
		seg_pod_clear(&m->pods[i]);
	for (size_t i = 0; i < m->npols; i++)
		seg_netpol_clear(&m->pols[i]);
	for (size_t i = 0; i < m->nfiles; i++)
		free(m->files[i]);
	free(m->nss);
	free(m->pods);
	free(m->pols);
	free(m->files);
	free(m);
}

const struct seg_namespace *seg_manifests_ns(const struct seg_manifests *m, const char *name)
{
	for (size_t i = 0; i < m->nnss; i++) {
		if (!strcmp(m->nss[i].name, name))
			return &m->nss[i];
	}
	return NULL;
}

const struct seg_pod *seg_manifests_pod(const struct seg_manifests *m, const char *ns,
					const char *name)
{
	for (size_t i = 0; i < m->npods; i++) {
		if (!strcmp(m->pods[i].ns, ns) && !strcmp(m->pods[i].name, name))
			return &m->pods[i];
	}
	return NULL;
}

const char *seg_labels_get(const struct seg_labels *l, const char *key)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(l->v[mid].key, key);

		if (!c)
			return l->v[mid].val;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

bool seg_selector_empty(const struct seg_selector *s)
{
	return !s->match.n && !s->nexprs;
}

static bool expr_matches(const struct seg_sel_expr *e, const struct seg_labels *l)
{
	const char *v = seg_labels_get(l, e->key);
	bool in = false;

	switch (e->op) {
	case SEG_SEL_EXISTS:
		return v;
	case SEG_SEL_NOT_EXISTS:
		return !v;
	case SEG_SEL_IN:
	case SEG_SEL_NOT_IN:
		for (size_t i = 0; v && i < e->nvalues; i++)
			in |= !strcmp(e->values[i], v);
		/* NotIn matches a missing key, as in Kubernetes */
		return e->op == SEG_SEL_IN ? in : !in;
	}
	return false;
}

bool seg_selector_matches(const struct seg_selector *s, const struct seg_labels *l)
{
	for (size_t i = 0; i < s->match.n; i++) {
		const char *v = seg_labels_get(l, s->match.v[i].key);

		if (!v || strcmp(v, s->match.v[i].val))
			return false;
	}
	for (size_t i = 0; i < s->nexprs; i++) {
		if (!expr_matches(&s->exprs[i], l))
			return false;
	}
	return true;
}

__u16 seg_pod_named_port(const struct seg_pod *p, const char *name, __u8 proto)
{
	for (size_t i = 0; i < p->nports; i++) {
		if (p->ports[i].name && p->ports[i].proto == proto &&
		    !strcmp(p->ports[i].name, name))
			return p->ports[i].port;
	}
	return 0;
}

int seg_proto_parse(const char *s)
{
	if (!strcmp(s, "TCP"))
		return IPPROTO_TCP;
	if (!strcmp(s, "UDP"))
		return IPPROTO_UDP;
	if (!strcmp(s, "SCTP"))
		return IPPROTO_SCTP;
	return -EINVAL;
}

const char *seg_proto_str(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "TCP";
	case IPPROTO_UDP:
		return "UDP";
	case IPPROTO_SCTP:
		return "SCTP";
	case 0:
		return "any";
	}
	return "?";
}
