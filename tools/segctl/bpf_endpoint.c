// SPDX-License-Identifier: GPL-2.0-only
/*
 * segctl bpf endpoint: the endpoint map, and the invariant tying it to the
 * policy map: an endpoint's port_mask[dir] lists exactly the port-block
 * widths present in the policy map for its policy_id[dir]. segctl keeps it
 * by recomputing masks whenever it changes either side (endpoint set,
 * policy add/delete); `endpoint sync-masks` repairs maps changed by others.
 */
#include "segctl.h"

#include "log.h"

#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

/* ---- masks ----------------------------------------------------------------- */

struct mask_ctx {
	uint32_t policy_id;
	uint8_t dir;
	uint32_t mask;
};

static int mask_cb(const struct seg_policy_key *k, const struct seg_policy_val *v, void *ctx)
{
	struct mask_ctx *m = ctx;

	if (k->policy_id != m->policy_id || k->dir != m->dir)
		return 0;
	if (k->proto == 0)
		m->mask |= SEG_PMASK_ANYPROTO;
	else if (k->port_wild <= 16)
		m->mask |= 1u << k->port_wild;
	return 0;
}

int segctl_policy_mask(struct seg_dp *dp, uint32_t policy_id, uint8_t dir, uint32_t *mask)
{
	struct mask_ctx m = { .policy_id = policy_id, .dir = dir };
	int err = seg_dp_policy_foreach(dp, mask_cb, &m);

	if (err < 0)
		return err;
	*mask = m.mask;
	return 0;
}

struct ep_entry {
	__u32 ifkey;
	struct seg_endpoint ep;
};

struct ep_vec {
	struct ep_entry *v;
	size_t n, cap;
};

