// SPDX-License-Identifier: GPL-2.0-only
/*
 * The pure half of lib/apply: compiled state + mirror -> plan. See plan.h.
 */
#include "plan.h"
#include "policy/policy.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Grows *v (element size sz) to hold at least n + 1 elements. */
static int vec_grow(void *v, size_t *cap, size_t n, size_t sz)
{
	void **pp = v;
	size_t ncap;
	void *q;

	if (n + 1 <= *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 64;
	q = realloc(*pp, ncap * sz);
	if (!q)
		return -ENOMEM;
	*pp = q;
	*cap = ncap;
	return 0;
}

/* A policy set: entries [start, start + n) of some ap_pol array. */
struct pset {
	__u64 hash;
	const struct ap_pol *e;
	size_t n;
	__u32 id; /* data path id */
	bool used;
};

static int cmp_ep(const void *a, const void *b)
{
	const struct ap_ep *x = a, *y = b;

	return x->ifkey < y->ifkey ? -1 : x->ifkey > y->ifkey;
}

static int cmp_ipc(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct seg_ipcache_key));
}

static int cmp_lpm(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct seg_lpm_key));
}

/* The compiler's order (policy id, dir, remote, proto, port, wild): its
 * entries come sorted, and a set's entries are in one canonical order
 * whatever its id. */
static int cmp_pol(const void *a, const void *b)
{
	const struct seg_policy_key *x = a, *y = b;

#define CMP_FIELD(f)                                 \
	do {                                         \
		if (x->f != y->f)                    \
			return x->f < y->f ? -1 : 1; \
	} while (0)
	CMP_FIELD(policy_id);
	CMP_FIELD(dir);
	CMP_FIELD(remote_id);
	CMP_FIELD(proto);
	CMP_FIELD(port);
	CMP_FIELD(port_wild);
#undef CMP_FIELD
	return 0;
}

static bool pol_sorted(const struct ap_pol *v, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		if (cmp_pol(&v[i - 1], &v[i]) > 0)
			return false;
	}
	return true;
}

void ap_state_sort(struct ap_state *s)
{
	if (s->nep)
		qsort(s->ep, s->nep, sizeof(*s->ep), cmp_ep);
	if (s->nipc)
		qsort(s->ipc, s->nipc, sizeof(*s->ipc), cmp_ipc);
	if (s->nlpm)
		qsort(s->lpm, s->nlpm, sizeof(*s->lpm), cmp_lpm);
	if (s->npol)
		qsort(s->pol, s->npol, sizeof(*s->pol), cmp_pol);
}

void ap_state_free(struct ap_state *s)
{
	free(s->ep);
	free(s->ipc);
	free(s->lpm);
	free(s->pol);
	memset(s, 0, sizeof(*s));
}

void ap_plan_free(struct ap_plan *p)
{
	ap_state_free(&p->want);
	free(p->pol_add);
	free(p->ipc_set);
	free(p->lpm_set);
	free(p->ep_set);
	free(p->ep_del);
	free(p->ipc_del);
	free(p->lpm_del);
	free(p->pol_del);
	free(p->idmap);
	memset(p, 0, sizeof(*p));
}

bool ap_plan_empty(const struct ap_plan *p)
{
	return !p->npol_add && !p->nipc_set && !p->nlpm_set && !p->nep_set && !p->nep_del &&
	       !p->nipc_del && !p->nlpm_del && !p->npol_del;
}

/* Over the entries without their policy id: the 12 key bytes after it and
 * the 8 value bytes, as two 64-bit words and one 32-bit word folded into
 * the second, one multiply-xorshift round per word (every apply hashes
 * every set, wanted and live). */
__u64 ap_set_hash(const struct ap_pol *e, size_t n)
{
	__u64 h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		__u64 a, c;
		__u32 b;

		memcpy(&a, (const char *)&e[i].key + sizeof(e[i].key.policy_id), 8);
		memcpy(&b, (const char *)&e[i].key + sizeof(e[i].key.policy_id) + 8, 4);
		memcpy(&c, &e[i].val, 8);
		h = (h ^ a) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
		h = (h ^ c ^ ((__u64)b << 32 | b)) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	return h;
}

