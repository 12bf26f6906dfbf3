// SPDX-License-Identifier: GPL-2.0-only
/*
 * seg_compile_update(): the compile of changed pods, from the previous one.
 *
 * What depends on policies and namespaces only (ipBlocks, prefixes, CIDR
 * identities, the rule table, the peer groups, policies by namespace) is
 * shared with prev (struct cstatic). The rest is copied and patched:
 *   1. copy: identities, ipcache, group lists, policy sets, endpoints of
 *      the pods that did not change (pod indexes mapped to the new
 *      manifests); the changed and deleted pods' uses of identities and
 *      sets are dropped;
 *   2. each changed or new pod: its identities (new ones join the groups
 *      that match them: only the pod selector groups of its namespace,
 *      namespace selector groups and its ipBlocks' groups are tried), its
 *      ipcache entries, its endpoint (a set found by signature, or a new
 *      set emitted whole);
 *   3. each new identity's entries in every set that existed: only the
 *      peers of the groups matching it;
 *   4. identities and sets nobody uses any more go, with their entries;
 *   5. the entries: prev's (minus those of dead sets and identities) merged
 *      with the new ones, sorted; port masks from per-width counts.
 * The first rule writing a key keeps it in a full compile; an update only
 * adds keys whose remote identity is new, in the same rule order, so the
 * result is the same.
 */
#include "compiled.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- equality of manifest objects --------------------------------------------
 * Each starts with a bytewise comparison of the object itself: when every
 * pointer and number in it is the same, the deep comparison would compare
 * the same memory with itself, so it is equal. That is the case of an
 * object shared by two merged manifests (segd's parse cache keeps the
 * parts of unchanged files): a policy change in one file of many compares
 * the others in O(1). Padding that differs only sends it the long way. */

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static bool labels_eq(const struct seg_labels *a, const struct seg_labels *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		if (strcmp(a->v[i].key, b->v[i].key) || strcmp(a->v[i].val, b->v[i].val))
			return false;
	}
	return true;
}

static bool sel_eq(const struct seg_selector *a, const struct seg_selector *b)
{
	if (!labels_eq(&a->match, &b->match) || a->nexprs != b->nexprs)
		return false;
	for (size_t i = 0; i < a->nexprs; i++) {
		const struct seg_sel_expr *x = &a->exprs[i], *y = &b->exprs[i];

		if (strcmp(x->key, y->key) || x->op != y->op || x->nvalues != y->nvalues)
			return false;
		for (size_t j = 0; j < x->nvalues; j++) {
			if (strcmp(x->values[j], y->values[j]))
				return false;
		}
	}
	return true;
}

static bool peer_eq(const struct seg_peer *a, const struct seg_peer *b)
{
	const struct seg_ipblock *x = &a->block, *y = &b->block;

	if (a->kind != b->kind || !sel_eq(&a->pod_sel, &b->pod_sel) ||
	    !sel_eq(&a->ns_sel, &b->ns_sel))
		return false;
	if (a->kind != SEG_PEER_IPBLOCK)
		return true;
	return x->plen == y->plen && !memcmp(&x->cidr, &y->cidr, sizeof(x->cidr)) &&
	       x->nexcept == y->nexcept &&
	       (!x->nexcept ||
		(!memcmp(x->except, y->except, x->nexcept * sizeof(*x->except)) &&
		 !memcmp(x->except_plen, y->except_plen, x->nexcept * sizeof(*x->except_plen))));
}

static bool port_eq(const struct seg_port *a, const struct seg_port *b)
{
	return a->proto == b->proto && a->has_port == b->has_port && str_eq(a->name, b->name) &&
	       a->port == b->port && a->end_port == b->end_port;
}

bool pol_eq(const struct seg_netpol *a, const struct seg_netpol *b)
{
	if (!memcmp(a, b, sizeof(*a)))
		return true;
	if (strcmp(a->ns, b->ns) || strcmp(a->name, b->name) || !sel_eq(&a->pod_sel, &b->pod_sel))
		return false;
	for (int d = 0; d < SEG_DIR_MAX; d++) {
		if (a->types[d] != b->types[d] || a->nrules[d] != b->nrules[d])
			return false;
		for (size_t r = 0; r < a->nrules[d]; r++) {
			const struct seg_rule *x = &a->rules[d][r], *y = &b->rules[d][r];

			if (x->npeers != y->npeers || x->nports != y->nports)
				return false;
			for (size_t k = 0; k < x->npeers; k++) {
				if (!peer_eq(&x->peers[k], &y->peers[k]))
					return false;
			}
			for (size_t k = 0; k < x->nports; k++) {
				if (!port_eq(&x->ports[k], &y->ports[k]))
					return false;
			}
		}
	}
	return true;
}

/* What decides which pods a policy selects, and whether its ingress names
 * ports (a selection's signature, set_select()): a and b select the same
 * pods of a namespace and give them the same signature. */
