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
};

static unsigned long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000;
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

/* Hash and LPM maps lib/dp has no iterator for: raw get_next_key. The
 * value is read as struct seg_ipcache_val (single slot). */
static int read_ipc_map(struct seg_dp *dp, const char *name, size_t ksz, void **out, size_t *n)
{
	int fd = seg_dp_map_fd(dp, name);
	char key[sizeof(struct seg_lpm_key)], next[sizeof(struct seg_lpm_key)];
	size_t esz = ksz + sizeof(struct seg_ipcache_val), cap = 0;
	char *v = NULL;
	void *prev = NULL;
	int err = 0;

	if (fd < 0)
		return fd;
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

static int mirror_load(struct seg_apply *a)
{
	struct ap_state s = {};
	void *ipc = NULL, *lpm = NULL;
	int err;

	err = seg_dp_endpoint_foreach(a->dp, ep_cb, &s);
	if (!err)
		err = seg_dp_policy_foreach(a->dp, pol_cb, &s);
	if (!err)
		err = read_ipc_map(a->dp, SEG_MAP_IPCACHE, sizeof(struct seg_ipcache_key), &ipc,
				   &s.nipc);
	s.ipc = ipc;
	if (!err)
		err = read_ipc_map(a->dp, SEG_MAP_IPCACHE_LPM, sizeof(struct seg_lpm_key), &lpm,
				   &s.nlpm);
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

int seg_apply_new(struct seg_dp *dp, struct seg_apply **out)
{
	struct seg_apply *a = calloc(1, sizeof(*a));
	int err;

	if (!a)
		return log_err(-ENOMEM, "apply state");
	a->dp = dp;
	err = mirror_load(a);
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

static int write_ipc(struct seg_dp *dp, const struct ap_plan *p, struct seg_apply_stats *st)
{
	struct in6_addr addr;
	int err;

	for (size_t i = 0; i < p->nipc_set; i++) {
		memcpy(&addr, p->ipc_set[i].key.addr, sizeof(addr));
		err = seg_dp_ipcache_set(dp, &addr, &p->ipc_set[i].val);
		if (err)
			return err;
		st->ipcache_writes++;
	}
	for (size_t i = 0; i < p->nlpm_set; i++) {
		lpm_addr(&p->lpm_set[i].key, &addr);
		err = seg_dp_ipcache_lpm_set(dp, &addr, p->lpm_set[i].key.prefixlen,
					     &p->lpm_set[i].val);
		if (err)
			return err;
		st->ipcache_writes++;
	}
	return 0;
}

static int write_eps(struct seg_dp *dp, const struct ap_plan *p, struct seg_apply_stats *st)
{
	for (size_t i = 0; i < p->nep_set; i++) {
		int err = seg_dp_endpoint_set(dp, p->ep_set[i].ifkey, &p->ep_set[i].ep);

		if (err)
			return err;
		st->endpoint_writes++;
	}
	return 0;
}

/* Absent keys are fine (-ENOENT): someone else removed them already. */
static int del_ok(int err, unsigned int *count)
{
	if (!err)
		(*count)++;
	return err == -ENOENT ? 0 : err;
}

static int cleanup(struct seg_dp *dp, const struct ap_plan *p, unsigned int grace_us,
		   struct seg_apply_stats *st)
{
	struct in6_addr addr;
	int err = 0;

	for (size_t i = 0; i < p->nep_del && !err; i++)
		err = del_ok(seg_dp_endpoint_del(dp, p->ep_del[i]), &st->endpoint_deletes);
	for (size_t i = 0; i < p->nipc_del && !err; i++) {
		memcpy(&addr, p->ipc_del[i].addr, sizeof(addr));
		err = del_ok(seg_dp_ipcache_del(dp, &addr), &st->ipcache_deletes);
	}
	for (size_t i = 0; i < p->nlpm_del && !err; i++) {
		lpm_addr(&p->lpm_del[i], &addr);
		err = del_ok(seg_dp_ipcache_lpm_del(dp, &addr, p->lpm_del[i].prefixlen),
			     &st->ipcache_deletes);
	}
	if (p->npol_del && !err)
		usleep(grace_us ? grace_us : 1000); /* packets still holding an old id */
	for (size_t i = 0; i < p->npol_del && !err; i++)
		err = del_ok(seg_dp_policy_del(dp, &p->pol_del[i]), &st->policy_deletes);
	return err;
}

int seg_apply(struct seg_apply *a, const struct seg_compiled *c, const struct seg_apply_opts *o,
	      struct seg_apply_stats *st)
{
	unsigned long long t0 = now_us();
	struct seg_apply_stats dummy;
	struct seg_config cfg;
	struct ap_plan p;
	int err;

	st = st ? st : &dummy;
	memset(st, 0, sizeof(*st));
	err = ap_plan_build(&a->mirror, a->next_id, c, o, &p);
	if (err == -EEXIST)
		return log_err(err, "apply: two pods attached at one ifkey");
	if (err)
		return log_err(err, "apply: plan the map updates");
	st->policies_added = p.sets_added;
	st->policies_removed = p.sets_removed;
	if (!ap_plan_empty(&p)) {
		err = write_sets(a->dp, &p, st);
		if (!err)
			err = write_ipc(a->dp, &p, st);
		if (!err)
			err = write_eps(a->dp, &p, st);
		if (!err)
			err = cleanup(a->dp, &p, o ? o->grace_us : 0, st);
		if (err) {
			/* lib/dp logged the write; start over from the maps */
			mirror_load(a);
			goto out;
		}
		st->flipped = true;
	}
	ap_state_free(&a->mirror);
	a->mirror = p.want;
	memset(&p.want, 0, sizeof(p.want));
	a->next_id = p.next_id;
	free(a->idmap);
	a->idmap = p.idmap;
	a->nidmap = p.nidmap;
	p.idmap = NULL;
	if (!seg_dp_config_get(a->dp, &cfg)) {
		st->epoch = cfg.epoch;
		st->generation = cfg.generation;
	}
out:
	ap_plan_free(&p);
	st->duration_us = now_us() - t0;
	return err;
}
