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
	size_t r = cpriv(c)->id_rep[id_idx];

	return r >= c->m->npods ? NULL : &c->m->pods[r];
}

/* ---- namespaces ------------------------------------------------------------ */

/* ns_by_name for c->m: declared namespaces, then the implicit ones. */
int ns_index(struct seg_compiled *c)
{
	const struct seg_manifests *m = c->m;
	struct cpriv *p = cpriv(c);
	const struct cstatic *st = p->st;

	hmap_free(&p->ns_by_name);
	for (size_t i = 0; i < m->nnss; i++) {
		if (hmap_put_str(&p->ns_by_name, m->nss[i].name, (size_t)&m->nss[i]))
			return -ENOMEM;
	}
	for (size_t i = 0; i < st->nimplicit; i++) {
		if (hmap_put_str(&p->ns_by_name, st->implicit[i].name, (size_t)&st->implicit[i]))
			return -ENOMEM;
	}
	return 0;
}

/* The namespace of object i: the pods, then the policies. */
static const char *obj_ns(const struct seg_manifests *m, size_t i)
{
	return i < m->npods ? m->pods[i].ns : m->pols[i - m->npods].ns;
}

static int build_namespaces(struct seg_compiled *c)
{
	const struct seg_manifests *m = c->m;
	struct cpriv *p = cpriv(c);
	struct cstatic *st = p->st;
	size_t nobj = m->npods + m->npols;
	const char *last = NULL;
	int err = ns_index(c);

	/* implicit namespaces: allocate once so pointers stay valid */
	st->implicit = calloc(nobj + 1, sizeof(*st->implicit));
	if (err || !st->implicit)
		return -ENOMEM;
	for (size_t i = 0; i < nobj && !err; i++) {
		const char *name = obj_ns(m, i);
		struct seg_namespace *ns;

		/* objects of a namespace mostly come together: a name like
		 * the previous object's is known (a compare, not a hash) */
		if (last && !strcmp(last, name))
			continue;
		last = name;
		if (ident_ns(c, name))
			continue;
		ns = &st->implicit[st->nimplicit];
		ns->name = strdup(name);
		ns->labels.v = calloc(1, sizeof(*ns->labels.v));
		ns->implicit = true;
		st->nimplicit++;
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

/* Every peer of every rule (both directions, policyTypes or not), by
 * position: pol_slot[i] is policy i's first. */
static int build_slots(struct seg_compiled *c)
{
	const struct seg_manifests *m = c->m;
	struct cstatic *st = cpriv(c)->st;
	size_t n = 0;

	st->pol_slot = calloc(m->npols + 1, sizeof(*st->pol_slot));
	if (!st->pol_slot)
		return -ENOMEM;
	for (size_t i = 0; i < m->npols; i++) {
		st->pol_slot[i] = n;
		for (int d = 0; d < SEG_DIR_MAX; d++) {
			for (size_t r = 0; r < m->pols[i].nrules[d]; r++)
				n += m->pols[i].rules[d][r].npeers;
		}
	}
	st->pol_slot[m->npols] = n;
	st->slots = calloc(n + 1, sizeof(*st->slots));
	if (!st->slots)
		return -ENOMEM;
	for (size_t i = 0; i < m->npols; i++) {
		for (int d = 0; d < SEG_DIR_MAX; d++) {
			for (size_t r = 0; r < m->pols[i].nrules[d]; r++) {
				for (size_t k = 0; k < m->pols[i].rules[d][r].npeers; k++) {
					struct cslot *sl = &st->slots[st->nslots++];

					sl->pol = i;
					sl->dir = (__u8)d;
					sl->rule = (__u32)r;
					sl->peer = (__u32)k;
					sl->group = SIZE_MAX;
				}
			}
		}
	}
	return 0;
}

/* ---- ipBlocks and prefixes ---------------------------------------------------- */

/* "addr/plen" into dst (room for INET6_ADDRSTRLEN + 21), as "%s/%u". */
static void pfx_text(char *dst, const struct in6_addr *a, __u32 plen)
{
	size_t n;

	seg_addr_str(a, dst, INET6_ADDRSTRLEN);
	n = strlen(dst);
	dst[n++] = '/';
	dst[n + dec_put(dst + n, plen)] = 0;
}

char *seg_ipblock_key(const struct seg_ipblock *b)
{
	char buf[INET6_ADDRSTRLEN + 24];
	struct sbuf sb = {};
	char **ex = NULL;

	pfx_text(buf, &b->cidr, b->plen);
	sb_puts(&sb, buf);
	/* excepts sorted for a canonical key: insertion sort, tiny lists */
	ex = calloc(b->nexcept + 1, sizeof(*ex));
	if (!ex) {
		sb_free(&sb);
		return NULL;
	}
	for (size_t i = 0; i < b->nexcept; i++) {
		size_t j = i;

		pfx_text(buf, &b->except[i], b->except_plen[i]);
		ex[i] = strdup(buf);
		if (!ex[i]) {
			sb.oom = true;
			break;
		}
		while (j > 0 && strcmp(ex[j - 1], ex[j]) > 0) {
			char *t = ex[j];

			ex[j] = ex[j - 1];
			ex[j - 1] = t;
			j--;
		}
	}
	for (size_t i = 0; i < b->nexcept && ex[i]; i++) {
		sb_putc(&sb, '!');
		sb_puts(&sb, ex[i]);
	}
	for (size_t i = 0; i < b->nexcept; i++)
		free(ex[i]);
	free(ex);
	if (sb.oom) {
		sb_free(&sb);
		return NULL;
	}
	return sb_take(&sb);
}

struct bref {
	char *key;
	size_t slot; /* its first slot */
	size_t first; /* its index before the sort */
};

static int bref_cmp(const void *a, const void *b)
{
	return strcmp(((const struct bref *)a)->key, ((const struct bref *)b)->key);
}

/* Distinct ipBlocks (by canonical text, sorted by it; st->block_keys
 * keeps the texts) and each ipBlock peer's block index (its slot's group
 * is made per block later). */
static int build_blocks(struct seg_compiled *c, size_t *slot_block)
{
	const struct seg_manifests *m = c->m;
	struct cstatic *st = cpriv(c)->st;
	struct hmap by_key = {};
	struct bref *refs = NULL;
	size_t nrefs = 0, cap = 0, idx, *renum = NULL;
	int err = 0;

	/* slot_block[s]: first the index in refs of the slot's key; only the
	 * slots of policies with ipBlocks are looked at (has_blocks: the
	 * peers are far from the policy in memory) */
	for (size_t s = 0; s < st->nslots; s++)
		slot_block[s] = SIZE_MAX;
	for (size_t s = 0; s < st->nslots && !err; s++) {
		const struct seg_peer *pe;
		const char *key;
		char *tmp = NULL;

		if (!m->pols[st->slots[s].pol].has_blocks) {
			s = st->pol_slot[st->slots[s].pol + 1] - 1; /* its last slot */
			continue;
		}
		pe = slot_peer(m, &st->slots[s]);
		if (pe->kind != SEG_PEER_IPBLOCK)
			continue;
		key = pe->block.key ? pe->block.key : (tmp = seg_ipblock_key(&pe->block));
		if (!key || vec_reserve(&refs, &cap, nrefs, sizeof(*refs))) {
			free(tmp);
			err = -ENOMEM;
			break;
		}
		if (hmap_get_str(&by_key, key, &idx)) {
			slot_block[s] = idx;
			free(tmp);
			continue;
		}
		refs[nrefs].key = tmp ? tmp : strdup(key); /* refs own their keys */
		if (!refs[nrefs].key) {
			err = -ENOMEM;
			break;
		}
		refs[nrefs].slot = s;
		refs[nrefs].first = nrefs;
		slot_block[s] = nrefs;
		err = hmap_put_str(&by_key, refs[nrefs].key, nrefs);
		nrefs++;
	}
	if (err)
		goto out;
	/* index order = key order, so sets listed by index are canonical */
	if (nrefs)
		qsort(refs, nrefs, sizeof(*refs), bref_cmp);
	c->blocks = calloc(nrefs + 1, sizeof(*c->blocks));
	st->block_slot = calloc(nrefs + 1, sizeof(*st->block_slot));
	st->block_keys = calloc(nrefs + 1, sizeof(*st->block_keys));
	renum = calloc(nrefs + 1, sizeof(*renum));
	if (!c->blocks || !st->block_slot || !st->block_keys || !renum) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nrefs; i++) {
		st->block_slot[i] = refs[i].slot;
		c->blocks[i] = (struct seg_ipblock *)&slot_peer(m, &st->slots[refs[i].slot])->block;
	}
	c->nblocks = st->nblocks = nrefs;
	/* every ipBlock peer -> its block index (renumbered by the sort) */
	for (size_t i = 0; i < nrefs; i++)
		renum[refs[i].first] = i;
	for (size_t s = 0; s < st->nslots; s++) {
		if (slot_block[s] != SIZE_MAX)
			slot_block[s] = renum[slot_block[s]];
	}
out:
	for (size_t i = 0; i < nrefs; i++) {
		if (st->block_keys && !err)
			st->block_keys[i] = refs[i].key;
		else
			free(refs[i].key);
	}
	free(renum);
	free(refs);
	hmap_free(&by_key);
	return err;
}

struct pkey {
	__u32 plen;
	struct in6_addr a;
};

static struct pkey pkey_of(const struct in6_addr *a, __u32 plen)
{
	struct pkey k;

	memset(&k, 0, sizeof(k));
	k.plen = plen;
	k.a = *a;
	seg_prefix_mask(&k.a, plen);
	return k;
}

static int pfx_add(struct cstatic *p, size_t *cap, const struct in6_addr *a, __u32 plen)
{
	struct pkey k = pkey_of(a, plen);

	if (hmap_get(&p->pfx_by_key, &k, sizeof(k), NULL))
		return 0;
	if (vec_reserve(&p->pfx, cap, p->npfx, sizeof(*p->pfx)) ||
	    hmap_put(&p->pfx_by_key, &k, sizeof(k), p->npfx))
		return -ENOMEM;
	memset(&p->pfx[p->npfx], 0, sizeof(*p->pfx));
	p->pfx[p->npfx].a = k.a;
	p->pfx[p->npfx].plen = plen;
	p->npfx++;
	return 0;
}

static int pfx_cmp(const void *a, const void *b)
{
	const struct cpfx *x = a, *y = b;

	if (x->plen != y->plen)
		return x->plen > y->plen ? -1 : 1;
	return memcmp(&x->a, &y->a, sizeof(x->a));
}

/* Blocks by cidr prefix and by except prefix: key -> list in lists[]. */
struct blockidx {
	struct hmap cidr, except;
	struct sizelist *lists;
	size_t nlists, cap;
};

static int bidx_add(struct blockidx *x, struct hmap *h, const struct in6_addr *a, __u32 plen,
		    size_t block)
{
	struct pkey k = pkey_of(a, plen);
	struct sizelist *l;
	size_t i;

	if (!hmap_get(h, &k, sizeof(k), &i)) {
		if (vec_reserve(&x->lists, &x->cap, x->nlists, sizeof(*x->lists)))
			return -ENOMEM;
		i = x->nlists++;
		memset(&x->lists[i], 0, sizeof(*x->lists));
		if (hmap_put(h, &k, sizeof(k), i))
			return -ENOMEM;
	}
	l = &x->lists[i];
	if (vec_reserve(&l->v, &l->cap, l->n, sizeof(*l->v)))
		return -ENOMEM;
	l->v[l->n++] = block;
	return 0;
}

static int size_cmp(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

/* The blocks matching the addresses whose longest prefix is x: a block
 * whose cidr is x or contains it, and none of whose excepts does, of the
 * same family. Only the prefix lengths in use are looked at. */
static int pfx_set(struct seg_compiled *c, struct blockidx *bi, struct cpfx *x, __u32 *mark,
		   __u32 gen)
{
	const struct cstatic *p = cpriv(c)->st;
	size_t n = 0, cap = 0, i;

	for (int pass = 0; pass < 2; pass++) {
		for (size_t l = 0; l < p->nlens; l++) {
			struct pkey k;

			if (p->lens[l] > x->plen)
				continue;
			k = pkey_of(&x->a, p->lens[l]);
			if (!hmap_get(pass ? &bi->except : &bi->cidr, &k, sizeof(k), &i))
				continue;
			for (size_t j = 0; j < bi->lists[i].n; j++) {
				size_t b = bi->lists[i].v[j];

				if (!pass && mark[b] != gen &&
				    pfx_v4(&c->blocks[b]->cidr, c->blocks[b]->plen) ==
					    pfx_v4(&x->a, x->plen)) {
					if (vec_reserve(&x->set, &cap, n, sizeof(*x->set)))
						return -ENOMEM;
					x->set[n++] = b;
					mark[b] = gen;
				} else if (pass) {
					mark[b] = gen - 1; /* excluded */
				}
			}
		}
	}
	for (size_t j = 0; j < n; j++) {
		if (mark[x->set[j]] == gen)
			x->set[x->nset++] = x->set[j];
	}
	if (x->nset)
		qsort(x->set, x->nset, sizeof(*x->set), size_cmp);
	return 0;
}

static int lens_build(struct cstatic *p)
{
	bool seen[129] = {};

	p->lens = calloc(129, sizeof(*p->lens));
	if (!p->lens)
		return -ENOMEM;
	for (size_t i = 0; i < p->npfx; i++)
		seen[p->pfx[i].plen] = true;
	for (int l = 128; l >= 0; l--) {
		if (seen[l])
			p->lens[p->nlens++] = (__u32)l;
	}
	return 0;
}

/* All cidrs and excepts; the v4-mapped /96 too when an IPv6 block covers
 * it, so IPv4 addresses never match an IPv6 ipBlock. */
static int build_prefixes(struct seg_compiled *c)
{
	static const struct in6_addr v4space = { .s6_addr = { [10] = 0xff, [11] = 0xff } };
	struct cstatic *p = cpriv(c)->st;
	struct blockidx bi = {};
	__u32 *mark = NULL;
	size_t cap = 0;
	int err = 0;

	for (size_t i = 0; i < c->nblocks && !err; i++) {
		const struct seg_ipblock *b = c->blocks[i];

		err = pfx_add(p, &cap, &b->cidr, b->plen);
		if (!err)
			err = bidx_add(&bi, &bi.cidr, &b->cidr, b->plen, i);
		for (size_t e = 0; e < b->nexcept && !err; e++) {
			err = pfx_add(p, &cap, &b->except[e], b->except_plen[e]);
			if (!err)
				err = bidx_add(&bi, &bi.except, &b->except[e], b->except_plen[e],
					       i);
		}
		if (!err && b->plen < 96 && seg_prefix_contains(&b->cidr, b->plen, &v4space))
			err = pfx_add(p, &cap, &v4space, 96);
	}
	if (!err && p->npfx)
		qsort(p->pfx, p->npfx, sizeof(*p->pfx), pfx_cmp);
	/* re-index after sorting */
	hmap_free(&p->pfx_by_key);
	for (size_t i = 0; i < p->npfx && !err; i++) {
		struct pkey k = pkey_of(&p->pfx[i].a, p->pfx[i].plen);

		err = hmap_put(&p->pfx_by_key, &k, sizeof(k), i);
	}
	if (!err)
		err = lens_build(p);
	mark = calloc(c->nblocks + 1, sizeof(*mark));
	if (!mark)
		err = -ENOMEM;
	for (size_t i = 0; i < p->npfx && !err; i++)
		err = pfx_set(c, &bi, &p->pfx[i], mark, (__u32)(2 * i + 2));
	free(mark);
	hmap_free(&bi.cidr);
	hmap_free(&bi.except);
	for (size_t i = 0; i < bi.nlists; i++)
		free(bi.lists[i].v);
	free(bi.lists);
	return err;
}

/* Longest prefix of the set containing a, or NULL: one hash lookup per
 * prefix length in use, longest first. */
static const struct cpfx *pfx_lookup(const struct cstatic *p, const struct in6_addr *a)
{
	size_t i;

	for (size_t l = 0; l < p->nlens; l++) {
		struct pkey k = pkey_of(a, p->lens[l]);

		if (hmap_get(&p->pfx_by_key, &k, sizeof(k), &i))
			return &p->pfx[i];
	}
	return NULL;
}

const struct cpfx *ident_pfx_lookup(const struct seg_compiled *c, const struct in6_addr *a)
{
	return pfx_lookup(cpriv(c)->st, a);
}

/* ---- named ports used by egress rules ----------------------------------------- */

static int build_egress_names(struct seg_compiled *c)
{
	const struct seg_manifests *m = c->m;
	struct cstatic *p = cpriv(c)->st;
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
				if (!nv || !pv || hmap_put_str(&seen, key, 0) ||
				    !(nv[p->nenames] = strdup(ru->ports[k].name))) {
					err = -ENOMEM;
					break;
				}
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
	for (size_t i = 0; i < l->n; i++) {
		if (i)
			sb_putc(sb, ',');
		sb_puts(sb, l->v[i].key);
		sb_putc(sb, '=');
		sb_puts(sb, l->v[i].val);
	}
}

static void set_key(const struct seg_compiled *c, const size_t *set, size_t n, struct sbuf *sb)
{
	const struct cstatic *st = cpriv(c)->st;

	sb_puts(sb, ";b=");
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_putc(sb, ',');
		sb_puts(sb, st->block_keys[set[i]]);
	}
}

char *ident_pod_key(const struct seg_compiled *c, const struct seg_pod *pod, const size_t *set,
		    size_t nset)
{
	const struct cstatic *p = cpriv(c)->st;
	const struct seg_namespace *ns = ident_ns(c, pod->ns);
	struct sbuf sb = {};

	if (!ns)
		return NULL;
	sb_puts(&sb, "ns=");
	sb_puts(&sb, pod->ns);
	sb_puts(&sb, ";nl=");
	labels_key(&sb, &ns->labels);
	sb_puts(&sb, ";pl=");
	labels_key(&sb, &pod->labels);
	if (p->nenames) {
		sb_printf(&sb, ";np=");
		for (size_t i = 0; i < p->nenames; i++) {
			__u16 port = seg_pod_named_port(pod, p->enames[i], p->eprotos[i]);

			if (port)
				sb_printf(&sb, "%s/%s=%u,", p->enames[i],
					  seg_proto_str(p->eprotos[i]), port);
		}
	}
	if (nset)
		set_key(c, set, nset, &sb);
	return sb_take(&sb);
}

int ident_get(struct seg_compiled *c, const struct seg_id_alloc *prev, char *key,
	      const struct seg_namespace *ns, size_t pod, const size_t *set, size_t nset,
	      size_t *idx, bool *added)
{
	struct cpriv *p = cpriv(c);
	struct seg_identity *id;
	size_t v;
	__u32 num;

	if (added)
		*added = false;
	if (!key)
		return -ENOMEM;
	if (hmap_get_str(&c->numbering->ids->by_key, key, &v) &&
	    hmap_get(&p->id_by_num, &(__u32){ (__u32)v }, sizeof(__u32), idx)) {
		free(key);
		return 0;
	}
	if (vec_reserve(&c->ids, &p->cap_ids, c->nids, sizeof(*c->ids)) ||
	    !(p->id_rep = realloc(p->id_rep, p->cap_ids * sizeof(*p->id_rep))) ||
	    !(p->id_users = realloc(p->id_users, p->cap_ids * sizeof(*p->id_users)))) {
		free(key);
		return -ENOMEM;
	}
	id = &c->ids[c->nids];
	memset(id, 0, sizeof(*id));
	id->key = key;
	id->ns = ns;
	id->labels = pod != SIZE_MAX ? &c->m->pods[pod].labels : NULL;
	p->id_rep[c->nids] = pod;
	p->id_users[c->nids] = 0;
	if (nset) {
		id->blocks = malloc(nset * sizeof(*set));
		if (!id->blocks)
			return -ENOMEM;
		memcpy(id->blocks, set, nset * sizeof(*set));
		id->nblocks = nset;
	}
	*idx = c->nids++;
	if (alloc_get(c->numbering->ids, prev, key, &num))
		return -ENOMEM;
	id->id = num;
	if (added)
		*added = true;
	return hmap_put(&p->id_by_num, &id->id, sizeof(id->id), *idx);
}

static int ipc_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct seg_ipc_entry *)a)->addr,
		      &((const struct seg_ipc_entry *)b)->addr, sizeof(struct in6_addr));
}

