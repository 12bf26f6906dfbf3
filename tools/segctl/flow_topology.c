// SPDX-License-Identifier: GPL-2.0-only
/*
 * segctl topology: its options; the query and the printing are in the gRPC
 * module (grpc_topology.c). -o dot (or --dot) prints Graphviz DOT.
 */
#include "flow_cmds.h"

static const char *const verdict_names[] = { "any", "allow", "deny", "audit", NULL };

const struct segctl_topology_opts segctl_topology_defaults = { .server = FLOW_DEFAULT_GRPC };
const struct opt segctl_topology_optv[] = {
	OPT_STR(0, "server", struct segctl_topology_opts, server, "ADDR",
		"the topology service (host:port)"),
	OPT_BOOL(0, "dot", struct segctl_topology_opts, dot, "the same as -o dot"),
	OPT_STR('n', "namespace", struct segctl_topology_opts, ns, "NS", "edges with an end in NS"),
	OPT_ENUM(0, "verdict", struct segctl_topology_opts, verdict, verdict_names,
		 "edges that saw this verdict"),
	OPT_STR(0, "tls-ca", struct segctl_topology_opts, tls.ca_file, "PEM",
		"TLS: CA of the service's certificate", .defstr = "insecure"),
	OPT_STR(0, "tls-cert", struct segctl_topology_opts, tls.cert_file, "PEM",
		"TLS: client certificate (if the service asks for one)"),
	OPT_STR(0, "tls-key", struct segctl_topology_opts, tls.key_file, "PEM", "TLS: client key"),
	OPT_END,
};

int segctl_topology_run(void *ctx, void *opts)
{
	struct segctl_topology_opts o = *(const struct segctl_topology_opts *)opts;
	const struct segctl_grpc_ops *ops;
	struct segctl *c = ctx;

	o.dot = o.dot || c->g.output == SEGCTL_OUTPUT_DOT;
	if (segctl_grpc_load(&ops))
		return SEGCTL_EREPORTED;
	return ops->topology(c, &o);
}
