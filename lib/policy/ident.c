// SPDX-License-Identifier: GPL-2.0-only
/*
 * Identities and the ipcache.
 *
 * An identity is a number for a canonical key text:
 *   pod:  "ns=<ns>;nl=<ns labels>;pl=<pod labels>[;np=<named ports>][;b=<ipBlocks>]"
 *   CIDR: "cidr;b=<ipBlocks>"
 * np lists the pod's numbers for the (name, protocol) pairs that egress rules
 * name, so a named port resolves exactly per destination pod. b lists the
 * distinct ipBlocks (canonical text) that match the address: every ipBlock
 * cidr and except forms a set of nested prefixes, each prefix gets the
 * identity of the set of ipBlocks matching the addresses whose longest
 * prefix it is, and a pod address inside ipBlocks gets (its labels, that
 * set). Numbers come from the previous allocation when the key is known.
 */
#include "compiled.h"
#include "addr.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cdiag(struct seg_diag *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

void seg_prefix_mask(struct in6_addr *a, __u32 plen)
{
	for (int i = 0; i < 16; i++) {
		int bits = (int)plen - i * 8;

		if (bits <= 0)
			a->s6_addr[i] = 0;
		else if (bits < 8)
			a->s6_addr[i] &= (__u8)(0xff << (8 - bits));
	}
}

bool seg_prefix_contains(const struct in6_addr *net, __u32 plen, const struct in6_addr *a)
{
	struct in6_addr m = *a;

	seg_prefix_mask(&m, plen);
	return !memcmp(&m, net, sizeof(m));
}

/* IPv4 prefixes are v4-mapped with plen >= 96; the rest are IPv6. */
static bool pfx_v4(const struct in6_addr *a, __u32 plen)
{
	return plen >= 96 && IN6_IS_ADDR_V4MAPPED(a);
}

const struct seg_namespace *ident_ns(const struct seg_compiled *c, const char *name)
{
	size_t v;

	return hmap_get_str(&cpriv(c)->ns_by_name, name, &v) ? (const struct seg_namespace *)v :
							       NULL;
}

const struct seg_pod *ident_pod(const struct seg_compiled *c, size_t id_idx)
{
	return cpriv(c)->id_pod[id_idx];
}

/* ---- namespaces ------------------------------------------------------------ */

static int build_namespaces(struct seg_compiled *c)
{
	const struct seg_manifests *m = c->m;
	struct cpriv *p = cpriv(c);
	size_t cap = m->npods + m->npols;
	int err = 0;

	for (size_t i = 0; i < m->nnss; i++) {
		if (hmap_put_str(&p->ns_by_name, m->nss[i].name, (size_t)&m->nss[i]))
			return -ENOMEM;
	}
	/* implicit namespaces: allocate once so pointers stay valid */
	p->implicit = calloc(cap + 1, sizeof(*p->implicit));
	if (!p->implicit)
		return -ENOMEM;
	for (size_t i = 0; i < m->npods + m->npols && !err; i++) {
		const char *name = i < m->npods ? m->pods[i].ns : m->pols[i - m->npods].ns;
		struct seg_namespace *ns;

		if (ident_ns(c, name))
			continue;
		ns = &p->implicit[p->nimplicit];
		ns->name = strdup(name);
		ns->labels.v = calloc(1, sizeof(*ns->labels.v));
		ns->implicit = true;
		p->nimplicit++;
		if (!ns->name || !ns->labels.v)
			return -ENOMEM;
		ns->labels.n = 1;
		ns->labels.v->key = strdup(SEG_LABEL_NS_NAME);
		ns->labels.v->val = strdup(name);
		if (!ns->labels.v->key || !ns->labels.v->val)
			return -ENOMEM;
		err = hmap_put_str(&p->ns_by_name, ns->name, (size_t)ns);
	}
	return err;
}

/* ---- ipBlocks and prefixes ---------------------------------------------------- */