const struct seg_ipc_entry *ipc_find(const struct seg_compiled *c, const struct in6_addr *a)
{
	const struct cpriv *p = cpriv(c);
	struct seg_ipc_entry k;
	size_t i;

	if (p->ipc_hashed)
		return hmap_get(&p->ipc_by_addr, a, sizeof(*a), &i) ? &c->ipc[i] : NULL;
	k.addr = *a;
	if (p->ipc_sorted) {
		const struct seg_ipc_entry *e =
			bsearch(&k, c->ipc, p->ipc_sorted, sizeof(*c->ipc), ipc_cmp);

		if (e)
			return e;
	}
	for (i = p->ipc_sorted; i < c->nipc; i++) {
		if (!memcmp(&c->ipc[i].addr, a, sizeof(*a)))
			return &c->ipc[i];
	}
	return NULL;
}

int ipc_finish(struct seg_compiled *c)
{
	struct cpriv *p = cpriv(c);
	size_t n = p->ipc_sorted, k = c->nipc - n;

	hmap_free(&p->ipc_by_addr);
	p->ipc_hashed = false;
	if (k > 1)
		qsort(c->ipc + n, k, sizeof(*c->ipc), ipc_cmp);
	if (n && k) {
		/* merge the sorted tail into the sorted head, from the back */
		struct seg_ipc_entry *tail = malloc(k * sizeof(*tail));
		size_t i = n, j = k, o = n + k;

		if (!tail)
			return -ENOMEM;
		memcpy(tail, c->ipc + n, k * sizeof(*tail));
		while (j) {
			if (i && ipc_cmp(&c->ipc[i - 1], &tail[j - 1]) > 0)
				c->ipc[--o] = c->ipc[--i];
			else
				c->ipc[--o] = tail[--j];
		}
		free(tail);
	}
	p->ipc_sorted = c->nipc;
	return 0;
}