static bool set_equal(const struct pset *a, const struct ap_pol *e, size_t n, __u64 hash)
{
	const size_t off = sizeof(e->key.policy_id);

	if (a->hash != hash || a->n != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (memcmp((const char *)&a->e[i].key + off, (const char *)&e[i].key + off,
			   sizeof(e->key) - off) ||
		    memcmp(&a->e[i].val, &e[i].val, sizeof(e->val)))
			return false;
	}
	return true;
}

/* Splits a sorted policy array into sets. */
static int split_sets(const struct ap_pol *pol, size_t npol, struct pset **out, size_t *nout)
{
	struct pset *s = calloc(npol + 1, sizeof(*s));
	size_t n = 0;

	if (!s)
		return -ENOMEM;
	for (size_t i = 0, j; i < npol; i = j) {
		for (j = i + 1; j < npol && pol[j].key.policy_id == pol[i].key.policy_id; j++)
			;
		s[n].e = &pol[i];
		s[n].n = j - i;
		s[n].id = pol[i].key.policy_id;
		s[n].hash = ap_set_hash(&pol[i], j - i);
		n++;
	}
	*out = s;
	*nout = n;
	return 0;
}

/* ---- wanted endpoints, ipcache ---------------------------------------------- */

static __u32 pod_ifkey(const struct seg_compiled *c, const struct seg_apply_opts *o, size_t pod)
{
	return o && o->pod_ifkey ? o->pod_ifkey(&c->m->pods[pod], o->ctx) : 0;
}

static int want_eps(const struct seg_compiled *c, const struct seg_apply_opts *o,
		    struct ap_state *w)
{
	w->ep = calloc(c->neps + 1, sizeof(*w->ep));
	if (!w->ep)
		return -ENOMEM;
	for (size_t i = 0; i < c->neps; i++) {
		const struct seg_pod *pod = &c->m->pods[c->eps[i].pod];
		__u32 ifkey = pod_ifkey(c, o, c->eps[i].pod);
		struct ap_ep *e = &w->ep[w->nep];

		if (!ifkey)
			continue;
		e->ifkey = ifkey;
		e->ep = c->eps[i].ep; /* policy ids: the compiler's for now */
		e->ep.ep_id = o->pod_ep_id ? o->pod_ep_id(pod, o->ctx) : 0;
		if (!e->ep.ep_id)
			e->ep.ep_id = ifkey;
		e->ep.revision = 0;
		w->nep++;
	}
	for (size_t i = 1; i < w->nep; i++) {
		if (cmp_ep(&w->ep[i - 1], &w->ep[i]) > 0) {
			qsort(w->ep, w->nep, sizeof(*w->ep), cmp_ep);
			break;
		}
	}
	for (size_t i = 1; i < w->nep; i++) {
		if (w->ep[i].ifkey == w->ep[i - 1].ifkey)
			return -EEXIST; /* two pods at one ifkey */
	}
	return 0;
}

static int want_ipc(const struct seg_compiled *c, const struct seg_apply_opts *o,
		    struct ap_state *w)
{
	w->ipc = calloc(c->nipc + 1, sizeof(*w->ipc));
	w->lpm = calloc(c->nlpm + 1, sizeof(*w->lpm));
	if (!w->ipc || !w->lpm)
		return -ENOMEM;
	for (size_t i = 0; i < c->nipc; i++) {
		memcpy(w->ipc[i].key.addr, &c->ipc[i].addr, sizeof(w->ipc[i].key.addr));
		w->ipc[i].val = c->ipc[i].val;
		w->ipc[i].val.owner_ifkey = pod_ifkey(c, o, c->ipc[i].pod);
	}
	w->nipc = c->nipc;
	for (size_t i = 0; i < c->nlpm; i++) {
		w->lpm[i].key = c->lpm[i].key;
		w->lpm[i].val = c->lpm[i].val;
	}
	w->nlpm = c->nlpm;
	for (size_t i = 1; i < w->nipc; i++) {
		if (cmp_ipc(&w->ipc[i - 1], &w->ipc[i]) > 0) { /* the compiler sorts them */
			qsort(w->ipc, w->nipc, sizeof(*w->ipc), cmp_ipc);
			break;
		}
	}
	qsort(w->lpm, w->nlpm, sizeof(*w->lpm), cmp_lpm);
	return 0;
}