static void block_key(const struct seg_ipblock *b, struct sbuf *sb)
{
	char buf[INET6_ADDRSTRLEN];
	char **ex = NULL;

	sb_printf(sb, "%s/%u", seg_addr_str(&b->cidr, buf, sizeof(buf)), b->plen);
	/* excepts sorted for a canonical key: insertion sort, tiny lists */
	ex = calloc(b->nexcept + 1, sizeof(*ex));
	if (!ex) {
		sb->oom = true;
		return;
	}
	for (size_t i = 0; i < b->nexcept; i++) {
		char tmp[INET6_ADDRSTRLEN + 8];
		size_t j = i;

		snprintf(tmp, sizeof(tmp), "%s/%u", seg_addr_str(&b->except[i], buf, sizeof(buf)),
			 b->except_plen[i]);
		ex[i] = strdup(tmp);
		if (!ex[i]) {
			sb->oom = true;
			break;
		}
		while (j > 0 && strcmp(ex[j - 1], ex[j]) > 0) {
			char *t = ex[j];

			ex[j] = ex[j - 1];
			ex[j - 1] = t;
			j--;
		}
	}
	for (size_t i = 0; i < b->nexcept && ex[i]; i++)
		sb_printf(sb, "!%s", ex[i]);
	for (size_t i = 0; i < b->nexcept; i++)
		free(ex[i]);
	free(ex);
}

struct bref {
	char *key;
	struct seg_ipblock *b;
};

static int bref_cmp(const void *a, const void *b)
{
	return strcmp(((const struct bref *)a)->key, ((const struct bref *)b)->key);
}

static int build_blocks(struct seg_compiled *c)
{
	const struct seg_manifests *m = c->m;
	struct cpriv *p = cpriv(c);
	struct bref *refs = NULL;
	size_t nrefs = 0, cap = 0;
	int err = 0;

	for (size_t i = 0; i < m->npols && !err; i++) {
		for (int d = 0; d < SEG_DIR_MAX && !err; d++) {
			for (size_t r = 0; r < m->pols[i].nrules[d] && !err; r++) {
				struct seg_rule *ru = &m->pols[i].rules[d][r];

				for (size_t pe = 0; pe < ru->npeers && !err; pe++) {
					struct sbuf sb = {};
					size_t idx;

					if (ru->peers[pe].kind != SEG_PEER_IPBLOCK)
						continue;
					block_key(&ru->peers[pe].block, &sb);
					if (sb.oom ||
					    vec_reserve(&refs, &cap, nrefs, sizeof(*refs))) {
						sb_free(&sb);
						err = -ENOMEM;
						break;
					}
					if (hmap_get_str(&p->block_by_key, sb.p, &idx)) {
						sb_free(&sb);
						continue;
					}
					refs[nrefs].key = sb_take(&sb);
					refs[nrefs].b = &ru->peers[pe].block;
					err = hmap_put_str(&p->block_by_key, refs[nrefs].key,
							   nrefs);
					nrefs++;
				}
			}
		}
	}
	if (err)
		goto out;
	/* index order = key order, so sets listed by index are canonical */
	if (nrefs)
		qsort(refs, nrefs, sizeof(*refs), bref_cmp);
	c->blocks = calloc(nrefs + 1, sizeof(*c->blocks));
	if (!c->blocks) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nrefs && !err; i++) {
		c->blocks[i] = refs[i].b;
		err = hmap_put_str(&p->block_by_key, refs[i].key, i);
	}
	c->nblocks = nrefs;
	/* every peer -> its block index */
	for (size_t i = 0; i < m->npols && !err; i++) {
		for (int d = 0; d < SEG_DIR_MAX && !err; d++) {
			for (size_t r = 0; r < m->pols[i].nrules[d] && !err; r++) {
				struct seg_rule *ru = &m->pols[i].rules[d][r];

				for (size_t pe = 0; pe < ru->npeers && !err; pe++) {
					const struct seg_peer *peer = &ru->peers[pe];
					struct sbuf sb = {};
					size_t idx = 0;

					if (peer->kind != SEG_PEER_IPBLOCK)
						continue;
					block_key(&peer->block, &sb);
					if (sb.oom || !hmap_get_str(&p->block_by_key, sb.p, &idx))
						err = -ENOMEM;
					else
						err = hmap_put(&p->block_by_peer, &peer,
							       sizeof(peer), idx);
					sb_free(&sb);
				}
			}
		}
	}
out:
	for (size_t i = 0; i < nrefs; i++)
		free(refs[i].key);
	free(refs);
	return err;
}

static int pfx_add(struct cpriv *p, size_t *cap, const struct in6_addr *a, __u32 plen)
{
	for (size_t i = 0; i < p->npfx; i++) {
		if (p->pfx[i].plen == plen && !memcmp(&p->pfx[i].a, a, sizeof(*a)))
			return 0;
	}
	if (vec_reserve(&p->pfx, cap, p->npfx, sizeof(*p->pfx)))
		return -ENOMEM;
	memset(&p->pfx[p->npfx], 0, sizeof(*p->pfx));
	p->pfx[p->npfx].a = *a;
	p->pfx[p->npfx].plen = plen;
	p->npfx++;
	return 0;
}

