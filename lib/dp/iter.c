// SPDX-License-Identifier: GPL-2.0-only
/*
 * Walks over hash maps with bpf_map_get_next_key. The data path changes the
 * maps while we walk (conntrack above all): a key deleted under us makes the
 * kernel restart from the first key, so a walk is bounded to max_entries
 * steps and may, rarely, report an entry twice or miss a new one.
 */
#include "dp_priv.h"
#include "log.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef int (*walk_cb)(const void *key, const void *val, void *ctx);

/* Calls cb(key, value) for each entry (value NULL when want_val is false).
 * cb returns 0 to go on; anything else stops the walk and is returned. */
static int map_walk(struct seg_dp *dp, enum seg_dpm m, bool want_val, walk_cb cb, void *ctx)
{
	const struct seg_dp_map *mi = seg_dp_mapi(dp, m);
	char *key = NULL, *next = NULL, *val = NULL;
	__u64 steps = (__u64)mi->max_entries + 1;
	int err = 0;

	key = calloc(1, mi->key_size);
	next = calloc(1, mi->key_size);
	val = want_val ? calloc(1, mi->value_size) : NULL;
	if (!key || !next || (want_val && !val)) {
		err = log_err(-ENOMEM, "walk %s", mi->name);
		goto out;
	}
	for (void *prev = NULL; steps--; prev = key) {
		if (bpf_map_get_next_key(mi->fd, prev, next)) {
			if (errno != ENOENT)
				err = log_err(-errno, "walk %s", mi->name);
			break;
		}
		memcpy(key, next, mi->key_size);
		if (want_val && bpf_map_lookup_elem(mi->fd, key, val)) {
			if (errno == ENOENT)
				continue; /* gone meanwhile */
			err = log_err(-errno, "lookup in %s", mi->name);
			break;
		}
		err = cb(key, val, ctx);
		if (err)
			break;
	}
out:
	free(key);
	free(next);
	free(val);
	return err;
}

struct ipc_walk {
	seg_dp_ipc_cb cb;
	void *ctx;
};

static int ipc_exact_cb(const void *k, const void *v, void *ctx)
{
	struct ipc_walk *w = ctx;

	return w->cb((const struct in6_addr *)((const struct seg_ipcache_key *)k)->addr, 128, false,
		     v, w->ctx);
}

static int ipc_lpm_cb(const void *k, const void *v, void *ctx)
{
	const struct seg_lpm_key *lk = k;
	struct ipc_walk *w = ctx;

	return w->cb((const struct in6_addr *)lk->addr, lk->prefixlen, true, v, w->ctx);
}

int seg_dp_ipcache_foreach_in(struct seg_dp *dp, __u32 epoch, seg_dp_ipc_cb cb, void *ctx)
{
	struct ipc_walk w = { .cb = cb, .ctx = ctx };

	return map_walk(dp, seg_dpm_epoch(DPM_IPCACHE, epoch), true, ipc_exact_cb, &w) ?:
		       map_walk(dp, seg_dpm_epoch(DPM_IPCACHE_LPM, epoch), true, ipc_lpm_cb, &w);
}

struct ct_walk {
	seg_dp_ct_cb cb;
	void *ctx;
};

static int ct_walk_cb(const void *k, const void *v, void *ctx)
{
	struct ct_walk *w = ctx;

	return w->cb(k, v, w->ctx);
}

int seg_dp_ct_foreach(struct seg_dp *dp, seg_dp_ct_cb cb, void *ctx)
{
	struct ct_walk w = { cb, ctx };

	return map_walk(dp, DPM_CT, true, ct_walk_cb, &w);
}

struct ep_walk {
	seg_dp_ep_cb cb;
	void *ctx;
};

static int ep_walk_cb(const void *k, const void *v, void *ctx)
{
	struct ep_walk *w = ctx;
	__u32 ifkey;

	memcpy(&ifkey, k, sizeof(ifkey));
	return w->cb(ifkey, v, w->ctx);
}

int seg_dp_endpoint_foreach(struct seg_dp *dp, seg_dp_ep_cb cb, void *ctx)
{
	struct ep_walk w = { cb, ctx };

	return map_walk(dp, seg_dpm_epoch(DPM_ENDPOINTS, (__u32)seg_dp_active_epoch(dp)), true,
			ep_walk_cb, &w);
}

struct pol_walk {
	seg_dp_pol_cb cb;
	void *ctx;
};

static int pol_walk_cb(const void *k, const void *v, void *ctx)
{
	struct pol_walk *w = ctx;

	return w->cb(k, v, w->ctx);
}

int seg_dp_policy_foreach(struct seg_dp *dp, seg_dp_pol_cb cb, void *ctx)
{
	struct pol_walk w = { cb, ctx };

	return map_walk(dp, DPM_POLICY, true, pol_walk_cb, &w);
}

/* Flush: collect keys in batches, then delete them (deleting while walking
 * would restart the walk at every step). Repeats until a pass finds none. */
#define CT_FLUSH_BATCH 4096

struct key_batch {
	struct seg_ct_key *keys;
	size_t n;
};

static int ct_collect_cb(const void *k, const void *v, void *ctx)
{
	struct key_batch *b = ctx;

	memcpy(&b->keys[b->n++], k, sizeof(b->keys[0]));
	return b->n == CT_FLUSH_BATCH ? 1 : 0;
}

int seg_dp_ct_flush(struct seg_dp *dp)
{
	struct key_batch b = { 0 };
	int fd = seg_dp_fd(dp, DPM_CT), err = 0;
	/* Bounded: each pass removes what it saw; new flows keep arriving. */
	__u32 passes = seg_dp_mapi(dp, DPM_CT)->max_entries / CT_FLUSH_BATCH + 2;

	b.keys = calloc(CT_FLUSH_BATCH, sizeof(*b.keys));
	if (!b.keys)
		return log_err(-ENOMEM, "flush %s", SEG_MAP_CT);
	while (passes--) {
		b.n = 0;
		err = map_walk(dp, DPM_CT, false, ct_collect_cb, &b);
		if (err < 0)
			break;
		err = 0;
		if (!b.n)
			break;
		for (size_t i = 0; i < b.n; i++)
			if (bpf_map_delete_elem(fd, &b.keys[i]) && errno != ENOENT) {
				err = log_err(-errno, "delete from %s", SEG_MAP_CT);
				goto out;
			}
	}
out:
	free(b.keys);
	return err;
}

/* ---- fill ------------------------------------------------------------------ */

static int count_cb(const void *k, const void *v, void *ctx)
{
	(*(__u32 *)ctx)++;
	return 0;
}

int seg_dp_map_fill(struct seg_dp *dp, const char *name, __u32 *used, __u32 *max)
{
	const struct seg_dp_map *mi = NULL;
	int m;

	for (m = 0; m < DPM_MAX; m++)
		if (!strcmp(seg_dpm_names[m], name)) {
			mi = seg_dp_mapi(dp, m);
			break;
		}
	if (!mi)
		return log_err(-ENOENT, "no map %s in the data path", name);
	*max = mi->max_entries;
	*used = 0;
	switch (mi->type) {
	case BPF_MAP_TYPE_ARRAY:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
		*used = mi->max_entries; /* every slot exists */
		return 0;
	case BPF_MAP_TYPE_RINGBUF:
		return log_err(-EOPNOTSUPP, "%s is a ring buffer (%u bytes): no entries", name,
			       mi->max_entries);
	default:
		return map_walk(dp, m, false, count_cb, used);
	}
}
