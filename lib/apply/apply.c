// SPDX-License-Identifier: GPL-2.0-only
/*
 * lib/apply: the half that touches the maps. Reads the maps into the mirror
 * (reconcile), runs a plan (plan.c) through lib/dp in a safe order, and
 * re-reads the maps when a write failed.
 *
 * Order today (single-slot endpoint/ipcache values, see apply.h):
 *   1. new policy sets under fresh ids (nothing references them yet);
 *   2. ipcache (exact, LPM) entries new or changed;
 *   3. endpoints new or changed: one map write per endpoint switches its
 *      policy ids, port masks, flags and revision together;
 *   4. deletes: endpoints, ipcache entries, then policy sets nothing
 *      references any more (after grace_us).
 * Each endpoint moves atomically from its old sets to its new ones, and a
 * set in use is never modified. What is not yet whole-node atomic: between
 * 2 and 3 a packet may see a new identity with an old policy set. With the
 * epoch slots (abi.h) 2 and 3 write the inactive slot and one seg_config
 * write flips them all; the plan is the same.
 */
#include "plan.h"
#include "dp/dp.h"
#include "log.h"
#include "policy/policy.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct seg_apply {
	struct seg_dp *dp;
	struct ap_state mirror;
	__u32 next_id; /* first policy id above every id in the maps */
	__u32 *idmap; /* compiled policy id -> data path id, last apply */
	size_t nidmap;
	bool stale; /* the inactive epoch may differ from the active one */
	unsigned long long serial; /* compile the mirror holds (0: unknown) */
};

static unsigned long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000;
}

/* Absent keys are fine (-ENOENT): someone else removed them already. */
static int del_ok(int err, unsigned int *count)
{
	if (!err && count)
		(*count)++;
	return err == -ENOENT ? 0 : err;
}

/* ---- reconcile: maps -> mirror ---------------------------------------------- */

static int ep_cb(__u32 ifkey, const struct seg_endpoint *ep, void *ctx)
{
	struct ap_state *s = ctx;
	struct ap_ep *v = realloc(s->ep, (s->nep + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	s->ep = v;
	v[s->nep].ifkey = ifkey;
	v[s->nep++].ep = *ep;
	return 0;
}

static int pol_cb(const struct seg_policy_key *k, const struct seg_policy_val *val, void *ctx)
{
	struct ap_state *s = ctx;
	struct ap_pol *v;

	if (s->npol % 1024 == 0) {
		v = realloc(s->pol, (s->npol + 1024) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->pol = v;
	}
	s->pol[s->npol].key = *k;
	s->pol[s->npol++].val = *val;
	return 0;
}

/* Reads a whole map (either epoch's) into the packed key-then-value
 * arrays plan.h diffs, with raw get_next_key. */
static int read_fd(int fd, const char *name, size_t ksz, size_t vsz, void **out, size_t *n)
{
	char key[sizeof(struct seg_lpm_key)], next[sizeof(struct seg_lpm_key)];
	size_t esz = ksz + vsz, cap = 0;
	char *v = NULL;
	void *prev = NULL;
	int err = 0;

	while (!bpf_map_get_next_key(fd, prev, next)) {
		if (*n == cap) {
			char *nv = realloc(v, (cap = cap ? cap * 2 : 256) * esz);

			if (!nv) {
				err = -ENOMEM;
				goto out;
			}
			v = nv;
		}
		memcpy(v + *n * esz, next, ksz);
		if (bpf_map_lookup_elem(fd, next, v + *n * esz + ksz)) {
			if (errno == ENOENT)
				goto skip; /* deleted under us */
			err = log_err(-errno, "read map %s", name);
			goto out;
		}
		(*n)++;
skip:
		memcpy(key, next, ksz);
		prev = key;
	}
	if (errno != ENOENT)
		err = log_err(-errno, "walk map %s", name);
out:
	*out = v;
	return err;
}

static int read_map(struct seg_dp *dp, const char *name, size_t ksz, size_t vsz, void **out,
		    size_t *n)
{
	int fd = seg_dp_map_fd(dp, name);

	return fd < 0 ? fd : read_fd(fd, name, ksz, vsz, out, n);
}

static int mirror_load(struct seg_apply *a)
{
	struct ap_state s = {};
	void *ipc = NULL, *lpm = NULL;
	int err;

	err = seg_dp_endpoint_foreach(a->dp, ep_cb, &s);
	if (!err)
		err = seg_dp_policy_foreach(a->dp, pol_cb, &s);
	if (!err)
		err = read_map(a->dp, SEG_MAP_IPCACHE, sizeof(struct seg_ipcache_key),
			       sizeof(struct seg_ipcache_val), &ipc, &s.nipc);
	s.ipc = ipc;
	if (!err)
		err = read_map(a->dp, SEG_MAP_IPCACHE_LPM, sizeof(struct seg_lpm_key),
			       sizeof(struct seg_ipcache_val), &lpm, &s.nlpm);
	s.lpm = lpm;
	if (err == -ENOMEM)
		log_err(err, "read the maps into the apply mirror");
	if (err) {
		ap_state_free(&s);
		return err;
	}
	ap_state_sort(&s);
	ap_state_free(&a->mirror);
	a->mirror = s;
	a->next_id = 1;
	for (size_t i = 0; i < s.npol; i++) {
		if (s.pol[i].key.policy_id >= a->next_id)
			a->next_id = s.pol[i].key.policy_id + 1;
	}
	for (size_t i = 0; i < s.nep; i++) {
		for (int d = 0; d < SEG_DIR_MAX; d++) {
			if (s.ep[i].ep.policy_id[d] >= a->next_id)
				a->next_id = s.ep[i].ep.policy_id[d] + 1;
		}
	}
	return 0;
}

static int cmp_ifkey(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

static int cmp_ipc_key(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct seg_ipcache_key));
}

static int cmp_lpm_key(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct seg_lpm_key));
}

