/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * lib/flow internals shared by the two batch builders (codec.c: records as
 * Flow messages, cols.c: Batch.columns); not for users of flow.h.
 */
#ifndef SEG_FLOW_INTERNAL_H
#define SEG_FLOW_INTERNAL_H

#include "flow.h"

/* The Batch header both builders start from: version, node, session.
 * node is copied into *node_copy (the builder frees it), NULL taken as "".
 * 0 or -ENOMEM (then *node_copy is NULL). */
int flow_batch_msg_init(FlowBatch *msg, char **node_copy, const char *node, uint64_t session);

#endif