bool pol_sel_eq(const struct seg_netpol *a, const struct seg_netpol *b)
{
	for (int d = 0; d < SEG_DIR_MAX; d++) {
		if (a->types[d] != b->types[d])
			return false;
	}
	return a->ingress_names == b->ingress_names && sel_eq(&a->pod_sel, &b->pod_sel);
}

bool ns_eq(const struct seg_namespace *a, const struct seg_namespace *b)
{
	if (!memcmp(a, b, sizeof(*a)))
		return true;
	return !strcmp(a->name, b->name) && a->enforcement == b->enforcement &&
	       a->implicit == b->implicit && labels_eq(&a->labels, &b->labels);
}

/* Everything that makes a pod's identities, ipcache entries and endpoint. */
bool pod_eq(const struct seg_pod *a, const struct seg_pod *b)
{
	if (!memcmp(a, b, sizeof(*a)))
		return true;
	if (strcmp(a->ns, b->ns) || strcmp(a->name, b->name) ||
	    !labels_eq(&a->labels, &b->labels) || a->naddrs != b->naddrs ||
	    a->nports != b->nports || memcmp(a->addrs, b->addrs, a->naddrs * sizeof(*a->addrs)))
		return false;
	for (size_t i = 0; i < a->nports; i++) {
		if (!str_eq(a->ports[i].name, b->ports[i].name) ||
		    a->ports[i].port != b->ports[i].port || a->ports[i].proto != b->ports[i].proto)
			return false;
	}
	return true;
}

/* ---- the update ------------------------------------------------------------------ */

struct upd {
	const struct seg_compiled *prev;
	struct seg_compiled *c;
	const struct seg_compile_opts *o;
	size_t *newof; /* prev pod -> new pod, SIZE_MAX: gone or changed */
	size_t *link; /* new pods to (re)compute */
	size_t nlink;
	size_t neps_kept; /* c->eps[0, neps_kept): prev's, copied */
	size_t *added; /* new identities (indexes in c->ids) */
	size_t nadded, cap_added;
	struct seg_pol_entry *adds; /* new entries */
	size_t nadds, cap_adds;
};

static size_t pod_index(const struct seg_manifests *m, const char *nsname)
{
	const char *slash = strchr(nsname, '/');
	size_t l;

	if (!slash)
		return SIZE_MAX;
	l = (size_t)(slash - nsname);
	for (size_t i = 0; i < m->npods; i++) {
		const struct seg_pod *p = &m->pods[i];

		/* the name first: it differs at once for nearly every pod */
		if (!strcmp(p->name, slash + 1) && !strncmp(p->ns, nsname, l) && !p->ns[l])
			return i;
	}
	return SIZE_MAX;
}

static int add_link(struct upd *u, size_t i, size_t *cap)
{
	if (vec_reserve(&u->link, cap, u->nlink, sizeof(*u->link)))
		return -ENOMEM;
	u->link[u->nlink++] = i;
	return 0;
}

/* newof[] and the pods to recompute. 1: not an update we can do. */
static int match_pods(struct upd *u, const struct seg_change *chg)
{
	const struct seg_manifests *om = u->prev->m, *m = u->c->m;
	struct hmap byname = {};
	size_t cap = 0;
	bool *seen = NULL;
	char key[512];
	int err = 0;

	u->newof = malloc((om->npods + 1) * sizeof(*u->newof));
	if (!u->newof)
		return -ENOMEM;
	if (om == m) {
		for (size_t i = 0; i < m->npods; i++)
			u->newof[i] = i;
		for (size_t k = 0; chg && k < chg->npods && !err; k++) {
			size_t i = pod_index(m, chg->pods[k]);

			if (i == SIZE_MAX || u->newof[i] == SIZE_MAX)
				continue;
			u->newof[i] = SIZE_MAX;
			err = add_link(u, i, &cap);
		}
		return err;
	}
	seen = calloc(m->npods + 1, sizeof(*seen));
	if (!seen)
		return -ENOMEM;
	for (size_t j = 0; j < om->npods && !err; j++) {
		const struct seg_pod *op = &om->pods[j];
		size_t i = j;

		if (j >= m->npods || strcmp(m->pods[j].name, op->name) ||
		    strcmp(m->pods[j].ns, op->ns)) {
			/* not in the same place: by name */
			if (!byname.n) {
				for (size_t k = 0; k < m->npods && !err; k++) {
					snprintf(key, sizeof(key), "%s/%s", m->pods[k].ns,
						 m->pods[k].name);
					err = hmap_put_str(&byname, key, k);
				}
			}
			snprintf(key, sizeof(key), "%s/%s", op->ns, op->name);
			if (!hmap_get_str(&byname, key, &i))
				i = SIZE_MAX;
		}
		u->newof[j] = i;
		if (i == SIZE_MAX)
			continue;
		seen[i] = true;
		if (!pod_eq(op, &m->pods[i])) {
			u->newof[j] = SIZE_MAX;
			err = add_link(u, i, &cap);
		}
	}
	for (size_t i = 0; i < m->npods && !err; i++) {
		if (!seen[i])
			err = add_link(u, i, &cap);
	}
	/* a pod in a namespace prev did not know needs a new implicit one */
	for (size_t k = 0; k < u->nlink && !err; k++) {
		if (!ident_ns(u->c, m->pods[u->link[k]].ns))
			err = 1;
	}
	free(seen);
	hmap_free(&byname);
	return err;
}

