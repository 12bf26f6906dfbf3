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

/* Identities inside each ipBlock: an ipBlock peer's list, ready made. */
static int block_lists(const struct seg_compiled *c, struct idlist **out)
{
	struct idlist *bl = calloc(c->nblocks + 1, sizeof(*bl));
	size_t *cap = calloc(c->nblocks + 1, sizeof(*cap));
	int err = 0;

	if (!bl || !cap)
		err = -ENOMEM;
	for (size_t j = 0; j < c->nids && !err; j++) {
		for (size_t k = 0; k < c->ids[j].nblocks && !err; k++) {
			struct idlist *l = &bl[c->ids[j].blocks[k]];

			err = vec_reserve(&l->v, &cap[c->ids[j].blocks[k]], l->n, sizeof(*l->v));
			if (!err)
				l->v[l->n++] = c->ids[j].id;
		}
	}
	free(cap);
	*out = bl;
	return err;
}

static int peer_list_build(const struct seg_compiled *c, const struct seg_namespace *pol_ns,
			   const struct seg_peer *pe, const struct idlist *bl, __u32 *tmp,
			   struct idlist *l)
{
	size_t bi = 0;

	l->n = 0;
	if (pe->kind == SEG_PEER_IPBLOCK) {
		hmap_get(&cpriv(c)->block_by_peer, &pe, sizeof(pe), &bi);
		tmp = bl[bi].v;
		l->n = bl[bi].n;
	} else {
		for (size_t j = 0; j < c->nids; j++) {
			if (peer_matches(pol_ns, pe, &c->ids[j]))
				tmp[l->n++] = c->ids[j].id;
		}
	}
	l->v = malloc((l->n + 1) * sizeof(*l->v));
	if (!l->v)
		return -ENOMEM;
	if (l->n)
		memcpy(l->v, tmp, l->n * sizeof(*l->v));
	return 0;
}

static void selector_key(struct sbuf *sb, const struct seg_selector *s)
{
	for (size_t i = 0; i < s->match.n; i++)
		sb_printf(sb, "%s=%s,", s->match.v[i].key, s->match.v[i].val);
	for (size_t i = 0; i < s->nexprs; i++) {
		sb_printf(sb, ";%s %d", s->exprs[i].key, s->exprs[i].op);
		for (size_t j = 0; j < s->exprs[i].nvalues; j++)
			sb_printf(sb, "|%s", s->exprs[i].values[j]);
	}
}

/* Peers that select the same way share one list: "kind|ns|pod sel|ns sel". */
static char *peer_key(const struct seg_netpol *np, const struct seg_peer *pe)
{
	struct sbuf sb = {};

	if (pe->kind == SEG_PEER_IPBLOCK)
		return NULL;
	sb_printf(&sb, "%d|%s|", pe->kind, pe->kind == SEG_PEER_PODS ? np->ns : "");
	selector_key(&sb, &pe->pod_sel);
	sb_putc(&sb, '|');
	selector_key(&sb, &pe->ns_sel);
	return sb_take(&sb);
}

static int build_peer_lists(struct seg_compiled *c)
{
	struct hmap shared = {};
	const struct seg_manifests *m = c->m;
	struct cpriv *p = cpriv(c);
	__u32 *tmp = malloc((c->nids + 1) * sizeof(*tmp));
	struct idlist *bl = NULL;
	size_t cap = 0;
	int err = tmp ? block_lists(c, &bl) : -ENOMEM;

	for (size_t i = 0; i < m->npols && !err; i++) {
		const struct seg_netpol *np = &m->pols[i];
		const struct seg_namespace *pol_ns = ident_ns(c, np->ns);

		for (int d = 0; d < SEG_DIR_MAX && !err; d++) {
			for (size_t r = 0; np->types[d] && r < np->nrules[d] && !err; r++) {
				const struct seg_rule *ru = &np->rules[d][r];

				for (size_t k = 0; k < ru->npeers && !err; k++) {
					const struct seg_peer *pe = &ru->peers[k];
					char *key = peer_key(np, pe);
					size_t li;

					if (key && hmap_get_str(&shared, key, &li)) {
						err = hmap_put(&p->peer_ids, &pe, sizeof(pe), li);
						free(key);
						continue;
					}
					err = vec_reserve(&p->peer_lists, &cap, p->npeer_lists,
							  sizeof(*p->peer_lists));
					if (!err)
						err = peer_list_build(
							c, pol_ns, pe, bl, tmp,
							&p->peer_lists[p->npeer_lists]);
					li = p->npeer_lists++;
					if (!err)
						err = hmap_put(&p->peer_ids, &pe, sizeof(pe), li);
					if (!err && key)
						err = hmap_put_str(&shared, key, li);
					free(key);
				}
			}
		}
	}
	for (size_t b = 0; bl && b < c->nblocks; b++)
		free(bl[b].v);
	free(bl);
	free(tmp);
	hmap_free(&shared);
	return err;
}