/* ---- policy sets -------------------------------------------------------------- */

struct setctx {
	const struct ap_state *mirror;
	struct pset *ms; /* mirror sets */
	size_t nms;
	struct pset *ns; /* sets added by this plan (entries in p->pol_add) */
	size_t nns;
};

static struct pset *find_set(struct setctx *x, const struct ap_pol *e, size_t n, __u64 h)
{
	for (size_t i = 0; i < x->nms; i++) {
		if (set_equal(&x->ms[i], e, n, h))
			return &x->ms[i];
	}
	for (size_t i = 0; i < x->nns; i++) {
		if (set_equal(&x->ns[i], e, n, h))
			return &x->ns[i];
	}
	return NULL;
}

/* Maps every compiled set an endpoint references to a data path id. */
static int map_sets(const struct seg_compiled *c, struct setctx *x, struct ap_plan *p)
{
	/* written before read: malloc, not calloc (a calloc of this size
	 * from the heap clears every byte, each apply) */
	struct ap_pol *cp = malloc((c->npol + 1) * sizeof(*cp));
	size_t runs = 0; /* at least the number of sets */
	__u32 maxid = 0;
	bool *used = NULL;
	int err = 0;

	for (size_t i = 0; i < c->npol; i++) {
		maxid = c->pol[i].key.policy_id > maxid ? c->pol[i].key.policy_id : maxid;
		runs += !i || c->pol[i].key.policy_id != c->pol[i - 1].key.policy_id;
	}
	used = calloc(maxid + 1, sizeof(*used));
	p->idmap = calloc(maxid + 1, sizeof(*p->idmap));
	p->pol_add = malloc((c->npol + 1) * sizeof(*p->pol_add));
	x->ns = calloc(runs + 1, sizeof(*x->ns));
	if (!cp || !used || !p->idmap || !p->pol_add || !x->ns) {
		err = -ENOMEM;
		goto out;
	}
	p->nidmap = maxid + 1;
	for (size_t i = 0; i < p->want.nep; i++) {
		for (int d = 0; d < SEG_DIR_MAX; d++) {
			if (p->want.ep[i].ep.policy_id[d] <= maxid)
				used[p->want.ep[i].ep.policy_id[d]] = true;
		}
	}
	for (size_t i = 0; i < c->npol; i++) {
		cp[i].key = c->pol[i].key;
		cp[i].val = c->pol[i].val;
	}
	if (!pol_sorted(cp, c->npol))
		qsort(cp, c->npol, sizeof(*cp), cmp_pol);
	for (size_t i = 0, j; i < c->npol; i = j) {
		__u32 cid = cp[i].key.policy_id;
		struct pset *s;
		__u64 h;

		for (j = i + 1; j < c->npol && cp[j].key.policy_id == cid; j++)
			;
		if (!cid || !used[cid])
			continue;
		h = ap_set_hash(&cp[i], j - i);
		s = find_set(x, &cp[i], j - i, h);
		if (!s) {
			if (p->next_id == 0 || p->next_id == UINT32_MAX) {
				err = -ERANGE;
				goto out;
			}
			s = &x->ns[x->nns++];
			s->id = p->next_id++;
			s->hash = h;
			s->n = j - i;
			s->e = &p->pol_add[p->npol_add];
			for (size_t k = i; k < j; k++) {
				p->pol_add[p->npol_add] = cp[k];
				p->pol_add[p->npol_add++].key.policy_id = s->id;
			}
			p->sets_added++;
		}
		s->used = true;
		p->idmap[cid] = s->id;
	}
	for (size_t i = 0; i < p->want.nep; i++) {
		for (int d = 0; d < SEG_DIR_MAX; d++) {
			__u32 *id = &p->want.ep[i].ep.policy_id[d];

			*id = *id && *id <= maxid ? p->idmap[*id] : 0;
		}
	}
out:
	free(cp);
	free(used);
	return err;
}

/* want.pol = the used mirror sets + the new ones (each set contiguous and
 * in canonical order, which is all split_sets needs); pol_del = the rest. */
