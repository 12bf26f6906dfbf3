// SPDX-License-Identifier: GPL-2.0-only
/*
 * tests/topology t_codec: lib/flow's codec and seg-topology's store, no
 * network: the batch builder, pack/unpack, unknown fields (newer senders),
 * exactly-once by (node, session, seq) across sessions, the counting rule,
 * LRU eviction, durations.
 */
#include "flow.h"
#include "log.h"
#include "topology.h"

#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/slice.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define V(x) SEG__FLOW__V1__VERDICT__VERDICT_##x
#define DIR_IN SEG__FLOW__V1__DIRECTION__DIRECTION_INGRESS
#define DIR_EG SEG__FLOW__V1__DIRECTION__DIRECTION_EGRESS

static void add(struct flow_batch *b, const char *src, const char *dst, uint16_t port, int verdict,
		int dir)
{
	static const char *const labels[] = { "app=x", "tier=web" };
	uint8_t a[4] = { 10, 0, 0, 1 };
	FlowRec r = SEG__FLOW__V1__FLOW__INIT;
	int s = src ? flow_batch_workload(b, "ns", src, 300, labels, 2) : 0;
	int d = dst ? flow_batch_workload(b, "ns", dst, 301, labels, 1) : 0;

	assert_true(s >= 0 && d >= 0);
	r.src_addr = (ProtobufCBinaryData){ 4, a };
	r.dst_addr = (ProtobufCBinaryData){ 4, a };
	r.src_workload = s;
	r.dst_workload = d;
	r.dst_port = port;
	r.proto = 6;
	r.verdict = verdict;
	r.direction = dir;
	r.kind = verdict == V(DENY) ? 2 : 1;
	r.bytes_fwd = 10;
	r.time_ns = flow_now_ns();
	r.policy = (char *)"ns/p";
	assert_int_equal(flow_batch_add(b, &r), 0);
}

static void test_builder_roundtrip(void **state)
{
	struct flow_batch *b = flow_batch_new("node-1", 42);
	const FlowBatch *m;
	grpc_byte_buffer *bb;
	FlowBatch *u;

	add(b, "a", "b", 80, V(ALLOW), DIR_IN);
	add(b, "a", "b", 81, V(DENY), DIR_EG);
	add(b, "b", NULL, 443, V(ALLOW), DIR_EG);
	assert_int_equal(flow_batch_len(b), 3);
	m = flow_batch_msg(b, 7, 3);
	assert_int_equal(m->n_workloads, 2); /* interned */
	bb = flow_pack(&m->base);
	assert_non_null(bb);
	u = (void *)flow_unpack(&seg__flow__v1__batch__descriptor, bb, NULL);
	grpc_byte_buffer_destroy(bb);
	assert_non_null(u);
	assert_int_equal(u->version, FLOW_PROTO_VERSION);
	assert_string_equal(u->node, "node-1");
	assert_int_equal(u->session, 42);
	assert_int_equal(u->seq, 7);
	assert_int_equal(u->dropped, 3);
	assert_int_equal(u->n_flows, 3);
	assert_int_equal(u->flows[1]->dst_port, 81);
	assert_int_equal(u->flows[1]->verdict, V(DENY));
	assert_string_equal(u->flows[0]->policy, "ns/p");
	assert_int_equal(u->flows[2]->dst_workload, 0);
	assert_string_equal(u->workloads[u->flows[0]->src_workload - 1]->name, "a");
	assert_int_equal(u->workloads[0]->n_labels, 2);
	assert_string_equal(u->workloads[0]->labels[1]->key, "tier");
	assert_string_equal(u->workloads[0]->labels[1]->value, "web");
	flow_msg_free(u);
	/* reset: a new batch, nothing left over */
	flow_batch_reset(b);
	m = flow_batch_msg(b, 8, 0);
	assert_int_equal(m->n_flows, 0);
	assert_int_equal(m->n_workloads, 0);
	flow_batch_free(b);
}

/* A newer sender's fields (unknown numbers) are kept aside: the old
 * receiver reads the rest. */