/* Lists map name0 (epoch 0) or name1 (epoch 1) as it is, whichever
 * epoch is active (seg_dp_map_fd_in: no active-epoch resolution). */
static int read_epoch_map(struct seg_dp *dp, __u32 e, const char *name0, const char *name1,
			  size_t ksz, size_t vsz, void **out, size_t *n)
{
	const char *name = e == 1 ? name1 : name0;
	int fd = seg_dp_map_fd_in(dp, name);

	if (fd < 0)
		return fd;
	return read_fd(fd, name, ksz, vsz, out, n);
}

/* Deletes from the inactive epoch e the keys the mirror does not have. */
static int drop_extra(struct seg_apply *a, __u32 e)
{
	const struct ap_state *m = &a->mirror;
	void *eps = NULL, *ipc = NULL, *lpm = NULL;
	size_t nep = 0, nipc = 0, nlpm = 0;
	struct in6_addr addr;
	int err;

	err = read_epoch_map(a->dp, e, SEG_MAP_ENDPOINTS, SEG_MAP_ENDPOINTS1, sizeof(__u32),
			     sizeof(struct seg_endpoint), &eps, &nep);
	if (!err)
		err = read_epoch_map(a->dp, e, SEG_MAP_IPCACHE, SEG_MAP_IPCACHE1,
				     sizeof(struct seg_ipcache_key), sizeof(struct seg_ipcache_val),
				     &ipc, &nipc);
	if (!err)
		err = read_epoch_map(a->dp, e, SEG_MAP_IPCACHE_LPM, SEG_MAP_IPCACHE_LPM1,
				     sizeof(struct seg_lpm_key), sizeof(struct seg_ipcache_val),
				     &lpm, &nlpm);
	for (size_t i = 0; i < nep && !err; i++) {
		const struct ap_ep *x = (const struct ap_ep *)eps + i;

		if (!bsearch(&x->ifkey, m->ep, m->nep, sizeof(*m->ep), cmp_ifkey))
			err = del_ok(seg_dp_endpoint_del_in(a->dp, e, x->ifkey), NULL);
	}
	for (size_t i = 0; i < nipc && !err; i++) {
		const struct ap_ipc *x = (const struct ap_ipc *)ipc + i;

		memcpy(&addr, x->key.addr, sizeof(addr));
		if (!bsearch(&x->key, m->ipc, m->nipc, sizeof(*m->ipc), cmp_ipc_key))
			err = del_ok(seg_dp_ipcache_del_in(a->dp, e, &addr), NULL);
	}
	for (size_t i = 0; i < nlpm && !err; i++) {
		const struct ap_lpm *x = (const struct ap_lpm *)lpm + i;

		memcpy(&addr, x->key.addr, sizeof(addr));
		if (!bsearch(&x->key, m->lpm, m->nlpm, sizeof(*m->lpm), cmp_lpm_key))
			err = del_ok(seg_dp_ipcache_lpm_del_in(a->dp, e, &addr, x->key.prefixlen),
				     NULL);
	}
	free(eps);
	free(ipc);
	free(lpm);
	return err;
}