static bool block_matches_pfx(const struct seg_ipblock *b, const struct cpfx *x)
{
	if (pfx_v4(&b->cidr, b->plen) != pfx_v4(&x->a, x->plen))
		return false;
	if (x->plen < b->plen || !seg_prefix_contains(&b->cidr, b->plen, &x->a))
		return false;
	for (size_t e = 0; e < b->nexcept; e++) {
		if (x->plen >= b->except_plen[e] &&
		    seg_prefix_contains(&b->except[e], b->except_plen[e], &x->a))
			return false;
	}
	return true;
}

static int pfx_cmp(const void *a, const void *b)
{
	const struct cpfx *x = a, *y = b;

	if (x->plen != y->plen)
		return x->plen > y->plen ? -1 : 1;
	return memcmp(&x->a, &y->a, sizeof(x->a));
}

/* All cidrs and excepts; the v4-mapped /96 too when an IPv6 block covers
 * it, so IPv4 addresses never match an IPv6 ipBlock. */
static int build_prefixes(struct seg_compiled *c)
{
	static const struct in6_addr v4space = { .s6_addr = { [10] = 0xff, [11] = 0xff } };
	struct cpriv *p = cpriv(c);
	size_t cap = 0;
	int err = 0;

	for (size_t i = 0; i < c->nblocks && !err; i++) {
		const struct seg_ipblock *b = c->blocks[i];

		err = pfx_add(p, &cap, &b->cidr, b->plen);
		for (size_t e = 0; e < b->nexcept && !err; e++)
			err = pfx_add(p, &cap, &b->except[e], b->except_plen[e]);
		if (!err && b->plen < 96 && seg_prefix_contains(&b->cidr, b->plen, &v4space))
			err = pfx_add(p, &cap, &v4space, 96);
	}
	if (err)
		return err;
	if (p->npfx)
		qsort(p->pfx, p->npfx, sizeof(*p->pfx), pfx_cmp);
	for (size_t i = 0; i < p->npfx; i++) {
		struct cpfx *x = &p->pfx[i];

		x->set = calloc(c->nblocks + 1, sizeof(*x->set));
		if (!x->set)
			return -ENOMEM;
		for (size_t b = 0; b < c->nblocks; b++) {
			if (block_matches_pfx(c->blocks[b], x))
				x->set[x->nset++] = b;
		}
	}
	return 0;
}

/* Longest prefix of the set containing a, or NULL. pfx is sorted by plen
 * descending, so the first hit is the longest. */
static const struct cpfx *pfx_lookup(const struct cpriv *p, const struct in6_addr *a)
{
	for (size_t i = 0; i < p->npfx; i++) {
		if (seg_prefix_contains(&p->pfx[i].a, p->pfx[i].plen, a))
			return &p->pfx[i];
	}
	return NULL;
}

/* ---- named ports used by egress rules ----------------------------------------- */

static int build_egress_names(struct seg_compiled *c)
{
	const struct seg_manifests *m = c->m;
	struct cpriv *p = cpriv(c);
	struct hmap seen = {};
	int err = 0;

	for (size_t i = 0; i < m->npols && !err; i++) {
		for (size_t r = 0; r < m->pols[i].nrules[SEG_DIR_EGRESS] && !err; r++) {
			struct seg_rule *ru = &m->pols[i].rules[SEG_DIR_EGRESS][r];

			for (size_t k = 0; k < ru->nports && !err; k++) {
				char key[64];
				char **nv;
				__u8 *pv;

				if (!ru->ports[k].name)
					continue;
				snprintf(key, sizeof(key), "%s/%s", ru->ports[k].name,
					 seg_proto_str(ru->ports[k].proto));
				if (hmap_get_str(&seen, key, NULL))
					continue;
				nv = realloc(p->enames, (p->nenames + 1) * sizeof(*nv));
				if (nv)
					p->enames = nv;
				pv = nv ? realloc(p->eprotos, (p->nenames + 1) * sizeof(*pv)) :
					  NULL;
				if (pv)
					p->eprotos = pv;
				if (!nv || !pv || hmap_put_str(&seen, key, 0)) {
					err = -ENOMEM;
					break;
				}
				p->enames[p->nenames] = ru->ports[k].name; /* borrowed */
				p->eprotos[p->nenames++] = ru->ports[k].proto;
			}
		}
	}
	hmap_free(&seen);
	return err;
}

/* ---- identities ------------------------------------------------------------------ */

static void labels_key(struct sbuf *sb, const struct seg_labels *l)
{
	for (size_t i = 0; i < l->n; i++)
		sb_printf(sb, "%s%s=%s", i ? "," : "", l->v[i].key, l->v[i].val);
}

