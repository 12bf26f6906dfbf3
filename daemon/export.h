/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * segd's flow recorder and exporter (docs/flows.md, "Exporter").
 *
 * On segd's loop (never blocking): the ring buffer's epoll fd is a loop
 * source (NEW/DENY/REVOKED events), a timer walks conntrack (UPDATE deltas,
 * END once per flow). Each record is resolved against the compiled state
 * (workloads by address, rule -> policy) into an immutable, reference
 * counted snapshot, so records are fixed-size structs: no allocation per
 * event. Records go to
 *   - a ring of recent flows, read by the `flow-list` control op
 *     (`segctl observe` without --server);
 *   - with --export, a bounded queue consumed by the exporter thread, which
 *     batches, streams to seg-topology with lib/flow, keeps every batch not
 *     acknowledged in the spool (a bounded file; memory-backed without
 *     --export-spool) and resends it after a failure, in order.
 * Records lost (queue full, spool full) are counted exactly and sent in the
 * next batch's `dropped`.
 */
#ifndef SEGD_EXPORT_H
#define SEGD_EXPORT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

struct segd;
struct segd_export;

/* Opens the ring buffer and the conntrack timer on d->loop; starts the
 * exporter thread when d->o.export_addr is set. */
int segd_export_start(struct segd *d, struct segd_export **out);
/* Flushes what is queued (bounded wait), stops the thread. NULL-safe. */
void segd_export_stop(struct segd_export *x);

/* `segctl status` .exporter */
json_t *segd_export_status_json(struct segd_export *x);
/* Prometheus lines (seg_export_*). */
void segd_export_metrics(struct segd_export *x, FILE *f);
/* Control op flow-list: {after, limit, namespace, pod, verdict, since_ns}
 * -> {next, dropped, flows: [...]} (shape read by segctl observe). */
int segd_export_flow_list(struct segd_export *x, json_t *args, json_t **res, char *err,
			  size_t errlen);

#endif