static void test_unknown_fields(void **state)
{
	struct flow_batch *b = flow_batch_new("node-new", 1);
	const FlowBatch *m;
	uint8_t buf[4096], *p;
	size_t len;
	FlowBatch *u;

	add(b, "a", "b", 80, V(ALLOW), DIR_IN);
	m = flow_batch_msg(b, 1, 0);
	len = protobuf_c_message_pack(&m->base, buf);
	p = buf + len;
	/* field 100, varint 5; field 101, length-delimited "future" (tags as
	 * varints: 100 << 3 = 0x320 -> a0 06, 101 << 3 | 2 = 0x32a -> aa 06) */
	*p++ = 0xa0, *p++ = 0x06, *p++ = 5;
	*p++ = 0xaa, *p++ = 0x06, *p++ = 6;
	memcpy(p, "future", 6);
	p += 6;
	u = (void *)protobuf_c_message_unpack(&seg__flow__v1__batch__descriptor, NULL, p - buf,
					      buf);
	assert_non_null(u);
	assert_int_equal(u->n_flows, 1);
	assert_int_equal(u->flows[0]->dst_port, 80);
	assert_int_equal(u->base.n_unknown_fields, 2);
	flow_msg_free(u);
	/* truncated bytes are refused */
	assert_null(
		protobuf_c_message_unpack(&seg__flow__v1__batch__descriptor, NULL, len - 3, buf));
	flow_batch_free(b);
}

static struct topo_stats stats(struct topo *t)
{
	struct topo_stats st;

	topo_get_stats(t, &st);
	return st;
}

/* Each (node, session, seq) applies once, in order, across sessions. */
static void test_exactly_once(void **state)
{
	struct topo *t = topo_new(NULL);
	struct flow_batch *s1 = flow_batch_new("n", 0x51), *s2 = flow_batch_new("n", 0x52);
	uint64_t last;

	add(s1, "a", "b", 80, V(ALLOW), DIR_IN);
	add(s2, "a", "b", 80, V(ALLOW), DIR_IN);
	assert_int_equal(topo_apply(t, flow_batch_msg(s1, 1, 0), &last), 1);
	assert_int_equal(topo_apply(t, flow_batch_msg(s1, 2, 0), &last), 1);
	assert_int_equal(topo_apply(t, flow_batch_msg(s1, 2, 0), &last), 0); /* resend */
	assert_int_equal(topo_apply(t, flow_batch_msg(s1, 4, 0), &last), -ERANGE); /* gap */
	assert_int_equal(last, 2);
	/* a restarted exporter: new session, then its old spooled batches */
	assert_int_equal(topo_apply(t, flow_batch_msg(s2, 1, 0), &last), 1);
	assert_int_equal(topo_apply(t, flow_batch_msg(s1, 1, 0), &last), 0);
	assert_int_equal(topo_apply(t, flow_batch_msg(s1, 3, 0), &last), 1);
	assert_int_equal(topo_apply(t, flow_batch_msg(s2, 1, 0), &last), 0);
	assert_int_equal(topo_apply(t, flow_batch_msg(s2, 2, 0), &last), 1);
	assert_int_equal(stats(t).batches, 5);
	assert_int_equal(stats(t).duplicates, 3);
	assert_int_equal(stats(t).records, 5);
	flow_batch_free(s1);
	flow_batch_free(s2);
	topo_free(t);
}

static const struct topo_edge *edge(struct topo_edge *e, long n, uint16_t port)
{
	for (long i = 0; i < n; i++)
		if (e[i].port == port)
			return &e[i];
	return NULL;
}

/* Egress allows to a workload are not counted (its ingress is);
 * everything else is; every record is in the flow ring. */