static const struct idlist *peer_list(const struct seg_compiled *c, const struct seg_peer *pe)
{
	size_t i = 0;

	hmap_get(&cpriv(c)->peer_ids, &pe, sizeof(pe), &i);
	return &cpriv(c)->peer_lists[i];
}

/* ---- rule table ------------------------------------------------------------ */

/* Rule ids are numbered by "ns/name/dir/rule/peer", stable across
 * compiles; the table is ordered by (pol, dir, rule, peer). */
static int build_rules(struct seg_compiled *c, const struct seg_compile_opts *o)
{
	const struct seg_manifests *m = c->m;
	size_t cap = 0;
	char key[600];

	for (size_t i = 0; i < m->npols; i++) {
		const struct seg_netpol *np = &m->pols[i];

		for (int d = 0; d < SEG_DIR_MAX; d++) {
			for (size_t r = 0; np->types[d] && r < np->nrules[d]; r++) {
				size_t npeers = np->rules[d][r].npeers;

				for (size_t k = 0; k < (npeers ? npeers : 1); k++) {
					struct seg_rule_info *ri;

					if (vec_reserve(&c->rules, &cap, c->nrules,
							sizeof(*c->rules)))
						return -ENOMEM;
					ri = &c->rules[c->nrules];
					snprintf(key, sizeof(key), "%s/%s/%d/%zu/%zu", np->ns,
						 np->name, d, r, npeers ? k : (size_t)-1);
					if (alloc_get(c->numbering->rules,
						      o->prev ? o->prev->rules : NULL, key,
						      &ri->rule_id) ||
					    hmap_put(&cpriv(c)->rule_by_id, &ri->rule_id,
						     sizeof(ri->rule_id), c->nrules))
						return -ENOMEM;
					c->nrules++;
					ri->pol = i;
					ri->dir = (__u8)d;
					ri->rule = (int)r;
					ri->peer = npeers ? (int)k : -1;
				}
			}
		}
	}
	return 0;
}

/* ---- policy entries ---------------------------------------------------------- */

struct emit {
	struct seg_compiled *c;
	size_t cap;
	__u32 policy_id;
	__u8 dir;
	__u32 port_mask;
};