static void pod_key(const struct seg_compiled *c, const struct seg_pod *pod,
		    const struct seg_namespace *ns, struct sbuf *sb)
{
	const struct cpriv *p = cpriv(c);

	sb_printf(sb, "ns=%s;nl=", pod->ns);
	labels_key(sb, &ns->labels);
	sb_printf(sb, ";pl=");
	labels_key(sb, &pod->labels);
	if (!p->nenames)
		return;
	sb_printf(sb, ";np=");
	for (size_t i = 0; i < p->nenames; i++) {
		__u16 port = seg_pod_named_port(pod, p->enames[i], p->eprotos[i]);

		if (port)
			sb_printf(sb, "%s/%s=%u,", p->enames[i], seg_proto_str(p->eprotos[i]),
				  port);
	}
}

static void set_key(const struct seg_compiled *c, const size_t *set, size_t n, struct sbuf *sb)
{
	struct sbuf bk = {};

	sb_printf(sb, ";b=");
	for (size_t i = 0; i < n; i++) {
		block_key(c->blocks[set[i]], &bk);
		sb_printf(sb, "%s%s", i ? "," : "", bk.oom ? "" : bk.p);
		if (bk.oom)
			sb->oom = true;
		sb_free(&bk);
	}
}

/* Finds or adds the identity for key (taken over). Returns its index. */
static int id_get(struct seg_compiled *c, const struct seg_compile_opts *o, char *key,
		  const struct seg_namespace *ns, const struct seg_pod *pod, const size_t *set,
		  size_t nset, size_t *idx)
{
	struct cpriv *p = cpriv(c);
	struct seg_identity *id;
	const struct seg_pod **ip;
	__u32 num;

	if (!key)
		return -ENOMEM;
	if (hmap_get_str(&p->id_by_key, key, idx)) {
		free(key);
		return 0;
	}

	if (vec_reserve(&c->ids, &p->cap_ids, c->nids, sizeof(*c->ids)) ||
	    !(ip = realloc(p->id_pod, p->cap_ids * sizeof(*p->id_pod)))) {
		free(key);
		return -ENOMEM;
	}
	p->id_pod = ip;
	id = &c->ids[c->nids];
	memset(id, 0, sizeof(*id));
	id->key = key;
	id->ns = ns;
	id->labels = pod ? &pod->labels : NULL;
	p->id_pod[c->nids] = pod;
	if (nset) {
		id->blocks = malloc(nset * sizeof(*set));
		if (!id->blocks)
			return -ENOMEM;
		memcpy(id->blocks, set, nset * sizeof(*set));
		id->nblocks = nset;
	}
	*idx = c->nids++;
	if (alloc_get(c->numbering->ids, o->prev ? o->prev->ids : NULL, key, &num))
		return -ENOMEM;
	id->id = num;
	if (hmap_put_str(&p->id_by_key, key, *idx) ||
	    hmap_put(&p->id_by_num, &id->id, sizeof(id->id), *idx))
		return -ENOMEM;
	return 0;
}

static int ipc_add(struct seg_compiled *c, size_t *cap, const struct seg_pod *pod, size_t pi,
		   const struct in6_addr *a, __u32 id, struct seg_diag *d)
{
	struct cpriv *p = cpriv(c);
	char buf[INET6_ADDRSTRLEN];
	size_t prev;

	if (hmap_get(&p->ipc_by_addr, a, sizeof(*a), &prev)) {
		const struct seg_pod *o = &c->m->pods[c->ipc[prev].pod];

		return cdiag(d, "%s:%d:%d: pods %s/%s and %s/%s share the address %s",
			     pod->loc.file, pod->loc.line, pod->loc.col, o->ns, o->name, pod->ns,
			     pod->name, seg_addr_str(a, buf, sizeof(buf)));
	}
	if (vec_reserve(&c->ipc, cap, c->nipc, sizeof(*c->ipc)))
		return -ENOMEM;
	memset(&c->ipc[c->nipc], 0, sizeof(*c->ipc));
	c->ipc[c->nipc].addr = *a;
	c->ipc[c->nipc].val.identity = id;
	c->ipc[c->nipc].pod = pi;
	return hmap_put(&p->ipc_by_addr, a, sizeof(*a), c->nipc++);
}

static int build_pod_ids(struct seg_compiled *c, const struct seg_compile_opts *o,
			 struct seg_diag *d)
{
	const struct seg_manifests *m = c->m;
	struct cpriv *p = cpriv(c);
	size_t cap = 0;
	int err = 0;

