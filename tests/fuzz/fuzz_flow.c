// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target: what the network can send the topology service
 * (tools/topology): protobuf messages (proto/seg_flow.proto) unpacked the
 * way rpc.c unpacks them, batches applied to a small graph store (limits
 * of 8, so eviction runs), then read back the way Query, Watch and the
 * HTTP pages read it (flows, graph, JSON, DOT).
 *
 * Input: records of [type][len: 2 bytes, big endian][len bytes];
 * type % 3: 0 Batch (Export), 1 QueryRequest, 2 WatchRequest.
 * Invariants: no crash, leak or UB; topo_apply returns 1, 0 or -ERANGE
 * (-ENOMEM aside), -EINVAL exactly when flow_batch_check() refuses the
 * batch's columns; the stats never count more edges, flows or workloads
 * than the limits allow; renders are NUL-terminated strings. Columns that
 * pass the check are read the way Watch reads them (expanded to Flow
 * messages: one per record) and encoded again: what the encoder makes
 * always passes the check, with the same record count.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topology.h"

#define FZ_LIMIT 8

static void check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_flow: invariant broken: %s\n", what);
		abort();
	}
}

static void fz_filter(const Seg__Flow__V1__Filter *f, struct topo_filter *flt)
{
	memset(flt, 0, sizeof(*flt));
	if (!f)
		return;
	flt->ns = *f->namespace_ ? f->namespace_ : NULL;
	flt->pod = *f->pod ? f->pod : NULL;
	flt->node = *f->node ? f->node : NULL;
	flt->verdict = f->verdict;
	flt->since_ns = f->since_ns;
}

/* Query: flows into a message builder, or the graph, and the renders. */
static void fz_read(struct topo *t, const struct topo_filter *flt, uint32_t limit, bool graph)
{
	struct topo_view v = { .flt = *flt, .window_ns = limit % 2 ? 300000000000ull : 0 };
	const struct topo_flow *fv[FZ_LIMIT + 1];
	struct flow_batch *fb = flow_batch_new("", 0);
	struct topo_edge *edges = NULL;
	bool complete;
	size_t n;
	char *s;

	check(fb != NULL, "flow_batch_new");
	topo_lock(t);
	n = topo_flows(t, flt, limit % (FZ_LIMIT + 1), fv);
	check(n <= FZ_LIMIT, "topo_flows within the ring");
	if (topo_flows_to_batch(t, fv, n, fb) == 0)
		check(flow_batch_msg(fb, 0, 0) != NULL, "a batch message");
	if (graph) {
		long ne = topo_graph(t, flt, v.window_ns, &edges, &complete);

		check(ne >= 0 && ne <= FZ_LIMIT * 2, "topo_graph count");
		free(edges);
		s = topo_render_graph_json(t, &v);
		free(s);
		s = topo_render_dot(t, &v);
		free(s);
	} else {
		s = topo_render_flows_json(t, &v);
		free(s);
	}
	topo_unlock(t);
	flow_batch_free(fb);
}

/* Checked columns: expanded (Watch), re-encoded, checked again. */
static void fz_columns(const FlowBatch *b)
{
	struct flow_batch *v1 = flow_batch_new(b->node, b->session);
	struct flow_cols *c = flow_cols_new(b->node, b->session);
	const FlowBatch *m;
	FlowBatch *u;
	uint8_t *buf;
	size_t len;

	check(v1 && c, "allocations");
	for (size_t i = 0; i < b->columns->count; i++) {
		FlowRec r;

		flow_cols_rec(b->columns, i, &r);
		check(r.src_workload <= b->columns->n_wl_namespace, "workload ref in range");
	}
	if (flow_batch_add_cols(v1, b->columns) == 0) {
		m = flow_batch_msg(v1, b->seq, b->dropped);
		check(m && m->n_flows == b->columns->count, "one Flow per columnar record");
		if (flow_cols_add_flows(c, m) == 0) {
			m = flow_cols_msg(c, b->seq, b->dropped);
			check(m != NULL, "a columnar message");
			len = protobuf_c_message_get_packed_size(&m->base);
			buf = malloc(len ?: 1);
			check(buf != NULL, "allocation");
			protobuf_c_message_pack(&m->base, buf);
			u = seg__flow__v1__batch__unpack(NULL, len, buf);
			check(u != NULL, "the encoder's bytes unpack");
			check(flow_batch_check(u) == 0, "the encoder's columns pass the check");
			check(flow_batch_count(u) == b->columns->count, "same record count");
			seg__flow__v1__batch__free_unpacked(u, NULL);
			free(buf);
		}
	}
	flow_cols_free(c);
	flow_batch_free(v1);
}

static void fz_batch(struct topo *t, struct flow_arena *a, const uint8_t *d, size_t len,
		     FlowBatch **last)
{
	FlowBatch *b;
	uint64_t seq;
	int res, ok;

	flow_arena_reset(a);
	*last = NULL;
	b = seg__flow__v1__batch__unpack(flow_arena_allocator(a), len, d);
	if (!b) {
		topo_count_rejected(t);
		return;
	}
	ok = flow_batch_check(b);
	res = topo_apply(t, b, &seq);
	check(res == 1 || res == 0 || res == -ERANGE || res == -ENOMEM || res == -EINVAL,
	      "topo_apply result");
	check((res == -EINVAL) == (ok != 0), "-EINVAL exactly for columns that do not fit");
	if (ok == 0 && b->columns)
		fz_columns(b);
	for (size_t i = 0; i < b->n_flows; i++) {
		struct topo_filter flt = { .verdict = (int)(i % 4) };

		topo_msg_match(b, b->flows[i], &flt);
	}
	*last = b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct topo_limits l = { FZ_LIMIT, FZ_LIMIT, FZ_LIMIT };
	struct topo *t = topo_new(&l);
	struct flow_arena *a = flow_arena_new(4096);
	FlowBatch *last = NULL;
	struct topo_stats st;
	size_t off = 0;

	check(t && a, "allocations");
	while (off + 3 <= size) {
		uint8_t type = data[off] % 3;
		size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
		struct topo_filter flt;

		off += 3;
		if (len > size - off)
			len = size - off;
		if (type == 0) {
			fz_batch(t, a, data + off, len, &last);
		} else if (type == 1) {
			Seg__Flow__V1__QueryRequest *q =
				seg__flow__v1__query_request__unpack(NULL, len, data + off);

			if (q) {
				fz_filter(q->filter, &flt);
				fz_read(t, &flt, q->limit,
					q->what == SEG__FLOW__V1__QUERY_REQUEST__WHAT__WHAT_GRAPH);
				seg__flow__v1__query_request__free_unpacked(q, NULL);
			}
		} else {
			Seg__Flow__V1__WatchRequest *w =
				seg__flow__v1__watch_request__unpack(NULL, len, data + off);

			if (w) {
				fz_filter(w->filter, &flt);
				for (size_t i = 0; last && i < last->n_flows; i++)
					topo_msg_match(last, last->flows[i], &flt);
				seg__flow__v1__watch_request__free_unpacked(w, NULL);
			}
		}
		off += len;
	}
	topo_get_stats(t, &st);
	check(st.edges <= FZ_LIMIT && st.flows <= FZ_LIMIT && st.workloads <= FZ_LIMIT,
	      "the store stays within its limits");
	flow_arena_free(a);
	topo_free(t);
	return 0;
}