/* Makes the inactive epoch equal the active one (the mirror), after a start
 * or a failed update: every mirror entry is written into it, and the keys
 * only it has are deleted. */
static int resync_inactive(struct seg_apply *a)
{
	const struct ap_state *m = &a->mirror;
	struct in6_addr addr;
	__u32 cur, e;
	int err = seg_dp_epoch_get(a->dp, &cur, NULL);

	e = cur ^ 1;
	for (size_t i = 0; i < m->nep && !err; i++)
		err = seg_dp_endpoint_set_in(a->dp, e, m->ep[i].ifkey, &m->ep[i].ep);
	for (size_t i = 0; i < m->nipc && !err; i++) {
		memcpy(&addr, m->ipc[i].key.addr, sizeof(addr));
		err = seg_dp_ipcache_set_in(a->dp, e, &addr, &m->ipc[i].val);
	}
	for (size_t i = 0; i < m->nlpm && !err; i++) {
		memcpy(&addr, m->lpm[i].key.addr, sizeof(addr));
		err = seg_dp_ipcache_lpm_set_in(a->dp, e, &addr, m->lpm[i].key.prefixlen,
						&m->lpm[i].val);
	}
	if (!err)
		err = drop_extra(a, e);
	if (!err)
		a->stale = false;
	return err;
}

int seg_apply_new(struct seg_dp *dp, struct seg_apply **out)
{
	struct seg_apply *a = calloc(1, sizeof(*a));
	int err;

	if (!a)
		return log_err(-ENOMEM, "apply state");
	a->dp = dp;
	err = mirror_load(a);
	if (!err)
		err = resync_inactive(a);
	if (err) {
		seg_apply_free(a);
		return err;
	}
	*out = a;
	return 0;
}

void seg_apply_free(struct seg_apply *a)
{
	if (!a)
		return;
	ap_state_free(&a->mirror);
	free(a->idmap);
	free(a);
}

__u32 seg_apply_policy_id(const struct seg_apply *a, __u32 compiled_policy_id)
{
	return compiled_policy_id < a->nidmap ? a->idmap[compiled_policy_id] : 0;
}

/* ---- writing a plan ------------------------------------------------------------ */

static void lpm_addr(const struct seg_lpm_key *k, struct in6_addr *a)
{
	memcpy(a, k->addr, sizeof(*a));
}

static int write_sets(struct seg_dp *dp, const struct ap_plan *p, struct seg_apply_stats *st)
{
	for (size_t i = 0; i < p->npol_add; i++) {
		int err = seg_dp_policy_set(dp, &p->pol_add[i].key, &p->pol_add[i].val);

		if (err)
			return err;
		st->policy_writes++;
	}
	return 0;
}

static int count(int err, unsigned int *n)
{
	if (!err && n)
		(*n)++;
	return err;
}

/* The ipcache and endpoint changes of p, deletes included, into epoch e
 * (counted in st when st is not NULL). */
static int write_epoch(struct seg_dp *dp, const struct ap_plan *p, __u32 e,
		       struct seg_apply_stats *st)
{
	unsigned int *iw = st ? &st->ipcache_writes : NULL, *ew = st ? &st->endpoint_writes : NULL;
	unsigned int *id = st ? &st->ipcache_deletes : NULL,
		     *ed = st ? &st->endpoint_deletes : NULL;
	struct in6_addr addr;
	int err = 0;