	p->pod_id = calloc(m->npods + 1, sizeof(*p->pod_id));
	if (!p->pod_id)
		return -ENOMEM;
	for (size_t i = 0; i < m->npods && !err; i++) {
		const struct seg_pod *pod = &m->pods[i];
		const struct seg_namespace *ns = ident_ns(c, pod->ns);
		struct sbuf sb = {};
		char *base;

		pod_key(c, pod, ns, &sb);
		base = sb_take(&sb);
		if (!base)
			return -ENOMEM;
		err = id_get(c, o, strdup(base), ns, pod, NULL, 0, &p->pod_id[i]);
		for (size_t a = 0; a < pod->naddrs && !err; a++) {
			const struct cpfx *x = pfx_lookup(p, &pod->addrs[a]);
			size_t idx = p->pod_id[i];

			if (x && x->nset) {
				sb_printf(&sb, "%s", base);
				set_key(c, x->set, x->nset, &sb);
				err = id_get(c, o, sb_take(&sb), ns, pod, x->set, x->nset, &idx);
			}
			if (!err)
				err = ipc_add(c, &cap, pod, i, &pod->addrs[a], c->ids[idx].id, d);
		}
		free(base);
	}
	if (err == -ENOMEM)
		return cdiag(d, "out of memory building identities"), -ENOMEM;
	return err;
}

static int build_cidr_ids(struct seg_compiled *c, const struct seg_compile_opts *o)
{
	struct cpriv *p = cpriv(c);
	int err = 0;

	c->lpm = calloc(p->npfx + 1, sizeof(*c->lpm));
	if (!c->lpm)
		return -ENOMEM;
	for (size_t i = 0; i < p->npfx && !err; i++) {
		struct cpfx *x = &p->pfx[i];
		struct sbuf sb = {};
		size_t idx;

		x->id = SEG_ID_WORLD;
		if (x->nset) {
			sb_printf(&sb, "cidr");
			set_key(c, x->set, x->nset, &sb);
			err = id_get(c, o, sb_take(&sb), NULL, NULL, x->set, x->nset, &idx);
			if (!err)
				x->id = c->ids[idx].id;
		}
		c->lpm[i].key.prefixlen = x->plen;
		memcpy(c->lpm[i].key.addr, &x->a, sizeof(x->a));
		c->lpm[i].val.identity = x->id;
	}
	c->nlpm = p->npfx;
	return err;
}

int ident_build(struct seg_compiled *c, const struct seg_compile_opts *o, struct seg_diag *d)
{
	struct seg_numbering *n = calloc(1, sizeof(*n));
	int err;

	c->numbering = n;
	if (n) {
		n->ids = alloc_new(SEG_ID_FIRST_ALLOC);
		n->policies = alloc_new(1);
		n->rules = alloc_new(1); /* 0 = "no rule" */
	}
	if (!n || !n->ids || !n->policies || !n->rules)
		return cdiag(d, "out of memory"), -ENOMEM;
	err = build_namespaces(c);
	if (!err)
		err = build_blocks(c);
	if (!err)
		err = build_prefixes(c);
	if (!err)
		err = build_egress_names(c);
	if (!err)
		err = build_cidr_ids(c, o);
	if (err)
		return cdiag(d, "out of memory building ipBlock prefixes"), err;
	return build_pod_ids(c, o, d);
}

void ident_free(struct seg_compiled *c)
{
	struct cpriv *p = cpriv(c);

	for (size_t i = 0; i < c->nids; i++) {
		free(c->ids[i].key);
		free(c->ids[i].blocks);
	}
	free(c->ids);
	free(c->blocks);
	free(c->lpm);
	free(c->ipc);
	if (c->numbering) {
		alloc_free(c->numbering->ids);
		alloc_free(c->numbering->policies);
		alloc_free(c->numbering->rules);
		free(c->numbering);
	}
	if (!p)
		return;
	for (size_t i = 0; i < p->nimplicit; i++)
		seg_namespace_clear(&p->implicit[i]);
	free(p->implicit);
	for (size_t i = 0; i < p->npfx; i++)
		free(p->pfx[i].set);
	free(p->pfx);
	free(p->enames);
	free(p->eprotos);
	free(p->id_pod);
	free(p->pod_id);
	hmap_free(&p->ns_by_name);
	hmap_free(&p->block_by_key);
	hmap_free(&p->block_by_peer);
	hmap_free(&p->id_by_key);
	hmap_free(&p->id_by_num);
	hmap_free(&p->ipc_by_addr);
}
