// SPDX-License-Identifier: GPL-2.0-only
/*
 * What changed between two compiles, as map operations in a safe order:
 * additions and updates first (ipcache, LPM, policy, then endpoints, so an
 * endpoint never points at entries that are not there yet), removals last
 * (endpoints, then policy, LPM, ipcache). With stable numbering
 * (opts.prev), the work scales with what changed, not with the cluster.
 */
#include "compiled.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int ep_key(const struct seg_compiled *c, const struct seg_ep_entry *e, char *buf, size_t len)
{
	const struct seg_pod *p = &c->m->pods[e->pod];

	return snprintf(buf, len, "%s/%s", p->ns, p->name);
}

static bool ipc_equal(const struct seg_compiled *a, const struct seg_ipc_entry *x,
		      const struct seg_compiled *b, const struct seg_ipc_entry *y)
{
	const struct seg_pod *px = &a->m->pods[x->pod], *py = &b->m->pods[y->pod];

	return !memcmp(&x->val, &y->val, sizeof(x->val)) && !strcmp(px->ns, py->ns) &&
	       !strcmp(px->name, py->name);
}

static int diff_ipc(const struct seg_compiled *old, const struct seg_compiled *new,
		    const struct seg_diff_ops *ops, void *ctx, bool del)
{
	const struct seg_compiled *from = del ? old : new, *to = del ? new : old;
	int err = 0;

	for (size_t i = 0; from && i < from->nipc && !err; i++) {
		const struct seg_ipc_entry *e = &from->ipc[i];
		const struct seg_ipc_entry *t = to ? ipc_find(to, &e->addr) : NULL;

		if (del && !t && ops->ipcache_del)
			err = ops->ipcache_del(ctx, &e->addr);
		else if (!del && (!t || !ipc_equal(new, e, old, t)) && ops->ipcache_set)
			err = ops->ipcache_set(ctx, new, e);
	}
	return err;
}

static int diff_lpm(const struct seg_compiled *old, const struct seg_compiled *new,
		    const struct seg_diff_ops *ops, void *ctx, bool del)
{
	const struct seg_compiled *from = del ? old : new, *to = del ? new : old;
	struct hmap idx = {};
	int err = 0;

	for (size_t i = 0; to && i < to->nlpm && !err; i++)
		err = hmap_put(&idx, &to->lpm[i].key, sizeof(to->lpm[i].key), i);
	for (size_t i = 0; from && i < from->nlpm && !err; i++) {
		const struct seg_lpm_entry *e = &from->lpm[i];
		size_t j;
		bool there = hmap_get(&idx, &e->key, sizeof(e->key), &j);

		if (del && !there && ops->lpm_del)
			err = ops->lpm_del(ctx, &e->key);
		else if (!del && (!there || memcmp(&e->val, &to->lpm[j].val, sizeof(e->val))) &&
			 ops->lpm_set)
			err = ops->lpm_set(ctx, e);
	}
	hmap_free(&idx);
	return err;
}

static int diff_pol(const struct seg_compiled *old, const struct seg_compiled *new,
		    const struct seg_diff_ops *ops, void *ctx, bool del)
{
	const struct seg_compiled *from = del ? old : new, *to = del ? new : old;
	int err = 0;

	for (size_t i = 0; from && i < from->npol && !err; i++) {
		const struct seg_pol_entry *e = &from->pol[i];
		const struct seg_pol_entry *t = to ? seg_compiled_pol(to, &e->key) : NULL;

		if (del && !t && ops->policy_del)
			err = ops->policy_del(ctx, &e->key);
		else if (!del && (!t || memcmp(&e->val, &t->val, sizeof(e->val))) &&
			 ops->policy_set)
			err = ops->policy_set(ctx, e);
	}
	return err;
}

static int diff_eps(const struct seg_compiled *old, const struct seg_compiled *new,
		    const struct seg_diff_ops *ops, void *ctx, bool del)
{
	const struct seg_compiled *from = del ? old : new, *to = del ? new : old;
	struct hmap idx = {};
	char key[512];
	int err = 0;

	for (size_t i = 0; to && i < to->neps && !err; i++) {
		ep_key(to, &to->eps[i], key, sizeof(key));
		err = hmap_put_str(&idx, key, i);
	}
	for (size_t i = 0; from && i < from->neps && !err; i++) {
		const struct seg_ep_entry *e = &from->eps[i];
		size_t j;
		bool there;

		ep_key(from, e, key, sizeof(key));
		there = hmap_get_str(&idx, key, &j);
		if (del && !there && ops->endpoint_del)
			err = ops->endpoint_del(ctx, old, e);
		else if (!del && (!there || memcmp(&e->ep, &to->eps[j].ep, sizeof(e->ep))) &&
			 ops->endpoint_set)
			err = ops->endpoint_set(ctx, new, e);
	}
	hmap_free(&idx);
	return err;
}

int seg_compiled_diff(const struct seg_compiled *old, const struct seg_compiled *new,
		      const struct seg_diff_ops *ops, void *ctx)
{
	int err = 0;

	if (!new)
		return -EINVAL;
	err = diff_ipc(old, new, ops, ctx, false);
	if (!err)
		err = diff_lpm(old, new, ops, ctx, false);
	if (!err)
		err = diff_pol(old, new, ops, ctx, false);
	if (!err)
		err = diff_eps(old, new, ops, ctx, false);
	if (!err && old)
		err = diff_eps(old, new, ops, ctx, true);
	if (!err && old)
		err = diff_pol(old, new, ops, ctx, true);
	if (!err && old)
		err = diff_lpm(old, new, ops, ctx, true);
	if (!err && old)
		err = diff_ipc(old, new, ops, ctx, true);
	return err;
}