static int collect_pol(struct setctx *x, struct ap_plan *p)
{
	const struct ap_state *m = x->mirror;

	p->want.pol = malloc((m->npol + p->npol_add + 1) * sizeof(*p->want.pol));
	p->pol_del = malloc((m->npol + 1) * sizeof(*p->pol_del));
	if (!p->want.pol || !p->pol_del)
		return -ENOMEM;
	for (size_t i = 0; i < x->nms; i++) {
		const struct pset *s = &x->ms[i];

		for (size_t k = 0; k < s->n; k++) {
			if (s->used)
				p->want.pol[p->want.npol++] = s->e[k];
			else
				p->pol_del[p->npol_del++] = s->e[k].key;
		}
		p->sets_removed += !s->used;
	}
	memcpy(p->want.pol + p->want.npol, p->pol_add, p->npol_add * sizeof(*p->pol_add));
	p->want.npol += p->npol_add;
	return 0;
}

/* ---- diffs of sorted arrays ------------------------------------------------------ */

static bool ep_same(const struct seg_endpoint *a, const struct seg_endpoint *b)
{
	struct seg_endpoint x = *a, y = *b;

	x.revision = y.revision = 0;
	return !memcmp(&x, &y, sizeof(x));
}

/* Endpoints: revision kept when unchanged, else bumped (new: 1). */
static int diff_eps(const struct ap_state *m, struct ap_plan *p, bool *chg)
{
	struct ap_state *w = &p->want;
	size_t i = 0, j = 0;

	p->ep_set = calloc(w->nep + 1, sizeof(*p->ep_set));
	p->ep_del = calloc(m->nep + 1, sizeof(*p->ep_del));
	if (!p->ep_set || !p->ep_del)
		return -ENOMEM;
	while (i < m->nep || j < w->nep) {
		int c = i == m->nep ? 1 : j == w->nep ? -1 : cmp_ep(&m->ep[i], &w->ep[j]);

		if (c < 0) {
			p->ep_del[p->nep_del++] = m->ep[i++].ifkey;
			continue;
		}
		if (c == 0 && ep_same(&m->ep[i].ep, &w->ep[j].ep)) {
			w->ep[j++].ep.revision = m->ep[i++].ep.revision;
			continue;
		}
		w->ep[j].ep.revision = c == 0 ? m->ep[i].ep.revision + 1 : 1;
		if (!w->ep[j].ep.revision)
			w->ep[j].ep.revision = 1;
		chg[j] = true;
		p->ep_set[p->nep_set++] = w->ep[j++];
		i += c == 0;
	}
	return 0;
}

/* ---- revisions of endpoints whose flows may change verdict ------------------------ */

static bool prefix_has(const __u32 *net, __u32 plen, const __u32 *addr)
{
	const __u8 *n = (const __u8 *)net, *a = (const __u8 *)addr;
	__u32 bytes = plen / 8, bits = plen % 8;

	if (plen > 128 || memcmp(n, a, bytes))
		return false;
	return !bits || !((n[bytes] ^ a[bytes]) & (0xff00 >> bits));
}

/* The identity a packet from addr gets in state s: exact, longest
 * prefix, else WORLD (the data path's lookup). */
static __u32 state_ident(const struct ap_state *s, const struct seg_ipcache_key *k)
{
	const struct ap_ipc *e = bsearch(k, s->ipc, s->nipc, sizeof(*s->ipc), cmp_ipc);
	__u32 id = SEG_ID_WORLD, best = 0;

	if (e)
		return e->val.identity;
	for (size_t i = 0; i < s->nlpm; i++) {
		const struct seg_lpm_key *l = &s->lpm[i].key;

		if (l->prefixlen >= best && prefix_has(l->addr, l->prefixlen, k->addr)) {
			best = l->prefixlen;
			id = s->lpm[i].val.identity;
		}
	}
	return id;
}

static int cmp_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

/* Identities some address moved from or to ("re-identified"). */
static int moved_ids(const struct ap_state *m, const struct ap_plan *p, __u32 **out, size_t *n)
{
	__u32 *v = calloc(2 * (p->nipc_set + p->nipc_del) + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < p->nipc_set; i++) {
		__u32 old = state_ident(m, &p->ipc_set[i].key);

		if (old != p->ipc_set[i].val.identity) {
			v[(*n)++] = old;
			v[(*n)++] = p->ipc_set[i].val.identity;
		}
	}
	for (size_t i = 0; i < p->nipc_del; i++) {
		__u32 old = state_ident(m, &p->ipc_del[i]),
		      now = state_ident(&p->want, &p->ipc_del[i]);

		if (old != now) {
			v[(*n)++] = old;
			v[(*n)++] = now;
		}
	}
	qsort(v, *n, sizeof(*v), cmp_u32);
	*out = v;
	return 0;
}

