// SPDX-License-Identifier: GPL-2.0-only
/* Parsed Kubernetes objects: lifetime, merged objects, lookups, label
 * selector semantics. */
#include "policy.h"
#include "util.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
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
		free(r->peers[i].block.key);
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

static void index_free(struct seg_name_index *ix);

void seg_manifests_free(struct seg_manifests *m)
{
	if (!m)
		return;
	if (m->refs) {
		m->refs--;
		return;
	}
	if (m->merged) {
		/* the objects and file names are the parts' */
		for (size_t i = 0; i < m->nparts; i++)
			seg_manifests_free(m->parts[i]);
		free(m->parts);
	} else {
		for (size_t i = 0; i < m->nnss; i++)
			seg_namespace_clear(&m->nss[i]);
		for (size_t i = 0; i < m->npods; i++)
			seg_pod_clear(&m->pods[i]);
		for (size_t i = 0; i < m->npols; i++)
			seg_netpol_clear(&m->pols[i]);
		for (size_t i = 0; i < m->nfiles; i++)
			free(m->files[i]);
	}
	index_free(m->index); /* a part's holds its key hashes */
	free(m->nss);
	free(m->pods);
	free(m->pols);
	free(m->files);
	free(m);
}

struct seg_manifests *seg_manifests_ref(struct seg_manifests *m)
{
	m->refs++;
	return m;
}

/* ---- merged objects ------------------------------------------------------------
 * Per kind, an open-addressing table of positions (+ 1; 0: empty), at most
 * half full, keyed by namespace and name. Positions are inserted in order
 * (a grown table too), so a probe sequence only crosses slots of earlier
 * positions: removing every position from some n on leaves the others
 * reachable (an append's rollback).
 */
enum { IX_NS, IX_POD, IX_POL, IX_KINDS };

/* Open addressing: slot[i] = position + 1 (0: empty), hash[i] its key's
 * hash, compared before the names so a probe reads no object's strings
 * until the hashes agree. */
struct name_tab {
	uint32_t *slot;
	uint64_t *hash;
	size_t cap; /* a power of two */
};

struct seg_name_index {
	struct name_tab t[IX_KINDS];
	/* A part's own: the key hash of each of its objects by kind, made the
	 * first time it is appended and kept with it, so a merge of parts it
	 * was in before hashes no name again (the names are scattered over
	 * every parsed file: reading them was most of a merge). */
	uint64_t *khash[IX_KINDS];
};

static const char *const ix_kind[IX_KINDS] = { "Namespace", "Pod", "NetworkPolicy" };

static void index_free(struct seg_name_index *ix)
{
	for (int k = 0; ix && k < IX_KINDS; k++) {
		free(ix->t[k].slot);
		free(ix->t[k].hash);
		free(ix->khash[k]);
	}
	free(ix);
}

static size_t kind_n(const struct seg_manifests *m, int k)
{
	return k == IX_NS ? m->nnss : k == IX_POD ? m->npods : m->npols;
}

static void obj_key(const struct seg_manifests *m, int k, size_t i, const char **ns,
		    const char **name, const struct seg_src_loc **loc)
{
	if (k == IX_NS) {
		*ns = "", *name = m->nss[i].name, *loc = &m->nss[i].loc;
	} else if (k == IX_POD) {
		*ns = m->pods[i].ns, *name = m->pods[i].name, *loc = &m->pods[i].loc;
	} else {
		*ns = m->pols[i].ns, *name = m->pols[i].name, *loc = &m->pols[i].loc;
	}
}

static uint64_t key_hash(const char *ns, const char *name)
{
	return hm_hash(ns, strlen(ns)) * 0x9e3779b97f4a7c15ull ^ hm_hash(name, strlen(name));
}

/* The slot holding ns/name (hash h), or the empty one where it goes. */
static size_t tab_find(const struct seg_manifests *m, int k, uint64_t h, const char *ns,
		       const char *name)
{
	const struct name_tab *t = &m->index->t[k];
	size_t mask = t->cap - 1;
	size_t i = h & mask;

	for (;; i = (i + 1) & mask) {
		const struct seg_src_loc *loc;
		const char *ons, *oname;

		if (!t->slot[i])
			return i;
		if (t->hash[i] != h)
			continue;
		obj_key(m, k, t->slot[i] - 1, &ons, &oname, &loc);
		if (!strcmp(oname, name) && !strcmp(ons, ns))
			return i;
	}
}

