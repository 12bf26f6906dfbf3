/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * segctl observe / topology: flows from the topology service (gRPC Query
 * and Watch, lib/flow). flow_print.c holds the one flow printer, shared
 * with the local mode of observe (from segd) when it lands.
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

#endif