static int ep_collect(__u32 ifkey, const struct seg_endpoint *ep, void *ctx)
{
	struct ep_vec *vec = ctx;

	if (vec->n == vec->cap) {
		size_t cap = vec->cap ? vec->cap * 2 : 64;
		struct ep_entry *nv = realloc(vec->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		vec->v = nv;
		vec->cap = cap;
	}
	vec->v[vec->n++] = (struct ep_entry){ .ifkey = ifkey, .ep = *ep };
	return 0;
}

static int ep_cmp(const void *a, const void *b)
{
	const struct ep_entry *x = a, *y = b;

	return x->ifkey < y->ifkey ? -1 : x->ifkey > y->ifkey;
}

/* All endpoints, sorted by ifkey. Caller frees vec->v. */
static int ep_list(struct seg_dp *dp, struct ep_vec *vec)
{
	int err = seg_dp_endpoint_foreach(dp, ep_collect, vec);

	if (err < 0)
		return err == -ENOMEM ? log_err(err, "collecting endpoints") : err;
	if (vec->n)
		qsort(vec->v, vec->n, sizeof(vec->v[0]), ep_cmp);
	return 0;
}

/* Sets both masks of ep from the policy map; true if one changed. */
static int ep_fill_masks(struct seg_dp *dp, struct seg_endpoint *ep, bool *changed)
{
	for (uint8_t d = 0; d < SEG_DIR_MAX; d++) {
		uint32_t mask;
		int err = segctl_policy_mask(dp, ep->policy_id[d], d, &mask);

		if (err)
			return err;
		if (ep->port_mask[d] != mask)
			*changed = true;
		ep->port_mask[d] = mask;
	}
	return 0;
}

int segctl_endpoints_resync(struct seg_dp *dp, uint32_t policy_id, bool all, bool bump)
{
	struct ep_vec vec = { 0 };
	int err, updated = 0;

	err = ep_list(dp, &vec);
	if (err)
		goto out;
	for (size_t i = 0; i < vec.n; i++) {
		struct seg_endpoint *ep = &vec.v[i].ep;
		bool changed = false;

		if (!all && ep->policy_id[SEG_DIR_INGRESS] != policy_id &&
		    ep->policy_id[SEG_DIR_EGRESS] != policy_id)
			continue;
		err = ep_fill_masks(dp, ep, &changed);
		if (err)
			goto out;
		if (!changed && !bump)
			continue;
		ep->revision++;
		err = seg_dp_endpoint_set(dp, vec.v[i].ifkey, ep);
		if (err)
			goto out;
		updated++;
	}
	/* after the writes: established flows on the fast path see this only */
	err = updated ? seg_dp_generation_bump(dp) : 0;
	if (!err)
		err = updated;
out:
	free(vec.v);
	return err;
}

/* ---- printing --------------------------------------------------------------- */

static const char *const ep_mode_names[] = { "open", "isolated", "audit", NULL };

static int ep_mode_of(__u8 flags)
{
	if (!(flags & SEG_EPF_ISOLATED))
		return 0;
	return flags & SEG_EPF_AUDIT ? 2 : 1;
}

static __u8 ep_flags_of(int mode)
{
	static const __u8 flags[] = { 0, SEG_EPF_ISOLATED, SEG_EPF_ISOLATED | SEG_EPF_AUDIT };

	return flags[mode];
}

static void print_endpoint(struct out *o, __u32 ifkey, const struct seg_endpoint *ep)
{
	out_obj_begin(o, NULL);
	segctl_out_ifkey(o, "ifkey", ifkey);
	out_u64(o, OUT_ANY, "ep_id", NULL, ep->ep_id);
	out_u64(o, OUT_ANY, "identity", NULL, ep->identity);
	out_u64(o, OUT_ANY, "revision", NULL, ep->revision);
	for (int d = 0; d < SEG_DIR_MAX; d++) {
		out_obj_begin(o, segctl_dir_names[d]);
		out_str(o, OUT_ANY, "mode", NULL, ep_mode_names[ep_mode_of(ep->flags[d])]);
		out_u64(o, OUT_ANY, "policy", NULL, ep->policy_id[d]);
		out_u64(o, OUT_ANY, "port_mask", "%#llx", ep->port_mask[d]);
		out_obj_end(o);
	}
	out_obj_end(o);
}

/* ---- list / get / delete ------------------------------------------------------ */

struct ep_key_opts {
	uint32_t ifkey;
	const char *dev;
	const char *netns;
	uint32_t ep_id;
};

static int do_list(void *ctx, void *opts)
{
	struct segctl *c = ctx;
	struct ep_vec vec = { 0 };
	struct seg_dp *dp;
	int err = segctl_dp(c, &dp);

	if (!err)
		err = ep_list(dp, &vec);
	if (err)
		goto out;
	out_list_begin(c->out, NULL);
	for (size_t i = 0; i < vec.n; i++)
		print_endpoint(c->out, vec.v[i].ifkey, &vec.v[i].ep);
	out_list_end(c->out);
out:
	free(vec.v);
	return err;
}

/* --ifkey N | --dev IF (host side: its ifindex) | --dev IF --netns NS --ep-id N */
static int ep_resolve(struct segctl *c, const struct ep_key_opts *o, __u32 *ifkey)
{
	unsigned idx;

	if (segctl_given(c, "ifkey")) {
		*ifkey = o->ifkey;
		return 0;
	}
	if (!o->dev)
		return segctl_usage(c, "give --ifkey N or --dev IF");
	if (o->netns) {
		if (!o->ep_id)
			return segctl_usage(c, "--dev with --netns keys the endpoint by --ep-id");
		*ifkey = SEG_IFKEY_NETNS | o->ep_id;
		return 0;
	}
	idx = if_nametoindex(o->dev);
	if (!idx)
		return log_err(-errno, "interface %s", o->dev);
	*ifkey = idx;
	return 0;
}

#define EP_KEY_OPTS(t)                                                                   \
	OPT_U32('k', "ifkey", t, key.ifkey, "N", "endpoint map key (printed by attach)", \
		.min = 1),                                                               \
		OPT_STR('d', "dev", t, key.dev, "IF", "interface, instead of --ifkey"),  \
		OPT_STR('n', "netns", t, key.netns, "PATH|NAME",                         \
			"netns of --dev (pod-mode attachment: key is 0x80000000|ep-id)")

struct ep_get_opts {
	struct ep_key_opts key;
};
static const struct ep_get_opts ep_get_defaults;
static const struct opt ep_get_optv[] = {
	EP_KEY_OPTS(struct ep_get_opts),
	OPT_U32(0, "ep-id", struct ep_get_opts, key.ep_id, "N", "endpoint id, with --netns",
		.min = 1, .max = SEG_IFKEY_NETNS - 1),
	OPT_END,
};

static int do_get(void *ctx, void *opts)
{
	struct segctl *c = ctx;
	struct ep_get_opts *o = opts;
	struct seg_endpoint ep;
	struct seg_dp *dp;
	__u32 ifkey;
	int err = ep_resolve(c, &o->key, &ifkey);

	if (!err)
		err = segctl_dp(c, &dp);
	if (!err)
		err = seg_dp_endpoint_get(dp, ifkey, &ep);
	if (err == -ENOENT)
		log_error("no endpoint with ifkey %u", ifkey);
	if (err)
		return err;
	print_endpoint(c->out, ifkey, &ep);
	return 0;
}

static int do_delete(void *ctx, void *opts)
{
	struct segctl *c = ctx;
	struct ep_get_opts *o = opts;
	struct seg_dp *dp;
	__u32 ifkey;
	int err = ep_resolve(c, &o->key, &ifkey);

	if (!err)
		err = segctl_dp(c, &dp);
	if (!err)
		err = seg_dp_endpoint_del(dp, ifkey);
	if (err == -ENOENT)
		log_error("no endpoint with ifkey %u", ifkey);
	if (!err) /* its established flows are checked again: no endpoint */
		err = seg_dp_generation_bump(dp);
	if (err)
		return err;
	segctl_out_ifkey(c->out, "deleted", ifkey);
	return 0;
}

/* ---- set ----------------------------------------------------------------------- */

struct ep_set_opts {
	struct ep_key_opts key;
	uint32_t identity;
	int mode[SEG_DIR_MAX];
	uint32_t policy[SEG_DIR_MAX];
	uint32_t revision;
	bool bump;
};
static const struct ep_set_opts ep_set_defaults;
static const struct opt ep_set_optv[] = {
	EP_KEY_OPTS(struct ep_set_opts),
	OPT_U32(0, "ep-id", struct ep_set_opts, key.ep_id, "N", "endpoint id reported in events",
		.min = 1, .max = SEG_IFKEY_NETNS - 1, .defstr = "unchanged, new: 0"),
	OPT_U32(0, "identity", struct ep_set_opts, identity, "N", "the pod's identity",
		.defstr = "unchanged, new: 0"),
	OPT_ENUM(0, "ingress", struct ep_set_opts, mode[SEG_DIR_INGRESS], ep_mode_names,
		 "towards the pod: open (not isolated), isolated, audit (isolated, would-deny "
		 "passes)",
		 .defstr = "unchanged, new: open"),
	OPT_ENUM(0, "egress", struct ep_set_opts, mode[SEG_DIR_EGRESS], ep_mode_names,
		 "leaving the pod: as --ingress", .defstr = "unchanged, new: open"),
	OPT_U32(0, "policy-ingress", struct ep_set_opts, policy[SEG_DIR_INGRESS], "ID",
		"policy id deciding ingress", .defstr = "unchanged, new: 0"),
	OPT_U32(0, "policy-egress", struct ep_set_opts, policy[SEG_DIR_EGRESS], "ID",
		"policy id deciding egress", .defstr = "unchanged, new: 0"),
	OPT_U32(0, "revision", struct ep_set_opts, revision, "N",
		"set the revision (established flows with another revision are re-checked)",
		.defstr = "current + 1, new: 1"),
	OPT_BOOL(0, "bump-revision", struct ep_set_opts, bump,
		 "only bump the revision (re-check established flows)"),
	OPT_END,
};

static int do_set(void *ctx, void *opts)
{
	struct segctl *c = ctx;
	struct ep_set_opts *o = opts;
	struct seg_endpoint ep = { 0 };
	bool changed = false;
	struct seg_dp *dp;
	__u32 ifkey;
	int err = ep_resolve(c, &o->key, &ifkey);

	if (!err && segctl_given(c, "revision") && o->bump)
		err = segctl_usage(c, "--revision and --bump-revision exclude each other");
	if (!err)
		err = segctl_dp(c, &dp);
	if (err)
		return err;
	err = seg_dp_endpoint_get(dp, ifkey, &ep);
	if (err && err != -ENOENT)
		return err;
	if (err == -ENOENT)
		memset(&ep, 0, sizeof(ep));
	if (segctl_given(c, "ep-id"))
		ep.ep_id = o->key.ep_id;
	if (segctl_given(c, "identity"))
		ep.identity = o->identity;
	for (int d = 0; d < SEG_DIR_MAX; d++) {
		if (segctl_given(c, segctl_dir_names[d]))
			ep.flags[d] = ep_flags_of(o->mode[d]);
	}
	if (segctl_given(c, "policy-ingress"))
		ep.policy_id[SEG_DIR_INGRESS] = o->policy[SEG_DIR_INGRESS];
	if (segctl_given(c, "policy-egress"))
		ep.policy_id[SEG_DIR_EGRESS] = o->policy[SEG_DIR_EGRESS];
	err = ep_fill_masks(dp, &ep, &changed);
	if (err)
		return err;
	ep.revision = segctl_given(c, "revision") ? o->revision : ep.revision + 1;
	err = seg_dp_endpoint_set(dp, ifkey, &ep);
	if (!err) /* after the write: what established flows check */
		err = seg_dp_generation_bump(dp);
	if (err)
		return err;
	print_endpoint(c->out, ifkey, &ep);
	return 0;
}

/* ---- sync-masks --------------------------------------------------------------- */

struct sync_opts {
	uint32_t policy;
	bool bump;
};
static const struct sync_opts sync_defaults;
static const struct opt sync_optv[] = {
	OPT_U32('p', "policy", struct sync_opts, policy, "ID", "only endpoints using this policy",
		.defstr = "all endpoints"),
	OPT_BOOL(0, "bump-revision", struct sync_opts, bump,
		 "bump the revision even where the masks did not change"),
	OPT_END,
};

static int do_sync(void *ctx, void *opts)
{
	struct segctl *c = ctx;
	struct sync_opts *o = opts;
	struct seg_dp *dp;
	int n, err = segctl_dp(c, &dp);

	if (err)
		return err;
	n = segctl_endpoints_resync(dp, o->policy, !segctl_given(c, "policy"), o->bump);
	if (n < 0)
		return n;
	out_u64(c->out, OUT_ANY, "updated", NULL, (unsigned)n);
	return 0;
}

static const struct ep_get_opts ep_list_defaults;

const struct cmd segctl_bpf_endpoint_cmds[] = {
	CMD_LEAF("list", do_list, NULL, ep_list_defaults, "list endpoints"),
	CMD_LEAF("get", do_get, ep_get_optv, ep_get_defaults, "show one endpoint"),
	CMD_LEAF(
		"set", do_set, ep_set_optv, ep_set_defaults, "create or change an endpoint",
		.description =
			"Changes only the fields given (a new endpoint starts all zero: open both\n"
			"ways). The port masks are always recomputed from the policy map for the\n"
			"endpoint's policies, the revision is bumped unless --revision is given,\n"
			"and the data path's generation is bumped after the write, so established\n"
			"flows (of every endpoint) are re-checked against the new state.",
		.examples = "segctl bpf endpoint set --dev veth1 --ep-id 3 --identity 300 \\\n"
			    "    --ingress isolated --policy-ingress 7\n"
			    "segctl bpf endpoint set --ifkey 12 --bump-revision"),
	CMD_LEAF("delete", do_delete, ep_get_optv, ep_get_defaults, "delete an endpoint",
		 .description = "Then bumps the data path's generation: established flows of the\n"
				"interface are checked again (and dropped: no endpoint)."),
	CMD_LEAF(
		"sync-masks", do_sync, sync_optv, sync_defaults,
		"recompute port masks from the policy map",
		.description =
			"policy add/delete already keep the masks of the endpoints using the policy\n"
			"in step; this repairs maps written by something else. Endpoints whose masks\n"
			"change get their revision bumped, and then the data path's generation, so\n"
			"established flows are re-checked."),
	CMD_END,
};