/*
 * An address changing identity changes the verdict of established flows
 * only on endpoints whose policy sets name the old or the new identity
 * (otherwise both fall to the same ANY entries or to none). Those
 * endpoints get a new revision (the data path re-checks their flows); a
 * changed LPM entry bumps every isolated endpoint. (With epochs, the
 * generation bump of the flip re-checks every flow: not needed there.)
 */
static int bump_reidentified(const struct ap_state *m, struct ap_plan *p, const bool *chg)
{
	struct ap_state *w = &p->want;
	bool all = p->nlpm_set || p->nlpm_del;
	__u32 *ids = NULL, *hit = NULL;
	size_t nids = 0, nhit = 0;
	int err = moved_ids(m, p, &ids, &nids);

	if (err || (!nids && !all))
		goto out;
	hit = calloc(w->npol + 1, sizeof(*hit));
	if (!hit) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < w->npol; i++) {
		const struct seg_policy_key *k = &w->pol[i].key;

		if ((!nhit || hit[nhit - 1] != k->policy_id) &&
		    bsearch(&k->remote_id, ids, nids, sizeof(*ids), cmp_u32))
			hit[nhit++] = k->policy_id;
	}
	qsort(hit, nhit, sizeof(*hit), cmp_u32);
	for (size_t j = 0; j < w->nep; j++) {
		struct seg_endpoint *ep = &w->ep[j].ep;
		bool bump = false;

		for (int d = 0; d < SEG_DIR_MAX && !chg[j]; d++)
			bump |= (ep->flags[d] & SEG_EPF_ISOLATED) &&
				(all ||
				 bsearch(&ep->policy_id[d], hit, nhit, sizeof(*hit), cmp_u32));
		if (!bump)
			continue;
		ep->revision = ep->revision + 1 ? ep->revision + 1 : 1;
		p->ep_set[p->nep_set++] = w->ep[j];
	}
out:
	free(ids);
	free(hit);
	return err;
}

#define DIFF_FN(name, type, keytype, cmp)                                                     \
	static int name(const type *m, size_t nm, const type *w, size_t nw, type **set,       \
			size_t *nset, keytype **del, size_t *ndel)                            \
	{                                                                                     \
		size_t i = 0, j = 0;                                                          \
		*set = calloc(nw + 1, sizeof(**set));                                         \
		*del = calloc(nm + 1, sizeof(**del));                                         \
		if (!*set || !*del)                                                           \
			return -ENOMEM;                                                       \
		while (i < nm || j < nw) {                                                    \
			int c = i == nm ? 1 : j == nw ? -1 : cmp(&m[i], &w[j]);               \
			if (c < 0) {                                                          \
				(*del)[(*ndel)++] = m[i++].key;                               \
			} else if (c > 0 || memcmp(&m[i].val, &w[j].val, sizeof(w[j].val))) { \
				(*set)[(*nset)++] = w[j++];                                   \
				i += c == 0;                                                  \
			} else {                                                              \
				i++;                                                          \
				j++;                                                          \
			}                                                                     \
		}                                                                             \
		return 0;                                                                     \
	}

DIFF_FN(diff_ipc, struct ap_ipc, struct seg_ipcache_key, cmp_ipc)
DIFF_FN(diff_lpm, struct ap_lpm, struct seg_lpm_key, cmp_lpm)

/* The ipcache, LPM and endpoint parts, the same in both plans. *chg: per
 * wanted endpoint, whether it changed (the caller frees it). */
