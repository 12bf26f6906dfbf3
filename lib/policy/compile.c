// SPDX-License-Identifier: GPL-2.0-only
/*
 * NetworkPolicy -> endpoints, policy entries and the rule table.
 *
 * Per local pod and direction: the policies of its namespace whose
 * podSelector matches it and whose policyTypes name the direction. None:
 * not isolated. Else the union of their rules of that direction becomes
 * policy entries {policy_id, remote, port block, proto, dir, wild}. Pods
 * with the same selecting policies (and, where ingress named ports need
 * it, the same named ports) share one policy id, so the work is per
 * distinct rule set, not per pod. Peer -> identity matches are computed
 * once per peer.
 */
#include "compiled.h"
#include "addr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const __u32 cap_default[5] = { SEG_MAX_ENDPOINTS, SEG_MAX_IPCACHE, SEG_MAX_IPCACHE_LPM,
				      SEG_MAX_POLICY, SEG_MAX_RULES };

const char *seg_cap_name(int i)
{
	static const char *const names[5] = { SEG_MAP_ENDPOINTS, SEG_MAP_IPCACHE,
					      SEG_MAP_IPCACHE_LPM, SEG_MAP_POLICY, SEG_MAP_RULES };

	return i >= 0 && i < 5 ? names[i] : "?";
}

/* ---- peers -> identities ------------------------------------------------- */

static bool peer_matches(const struct seg_namespace *pol_ns, const struct seg_peer *pe,
			 const struct seg_identity *id)
{
	if (!id->labels) /* CIDR identities: only ipBlock peers match them */
		return false;
	switch (pe->kind) {
	case SEG_PEER_PODS: /* namespaces are interned: compare pointers */
		return id->ns == pol_ns && seg_selector_matches(&pe->pod_sel, id->labels);
	case SEG_PEER_NAMESPACES:
		return seg_selector_matches(&pe->ns_sel, &id->ns->labels);
	case SEG_PEER_NS_PODS:
		return seg_selector_matches(&pe->ns_sel, &id->ns->labels) &&
		       seg_selector_matches(&pe->pod_sel, id->labels);
	case SEG_PEER_IPBLOCK:
		break;
	}
	return false;
}

/* Group g (its policy's namespace pol_ns) matches identity id. */
static bool group_match(const struct seg_compiled *c, size_t g, const struct seg_namespace *pol_ns,
			const struct seg_identity *id)
{
	const struct cstatic *st = cpriv(c)->st;
	const struct cgroup *gr = &st->groups[g];

	if (gr->block != SIZE_MAX) {
		for (size_t k = 0; k < id->nblocks; k++) {
			if (id->blocks[k] == gr->block)
				return true;
		}
		return false;
	}
	return peer_matches(pol_ns, slot_peer(c->m, &st->slots[gr->slot]), id);
}

static const struct seg_namespace *group_ns(const struct seg_compiled *c, size_t g)
{
	const struct cstatic *st = cpriv(c)->st;

	return ident_ns(c, c->m->pols[st->slots[st->groups[g].slot].pol].ns);
}

bool group_matches(const struct seg_compiled *c, size_t g, const struct seg_identity *id)
{
	return group_match(c, g, group_ns(c, g), id);
}

static void selector_key(struct sbuf *sb, const struct seg_selector *s)
{
	for (size_t i = 0; i < s->match.n; i++) { /* "%s=%s," */
		sb_puts(sb, s->match.v[i].key);
		sb_putc(sb, '=');
		sb_puts(sb, s->match.v[i].val);
		sb_putc(sb, ',');
	}
	for (size_t i = 0; i < s->nexprs; i++) { /* ";%s %d", then "|%s" per value */
		sb_putc(sb, ';');
		sb_puts(sb, s->exprs[i].key);
		sb_putc(sb, ' ');
		sb_putu(sb, s->exprs[i].op);
		for (size_t j = 0; j < s->exprs[i].nvalues; j++) {
			sb_putc(sb, '|');
			sb_puts(sb, s->exprs[i].values[j]);
		}
	}
}

/* Peers that select the same way share one list: "kind|ns|pod sel|ns sel";
 * ipBlock peers with the same block: "B<block>". */
static const char *peer_key(struct sbuf *sb, const struct seg_netpol *np, const struct seg_peer *pe,
			    size_t block)
{
	sb->n = 0; /* the caller's buffer, reused for every slot */
	if (pe->kind == SEG_PEER_IPBLOCK) {
		sb_putc(sb, 'B');
		sb_putu(sb, block);
		return sb->oom ? NULL : sb->p;
	}
	sb_putu(sb, pe->kind);
	sb_putc(sb, '|');
	sb_puts(sb, pe->kind == SEG_PEER_PODS ? np->ns : "");
	sb_putc(sb, '|');
	selector_key(sb, &pe->pod_sel);
	sb_putc(sb, '|');
	selector_key(sb, &pe->ns_sel);
	return sb->oom ? NULL : sb->p;
}

static int sizelist_add(struct sizelist *l, size_t v)
{
	if (vec_reserve(&l->v, &l->cap, l->n, sizeof(*l->v)))
		return -ENOMEM;
	l->v[l->n++] = v;
	return 0;
}

/* Where a new pod identity may be matched: its namespace's pod selector
 * groups, every namespace selector group (ipBlock groups: by block). */
static int group_index(struct seg_compiled *c, size_t g)
{
	struct cstatic *st = cpriv(c)->st;
	const struct cslot *sl = &st->slots[st->groups[g].slot];
	const struct seg_peer *pe = slot_peer(c->m, sl);
	const char *ns = c->m->pols[sl->pol].ns;
	size_t i;

	if (pe->kind == SEG_PEER_IPBLOCK) {
		st->block_group[st->groups[g].block] = g;
		return 0;
	}
	if (pe->kind != SEG_PEER_PODS)
		return sizelist_add(&st->wide, g);
	if (!hmap_get_str(&st->ns_groups, ns, &i)) {
		if (vec_reserve(&st->nsg, &(size_t){ st->nnsg }, st->nnsg, sizeof(*st->nsg)))
			return -ENOMEM;
		i = st->nnsg++;
		memset(&st->nsg[i], 0, sizeof(st->nsg[i]));
		if (hmap_put_str(&st->ns_groups, ns, i))
			return -ENOMEM;
	}
	return sizelist_add(&st->nsg[i], g);
}

static int idlist_add(struct idlist *l, __u32 id)
{
	if (vec_reserve(&l->v, &l->cap, l->n, sizeof(*l->v)))
		return -ENOMEM;
	l->v[l->n++] = id;
	return 0;
}

/* The identities a new group can match, by kind: pod identities by
 * namespace (a pod selector group tries its namespace's, a namespace
 * selector group those of the namespaces it selects), and the identities
 * inside an ipBlock (a block group tries those). Not every identity
 * against every group: that was the largest part of a full compile with
 * many pods. */
struct nsbucket {
	const struct seg_namespace *ns;
	struct sizelist ids; /* indexes in c->ids */
};

struct idindex {
	struct nsbucket *b;
	size_t nb, cap;
	struct hmap by_ns; /* namespace pointer -> index in b */
	struct sizelist inblock;
};

