// SPDX-License-Identifier: GPL-2.0-only
/* segctl bpf: load/unload, attach/detach, config; the bpf command table. */
#include "segctl.h"

#include "log.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

/* ---- load / unload ------------------------------------------------------- */

struct noopts {
	int unused;
};
static const struct noopts noopts_defaults;

static void print_fill(struct out *o, struct seg_dp *dp)
{
	static const char *const maps[] = { SEG_MAP_ENDPOINTS, SEG_MAP_IPCACHE, SEG_MAP_IPCACHE_LPM,
					    SEG_MAP_POLICY,    SEG_MAP_CT,	SEG_MAP_FRAG };

	out_list_begin(o, "maps");
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		__u32 used = 0, max = 0;

		if (seg_dp_map_fill(dp, maps[i], &used, &max))
			continue;
		out_obj_begin(o, NULL);
		out_str(o, OUT_ANY, "map", NULL, maps[i]);
		out_u64(o, OUT_ANY, "entries", NULL, used);
		out_u64(o, OUT_ANY, "max_entries", NULL, max);
		out_obj_end(o);
	}
	out_list_end(o);
}

static int do_load(void *ctx, void *opts)
{
	struct segctl *c = ctx;
	struct seg_dp_opts o = { .pin_dir = c->g.pin_dir };
	int err;

	err = seg_dp_open(&c->dp, &o);
	if (err) {
		c->dp = NULL;
		return err;
	}
	out_str(c->out, OUT_ANY, "pin_dir", NULL, c->g.pin_dir);
	out_u64(c->out, OUT_ANY, "abi_version", NULL, SEG_ABI_VERSION);
	print_fill(c->out, c->dp);
	return 0;
}

static int do_unload(void *ctx, void *opts)
{
	struct segctl *c = ctx;
	int err = seg_dp_unpin_all(c->g.pin_dir);

	if (err)
		return err;
	out_str(c->out, OUT_ANY, "unpinned", NULL, c->g.pin_dir);
	return 0;
}

static int do_status(void *ctx, void *opts)
{
	struct segctl *c = ctx;
	struct seg_dp *dp;
	int err = segctl_dp(c, &dp);

	if (err)
		return err;
	out_str(c->out, OUT_ANY, "pin_dir", NULL, c->g.pin_dir);
	print_fill(c->out, dp);
	return 0;
}

/* ---- attach / detach ----------------------------------------------------- */

static const char *const attach_mode_names[] = {
	[SEG_ATTACH_VETH] = "veth",
	[SEG_ATTACH_OVS] = "ovs",
	[SEG_ATTACH_POD] = "pod",
	NULL,
};

struct attach_opts {
	const char *dev;
	const char *netns;
	int mode;
	uint32_t ep_id;
};
static const struct attach_opts attach_defaults = { .mode = SEG_ATTACH_VETH };
static const struct opt attach_optv[] = {
	OPT_STR('d', "dev", struct attach_opts, dev, "IF", "interface name", .required = true),
	OPT_STR('n', "netns", struct attach_opts, netns, "PATH|NAME",
		"network namespace of the interface (NAME = /run/netns/NAME)"),
	OPT_ENUM('m', "mode", struct attach_opts, mode, attach_mode_names,
		 "veth: host-side veth (tc); ovs: host-side OVS port (xdp + tc); pod: inside the "
		 "pod netns (tc)"),
	OPT_U32(0, "ep-id", struct attach_opts, ep_id, "N",
		"endpoint id; mode pod keys the endpoint as 0x80000000|N", .min = 1,
		.max = SEG_IFKEY_NETNS - 1),
	OPT_END,
};

static int do_attach(void *ctx, void *opts)
{
	struct segctl *c = ctx;
	struct attach_opts *o = opts;
	struct seg_dp_attach a = { .ifname = o->dev, .mode = o->mode, .ep_id = o->ep_id };
	char nsbuf[PATH_MAX];
	struct seg_dp *dp;
	__u32 ifkey = 0;
	int err;

	if (o->mode == SEG_ATTACH_POD && !o->ep_id)
		return segctl_usage(c, "--mode pod needs --ep-id");
	if (o->netns)
		a.netns = segctl_netns_path(o->netns, nsbuf, sizeof(nsbuf));
	err = segctl_dp(c, &dp);
	if (err)
		return err;
	err = seg_dp_attach(dp, &a, &ifkey);
	if (err)
		return err;
	segctl_out_ifkey(c->out, "ifkey", ifkey);
	out_str(c->out, OUT_ANY, "dev", NULL, o->dev);
	out_str(c->out, OUT_ANY, "netns", NULL, a.netns);
	out_str(c->out, OUT_ANY, "mode", NULL, attach_mode_names[o->mode]);
	return 0;
}