static void test_counting_rule(void **state)
{
	struct topo *t = topo_new(NULL);
	struct flow_batch *b = flow_batch_new("n", 0);
	struct topo_filter none = { 0 };
	const struct topo_flow *fv[16];
	struct topo_edge *e = NULL;
	bool complete;
	uint64_t last;
	long n;

	add(b, "a", "b", 80, V(ALLOW), DIR_EG); /* not counted: b's ingress is */
	add(b, "a", "b", 80, V(ALLOW), DIR_IN);
	add(b, "a", "b", 81, V(ALLOW), DIR_EG); /* ... */
	add(b, "a", "b", 81, V(DENY), DIR_IN); /* denied at ingress: one denied */
	add(b, "a", "b", 82, V(DENY), DIR_EG); /* denied at egress */
	add(b, "a", NULL, 443, V(ALLOW), DIR_EG); /* to world: counted at egress */
	add(b, "a", "b", 83, V(AUDIT), DIR_IN);
	assert_int_equal(topo_apply(t, flow_batch_msg(b, 0, 0), &last), 1);
	topo_lock(t);
	assert_int_equal(topo_flows(t, &none, 16, fv), 7);
	n = topo_graph(t, &none, 0, &e, &complete);
	topo_unlock(t);
	assert_int_equal(n, 5);
	assert_true(complete);
	assert_int_equal(edge(e, n, 80)->allowed, 1);
	assert_int_equal(edge(e, n, 80)->bytes, 10);
	assert_int_equal(edge(e, n, 81)->allowed, 0);
	assert_int_equal(edge(e, n, 81)->denied, 1);
	assert_int_equal(edge(e, n, 82)->denied, 1);
	assert_int_equal(edge(e, n, 443)->allowed, 1);
	assert_int_equal(edge(e, n, 443)->dst, TOPO_WL_NONE);
	assert_int_equal(edge(e, n, 83)->audit, 1);
	free(e);
	/* the 5 minute window, from the ring, agrees */
	topo_lock(t);
	n = topo_graph(t, &none, 300ull * 1000000000ull, &e, &complete);
	topo_unlock(t);
	assert_int_equal(n, 5);
	assert_true(complete);
	assert_int_equal(edge(e, n, 81)->denied, 1);
	free(e);
	flow_batch_free(b);
	topo_free(t);
}

/* The least recently updated edge goes first; evictions are counted. */
static void test_eviction_lru(void **state)
{
	struct topo_limits lim = { .max_edges = 16, .max_flows = 16 };
	struct topo *t = topo_new(&lim);
	struct flow_batch *b = flow_batch_new("n", 0);
	struct topo_filter none = { 0 };
	struct topo_edge *e = NULL;
	bool complete;
	uint64_t last;
	long n;

	for (int p = 1; p <= 16; p++)
		add(b, "a", "b", p, V(ALLOW), DIR_IN);
	add(b, "a", "b", 1, V(ALLOW), DIR_IN); /* port 1 is used again: now newest */
	add(b, "a", "b", 100, V(ALLOW), DIR_IN); /* evicts port 2 */
	assert_int_equal(topo_apply(t, flow_batch_msg(b, 0, 0), &last), 1);
	assert_int_equal(stats(t).evicted_edges, 1);
	assert_int_equal(stats(t).edges, 16);
	assert_int_equal(stats(t).evicted_flows, 2);
	topo_lock(t);
	n = topo_graph(t, &none, 0, &e, &complete);
	topo_unlock(t);
	assert_int_equal(n, 16);
	assert_false(complete);
	assert_null(edge(e, n, 2));
	assert_non_null(edge(e, n, 1));
	assert_int_equal(edge(e, n, 1)->allowed, 2);
	assert_non_null(edge(e, n, 100));
	free(e);
	flow_batch_free(b);
	topo_free(t);
}

/* A varied v1 batch: every field set somewhere, IPv4 and IPv6, world
 * ends, per-record nodes, labels, rev counters, flags. */