/* The position + 1 of ns/name among the objects of kind k, 0: none. */
static uint32_t tab_pos(const struct seg_manifests *m, int k, const char *ns, const char *name)
{
	return m->index->t[k].slot[tab_find(m, k, key_hash(ns, name), ns, name)];
}

/* Room for n positions of kind k; the ones m has are inserted again, in
 * the order of their positions, by their hashes. */
static int tab_reserve(struct seg_manifests *m, int k, size_t n)
{
	struct name_tab *t = &m->index->t[k], nt;
	size_t have = kind_n(m, k);
	uint64_t *by_pos;

	if (n > UINT32_MAX - 1)
		return -E2BIG;
	if (t->slot && n * 2 <= t->cap)
		return 0;
	nt.cap = t->cap ? t->cap : 16;
	while (nt.cap < n * 2)
		nt.cap *= 2;
	nt.slot = calloc(nt.cap, sizeof(*nt.slot));
	nt.hash = malloc(nt.cap * sizeof(*nt.hash));
	by_pos = malloc((have ? have : 1) * sizeof(*by_pos));
	if (!nt.slot || !nt.hash || !by_pos) {
		free(nt.slot);
		free(nt.hash);
		free(by_pos);
		return -ENOMEM;
	}
	for (size_t i = 0; i < t->cap; i++)
		if (t->slot[i])
			by_pos[t->slot[i] - 1] = t->hash[i];
	for (size_t p = 0; p < have; p++) {
		size_t j = by_pos[p] & (nt.cap - 1);

		while (nt.slot[j])
			j = (j + 1) & (nt.cap - 1);
		nt.slot[j] = (uint32_t)p + 1;
		nt.hash[j] = by_pos[p];
	}
	free(by_pos);
	free(t->slot);
	free(t->hash);
	*t = nt;
	return 0;
}

/* The key hashes of part p's objects of kind k, made once. */
static const uint64_t *part_hashes(struct seg_manifests *p, int k)
{
	size_t n = kind_n(p, k);
	uint64_t *h;

	if (!p->index && !(p->index = calloc(1, sizeof(*p->index))))
		return NULL;
	if (p->index->khash[k])
		return p->index->khash[k];
	h = malloc((n ? n : 1) * sizeof(*h));
	if (!h)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const struct seg_src_loc *loc;
		const char *ns, *name;

		obj_key(p, k, i, &ns, &name, &loc);
		h[i] = key_hash(ns, name);
	}
	p->index->khash[k] = h;
	return h;
}

static int reserve(void *v, size_t *cap, size_t need, size_t sz)
{
	return need ? vec_reserve(v, cap, need - 1, sz) : 0;
}

static int append_room(struct seg_manifests *m, struct seg_manifests *const *parts, size_t n)
{
	size_t add[IX_KINDS] = {}, files = 0;

	for (size_t i = 0; i < n; i++) {
		add[IX_NS] += parts[i]->nnss;
		add[IX_POD] += parts[i]->npods;
		add[IX_POL] += parts[i]->npols;
		files += parts[i]->nfiles;
	}
	if (!m->index && !(m->index = calloc(1, sizeof(*m->index))))
		return -ENOMEM;
	if (reserve(&m->nss, &m->cap_nss, m->nnss + add[IX_NS], sizeof(*m->nss)) ||
	    reserve(&m->pods, &m->cap_pods, m->npods + add[IX_POD], sizeof(*m->pods)) ||
	    reserve(&m->pols, &m->cap_pols, m->npols + add[IX_POL], sizeof(*m->pols)) ||
	    reserve(&m->files, &m->cap_files, m->nfiles + files, sizeof(*m->files)) ||
	    reserve(&m->parts, &m->cap_parts, m->nparts + n, sizeof(*m->parts)))
		return -ENOMEM;
	for (int k = 0; k < IX_KINDS; k++) {
		int err = tab_reserve(m, k, kind_n(m, k) + add[k]);

		if (err)
			return err;
		for (size_t i = 0; i < n; i++)
			if (!part_hashes(parts[i], k))
				return -ENOMEM;
	}
	return 0;
}

/* Copies the parts' objects of kind k after m's, checking their names;
 * the position of the first duplicate, or SIZE_MAX. */