static void idindex_free(struct idindex *x)
{
	for (size_t i = 0; i < x->nb; i++)
		free(x->b[i].ids.v);
	free(x->b);
	hmap_free(&x->by_ns);
	free(x->inblock.v);
}

static int idindex_build(const struct seg_compiled *c, struct idindex *x)
{
	int err = 0;

	for (size_t j = 0; j < c->nids && !err; j++) {
		const struct seg_identity *id = &c->ids[j];
		size_t k;

		if (id->nblocks)
			err = sizelist_add(&x->inblock, j);
		if (err || !id->labels || !id->ns)
			continue; /* CIDR identities: only block groups match them */
		if (!hmap_get(&x->by_ns, &id->ns, sizeof(id->ns), &k)) {
			err = vec_reserve(&x->b, &x->cap, x->nb, sizeof(*x->b));
			if (err)
				break;
			k = x->nb++;
			memset(&x->b[k], 0, sizeof(x->b[k]));
			x->b[k].ns = id->ns;
			err = hmap_put(&x->by_ns, &id->ns, sizeof(id->ns), k);
		}
		if (!err)
			err = sizelist_add(&x->b[k].ids, j);
	}
	return err;
}

static int group_add_ids(struct seg_compiled *c, size_t g, const struct seg_namespace *gns,
			 const struct sizelist *l)
{
	int err = 0;

	for (size_t k = 0; k < l->n && !err; k++) {
		const struct seg_identity *id = &c->ids[l->v[k]];

		if (group_match(c, g, gns, id))
			err = idlist_add(&cpriv(c)->lists[g], id->id);
	}
	return err;
}

/* lists[g]: the identities group g matches, tried through x. */
static int group_fill(struct seg_compiled *c, size_t g, const struct idindex *x)
{
	const struct cstatic *st = cpriv(c)->st;
	const struct cgroup *gr = &st->groups[g];
	const struct seg_peer *pe = slot_peer(c->m, &st->slots[gr->slot]);
	const struct seg_namespace *gns = group_ns(c, g);
	size_t k;
	int err = 0;

	if (gr->block != SIZE_MAX)
		return group_add_ids(c, g, gns, &x->inblock);
	switch (pe->kind) {
	case SEG_PEER_PODS:
		if (gns && hmap_get(&x->by_ns, &gns, sizeof(gns), &k))
			err = group_add_ids(c, g, gns, &x->b[k].ids);
		break;
	case SEG_PEER_NAMESPACES:
	case SEG_PEER_NS_PODS:
		for (k = 0; k < x->nb && !err; k++) {
			if (seg_selector_matches(&pe->ns_sel, &x->b[k].ns->labels))
				err = group_add_ids(c, g, gns, &x->b[k].ids);
		}
		break;
	case SEG_PEER_IPBLOCK: /* always a block group */
		break;
	}
	return err;
}

int idlist_copy(struct idlist *dst, const struct idlist *src)
{
	if (!src->n)
		return 0;
	dst->v = malloc(src->n * sizeof(*src->v));
	if (!dst->v)
		return -ENOMEM;
	memcpy(dst->v, src->v, src->n * sizeof(*src->v));
	dst->n = dst->cap = src->n;
	return 0;
}

/* Which namespaces' policies are those of prev in the same order, each
 * selecting as it did there (cpriv.ns_same: an edited rule or port keeps
 * it), and each pod's endpoint in prev (prev_ep). */
static int mark_same_nss(struct seg_compiled *c, const struct seg_compiled *prev)
{
	struct cpriv *p = cpriv(c);
	const struct cstatic *st = p->st, *ps = cpriv(prev)->st;

	p->ns_same = calloc(st->nbyns + 1, 1);
	p->prev_ep = malloc((c->m->npods + 1) * sizeof(*p->prev_ep));
	if (!p->ns_same || !p->prev_ep)
		return -ENOMEM;
	for (size_t i = 0; i < c->m->npods; i++)
		p->prev_ep[i] = SIZE_MAX;
	for (size_t e = 0; e < prev->neps; e++) /* the pods are prev's, by index */
		p->prev_ep[prev->eps[e].pod] = e;
	for (size_t k = 0; k < st->nbyns; k++) {
		const struct sizelist *l = &st->byns[k];
		size_t pk, q = 0;

		if (!l->n || !hmap_get_str(&ps->ns_pols, c->m->pols[l->v[0]].ns, &pk) ||
		    ps->byns[pk].n != l->n)
			continue;
		while (q < l->n && p->prev_pol[l->v[q]] == ps->byns[pk].v[q] &&
		       (p->pol_same[l->v[q]] ||
			pol_sel_eq(&c->m->pols[l->v[q]], &prev->m->pols[ps->byns[pk].v[q]])))
			q++;
		p->ns_same[k] = q == l->n;
	}
	return 0;
}

/* "ns/name" of np into sb (emptied first). */
static void pol_name(struct sbuf *sb, const struct seg_netpol *np)
{
	sb->n = 0;
	sb_puts(sb, np->ns);
	sb_putc(sb, '/');
	sb_puts(sb, np->name);
}

/* Which policies o->reuse has unchanged (cpriv.pol_same, prev_pol): by
 * index when both manifests list the same policy there, else by
 * namespace/name. Before the peer lists, which follow prev's groups for
 * unchanged policies. */
static int mark_same_pols(struct seg_compiled *c, const struct seg_compiled *prev)
{
	const struct seg_manifests *m = c->m, *om = prev->m;
	struct cpriv *p = cpriv(c);
	struct hmap by_name = {};
	struct sbuf sb = {};
	bool hashed = false;
	int err = 0;

	p->reuse = prev;
	p->pol_same = calloc(m->npols + 1, 1);
	p->prev_pol = malloc((m->npols + 1) * sizeof(*p->prev_pol));
	if (!p->pol_same || !p->prev_pol)
		return -ENOMEM;
	for (size_t i = 0; i < m->npols && !err; i++) {
		const struct seg_netpol *np = &m->pols[i];
		size_t j = i;

		if (j >= om->npols || strcmp(om->pols[j].name, np->name) ||
		    strcmp(om->pols[j].ns, np->ns)) {
			for (size_t q = 0; !hashed && q < om->npols && !err; q++) {
				pol_name(&sb, &om->pols[q]);
				err = sb.oom ? -ENOMEM : hmap_put(&by_name, sb.p, sb.n, q);
			}
			hashed = true;
			pol_name(&sb, np);
			if (err || sb.oom || !hmap_get(&by_name, sb.p, sb.n, &j)) {
				p->prev_pol[i] = SIZE_MAX;
				continue;
			}
		}
		p->prev_pol[i] = j;
		p->pol_same[i] = pol_eq(&om->pols[j], np);
	}
	if (!err && sb.oom)
		err = -ENOMEM;
	sb_free(&sb);
	hmap_free(&by_name);
	return err;
}

