// SPDX-License-Identifier: GPL-2.0-only
/*
 * seg-topology gRPC server. One thread drives one completion queue; each
 * call is a small state machine whose operations complete on that queue,
 * so a slow or stuck stream never blocks another. Export batches are
 * applied as they arrive (a cut stream keeps what it delivered; resent
 * batches are skipped by (node, session, seq)); watchers get matching
 * records queued (bounded, drops counted and sent in Batch.dropped).
 */
#include "topology.h"
#include "log.h"

#include <errno.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdlib.h>
#include <string.h>

enum call_kind { CALL_NEW, CALL_EXPORT, CALL_QUERY, CALL_WATCH, CALL_OTHER };
enum tag_op { OP_REQUEST, OP_MD, OP_RECV, OP_SEND, OP_FINAL, OP_CLOSE };

struct rcall;
struct tag {
	struct rcall *c;
	enum tag_op op;
};

struct rcall {
	struct topo_rpc *r;
	grpc_call *call;
	grpc_call_details details;
	grpc_metadata_array md;
	enum call_kind kind;
	int refs; /* operations in flight */
	int cancelled;
	grpc_byte_buffer *recv, *sendbuf;
	grpc_slice status_details;
	struct tag t_req, t_md, t_recv, t_send, t_final, t_close;
	/* export */
	uint64_t batches, records, dups, last_seq, msgs;
	/* watch */
	struct rcall *wnext, *wprev;
	struct topo_filter flt;
	char *f_ns, *f_pod, *f_node;
	struct flow_batch *pending;
	uint64_t wseq, wdropped;
	bool sending, dead;
};

struct topo_rpc {
	struct topo *t;
	grpc_server *srv;
	grpc_completion_queue *cq;
	pthread_t thr;
	bool thr_started;
	int port;
	uint32_t watch_queue;
	struct flow_arena *arena;
	struct flow_batch *wconv; /* columnar batches as Flow messages, for watchers */
	grpc_metadata features; /* Export's initial metadata */
	size_t n_features; /* 0: announce nothing (--no-columns) */
	struct rcall *watchers;
	struct tag t_shutdown;
};

static void call_free(struct rcall *c)
{
	if (c->call)
		grpc_call_unref(c->call);
	grpc_call_details_destroy(&c->details);
	grpc_metadata_array_destroy(&c->md);
	if (c->recv)
		grpc_byte_buffer_destroy(c->recv);
	if (c->sendbuf)
		grpc_byte_buffer_destroy(c->sendbuf);
	grpc_slice_unref(c->status_details);
	flow_batch_free(c->pending);
	free(c->f_ns);
	free(c->f_pod);
	free(c->f_node);
	free(c);
}

static int start(struct rcall *c, const grpc_op *ops, size_t n, struct tag *tag)
{
	grpc_call_error e = grpc_call_start_batch(c->call, ops, n, tag, NULL);

	if (e != GRPC_CALL_OK)
		return log_err(-EPROTO, "grpc start batch on %s: error %d",
			       tag->op == OP_RECV ? "recv" : "send", e);
	c->refs++;
	return 0;
}

static int request_next(struct topo_rpc *r)
{
	struct rcall *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->r = r;
	c->status_details = grpc_empty_slice();
	grpc_call_details_init(&c->details);
	grpc_metadata_array_init(&c->md);
	c->t_req = (struct tag){ c, OP_REQUEST };
	c->t_md = (struct tag){ c, OP_MD };
	c->t_recv = (struct tag){ c, OP_RECV };
	c->t_send = (struct tag){ c, OP_SEND };
	c->t_final = (struct tag){ c, OP_FINAL };
	c->t_close = (struct tag){ c, OP_CLOSE };
	if (grpc_server_request_call(r->srv, &c->call, &c->details, &c->md, r->cq, r->cq,
				     &c->t_req) != GRPC_CALL_OK) {
		call_free(c);
		return log_err(-EPROTO, "grpc request call");
	}
	c->refs++;
	return 0;
}

/* Final status (and a message, for unary answers and the export ack). */
static void finish(struct rcall *c, grpc_status_code code, const char *msg,
		   const ProtobufCMessage *resp, bool send_md)
{
	grpc_op ops[3];
	size_t n = 0;

	memset(ops, 0, sizeof(ops));
	if (send_md)
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (resp) {
		c->sendbuf = flow_pack(resp);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = c->sendbuf;
	}
	grpc_slice_unref(c->status_details);
	c->status_details = grpc_slice_from_copied_string(msg ?: "");
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = code;
	ops[n++].data.send_status_from_server.status_details = msg ? &c->status_details : NULL;
	start(c, ops, n, &c->t_final);
}