struct detach_opts {
	uint32_t ifkey;
};
static const struct detach_opts detach_defaults;
static const struct opt detach_optv[] = {
	OPT_U32('k', "ifkey", struct detach_opts, ifkey, "N", "endpoint key printed by attach",
		.required = true, .min = 1),
	OPT_END,
};

static int do_detach(void *ctx, void *opts)
{
	struct segctl *c = ctx;
	struct detach_opts *o = opts;
	struct seg_dp *dp;
	int err = segctl_dp(c, &dp);

	if (err)
		return err;
	err = seg_dp_detach(dp, o->ifkey);
	if (err)
		return err;
	segctl_out_ifkey(c->out, "detached", o->ifkey);
	return 0;
}

/* ---- config -------------------------------------------------------------- */

static void print_config(struct out *o, const struct seg_config *cfg)
{
	out_bool_as(o, OUT_ANY, "allow_host", cfg->flags & SEG_CFG_ALLOW_HOST, "on", "off");
	out_bool_as(o, OUT_ANY, "antispoof", cfg->flags & SEG_CFG_ANTISPOOF, "on", "off");
	out_bool_as(o, OUT_ANY, "pass_no_endpoint", cfg->flags & SEG_CFG_PASS_NO_ENDPOINT, "on",
		    "off");
	out_u64(o, OUT_ANY, "event_rate", cfg->evt_rate ? NULL : "%llu (no limit)", cfg->evt_rate);
	out_u64(o, OUT_ANY, "event_burst", cfg->evt_burst ? NULL : "%llu (= rate)", cfg->evt_burst);
	out_u64(o, OUT_ANY, "ct_timeout_tcp", cfg->ct_timeout_tcp ? "%llus" : "%llu (default)",
		cfg->ct_timeout_tcp);
	out_u64(o, OUT_ANY, "ct_timeout_tcp_close",
		cfg->ct_timeout_tcp_close ? "%llus" : "%llu (default)", cfg->ct_timeout_tcp_close);
	out_u64(o, OUT_ANY, "ct_timeout_other", cfg->ct_timeout_other ? "%llus" : "%llu (default)",
		cfg->ct_timeout_other);
}

static int do_config_get(void *ctx, void *opts)
{
	struct segctl *c = ctx;
	struct seg_config cfg;
	struct seg_dp *dp;
	int err = segctl_dp(c, &dp);

	if (!err)
		err = seg_dp_config_get(dp, &cfg);
	if (err)
		return err;
	print_config(c->out, &cfg);
	return 0;
}

struct config_set_opts {
	int allow_host, antispoof, pass_no_ep;
	uint32_t rate, burst, tcp, tcp_close, other;
};
static const struct config_set_opts config_set_defaults;
static const struct opt config_set_optv[] = {
	OPT_ENUM(0, "allow-host", struct config_set_opts, allow_host, segctl_onoff_names,
		 "always allow traffic between the node and its pods", .defstr = "unchanged"),
	OPT_ENUM(0, "antispoof", struct config_set_opts, antispoof, segctl_onoff_names,
		 "new flows from a pod need a source address the pod owns in the ipcache",
		 .defstr = "unchanged"),
	OPT_ENUM(0, "pass-no-endpoint", struct config_set_opts, pass_no_ep, segctl_onoff_names,
		 "pass packets on interfaces without an endpoint (else drop)",
		 .defstr = "unchanged"),
	OPT_U32(0, "event-rate", struct config_set_opts, rate, "N",
		"flow events per second per endpoint and CPU, 0 = no limit"),
	OPT_U32(0, "event-burst", struct config_set_opts, burst, "N",
		"event bucket size, 0 = the rate"),
	OPT_U32(0, "ct-timeout-tcp", struct config_set_opts, tcp, "S",
		"established TCP timeout in seconds, 0 = 21600"),
	OPT_U32(0, "ct-timeout-tcp-close", struct config_set_opts, tcp_close, "S",
		"TCP timeout after FIN/RST in seconds, 0 = 10"),
	OPT_U32(0, "ct-timeout-other", struct config_set_opts, other, "S",
		"timeout of other flows in seconds, 0 = 60"),
	OPT_END,
};

static void set_flag(__u32 *flags, __u32 bit, bool on)
{
	*flags = on ? *flags | bit : *flags & ~bit;
}

struct config_edit {
	struct segctl *c;
	const struct config_set_opts *o;
	struct seg_config cfg; /* as written */
};

/* Only the options given change; under the pin dir's lock (lib/dp), so a
 * concurrent flip of segd is neither lost nor rolled back. */
