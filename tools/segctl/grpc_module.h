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

#endif