static int emit1(struct emit *e, __u32 remote, __u16 port, __u8 proto, __u8 wild, __u32 rule_id)
{
	struct seg_compiled *c = e->c;
	struct seg_pol_entry *pe;
	struct seg_policy_key k;

	memset(&k, 0, sizeof(k));
	k.policy_id = e->policy_id;
	k.remote_id = remote;
	k.port = port;
	k.proto = proto;
	k.dir = e->dir;
	k.port_wild = wild;
	if (hmap_get(&cpriv(c)->pol_by_key, &k, sizeof(k), NULL))
		return 0; /* an earlier rule already allows it; it names the verdict */
	if (vec_reserve(&c->pol, &e->cap, c->npol, sizeof(*c->pol)))
		return -ENOMEM;
	pe = &c->pol[c->npol];
	memset(pe, 0, sizeof(*pe));
	pe->key = k;
	pe->val.rule_id = rule_id;
	pe->val.action = SEG_ACT_ALLOW;
	e->port_mask |= proto ? 1u << wild : SEG_PMASK_ANYPROTO;
	return hmap_put(&cpriv(c)->pol_by_key, &k, sizeof(k), c->npol++);
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

/* Every remote of one peer (or ANY) for one port spec. local: the endpoint's
 * pod (ingress named ports resolve there). */
static int emit_port(struct emit *e, const struct seg_port *po, const struct idlist *ids,
		     const struct seg_pod *local, __u32 rule_id)
{
	struct seg_compiled *c = e->c;
	__u32 any = SEG_ID_ANY;
	const __u32 *rv = ids ? ids->v : &any;
	size_t rn = ids ? ids->n : 1;
	int err = 0;

	if (po && po->name && e->dir == SEG_DIR_INGRESS) {
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
			dst = ident_pod(c, j);
			port = dst ? seg_pod_named_port(dst, po->name, po->proto) : 0;
			if (port)
				err = emit1(e, c->ids[j].id, port, po->proto, 0, rule_id);
		}
		return err;
	}
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

static int emit_policy(struct emit *e, size_t pi, const struct seg_pod *local)
{
	const struct seg_netpol *np = &e->c->m->pols[pi];
	int err = 0;

	for (size_t r = 0; r < np->nrules[e->dir] && !err; r++) {
		const struct seg_rule *ru = &np->rules[e->dir][r];
		size_t ri = first_rule_idx(e->c, pi, e->dir, r);

		for (size_t k = 0; k < (ru->npeers ? ru->npeers : 1) && !err; k++) {
			const struct idlist *ids =
				ru->npeers ? peer_list(e->c, &ru->peers[k]) : NULL;

			for (size_t q = 0; q < (ru->nports ? ru->nports : 1) && !err; q++)
				err = emit_port(e, ru->nports ? &ru->ports[q] : NULL, ids, local,
						e->c->rules[ri + k].rule_id);
		}
	}
	return err;
}

/* ---- endpoints ------------------------------------------------------------------- */

static bool is_audit(const struct seg_compiled *c, const struct seg_compile_opts *o, const char *ns)
{
	const struct seg_namespace *n = ident_ns(c, ns);
	int enf = n ? n->enforcement : SEG_ENF_DEFAULT;

	return enf == SEG_ENF_AUDIT || (enf == SEG_ENF_DEFAULT && o->audit_default);
}

static bool uses_ingress_names(const struct seg_netpol *np)
{
	for (size_t r = 0; r < np->nrules[SEG_DIR_INGRESS]; r++) {
		for (size_t q = 0; q < np->rules[SEG_DIR_INGRESS][r].nports; q++) {
			if (np->rules[SEG_DIR_INGRESS][r].ports[q].name)
				return true;
		}
	}
	return false;
}

struct polset {
	__u32 id;
	__u32 port_mask;
};

/* Policies by namespace: endpoints only look at their own namespace's. */
struct nspols {
	size_t *v;
	size_t n, cap;
};

static int endpoint_dir(struct seg_compiled *c, const struct seg_compile_opts *o,
			struct seg_ep_entry *ep, __u8 dir, const struct nspols *cand,
			struct hmap *sigs, struct polset **sets, size_t *nsets, size_t *pol_cap)
{
	const struct seg_manifests *m = c->m;
	const struct seg_pod *pod = &m->pods[ep->pod];
	struct sbuf sig = {};
	bool names = false;
	size_t idx;
	int err = 0;

	sb_printf(&sig, "%u:", dir);
	for (size_t k = 0; cand && k < cand->n; k++) {
		size_t i = cand->v[k];
		const struct seg_netpol *np = &m->pols[i];

		if (!np->types[dir] || !seg_selector_matches(&np->pod_sel, &pod->labels))
			continue;
		if (!ep->sel[dir]) {
			ep->sel[dir] = calloc(cand->n, sizeof(*ep->sel[dir]));
			if (!ep->sel[dir]) {
				err = -ENOMEM;
				goto out;
			}
		}
		ep->sel[dir][ep->nsel[dir]++] = i;
		sb_printf(&sig, "%s/%s,", np->ns, np->name);
		names |= dir == SEG_DIR_INGRESS && uses_ingress_names(np);
	}
	if (!ep->nsel[dir])
		goto out;
	/* ingress named ports resolve on this pod: its ports join the key */
	for (size_t i = 0; names && i < pod->nports; i++)
		sb_printf(&sig, ";%s/%u=%u", pod->ports[i].name ? pod->ports[i].name : "",
			  pod->ports[i].proto, pod->ports[i].port);
	if (sig.oom) {
		err = -ENOMEM;
		goto out;
	}
	if (!hmap_get_str(sigs, sig.p, &idx)) {
		struct emit e = { .c = c, .cap = *pol_cap, .dir = dir };
		struct polset *s = realloc(*sets, (*nsets + 1) * sizeof(**sets));

		if (!s || alloc_get(c->numbering->policies, o->prev ? o->prev->policies : NULL,
				    sig.p, &e.policy_id)) {
			err = -ENOMEM;
			goto out;
		}
		*sets = s;
		for (size_t i = 0; i < ep->nsel[dir] && !err; i++)
			err = emit_policy(&e, ep->sel[dir][i], pod);
		*pol_cap = e.cap;
		s[*nsets].id = e.policy_id;
		s[*nsets].port_mask = e.port_mask;
		idx = (*nsets)++;
		if (!err)
			err = hmap_put_str(sigs, sig.p, idx);
	}
	if (!err) {
		ep->ep.policy_id[dir] = (*sets)[idx].id;
		ep->ep.port_mask[dir] = (*sets)[idx].port_mask;
		ep->ep.flags[dir] = SEG_EPF_ISOLATED;
	}
out:
	sb_free(&sig);
	return err;
}

static int build_endpoints(struct seg_compiled *c, const struct seg_compile_opts *o)
{
	const struct seg_manifests *m = c->m;
	struct cpriv *p = cpriv(c);
	struct nspols *byns = NULL;
	struct polset *sets = NULL;
	size_t nsets = 0, pol_cap = 0, nbyns = 0;
	struct hmap sigs = {}, nsidx = {};
	int err = 0;

	byns = calloc(m->npols + 1, sizeof(*byns));
	c->eps = calloc(m->npods + 1, sizeof(*c->eps));
	if (!byns || !c->eps) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < m->npols && !err; i++) {
		size_t k = nbyns;

		if (!hmap_get_str(&nsidx, m->pols[i].ns, &k))
			err = hmap_put_str(&nsidx, m->pols[i].ns, nbyns++);
		if (!err)
			err = vec_reserve(&byns[k].v, &byns[k].cap, byns[k].n, sizeof(*byns[k].v));
		if (!err)
			byns[k].v[byns[k].n++] = i;
	}
	for (size_t i = 0; i < m->npods && !err; i++) {
		struct seg_ep_entry *ep = &c->eps[c->neps];
		const struct nspols *cand = NULL;
		size_t k;

		if (o->is_local && !o->is_local(&m->pods[i], o->ctx))
			continue;
		if (hmap_get_str(&nsidx, m->pods[i].ns, &k))
			cand = &byns[k];
		ep->pod = i;
		ep->ep.identity = c->ids[p->pod_id[i]].id;
		c->neps++;
		err = hmap_put(&p->ep_by_pod, &i, sizeof(i), c->neps - 1);
		for (__u8 d = 0; d < SEG_DIR_MAX && !err; d++) {
			err = endpoint_dir(c, o, ep, d, cand, &sigs, &sets, &nsets, &pol_cap);
			if (!err && ep->nsel[d] && is_audit(c, o, m->pods[i].ns))
				ep->ep.flags[d] |= SEG_EPF_AUDIT;
		}
	}
out:
	for (size_t i = 0; byns && i < nbyns; i++)
		free(byns[i].v);
	free(byns);
	free(sets);
	hmap_free(&sigs);
	hmap_free(&nsidx);
	return err;
}