static int build_peer_lists(struct seg_compiled *c, const struct seg_compile_opts *o)
{
	const struct seg_manifests *m = c->m;
	struct cpriv *p = cpriv(c);
	struct cstatic *st = p->st;
	struct idindex x = {};
	struct sbuf kb = {};
	size_t cap = 0, lcap = 0, gpcap = 0, pg, *gmap = NULL;
	bool reuse = p->ids_reused && o->reuse, indexed = false;
	const struct cstatic *ps = reuse ? cpriv(o->reuse)->st : NULL;
	int err = 0;

	st->block_group = calloc(st->nblocks + 1, sizeof(*st->block_group));
	if (!st->block_group)
		return -ENOMEM;
	/* gmap: prev's group -> this compile's, for the slots of unchanged
	 * policies (their keys are those of prev's slots at the same place;
	 * blocks are prev's, the identities being reused): the key is made
	 * once per group, not per slot */
	if (p->pol_same) {
		gmap = malloc((ps->ngroups + 1) * sizeof(*gmap));
		if (!gmap)
			return -ENOMEM;
		for (size_t g = 0; g < ps->ngroups; g++)
			gmap[g] = SIZE_MAX;
	}
	for (size_t s = 0; s < st->nslots && !err; s++) {
		struct cslot *sl = &st->slots[s];
		const struct seg_netpol *np = &m->pols[sl->pol];
		size_t block = sl->group, g, ppg = SIZE_MAX; /* ident_build left the block there */
		const char *key;

		sl->group = SIZE_MAX;
		if (!np->types[sl->dir])
			continue;
		if (gmap && p->pol_same[sl->pol]) {
			ppg = ps->slots[ps->pol_slot[p->prev_pol[sl->pol]] + s -
					st->pol_slot[sl->pol]]
				      .group;
			if (ppg != SIZE_MAX && gmap[ppg] != SIZE_MAX) {
				g = gmap[ppg];
				goto have;
			}
		}
		key = peer_key(&kb, np, slot_peer(m, sl), block);
		if (!key) {
			err = -ENOMEM;
			break;
		}
		if (!hmap_get_str(&st->group_by_key, key, &g)) {
			err = vec_reserve(&st->groups, &cap, st->ngroups, sizeof(*st->groups));
			if (!err)
				err = vec_reserve(&p->lists, &lcap, st->ngroups, sizeof(*p->lists));
			if (err)
				break;
			if (vec_reserve(&st->group_pols, &gpcap, st->ngroups,
					sizeof(*st->group_pols))) {
				err = -ENOMEM;
				break;
			}
			memset(&st->group_pols[st->ngroups], 0, sizeof(*st->group_pols));
			g = st->ngroups++;
			st->groups[g].slot = s;
			st->groups[g].block = block;
			memset(&p->lists[g], 0, sizeof(p->lists[g]));
			err = hmap_put_str(&st->group_by_key, key, g);
			if (!err)
				err = group_index(c, g);
			/* a group prev had (same key): same identities, same numbers */
			if (!err && reuse &&
			    hmap_get_str(&cpriv(o->reuse)->st->group_by_key, key, &pg)) {
				err = idlist_copy(&p->lists[g], &cpriv(o->reuse)->lists[pg]);
			} else if (!err) { /* matched, through the index (built once) */
				if (!indexed)
					err = idindex_build(c, &x);
				indexed = true;
				if (!err)
					err = group_fill(c, g, &x);
			}
		}
		if (ppg != SIZE_MAX)
			gmap[ppg] = g;
have:
		sl->group = g;
		if (!err && (!st->group_pols[g].n ||
			     st->group_pols[g].v[st->group_pols[g].n - 1] != sl->pol))
			err = sizelist_add(&st->group_pols[g], sl->pol);
	}
	for (size_t i = 0; i < m->npols && !err; i++) {
		const struct seg_netpol *np = &m->pols[i];
		bool any = false;

		for (size_t r = 0; np->types[SEG_DIR_EGRESS] && r < np->nrules[SEG_DIR_EGRESS];
		     r++) {
			const struct seg_rule *ru = &np->rules[SEG_DIR_EGRESS][r];

			for (size_t q = 0; !ru->npeers && q < ru->nports; q++)
				any |= ru->ports[q].name != NULL;
		}
		if (any)
			err = sizelist_add(&st->any_pols, i);
	}
	idindex_free(&x);
	sb_free(&kb);
	free(gmap);
	return err;
}

/* ---- rule table ------------------------------------------------------------ */

/* "ns/name/dir/rule/peer" into key (as "%s/%s/%d/%zu/%zu" would: a rule
 * without peers has peer (size_t)-1), without printf: one per rule and
 * peer of every policy, the largest part of the rule table's cost. */
static void rule_key(char *key, size_t len, const struct seg_netpol *np, int d, size_t r,
		     size_t peer)
{
	size_t nl = strlen(np->ns), ml = strlen(np->name), n = 0;
	const size_t v[3] = { (size_t)d, r, peer };

	if (nl + ml + 3 * 21 + 2 > len) { /* not with the API's name limits */
		snprintf(key, len, "%s/%s/%d/%zu/%zu", np->ns, np->name, d, r, peer);
		return;
	}
	memcpy(key, np->ns, nl);
	n = nl;
	key[n++] = '/';
	memcpy(key + n, np->name, ml);
	n += ml;
	for (int i = 0; i < 3; i++) {
		key[n++] = '/';
		n += dec_put(key + n, v[i]);
	}
	key[n] = 0;
}

/* a (c's) and b have the same rule keys in the same order: the same
 * policies (namespace, name) by position, each with the same directions,
 * rules and peers per rule. */
static bool rules_same_shape(const struct seg_compiled *c, const struct seg_manifests *a,
			     const struct seg_manifests *b)
{
	const struct cpriv *p = cpriv(c);

	if (a->npols != b->npols)
		return false;
	for (size_t i = 0; i < a->npols; i++) {
		const struct seg_netpol *x = &a->pols[i], *y = &b->pols[i];

		if (p->pol_same && p->pol_same[i] && p->prev_pol[i] == i)
			continue; /* equal (pol_eq), at the same place */
		if (strcmp(x->name, y->name) || strcmp(x->ns, y->ns))
			return false;
		for (int d = 0; d < SEG_DIR_MAX; d++) {
			size_t n = x->types[d] ? x->nrules[d] : 0;

			if (n != (y->types[d] ? y->nrules[d] : 0))
				return false;
			for (size_t r = 0; r < n; r++) {
				if (x->rules[d][r].npeers != y->rules[d][r].npeers)
					return false;
			}
		}
	}
	return true;
}

/* The rule table of prev, whose numbering numbers c's rules (o->prev), when
 * c's rule keys are prev's: the same keys get the same numbers, so the
 * table and the numbering are prev's (the numbering shared, read-only).
 * 1: taken; 0: build it; -ENOMEM. */
