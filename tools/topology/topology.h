/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * seg-topology: collects flow records from many nodes (gRPC Export),
 * aggregates them into a service graph, serves it over gRPC (Query,
 * Watch), JSON, DOT and a web page.
 *
 *   graph.c   the store: workloads, edges (bounded, LRU eviction), the
 *             ring of recent flows (bounded), per-node dedupe of batches,
 *             windows and filters
 *   rpc.c     the gRPC server: one completion-queue thread, every call a
 *             small state machine, so no stream blocks another
 *   render.c  JSON, DOT, SVG (libgvc) and the HTML page
 *   http.c    libmicrohttpd routes
 *   main.c    options, threads, signals
 *
 * Counting rule (docs/flows.md): every record goes to the flow table; an
 * edge counts each connection once: a connection that passed is counted
 * from the destination's ingress record, or from the source's egress
 * record when the destination is no workload; drops are counted where
 * they happened.
 */
#ifndef SEG_TOPOLOGY_H
#define SEG_TOPOLOGY_H

#include "flow.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define TOPO_WL_NONE 0 /* world / host / unknown */

struct topo_wl {
	char *ns, *name;
	char **labels; /* "k=v" */
	uint32_t n_labels;
	uint32_t identity;
	uint32_t node; /* string id, 0 = unknown */
};

struct topo_edge {
	uint32_t src, dst; /* workload ids */
	uint16_t port;
	uint8_t proto;
	uint8_t used;
	uint64_t allowed, denied, audit, bytes, packets;
	uint64_t first_ns, last_ns;
	uint32_t hnext, lru_prev, lru_next; /* index + 1, 0 = none */
};

struct topo_flow {
	uint64_t time_ns, first_ns, last_ns;
	uint64_t packets_fwd, bytes_fwd, packets_rev, bytes_rev;
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	uint8_t proto, verdict, kind, dir, reason, addr_len, flags_fwd, flags_rev;
	uint32_t src_wl, dst_wl, src_id, dst_id, rule_id;
	uint32_t node, policy, rule; /* string ids */
	uint32_t suppressed;
};

struct topo_filter {
	const char *ns; /* either end in it */
	const char *pod; /* "ns/name": either end */
	int verdict; /* 0 = any */
	uint64_t since_ns; /* 0 = all */
	const char *node;
};

struct topo_stats {
	uint64_t batches, records, duplicates, rejected, dropped_by_senders;
	uint64_t evicted_edges, evicted_flows, workloads_over_cap;
	uint64_t edges, flows, workloads;
};

struct topo_limits {
	uint32_t max_edges; /* default 100000 */
	uint32_t max_flows; /* ring, default 100000 */
	uint32_t max_workloads; /* default 65536 */
};

struct topo;
/* NULL on allocation failure. */
struct topo *topo_new(const struct topo_limits *l);
void topo_free(struct topo *t);
void topo_lock(struct topo *t);
void topo_unlock(struct topo *t);

/* Applies one batch, records in either form (Flow messages and/or
 * columns) (locks). 1 applied, 0 duplicate (already applied: skipped),
 * -ERANGE out of order (seq > last + 1 of the same session: the sender
 * must resend from last + 1), -EINVAL columns that do not fit
 * (flow_cols_check: refused before its seq counts), -ENOMEM. *last_seq:
 * highest seq applied for the node's session. */
int topo_apply(struct topo *t, const FlowBatch *b, uint64_t *last_seq);
void topo_count_rejected(struct topo *t);
void topo_get_stats(struct topo *t, struct topo_stats *st); /* locks */

/* ---- reading; callers hold the lock -------------------------------------- */
const struct topo_wl *topo_wl(const struct topo *t, uint32_t id); /* NULL for 0 */
uint32_t topo_n_wls(const struct topo *t); /* ids 1..n */
const char *topo_str(const struct topo *t, uint32_t id); /* "" for 0 */
bool topo_flow_match(const struct topo *t, const struct topo_flow *f,
		     const struct topo_filter *flt);
/* Most recent flows matching, newest last; at most limit (0 = all). */
size_t topo_flows(const struct topo *t, const struct topo_filter *flt, size_t limit,
		  const struct topo_flow **out);

/* Edges matching the filter over a window (0 = all time: the edge table;
 * else from the flow ring). Returns the count; *edges malloc'd (caller
 * frees); *complete false when the ring no longer holds the whole window.
 * -ENOMEM. */
long topo_graph(struct topo *t, const struct topo_filter *flt, uint64_t window_ns,
		struct topo_edge **edges, bool *complete);

/* Copies records/workloads into a message builder (Query, Watch backlog). */
int topo_flows_to_batch(const struct topo *t, const struct topo_flow *const *f, size_t n,
			struct flow_batch *b);
/* Workload id -> index + 1 in the builder's dictionary (0 stays 0). */
int topo_wl_to_batch(const struct topo *t, uint32_t id, struct flow_batch *b);

/* Does a record as sent match a filter? (Watch, before it is stored.) */
bool topo_msg_match(const FlowBatch *b, const FlowRec *r, const struct topo_filter *flt);

/* ---- rendering (render.c); callers hold the lock ---------------------------- */
struct topo_view {
	struct topo_filter flt;
	uint64_t window_ns; /* 0 = all */
	const char *window_name; /* "5m", "1h", "all" */
	const char *verdict_name; /* "", "allow", ... */
	size_t limit; /* flows in the table */
	void *gvc; /* GVC_t: one per process (Graphviz 2.42 keeps a font cache
		    * across contexts: a context per request reads freed memory) */
};
/* Each returns a malloc'd NUL-terminated string, or NULL (-ENOMEM). */
char *topo_render_dot(struct topo *t, const struct topo_view *v);
char *topo_render_graph_json(struct topo *t, const struct topo_view *v);
char *topo_render_flows_json(struct topo *t, const struct topo_view *v);
/* SVG of the DOT (libgvc; not thread-safe: one HTTP thread calls it). */
char *topo_render_svg(void *gvc, const char *dot, size_t *len);
char *topo_render_page(struct topo *t, const struct topo_view *v, bool fragment);
/* Parses ?namespace=&verdict=&window=&pod=&node=&limit= values. 0 or -EINVAL. */
int topo_view_parse(struct topo_view *v, const char *ns, const char *verdict, const char *window,
		    const char *pod, const char *node, const char *limit);

/* ---- gRPC (rpc.c) ---------------------------------------------------------- */
struct topo_rpc;
struct topo_rpc_opts {
	const char *addr;
	struct flow_tls tls;
	uint32_t watch_queue; /* records queued per watcher before drops; 0 = 65536 */
	bool no_columns; /* do not announce FLOW_FEATURE_COLUMNS (act as an older service) */
};
int topo_rpc_start(struct topo_rpc **r, struct topo *t, const struct topo_rpc_opts *o);
void topo_rpc_stop(struct topo_rpc *r); /* NULL-safe */
int topo_rpc_port(const struct topo_rpc *r); /* bound port */

/* ---- HTTP (http.c) ---------------------------------------------------------- */
struct topo_http;
int topo_http_start(struct topo_http **h, struct topo *t, const char *addr);
int topo_http_port(const struct topo_http *h);
void topo_http_stop(struct topo_http *h);

#endif
