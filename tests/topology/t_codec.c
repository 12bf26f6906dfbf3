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
	};

	log_init("t_codec", LOG_LVL_WARN);
	return cmocka_run_group_tests_name("topology_codec", tests, NULL, NULL);
}