static int rules_take(struct seg_compiled *c, const struct seg_compile_opts *o)
{
	const struct seg_compiled *prev = o->reuse;
	const struct cstatic *ps;
	struct cstatic *st = cpriv(c)->st;

	if (!prev || !o->prev || o->prev != prev->numbering || !rules_same_shape(c, c->m, prev->m))
		return 0;
	ps = cpriv(prev)->st;
	if (ps->nrules) {
		st->rules = malloc(ps->nrules * sizeof(*st->rules));
		if (!st->rules)
			return -ENOMEM;
		memcpy(st->rules, ps->rules, ps->nrules * sizeof(*st->rules));
	}
	if (hmap_clone(&st->rule_by_id, &ps->rule_by_id))
		return -ENOMEM;
	st->nrules = ps->nrules;
	st->rules_used = ps->rules_used;
	alloc_free(c->numbering->rules);
	c->numbering->rules = prev->numbering->rules;
	c->numbering->rules->refs++;
	c->rules = st->rules;
	c->nrules = st->nrules;
	cpriv(c)->rules_taken = true;
	return 1;
}

/* Rule ids are numbered by "ns/name/dir/rule/peer", stable across
 * compiles; the table is ordered by (pol, dir, rule, peer). */
static int build_rules(struct seg_compiled *c, const struct seg_compile_opts *o)
{
	const struct seg_manifests *m = c->m;
	struct cstatic *st = cpriv(c)->st;
	size_t cap = 0;
	char key[600];
	int err = rules_take(c, o);

	if (err)
		return err < 0 ? err : 0;
	st->rules_used = 1; /* rule ids index the counters: 0 = "no rule" */
	for (size_t i = 0; i < m->npols; i++) {
		const struct seg_netpol *np = &m->pols[i];

		for (int d = 0; d < SEG_DIR_MAX; d++) {
			for (size_t r = 0; np->types[d] && r < np->nrules[d]; r++) {
				size_t npeers = np->rules[d][r].npeers;

				for (size_t k = 0; k < (npeers ? npeers : 1); k++) {
					struct seg_rule_info *ri;

					if (vec_reserve(&st->rules, &cap, st->nrules,
							sizeof(*st->rules)))
						return -ENOMEM;
					ri = &st->rules[st->nrules];
					rule_key(key, sizeof(key), np, d, r,
						 npeers ? k : (size_t)-1);
					if (alloc_get(c->numbering->rules,
						      o->prev ? o->prev->rules : NULL, key,
						      &ri->rule_id) ||
					    hmap_put(&st->rule_by_id, &ri->rule_id,
						     sizeof(ri->rule_id), st->nrules))
						return -ENOMEM;
					if (ri->rule_id + 1 > st->rules_used)
						st->rules_used = ri->rule_id + 1;
					st->nrules++;
					ri->pol = i;
					ri->dir = (__u8)d;
					ri->rule = (int)r;
					ri->peer = npeers ? (int)k : -1;
				}
			}
		}
	}
	c->rules = st->rules;
	c->nrules = st->nrules;
	return 0;
}

/* ---- policy entries ---------------------------------------------------------- */

/* Emission of one set's entries into out; seen: this emission's keys
 * (the first rule writing a key keeps it: it names the verdict). */
struct emit {
	struct seg_compiled *c;
	struct cset *set;
	struct seg_pol_entry **out;
	size_t *n, *cap;
	struct hmap seen;
	struct hmap done; /* (peer group, port spec) pairs emitted: struct emit_memo */
	size_t only; /* index in c->ids: only this remote; SIZE_MAX: all */
	const unsigned char *gm; /* with only: the groups matching it */
};

static int emit1(struct emit *e, __u32 remote, __u16 port, __u8 proto, __u8 wild, __u32 rule_id)
{
	struct seg_pol_entry *pe;
	struct seg_policy_key k;

	memset(&k, 0, sizeof(k));
	k.policy_id = e->set->id;
	k.remote_id = remote;
	k.port = port;
	k.proto = proto;
	k.dir = e->set->dir;
	k.port_wild = wild;
	if (hmap_get(&e->seen, &k, sizeof(k), NULL))
		return 0; /* an earlier rule already allows it; it names the verdict */
	if (vec_reserve(e->out, e->cap, *e->n, sizeof(**e->out)))
		return -ENOMEM;
	pe = &(*e->out)[(*e->n)++];
	memset(pe, 0, sizeof(*pe));
	pe->key = k;
	pe->val.rule_id = rule_id;
	pe->val.action = SEG_ACT_ALLOW;
	e->set->wcnt[proto ? wild : 17]++;
	return hmap_put(&e->seen, &k, sizeof(k), 1);
}

__u32 set_mask(const struct cset *s)
{
	__u32 mask = 0;

	for (int w = 0; w <= 16; w++)
		mask |= s->wcnt[w] ? 1u << w : 0;
	return mask | (s->wcnt[17] ? SEG_PMASK_ANYPROTO : 0);
}

/* [lo, hi] as aligned power-of-two blocks. */
static int emit_range(struct emit *e, __u32 remote, __u32 lo, __u32 hi, __u8 proto, __u32 rule_id)
{
	int err = 0;

	while (lo <= hi && !err) {
		__u8 k = 0;

		while (k < 16 && !(lo & (1u << k)) && lo + (2u << k) - 1 <= hi)
			k++;
		err = emit1(e, remote, (__u16)lo, proto, k, rule_id);
		lo += 1u << k;
	}
	return err;
}

/* Every remote of one peer (ids; NULL = no peers: ANY) for one port spec.
 * local: the set's pod (ingress named ports resolve there). */
static int emit_port(struct emit *e, const struct seg_port *po, const struct idlist *ids,
		     const struct seg_pod *local, __u32 rule_id)
{
	struct seg_compiled *c = e->c;
	__u32 any = SEG_ID_ANY;
	const __u32 *rv = ids ? ids->v : &any;
	size_t rn = ids ? ids->n : 1;
	int err = 0;

	if (po && po->name && e->set->dir == SEG_DIR_INGRESS) {
		__u16 port = seg_pod_named_port(local, po->name, po->proto);

		for (size_t i = 0; port && i < rn && !err; i++)
			err = emit1(e, rv[i], port, po->proto, 0, rule_id);
		return err;
	}
	if (po && po->name) {
		/* egress: on each destination pod; the port is part of the
		 * identity key, so one pod of an identity speaks for all */
		size_t n = ids ? rn : c->nids;

		for (size_t i = 0; i < n && !err; i++) {
			size_t j = i;
			const struct seg_pod *dst;
			__u16 port;

			if (ids && !hmap_get(&cpriv(c)->id_by_num, &rv[i], sizeof(rv[i]), &j))
				continue;
			if (!ids && (e->only != SIZE_MAX ? j != e->only : !cpriv(c)->id_users[j]))
				continue; /* (an update's identities about to go) */
			dst = ident_pod(c, j);
			port = dst ? seg_pod_named_port(dst, po->name, po->proto) : 0;
			if (port)
				err = emit1(e, c->ids[j].id, port, po->proto, 0, rule_id);
		}
		return err;
	}
	if (!ids && e->only != SIZE_MAX)
		return 0; /* ANY entries do not depend on identities */
	for (size_t i = 0; i < rn && !err; i++) {
		if (!po)
			err = emit1(e, rv[i], 0, 0, 16, rule_id);
		else if (!po->has_port)
			err = emit1(e, rv[i], 0, po->proto, 16, rule_id);
		else
			err = emit_range(e, rv[i], po->port, po->end_port, po->proto, rule_id);
	}
	return err;
}