static size_t append_kind(struct seg_manifests *m, int k, struct seg_manifests *const *parts,
			  size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct seg_manifests *p = parts[i];
		size_t cnt = kind_n(p, k), at = kind_n(m, k);

		if (!cnt)
			continue;
		if (k == IX_NS)
			memcpy(m->nss + at, p->nss, cnt * sizeof(*p->nss));
		else if (k == IX_POD)
			memcpy(m->pods + at, p->pods, cnt * sizeof(*p->pods));
		else
			memcpy(m->pols + at, p->pols, cnt * sizeof(*p->pols));
		const uint64_t *ph = p->index->khash[k]; /* made by append_room() */
		struct name_tab *t = &m->index->t[k];

		for (size_t j = at; j < at + cnt; j++) {
			const struct seg_src_loc *loc;
			const char *ns, *name;
			size_t s;

			obj_key(m, k, j, &ns, &name, &loc);
			s = tab_find(m, k, ph[j - at], ns, name);
			if (t->slot[s])
				return j;
			t->slot[s] = (uint32_t)j + 1;
			t->hash[s] = ph[j - at];
			/* counted one by one: tab_find() reads positions < count */
			if (k == IX_NS)
				m->nnss++;
			else if (k == IX_POD)
				m->npods++;
			else
				m->npols++;
		}
	}
	return SIZE_MAX;
}

int seg_manifests_append(struct seg_manifests *m, struct seg_manifests *const *parts, size_t nparts,
			 struct seg_diag *d)
{
	size_t old[IX_KINDS] = { m->nnss, m->npods, m->npols };
	int err, k;

	if (!m->merged && (m->nnss || m->npods || m->npols || m->nfiles)) {
		snprintf(d->msg, sizeof(d->msg), "manifests: parts go into a merged object only");
		return -EINVAL;
	}
	m->merged = true;
	err = append_room(m, parts, nparts);
	if (err) {
		snprintf(d->msg, sizeof(d->msg), "manifests: out of memory");
		return err;
	}
	for (k = 0; k < IX_KINDS; k++) {
		size_t dup = append_kind(m, k, parts, nparts);
		const struct seg_src_loc *loc;
		const char *ns, *name;
		char key[600];

		if (dup == SIZE_MAX)
			continue;
		/* the message of a load's duplicate check (parse.c) */
		obj_key(m, k, dup, &ns, &name, &loc);
		snprintf(key, sizeof(key), "%s %s%s%s", ix_kind[k], ns, *ns ? "/" : "", name);
		snprintf(d->msg, sizeof(d->msg),
			 "%s:%d:%d: %.300s: metadata.name: duplicate name (also defined earlier)",
			 loc->file, loc->line, loc->col, key);
		for (int r = 0; r <= k; r++) {
			struct name_tab *t = &m->index->t[r];

			for (size_t i = 0; i < t->cap; i++)
				if (t->slot[i] > old[r])
					t->slot[i] = 0;
		}
		m->nnss = old[IX_NS];
		m->npods = old[IX_POD];
		m->npols = old[IX_POL];
		return -EINVAL;
	}
	for (size_t i = 0; i < nparts; i++) {
		if (parts[i]->nfiles)
			memcpy(m->files + m->nfiles, parts[i]->files,
			       parts[i]->nfiles * sizeof(*m->files));
		m->nfiles += parts[i]->nfiles;
		m->parts[m->nparts++] = seg_manifests_ref(parts[i]);
	}
	return 0;
}

/* ---- lookups ---------------------------------------------------------------------- */

const struct seg_namespace *seg_manifests_ns(const struct seg_manifests *m, const char *name)
{
	if (m->index && m->index->t[IX_NS].slot) {
		uint32_t s = tab_pos(m, IX_NS, "", name);

		return s ? &m->nss[s - 1] : NULL;
	}
	for (size_t i = 0; i < m->nnss; i++) {
		if (!strcmp(m->nss[i].name, name))
			return &m->nss[i];
	}
	return NULL;
}

const struct seg_pod *seg_manifests_pod(const struct seg_manifests *m, const char *ns,
					const char *name)
{
	if (m->index && m->index->t[IX_POD].slot) {
		uint32_t s = tab_pos(m, IX_POD, ns, name);

		return s ? &m->pods[s - 1] : NULL;
	}
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
