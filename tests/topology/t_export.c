// SPDX-License-Identifier: GPL-2.0-only
/*
 * tests/topology: gRPC against a running seg-topology (address in
 * $TOPO_GRPC). Two nodes stream at once, a stream is cut and resumed,
 * malformed bytes are refused; every check reads the service's own graph
 * and flows back over Query. Each test uses its own namespaces, so they
 * share one service. Also writes the synthetic data the shell part of the
 * test (HTTP, DOT, page, segctl) checks: namespaces "shop" and "pay".
 */
#include "flow.h"
#include "log.h"

#include <errno.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define V(x) SEG__FLOW__V1__VERDICT__VERDICT_##x
#define K(x) SEG__FLOW__V1__KIND__KIND_##x
#define DIR_IN SEG__FLOW__V1__DIRECTION__DIRECTION_INGRESS
#define DIR_EG SEG__FLOW__V1__DIRECTION__DIRECTION_EGRESS

static const char *target(void)
{
	const char *t = getenv("TOPO_GRPC");

	return t ? t : FLOW_DEFAULT_GRPC;
}

/* TLS files from $TOPO_TLS_CA, $TOPO_TLS_CERT, $TOPO_TLS_KEY (unset: insecure) */
static struct flow_tls env_tls(void)
{
	return (struct flow_tls){ .ca_file = getenv("TOPO_TLS_CA"),
				  .cert_file = getenv("TOPO_TLS_CERT"),
				  .key_file = getenv("TOPO_TLS_KEY") };
}

/* ---- synthetic traffic ----------------------------------------------------- */

struct wl {
	const char *ns, *name, *label;
	uint8_t addr;
};

/* one connection: its records as each node reports them */
struct conn {
	int src, dst; /* index into wls, -1 = world */
	uint16_t port;
	int verdict_egress, verdict_ingress; /* 0: that side reports nothing */
	uint64_t bytes; /* in UPDATE records from the counting side */
};

static void rec_fill(FlowRec *r, uint8_t *sa, uint8_t *da, const struct wl *s, const struct wl *d,
		     uint16_t sport, uint16_t port)
{
	seg__flow__v1__flow__init(r);
	sa[0] = 10, sa[1] = 1, sa[2] = 0, sa[3] = s ? s->addr : 200;
	da[0] = 10, da[1] = 1, da[2] = 0, da[3] = d ? d->addr : 200;
	if (!d)
		da[0] = 93, da[1] = 184, da[2] = 216, da[3] = 34;
	r->src_addr.data = sa;
	r->src_addr.len = 4;
	r->dst_addr.data = da;
	r->dst_addr.len = 4;
	r->src_port = sport;
	r->dst_port = port;
	r->proto = 6;
	r->time_ns = flow_now_ns();
	r->first_seen_ns = r->time_ns;
	r->last_seen_ns = r->time_ns;
}

static int wl_idx(struct flow_batch *b, const struct wl *w)
{
	const char *labels[1];

	if (!w)
		return 0;
	labels[0] = w->label;
	return flow_batch_workload(b, w->ns, w->name, 1000 + w->addr, labels, 1);
}

/* Adds the records one node reports for conn c (the side(s) on it). */
static void add_conn(struct flow_batch *b, const struct wl *wls, const struct conn *c,
		     bool egress_side, uint16_t sport)
{
	const struct wl *s = c->src >= 0 ? &wls[c->src] : NULL,
			*d = c->dst >= 0 ? &wls[c->dst] : NULL;
	uint8_t sa[4], da[4];
	FlowRec r;
	int v = egress_side ? c->verdict_egress : c->verdict_ingress;

	if (!v)
		return;
	rec_fill(&r, sa, da, s, d, sport, c->port);
	r.src_workload = wl_idx(b, s);
	r.dst_workload = wl_idx(b, d);
	r.direction = egress_side ? DIR_EG : DIR_IN;
	r.verdict = v;
	r.kind = v == V(DENY) ? K(DENY) : K(NEW);
	r.reason = v == V(DENY) ? 16 : v == V(AUDIT) ? 6 : 0;
	r.policy = v == V(DENY) ? (char *)"pay/db-only-from-api" : (char *)"shop/allow-web";
	r.rule_id = v == V(ALLOW) ? 7 : 0;
	r.packets_fwd = 1;
	r.bytes_fwd = 60;
	assert_int_equal(flow_batch_add(b, &r), 0);
	/* the side that counts also reports the connection's traffic */
	if (c->bytes && v != V(DENY) && (!egress_side || !d)) {
		r.kind = K(UPDATE);
		r.packets_fwd = 10;
		r.bytes_fwd = c->bytes - 60;
		assert_int_equal(flow_batch_add(b, &r), 0);
	}
}