/* ---- capacity, assembly ----------------------------------------------------------- */

static int check_caps(struct seg_compiled *c, const struct seg_compile_opts *o, struct seg_diag *d)
{
	const __u32 want[5] = { o->caps.endpoints, o->caps.ipcache, o->caps.ipcache_lpm,
				o->caps.policy, o->caps.rules };
	struct sbuf sb = {};
	int err = 0;

	c->caps.used[0] = c->neps;
	c->caps.used[1] = c->nipc;
	c->caps.used[2] = c->nlpm;
	c->caps.used[3] = c->npol;
	c->caps.used[4] = 1; /* rule ids index the counters: 0 = "no rule" */
	for (size_t i = 0; i < c->nrules; i++) {
		if (c->rules[i].rule_id + 1 > c->caps.used[4])
			c->caps.used[4] = c->rules[i].rule_id + 1;
	}
	for (int i = 0; i < 5; i++) {
		c->caps.cap[i] = want[i] ? want[i] : cap_default[i];
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

static int pol_cmp(const void *a, const void *b)
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

static int index_policy(struct seg_compiled *c)
{
	struct cpriv *p = cpriv(c);

	if (c->npol)
		qsort(c->pol, c->npol, sizeof(*c->pol), pol_cmp);
	hmap_free(&p->pol_by_key);
	for (size_t i = 0; i < c->npol; i++) {
		if (hmap_put(&p->pol_by_key, &c->pol[i].key, sizeof(c->pol[i].key), i))
			return -ENOMEM;
	}
	return 0;
}

int seg_compile(const struct seg_manifests *m, const struct seg_compile_opts *o,
		struct seg_compiled **out, struct seg_diag *d)
{
	static const struct seg_compile_opts none;
	struct seg_compiled *c = calloc(1, sizeof(*c));
	int err;

	*out = NULL;
	if (!o)
		o = &none;
	if (!c || !(c->priv = calloc(1, sizeof(struct cpriv)))) {
		free(c);
		return cdiag(d, "out of memory"), -ENOMEM;
	}
	c->m = m;
	err = ident_build(c, o, d);
	if (err)
		goto fail;
	err = build_peer_lists(c);
	if (!err)
		err = build_rules(c, o);
	if (!err)
		err = build_endpoints(c, o);
	if (!err)
		err = index_policy(c);
	if (err) {
		cdiag(d, "out of memory compiling policies");
		goto fail;
	}
	err = check_caps(c, o, d);
	*out = c;
	return err;
fail:
	seg_compiled_free(c);
	return err;
}

void seg_compiled_free(struct seg_compiled *c)
{
	struct cpriv *p;

	if (!c)
		return;
	p = cpriv(c);
	for (size_t i = 0; i < c->neps; i++) {
		free(c->eps[i].sel[0]);
		free(c->eps[i].sel[1]);
	}
	/* a failed endpoint may have its sel allocated without being counted */
	if (c->eps && c->m && c->neps < c->m->npods) {
		free(c->eps[c->neps].sel[0]);
		free(c->eps[c->neps].sel[1]);
	}
	free(c->eps);
	free(c->pol);
	free(c->rules);
	if (p) {
		for (size_t i = 0; i < p->npeer_lists; i++)
			free(p->peer_lists[i].v);
		free(p->peer_lists);
		hmap_free(&p->peer_ids);
		hmap_free(&p->pol_by_key);
		hmap_free(&p->ep_by_pod);
		hmap_free(&p->rule_by_id);
	}
	ident_free(c);
	free(p);
	free(c);
}

/* ---- lookups with the data path's semantics --------------------------------------- */

__u32 seg_ipcache_lookup(const struct seg_compiled *c, const struct in6_addr *a)
{
	const struct cpfx *x;
	size_t i;

	if (hmap_get(&cpriv(c)->ipc_by_addr, a, sizeof(*a), &i))
		return c->ipc[i].val.identity;
	x = ident_pfx_lookup(c, a); /* the LPM entries are the prefixes */
	return x ? x->id : SEG_ID_WORLD;
}

const struct seg_ep_entry *seg_compiled_endpoint(const struct seg_compiled *c,
						 const struct seg_pod *pod)
{
	size_t pi, i;

	if (pod < c->m->pods || pod >= c->m->pods + c->m->npods)
		return NULL;
	pi = (size_t)(pod - c->m->pods);
	return hmap_get(&cpriv(c)->ep_by_pod, &pi, sizeof(pi), &i) ? &c->eps[i] : NULL;
}

static const struct seg_pol_entry *pol_get(const struct seg_compiled *c,
					   const struct seg_policy_key *k)
{
	size_t i;

	return hmap_get(&cpriv(c)->pol_by_key, k, sizeof(*k), &i) ? &c->pol[i] : NULL;
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

	return hmap_get(&cpriv(c)->rule_by_id, &rule_id, sizeof(rule_id), &i) ? &c->rules[i] : NULL;
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
