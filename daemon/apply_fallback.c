// SPDX-License-Identifier: GPL-2.0-only
/*
 * STOP-GAP, built only while lib/apply has no implementation in the tree
 * (daemon/meson.build picks lib/apply's seg_apply_dep as soon as it
 * exists). The same API as lib/apply/apply.h, but NOT atomic: it writes
 * the compiled state straight into the maps (policy entries, ipcache,
 * LPM, then endpoints), skipping entries that already hold the wanted
 * value, then deletes what is no longer wanted. Revisions: when anything
 * changed, every endpoint gets max(revision) + 1 so established flows are
 * re-checked. A restart with the same state writes nothing.
 */
#include "apply/apply.h"

#include "dp/dp.h"
#include "log.h"
#include "policy/policy.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct seg_apply {
	struct seg_dp *dp;
};

int seg_apply_new(struct seg_dp *dp, struct seg_apply **out)
{
	struct seg_apply *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->dp = dp;
	*out = a;
	return 0;
}

void seg_apply_free(struct seg_apply *a)
{
	free(a);
}

__u32 seg_apply_policy_id(const struct seg_apply *a, __u32 compiled_policy_id)
{
	return compiled_policy_id;
}

/* Raw keys of a map (by name), for the maps lib/dp has no iterator for. */
static int map_keys(struct seg_dp *dp, const char *name, size_t ksz, void **keys, size_t *n)
{
	int fd = seg_dp_map_fd(dp, name);
	char *v = NULL, *prev = NULL;
	size_t cnt = 0, cap = 0;

	if (fd < 0)
		return fd;
	for (;;) {
		if (cnt == cap) {
			char *nv = realloc(v, (cap = cap ? 2 * cap : 256) * ksz);

			if (!nv) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
		}
		prev = cnt ? v + (cnt - 1) * ksz : NULL;
		if (bpf_map_get_next_key(fd, prev, v + cnt * ksz))
			break;
		cnt++;
	}
	*keys = v;
	*n = cnt;
	return 0;
}

static int key_cmp_pol(const void *a, const void *b)
{
	return memcmp(&((const struct seg_pol_entry *)a)->key,
		      &((const struct seg_pol_entry *)b)->key, sizeof(struct seg_policy_key));
}

struct want_ep {
	__u32 ifkey;
	struct seg_endpoint ep;
};

struct rev_ctx {
	__u32 max;
};

static int rev_cb(__u32 ifkey, const struct seg_endpoint *ep, void *ctx)
{
	struct rev_ctx *r = ctx;

	if (ep->revision > r->max)
		r->max = ep->revision;
	return 0;
}

static unsigned long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ull + ts.tv_nsec / 1000;
}

static int apply_policy(struct seg_dp *dp, const struct seg_compiled *c, struct seg_apply_stats *st)
{
	struct seg_pol_entry *sorted = malloc((c->npol + 1) * sizeof(*sorted));
	struct seg_policy_key *keys = NULL;
	size_t n = 0;
	int err;

	if (!sorted)
		return -ENOMEM;
	memcpy(sorted, c->pol, c->npol * sizeof(*sorted));
	qsort(sorted, c->npol, sizeof(*sorted), key_cmp_pol);
	for (size_t i = 0; i < c->npol; i++) {
		struct seg_policy_val v;

		if (!seg_dp_policy_get(dp, &sorted[i].key, &v) &&
		    !memcmp(&v, &sorted[i].val, sizeof(v)))
			continue;
		err = seg_dp_policy_set(dp, &sorted[i].key, &sorted[i].val);
		if (err)
			goto out;
		st->policy_writes++;
	}
	err = map_keys(dp, SEG_MAP_POLICY, sizeof(*keys), (void **)&keys, &n);
	if (err)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct seg_pol_entry probe = { .key = keys[i] };

		if (bsearch(&probe, sorted, c->npol, sizeof(*sorted), key_cmp_pol))
			continue;
		if (!seg_dp_policy_del(dp, &keys[i]))
			st->policy_deletes++;
	}
out:
	free(keys);
	free(sorted);
	return err;
}