static const struct wl shop_wls[] = {
	{ "shop", "frontend", "app=frontend", 11 },
	{ "shop", "cart", "app=cart", 12 },
	{ "pay", "db", "app=db", 21 },
	{ "pay", "api", "app=api", 22 },
};

/* node-a runs shop/frontend and shop/cart; node-b pay/db and pay/api */
static const struct conn shop_conns[] = {
	/* frontend -> cart 8080: allowed on both sides (same node) */
	{ 0, 1, 8080, V(ALLOW), V(ALLOW), 1000 },
	/* frontend -> pay/db 5432: egress allows, db's ingress denies */
	{ 0, 2, 5432, V(ALLOW), V(DENY), 0 },
	/* cart -> world 443: egress allows (no ingress side) */
	{ 1, -1, 443, V(ALLOW), 0, 500 },
	/* pay/api -> shop/cart 8080: audited at cart's ingress */
	{ 3, 1, 8080, V(ALLOW), V(AUDIT), 0 },
	/* pay/api -> pay/db 5432: allowed */
	{ 3, 2, 5432, V(ALLOW), V(ALLOW), 2000 },
	/* shop/frontend -> pay/api 9000: denied at egress */
	{ 0, 3, 9000, V(DENY), 0, 0 },
};
#define N_CONNS (sizeof(shop_conns) / sizeof(shop_conns[0]))
static const bool on_node_a[] = { true, true, false, false }; /* by workload */

#define ROUNDS 40 /* batches per node; each holds every connection once */

struct node_job {
	const char *node;
	bool a;
	bool columns; /* send Batch.columns (the service announces it) */
	uint64_t session;
	int err;
	bool announced;
	Seg__Flow__V1__ExportAck ack;
};

/* A node streams ROUNDS batches: each round, every connection once, with
 * the records of the sides that live on this node. */
static void *node_stream(void *arg)
{
	struct node_job *j = arg;
	struct flow_client_opts o = { .target = target(), .tls = env_tls() };
	struct flow_client *c = NULL;
	struct flow_batch *b = flow_batch_new(j->node, j->session);
	struct flow_cols *cb = flow_cols_new(j->node, j->session);

	j->err = flow_client_new(&c, &o);
	if (!j->err)
		j->err = flow_export_open(c);
	if (!j->err)
		j->announced = flow_export_columns(c);
	for (int round = 1; !j->err && round <= ROUNDS; round++) {
		flow_batch_reset(b);
		for (size_t i = 0; i < N_CONNS; i++) {
			const struct conn *cn = &shop_conns[i];
			uint16_t sport = 30000 + round;

			if (on_node_a[cn->src] == j->a)
				add_conn(b, shop_wls, cn, true, sport);
			if (cn->dst >= 0 && on_node_a[cn->dst] == j->a)
				add_conn(b, shop_wls, cn, false, sport);
		}
		if (j->columns) {
			flow_cols_reset(cb);
			j->err = flow_cols_add_flows(cb, flow_batch_msg(b, round, 0)) ?:
					 flow_export_send(c, flow_cols_msg(cb, round, 0));
		} else {
			j->err = flow_export_send(c, flow_batch_msg(b, round, 0));
		}
	}
	if (!j->err)
		j->err = flow_export_close(c, &j->ack);
	flow_batch_free(b);
	flow_cols_free(cb);
	flow_client_free(c);
	return NULL;
}

static Seg__Flow__V1__QueryResponse *query(int what, const char *ns, int verdict)
{
	Seg__Flow__V1__QueryRequest req = SEG__FLOW__V1__QUERY_REQUEST__INIT;
	Seg__Flow__V1__Filter f = SEG__FLOW__V1__FILTER__INIT;
	struct flow_client_opts o = { .target = target(), .tls = env_tls() };
	Seg__Flow__V1__QueryResponse *resp = NULL;
	struct flow_client *c;

	assert_int_equal(flow_client_new(&c, &o), 0);
	req.version = FLOW_PROTO_VERSION;
	req.what = what;
	req.limit = 100000;
	f.namespace_ = (char *)(ns ?: "");
	f.verdict = verdict;
	req.filter = &f;
	assert_int_equal(flow_query(c, &req, &resp), 0);
	flow_client_free(c);
	return resp;
}