static bool same_static(const struct seg_compiled *prev, const struct seg_manifests *m,
			const struct seg_compile_opts *o)
{
	const struct seg_manifests *om = prev->m;
	const struct cpriv *pp = cpriv(prev);

	if (o->audit_default != pp->st->audit_default ||
	    memcmp(&o->caps, &pp->st->caps, sizeof(o->caps)))
		return false;
	if (om == m)
		return m->npods == pp->npods && m->npols == pp->npols && m->nnss == pp->nnss;
	if (om->nnss != m->nnss || om->npols != m->npols)
		return false;
	for (size_t i = 0; i < m->nnss; i++) {
		if (!ns_eq(&om->nss[i], &m->nss[i]))
			return false;
	}
	for (size_t i = 0; i < m->npols; i++) {
		if (!pol_eq(&om->pols[i], &m->pols[i]))
			return false;
	}
	return true;
}

/* The namespace in c of prev's namespace pointer ns. */
static const struct seg_namespace *ns_map(const struct upd *u, const struct seg_namespace *ns)
{
	const struct seg_manifests *om = u->prev->m;

	if (!ns || om == u->c->m)
		return ns;
	if (ns >= om->nss && ns < om->nss + om->nnss)
		return &u->c->m->nss[ns - om->nss];
	return ns; /* implicit: shared */
}

static int clone_ids(struct upd *u)
{
	const struct seg_compiled *prev = u->prev;
	const struct cpriv *pp = cpriv(prev);
	struct seg_compiled *c = u->c;
	struct cpriv *p = cpriv(c);

	p->cap_ids = prev->nids + 8;
	c->ids = calloc(p->cap_ids, sizeof(*c->ids));
	p->id_rep = malloc(p->cap_ids * sizeof(*p->id_rep));
	p->id_users = malloc(p->cap_ids * sizeof(*p->id_users));
	if (!c->ids || !p->id_rep || !p->id_users || hmap_clone(&p->id_by_num, &pp->id_by_num))
		return -ENOMEM;
	if (prev->nids) /* no identities: pp->id_users may be NULL */
		memcpy(p->id_users, pp->id_users, prev->nids * sizeof(*p->id_users));
	for (size_t i = 0; i < prev->nids; i++) {
		const struct seg_identity *o = &prev->ids[i];
		struct seg_identity *n = &c->ids[i];
		size_t r = pp->id_rep[i];

		n->id = o->id;
		n->ns = ns_map(u, o->ns);
		n->key = strdup(o->key);
		c->nids++;
		if (!n->key)
			return -ENOMEM;
		if (o->nblocks) {
			n->blocks = malloc(o->nblocks * sizeof(*n->blocks));
			if (!n->blocks)
				return -ENOMEM;
			memcpy(n->blocks, o->blocks, o->nblocks * sizeof(*n->blocks));
			n->nblocks = o->nblocks;
		}
		/* a changed pod cannot speak for its old identity: fixed later */
		p->id_rep[i] = r == SIZE_MAX ? SIZE_MAX : u->newof[r];
		n->labels = p->id_rep[i] != SIZE_MAX ? &c->m->pods[p->id_rep[i]].labels : NULL;
		if (r != SIZE_MAX && p->id_rep[i] == SIZE_MAX)
			p->id_rep[i] = SIZE_MAX - 1; /* pod identity without a rep */
	}
	return 0;
}

static void id_unuse(struct cpriv *p, size_t idx)
{
	if (p->id_users[idx])
		p->id_users[idx]--;
}

static int clone_pods(struct upd *u)
{
	const struct seg_compiled *prev = u->prev;
	const struct cpriv *pp = cpriv(prev);
	struct seg_compiled *c = u->c;
	struct cpriv *p = cpriv(c);
	const struct seg_manifests *om = prev->m, *m = c->m;
	int err = 0;

	p->pod_id = calloc(m->npods + 1, sizeof(*p->pod_id));
	c->ipc = malloc((prev->nipc + 8) * sizeof(*c->ipc));
	c->eps = calloc(m->npods + 1, sizeof(*c->eps));
	if (!p->pod_id || !c->ipc || !c->eps)
		return -ENOMEM;
	p->cap_ipc = prev->nipc + 8;
	for (size_t j = 0; j < om->npods; j++) {
		if (u->newof[j] != SIZE_MAX)
			p->pod_id[u->newof[j]] = pp->pod_id[j];
		else
			id_unuse(p, pp->pod_id[j]);
	}
	for (size_t k = 0; k < prev->nipc && !err; k++) {
		const struct seg_ipc_entry *e = &prev->ipc[k];
		size_t i = u->newof[e->pod];

		if (i == SIZE_MAX) {
			size_t idx;

			if (hmap_get(&p->id_by_num, &e->val.identity, sizeof(__u32), &idx))
				id_unuse(p, idx);
			continue;
		}
		c->ipc[c->nipc] = *e;
		c->ipc[c->nipc++].pod = i;
	}
	p->ipc_sorted = c->nipc; /* prev's order, some left out: still sorted */
	return err;
}