static void recv_next(struct rcall *c)
{
	grpc_op op = { .op = GRPC_OP_RECV_MESSAGE };

	op.data.recv_message.recv_message = &c->recv;
	start(c, &op, 1, &c->t_recv);
}

/* ---- watch ---------------------------------------------------------------- */

static void watch_send(struct rcall *c)
{
	grpc_op op = { .op = GRPC_OP_SEND_MESSAGE };
	const FlowBatch *m;

	if (c->sending || c->dead || !c->pending || !flow_batch_len(c->pending))
		return;
	m = flow_batch_msg(c->pending, ++c->wseq, c->wdropped);
	c->sendbuf = m ? flow_pack(&m->base) : NULL;
	flow_batch_reset(c->pending);
	if (!c->sendbuf) {
		c->wdropped += m ? m->n_flows : 0;
		return;
	}
	c->wdropped = 0;
	op.data.send_message.send_message = c->sendbuf;
	if (!start(c, &op, 1, &c->t_send))
		c->sending = true;
}

static void watch_push(struct rcall *c, const FlowBatch *b)
{
	for (size_t i = 0; i < b->n_flows; i++) {
		FlowRec r;
		int s = 0, d = 0;

		if (!topo_msg_match(b, b->flows[i], &c->flt))
			continue;
		if (flow_batch_len(c->pending) >= c->r->watch_queue) {
			c->wdropped++;
			continue;
		}
		r = *b->flows[i];
		if (r.src_workload && r.src_workload <= b->n_workloads)
			s = flow_batch_workload_msg(c->pending, b->workloads[r.src_workload - 1]);
		if (r.dst_workload && r.dst_workload <= b->n_workloads)
			d = flow_batch_workload_msg(c->pending, b->workloads[r.dst_workload - 1]);
		r.src_workload = s > 0 ? s : 0;
		r.dst_workload = d > 0 ? d : 0;
		if (!*r.node)
			r.node = b->node;
		if (s < 0 || d < 0 || flow_batch_add(c->pending, &r))
			c->wdropped++;
	}
	watch_send(c);
}

/* Watchers get Flow messages (segctl reads those): a columnar batch is
 * expanded once for all of them. */
static void watch_push_all(struct topo_rpc *r, const FlowBatch *b)
{
	const FlowBatch *m = NULL;
	FlowBatch conv;

	if (b->n_flows)
		for (struct rcall *w = r->watchers; w; w = w->wnext)
			watch_push(w, b);
	if (!b->columns || !b->columns->count)
		return;
	flow_batch_reset(r->wconv);
	if (!flow_batch_add_cols(r->wconv, b->columns))
		m = flow_batch_msg(r->wconv, b->seq, 0);
	for (struct rcall *w = r->watchers; w; w = w->wnext) {
		if (!m) {
			w->wdropped += b->columns->count;
			continue;
		}
		conv = *m;
		conv.node = b->node;
		watch_push(w, &conv);
	}
}

static void watch_backlog(struct rcall *c)
{
	struct topo *t = c->r->t;
	const struct topo_flow **v;
	size_t n;

	topo_lock(t);
	v = malloc(sizeof(*v) * 100000);
	if (v) {
		n = topo_flows(t, &c->flt, 100000, v);
		if (topo_flows_to_batch(t, v, n, c->pending))
			c->wdropped += n;
	}
	topo_unlock(t);
	free(v);
	watch_send(c);
}

static int watch_begin(struct rcall *c)
{
	Seg__Flow__V1__WatchRequest *req;
	const Seg__Flow__V1__Filter *f;

	req = (void *)flow_unpack(&seg__flow__v1__watch_request__descriptor, c->recv, NULL);
	if (!req)
		return -EINVAL;
	f = req->filter;
	if (f) {
		c->f_ns = *f->namespace_ ? strdup(f->namespace_) : NULL;
		c->f_pod = *f->pod ? strdup(f->pod) : NULL;
		c->f_node = *f->node ? strdup(f->node) : NULL;
		c->flt.verdict = f->verdict;
		c->flt.since_ns = f->since_ns;
	}
	c->flt.ns = c->f_ns;
	c->flt.pod = c->f_pod;
	c->flt.node = c->f_node;
	flow_msg_free(req);
	c->pending = flow_batch_new("", 0);
	if (!c->pending)
		return -ENOMEM;
	c->wnext = c->r->watchers;
	if (c->wnext)
		c->wnext->wprev = c;
	c->r->watchers = c;
	if (c->flt.since_ns)
		watch_backlog(c);
	/* later records: only new ones */
	c->flt.since_ns = 0;
	return 0;
}