static const Seg__Flow__V1__Edge *find_edge(const Seg__Flow__V1__QueryResponse *r, const char *src,
					    const char *dst, uint32_t port)
{
	char a[600], b[600];

	for (size_t i = 0; i < r->n_edges; i++) {
		const Seg__Flow__V1__Edge *e = r->edges[i];

		if (!strcmp(flow_workload_str(r->workloads, r->n_workloads, e->src_workload, a,
					      sizeof(a)),
			    src) &&
		    !strcmp(flow_workload_str(r->workloads, r->n_workloads, e->dst_workload, b,
					      sizeof(b)),
			    dst) &&
		    e->port == port)
			return e;
	}
	return NULL;
}

static void check_edge(const Seg__Flow__V1__QueryResponse *r, const char *src, const char *dst,
		       uint32_t port, uint64_t allowed, uint64_t denied, uint64_t audit,
		       uint64_t bytes)
{
	const Seg__Flow__V1__Edge *e = find_edge(r, src, dst, port);

	if (!e)
		fail_msg("edge %s -> %s :%u missing", src, dst, port);
	if (e->allowed != allowed || e->denied != denied || e->audit != audit || e->bytes != bytes)
		fail_msg("edge %s -> %s :%u: allowed %llu denied %llu audit %llu bytes %llu, "
			 "want %llu %llu %llu %llu",
			 src, dst, port, (unsigned long long)e->allowed,
			 (unsigned long long)e->denied, (unsigned long long)e->audit,
			 (unsigned long long)e->bytes, (unsigned long long)allowed,
			 (unsigned long long)denied, (unsigned long long)audit,
			 (unsigned long long)bytes);
}

/* Two nodes stream at the same time, one as Flow messages, one as
 * columns; every connection counted once. */
