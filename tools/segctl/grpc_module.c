// SPDX-License-Identifier: GPL-2.0-only
/*
 * segctl-grpc.so: the one symbol segctl looks up after dlopen(). The
 * module's other references (printer, log, usage) resolve to segctl's own
 * copies, which segctl exports (--export-dynamic).
 */
#include "grpc_module.h"

__attribute__((visibility("default"))) const struct segctl_grpc_ops segctl_grpc_ops = {
	.abi = SEGCTL_GRPC_ABI,
	.observe_opts_size = sizeof(struct segctl_observe_opts),
	.topology_opts_size = sizeof(struct segctl_topology_opts),
	.observe = segctl_grpc_observe,
	.topology = segctl_grpc_topology,
};