static void watch_end(struct rcall *c)
{
	if (c->kind != CALL_WATCH || c->dead)
		return;
	c->dead = true;
	if (c->wprev)
		c->wprev->wnext = c->wnext;
	else if (c->r->watchers == c)
		c->r->watchers = c->wnext;
	if (c->wnext)
		c->wnext->wprev = c->wprev;
	c->wnext = c->wprev = NULL;
}

/* ---- export --------------------------------------------------------------------- */

static void export_recv(struct rcall *c, bool ok)
{
	struct topo_rpc *r = c->r;
	Seg__Flow__V1__ExportAck ack = SEG__FLOW__V1__EXPORT_ACK__INIT;
	FlowBatch *b;
	char msg[320];
	int res;

	if (!ok)
		return; /* cancelled: RECV_CLOSE_ON_SERVER ends it */
	if (!c->recv) {
		ack.version = FLOW_PROTO_VERSION;
		ack.batches = c->batches;
		ack.records = c->records;
		ack.duplicates = c->dups;
		ack.last_seq = c->last_seq;
		finish(c, GRPC_STATUS_OK, NULL, &ack.base, false);
		return;
	}
	c->msgs++;
	flow_arena_reset(r->arena);
	b = (void *)flow_unpack(&seg__flow__v1__batch__descriptor, c->recv,
				flow_arena_allocator(r->arena));
	grpc_byte_buffer_destroy(c->recv);
	c->recv = NULL;
	if (!b) {
		topo_count_rejected(r->t);
		snprintf(msg, sizeof(msg), "message %llu is not a seg.flow.v1.Batch",
			 (unsigned long long)c->msgs);
		char *peer = grpc_call_get_peer(c->call);

		log_warn("export from %s: %s", peer ?: "?", msg);
		gpr_free(peer);
		finish(c, GRPC_STATUS_INVALID_ARGUMENT, msg, NULL, false);
		return;
	}
	res = topo_apply(r->t, b, &c->last_seq);
	if (res == -EINVAL) {
		topo_count_rejected(r->t);
		snprintf(msg, sizeof(msg),
			 "message %llu: seg.flow.v1.Batch columns do not fit their tables",
			 (unsigned long long)c->msgs);
		log_warn("export from node %s: %s", b->node, msg);
		finish(c, GRPC_STATUS_INVALID_ARGUMENT, msg, NULL, false);
		return;
	}
	if (res == -ERANGE) {
		snprintf(msg, sizeof(msg), "node %s: expected seq %llu, got %llu: resend from %llu",
			 b->node, (unsigned long long)c->last_seq + 1, (unsigned long long)b->seq,
			 (unsigned long long)c->last_seq + 1);
		finish(c, GRPC_STATUS_FAILED_PRECONDITION, msg, NULL, false);
		return;
	}
	if (res < 0) {
		finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL, false);
		return;
	}
	if (res == 0) {
		c->dups++;
	} else {
		c->batches++;
		c->records += flow_batch_count(b);
		if (r->watchers)
			watch_push_all(r, b);
	}
	recv_next(c);
}

/* ---- query ------------------------------------------------------------------------ */

static int query_graph(struct topo *t, const struct topo_filter *flt, struct flow_batch *fb,
		       Seg__Flow__V1__QueryResponse *resp, Seg__Flow__V1__Edge **ev)
{
	struct topo_edge *edges = NULL;
	bool complete;
	long n = topo_graph(t, flt, 0, &edges, &complete);

	if (n < 0)
		return (int)n;
	*ev = calloc(n + 1, sizeof(**ev));
	resp->edges = calloc(n + 1, sizeof(*resp->edges));
	if (!*ev || !resp->edges) {
		free(edges);
		return -ENOMEM;
	}
	for (long i = 0; i < n; i++) {
		Seg__Flow__V1__Edge *e = &(*ev)[i];
		int s = topo_wl_to_batch(t, edges[i].src, fb),
		    d = topo_wl_to_batch(t, edges[i].dst, fb);

		seg__flow__v1__edge__init(e);
		e->src_workload = s > 0 ? s : 0;
		e->dst_workload = d > 0 ? d : 0;
		e->port = edges[i].port;
		e->proto = edges[i].proto;
		e->allowed = edges[i].allowed;
		e->denied = edges[i].denied;
		e->audit = edges[i].audit;
		e->bytes = edges[i].bytes;
		e->packets = edges[i].packets;
		e->first_seen_ns = edges[i].first_ns;
		e->last_seen_ns = edges[i].last_ns;
		resp->edges[i] = e;
	}
	resp->n_edges = n;
	resp->complete = complete;
	free(edges);
	return 0;
}

