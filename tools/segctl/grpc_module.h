/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Inside segctl-grpc.so: the gRPC halves of observe and topology, exported
 * to segctl through one struct segctl_grpc_ops (grpc_module.c).
 */
#ifndef SEGCTL_GRPC_MODULE_H
#define SEGCTL_GRPC_MODULE_H

#include "flow_cmds.h"

int segctl_grpc_observe(struct segctl *c, const struct segctl_observe_opts *o);
int segctl_grpc_topology(struct segctl *c, const struct segctl_topology_opts *o);

/* grpc_module.c, for both. A client of the service at server: 0, or
 * SEGCTL_EREPORTED (lib/flow said why); flow_client_free() it. */
int segctl_grpc_client(const char *server, const struct flow_tls *tls, struct flow_client **fc);
/* One Query of what under filter f (limit 0: the service's default): 0, or
 * SEGCTL_EREPORTED; flow_msg_free() *resp. */
int segctl_grpc_query(struct flow_client *fc, Seg__Flow__V1__QueryRequest__What what,
		      Seg__Flow__V1__Filter *f, uint32_t limit,
		      Seg__Flow__V1__QueryResponse **resp);

#endif
