// SPDX-License-Identifier: GPL-2.0-only
/*
 * segctl observe: its options, and the choice between segd on this node
 * (observe_local.c) and the topology service (--server: grpc_observe.c, in
 * the gRPC module). Both print with the same segctl_flow_print().
 */
#include "flow_cmds.h"

static const char *const verdict_names[] = { "any", "allow", "deny", "audit", NULL };

const struct segctl_observe_opts segctl_observe_defaults = { .last = 100 };
const struct opt segctl_observe_optv[] = {
	OPT_STR(0, "server", struct segctl_observe_opts, server, "ADDR",
		"the topology service (host:port)", .defstr = "segd on this node (--socket)"),
	OPT_BOOL('f', "follow", struct segctl_observe_opts, follow,
		 "keep printing new flows as they arrive"),
	OPT_STR('n', "namespace", struct segctl_observe_opts, ns, "NS", "either end in NS"),
	OPT_STR(0, "pod", struct segctl_observe_opts, pod, "NS/POD", "either end is this pod"),
	OPT_ENUM(0, "verdict", struct segctl_observe_opts, verdict, verdict_names,
		 "only this verdict"),
	OPT_STR(0, "since", struct segctl_observe_opts, since, "DURATION",
		"flows of the last DURATION (30s, 5m, 1h); with --follow, printed first"),
	OPT_U32(0, "last", struct segctl_observe_opts, last, "N",
		"without --follow: the N most recent flows", .min = 1, .max = 100000),
	OPT_STR(0, "tls-ca", struct segctl_observe_opts, tls.ca_file, "PEM",
		"TLS: CA of the service's certificate", .defstr = "insecure"),
	OPT_STR(0, "tls-cert", struct segctl_observe_opts, tls.cert_file, "PEM",
		"TLS: client certificate (if the service asks for one)"),
	OPT_STR(0, "tls-key", struct segctl_observe_opts, tls.key_file, "PEM", "TLS: client key"),
	OPT_END,
};

int segctl_observe_run(void *ctx, void *opts)
{
	const struct segctl_observe_opts *o = opts;
	const struct segctl_grpc_ops *ops;
	struct segctl *c = ctx;

	if (!o->server)
		return segctl_observe_local(c, o);
	if (segctl_grpc_load(&ops))
		return SEGCTL_EREPORTED;
	return ops->observe(c, o);
}