static void query_recv(struct rcall *c, bool ok)
{
	Seg__Flow__V1__QueryResponse resp = SEG__FLOW__V1__QUERY_RESPONSE__INIT;
	Seg__Flow__V1__QueryRequest *req = NULL;
	struct topo_filter flt = { 0 };
	struct topo *t = c->r->t;
	struct flow_batch *fb = flow_batch_new("", 0);
	Seg__Flow__V1__Edge *ev = NULL;
	const struct topo_flow **fv = NULL;
	const FlowBatch *m;
	struct topo_stats st;
	int err = -ENOMEM;

	if (!ok)
		goto out_free;
	req = (void *)flow_unpack(&seg__flow__v1__query_request__descriptor, c->recv, NULL);
	if (!req) {
		finish(c, GRPC_STATUS_INVALID_ARGUMENT, "not a seg.flow.v1.QueryRequest", NULL,
		       true);
		goto out_free;
	}
	if (req->filter) {
		flt.ns = req->filter->namespace_;
		flt.pod = req->filter->pod;
		flt.node = req->filter->node;
		flt.verdict = req->filter->verdict;
		flt.since_ns = req->filter->since_ns;
	}
	topo_get_stats(t, &st);
	topo_lock(t);
	if (!fb)
		goto unlock;
	if (req->what == SEG__FLOW__V1__QUERY_REQUEST__WHAT__WHAT_GRAPH) {
		err = query_graph(t, &flt, fb, &resp, &ev);
	} else {
		size_t lim = req->limit ? req->limit : 1000, n;

		if (lim > 100000)
			lim = 100000;

		fv = malloc(lim * sizeof(*fv));
		if (!fv)
			goto unlock;
		n = topo_flows(t, &flt, lim, fv);
		err = topo_flows_to_batch(t, fv, n, fb);
		resp.complete = st.evicted_flows == 0;
	}
unlock:
	topo_unlock(t);
	m = err ? NULL : flow_batch_msg(fb, 0, 0);
	if (!m) {
		finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL, true);
		goto out_free;
	}
	resp.version = FLOW_PROTO_VERSION;
	resp.workloads = m->workloads;
	resp.n_workloads = m->n_workloads;
	resp.flows = m->flows;
	resp.n_flows = m->n_flows;
	resp.evicted_edges = st.evicted_edges;
	resp.evicted_flows = st.evicted_flows;
	finish(c, GRPC_STATUS_OK, NULL, &resp.base, true);
out_free:
	free(resp.edges);
	free(ev);
	free(fv);
	flow_batch_free(fb);
	flow_msg_free(req);
}

/* ---- dispatch ----------------------------------------------------------------------- */

static void call_begin(struct rcall *c)
{
	grpc_op close = { .op = GRPC_OP_RECV_CLOSE_ON_SERVER };
	grpc_op md = { .op = GRPC_OP_SEND_INITIAL_METADATA };
	char *method = grpc_slice_to_c_string(c->details.method);

	close.data.recv_close_on_server.cancelled = &c->cancelled;
	start(c, &close, 1, &c->t_close);
	if (!strcmp(method, FLOW_METHOD_EXPORT))
		c->kind = CALL_EXPORT;
	else if (!strcmp(method, FLOW_METHOD_QUERY))
		c->kind = CALL_QUERY;
	else if (!strcmp(method, FLOW_METHOD_WATCH))
		c->kind = CALL_WATCH;
	else
		c->kind = CALL_OTHER;
	gpr_free(method);
	switch (c->kind) {
	case CALL_EXPORT:
		/* what this service accepts (FLOW_MD_FEATURES) */
		md.data.send_initial_metadata.count = c->r->n_features;
		md.data.send_initial_metadata.metadata = &c->r->features;
		start(c, &md, 1, &c->t_md);
		recv_next(c);
		break;
	case CALL_WATCH:
		start(c, &md, 1, &c->t_md);
		recv_next(c);
		break;
	case CALL_QUERY:
		recv_next(c);
		break;
	default:
		finish(c, GRPC_STATUS_UNIMPLEMENTED, "no such method", NULL, true);
	}
}