static void varied(struct flow_batch *b, int n, uint32_t seed)
{
	static const char *const labels[] = { "app=x", "tier=web", "k8s.io/role=db" };
	char name[32];

	for (int i = 0; i < n; i++) {
		uint32_t x = seed * 2654435761u + i * 40503u;
		uint8_t a4[4] = { 10, 0, x & 3, i & 0xff };
		uint8_t a6[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, x & 7, i & 0xff };
		FlowRec r = SEG__FLOW__V1__FLOW__INIT;
		int s, d;

		snprintf(name, sizeof(name), "pod-%u", x % 13);
		s = x % 5 ? flow_batch_workload(b, x & 1 ? "ns-a" : "ns-b", name, 100 + x % 13,
						labels, x % 4) :
			    0;
		snprintf(name, sizeof(name), "pod-%u", (x >> 4) % 13);
		d = x % 7 ? flow_batch_workload(b, "ns-c", name, 0, labels + 1, x % 3) : 0;
		assert_true(s >= 0 && d >= 0);
		r.time_ns = 1700000000000000000ull + x;
		r.node = (char *)(x % 11 ? "" : "other-node");
		r.kind = 1 + x % 5;
		if (x & 8) {
			r.src_addr = (ProtobufCBinaryData){ 16, a6 };
			r.dst_addr = (ProtobufCBinaryData){ 16, a6 };
		} else {
			r.src_addr = (ProtobufCBinaryData){ 4, a4 };
			r.dst_addr = (ProtobufCBinaryData){ x & 16 ? 0 : 4, a4 };
		}
		r.src_port = x & 0xffff;
		r.dst_port = (x >> 16) | 1;
		r.proto = x % 3 ? 6 : 132;
		r.src_workload = s;
		r.dst_workload = d;
		r.src_identity = x % 1000;
		r.dst_identity = x % 999;
		r.direction = x & 1;
		r.verdict = 1 + x % 3;
		r.policy = (char *)(x % 3 ? "ns-a/allow" : "");
		r.rule_id = x % 17;
		r.rule = (char *)(x % 2 ? "from app=x on 80/TCP" : "");
		r.reason = x % 20;
		r.packets_fwd = x % 9;
		r.bytes_fwd = (uint64_t)x * 1000;
		r.packets_rev = x % 4;
		r.bytes_rev = x % 4 ? 1ull << 40 : 0;
		r.first_seen_ns = x % 6 ? r.time_ns - 5 : 0;
		r.last_seen_ns = x % 6 ? r.time_ns : 0;
		r.tcp_flags_fwd = x & 0x3f;
		r.tcp_flags_rev = (x >> 6) & 0x3f;
		r.suppressed = x % 10 == 0 ? 3 : 0;
		assert_int_equal(flow_batch_add(b, &r), 0);
	}
}

static void wl_eq(const FlowBatch *a, uint32_t ia, const FlowBatch *b, uint32_t ib)
{
	const FlowWorkload *x, *y;

	assert_int_equal(ia == 0, ib == 0);
	if (!ia)
		return;
	x = a->workloads[ia - 1];
	y = b->workloads[ib - 1];
	assert_string_equal(x->namespace_, y->namespace_);
	assert_string_equal(x->name, y->name);
	assert_int_equal(x->identity, y->identity);
	assert_int_equal(x->n_labels, y->n_labels);
	for (size_t k = 0; k < x->n_labels; k++) {
		assert_string_equal(x->labels[k]->key, y->labels[k]->key);
		assert_string_equal(x->labels[k]->value, y->labels[k]->value);
	}
}