	for (size_t i = 0; i < p->nipc_set && !err; i++) {
		memcpy(&addr, p->ipc_set[i].key.addr, sizeof(addr));
		err = count(seg_dp_ipcache_set_in(dp, e, &addr, &p->ipc_set[i].val), iw);
	}
	for (size_t i = 0; i < p->nlpm_set && !err; i++) {
		lpm_addr(&p->lpm_set[i].key, &addr);
		err = count(seg_dp_ipcache_lpm_set_in(dp, e, &addr, p->lpm_set[i].key.prefixlen,
						      &p->lpm_set[i].val),
			    iw);
	}
	for (size_t i = 0; i < p->nep_set && !err; i++)
		err = count(seg_dp_endpoint_set_in(dp, e, p->ep_set[i].ifkey, &p->ep_set[i].ep),
			    ew);
	for (size_t i = 0; i < p->nep_del && !err; i++)
		err = del_ok(seg_dp_endpoint_del_in(dp, e, p->ep_del[i]), ed);
	for (size_t i = 0; i < p->nipc_del && !err; i++) {
		memcpy(&addr, p->ipc_del[i].addr, sizeof(addr));
		err = del_ok(seg_dp_ipcache_del_in(dp, e, &addr), id);
	}
	for (size_t i = 0; i < p->nlpm_del && !err; i++) {
		lpm_addr(&p->lpm_del[i], &addr);
		err = del_ok(seg_dp_ipcache_lpm_del_in(dp, e, &addr, p->lpm_del[i].prefixlen), id);
	}
	return err;
}

/*
 * policy sets (fresh ids) -> inactive epoch -> flip -> grace -> the old
 * epoch brought in line -> policy sets nothing references. Killed before
 * the flip: the old state stays in force. Killed after: the new one is in
 * force and the inactive epoch is stale (resync on the next start).
 */
static int write_plan(struct seg_apply *a, const struct ap_plan *p, unsigned int grace_us,
		      struct seg_apply_stats *st)
{
	__u32 cur;
	int err = seg_dp_epoch_get(a->dp, &cur, NULL);

	if (!err)
		err = write_sets(a->dp, p, st);
	if (!err)
		err = write_epoch(a->dp, p, cur ^ 1, st);
	if (!err)
		err = seg_dp_epoch_flip(a->dp);
	if (err)
		return err;
	st->flipped = true;
	usleep(grace_us ? grace_us : 1000); /* packets still in the old epoch */
	err = write_epoch(a->dp, p, cur, NULL);
	for (size_t i = 0; i < p->npol_del && !err; i++)
		err = del_ok(seg_dp_policy_del(a->dp, &p->pol_del[i]), &st->policy_deletes);
	return err;
}

int seg_apply(struct seg_apply *a, const struct seg_compiled *c, const struct seg_apply_opts *o,
	      struct seg_apply_stats *st)
{
	unsigned long long t0 = now_us();
	struct seg_compiled_delta delta;
	struct seg_apply_stats dummy;
	struct ap_plan p;
	int err;

	st = st ? st : &dummy;
	memset(st, 0, sizeof(*st));
	if (a->stale) {
		err = resync_inactive(a);
		if (err)
			return err;
	}
	seg_compiled_delta(c, &delta);
	if (delta.base && delta.base == a->serial) {
		err = ap_plan_delta(&a->mirror, a->next_id, a->idmap, a->nidmap, c, o, &p);
		st->incremental = !err;
	} else {
		err = ap_plan_build(&a->mirror, a->next_id, c, o, 0, &p);
	}
	a->serial = 0;
	if (err == -EEXIST)
		return log_err(err, "apply: two pods attached at one ifkey");
	if (err)
		return log_err(err, "apply: plan the map updates");
	st->policies_added = p.sets_added;
	st->policies_removed = p.sets_removed;
	if (!ap_plan_empty(&p)) {
		err = write_plan(a, &p, o ? o->grace_us : 0, st);
		if (err) {
			/* lib/dp logged the write; start over from the maps */
			a->stale = true;
			mirror_load(a);
			goto out;
		}
	}
	ap_state_free(&a->mirror);
	a->mirror = p.want;
	memset(&p.want, 0, sizeof(p.want));
	a->next_id = p.next_id;
	free(a->idmap);
	a->idmap = p.idmap;
	a->nidmap = p.nidmap;
	a->serial = delta.serial;
	p.idmap = NULL;
out:
	seg_dp_epoch_get(a->dp, &st->epoch, &st->generation);
	ap_plan_free(&p);
	st->duration_us = now_us() - t0;
	return err;
}
