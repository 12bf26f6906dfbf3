// SPDX-License-Identifier: GPL-2.0-only
/*
 * segctl endpoint|identity|policy list|get: segd's view of the node (what
 * it attached, the identities and policies of its live compiled state).
 * Tables show a few columns; -o json|yaml show everything segd answered.
 */
#include "ctl_segd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const int segctl_noopts_defaults;

static int list_run(struct segctl *c, const char *op, json_t *args, const char *const *cols)
{
	json_t *res = NULL;
	int err = segctl_segd_call(c, op, args, &res);

	json_decref(args);
	if (err)
		return err;
	segctl_segd_print(c, res, cols);
	json_decref(res);
	return 0;
}

/* ---- endpoint ------------------------------------------------------------------------ */

static const char *const endpoint_cols[] = {
	"pod",	   "ifkey", "interface", "style", "identity", "ingress.isolated", "egress.isolated",
	"in_maps", NULL,
};

static int endpoint_list(void *ctx, void *opts)
{
	return list_run(ctx, "endpoint-list", NULL, endpoint_cols);
}

struct endpoint_get_opts {
	const char *pod;
};
static const struct endpoint_get_opts endpoint_get_defaults;
static const struct opt endpoint_get_optv[] = {
	OPT_STR(0, "pod", struct endpoint_get_opts, pod, "NS/NAME", "the pod", .positional = true,
		.required = true),
	OPT_END,
};

static int endpoint_get(void *ctx, void *opts)
{
	struct endpoint_get_opts *o = opts;

	return list_run(ctx, "endpoint-get", json_pack("{s:s}", "pod", o->pod), NULL);
}

const struct cmd segctl_endpoint_cmds[] = {
	CMD_LEAF("list", endpoint_list, NULL, segctl_noopts_defaults,
		 "pod interfaces segd attached to, with their endpoint in the maps"),
	CMD_LEAF("get", endpoint_get, endpoint_get_optv, endpoint_get_defaults,
		 "one pod's endpoint", .examples = "segctl endpoint get default/web"),
	CMD_END,
};

/* ---- identity ------------------------------------------------------------------------ */

static const char *const identity_cols[] = { "id", "namespace", "key", NULL };

static int identity_list(void *ctx, void *opts)
{
	return list_run(ctx, "identity-list", NULL, identity_cols);
}

struct identity_get_opts {
	uint32_t id;
};
static const struct identity_get_opts identity_get_defaults;
static const struct opt identity_get_optv[] = {
	OPT_U32(0, "id", struct identity_get_opts, id, "ID", "identity number", .positional = true,
		.required = true),
	OPT_END,
};

static int identity_get(void *ctx, void *opts)
{
	struct identity_get_opts *o = opts;

	return list_run(ctx, "identity-get", json_pack("{s:i}", "id", (json_int_t)o->id), NULL);
}

const struct cmd segctl_identity_cmds[] = {
	CMD_LEAF("list", identity_list, NULL, segctl_noopts_defaults,
		 "identities of segd's compiled state (labels -> number)"),
	CMD_LEAF("get", identity_get, identity_get_optv, identity_get_defaults, "one identity",
		 .examples = "segctl identity get 256"),
	CMD_END,
};

/* ---- policy list|get (the `policy` group is in policy_test.c) --------------------------- */

static const char *const policy_cols[] = {
	"namespace", "name", "types", "ingress_rules", "egress_rules", "endpoints", "source", NULL,
};

int segctl_policy_list_run(void *ctx, void *opts)
{
	return list_run(ctx, "policy-list", NULL, policy_cols);
}

const struct segctl_policy_get_opts segctl_policy_get_defaults;
const struct opt segctl_policy_get_optv[] = {
	OPT_STR(0, "name", struct segctl_policy_get_opts, name, "NS/NAME", "the NetworkPolicy",
		.positional = true, .required = true),
	OPT_END,
};

int segctl_policy_get_run(void *ctx, void *opts)
{
	struct segctl_policy_get_opts *o = opts;
	const char *slash = strchr(o->name, '/');
	char ns[256];

	if (!slash || slash == o->name || !slash[1] || (size_t)(slash - o->name) >= sizeof(ns))
		return segctl_usage(ctx, "want NAMESPACE/NAME, got '%s'", o->name);
	snprintf(ns, sizeof(ns), "%.*s", (int)(slash - o->name), o->name);
	return list_run(ctx, "policy-get",
			json_pack("{s:s, s:s}", "namespace", ns, "name", slash + 1), NULL);
}