static int ipc_add(struct seg_compiled *c, const struct seg_pod *pod, size_t pi,
		   const struct in6_addr *a, __u32 id, struct seg_diag *d)
{
	struct cpriv *p = cpriv(c);
	char buf[INET6_ADDRSTRLEN];
	const struct seg_ipc_entry *prev = ipc_find(c, a);

	if (prev) {
		const struct seg_pod *o = &c->m->pods[prev->pod];

		return cdiag(d, "%s:%d:%d: pods %s/%s and %s/%s share the address %s",
			     pod->loc.file, pod->loc.line, pod->loc.col, o->ns, o->name, pod->ns,
			     pod->name, seg_addr_str(a, buf, sizeof(buf)));
	}
	if (vec_reserve(&c->ipc, &p->cap_ipc, c->nipc, sizeof(*c->ipc)))
		return -ENOMEM;
	memset(&c->ipc[c->nipc], 0, sizeof(*c->ipc));
	c->ipc[c->nipc].addr = *a;
	c->ipc[c->nipc].val.identity = id;
	c->ipc[c->nipc].pod = pi;
	c->nipc++;
	return p->ipc_hashed ? hmap_put(&p->ipc_by_addr, a, sizeof(*a), c->nipc - 1) : 0;
}

/* A pod's identities (endpoint, and per address) and ipcache entries. */
int ident_add_pod(struct seg_compiled *c, const struct seg_id_alloc *prev, size_t i,
		  struct seg_diag *d, size_t **added, size_t *nadded, size_t *cap_added)
{
	const struct seg_pod *pod = &c->m->pods[i];
	const struct seg_namespace *ns = ident_ns(c, pod->ns);
	struct cpriv *p = cpriv(c);
	bool nw = false;
	int err;