/* Every field survives v1 -> columns -> wire -> check -> v1. */
static void test_columns_roundtrip(void **state)
{
	struct flow_batch *b = flow_batch_new("node-c", 9), *back = flow_batch_new("node-c", 9);
	struct flow_cols *c = flow_cols_new("node-c", 9);
	const FlowBatch *m, *cm, *bm;
	uint8_t *buf;
	size_t len, v1len;
	FlowBatch *u;

	varied(b, 500, 1);
	m = flow_batch_msg(b, 3, 2);
	v1len = protobuf_c_message_get_packed_size(&m->base);
	assert_int_equal(flow_cols_add_flows(c, m), 0);
	assert_int_equal(flow_cols_len(c), 500);
	cm = flow_cols_msg(c, 3, 2);
	assert_int_equal(cm->n_flows, 0);
	assert_non_null(cm->columns);
	len = protobuf_c_message_get_packed_size(&cm->base);
	print_message("500 varied records: %zu bytes as flows, %zu as columns\n", v1len, len);
	assert_true(len < v1len);
	buf = malloc(len);
	assert_non_null(buf);
	protobuf_c_message_pack(&cm->base, buf);
	u = (void *)protobuf_c_message_unpack(&seg__flow__v1__batch__descriptor, NULL, len, buf);
	free(buf);
	assert_non_null(u);
	assert_string_equal(u->node, "node-c");
	assert_int_equal(u->session, 9);
	assert_int_equal(u->seq, 3);
	assert_int_equal(u->dropped, 2);
	assert_int_equal(flow_batch_check(u), 0);
	assert_int_equal(flow_batch_count(u), 500);
	assert_int_equal(flow_batch_add_cols(back, u->columns), 0);
	bm = flow_batch_msg(back, 3, 2);
	assert_int_equal(bm->n_flows, 500);
	for (size_t i = 0; i < 500; i++) {
		const FlowRec *x = m->flows[i], *y = bm->flows[i];

		assert_int_equal(x->time_ns, y->time_ns);
		assert_string_equal(x->node, y->node);
		assert_int_equal(x->kind, y->kind);
		assert_int_equal(x->src_addr.len, y->src_addr.len);
		assert_memory_equal(x->src_addr.data, y->src_addr.data, x->src_addr.len);
		assert_int_equal(x->dst_addr.len, y->dst_addr.len);
		if (x->dst_addr.len)
			assert_memory_equal(x->dst_addr.data, y->dst_addr.data, x->dst_addr.len);
		assert_int_equal(x->src_port, y->src_port);
		assert_int_equal(x->dst_port, y->dst_port);
		assert_int_equal(x->proto, y->proto);
		wl_eq(m, x->src_workload, bm, y->src_workload);
		wl_eq(m, x->dst_workload, bm, y->dst_workload);
		assert_int_equal(x->src_identity, y->src_identity);
		assert_int_equal(x->dst_identity, y->dst_identity);
		assert_int_equal(x->direction, y->direction);
		assert_int_equal(x->verdict, y->verdict);
		assert_string_equal(x->policy, y->policy);
		assert_int_equal(x->rule_id, y->rule_id);
		assert_string_equal(x->rule, y->rule);
		assert_int_equal(x->reason, y->reason);
		assert_int_equal(x->packets_fwd, y->packets_fwd);
		assert_int_equal(x->bytes_fwd, y->bytes_fwd);
		assert_int_equal(x->packets_rev, y->packets_rev);
		assert_int_equal(x->bytes_rev, y->bytes_rev);
		assert_int_equal(x->first_seen_ns, y->first_seen_ns);
		assert_int_equal(x->last_seen_ns, y->last_seen_ns);
		assert_int_equal(x->tcp_flags_fwd, y->tcp_flags_fwd);
		assert_int_equal(x->tcp_flags_rev, y->tcp_flags_rev);
		assert_int_equal(x->suppressed, y->suppressed);
	}
	/* keyed interning: a key names its content for the batch; the same
	 * content under another key (or none) is still one entry */
	{
		const char *lab[] = { "app=x" };
		int w1 = flow_cols_workload_key(c, 42, "ns-k", "p", 1, lab, 1);
		int w2 = flow_cols_workload_key(c, 43, "ns-k", "p", 1, lab, 1);
		int s1 = flow_cols_str_key(c, 42, "ns-k/pol"), s2 = flow_cols_str(c, "ns-k/pol");

		assert_true(w1 > 0 && s1 > 0);
		assert_int_equal(w1, w2);
		assert_int_equal(flow_cols_workload_key(c, 42, "ignored", "x", 0, NULL, 0), w1);
		assert_int_equal(w1, flow_cols_workload(c, "ns-k", "p", 1, lab, 1));
		assert_int_equal(s1, s2);
		assert_int_equal(flow_cols_str_key(c, 42, ""), 0);
	}
	/* reset keeps nothing of the last batch */
	flow_cols_reset(c);
	assert_int_equal(flow_cols_workload_key(c, 42, "ns-z", "q", 0, NULL, 0), 1);
	cm = flow_cols_msg(c, 4, 0);
	assert_int_equal(cm->columns->n_wl_name, 1);
	assert_string_equal(cm->columns->strings[cm->columns->wl_name[0] - 1], "q");
	flow_cols_reset(c);
	cm = flow_cols_msg(c, 4, 0);
	assert_null(cm->columns);
	flow_msg_free(u);
	flow_cols_free(c);
	flow_batch_free(b);
	flow_batch_free(back);
}

