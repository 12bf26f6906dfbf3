// SPDX-License-Identifier: GPL-2.0-only
/*
 * segctl-grpc.so: the one symbol segctl looks up after dlopen(), and the
 * client and Query calls observe and topology share. The module's other
 * references (printer, log, usage) resolve to segctl's own copies, which
 * segctl exports (--export-dynamic).
 */
#include "grpc_module.h"

__attribute__((visibility("default"))) const struct segctl_grpc_ops segctl_grpc_ops = {
	.abi = SEGCTL_GRPC_ABI,
	.observe_opts_size = sizeof(struct segctl_observe_opts),
	.topology_opts_size = sizeof(struct segctl_topology_opts),
	.observe = segctl_grpc_observe,
	.topology = segctl_grpc_topology,
};

int segctl_grpc_client(const char *server, const struct flow_tls *tls, struct flow_client **fc)
{
	struct flow_client_opts co = { .target = server, .tls = *tls };

	return flow_client_new(fc, &co) ? SEGCTL_EREPORTED : 0;
}

int segctl_grpc_query(struct flow_client *fc, Seg__Flow__V1__QueryRequest__What what,
		      Seg__Flow__V1__Filter *f, uint32_t limit, Seg__Flow__V1__QueryResponse **resp)
{
	Seg__Flow__V1__QueryRequest req = SEG__FLOW__V1__QUERY_REQUEST__INIT;

	req.version = FLOW_PROTO_VERSION;
	req.what = what;
	req.filter = f;
	req.limit = limit;
	return flow_query(fc, &req, resp) ? SEGCTL_EREPORTED : 0;
}
