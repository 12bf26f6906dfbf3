/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * segctl observe / topology: flows from the topology service (gRPC Query
 * and Watch, lib/flow) or, for observe without --server, from segd.
 * flow_print.c holds the one flow printer for both.
 *
 * gRPC (its C core, abseil, re2, OpenSSL: ~60 shared libraries) is loaded
 * only by the commands that talk to the service: their gRPC halves live in
 * the module segctl-grpc.so (grpc_observe.c, grpc_topology.c), opened with
 * dlopen() on first use (grpc_load.c). segctl itself is linked with
 * --export-dynamic, so the module calls back into its printer and log.
 */
#ifndef SEGCTL_FLOW_CMDS_H
#define SEGCTL_FLOW_CMDS_H

#include "segctl.h"
#include "flow.h"

/* One flow record as a row/object: workloads resolved in the dictionary
 * the record came with. */
void segctl_flow_print(struct out *o, FlowWorkload *const *wl, size_t n_wl, const char *node,
		       const FlowRec *r);

struct segctl_observe_opts {
	const char *server;
	bool follow;
	const char *ns;
	const char *pod;
	int verdict; /* index in segctl_flow_verdict_names: 0 = any */
	const char *since;
	uint32_t last;
	struct flow_tls tls;
};
extern const struct opt segctl_observe_optv[];
extern const struct segctl_observe_opts segctl_observe_defaults;
int segctl_observe_run(void *ctx, void *opts);
/* observe_local.c: the same from segd (control op flow-list). */
int segctl_observe_local(struct segctl *c, const struct segctl_observe_opts *o);

struct segctl_topology_opts {
	const char *server;
	bool dot;
	const char *ns;
	int verdict;
	struct flow_tls tls;
};
extern const struct opt segctl_topology_optv[];
extern const struct segctl_topology_opts segctl_topology_defaults;
int segctl_topology_run(void *ctx, void *opts);

/* ---- the gRPC module -------------------------------------------------------- */
#define SEGCTL_GRPC_MODULE "segctl-grpc.so"
#define SEGCTL_GRPC_OPS_SYM "segctl_grpc_ops"
/* Bumped when this struct or the option structs above change. */
#define SEGCTL_GRPC_ABI 1

struct segctl_grpc_ops {
	uint32_t abi; /* SEGCTL_GRPC_ABI */
	uint32_t observe_opts_size; /* sizeof(struct segctl_observe_opts) */
	uint32_t topology_opts_size;
	int (*observe)(struct segctl *c, const struct segctl_observe_opts *o);
	int (*topology)(struct segctl *c, const struct segctl_topology_opts *o);
};

/* grpc_load.c: opens the module (next to the segctl binary, then in
 * SEGCTL_MODULE_DIR) once; logs what it tried and returns -errno. */
int segctl_grpc_load(const struct segctl_grpc_ops **ops);

#endif