static int config_edit(struct seg_config *cfg, void *arg)
{
	struct config_edit *x = arg;
	const struct config_set_opts *o = x->o;
	struct segctl *c = x->c;

	if (segctl_given(c, "allow-host"))
		set_flag(&cfg->flags, SEG_CFG_ALLOW_HOST, o->allow_host);
	if (segctl_given(c, "antispoof"))
		set_flag(&cfg->flags, SEG_CFG_ANTISPOOF, o->antispoof);
	if (segctl_given(c, "pass-no-endpoint"))
		set_flag(&cfg->flags, SEG_CFG_PASS_NO_ENDPOINT, o->pass_no_ep);
	if (segctl_given(c, "event-rate"))
		cfg->evt_rate = o->rate;
	if (segctl_given(c, "event-burst"))
		cfg->evt_burst = o->burst;
	if (segctl_given(c, "ct-timeout-tcp"))
		cfg->ct_timeout_tcp = o->tcp;
	if (segctl_given(c, "ct-timeout-tcp-close"))
		cfg->ct_timeout_tcp_close = o->tcp_close;
	if (segctl_given(c, "ct-timeout-other"))
		cfg->ct_timeout_other = o->other;
	x->cfg = *cfg;
	return 0;
}

static int do_config_set(void *ctx, void *opts)
{
	struct config_edit x = { .c = ctx, .o = opts };
	struct seg_dp *dp;
	int err = segctl_dp(x.c, &dp);

	if (!err)
		err = seg_dp_config_update(dp, config_edit, &x);
	if (err)
		return err;
	print_config(x.c->out, &x.cfg);
	return 0;
}

const struct cmd segctl_bpf_config_cmds[] = {
	CMD_LEAF("get", do_config_get, NULL, noopts_defaults, "print the data path configuration"),
	CMD_LEAF("set", do_config_set, config_set_optv, config_set_defaults,
		 "change the data path configuration",
		 .description = "Changes only the settings given; prints the result.",
		 .examples = "segctl bpf config set --allow-host on --event-rate 100"),
	CMD_END,
};

/* ---- the bpf group ------------------------------------------------------- */

const struct cmd segctl_bpf_cmds[] = {
	CMD_LEAF("load", do_load, NULL, noopts_defaults, "load the data path and pin it",
		 .description = "Loads the programs and maps and pins them under --pin-dir.\n"
				"Idempotent: compatible pins are reused, so maps keep their "
				"contents."),
	CMD_LEAF("unload", do_unload, NULL, noopts_defaults,
		 "remove every pin (detaches all interfaces)"),
	CMD_LEAF("status", do_status, NULL, noopts_defaults, "show map fill levels"),
	CMD_LEAF("attach", do_attach, attach_optv, attach_defaults,
		 "attach the data path to an interface; prints its ifkey",
		 .description =
			 "Attaches both directions and pins the links, so they outlive segctl.\n"
			 "Re-attaching replaces. The ifkey printed is the endpoint map key.",
		 .examples = "segctl bpf attach --dev veth1234\n"
			     "segctl bpf attach --dev eth0 --netns pod-a --mode pod --ep-id 7"),
	CMD_LEAF("detach", do_detach, detach_optv, detach_defaults,
		 "detach what attach attached for an ifkey"),
	CMD_GROUP("config", segctl_bpf_config_cmds, "data path configuration (seg_config)"),
	CMD_GROUP("endpoint", segctl_bpf_endpoint_cmds, "endpoint map (seg_endpoints)",
		  .alias = "ep"),
	CMD_GROUP("ipcache", segctl_bpf_ipcache_cmds,
		  "address to identity map (seg_ipcache, seg_ipc_lpm)"),
	CMD_GROUP("policy", segctl_bpf_policy_cmds, "policy map (seg_policy)"),
	CMD_GROUP("ct", segctl_bpf_ct_cmds, "connection tracking (seg_ct)"),
	{
		.name = "counters",
		.summary = "packets and bytes by verdict reason and by rule",
		.run = segctl_counters_run,
		.opts = segctl_counters_optv,
		.defaults = &segctl_counters_defaults,
		.opts_size = sizeof(segctl_counters_defaults),
		.examples = "segctl bpf counters --rules",
	},
	{
		.name = "events",
		.summary = "print flow events from the ring buffer",
		.description =
			"One line per event: time, type, verdict, reason, direction, protocol,\n"
			"source -> destination, identities, rule, endpoint. With -o json, one\n"
			"JSON object per line. Reading consumes the events: do not run this\n"
			"next to another reader (segd).",
		.run = segctl_events_run,
		.opts = segctl_events_optv,
		.defaults = &segctl_events_defaults,
		.opts_size = sizeof(segctl_events_defaults),
		.examples = "segctl bpf events --follow --count 10 --timeout 5",
	},
	CMD_END,
};