/* The same records as flows or as columns make the same store. */
static void test_columns_same_store(void **state)
{
	struct topo *t1 = topo_new(NULL), *t2 = topo_new(NULL);
	struct flow_batch *b = flow_batch_new("node-s", 5);
	struct flow_cols *c = flow_cols_new("node-s", 5);
	struct topo_edge *e1, *e2;
	const struct topo_flow *f1[600], *f2[600];
	struct topo_filter all = { 0 };
	bool complete;
	uint64_t last;
	long n1, n2;
	size_t k1, k2;

	varied(b, 300, 7);
	assert_int_equal(topo_apply(t1, flow_batch_msg(b, 1, 4), &last), 1);
	assert_int_equal(flow_cols_add_flows(c, flow_batch_msg(b, 1, 4)), 0);
	assert_int_equal(topo_apply(t2, flow_cols_msg(c, 1, 4), &last), 1);
	assert_int_equal(topo_apply(t2, flow_cols_msg(c, 1, 4), &last), 0); /* dedupe as v1 */
	assert_int_equal(stats(t1).records, 300);
	assert_int_equal(stats(t2).records, 300);
	assert_int_equal(stats(t2).dropped_by_senders, 4);
	assert_int_equal(stats(t1).workloads, stats(t2).workloads);
	topo_lock(t1);
	topo_lock(t2);
	n1 = topo_graph(t1, &all, 0, &e1, &complete);
	n2 = topo_graph(t2, &all, 0, &e2, &complete);
	assert_true(n1 > 10);
	assert_int_equal(n1, n2);
	for (long i = 0; i < n1; i++) {
		const struct topo_wl *s1 = topo_wl(t1, e1[i].src), *s2 = topo_wl(t2, e2[i].src);

		assert_int_equal(s1 == NULL, s2 == NULL);
		if (s1)
			assert_string_equal(s1->name, s2->name);
		assert_int_equal(e1[i].port, e2[i].port);
		assert_int_equal(e1[i].allowed, e2[i].allowed);
		assert_int_equal(e1[i].denied, e2[i].denied);
		assert_int_equal(e1[i].audit, e2[i].audit);
		assert_int_equal(e1[i].bytes, e2[i].bytes);
		assert_int_equal(e1[i].packets, e2[i].packets);
		assert_int_equal(e1[i].first_ns, e2[i].first_ns);
		assert_int_equal(e1[i].last_ns, e2[i].last_ns);
	}
	k1 = topo_flows(t1, &all, 600, f1);
	k2 = topo_flows(t2, &all, 600, f2);
	assert_int_equal(k1, 300);
	assert_int_equal(k2, 300);
	for (size_t i = 0; i < k1; i++) {
		assert_memory_equal(f1[i]->src, f2[i]->src, 16);
		assert_memory_equal(f1[i]->dst, f2[i]->dst, 16);
		assert_int_equal(f1[i]->addr_len, f2[i]->addr_len);
		assert_int_equal(f1[i]->bytes_rev, f2[i]->bytes_rev);
		assert_int_equal(f1[i]->flags_rev, f2[i]->flags_rev);
		assert_int_equal(f1[i]->suppressed, f2[i]->suppressed);
		assert_string_equal(topo_str(t1, f1[i]->node), topo_str(t2, f2[i]->node));
		assert_string_equal(topo_str(t1, f1[i]->policy), topo_str(t2, f2[i]->policy));
		assert_string_equal(topo_str(t1, f1[i]->rule), topo_str(t2, f2[i]->rule));
	}
	topo_unlock(t1);
	topo_unlock(t2);
	free(e1);
	free(e2);
	flow_cols_free(c);
	flow_batch_free(b);
	topo_free(t1);
	topo_free(t2);
}

/* Columns that do not fit their tables are refused before the batch's
 * seq counts; a batch may carry both forms. */