	err = ident_get(c, prev, ident_pod_key(c, pod, NULL, 0), ns, i, NULL, 0, &p->pod_id[i],
			&nw);
	if (!err)
		p->id_users[p->pod_id[i]]++;
	if (!err && nw && added && !(err = vec_reserve(added, cap_added, *nadded, sizeof(**added))))
		(*added)[(*nadded)++] = p->pod_id[i];
	for (size_t a = 0; a < pod->naddrs && !err; a++) {
		const struct cpfx *x = pfx_lookup(p->st, &pod->addrs[a]);
		size_t idx = p->pod_id[i];

		if (x && x->nset) {
			err = ident_get(c, prev, ident_pod_key(c, pod, x->set, x->nset), ns, i,
					x->set, x->nset, &idx, &nw);
			if (!err && nw && added &&
			    !(err = vec_reserve(added, cap_added, *nadded, sizeof(**added))))
				(*added)[(*nadded)++] = idx;
		}
		if (!err)
			p->id_users[idx]++;
		if (!err)
			err = ipc_add(c, pod, i, &pod->addrs[a], c->ids[idx].id, d);
	}
	return err;
}

static int build_pod_ids(struct seg_compiled *c, const struct seg_compile_opts *o,
			 struct seg_diag *d)
{
	const struct seg_manifests *m = c->m;
	struct cpriv *p = cpriv(c);
	int err = 0;