static int diff_rest(const struct ap_state *mirror, struct ap_plan *p, bool **chg)
{
	int err = diff_ipc(mirror->ipc, mirror->nipc, p->want.ipc, p->want.nipc, &p->ipc_set,
			   &p->nipc_set, &p->ipc_del, &p->nipc_del);

	if (!err)
		err = diff_lpm(mirror->lpm, mirror->nlpm, p->want.lpm, p->want.nlpm, &p->lpm_set,
			       &p->nlpm_set, &p->lpm_del, &p->nlpm_del);
	if (err)
		return err;
	*chg = calloc(p->want.nep + 1, sizeof(**chg));
	if (!*chg)
		return -ENOMEM;
	return diff_eps(mirror, p, *chg);
}

int ap_plan_build(const struct ap_state *mirror, __u32 next_id, const struct seg_compiled *c,
		  const struct seg_apply_opts *o, unsigned int flags, struct ap_plan *p)
{
	struct setctx x = { .mirror = mirror };
	bool *chg = NULL;
	int err;

	memset(p, 0, sizeof(*p));
	p->next_id = next_id ? next_id : 1;
	err = want_eps(c, o, &p->want);
	if (!err)
		err = want_ipc(c, o, &p->want);
	if (!err)
		err = split_sets(mirror->pol, mirror->npol, &x.ms, &x.nms);
	if (!err)
		err = map_sets(c, &x, p);
	if (!err)
		err = collect_pol(&x, p);
	if (!err)
		err = diff_rest(mirror, p, &chg);
	if (!err && (flags & AP_BUMP_REIDENTIFIED))
		err = bump_reidentified(mirror, p, chg);
	free(chg);
	free(x.ms);
	free(x.ns);
	if (err)
		ap_plan_free(p);
	return err;
}

/* ---- the plan of an update (seg_compile_update) ------------------------------------ */

/* Which of the identities ids[] (sorted) some address or prefix of s
 * has: one pass over s. */
static void live_of(const struct ap_state *s, const __u32 *ids, size_t n, bool *live)
{
	const __u32 *f;

	for (size_t i = 0; n && i < s->nipc + s->nlpm; i++) {
		__u32 id = i < s->nipc ? s->ipc[i].val.identity : s->lpm[i - s->nipc].val.identity;

		f = bsearch(&id, ids, n, sizeof(*ids), cmp_u32);
		if (f)
			live[f - ids] = true;
	}
}

