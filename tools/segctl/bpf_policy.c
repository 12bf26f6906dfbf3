// SPDX-License-Identifier: GPL-2.0-only
/*
 * segctl bpf policy: entries of seg_policy. A port range is written as its
 * aligned power-of-two blocks (seg_dp_policy_set_range). After a change the
 * endpoints using the policy get their port masks recomputed and their
 * revision bumped, then the data path's generation (segctl_endpoints_resync),
 * so established flows are re-checked.
 */
#include "segctl.h"

#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const action_names[] = { [SEG_ACT_ALLOW] = "allow", [SEG_ACT_DENY] = "deny" };

/* ---- list ------------------------------------------------------------------ */

struct pol_entry {
	struct seg_policy_key k;
	struct seg_policy_val v;
};

struct pol_vec {
	struct pol_entry *v;
	size_t n, cap;
	uint32_t only_policy; /* 0 = all */
};

static int pol_collect(const struct seg_policy_key *k, const struct seg_policy_val *v, void *ctx)
{
	struct pol_vec *vec = ctx;

	if (vec->only_policy && k->policy_id != vec->only_policy)
		return 0;
	if (vec->n == vec->cap) {
		size_t cap = vec->cap ? vec->cap * 2 : 256;
		struct pol_entry *nv = realloc(vec->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		vec->v = nv;
		vec->cap = cap;
	}
	vec->v[vec->n++] = (struct pol_entry){ *k, *v };
	return 0;
}

#define CMP(a, b)                                  \
	do {                                       \
		if ((a) != (b))                    \
			return (a) < (b) ? -1 : 1; \
	} while (0)

static int pol_cmp(const void *a, const void *b)
{
	const struct seg_policy_key *x = &((const struct pol_entry *)a)->k;
	const struct seg_policy_key *y = &((const struct pol_entry *)b)->k;

	CMP(x->policy_id, y->policy_id);
	CMP(x->dir, y->dir);
	CMP(x->remote_id, y->remote_id);
	CMP(x->proto, y->proto);
	CMP(x->port, y->port);
	CMP(x->port_wild, y->port_wild);
	return 0;
}

static void print_rule(struct out *o, const struct seg_policy_key *k,
		       const struct seg_policy_val *v)
{
	unsigned lo = k->port, hi = k->port + (1u << k->port_wild) - 1;
	char pbuf[8], ports[24];

	if (k->port_wild >= 16)
		snprintf(ports, sizeof(ports), "any");
	else if (lo == hi)
		snprintf(ports, sizeof(ports), "%u", lo);
	else
		snprintf(ports, sizeof(ports), "%u-%u", lo, hi);
	out_obj_begin(o, NULL);
	out_u64(o, OUT_ANY, "policy", NULL, k->policy_id);
	out_str(o, OUT_ANY, "dir", NULL, k->dir < SEG_DIR_MAX ? segctl_dir_names[k->dir] : "?");
	if (k->remote_id == SEG_ID_ANY)
		out_str(o, OUT_TEXT, "peer", NULL, "any");
	else
		out_u64(o, OUT_TEXT, "peer", NULL, k->remote_id);
	out_u64(o, OUT_JSON, "peer", NULL, k->remote_id);
	out_str(o, OUT_TEXT, "proto", NULL, segctl_proto_name(k->proto, pbuf, sizeof(pbuf)));
	out_u64(o, OUT_JSON, "proto", NULL, k->proto);
	out_str(o, OUT_TEXT, "ports", NULL, ports);
	out_u64(o, OUT_JSON, "port", NULL, k->port);
	out_u64(o, OUT_JSON, "port_last", NULL, k->port_wild >= 16 ? 65535 : hi);
	out_u64(o, OUT_ANY, "port_wild", NULL, k->port_wild);
	out_str(o, OUT_ANY, "action", NULL,
		v->action <= SEG_ACT_DENY && action_names[v->action] ? action_names[v->action] :
								       "?");
	out_u64(o, OUT_ANY, "rule", NULL, v->rule_id);
	out_obj_end(o);
}

struct list_opts {
	uint32_t policy;
};
static const struct list_opts list_defaults;
static const struct opt list_optv[] = {
	OPT_U32('p', "policy", struct list_opts, policy, "ID", "only this policy", .defstr = "all"),
	OPT_END,
};

static int do_list(void *ctx, void *opts)
{
	struct segctl *c = ctx;
	struct list_opts *o = opts;
	struct pol_vec vec = { .only_policy = o->policy };
	struct seg_dp *dp;
	int err = segctl_dp(c, &dp);

	if (err)
		return err;
	err = seg_dp_policy_foreach(dp, pol_collect, &vec);
	if (err < 0)
		goto out;
	err = 0;
	if (vec.n)
		qsort(vec.v, vec.n, sizeof(vec.v[0]), pol_cmp);
	out_list_begin(c->out, NULL);
	for (size_t i = 0; i < vec.n; i++)
		print_rule(c->out, &vec.v[i].k, &vec.v[i].v);
	out_list_end(c->out);
out:
	free(vec.v);
	return err;
}

/* ---- add / delete ------------------------------------------------------------ */

struct pol_opts {
	uint32_t policy;
	int dir;
	uint32_t peer;
	int proto;
	struct port_range port;
	bool deny;
	uint32_t rule;
};
static const struct pol_opts pol_defaults = { .port = { 0, 65535 } };

#define POL_KEY_OPTS(t)                                                                        \
	OPT_U32('p', "policy", t, policy, "ID", "policy id", .required = true),                \
		OPT_ENUM('d', "dir", t, dir, segctl_dir_names,                                 \
			 "direction: ingress = towards the pod", .required = true),            \
		OPT_CUSTOM(0, "peer", t, peer, segctl_parse_peer, "ID|any", "remote identity", \
			   .required = true),                                                  \
		OPT_CUSTOM(0, "proto", t, proto, segctl_parse_proto,                           \
			   "tcp|udp|sctp|icmp|icmpv6|any|N", "protocol", .required = true),    \
		OPT_CUSTOM(0, "port", t, port, segctl_parse_port, "P|LO-HI|any",               \
			   "port or port range (tcp, udp, sctp only)", .defstr = "any")

static const struct opt add_optv[] = {
	POL_KEY_OPTS(struct pol_opts),
	OPT_BOOL(0, "deny", struct pol_opts, deny, "a deny rule (default: allow)"),
	OPT_U32('r', "rule", struct pol_opts, rule, "N",
		"rule id: index of the rule's counters; 0 = no rule", .max = SEG_MAX_RULES - 1),
	OPT_END,
};
static const struct opt del_optv[] = {
	POL_KEY_OPTS(struct pol_opts),
	OPT_END,
};

static bool proto_has_ports(int proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

static int pol_check(struct segctl *c, const struct pol_opts *o)
{
	bool any_port = o->port.lo == 0 && o->port.hi == 65535;

	if (!any_port && !proto_has_ports(o->proto))
		return segctl_usage(c, "--port needs --proto tcp, udp or sctp");
	return 0;
}

/* The one entry of an any-protocol rule: {P, peer, 0, 0, D, 16}. */
static struct seg_policy_key anyproto_key(const struct pol_opts *o)
{
	return (struct seg_policy_key){
		.policy_id = o->policy, .remote_id = o->peer, .dir = (__u8)o->dir, .port_wild = 16
	};
}

static int pol_after_change(struct segctl *c, struct seg_dp *dp, const struct pol_opts *o)
{
	int n = segctl_endpoints_resync(dp, o->policy, false, true);

	if (n < 0)
		return n;
	out_u64(c->out, OUT_ANY, "policy", NULL, o->policy);
	out_str(c->out, OUT_ANY, "dir", NULL, segctl_dir_names[o->dir]);
	out_u64(c->out, OUT_ANY, "endpoints_updated", NULL, (unsigned)n);
	return 0;
}

static int do_add(void *ctx, void *opts)
{
	struct segctl *c = ctx;
	struct pol_opts *o = opts;
	struct seg_policy_val v = { .rule_id = o->rule,
				    .action = o->deny ? SEG_ACT_DENY : SEG_ACT_ALLOW };
	struct seg_dp *dp;
	int err = pol_check(c, o);

	if (!err)
		err = segctl_dp(c, &dp);
	if (err)
		return err;
	if (o->proto == 0) {
		struct seg_policy_key k = anyproto_key(o);

		err = seg_dp_policy_set(dp, &k, &v);
	} else {
		err = seg_dp_policy_set_range(dp, o->policy, o->peer, (__u8)o->proto, (__u8)o->dir,
					      o->port.lo, o->port.hi, &v);
		err = err > 0 ? 0 : err;
	}
	if (err)
		return err;
	return pol_after_change(c, dp, o);
}

static int do_delete(void *ctx, void *opts)
{
	struct segctl *c = ctx;
	struct pol_opts *o = opts;
	struct seg_dp *dp;
	int err = pol_check(c, o);

	if (!err)
		err = segctl_dp(c, &dp);
	if (err)
		return err;
	if (o->proto == 0) {
		struct seg_policy_key k = anyproto_key(o);

		err = seg_dp_policy_del(dp, &k);
	} else {
		err = seg_dp_policy_del_range(dp, o->policy, o->peer, (__u8)o->proto, (__u8)o->dir,
					      o->port.lo, o->port.hi);
	}
	if (err)
		return err;
	return pol_after_change(c, dp, o);
}

const struct cmd segctl_bpf_policy_cmds[] = {
	CMD_LEAF("list", do_list, list_optv, list_defaults, "list policy entries",
		 .description = "Ranges are listed as the aligned blocks they are stored as."),
	CMD_LEAF(
		"add", do_add, add_optv, pol_defaults, "add an allow or deny entry",
		.description =
			"A port range is stored as its aligned power-of-two blocks (at most 30\n"
			"entries). Afterwards every endpoint using the policy gets its port masks\n"
			"recomputed and its revision bumped, then the data path's generation, so\n"
			"established flows are re-checked.",
		.examples =
			"segctl bpf policy add --policy 7 --dir ingress --peer 300 --proto tcp "
			"--port 8000-8080 --rule 12\n"
			"segctl bpf policy add -p 7 -d egress --peer any --proto udp --port 53\n"
			"segctl bpf policy add -p 7 -d ingress --peer 2 --proto any --deny"),
	CMD_LEAF("delete", do_delete, del_optv, pol_defaults,
		 "delete entries written by the same add",
		 .description = "Give the same --policy/--dir/--peer/--proto/--port as the add."),
	CMD_END,
};