	p->pod_id = calloc(m->npods + 1, sizeof(*p->pod_id));
	if (!p->pod_id)
		return -ENOMEM;
	p->ipc_hashed = true; /* while building; sorted after */
	for (size_t i = 0; i < m->npods && !err; i++)
		err = ident_add_pod(c, o->prev ? o->prev->ids : NULL, i, d, NULL, NULL, NULL);
	if (!err)
		err = ipc_finish(c);
	if (err == -ENOMEM)
		return cdiag(d, "out of memory building identities"), -ENOMEM;
	return err;
}

static int build_cidr_ids(struct seg_compiled *c, const struct seg_compile_opts *o)
{
	struct cstatic *st = cpriv(c)->st;
	int err = 0;

	st->lpm = calloc(st->npfx + 1, sizeof(*st->lpm));
	if (!st->lpm)
		return -ENOMEM;
	for (size_t i = 0; i < st->npfx && !err; i++) {
		struct cpfx *x = &st->pfx[i];
		struct sbuf sb = {};
		size_t idx;

		x->id = SEG_ID_WORLD;
		if (x->nset) {
			sb_printf(&sb, "cidr");
			set_key(c, x->set, x->nset, &sb);
			err = ident_get(c, o->prev ? o->prev->ids : NULL, sb_take(&sb), NULL,
					SIZE_MAX, x->set, x->nset, &idx, NULL);
			if (!err)
				x->id = c->ids[idx].id;
			if (!err)
				cpriv(c)->id_users[idx]++; /* the prefix: never dies */
		}
		st->lpm[i].key.prefixlen = x->plen;
		memcpy(st->lpm[i].key.addr, &x->a, sizeof(x->a));
		st->lpm[i].val.identity = x->id;
	}
	c->lpm = st->lpm;
	c->nlpm = st->npfx;
	return err;
}