/* First entry of policy id in a sorted ap_pol array. */
static size_t pol_lower(const struct ap_pol *v, size_t n, __u32 id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (v[mid].key.policy_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool u32_in(const __u32 *v, size_t n, __u32 x)
{
	return n && bsearch(&x, v, n, sizeof(*v), cmp_u32);
}

struct dplan {
	const struct ap_state *mirror;
	const struct seg_compiled *c;
	struct seg_compiled_delta d;
	const __u32 *oldmap;
	size_t noldmap;
	/* the identities the delta's entries name (sorted), and whether an
	 * address or prefix has them before (old) and after (new) the flip */
	__u32 *ids;
	size_t nids;
	bool *live_old, *live_new;
	/* per compiled id (index): 0 unseen, 1 in place, 2 written whole */
	unsigned char *how;
	size_t cap_add, cap_del;
};

static int push_add(struct dplan *x, struct ap_plan *p, const struct seg_pol_entry *e, __u32 ds)
{
	if (vec_grow(&p->pol_add, &x->cap_add, p->npol_add, sizeof(*p->pol_add)))
		return -ENOMEM;
	p->pol_add[p->npol_add].key = e->key;
	p->pol_add[p->npol_add].key.policy_id = ds;
	p->pol_add[p->npol_add++].val = e->val;
	return 0;
}

static int push_del(struct dplan *x, struct ap_plan *p, const struct seg_policy_key *k, __u32 ds)
{
	if (vec_grow(&p->pol_del, &x->cap_del, p->npol_del, sizeof(*p->pol_del)))
		return -ENOMEM;
	p->pol_del[p->npol_del] = *k;
	p->pol_del[p->npol_del++].policy_id = ds;
	return 0;
}

/* Visible to a packet: reserved numbers (ANY, WORLD, HOST, ...) always;
 * others while an address or prefix has them. */
static bool id_live(const struct dplan *x, const bool *live, __u32 id)
{
	const __u32 *f;

	if (id < SEG_ID_FIRST_ALLOC)
		return true;
	f = x->nids ? bsearch(&id, x->ids, x->nids, sizeof(*x->ids), cmp_u32) : NULL;
	return !f || live[f - x->ids];
}

static int delta_ids(struct dplan *x)
{
	size_t n = 0;

	x->ids = malloc((x->d.nadd + x->d.ndel + 1) * sizeof(*x->ids));
	if (!x->ids)
		return -ENOMEM;
	for (size_t i = 0; i < x->d.nadd; i++)
		x->ids[n++] = x->d.add[i].key.remote_id;
	for (size_t i = 0; i < x->d.ndel; i++)
		x->ids[n++] = x->d.del[i].remote_id;
	if (n)
		qsort(x->ids, n, sizeof(*x->ids), cmp_u32);
	for (size_t i = 0; i < n; i++) {
		if (!x->nids || x->ids[x->nids - 1] != x->ids[i])
			x->ids[x->nids++] = x->ids[i];
	}
	x->live_old = calloc(x->nids + 1, sizeof(bool));
	x->live_new = calloc(x->nids + 1, sizeof(bool));
	if (!x->live_old || !x->live_new)
		return -ENOMEM;
	live_of(x->mirror, x->ids, x->nids, x->live_old);
	return 0;
}

/* Can compiled set cid change in place in data path set ds? Its new
 * entries must name identities no address has now (invisible until the
 * flip), the entries it loses identities no address has after it, and ds
 * must be its alone. */
static bool in_place_ok(const struct dplan *x, __u32 cid, __u32 ds)
{
	size_t sharers = 0;

	for (size_t i = 0; i < x->noldmap; i++)
		sharers += x->oldmap[i] == ds;
	if (sharers != 1)
		return false;
	for (size_t i = 0; i < x->d.nadd; i++) {
		if (x->d.add[i].key.policy_id == cid &&
		    id_live(x, x->live_old, x->d.add[i].key.remote_id))
			return false;
	}
	for (size_t i = 0; i < x->d.ndel; i++) {
		if (x->d.del[i].policy_id == cid && id_live(x, x->live_new, x->d.del[i].remote_id))
			return false;
	}
	return true;
}

static int map_set_delta(struct dplan *x, struct ap_plan *p, __u32 cid)
{
	const struct seg_compiled *c = x->c;
	__u32 ds = cid < x->noldmap ? x->oldmap[cid] : 0;
	int err = 0;

	size_t first = seg_compiled_pol_first(c, cid);

	if (x->how[cid])
		return 0;
	if (first == c->npol || c->pol[first].key.policy_id != cid) {
		/* an empty set: id 0, as ap_plan_build() maps it (no entry
		 * matches either way) */
		x->how[cid] = 3;
		p->idmap[cid] = 0;
		return 0;
	}
	if (ds && !u32_in(x->d.fresh, x->d.nfresh, cid) && in_place_ok(x, cid, ds)) {
		x->how[cid] = 1;
		p->idmap[cid] = ds;
		for (size_t i = 0; i < x->d.nadd && !err; i++) {
			if (x->d.add[i].key.policy_id == cid)
				err = push_add(x, p, &x->d.add[i], ds);
		}
		for (size_t i = 0; i < x->d.ndel && !err; i++) {
			if (x->d.del[i].policy_id == cid)
				err = push_del(x, p, &x->d.del[i], ds);
		}
		return err;
	}
	/* a set this data path does not have (or may not change): whole,
	 * under a fresh id */
	if (p->next_id == 0 || p->next_id == UINT32_MAX)
		return -ERANGE;
	x->how[cid] = 2;
	ds = p->idmap[cid] = p->next_id++;
	p->sets_added++;
	for (size_t i = first; i < c->npol && c->pol[i].key.policy_id == cid && !err; i++)
		err = push_add(x, p, &c->pol[i], ds);
	return err;
}

/* want.pol = mirror.pol - pol_del + pol_add (both sorted first). */
static int merge_mirror(const struct ap_state *m, struct ap_plan *p)
{
	size_t i = 0, j = 0, k = 0;

	if (p->npol_add)
		qsort(p->pol_add, p->npol_add, sizeof(*p->pol_add), cmp_pol);
	if (p->npol_del)
		qsort(p->pol_del, p->npol_del, sizeof(*p->pol_del), cmp_pol);
	p->want.pol = malloc((m->npol + p->npol_add + 1) * sizeof(*p->want.pol));
	if (!p->want.pol)
		return -ENOMEM;
	while (i < m->npol || j < p->npol_add) {
		int o = i == m->npol	 ? 1 :
			j == p->npol_add ? -1 :
					   cmp_pol(&m->pol[i], &p->pol_add[j]);

		if (o > 0) {
			p->want.pol[p->want.npol++] = p->pol_add[j++];
			continue;
		}
		while (k < p->npol_del && cmp_pol(&p->pol_del[k], &m->pol[i]) < 0)
			k++;
		if (k < p->npol_del && !cmp_pol(&p->pol_del[k], &m->pol[i])) {
			i++;
			continue;
		}
		if (o == 0) /* replaced (never for in-place: fresh identities) */
			i++;
		else
			p->want.pol[p->want.npol++] = m->pol[i++];
	}
	return 0;
}

int ap_plan_delta(const struct ap_state *mirror, __u32 next_id, const __u32 *idmap, size_t nidmap,
		  const struct seg_compiled *c, const struct seg_apply_opts *o, struct ap_plan *p)
{
	struct dplan x = { .mirror = mirror, .c = c, .oldmap = idmap, .noldmap = nidmap };
	__u32 maxid = 0, *used_old = NULL, *used_new = NULL;
	size_t nused_old = 0, nused_new = 0;
	bool *chg = NULL;
	int err;

	memset(p, 0, sizeof(*p));
	p->next_id = next_id ? next_id : 1;
	seg_compiled_delta(c, &x.d);
	err = want_eps(c, o, &p->want);
	if (!err)
		err = want_ipc(c, o, &p->want);
	if (!err)
		err = delta_ids(&x);
	if (err)
		goto out;
	live_of(&p->want, x.ids, x.nids, x.live_new);
	for (size_t i = 0; i < p->want.nep; i++) {
		for (int d = 0; d < SEG_DIR_MAX; d++)
			maxid = p->want.ep[i].ep.policy_id[d] > maxid ?
					p->want.ep[i].ep.policy_id[d] :
					maxid;
	}
	p->nidmap = maxid + 1;
	p->idmap = calloc(p->nidmap, sizeof(*p->idmap));
	x.how = calloc(p->nidmap, 1);
	used_old = malloc((2 * mirror->nep + 1) * sizeof(*used_old));
	used_new = malloc((2 * p->want.nep + 1) * sizeof(*used_new));
	if (!p->idmap || !x.how || !used_old || !used_new) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < p->want.nep && !err; i++) {
		for (int d = 0; d < SEG_DIR_MAX && !err; d++) {
			__u32 *id = &p->want.ep[i].ep.policy_id[d];

			if (!*id)
				continue;
			err = map_set_delta(&x, p, *id);
			*id = p->idmap[*id];
			used_new[nused_new++] = *id;
		}
	}
	for (size_t i = 0; i < mirror->nep; i++) {
		for (int d = 0; d < SEG_DIR_MAX; d++) {
			if (mirror->ep[i].ep.policy_id[d])
				used_old[nused_old++] = mirror->ep[i].ep.policy_id[d];
		}
	}
	if (nused_new)
		qsort(used_new, nused_new, sizeof(*used_new), cmp_u32);
	if (nused_old)
		qsort(used_old, nused_old, sizeof(*used_old), cmp_u32);
	/* data path sets no endpoint uses any more: every entry goes */
	for (size_t i = 0; i < nused_old && !err; i++) {
		__u32 ds = used_old[i];

		if ((i && used_old[i - 1] == ds) || u32_in(used_new, nused_new, ds))
			continue;
		p->sets_removed++;
		for (size_t k = pol_lower(mirror->pol, mirror->npol, ds);
		     k < mirror->npol && mirror->pol[k].key.policy_id == ds && !err; k++)
			err = push_del(&x, p, &mirror->pol[k].key, ds);
	}
	if (!err)
		err = merge_mirror(mirror, p);
	if (!err)
		err = diff_rest(mirror, p, &chg);
out:
	free(chg);
	free(x.ids);
	free(x.live_old);
	free(x.live_new);
	free(x.how);
	free(used_old);
	free(used_new);
	if (err)
		ap_plan_free(p);
	return err;
}
