// SPDX-License-Identifier: GPL-2.0-only
/* segctl bpf ipcache: exact addresses (seg_ipcache) and prefixes (seg_ipc_lpm). */
#include "segctl.h"

#include "log.h"

#include <errno.h>
#include <string.h>

static int print_entry(const struct in6_addr *a, __u32 prefixlen, bool lpm,
		       const struct seg_ipcache_val *v, void *ctx)
{
	struct out *o = ctx;
	char buf[INET6_ADDRSTRLEN], cidr[INET6_ADDRSTRLEN + 8];
	bool v4 = seg_addr_is_v4(a) && prefixlen >= 96;

	seg_addr_str(a, buf, sizeof(buf));
	if (lpm)
		snprintf(cidr, sizeof(cidr), "%s/%u", buf, v4 ? prefixlen - 96 : prefixlen);
	else
		snprintf(cidr, sizeof(cidr), "%s", buf);
	out_obj_begin(o, NULL);
	out_str(o, OUT_ANY, "address", NULL, cidr);
	out_str(o, OUT_ANY, "table", NULL, lpm ? "lpm" : "exact");
	out_u64(o, OUT_ANY, "identity", NULL, v->identity);
	if (v->owner_ifkey)
		segctl_out_ifkey(o, "owner_ifkey", v->owner_ifkey);
	else
		out_u64(o, OUT_ANY, "owner_ifkey", "-", 0);
	out_obj_end(o);
	return 0;
}

struct list_opts {
	int unused;
};
static const struct list_opts list_defaults;

static int do_list(void *ctx, void *opts)
{
	struct segctl *c = ctx;
	struct seg_dp *dp;
	__u32 epoch;
	int err = segctl_dp(c, &dp);

	if (err)
		return err;
	err = seg_dp_epoch_get(dp, &epoch, NULL);
	if (err)
		return err;
	out_list_begin(c->out, NULL);
	err = seg_dp_ipcache_foreach_in(dp, epoch, print_entry, c->out);
	out_list_end(c->out);
	return err;
}

struct ipc_opts {
	const char *addr;
	uint32_t identity;
	uint32_t owner;
};
static const struct ipc_opts ipc_defaults;
static const struct opt set_optv[] = {
	OPT_STR(0, "addr", struct ipc_opts, addr, "ADDR[/PREFIX]",
		"IPv4 or IPv6 address (exact table) or prefix (LPM table)", .positional = true,
		.required = true),
	OPT_U32('i', "identity", struct ipc_opts, identity, "N", "identity of the address",
		.required = true),
	OPT_U32(0, "owner-ifkey", struct ipc_opts, owner, "N",
		"local endpoint owning the address (anti-spoofing), 0 = none"),
	OPT_END,
};
static const struct opt del_optv[] = {
	OPT_STR(0, "addr", struct ipc_opts, addr, "ADDR[/PREFIX]", "address or prefix",
		.positional = true, .required = true),
	OPT_END,
};

/* Exact address (prefixlen 0) or prefix; usage error when neither. */
static int parse_addr(struct segctl *c, const char *s, struct in6_addr *a, __u32 *prefixlen)
{
	*prefixlen = 0;
	if (strchr(s, '/') ? seg_prefix_parse(s, a, prefixlen) : seg_addr_parse(s, a))
		return segctl_usage(c, "invalid address '%s', expected ADDR or ADDR/PREFIX", s);
	return 0;
}

static int do_set(void *ctx, void *opts)
{
	struct segctl *c = ctx;
	struct ipc_opts *o = opts;
	struct seg_ipcache_val v = { .identity = o->identity, .owner_ifkey = o->owner };
	struct in6_addr a;
	struct seg_dp *dp;
	__u32 plen;
	int err = parse_addr(c, o->addr, &a, &plen);

	if (!err)
		err = segctl_dp(c, &dp);
	if (err)
		return err;
	if (strchr(o->addr, '/'))
		err = seg_dp_ipcache_lpm_set(dp, &a, plen, &v);
	else
		err = seg_dp_ipcache_set(dp, &a, &v);
	if (!err) /* established flows with this peer are checked again */
		err = seg_dp_generation_bump(dp);
	if (err)
		return err;
	print_entry(&a, plen, strchr(o->addr, '/'), &v, c->out);
	return 0;
}

static int do_delete(void *ctx, void *opts)
{
	struct segctl *c = ctx;
	struct ipc_opts *o = opts;
	struct in6_addr a;
	struct seg_dp *dp;
	__u32 plen;
	int err = parse_addr(c, o->addr, &a, &plen);

	if (!err)
		err = segctl_dp(c, &dp);
	if (err)
		return err;
	if (strchr(o->addr, '/'))
		err = seg_dp_ipcache_lpm_del(dp, &a, plen);
	else
		err = seg_dp_ipcache_del(dp, &a);
	if (!err)
		err = seg_dp_generation_bump(dp);
	if (err)
		return err;
	out_str(c->out, OUT_ANY, "deleted", NULL, o->addr);
	return 0;
}

const struct cmd segctl_bpf_ipcache_cmds[] = {
	CMD_LEAF("list", do_list, NULL, list_defaults, "list addresses and prefixes"),
	CMD_LEAF("set", do_set, set_optv, ipc_defaults, "map an address or prefix to an identity",
		 .description =
			 "Exact addresses go to seg_ipcache, prefixes to seg_ipc_lpm. The data\n"
			 "path looks up the exact table first, then the longest prefix, else\n"
			 "the address is WORLD (2). Then the data path's generation is bumped:\n"
			 "established flows are re-checked against the new identities.",
		 .examples = "segctl bpf ipcache set 10.1.0.5 --identity 300 --owner-ifkey 12\n"
			     "segctl bpf ipcache set 192.168.0.0/16 --identity 2000"),
	CMD_LEAF("delete", do_delete, del_optv, ipc_defaults, "remove an address or prefix",
		 .description = "Then bumps the data path's generation, as set does."),
	CMD_END,
};