/* ---- pod identities taken from a previous compile ------------------------------ */

/* Would every pod identity and ipcache entry of c come out as prev has
 * them? The same pods and namespaces (another manifests object: one
 * changed in place cannot be compared), and the same egress named ports
 * and ipBlock prefixes (the policies' share of an identity key). */
static bool ident_keys_same(const struct seg_compiled *c, const struct seg_compiled *prev)
{
	const struct seg_manifests *m = c->m, *om = prev->m;
	const struct cstatic *st = cpriv(c)->st, *ps = cpriv(prev)->st;
	const struct cpriv *pp = cpriv(prev);

	if (!om || om == m || om->npods != m->npods || om->nnss != m->nnss ||
	    pp->npods != om->npods || st->nenames != ps->nenames || c->nblocks != prev->nblocks ||
	    st->npfx != ps->npfx)
		return false;
	for (size_t i = 0; i < st->nenames; i++) {
		if (strcmp(st->enames[i], ps->enames[i]) || st->eprotos[i] != ps->eprotos[i])
			return false;
	}
	for (size_t b = 0; b < c->nblocks; b++) {
		if (strcmp(st->block_keys[b], ps->block_keys[b]))
			return false;
	}
	for (size_t i = 0; i < st->npfx; i++) {
		const struct cpfx *x = &st->pfx[i], *y = &ps->pfx[i];

		if (x->plen != y->plen || memcmp(&x->a, &y->a, sizeof(x->a)) ||
		    x->nset != y->nset ||
		    (x->nset && memcmp(x->set, y->set, x->nset * sizeof(*x->set))))
			return false;
	}
	for (size_t i = 0; i < m->nnss; i++) {
		if (!ns_eq(&om->nss[i], &m->nss[i]))
			return false;
	}
	for (size_t i = 0; i < m->npods; i++) {
		if (!pod_eq(&om->pods[i], &m->pods[i]))
			return false;
	}
	return true;
}