static void test_two_nodes(void **state)
{
	struct node_job a = { .node = "node-a", .a = true, .session = 0xa1 };
	struct node_job b = { .node = "node-b", .a = false, .columns = true, .session = 0xb1 };
	Seg__Flow__V1__QueryResponse *r;
	pthread_t ta, tb;
	size_t want_records = 0;

	assert_int_equal(pthread_create(&ta, NULL, node_stream, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, node_stream, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_int_equal(a.err, 0);
	assert_int_equal(b.err, 0);
	assert_true(a.announced && b.announced);
	assert_int_equal(a.ack.batches, ROUNDS);
	assert_int_equal(b.ack.batches, ROUNDS);
	assert_int_equal(a.ack.duplicates, 0);
	assert_int_equal(a.ack.last_seq, ROUNDS);

	/* every record arrived once: the flow table holds exactly them */
	for (size_t i = 0; i < N_CONNS; i++) {
		const struct conn *c = &shop_conns[i];

		want_records += (c->verdict_egress != 0) + (c->verdict_ingress != 0);
		want_records += c->bytes ? 1 : 0;
	}
	assert_int_equal(a.ack.records + b.ack.records, ROUNDS * want_records);
	r = query(SEG__FLOW__V1__QUERY_REQUEST__WHAT__WHAT_FLOWS, "shop", 0);
	/* pay/api -> pay/db is the only connection without a shop end */
	assert_int_equal(r->n_flows, ROUNDS * (want_records - 3));
	flow_msg_free(r);

	r = query(SEG__FLOW__V1__QUERY_REQUEST__WHAT__WHAT_GRAPH, NULL, 0);
	check_edge(r, "shop/frontend", "shop/cart", 8080, ROUNDS, 0, 0, ROUNDS * 1000);
	check_edge(r, "shop/frontend", "pay/db", 5432, 0, ROUNDS, 0, ROUNDS * 60);
	check_edge(r, "shop/cart", "-", 443, ROUNDS, 0, 0, ROUNDS * 500);
	check_edge(r, "pay/api", "shop/cart", 8080, 0, 0, ROUNDS, ROUNDS * 60);
	check_edge(r, "pay/api", "pay/db", 5432, ROUNDS, 0, 0, ROUNDS * 2000);
	check_edge(r, "shop/frontend", "pay/api", 9000, 0, ROUNDS, 0, ROUNDS * 60);
	assert_int_equal(r->n_edges, N_CONNS);
	flow_msg_free(r);

	/* the verdict filter: only edges with denied flows */
	r = query(SEG__FLOW__V1__QUERY_REQUEST__WHAT__WHAT_GRAPH, NULL, V(DENY));
	assert_int_equal(r->n_edges, 2);
	flow_msg_free(r);
}

/* A batch of n allowed ingress records resume/x -> resume/y:80 */
static const FlowBatch *resume_batch(struct flow_batch *b, uint64_t seq, int n)
{
	static const struct wl x = { "resume", "x", "app=x", 31 },
			       y = { "resume", "y", "app=y", 32 };
	uint8_t sa[4], da[4];
	FlowRec r;

	flow_batch_reset(b);
	for (int i = 0; i < n; i++) {
		rec_fill(&r, sa, da, &x, &y, 40000 + i, 80);
		r.src_workload = wl_idx(b, &x);
		r.dst_workload = wl_idx(b, &y);
		r.direction = DIR_IN;
		r.verdict = V(ALLOW);
		r.kind = K(NEW);
		r.bytes_fwd = 100;
		assert_int_equal(flow_batch_add(b, &r), 0);
	}
	return flow_batch_msg(b, seq, 0);
}

/* Cut mid-way, resent from the start on a new stream: counts exact. */
static void test_cut_and_resume(void **state)
{
	struct flow_client_opts o = { .target = target(), .tls = env_tls() };
	struct flow_batch *b = flow_batch_new("node-c", 0xc1);
	Seg__Flow__V1__ExportAck ack;
	Seg__Flow__V1__QueryResponse *r;
	struct flow_client *c;

	assert_int_equal(flow_client_new(&c, &o), 0);
	assert_int_equal(flow_export_open(c), 0);
	for (int seq = 1; seq <= 10; seq++)
		assert_int_equal(flow_export_send(c, resume_batch(b, seq, 25)), 0);
	flow_export_abort(c); /* the connection is cut: no ack */
	flow_client_free(c);

	/* the exporter does not know what arrived: it resends 1..20 */
	assert_int_equal(flow_client_new(&c, &o), 0);
	assert_int_equal(flow_export_open(c), 0);
	for (int seq = 1; seq <= 20; seq++) {
		int err = flow_export_send(c, resume_batch(b, seq, 25));

		if (err == -ECONNRESET || err == -ERANGE) {
			/* refused out of order (the old stream was still being
			 * delivered): reopen and resend from the start again */
			assert_int_equal(flow_export_open(c), 0);
			seq = 0;
			continue;
		}
		assert_int_equal(err, 0);
	}
	assert_int_equal(flow_export_close(c, &ack), 0);
	assert_int_equal(ack.last_seq, 20);
	assert_int_equal(ack.batches + ack.duplicates, 20);
	assert_true(ack.batches >= 10);
	flow_client_free(c);
	flow_batch_free(b);

	r = query(SEG__FLOW__V1__QUERY_REQUEST__WHAT__WHAT_GRAPH, "resume", 0);
	assert_int_equal(r->n_edges, 1);
	check_edge(r, "resume/x", "resume/y", 80, 20 * 25, 0, 0, 20 * 25 * 100);
	flow_msg_free(r);
	r = query(SEG__FLOW__V1__QUERY_REQUEST__WHAT__WHAT_FLOWS, "resume", 0);
	assert_int_equal(r->n_flows, 20 * 25);
	flow_msg_free(r);
}

/* Bytes that are not a Batch on the Export stream: INVALID_ARGUMENT. */
static void test_malformed(void **state)
{
	static const uint8_t junk[] = { 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02, 0x42 };
	grpc_channel_credentials *cr = grpc_insecure_credentials_create();
	grpc_channel *ch;
	grpc_completion_queue *cq;
	grpc_call *call;
	grpc_metadata_array md, tr;
	grpc_status_code status = GRPC_STATUS_OK;
	grpc_slice details, s = grpc_slice_from_static_buffer(junk, sizeof(junk));
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1), *resp = NULL;
	grpc_op ops[6];
	grpc_event ev;
	char *d;

	grpc_init();
	ch = grpc_channel_create(target(), cr, NULL);
	grpc_channel_credentials_release(cr);
	cq = grpc_completion_queue_create_for_pluck(NULL);
	call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
					grpc_slice_from_static_string(FLOW_METHOD_EXPORT), NULL,
					gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	grpc_metadata_array_init(&md);
	grpc_metadata_array_init(&tr);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = bb;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &resp;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.status = &status;
	ops[5].data.recv_status_on_client.status_details = &details;
	ops[5].data.recv_status_on_client.trailing_metadata = &tr;
	assert_int_equal(grpc_call_start_batch(call, ops, 6, call, NULL), GRPC_CALL_OK);
	ev = grpc_completion_queue_pluck(cq, call, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	assert_int_equal(ev.type, GRPC_OP_COMPLETE);
	assert_int_equal(status, GRPC_STATUS_INVALID_ARGUMENT);
	d = grpc_slice_to_c_string(details);
	print_message("status %d: %s\n", status, d);
	assert_non_null(strstr(d, "not a seg.flow.v1.Batch"));
	gpr_free(d);
	assert_null(resp);
	grpc_slice_unref(details);
	grpc_metadata_array_destroy(&md);
	grpc_metadata_array_destroy(&tr);
	grpc_byte_buffer_destroy(bb);
	grpc_call_unref(call);
	grpc_channel_destroy(ch);
	grpc_completion_queue_shutdown(cq);
	grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	grpc_completion_queue_destroy(cq);
	grpc_shutdown();

	/* the service is still up and answers */
	flow_msg_free(query(SEG__FLOW__V1__QUERY_REQUEST__WHAT__WHAT_GRAPH, NULL, 0));
}

/* Columns whose references do not fit: INVALID_ARGUMENT naming them,
 * counted; the service goes on. */
static void test_bad_columns(void **state)
{
	struct flow_client_opts o = { .target = target(), .tls = env_tls() };
	struct flow_cols *cb = flow_cols_new("node-bad", 0xe1);
	FlowRec r = SEG__FLOW__V1__FLOW__INIT;
	struct flow_client *c;
	FlowColumns k;
	FlowBatch m;
	uint32_t bad = 7;

	r.dst_port = 80;
	r.kind = K(NEW);
	assert_int_equal(flow_cols_add(cb, &r), 0);
	m = *flow_cols_msg(cb, 1, 0);
	k = *m.columns;
	k.n_src_workload = 1; /* there is no workload 7 */
	k.src_workload = &bad;
	m.columns = &k;
	assert_int_equal(flow_client_new(&c, &o), 0);
	assert_int_equal(flow_export_open(c), 0);
	/* the send may already see the refusal (it then reads the status) */
	if (!flow_export_send(c, &m))
		assert_int_equal(flow_export_close(c, NULL), -EINVAL);
	print_message("last error: %s\n", flow_client_last_error(c));
	assert_non_null(strstr(flow_client_last_error(c), "INVALID_ARGUMENT"));
	assert_non_null(strstr(flow_client_last_error(c), "columns do not fit"));
	flow_client_free(c);
	flow_cols_free(cb);
	flow_msg_free(query(SEG__FLOW__V1__QUERY_REQUEST__WHAT__WHAT_GRAPH, NULL, 0));
}

/* A Watch started now gets a batch exported after it, within a second. */
static void test_watch(void **state)
{
	struct flow_client_opts o = { .target = target(), .tls = env_tls() };
	Seg__Flow__V1__WatchRequest req = SEG__FLOW__V1__WATCH_REQUEST__INIT;
	Seg__Flow__V1__Filter f = SEG__FLOW__V1__FILTER__INIT;
	struct flow_batch *b = flow_batch_new("node-w", 0xd1);
	struct flow_client *w, *e;
	FlowBatch *got = NULL;
	uint64_t t0;
	int err;

	f.namespace_ = (char *)"resume";
	req.filter = &f;
	req.version = FLOW_PROTO_VERSION;
	assert_int_equal(flow_client_new(&w, &o), 0);
	assert_int_equal(flow_watch_open(w, &req), 0);
	assert_int_equal(flow_watch_next(w, &got, 200), -EAGAIN);
	assert_int_equal(flow_client_new(&e, &o), 0);
	assert_int_equal(flow_export_open(e), 0);
	t0 = flow_now_ns();
	assert_int_equal(flow_export_send(e, resume_batch(b, 1, 3)), 0);
	err = flow_watch_next(w, &got, 1000);
	assert_int_equal(err, 0);
	assert_true(flow_now_ns() - t0 < 1000000000ull);
	assert_int_equal(got->n_flows, 3);
	assert_string_equal(got->flows[0]->node, "node-w");
	assert_int_equal(got->n_workloads, 2);
	flow_msg_free(got);
	/* a columnar batch reaches watchers as Flow messages */
	{
		struct flow_cols *cb = flow_cols_new("node-w", 0xd1);

		assert_int_equal(flow_cols_add_flows(cb, resume_batch(b, 2, 2)), 0);
		assert_int_equal(flow_export_send(e, flow_cols_msg(cb, 2, 0)), 0);
		flow_cols_free(cb);
	}
	assert_int_equal(flow_watch_next(w, &got, 1000), 0);
	assert_int_equal(got->n_flows, 2);
	assert_null(got->columns);
	assert_string_equal(got->flows[1]->node, "node-w");
	assert_int_equal(got->flows[1]->dst_port, 80);
	assert_int_equal(got->flows[1]->src_port, 40001);
	assert_string_equal(got->workloads[got->flows[1]->dst_workload - 1]->name, "y");
	flow_msg_free(got);
	assert_int_equal(flow_export_close(e, NULL), 0);
	flow_watch_close(w);
	flow_client_free(w);
	flow_client_free(e);
	flow_batch_free(b);
}

/* t_export send NS NODE: one allowed flow NS/a -> NS/b:80 (for the shell
 * part: segctl observe --follow). */
static int send_one(const char *ns, const char *node)
{
	const struct wl a = { ns, "a", "app=a", 41 }, b = { ns, "b", "app=b", 42 };
	struct flow_client_opts o = { .target = target(), .tls = env_tls() };
	struct flow_batch *fb = flow_batch_new(node, flow_now_ns());
	struct flow_client *c = NULL;
	uint8_t sa[4], da[4];
	FlowRec r;
	int err;

	rec_fill(&r, sa, da, &a, &b, 45000, 80);
	r.src_workload = wl_idx(fb, &a);
	r.dst_workload = wl_idx(fb, &b);
	r.direction = DIR_IN;
	r.verdict = V(ALLOW);
	r.kind = K(NEW);
	err = flow_batch_add(fb, &r)				    ?:
		      flow_client_new(&c, &o)			    ?:
		      flow_export_open(c)			    ?:
		      flow_export_send(c, flow_batch_msg(fb, 1, 0)) ?:
								      flow_export_close(c, NULL);
	flow_client_free(c);
	flow_batch_free(fb);
	return err ? 1 : 0;
}

/* t_export spread NS N: N distinct edges NS/src -> NS/dst:1..N in one batch
 * (for eviction). */
static int send_spread(const char *ns, int n)
{
	const struct wl a = { ns, "src", "app=src", 51 }, b = { ns, "dst", "app=dst", 52 };
	struct flow_client_opts o = { .target = target(), .tls = env_tls() };
	struct flow_batch *fb = flow_batch_new("node-s", flow_now_ns());
	struct flow_client *c = NULL;
	uint8_t sa[4], da[4];
	FlowRec r;
	int err = 0;

	for (int i = 1; !err && i <= n; i++) {
		rec_fill(&r, sa, da, &a, &b, 45000, i);
		r.src_workload = wl_idx(fb, &a);
		r.dst_workload = wl_idx(fb, &b);
		r.direction = DIR_IN;
		r.verdict = V(ALLOW);
		r.kind = K(NEW);
		err = flow_batch_add(fb, &r);
	}
	err = err						    ?:
		      flow_client_new(&c, &o)			    ?:
		      flow_export_open(c)			    ?:
		      flow_export_send(c, flow_batch_msg(fb, 1, 0)) ?:
								      flow_export_close(c, NULL);
	flow_client_free(c);
	flow_batch_free(fb);
	return err ? 1 : 0;
}

/* t_export wire: what an Export stream to the service may carry:
 * "columns" or "flows" (a service with --no-columns, or an older one). */
static int print_wire(void)
{
	struct flow_client_opts o = { .target = target(), .tls = env_tls() };
	struct flow_client *c;
	int err = flow_client_new(&c, &o) ?: flow_export_open(c);

	if (!err) {
		printf("%s\n", flow_export_columns(c) ? "columns" : "flows");
		err = flow_export_close(c, NULL);
	}
	flow_client_free(c);
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_nodes),   cmocka_unit_test(test_cut_and_resume),
		cmocka_unit_test(test_malformed),   cmocka_unit_test(test_watch),
		cmocka_unit_test(test_bad_columns),
	};

	log_init("t_export", LOG_LVL_INFO);
	if (argc == 4 && !strcmp(argv[1], "send"))
		return send_one(argv[2], argv[3]);
	if (argc == 2 && !strcmp(argv[1], "wire"))
		return print_wire();
	if (argc == 4 && !strcmp(argv[1], "spread"))
		return send_spread(argv[2], atoi(argv[3]));
	return cmocka_run_group_tests_name("topology_export", tests, NULL, NULL);
}
