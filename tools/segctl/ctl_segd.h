/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * segctl commands that talk to segd over its control socket (lib/ctl):
 * --socket PATH, else $SEG_SOCKET, else /run/seg/segd.sock.
 *
 *   ctl_segd.c     the call, JSON -> printer, status, apply -f, delete -f
 *   ctl_objects.c  endpoint, identity, policy list|get
 */
#ifndef SEGCTL_CTL_SEGD_H
#define SEGCTL_CTL_SEGD_H

#include "segctl.h"

#include <jansson.h>

/* One request to segd. 0 with *result (new ref), or SEGCTL_EREPORTED after
 * printing segd's message (or why it could not be reached) through c->out. */
int segctl_segd_call(struct segctl *c, const char *op, json_t *args, json_t **result);

/* Prints a JSON value through the printer: everything in JSON/YAML; in
 * table mode a list shows only cols (dotted paths into each row, e.g.
 * "ingress.isolated"; NULL-terminated; NULL = every scalar). */
void segctl_segd_print(struct segctl *c, json_t *v, const char *const *cols);

/* For `segctl policy test` without -f: probes [{from, to, port, protocol}]
 * decided by segd on its live state; *result is the array
 * [{from, to, port, protocol, verdict, reason, egress, ingress}], the shape
 * of `segctl policy test -o json` plus per-direction details. */
int segctl_segd_policy_test(struct segctl *c, json_t *probes, json_t **result);

/* `segctl policy test` without -f: --probe specs, a --probes file and/or
 * --matrix PORT/PROTO sent to segd; prints the list like policy test does. */
int segctl_segd_policy_test_run(struct segctl *c, const struct opt_strv *probe,
				const char *probes_file, const char *matrix, bool datapath);

extern const struct cmd segctl_endpoint_cmds[];
extern const struct cmd segctl_identity_cmds[];
extern const struct cmd segctl_map_cmds[]; /* ctl_map.c: raw dump of a pinned map */

/* Leaves of `segctl policy` that ask segd (the group lives in
 * policy_test.c): put SEGCTL_POLICY_SEGD_CMDS in its table. */
struct segctl_policy_get_opts {
	const char *name;
};
extern const struct opt segctl_policy_get_optv[];
extern const struct segctl_policy_get_opts segctl_policy_get_defaults;
extern const int segctl_noopts_defaults;
int segctl_policy_list_run(void *ctx, void *opts);
int segctl_policy_get_run(void *ctx, void *opts);
/* clang-format off */
#define SEGCTL_POLICY_SEGD_CMDS                                                                \
	CMD_LEAF("list", segctl_policy_list_run, NULL, segctl_noopts_defaults,                 \
		 "NetworkPolicies segd enforces (asks segd)"),                                 \
	CMD_LEAF("get", segctl_policy_get_run, segctl_policy_get_optv,                         \
		 segctl_policy_get_defaults, "one NetworkPolicy: rules and selected pods (asks segd)")
/* clang-format on */

/* Top-level leaves. */
struct segctl_apply_opts {
	struct opt_strv files;
};
extern const struct opt segctl_apply_optv[];
extern const struct segctl_apply_opts segctl_apply_defaults;
int segctl_status_run(void *ctx, void *opts);
int segctl_apply_run(void *ctx, void *opts);
int segctl_delete_run(void *ctx, void *opts);

#endif