/* prev's index of the identity numbered num, or SIZE_MAX. */
static size_t prev_idx(const struct cpriv *pp, __u32 num)
{
	size_t i;

	return hmap_get(&pp->id_by_num, &num, sizeof(num), &i) ? i : SIZE_MAX;
}

/* The pod identities prev's pods and ipcache entries use, added to c in
 * prev's order (numbered through c's numbering, so as a full compile
 * would number them), then c's pod_id, ipcache, users and representatives
 * as build_pod_ids() would leave them. 1: prev is not usable as it is
 * (the caller builds instead; nothing was added). */
static int ident_clone_pods(struct seg_compiled *c, const struct seg_compiled *prev,
			    const struct seg_compile_opts *o)
{
	const struct cpriv *pp = cpriv(prev);
	const struct seg_manifests *m = c->m;
	struct cpriv *p = cpriv(c);
	size_t *map = calloc(prev->nids + 1, sizeof(*map));
	int err = 0;

	if (!map)
		return -ENOMEM;
	/* map[i]: 1 = used by a pod or an address; every use a pod identity */
	for (size_t j = 0; j < m->npods && !err; j++) {
		size_t i = pp->pod_id[j];

		if (i >= prev->nids || pp->id_rep[i] >= m->npods)
			err = 1;
		else
			map[i] = 1;
	}
	for (size_t k = 0; k < prev->nipc && !err; k++) {
		size_t i = prev_idx(pp, prev->ipc[k].val.identity);

		if (i == SIZE_MAX || pp->id_rep[i] >= m->npods || prev->ipc[k].pod >= m->npods)
			err = 1;
		else
			map[i] = 1;
	}
	/* a pod identity nobody uses (an update drops them): its number would
	 * stay in the group lists build_peer_lists() copies from prev */
	for (size_t i = 0; i < prev->nids && !err; i++) {
		if (pp->id_rep[i] != SIZE_MAX && !map[i])
			err = 1;
	}
	/* now map[i]: c's index of prev's identity i */
	for (size_t i = 0; i < prev->nids && !err; i++) {
		const struct seg_identity *id = &prev->ids[i];
		const struct seg_pod *rep = &m->pods[pp->id_rep[i]];
		char *key;

		if (!map[i]) {
			map[i] = SIZE_MAX;
			continue;
		}
		key = strdup(id->key);
		err = ident_get(c, o->prev ? o->prev->ids : NULL, key, ident_ns(c, rep->ns),
				pp->id_rep[i], id->blocks, id->nblocks, &map[i], NULL);
	}
	p->pod_id = err ? NULL : calloc(m->npods + 1, sizeof(*p->pod_id));
	c->ipc = err ? NULL : malloc((prev->nipc + 1) * sizeof(*c->ipc));
	if (!err && (!p->pod_id || !c->ipc))
		err = -ENOMEM;
	if (err) {
		free(map);
		return err;
	}
	/* users and the first pod of each identity, as pod by pod */
	for (size_t i = 0; i < c->nids; i++) {
		if (p->id_rep[i] != SIZE_MAX)
			p->id_rep[i] = m->npods;
	}
	for (size_t j = 0; j < m->npods; j++) {
		size_t i = map[pp->pod_id[j]];

		p->pod_id[j] = i;
		p->id_users[i]++;
		if (p->id_rep[i] > j)
			p->id_rep[i] = j;
	}
	for (size_t k = 0; k < prev->nipc; k++) {
		size_t i = map[prev_idx(pp, prev->ipc[k].val.identity)];

		c->ipc[k] = prev->ipc[k];
		c->ipc[k].val.identity = c->ids[i].id;
		p->id_users[i]++;
		if (p->id_rep[i] > c->ipc[k].pod)
			p->id_rep[i] = c->ipc[k].pod;
	}
	for (size_t i = 0; i < c->nids; i++) {
		if (p->id_rep[i] != SIZE_MAX)
			c->ids[i].labels = &m->pods[p->id_rep[i]].labels;
	}
	c->nipc = prev->nipc;
	p->cap_ipc = prev->nipc + 1;
	p->ipc_sorted = c->nipc; /* prev's, sorted by address */
	p->ids_reused = true;
	free(map);
	return 0;
}