static void on_event(struct topo_rpc *r, struct tag *tag, bool ok)
{
	struct rcall *c = tag->c;

	c->refs--;
	switch (tag->op) {
	case OP_MD:
		break;
	case OP_REQUEST:
		if (!ok) /* shutting down */
			break;
		request_next(r);
		call_begin(c);
		break;
	case OP_RECV:
		if (c->kind == CALL_EXPORT) {
			export_recv(c, ok);
		} else if (c->kind == CALL_QUERY) {
			query_recv(c, ok);
		} else if (c->kind == CALL_WATCH && ok) {
			int err = watch_begin(c);

			if (err)
				finish(c, GRPC_STATUS_INVALID_ARGUMENT,
				       "not a seg.flow.v1.WatchRequest", NULL, false);
		}
		break;
	case OP_SEND:
		c->sending = false;
		if (c->sendbuf) {
			grpc_byte_buffer_destroy(c->sendbuf);
			c->sendbuf = NULL;
		}
		if (!ok)
			watch_end(c);
		else if (c->kind == CALL_WATCH && !c->dead)
			watch_send(c);
		break;
	case OP_FINAL:
		watch_end(c);
		break;
	case OP_CLOSE:
		watch_end(c);
		break;
	}
	if (c->refs == 0)
		call_free(c);
}

static void *cq_thread(void *arg)
{
	struct topo_rpc *r = arg;

	for (;;) {
		grpc_event ev =
			grpc_completion_queue_next(r->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);

		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		if (ev.tag == &r->t_shutdown) {
			/* every call is done: nothing else will be queued */
			grpc_completion_queue_shutdown(r->cq);
			continue;
		}
		on_event(r, ev.tag, ev.success);
	}
	return NULL;
}

int topo_rpc_start(struct topo_rpc **out, struct topo *t, const struct topo_rpc_opts *o)
{
	grpc_arg args[1] = { { .type = GRPC_ARG_INTEGER,
			       .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
			       .value.integer = FLOW_MAX_MESSAGE } };
	grpc_channel_args ca = { .num_args = 1, .args = args };
	grpc_server_credentials *cr = NULL;
	struct topo_rpc *r;
	int err;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	grpc_init();
	r->t = t;
	r->watch_queue = o->watch_queue ? o->watch_queue : 65536;
	r->arena = flow_arena_new(256 * 1024);
	r->wconv = flow_batch_new("", 0);
	r->features.key = grpc_slice_from_static_string(FLOW_MD_FEATURES);
	r->features.value = grpc_slice_from_static_string(FLOW_FEATURE_COLUMNS);
	r->n_features = o->no_columns ? 0 : 1;
	r->cq = grpc_completion_queue_create_for_next(NULL);
	r->srv = grpc_server_create(&ca, NULL);
	if (!r->arena || !r->wconv || !r->cq || !r->srv) {
		err = -ENOMEM;
		goto fail;
	}
	grpc_server_register_completion_queue(r->srv, r->cq, NULL);
	err = flow_server_creds(&o->tls, &cr);
	if (err)
		goto fail;
	r->port = grpc_server_add_http2_port(r->srv, o->addr, cr);
	grpc_server_credentials_release(cr);
	if (r->port <= 0) {
		err = log_err(-EADDRINUSE, "gRPC listen on %s", o->addr);
		goto fail;
	}
	grpc_server_start(r->srv);
	err = request_next(r);
	if (err)
		goto fail;
	err = -pthread_create(&r->thr, NULL, cq_thread, r);
	if (err) {
		log_err(err, "gRPC thread");
		goto fail;
	}
	r->thr_started = true;
	*out = r;
	return 0;
fail:
	topo_rpc_stop(r);
	return err;
}

void topo_rpc_stop(struct topo_rpc *r)
{
	if (!r)
		return;
	if (r->srv) {
		grpc_server_shutdown_and_notify(r->srv, r->cq, &r->t_shutdown);
		grpc_server_cancel_all_calls(r->srv);
	}
	if (r->thr_started) {
		/* the thread shuts the queue down when the server's shutdown tag
		 * arrives, once every call is done, and ends when it is drained */
		pthread_join(r->thr, NULL);
	} else if (r->cq) {
		if (r->srv)
			grpc_completion_queue_next(r->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		grpc_completion_queue_shutdown(r->cq);
		while (grpc_completion_queue_next(r->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
			       .type != GRPC_QUEUE_SHUTDOWN)
			;
	}
	if (r->srv)
		grpc_server_destroy(r->srv);
	if (r->cq)
		grpc_completion_queue_destroy(r->cq);
	flow_arena_free(r->arena);
	flow_batch_free(r->wconv);
	free(r);
	grpc_shutdown();
}

int topo_rpc_port(const struct topo_rpc *r)
{
	return r->port;
}