static int clone_sets(struct upd *u)
{
	const struct cpriv *pp = cpriv(u->prev);
	struct cpriv *p = cpriv(u->c);
	const struct seg_compiled *prev = u->prev;
	struct seg_compiled *c = u->c;

	p->cap_sets = pp->nsets + 8;
	p->sets = calloc(p->cap_sets, sizeof(*p->sets));
	if (!p->sets || hmap_clone(&p->set_by_id, &pp->set_by_id))
		return -ENOMEM;
	for (size_t k = 0; k < pp->nsets; k++) {
		struct cset *s = &p->sets[k];

		*s = pp->sets[k];
		s->fresh = false;
		s->rep = u->newof[s->rep];
		s->sel = malloc((s->nsel + 1) * sizeof(*s->sel));
		s->sig = pp->sets[k].sig ? strdup(pp->sets[k].sig) : NULL;
		p->nsets++;
		if (!s->sel || (pp->sets[k].sig && !s->sig))
			return -ENOMEM;
		if (s->nsel)
			memcpy(s->sel, pp->sets[k].sel, s->nsel * sizeof(*s->sel));
	}
	/* endpoints of unchanged pods; the others leave their sets */
	for (size_t k = 0; k < prev->neps; k++) {
		const struct seg_ep_entry *e = &prev->eps[k];
		size_t i = u->newof[e->pod];
		struct seg_ep_entry *n = &c->eps[c->neps];

		for (int d = 0; d < SEG_DIR_MAX; d++) {
			__u32 id = e->ep.policy_id[d];
			size_t si;

			if (!id || !hmap_get(&p->set_by_id, &id, sizeof(id), &si))
				continue;
			if (i == SIZE_MAX) {
				p->sets[si].users--;
			} else {
				n->sel[d] = p->sets[si].sel;
				n->nsel[d] = p->sets[si].nsel;
			}
		}
		if (i == SIZE_MAX)
			continue;
		n->pod = i;
		n->ep = e->ep;
		c->neps++;
	}
	return 0;
}

static int clone_lists(struct upd *u)
{
	const struct cpriv *pp = cpriv(u->prev);
	struct cpriv *p = cpriv(u->c);
	size_t n = p->st->ngroups;

	p->lists = calloc(n + 1, sizeof(*p->lists));
	if (!p->lists)
		return -ENOMEM;
	for (size_t g = 0; g < n; g++) {
		if (idlist_copy(&p->lists[g], &pp->lists[g]))
			return -ENOMEM;
	}
	return 0;
}

/* The groups a pod identity may be matched by (see struct cstatic). */
static int candidates(const struct seg_compiled *c, const struct seg_identity *id,
		      struct sizelist *out)
{
	const struct cstatic *st = cpriv(c)->st;
	size_t k;