static int apply_ipcache(struct seg_dp *dp, const struct seg_compiled *c,
			 const struct seg_apply_opts *o, struct seg_apply_stats *st)
{
	struct seg_ipcache_key *keys = NULL;
	struct seg_lpm_key *lkeys = NULL;
	size_t n = 0, ln = 0;
	int err;

	for (size_t i = 0; i < c->nipc; i++) {
		struct seg_ipcache_val want = c->ipc[i].val, cur;

		want.owner_ifkey = o->pod_ifkey(&c->m->pods[c->ipc[i].pod], o->ctx);
		if (!seg_dp_ipcache_get(dp, &c->ipc[i].addr, &cur) &&
		    !memcmp(&cur, &want, sizeof(cur)))
			continue;
		err = seg_dp_ipcache_set(dp, &c->ipc[i].addr, &want);
		if (err)
			return err;
		st->ipcache_writes++;
	}
	for (size_t i = 0; i < c->nlpm; i++) {
		struct seg_ipcache_val cur;
		int fd = seg_dp_map_fd(dp, SEG_MAP_IPCACHE_LPM);

		if (fd >= 0 && !bpf_map_lookup_elem(fd, &c->lpm[i].key, &cur) &&
		    !memcmp(&cur, &c->lpm[i].val, sizeof(cur)))
			continue;
		err = seg_dp_ipcache_lpm_set(dp, (const struct in6_addr *)c->lpm[i].key.addr,
					     c->lpm[i].key.prefixlen, &c->lpm[i].val);
		if (err)
			return err;
		st->ipcache_writes++;
	}
	err = map_keys(dp, SEG_MAP_IPCACHE, sizeof(*keys), (void **)&keys, &n);
	if (!err)
		err = map_keys(dp, SEG_MAP_IPCACHE_LPM, sizeof(*lkeys), (void **)&lkeys, &ln);
	for (size_t i = 0; !err && i < n; i++) {
		bool want = false;

		for (size_t k = 0; k < c->nipc && !want; k++)
			want = !memcmp(&c->ipc[k].addr, &keys[i], sizeof(keys[i]));
		if (!want && !seg_dp_ipcache_del(dp, (const struct in6_addr *)&keys[i]))
			st->ipcache_deletes++;
	}
	for (size_t i = 0; !err && i < ln; i++) {
		bool want = false;

		for (size_t k = 0; k < c->nlpm && !want; k++)
			want = !memcmp(&c->lpm[k].key, &lkeys[i], sizeof(lkeys[i]));
		if (!want && !seg_dp_ipcache_lpm_del(dp, (const struct in6_addr *)lkeys[i].addr,
						     lkeys[i].prefixlen))
			st->ipcache_deletes++;
	}
	free(keys);
	free(lkeys);
	return err;
}

static int apply_endpoints(struct seg_dp *dp, const struct seg_compiled *c,
			   const struct seg_apply_opts *o, bool bump, struct seg_apply_stats *st)
{
	struct want_ep *w = calloc(c->neps + 1, sizeof(*w));
	struct rev_ctx rc = {};
	__u32 *keys = NULL;
	size_t nw = 0, n = 0;
	int err;

	if (!w)
		return -ENOMEM;
	seg_dp_endpoint_foreach(dp, rev_cb, &rc);
	for (size_t i = 0; i < c->neps; i++) {
		const struct seg_pod *pod = &c->m->pods[c->eps[i].pod];
		__u32 ifkey = o->pod_ifkey(pod, o->ctx);
		__u32 ep_id = o->pod_ep_id ? o->pod_ep_id(pod, o->ctx) : 0;

		if (!ifkey)
			continue;
		w[nw].ifkey = ifkey;
		w[nw].ep = c->eps[i].ep;
		w[nw].ep.ep_id = ep_id ?: (ifkey & ~SEG_IFKEY_NETNS);
		nw++;
	}
	for (size_t i = 0; i < nw && !bump; i++) {
		struct seg_endpoint cur;

		if (seg_dp_endpoint_get(dp, w[i].ifkey, &cur)) {
			bump = true;
			break;
		}
		w[i].ep.revision = cur.revision;
		bump = memcmp(&cur, &w[i].ep, sizeof(cur)) != 0;
	}
	for (size_t i = 0; bump && i < nw; i++) {
		w[i].ep.revision = rc.max + 1;
		err = seg_dp_endpoint_set(dp, w[i].ifkey, &w[i].ep);
		if (err)
			goto out;
		st->endpoint_writes++;
	}
	err = map_keys(dp, SEG_MAP_ENDPOINTS, sizeof(*keys), (void **)&keys, &n);
	for (size_t i = 0; !err && i < n; i++) {
		bool want = false;

		for (size_t k = 0; k < nw && !want; k++)
			want = w[k].ifkey == keys[i];
		if (!want && !seg_dp_endpoint_del(dp, keys[i]))
			st->endpoint_deletes++;
	}
out:
	free(keys);
	free(w);
	return err;
}

int seg_apply(struct seg_apply *a, const struct seg_compiled *c, const struct seg_apply_opts *o,
	      struct seg_apply_stats *st)
{
	unsigned long long t0 = now_us();
	struct seg_config cfg = {};
	int err;

	memset(st, 0, sizeof(*st));
	err = apply_policy(a->dp, c, st);
	if (!err)
		err = apply_ipcache(a->dp, c, o, st);
	if (!err)
		err = apply_endpoints(a->dp, c, o,
				      st->policy_writes || st->policy_deletes ||
					      st->ipcache_writes || st->ipcache_deletes,
				      st);
	if (err)
		return log_err(err, "apply (stop-gap writer)");
	st->flipped = st->policy_writes || st->policy_deletes || st->ipcache_writes ||
		      st->ipcache_deletes || st->endpoint_writes || st->endpoint_deletes;
	if (!seg_dp_config_get(a->dp, &cfg)) {
		st->epoch = cfg.epoch;
		st->generation = cfg.generation;
	}
	st->duration_us = now_us() - t0;
	return 0;
}