static size_t first_rule_idx(const struct seg_compiled *c, size_t pol, __u8 dir, size_t rule)
{
	/* rules are few per policy; the table is ordered by (pol, dir, rule) */
	size_t lo = 0, hi = c->nrules;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct seg_rule_info *ri = &c->rules[mid];
		int cmp = ri->pol != pol	? (ri->pol < pol ? -1 : 1) :
			  ri->dir != dir	? (ri->dir < dir ? -1 : 1) :
			  ri->rule != (int)rule ? (ri->rule < (int)rule ? -1 : 1) :
						  0;

		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* A (peer group, numbered port spec) pair of a rule: within one set its
 * entries are the same whichever rule of whichever policy names it, so a
 * pair met again adds nothing (its keys are taken, by the rule that came
 * first, which names their verdict). Policies selecting the same pods
 * often allow the same peers on the same ports: a set of 200 policies
 * met each of its 1 000 entries 100 times. */
struct emit_memo {
	__u64 group; /* SIZE_MAX: no peers (any remote) */
	__u16 port, end_port; /* 0, 0: the whole protocol (ports are >= 1) */
	__u8 proto; /* 0: no port spec, every protocol */
	__u8 _pad[3];
};

/* 1: the pair was emitted before; 0: first time (now recorded); -ENOMEM. */
static int emit_seen(struct emit *e, size_t g, const struct seg_port *po)
{
	struct emit_memo k;

	memset(&k, 0, sizeof(k));
	k.group = g;
	if (po) {
		k.proto = po->proto;
		k.port = po->has_port ? po->port : 0;
		k.end_port = po->has_port ? po->end_port : 0;
	}
	if (hmap_get(&e->done, &k, sizeof(k), NULL))
		return 1;
	return hmap_put(&e->done, &k, sizeof(k), 1) ? -ENOMEM : 0;
}

/* One policy's rules of the set's direction; with e->only, just the
 * entries whose remote is that identity. */
static int emit_policy(struct emit *e, size_t pi, const struct seg_pod *local)
{
	const struct seg_compiled *c = e->c;
	const struct cstatic *st = cpriv(c)->st;
	const struct seg_netpol *np = &c->m->pols[pi];
	__u8 dir = e->set->dir;
	size_t slot = st->pol_slot[pi];
	int err = 0;

	for (size_t r = 0; dir && r < np->nrules[0]; r++)
		slot += np->rules[0][r].npeers;
	for (size_t r = 0; r < np->nrules[dir] && !err; r++) {
		const struct seg_rule *ru = &np->rules[dir][r];
		size_t ri = first_rule_idx(c, pi, dir, r);

		for (size_t k = 0; k < (ru->npeers ? ru->npeers : 1) && !err; k++) {
			const struct idlist *ids = NULL;
			size_t g = SIZE_MAX;
			struct idlist one;

			if (ru->npeers) {
				g = st->slots[slot + k].group;

				ids = &cpriv(c)->lists[g];
				if (e->only != SIZE_MAX) {
					if (!e->gm[g])
						continue;
					one.v = &c->ids[e->only].id;
					one.n = 1;
					ids = &one;
				}
			}
			for (size_t q = 0; q < (ru->nports ? ru->nports : 1) && !err; q++) {
				const struct seg_port *po = ru->nports ? &ru->ports[q] : NULL;
				/* named ports resolve per pod: not memoized */
				int seen = po && po->name ? 0 : emit_seen(e, g, po);

				if (seen < 0)
					err = seen;
				else if (!seen)
					err = emit_port(e, po, ids, local,
							c->rules[ri + k].rule_id);
			}
		}
		slot += ru->npeers;
	}
	return err;
}

static int set_emit(struct seg_compiled *c, struct cset *s, size_t only, const unsigned char *gm,
		    const size_t *pols, size_t npols, struct seg_pol_entry **out, size_t *n,
		    size_t *cap)
{
	struct emit e = {
		.c = c, .set = s, .out = out, .n = n, .cap = cap, .only = only, .gm = gm
	};
	const struct seg_pod *local = &c->m->pods[s->rep];
	int err = 0;

	for (size_t i = 0; i < npols && !err; i++)
		err = emit_policy(&e, pols[i], local);
	hmap_free(&e.seen);
	hmap_free(&e.done);
	return err;
}

int set_emit_full(struct seg_compiled *c, struct cset *s, struct seg_pol_entry **out, size_t *n,
		  size_t *cap)
{
	return set_emit(c, s, SIZE_MAX, NULL, s->sel, s->nsel, out, n, cap);
}

int set_emit_ident(struct seg_compiled *c, struct cset *s, size_t id_idx, const unsigned char *gm,
		   const size_t *pols, size_t npols, struct seg_pol_entry **out, size_t *n,
		   size_t *cap)
{
	return set_emit(c, s, id_idx, gm, pols, npols, out, n, cap);
}

/* ---- endpoints ------------------------------------------------------------------- */

bool is_audit(const struct seg_compiled *c, const char *ns)
{
	const struct seg_namespace *n = ident_ns(c, ns);
	int enf = n ? n->enforcement : SEG_ENF_DEFAULT;

	return enf == SEG_ENF_AUDIT || (enf == SEG_ENF_DEFAULT && cpriv(c)->st->audit_default);
}

/* The signature of the set prev numbered id, or NULL. */
static const char *prev_sig(const struct seg_compiled *prev, __u32 id)
{
	size_t k;

	if (!id || !hmap_get(&cpriv(prev)->set_by_id, &id, sizeof(id), &k))
		return NULL;
	return cpriv(prev)->sets[k].sig;
}

/* The policies selecting pod for dir (into sel, room for the namespace's
 * policies) and the set's signature (*sig, NULL when none selects it). */
int set_select(struct seg_compiled *c, size_t pi, __u8 dir, size_t *sel, size_t *nsel, char **sig)
{
	const struct seg_manifests *m = c->m;
	const struct cstatic *st = cpriv(c)->st;
	const struct seg_pod *pod = &m->pods[pi];
	const struct cpriv *p = cpriv(c);
	const struct sizelist *cand = NULL;
	const struct seg_ep_entry *was = NULL; /* the pod's endpoint in p->reuse */
	const char *kept = NULL; /* prev's signature of that selection */
	struct sbuf sb = {};
	bool names = false;
	size_t k, w = 0;

	*nsel = 0;
	*sig = NULL;
	if (hmap_get_str(&st->ns_pols, pod->ns, &k)) {
		cand = &st->byns[k];
		if (p->ns_same && p->ns_same[k] && p->prev_ep[pi] != SIZE_MAX) {
			was = &p->reuse->eps[p->prev_ep[pi]];
			/* the same selection, the same signature (ns_same): the
			 * names of the selected policies are not read again */
			kept = prev_sig(p->reuse, was->ep.policy_id[dir]);
		}
	}
	if (!kept) {
		sb_putc(&sb, (char)('0' + dir)); /* "%u:", dir < 10 */
		sb_putc(&sb, ':');
	}
	for (k = 0; cand && k < cand->n; k++) {
		size_t i = cand->v[k];
		const struct seg_netpol *np = &m->pols[i];

		if (was) {
			/* Both lists ascend in the same order. A policy prev
			 * selected for dir selects as it did (ns_same), so it
			 * has dir in its types: the others are not looked at
			 * (a namespace's policies lie far apart in m->pols). */
			if (w == was->nsel[dir])
				break;
			if (was->sel[dir][w] != p->prev_pol[i])
				continue;
			w++;
		} else if (!np->types[dir] || !seg_selector_matches(&np->pod_sel, &pod->labels)) {
			continue;
		}
		sel[(*nsel)++] = i;
		if (kept)
			continue;
		sb_puts(&sb, np->ns);
		sb_putc(&sb, '/');
		sb_puts(&sb, np->name);
		sb_putc(&sb, ',');
		/* (ingress_names: the rules are far from np in memory) */
		names |= dir == SEG_DIR_INGRESS && np->ingress_names;
	}
	if (!*nsel) {
		sb_free(&sb);
		return 0;
	}
	if (kept) {
		*sig = strdup(kept);
		return *sig ? 0 : -ENOMEM;
	}
	/* ingress named ports resolve on this pod: its ports join the key */
	for (size_t i = 0; names && i < pod->nports; i++)
		sb_printf(&sb, ";%s/%u=%u", pod->ports[i].name ? pod->ports[i].name : "",
			  pod->ports[i].proto, pod->ports[i].port);
	*sig = sb_take(&sb);
	return *sig ? 0 : -ENOMEM;
}

/* A new set of a compile that reuses prev's identities: when prev has the
 * set (same id, so the same signature: the same policies in the same order,
 * the same ingress named ports) and every policy of it is unchanged, its
 * entries are prev's: they depend only on those policies, their peer
 * groups' identity lists (copied from prev: the identities are prev's),
 * the rule numbering (stable by key) and the identities' named ports.
 * 1 when copied, 0 when the set must be emitted, -ENOMEM. */
static int set_copy_prev(struct seg_compiled *c, struct cset *s, struct seg_pol_entry **out,
			 size_t *n, size_t *cap)
{
	const struct cpriv *p = cpriv(c);
	const struct seg_compiled *prev = p->reuse;
	size_t k, lo, hi;

	if (!p->pol_same || !hmap_get(&cpriv(prev)->set_by_id, &s->id, sizeof(s->id), &k))
		return 0;
	for (size_t i = 0; i < s->nsel; i++)
		if (!p->pol_same[s->sel[i]])
			return 0;
	lo = seg_compiled_pol_first(prev, s->id);
	for (hi = lo; hi < prev->npol && prev->pol[hi].key.policy_id == s->id; hi++)
		;
	while (*n + (hi - lo) > *cap)
		if (vec_reserve(out, cap, *cap, sizeof(**out)))
			return -ENOMEM;
	if (hi > lo) /* (an empty set: prev->pol may be NULL) */
		memcpy(*out + *n, prev->pol + lo, (hi - lo) * sizeof(**out));
	*n += hi - lo;
	memcpy(s->wcnt, cpriv(prev)->sets[k].wcnt, sizeof(s->wcnt));
	cpriv(c)->sets_copied++;
	return 1;
}

/* The set with signature sig: found (one more user) or made, its entries
 * emitted into out (or copied from the compile whose identities this one
 * reuses). sig is set_use's: a new set keeps it, else it is freed. */
int set_use(struct seg_compiled *c, const struct seg_id_alloc *prev, size_t pi, __u8 dir,
	    const size_t *sel, size_t nsel, char *sig, struct seg_pol_entry **out, size_t *n,
	    size_t *cap, struct cset **res)
{
	struct cpriv *p = cpriv(c);
	struct cset *s;
	size_t idx;
	__u32 id;
	int err;

	if (alloc_get(c->numbering->policies, prev, sig, &id)) {
		free(sig);
		return -ENOMEM;
	}
	if (hmap_get(&p->set_by_id, &id, sizeof(id), &idx)) {
		free(sig);
		s = &p->sets[idx];
		if (!s->users)
			s->rep = pi;
		s->users++;
		*res = s;
		return 0;
	}
	if (vec_reserve(&p->sets, &p->cap_sets, p->nsets, sizeof(*p->sets))) {
		free(sig);
		return -ENOMEM;
	}
	s = &p->sets[p->nsets];
	memset(s, 0, sizeof(*s));
	s->id = id;
	s->dir = dir;
	s->rep = pi;
	s->users = 1;
	s->fresh = true;
	s->sel = malloc(nsel * sizeof(*s->sel));
	s->sig = sig;
	if (!s->sel) {
		free(s->sig);
		return -ENOMEM;
	}
	memcpy(s->sel, sel, nsel * sizeof(*sel));
	s->nsel = nsel;
	p->nsets++;
	err = hmap_put(&p->set_by_id, &id, sizeof(id), p->nsets - 1);
	s->pstart = *n;
	if (!err)
		err = set_copy_prev(c, s, out, n, cap);
	s->psorted = err == 1;
	if (!err)
		err = set_emit_full(c, s, out, n, cap);
	s->pn = *n - s->pstart;
	*res = s;
	return err < 0 ? err : 0;
}

/* Pod pi's set for dir when it keeps its selection in p->reuse (a
 * namespace whose policies are unchanged, set_select()) and this compile
 * already has that set: the same selection gives the same signature, so
 * the same id (numbered by signature), without building the signature.
 * nsk: the pod's namespace's bucket in st->byns (SIZE_MAX: none).
 * 1: found (*res; NULL: not selected), 0: select and use as usual. */
static int set_kept(struct seg_compiled *c, size_t pi, size_t nsk, __u8 dir, struct cset **res)
{
	const struct cpriv *p = cpriv(c);
	const struct seg_ep_entry *was;
	size_t idx;
	__u32 id;

	if (!p->ns_same || p->prev_ep[pi] == SIZE_MAX || nsk == SIZE_MAX || !p->ns_same[nsk])
		return 0;
	was = &p->reuse->eps[p->prev_ep[pi]];
	id = was->ep.policy_id[dir];
	*res = NULL;
	if (!id)
		return 1;
	if (!hmap_get(&p->set_by_id, &id, sizeof(id), &idx))
		return 0;
	*res = &p->sets[idx];
	if (!(*res)->users)
		(*res)->rep = pi;
	(*res)->users++;
	return 1;
}

/* The endpoint of local pod pi (its identity already known). */
int endpoint_fill(struct seg_compiled *c, const struct seg_id_alloc *prev, size_t pi,
		  struct seg_ep_entry *ep, struct seg_pol_entry **out, size_t *n, size_t *cap)
{
	const struct seg_pod *pod = &c->m->pods[pi];
	const struct cstatic *st = cpriv(c)->st;
	size_t *sel = NULL, nsk = SIZE_MAX;
	int err = 0;

	memset(ep, 0, sizeof(*ep));
	ep->pod = pi;
	ep->ep.identity = c->ids[cpriv(c)->pod_id[pi]].id;
	hmap_get_str(&st->ns_pols, pod->ns, &nsk); /* no policy there: stays SIZE_MAX */
	for (__u8 d = 0; d < SEG_DIR_MAX && !err; d++) {
		struct cset *s = NULL;
		size_t nsel;
		char *sig;

		if (set_kept(c, pi, nsk, d, &s)) {
			if (!s)
				continue;
		} else {
			/* room for the namespace's policies, when first needed */
			if (!sel && !(sel = malloc(((nsk == SIZE_MAX ? 0 : st->byns[nsk].n) + 1) *
						   sizeof(*sel)))) {
				err = -ENOMEM;
				break;
			}
			err = set_select(c, pi, d, sel, &nsel, &sig);
			if (err || !sig)
				continue;
			err = set_use(c, prev, pi, d, sel, nsel, sig, out, n, cap, &s);
			if (err)
				break;
		}
		ep->sel[d] = s->sel;
		ep->nsel[d] = s->nsel;
		ep->ep.policy_id[d] = s->id;
		ep->ep.flags[d] = SEG_EPF_ISOLATED;
		if (is_audit(c, pod->ns))
			ep->ep.flags[d] |= SEG_EPF_AUDIT;
	}
	free(sel);
	return err;
}

/* Port masks come from the sets' final contents. */
void endpoint_masks(struct seg_compiled *c)
{
	struct cpriv *p = cpriv(c);

	for (size_t i = 0; i < c->neps; i++) {
		for (int d = 0; d < SEG_DIR_MAX; d++) {
			__u32 id = c->eps[i].ep.policy_id[d];
			size_t k;

			c->eps[i].ep.port_mask[d] =
				id && hmap_get(&p->set_by_id, &id, sizeof(id), &k) ?
					set_mask(&p->sets[k]) :
					0;
		}
	}
}

static int build_endpoints(struct seg_compiled *c, const struct seg_compile_opts *o)
{
	const struct seg_manifests *m = c->m;
	struct cstatic *st = cpriv(c)->st;
	size_t cap = 0;
	int err = 0;

	c->eps = calloc(m->npods + 1, sizeof(*c->eps));
	if (!c->eps)
		return -ENOMEM;
	for (size_t i = 0; i < m->npols && !err; i++) {
		size_t k = st->nbyns;

		if (!hmap_get_str(&st->ns_pols, m->pols[i].ns, &k)) {
			err = vec_reserve(&st->byns, &(size_t){ st->nbyns }, st->nbyns,
					  sizeof(*st->byns));
			if (!err) {
				memset(&st->byns[st->nbyns], 0, sizeof(*st->byns));
				err = hmap_put_str(&st->ns_pols, m->pols[i].ns, st->nbyns++);
			}
		}
		if (!err)
			err = sizelist_add(&st->byns[k], i);
	}
	if (!err && cpriv(c)->pol_same)
		err = mark_same_nss(c, o->reuse);
	for (size_t i = 0; i < m->npods && !err; i++) {
		if (o->is_local && !o->is_local(&m->pods[i], o->ctx))
			continue;
		err = endpoint_fill(c, o->prev ? o->prev->policies : NULL, i, &c->eps[c->neps],
				    &c->pol, &c->npol, &cap);
		if (!err)
			c->neps++;
	}
	free(cpriv(c)->pol_same);
	free(cpriv(c)->prev_pol);
	free(cpriv(c)->prev_ep);
	free(cpriv(c)->ns_same);
	cpriv(c)->pol_same = cpriv(c)->ns_same = NULL;
	cpriv(c)->prev_pol = cpriv(c)->prev_ep = NULL;
	cpriv(c)->reuse = NULL;
	for (size_t i = 0; i < cpriv(c)->nsets; i++)
		cpriv(c)->sets[i].fresh = false;
	endpoint_masks(c);
	return err;
}

/* ---- capacity, assembly ----------------------------------------------------------- */

int check_caps(struct seg_compiled *c, struct seg_diag *d)
{
	const struct seg_caps *want = &cpriv(c)->st->caps;
	const __u32 w[5] = { want->endpoints, want->ipcache, want->ipcache_lpm, want->policy,
			     want->rules };
	struct sbuf sb = {};
	int err = 0;

	c->caps.used[0] = c->neps;
	c->caps.used[1] = c->nipc;
	c->caps.used[2] = c->nlpm;
	c->caps.used[3] = c->npol;
	c->caps.used[4] = cpriv(c)->st->rules_used;
	for (int i = 0; i < 5; i++) {
		c->caps.cap[i] = w[i] ? w[i] : cap_default[i];
		if (c->caps.used[i] > c->caps.cap[i]) {
			sb_printf(&sb, "%s%s needs %zu entries, capacity %zu", err ? "; " : "",
				  seg_cap_name(i), c->caps.used[i], c->caps.cap[i]);
			err = -E2BIG;
		}
	}
	if (err)
		snprintf(d->msg, sizeof(d->msg), "map capacity exceeded, nothing applied: %s",
			 sb.p ? sb.p : "");
	sb_free(&sb);
	return err;
}

int pol_cmp(const void *a, const void *b)
{
	const struct seg_policy_key *x = &((const struct seg_pol_entry *)a)->key;
	const struct seg_policy_key *y = &((const struct seg_pol_entry *)b)->key;

	if (x->policy_id != y->policy_id)
		return x->policy_id < y->policy_id ? -1 : 1;
	if (x->dir != y->dir)
		return x->dir < y->dir ? -1 : 1;
	if (x->remote_id != y->remote_id)
		return x->remote_id < y->remote_id ? -1 : 1;
	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return (int)x->port_wild - (int)y->port_wild;
}

static int set_id_cmp(const void *a, const void *b)
{
	__u32 x = (*(const struct cset *const *)a)->id, y = (*(const struct cset *const *)b)->id;

	return x < y ? -1 : x > y;
}

/* c->pol sorted by pol_cmp. A full compile writes each set's entries in
 * one run (set_use: pstart, pn), each set has its own policy id, and a
 * copied run is sorted already (it was in prev's sorted array): sort the
 * emitted runs, then lay the runs out by id. */
static int pol_sort(struct seg_compiled *c)
{
	struct cpriv *p = cpriv(c);
	struct seg_pol_entry *out;
	struct cset **order;
	size_t n = 0;

	if (!c->npol)
		return 0;
	order = malloc(p->nsets * sizeof(*order));
	out = malloc(c->npol * sizeof(*out));
	if (!order || !out) {
		free(order);
		free(out);
		return -ENOMEM;
	}
	for (size_t i = 0; i < p->nsets; i++) {
		struct cset *s = &p->sets[i];

		if (!s->psorted && s->pn > 1)
			qsort(c->pol + s->pstart, s->pn, sizeof(*c->pol), pol_cmp);
		order[i] = s;
	}
	qsort(order, p->nsets, sizeof(*order), set_id_cmp);
	for (size_t i = 0; i < p->nsets; i++) {
		if (order[i]->pn)
			memcpy(out + n, c->pol + order[i]->pstart, order[i]->pn * sizeof(*out));
		n += order[i]->pn;
	}
	free(order);
	if (n != c->npol) { /* every entry is in one set's run */
		free(out);
		return -EINVAL;
	}
	free(c->pol);
	c->pol = out;
	return 0;
}

unsigned long long compile_serial(void)
{
	/* tells lib/apply which compile an update started from */
	static unsigned long long next;

	return __atomic_add_fetch(&next, 1, __ATOMIC_RELAXED);
}

int seg_compile(const struct seg_manifests *m, const struct seg_compile_opts *o,
		struct seg_compiled **out, struct seg_diag *d)
{
	static const struct seg_compile_opts none;
	struct seg_compiled *c = calloc(1, sizeof(*c));
	struct cpriv *p = NULL;
	int err;

	*out = NULL;
	if (!o)
		o = &none;
	if (c)
		c->priv = p = calloc(1, sizeof(struct cpriv));
	if (p)
		p->st = calloc(1, sizeof(*p->st));
	if (!c || !p || !p->st) {
		free(p);
		free(c);
		return cdiag(d, "out of memory"), -ENOMEM;
	}
	p->st->refs = 1;
	p->st->audit_default = o->audit_default;
	p->st->caps = o->caps;
	p->serial = compile_serial();
	p->npods = m->npods;
	p->npols = m->npols;
	p->nnss = m->nnss;
	c->m = m;
	err = ident_build(c, o, d);
	if (err)
		goto fail;
	if (p->ids_reused && o->reuse)
		err = mark_same_pols(c, o->reuse);
	if (!err)
		err = build_peer_lists(c, o);
	if (!err)
		err = build_rules(c, o);
	if (!err)
		err = build_endpoints(c, o);
	if (!err)
		err = pol_sort(c);
	if (err) {
		if (err == -ENOMEM)
			cdiag(d, "out of memory compiling policies");
		else
			cdiag(d, "policy entries out of place after the compile (%d)", err);
		goto fail;
	}
	err = check_caps(c, d);
	*out = c;
	return err;
fail:
	seg_compiled_free(c);
	return err;
}

void cpriv_free(struct seg_compiled *c)
{
	struct cpriv *p = cpriv(c);

	if (!p)
		return;
	for (size_t i = 0; p->lists && i < p->st->ngroups; i++)
		free(p->lists[i].v);
	free(p->lists);
	for (size_t i = 0; i < p->nsets; i++) {
		free(p->sets[i].sel);
		free(p->sets[i].sig);
	}
	free(p->sets);
	hmap_free(&p->set_by_id);
	free(p->d_add);
	free(p->d_del);
	free(p->d_fresh);
	free(p->d_new);
	free(p->d_dead);
	/* a compile that failed before build_endpoints() dropped them */
	free(p->pol_same);
	free(p->prev_pol);
	free(p->prev_ep);
	free(p->ns_same);
}

void seg_compiled_free(struct seg_compiled *c)
{
	if (!c)
		return;
	free(c->eps);
	free(c->pol);
	cpriv_free(c);
	ident_free(c);
	if (c->priv)
		cstatic_put(cpriv(c)->st);
	free(c->priv);
	free(c);
}

/* ---- lookups with the data path's semantics --------------------------------------- */

__u32 seg_ipcache_lookup(const struct seg_compiled *c, const struct in6_addr *a)
{
	const struct seg_ipc_entry *e = ipc_find(c, a);
	const struct cpfx *x;

	if (e)
		return e->val.identity;
	x = ident_pfx_lookup(c, a); /* the LPM entries are the prefixes */
	return x ? x->id : SEG_ID_WORLD;
}

/* c->eps is ordered by pod index. */
const struct seg_ep_entry *seg_compiled_endpoint(const struct seg_compiled *c,
						 const struct seg_pod *pod)
{
	size_t pi, lo = 0, hi;

	if (pod < c->m->pods || pod >= c->m->pods + c->m->npods)
		return NULL;
	pi = (size_t)(pod - c->m->pods);
	hi = c->neps;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (c->eps[mid].pod < pi)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->neps && c->eps[lo].pod == pi ? &c->eps[lo] : NULL;
}

size_t seg_compiled_pol_first(const struct seg_compiled *c, __u32 policy_id)
{
	size_t lo = 0, hi = c->npol;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->pol[mid].key.policy_id < policy_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* c->pol is sorted by key. */
const struct seg_pol_entry *seg_compiled_pol(const struct seg_compiled *c,
					     const struct seg_policy_key *k)
{
	struct seg_pol_entry e = { .key = *k };

	return c->npol ? bsearch(&e, c->pol, c->npol, sizeof(*c->pol), pol_cmp) : NULL;
}

static const struct seg_pol_entry *pol_get(const struct seg_compiled *c,
					   const struct seg_policy_key *k)
{
	return seg_compiled_pol(c, k);
}

const struct seg_pol_entry *seg_policy_lookup(const struct seg_compiled *c,
					      const struct seg_endpoint *ep, __u8 dir, __u32 remote,
					      __u16 port, __u8 proto)
{
	const __u32 ids[2] = { remote, SEG_ID_ANY };
	__u32 mask = ep->port_mask[dir];
	const struct seg_pol_entry *e;
	struct seg_policy_key k;

	memset(&k, 0, sizeof(k));
	k.policy_id = ep->policy_id[dir];
	k.dir = dir;
	for (int i = 0; i < 2; i++) {
		k.remote_id = ids[i];
		k.proto = proto;
		for (__u8 w = 0; w <= 16; w++) {
			if (!(mask & (1u << w)))
				continue;
			k.port = w == 16 ? 0 : (__u16)(port & ~((1u << w) - 1));
			k.port_wild = w;
			e = pol_get(c, &k);
			if (e)
				return e;
		}
	}
	if (!(mask & SEG_PMASK_ANYPROTO))
		return NULL;
	for (int i = 0; i < 2; i++) {
		k.remote_id = ids[i];
		k.port = 0;
		k.proto = 0;
		k.port_wild = 16;
		e = pol_get(c, &k);
		if (e)
			return e;
	}
	return NULL;
}

const struct seg_identity *seg_identity_get(const struct seg_compiled *c, __u32 id)
{
	size_t i;

	return hmap_get(&cpriv(c)->id_by_num, &id, sizeof(id), &i) ? &c->ids[i] : NULL;
}

const struct seg_rule_info *seg_rule_get(const struct seg_compiled *c, __u32 rule_id)
{
	size_t i;

	return hmap_get(&cpriv(c)->st->rule_by_id, &rule_id, sizeof(rule_id), &i) ? &c->rules[i] :
										    NULL;
}

void seg_rule_describe(const struct seg_compiled *c, __u32 rule_id, char *buf, size_t len)
{
	const struct seg_rule_info *ri = seg_rule_get(c, rule_id);
	const struct seg_netpol *np;
	char peer[32] = "";

	if (!ri) {
		snprintf(buf, len, "no rule");
		return;
	}
	np = &c->m->pols[ri->pol];
	if (ri->peer >= 0)
		snprintf(peer, sizeof(peer), " (%s[%d])",
			 ri->dir == SEG_DIR_INGRESS ? "from" : "to", ri->peer);
	snprintf(buf, len, "%s/%s %s rule %d%s", np->ns, np->name,
		 ri->dir == SEG_DIR_INGRESS ? "ingress" : "egress", ri->rule, peer);
}