	out->n = 0;
	if (id->ns && hmap_get_str(&st->ns_groups, id->ns->name, &k)) {
		for (size_t i = 0; i < st->nsg[k].n; i++) {
			if (vec_reserve(&out->v, &out->cap, out->n, sizeof(*out->v)))
				return -ENOMEM;
			out->v[out->n++] = st->nsg[k].v[i];
		}
	}
	for (size_t i = 0; id->ns && i < st->wide.n; i++) {
		if (vec_reserve(&out->v, &out->cap, out->n, sizeof(*out->v)))
			return -ENOMEM;
		out->v[out->n++] = st->wide.v[i];
	}
	for (size_t i = 0; i < id->nblocks; i++) {
		if (vec_reserve(&out->v, &out->cap, out->n, sizeof(*out->v)))
			return -ENOMEM;
		out->v[out->n++] = st->block_group[id->blocks[i]];
	}
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

static int ep_cmp(const void *a, const void *b)
{
	size_t x = ((const struct seg_ep_entry *)a)->pod, y = ((const struct seg_ep_entry *)b)->pod;

	return x < y ? -1 : x > y;
}

/* c->eps: the n kept ones (prev's order, pods renumbered: sorted unless
 * pods moved) then the new ones; back in pod order, merging the few new
 * ones in rather than sorting them all. */
static int eps_finish(struct seg_compiled *c, size_t n)
{
	size_t k = c->neps - n, i = n, j = k, o = c->neps;
	struct seg_ep_entry *tail;
	bool sorted = true;

	for (size_t e = 1; e < n && sorted; e++)
		sorted = c->eps[e - 1].pod < c->eps[e].pod;
	if (!sorted) {
		qsort(c->eps, c->neps, sizeof(*c->eps), ep_cmp);
		return 0;
	}
	if (!k)
		return 0;
	if (k > 1)
		qsort(c->eps + n, k, sizeof(*c->eps), ep_cmp);
	tail = malloc(k * sizeof(*tail));
	if (!tail)
		return -ENOMEM;
	memcpy(tail, c->eps + n, k * sizeof(*tail));
	while (j) {
		if (i && c->eps[i - 1].pod > tail[j - 1].pod)
			c->eps[--o] = c->eps[--i];
		else
			c->eps[--o] = tail[--j];
	}
	free(tail);
	return 0;
}

static size_t find_rep(const struct seg_compiled *c, __u32 id)
{
	const struct cpriv *p = cpriv(c);

	for (size_t i = 0; i < c->m->npods; i++) {
		if (c->ids[p->pod_id[i]].id == id)
			return i;
	}
	for (size_t k = 0; k < c->nipc; k++) {
		if (c->ipc[k].val.identity == id)
			return c->ipc[k].pod;
	}
	return SIZE_MAX;
}

/* Identities nobody has any more leave the lists and the numbering (the
 * table keeps them until compact_ids); the others get a representative pod
 * when theirs changed. */
static int mark_dead(struct upd *u)
{
	struct seg_compiled *c = u->c;
	struct cpriv *p = cpriv(c);
	struct sizelist cand = {};
	size_t cap_dead = 0;
	int err = 0;

	for (size_t i = 0; i < c->nids && !err; i++) {
		struct seg_identity *id = &c->ids[i];

		if (p->id_users[i]) {
			if (p->id_rep[i] != SIZE_MAX - 1)
				continue;
			p->id_rep[i] = find_rep(c, id->id);
			if (p->id_rep[i] == SIZE_MAX)
				err = -EINVAL; /* a used pod identity has a pod */
			else
				id->labels = &c->m->pods[p->id_rep[i]].labels;
			continue;
		}
		if (vec_reserve(&p->d_dead, &cap_dead, p->nd_dead, sizeof(*p->d_dead))) {
			err = -ENOMEM;
			break;
		}
		p->d_dead[p->nd_dead++] = id->id;
		err = candidates(c, id, &cand);
		for (size_t k = 0; k < cand.n && !err; k++) {
			struct idlist *l = &p->lists[cand.v[k]];

			for (size_t j = 0; j < l->n; j++) {
				if (l->v[j] == id->id) {
					l->v[j] = l->v[--l->n];
					break;
				}
			}
		}
		alloc_drop(c->numbering->ids, id->key);
	}
	free(cand.v);
	if (p->nd_dead)
		qsort(p->d_dead, p->nd_dead, sizeof(*p->d_dead), cmp_u32);
	return err;
}

static int size_cmp(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Step 3. A new identity gains entries only from the policies with a peer
 * in a group that matches it (or an egress rule to a named port without
 * peers); a set gets them from those of its own policies, which are all
 * of its pod's namespace. So: matching groups -> their policies -> the
 * sets of those policies' namespaces that hold them -> emission of those
 * policies only, in the set's order.
 */
static int emit_new_ids(struct upd *u, size_t nold, unsigned char *gm, struct sizelist *cand)
{
	struct seg_compiled *c = u->c;
	struct cpriv *p = cpriv(c);
	const struct cstatic *st = p->st;
	struct hmap byns = {};
	struct sizelist *nssets = NULL, pols = {}, *per = NULL;
	size_t nnss = 0, cap_nss = 0;
	int err = 0;

	per = calloc(nold + 1, sizeof(*per));
	if (!per)
		return -ENOMEM;
	for (size_t s = 0; s < nold && !err; s++) {
		const char *ns;
		size_t k;

		if (!p->sets[s].users || !p->sets[s].nsel)
			continue;
		ns = c->m->pols[p->sets[s].sel[0]].ns;
		if (!hmap_get_str(&byns, ns, &k)) {
			err = vec_reserve(&nssets, &cap_nss, nnss, sizeof(*nssets));
			if (err)
				break;
			k = nnss++;
			memset(&nssets[k], 0, sizeof(nssets[k]));
			err = hmap_put_str(&byns, ns, k);
		}
		if (!err && vec_reserve(&nssets[k].v, &nssets[k].cap, nssets[k].n, sizeof(size_t)))
			err = -ENOMEM;
		if (!err)
			nssets[k].v[nssets[k].n++] = s;
	}
	for (size_t a = 0; a < u->nadded && !err; a++) {
		size_t x = u->added[a];

		err = candidates(c, &c->ids[x], cand);
		memset(gm, 0, st->ngroups);
		pols.n = 0;
		for (size_t i = 0; i < cand->n && !err; i++) {
			const struct sizelist *gp = &st->group_pols[cand->v[i]];

			gm[cand->v[i]] = group_matches(c, cand->v[i], &c->ids[x]);
			for (size_t j = 0; gm[cand->v[i]] && j < gp->n && !err; j++) {
				if (vec_reserve(&pols.v, &pols.cap, pols.n, sizeof(size_t)))
					err = -ENOMEM;
				else
					pols.v[pols.n++] = gp->v[j];
			}
		}
		for (size_t j = 0; j < st->any_pols.n && !err; j++) {
			if (vec_reserve(&pols.v, &pols.cap, pols.n, sizeof(size_t)))
				err = -ENOMEM;
			else
				pols.v[pols.n++] = st->any_pols.v[j];
		}
		if (err)
			break;
		if (pols.n)
			qsort(pols.v, pols.n, sizeof(size_t), size_cmp);
		for (size_t j = 0; j < pols.n && !err; j++) {
			size_t pi = pols.v[j], k;

			if ((j && pols.v[j - 1] == pi) ||
			    !hmap_get_str(&byns, c->m->pols[pi].ns, &k))
				continue;
			for (size_t q = 0; q < nssets[k].n && !err; q++) {
				struct cset *s = &p->sets[nssets[k].v[q]];
				struct sizelist *l = &per[nssets[k].v[q]];

				if (!bsearch(&pi, s->sel, s->nsel, sizeof(size_t), size_cmp))
					continue;
				if (vec_reserve(&l->v, &l->cap, l->n, sizeof(size_t)))
					err = -ENOMEM;
				else
					l->v[l->n++] = pi;
			}
		}
		for (size_t s = 0; s < nold && !err; s++) {
			if (!per[s].n)
				continue;
			err = set_emit_ident(c, &p->sets[s], x, gm, per[s].v, per[s].n, &u->adds,
					     &u->nadds, &u->cap_adds);
			per[s].n = 0;
		}
	}
	for (size_t s = 0; s < nold; s++)
		free(per[s].v);
	free(per);
	for (size_t k = 0; k < nnss; k++)
		free(nssets[k].v);
	free(nssets);
	free(pols.v);
	hmap_free(&byns);
	return err;
}

/* Steps 2 and 3: the changed pods' identities, ipcache, endpoints; new
 * identities into the groups and the sets that were there. */
static int link_pods(struct upd *u, struct seg_diag *d)
{
	struct seg_compiled *c = u->c;
	struct cpriv *p = cpriv(c);
	const struct seg_compile_opts *o = u->o;
	struct sizelist cand = {};
	unsigned char *gm = NULL;
	size_t nold = p->nsets;
	int err = 0;

	for (size_t k = 0; k < u->nlink && !err; k++)
		err = ident_add_pod(c, NULL, u->link[k], d, &u->added, &u->nadded, &u->cap_added);
	if (!err)
		err = mark_dead(u);
	gm = calloc(p->st->ngroups + 1, 1);
	if (!err && !gm)
		err = -ENOMEM;
	for (size_t a = 0; a < u->nadded && !err; a++) {
		size_t x = u->added[a];

		err = candidates(c, &c->ids[x], &cand);
		for (size_t i = 0; i < cand.n && !err; i++) {
			size_t g = cand.v[i];

			if (!group_matches(c, g, &c->ids[x]))
				continue;
			if (vec_reserve(&p->lists[g].v, &p->lists[g].cap, p->lists[g].n,
					sizeof(__u32)))
				err = -ENOMEM;
			else
				p->lists[g].v[p->lists[g].n++] = c->ids[x].id;
		}
	}
	/* endpoints: new sets see the new identities already */
	for (size_t k = 0; k < u->nlink && !err; k++) {
		size_t i = u->link[k];

		if (o->is_local && !o->is_local(&c->m->pods[i], o->ctx))
			continue;
		err = endpoint_fill(c, NULL, i, &c->eps[c->neps], &u->adds, &u->nadds,
				    &u->cap_adds);
		if (!err)
			c->neps++;
	}
	/* sets whose pod changed: another of their pods */
	for (size_t k = 0; k < p->nsets && !err; k++) {
		struct cset *s = &p->sets[k];

		for (size_t e = 0; s->users && s->rep == SIZE_MAX && e < c->neps; e++) {
			if (c->eps[e].ep.policy_id[s->dir] == s->id)
				s->rep = c->eps[e].pod;
		}
	}
	/* the new identities' entries in the sets that were there */
	if (!err && u->nadded)
		err = emit_new_ids(u, nold, gm, &cand);
	free(gm);
	free(cand.v);
	return err;
}

/* Step 4: the dead identities leave the table. */
static int compact_ids(struct upd *u)
{
	struct seg_compiled *c = u->c;
	struct cpriv *p = cpriv(c);
	size_t *newidx, n = 0;
	int err = 0;

	if (!p->nd_dead)
		return 0;
	newidx = malloc((c->nids + 1) * sizeof(*newidx));
	if (!newidx)
		return -ENOMEM;
	hmap_free(&p->id_by_num);
	for (size_t i = 0; i < c->nids && !err; i++) {
		if (!p->id_users[i]) {
			free(c->ids[i].key);
			free(c->ids[i].blocks);
			newidx[i] = SIZE_MAX;
			continue;
		}
		newidx[i] = n;
		c->ids[n] = c->ids[i];
		p->id_rep[n] = p->id_rep[i];
		p->id_users[n] = p->id_users[i];
		err = hmap_put(&p->id_by_num, &c->ids[n].id, sizeof(__u32), n);
		n++;
	}
	for (size_t i = n; i < c->nids; i++)
		memset(&c->ids[i], 0, sizeof(c->ids[i]));
	c->nids = n;
	for (size_t i = 0; i < c->m->npods; i++)
		p->pod_id[i] = newidx[p->pod_id[i]];
	free(newidx);
	return err;
}

static int drop_sets(struct upd *u)
{
	struct seg_compiled *c = u->c;
	struct cpriv *p = cpriv(c);
	size_t n = 0, cap_fresh = 0;
	bool gone = false;

	for (size_t k = 0; k < p->nsets; k++) {
		struct cset *s = &p->sets[k];

		if (!s->users) {
			alloc_drop_num(c->numbering->policies, s->id);
			free(s->sel);
			free(s->sig);
			gone = true;
			continue;
		}
		if (s->fresh) {
			if (vec_reserve(&p->d_fresh, &cap_fresh, p->nd_fresh, sizeof(*p->d_fresh)))
				return -ENOMEM;
			p->d_fresh[p->nd_fresh++] = s->id;
		}
		p->sets[n++] = *s;
	}
	p->nsets = n;
	if (gone) {
		hmap_free(&p->set_by_id);
		for (size_t k = 0; k < n; k++) {
			if (hmap_put(&p->set_by_id, &p->sets[k].id, sizeof(__u32), k))
				return -ENOMEM;
		}
	}
	if (p->nd_fresh)
		qsort(p->d_fresh, p->nd_fresh, sizeof(*p->d_fresh), cmp_u32);
	return 0;
}

static bool dead_id(const struct cpriv *p, __u32 id)
{
	return p->nd_dead && bsearch(&id, p->d_dead, p->nd_dead, sizeof(*p->d_dead), cmp_u32);
}

static const struct cset *set_of(const struct cpriv *p, __u32 id)
{
	size_t k;

	return hmap_get(&p->set_by_id, &id, sizeof(id), &k) ? &p->sets[k] : NULL;
}

/* Step 5: prev's entries minus the dead merged with the new, sorted. */
static int merge_pol(struct upd *u)
{
	const struct seg_compiled *prev = u->prev;
	struct seg_compiled *c = u->c;
	struct cpriv *p = cpriv(c);
	size_t na = 0, i = 0, j = 0, cap_add = 0, cap_del = 0;
	const struct cset *s = NULL;
	__u32 sid = 0;

	/* adds of sets that died are dropped */
	for (size_t k = 0; k < u->nadds; k++) {
		if (set_of(p, u->adds[k].key.policy_id))
			u->adds[na++] = u->adds[k];
	}
	if (na)
		qsort(u->adds, na, sizeof(*u->adds), pol_cmp);
	c->pol = malloc((prev->npol + na + 1) * sizeof(*c->pol));
	if (!c->pol)
		return -ENOMEM;
	while (i < prev->npol || j < na) {
		const struct seg_pol_entry *e;
		bool from_prev =
			j == na || (i < prev->npol && pol_cmp(&prev->pol[i], &u->adds[j]) < 0);

		e = from_prev ? &prev->pol[i++] : &u->adds[j++];
		if (!s || e->key.policy_id != sid) {
			sid = e->key.policy_id;
			s = set_of(p, sid);
		}
		if (!s)
			continue; /* the set is gone */
		if (from_prev && dead_id(p, e->key.remote_id)) {
			struct cset *ms = (struct cset *)s;

			ms->wcnt[e->key.proto ? e->key.port_wild : 17]--;
			if (vec_reserve(&p->d_del, &cap_del, p->nd_del, sizeof(*p->d_del)))
				return -ENOMEM;
			p->d_del[p->nd_del++] = e->key;
			continue;
		}
		c->pol[c->npol++] = *e;
		if (from_prev || s->fresh)
			continue;
		if (vec_reserve(&p->d_add, &cap_add, p->nd_add, sizeof(*p->d_add)))
			return -ENOMEM;
		p->d_add[p->nd_add++] = *e;
	}
	return 0;
}

static int update(struct upd *u, struct seg_diag *d)
{
	struct seg_compiled *c = u->c;
	struct cpriv *p = cpriv(c);
	const struct cpriv *pp = cpriv(u->prev);
	int err;

	c->blocks = calloc(p->st->nblocks + 1, sizeof(*c->blocks));
	if (!c->blocks)
		return -ENOMEM;
	for (size_t b = 0; b < p->st->nblocks; b++)
		c->blocks[b] =
			(struct seg_ipblock *)&slot_peer(c->m, &p->st->slots[p->st->block_slot[b]])
				->block;
	c->nblocks = p->st->nblocks;
	c->lpm = p->st->lpm;
	c->nlpm = p->st->npfx;
	c->rules = p->st->rules;
	c->nrules = p->st->nrules;
	err = clone_ids(u);
	if (!err)
		err = clone_pods(u);
	if (!err)
		err = clone_sets(u);
	if (!err)
		err = clone_lists(u);
	u->neps_kept = c->neps;
	if (!err)
		err = link_pods(u, d);
	if (err)
		return err;
	for (size_t a = 0; a < u->nadded; a++) {
		if (vec_reserve(&p->d_new, &(size_t){ p->nd_new }, p->nd_new, sizeof(*p->d_new)))
			return -ENOMEM;
		p->d_new[p->nd_new++] = c->ids[u->added[a]].id;
	}
	err = compact_ids(u);
	if (!err)
		err = ipc_finish(c);
	if (!err)
		err = drop_sets(u);
	if (!err)
		err = merge_pol(u);
	if (err)
		return err;
	err = eps_finish(c, u->neps_kept);
	if (err)
		return err;
	for (size_t k = 0; k < c->neps; k++)
		c->eps[k].ep.identity = c->ids[p->pod_id[c->eps[k].pod]].id;
	endpoint_masks(c);
	p->base = pp->serial;
	p->updated = true;
	return check_caps(c, d);
}

int seg_compile_update(const struct seg_compiled *prev, const struct seg_manifests *m,
		       const struct seg_change *chg, const struct seg_compile_opts *o,
		       struct seg_compiled **out, struct seg_diag *d)
{
	static const struct seg_compile_opts none;
	struct seg_compile_opts full;
	struct upd u = { .prev = prev, .o = o ? o : &none };
	struct seg_compiled *c = NULL;
	struct seg_numbering *n = NULL;
	struct cpriv *p = NULL;
	int err;

	*out = NULL;
	if (!prev || !same_static(prev, m, u.o))
		goto full;
	c = calloc(1, sizeof(*c));
	n = calloc(1, sizeof(*n));
	if (c)
		c->priv = p = calloc(1, sizeof(*p));
	if (!c || !n || !p) {
		free(c);
		free(n);
		free(p);
		return cdiag(d, "out of memory"), -ENOMEM;
	}
	c->m = m;
	c->numbering = n;
	u.c = c;
	p->st = cpriv(prev)->st;
	p->st->refs++;
	p->serial = compile_serial();
	p->npods = m->npods;
	p->npols = m->npols;
	p->nnss = m->nnss;
	n->rules = prev->numbering->rules;
	n->rules->refs++;
	n->ids = alloc_clone(prev->numbering->ids);
	n->policies = alloc_clone(prev->numbering->policies);
	err = n->ids && n->policies ? ns_index(c) : -ENOMEM;
	if (!err)
		err = match_pods(&u, chg);
	if (err == 1) {
		seg_compiled_free(c);
		c = NULL;
		free(u.newof);
		free(u.link);
		goto full;
	}
	if (!err)
		err = update(&u, d);
	free(u.newof);
	free(u.link);
	free(u.added);
	free(u.adds);
	if (err && err != -E2BIG) {
		if (err == -ENOMEM)
			cdiag(d, "out of memory updating the compiled state");
		else if (!d->msg[0])
			cdiag(d, "update of the compiled state failed (%d)", err);
		seg_compiled_free(c);
		return err;
	}
	*out = c;
	return err;
full:
	full = *u.o;
	full.prev = prev ? prev->numbering : NULL;
	full.reuse = prev; /* its pod identities, when the change leaves them */
	return seg_compile(m, &full, out, d);
}

bool seg_compiled_ids_reused(const struct seg_compiled *c)
{
	return c && cpriv(c)->ids_reused;
}

size_t seg_compiled_sets_copied(const struct seg_compiled *c)
{
	return c ? cpriv(c)->sets_copied : 0;
}

bool seg_compiled_rules_taken(const struct seg_compiled *c)
{
	return c && cpriv(c)->rules_taken;
}

bool seg_compiled_updated(const struct seg_compiled *c)
{
	return c && cpriv(c)->updated;
}

void seg_compiled_delta(const struct seg_compiled *c, struct seg_compiled_delta *out)
{
	const struct cpriv *p = cpriv(c);

	memset(out, 0, sizeof(*out));
	out->serial = p->serial;
	if (!p->updated)
		return;
	out->base = p->base;
	out->add = p->d_add;
	out->nadd = p->nd_add;
	out->del = p->d_del;
	out->ndel = p->nd_del;
	out->fresh = p->d_fresh;
	out->nfresh = p->nd_fresh;
	out->new_ids = p->d_new;
	out->nnew_ids = p->nd_new;
	out->dead_ids = p->d_dead;
	out->ndead_ids = p->nd_dead;
}