int ident_build(struct seg_compiled *c, const struct seg_compile_opts *o, struct seg_diag *d)
{
	struct seg_numbering *n = calloc(1, sizeof(*n));
	size_t *slot_block = NULL;
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
		err = build_slots(c);
	if (!err && !(slot_block = calloc(cpriv(c)->st->nslots + 1, sizeof(*slot_block))))
		err = -ENOMEM;
	if (!err)
		err = build_blocks(c, slot_block);
	if (!err) {
		for (size_t s = 0; s < cpriv(c)->st->nslots; s++)
			cpriv(c)->st->slots[s].group = slot_block[s]; /* block, for now */
	}
	free(slot_block);
	if (!err)
		err = build_prefixes(c);
	if (!err)
		err = build_egress_names(c);
	if (!err)
		err = build_cidr_ids(c, o);
	if (err)
		return cdiag(d, "out of memory building ipBlock prefixes"), err;
	if (o->reuse && ident_keys_same(c, o->reuse)) {
		err = ident_clone_pods(c, o->reuse, o);
		if (err == -ENOMEM)
			return cdiag(d, "out of memory building identities"), err;
		if (err <= 0)
			return err;
		/* 1: prev's identities are not usable as they are: built */
	}
	return build_pod_ids(c, o, d);
}

void cstatic_put(struct cstatic *st)
{
	if (!st || --st->refs > 0)
		return;
	for (size_t i = 0; i < st->nimplicit; i++)
		seg_namespace_clear(&st->implicit[i]);
	free(st->implicit);
	free(st->block_slot);
	for (size_t i = 0; st->block_keys && i < st->nblocks; i++)
		free(st->block_keys[i]);
	free(st->block_keys);
	free(st->block_group);
	for (size_t i = 0; i < st->npfx; i++)
		free(st->pfx[i].set);
	free(st->pfx);
	free(st->lens);
	hmap_free(&st->pfx_by_key);
	free(st->lpm);
	for (size_t i = 0; i < st->nenames; i++)
		free(st->enames[i]);
	free(st->enames);
	free(st->eprotos);
	free(st->pol_slot);
	free(st->slots);
	free(st->groups);
	hmap_free(&st->group_by_key);
	hmap_free(&st->ns_groups);
	for (size_t i = 0; i < st->nnsg; i++)
		free(st->nsg[i].v);
	free(st->nsg);
	free(st->wide.v);
	for (size_t i = 0; st->group_pols && i < st->ngroups; i++)
		free(st->group_pols[i].v);
	free(st->group_pols);
	free(st->any_pols.v);
	hmap_free(&st->ns_pols);
	for (size_t i = 0; i < st->nbyns; i++)
		free(st->byns[i].v);
	free(st->byns);
	free(st->rules);
	hmap_free(&st->rule_by_id);
	free(st);
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
	free(c->ipc);
	if (c->numbering) {
		alloc_free(c->numbering->ids);
		alloc_free(c->numbering->policies);
		alloc_free(c->numbering->rules);
		free(c->numbering);
	}
	if (!p)
		return;
	free(p->id_rep);
	free(p->id_users);
	free(p->pod_id);
	hmap_free(&p->ns_by_name);
	hmap_free(&p->id_by_num);
	hmap_free(&p->ipc_by_addr);
}