static void test_columns_refused(void **state)
{
	struct topo *t = topo_new(NULL);
	struct flow_cols *c = flow_cols_new("node-r", 6);
	struct flow_batch *b = flow_batch_new("node-r", 6);
	const char *lab[] = { "app=x" };
	FlowRec r = SEG__FLOW__V1__FLOW__INIT;
	uint8_t a[4] = { 10, 0, 0, 1 };
	const FlowBatch *v1;
	FlowBatch m;
	FlowColumns k;
	uint32_t bad = 99, two[2] = { 1, 1 };
	uint64_t last;
	int w;

	w = flow_cols_workload(c, "ns", "a", 5, lab, 1);
	assert_int_equal(w, 1);
	r.src_workload = r.dst_workload = w;
	r.src_addr = (ProtobufCBinaryData){ 4, a };
	r.dst_port = 80;
	r.verdict = V(ALLOW);
	r.kind = 1;
	r.policy = (char *)"ns/p";
	assert_int_equal(flow_cols_add(c, &r), 0);
	m = *flow_cols_msg(c, 1, 0);
	k = *m.columns;
	m.columns = &k;
	assert_int_equal(flow_batch_check(&m), 0);
	/* a column with the wrong length */
	k.n_ports = 2;
	k.ports = two;
	assert_int_equal(topo_apply(t, &m, &last), -EINVAL);
	k = *flow_cols_msg(c, 1, 0)->columns;
	/* references out of range: workload, string, address */
	k.src_workload = &bad;
	assert_int_equal(topo_apply(t, &m, &last), -EINVAL);
	k = *flow_cols_msg(c, 1, 0)->columns;
	k.policy = &bad;
	assert_int_equal(topo_apply(t, &m, &last), -EINVAL);
	k = *flow_cols_msg(c, 1, 0)->columns;
	k.src_addr = &bad;
	assert_int_equal(topo_apply(t, &m, &last), -EINVAL);
	k = *flow_cols_msg(c, 1, 0)->columns;
	k.addrs.len = 15;
	assert_int_equal(topo_apply(t, &m, &last), -EINVAL);
	k = *flow_cols_msg(c, 1, 0)->columns;
	k.n_labels = 0; /* wl_labels says 1 */
	assert_int_equal(topo_apply(t, &m, &last), -EINVAL);
	k = *flow_cols_msg(c, 1, 0)->columns;
	k.wl_name = &bad;
	assert_int_equal(topo_apply(t, &m, &last), -EINVAL);
	/* a count no column backs (a few bytes claiming 4e9 records) */
	memset(&k, 0, sizeof(k));
	seg__flow__v1__columns__init(&k);
	k.count = 4000000000u;
	assert_int_equal(topo_apply(t, &m, &last), -EINVAL);
	assert_int_equal(stats(t).batches, 0);
	/* seq 1 was not used up: the good batch applies, with v1 flows too */
	k = *flow_cols_msg(c, 1, 0)->columns;
	add(b, "a", "b", 81, V(DENY), DIR_EG);
	v1 = flow_batch_msg(b, 1, 0);
	m.flows = v1->flows;
	m.n_flows = v1->n_flows;
	m.workloads = v1->workloads;
	m.n_workloads = v1->n_workloads;
	assert_int_equal(flow_batch_count(&m), 2);
	assert_int_equal(topo_apply(t, &m, &last), 1);
	assert_int_equal(stats(t).records, 2);
	assert_int_equal(stats(t).workloads, 2); /* ns/a from both forms, ns/b */
	flow_batch_free(b);
	flow_cols_free(c);
	topo_free(t);
}

static void test_names(void **state)
{
	uint64_t ns;

	assert_int_equal(flow_parse_duration("5m", &ns), 0);
	assert_int_equal(ns, 300ull * 1000000000ull);
	assert_int_equal(flow_parse_duration("1h", &ns), 0);
	assert_int_equal(ns, 3600ull * 1000000000ull);
	assert_int_equal(flow_parse_duration("30", &ns), 0);
	assert_int_equal(ns, 30ull * 1000000000ull);
	assert_int_equal(flow_parse_duration("250ms", &ns), 0);
	assert_int_equal(ns, 250ull * 1000000ull);
	assert_int_equal(flow_parse_duration("5x", &ns), -EINVAL);
	assert_int_equal(flow_parse_duration("-1m", &ns), -EINVAL);
	assert_int_equal(flow_parse_duration("99999999999999999999d", &ns), -EINVAL);
	assert_int_equal(flow_verdict_parse("deny"), V(DENY));
	assert_int_equal(flow_verdict_parse("ALLOW"), V(ALLOW));
	assert_int_equal(flow_verdict_parse("maybe"), -EINVAL);
	assert_string_equal(flow_verdict_name(V(AUDIT)), "audit");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builder_roundtrip), cmocka_unit_test(test_unknown_fields),
		cmocka_unit_test(test_exactly_once),	  cmocka_unit_test(test_counting_rule),
		cmocka_unit_test(test_eviction_lru),	  cmocka_unit_test(test_names),
		cmocka_unit_test(test_columns_roundtrip), cmocka_unit_test(test_columns_same_store),
		cmocka_unit_test(test_columns_refused),
	};

	log_init("t_codec", LOG_LVL_WARN);
	return cmocka_run_group_tests_name("topology_codec", tests, NULL, NULL);
}
