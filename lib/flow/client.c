// SPDX-License-Identifier: GPL-2.0-only
/*
 * lib/flow client: blocking calls over one channel and a pluck completion
 * queue. At most one Export stream and one Watch stream per client; one
 * message in flight per direction, as the C core requires.
 */
#include "flow.h"
#include "log.h"

#include <errno.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct stream {
	grpc_call *call;
	grpc_metadata_array md_init, md_trail;
	grpc_status_code status;
	grpc_slice details;
	grpc_byte_buffer *recv;
	bool status_pending; /* RECV_STATUS_ON_CLIENT started, not plucked */
	bool recv_pending; /* Watch: RECV_MESSAGE started, not plucked */
	bool md_received; /* Export: initial metadata read at open */
	bool columns; /* Export: the service accepts Batch.columns */
};

struct flow_client {
	grpc_channel *ch;
	grpc_completion_queue *cq;
	unsigned timeout_ms;
	char *target;
	struct stream exp, watch;
	struct flow_client_stats st;
	char last_err[512];
};

/* tags: addresses inside the client, distinct per operation */
#define TAG(c, field) ((void *)&(c)->field)

static gpr_timespec deadline_ms(int ms)
{
	if (ms < 0)
		return gpr_inf_future(GPR_CLOCK_REALTIME);
	return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* 1 success, 0 op failed, -ETIMEDOUT */
static int wait_tag(struct flow_client *c, void *tag, int ms)
{
	grpc_event ev = grpc_completion_queue_pluck(c->cq, tag, deadline_ms(ms), NULL);

	if (ev.type == GRPC_QUEUE_TIMEOUT)
		return -ETIMEDOUT;
	return ev.success ? 1 : 0;
}

/* Runs ops and waits; on timeout cancels the call and drains the tag. */
static int run_ops(struct flow_client *c, grpc_call *call, const grpc_op *ops, size_t n, void *tag,
		   int ms)
{
	grpc_call_error e = grpc_call_start_batch(call, ops, n, tag, NULL);
	int r;

	if (e != GRPC_CALL_OK)
		return log_err(-EPROTO, "grpc start batch: error %d", e);
	r = wait_tag(c, tag, ms);
	if (r == -ETIMEDOUT) {
		grpc_call_cancel(call, NULL);
		wait_tag(c, tag, -1);
		return -ETIMEDOUT;
	}
	return r ? 0 : -ECONNRESET;
}

int flow_client_new(struct flow_client **out, const struct flow_client_opts *o)
{
	grpc_channel_credentials *cr = NULL;
	grpc_arg args[2] = {
		{ .type = GRPC_ARG_INTEGER,
		  .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
		  .value.integer = FLOW_MAX_MESSAGE },
		{ .type = GRPC_ARG_INTEGER,
		  .key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
		  .value.integer = FLOW_MAX_MESSAGE },
	};
	grpc_channel_args ca = { .num_args = 2, .args = args };
	struct flow_client *c;
	int err;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	grpc_init();
	c->timeout_ms = o->timeout_ms ? o->timeout_ms : 5000;
	c->target = strdup(o->target ?: FLOW_DEFAULT_GRPC);
	err = flow_channel_creds(&o->tls, &cr);
	if (err || !c->target) {
		err = err ?: -ENOMEM;
		goto fail;
	}
	c->ch = grpc_channel_create(c->target, cr, &ca);
	grpc_channel_credentials_release(cr);
	c->cq = grpc_completion_queue_create_for_pluck(NULL);
	if (!c->ch || !c->cq) {
		err = log_err(-ENOMEM, "grpc channel to %s", c->target);
		goto fail;
	}
	*out = c;
	return 0;
fail:
	flow_client_free(c);
	return err;
}

static void stream_reset(struct stream *s)
{
	if (s->call)
		grpc_call_unref(s->call);
	grpc_metadata_array_destroy(&s->md_init);
	grpc_metadata_array_destroy(&s->md_trail);
	grpc_slice_unref(s->details);
	if (s->recv)
		grpc_byte_buffer_destroy(s->recv);
	memset(s, 0, sizeof(*s));
}

static void stream_cancel(struct flow_client *c, struct stream *s, void *status_tag, void *recv_tag)
{
	if (!s->call)
		return;
	grpc_call_cancel(s->call, NULL);
	if (s->recv_pending)
		wait_tag(c, recv_tag, -1);
	if (s->status_pending)
		wait_tag(c, status_tag, -1);
	stream_reset(s);
}

void flow_client_free(struct flow_client *c)
{
	if (!c)
		return;
	flow_export_abort(c);
	flow_watch_close(c);
	if (c->ch)
		grpc_channel_destroy(c->ch);
	if (c->cq) {
		grpc_completion_queue_shutdown(c->cq);
		while (grpc_completion_queue_pluck(c->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME),
						   NULL)
			       .type != GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(c->cq);
	}
	free(c->target);
	free(c);
	grpc_shutdown();
}

const struct flow_client_stats *flow_client_stats(const struct flow_client *c)
{
	return &c->st;
}

static int stream_start(struct flow_client *c, struct stream *s, const char *method)
{
	grpc_slice m = grpc_slice_from_static_string(method);

	memset(s, 0, sizeof(*s));
	grpc_metadata_array_init(&s->md_init);
	grpc_metadata_array_init(&s->md_trail);
	s->details = grpc_empty_slice();
	s->call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, m, NULL,
					   gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	return s->call ? 0 : log_err(-ENOMEM, "grpc call %s", method);
}

static const char *status_name(grpc_status_code st)
{
	static const char *const n[] = {
		"OK",
		"CANCELLED",
		"UNKNOWN",
		"INVALID_ARGUMENT",
		"DEADLINE_EXCEEDED",
		"NOT_FOUND",
		"ALREADY_EXISTS",
		"PERMISSION_DENIED",
		"RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION",
		"ABORTED",
		"OUT_OF_RANGE",
		"UNIMPLEMENTED",
		"INTERNAL",
		"UNAVAILABLE",
		"DATA_LOSS",
		"UNAUTHENTICATED",
	};

	return st >= 0 && st < (int)(sizeof(n) / sizeof(n[0])) ? n[st] : "status ?";
}

static void note_status(struct flow_client *c, grpc_status_code st, const char *details)
{
	snprintf(c->last_err, sizeof(c->last_err), "%s: %s", status_name(st),
		 details && *details ? details : "(no details)");
}

const char *flow_client_last_error(const struct flow_client *c)
{
	return c->last_err;
}

static int status_err(struct flow_client *c, struct stream *s, const char *what, const char *target)
{
	char *d;
	int err;

	if (s->status == GRPC_STATUS_OK)
		return 0;
	d = grpc_slice_to_c_string(s->details);
	note_status(c, s->status, d);
	switch (s->status) {
	case GRPC_STATUS_INVALID_ARGUMENT:
		err = -EINVAL;
		break;
	case GRPC_STATUS_UNAVAILABLE:
		err = -ECONNREFUSED;
		break;
	case GRPC_STATUS_DEADLINE_EXCEEDED:
		err = -ETIMEDOUT;
		break;
	case GRPC_STATUS_UNIMPLEMENTED:
		err = -EOPNOTSUPP;
		break;
	case GRPC_STATUS_FAILED_PRECONDITION:
		err = -ERANGE; /* export: out of order, resend from the ack's last_seq + 1 */
		break;
	default:
		err = -EPROTO;
	}
	log_error("%s %s: status %d: %s", what, target, s->status, d ?: "");
	gpr_free(d);
	return err;
}

/* ---- Export ------------------------------------------------------------------ */

bool flow_export_is_open(const struct flow_client *c)
{
	return c->exp.call != NULL;
}

/* The call failed before any status was read: ask for it, so the reason
 * (e.g. the TLS handshake's error, which the core reports as UNAVAILABLE
 * with its text in the details) reaches flow_client_last_error(). */
static void failed_call_status(struct flow_client *c, struct stream *s)
{
	grpc_op op = { .op = GRPC_OP_RECV_STATUS_ON_CLIENT };
	const char *dbg = NULL;
	char *d;

	op.data.recv_status_on_client.trailing_metadata = &s->md_trail;
	op.data.recv_status_on_client.status = &s->status;
	op.data.recv_status_on_client.status_details = &s->details;
	op.data.recv_status_on_client.error_string = &dbg;
	if (run_ops(c, s->call, &op, 1, TAG(c, exp.status), 1000)) {
		snprintf(c->last_err, sizeof(c->last_err), "no status from the gRPC core");
		return;
	}
	d = grpc_slice_to_c_string(s->details);
	note_status(c, s->status, d);
	if (dbg)
		log_debug("export stream to %s: %s", c->target, dbg);
	gpr_free(d);
	gpr_free((void *)dbg);
}

static bool has_feature(const grpc_metadata_array *md, const char *feature)
{
	size_t fl = strlen(feature);

	for (size_t i = 0; i < md->count; i++) {
		const grpc_slice *v = &md->metadata[i].value;
		const char *p = (const char *)GRPC_SLICE_START_PTR(*v);
		size_t len = GRPC_SLICE_LENGTH(*v);

		if (grpc_slice_str_cmp(md->metadata[i].key, FLOW_MD_FEATURES))
			continue;
		/* a comma-separated list */
		for (size_t at = 0; at < len;) {
			size_t end = at;

			while (end < len && p[end] != ',')
				end++;
			while (at < end && p[at] == ' ')
				at++;
			if (end - at == fl && !memcmp(p + at, feature, fl))
				return true;
			at = end + 1;
		}
	}
	return false;
}

int flow_export_open(struct flow_client *c)
{
	grpc_op ops[2] = { { .op = GRPC_OP_SEND_INITIAL_METADATA },
			   { .op = GRPC_OP_RECV_INITIAL_METADATA } };
	int err;

	if (c->exp.call)
		return -EBUSY;
	c->last_err[0] = '\0';
	err = stream_start(c, &c->exp, FLOW_METHOD_EXPORT);
	if (err)
		goto fail;
	/* the service's initial metadata says what it accepts */
	ops[1].data.recv_initial_metadata.recv_initial_metadata = &c->exp.md_init;
	err = run_ops(c, c->exp.call, ops, 2, TAG(c, exp.md_init), c->timeout_ms);
	if (err == -ETIMEDOUT)
		snprintf(c->last_err, sizeof(c->last_err),
			 "DEADLINE_EXCEEDED: no answer within %u ms", c->timeout_ms);
	else if (err)
		failed_call_status(c, &c->exp);
	if (err)
		goto fail;
	c->exp.md_received = true;
	c->exp.columns = has_feature(&c->exp.md_init, FLOW_FEATURE_COLUMNS);
	c->st.streams++;
	return 0;
fail:
	c->st.send_errors++;
	stream_reset(&c->exp);
	log_error("export stream to %s: %s", c->target, c->last_err);
	return err == -ETIMEDOUT ? err : -ECONNREFUSED;
}

bool flow_export_columns(const struct flow_client *c)
{
	return c->exp.call && c->exp.columns;
}

static int export_send_bb(struct flow_client *c, grpc_byte_buffer *bb, size_t records)
{
	grpc_op op = { .op = GRPC_OP_SEND_MESSAGE };
	int err;

	op.data.send_message.send_message = bb;
	c->last_err[0] = '\0';
	err = run_ops(c, c->exp.call, &op, 1, TAG(c, exp.call), c->timeout_ms);
	grpc_byte_buffer_destroy(bb);
	if (err) {
		c->st.send_errors++;
		/* learn why (the service may have refused a message) */
		flow_export_close(c, NULL);
		return err == -ETIMEDOUT ? err : -ECONNRESET;
	}
	c->st.batches_sent++;
	c->st.records_sent += records;
	return 0;
}

int flow_export_send(struct flow_client *c, const FlowBatch *b)
{
	grpc_byte_buffer *bb;

	if (!c->exp.call)
		return -ENOTCONN;
	bb = flow_pack(&b->base);
	if (!bb)
		return -ENOMEM;
	return export_send_bb(c, bb, flow_batch_count(b));
}

int flow_export_send_raw(struct flow_client *c, const void *buf, size_t len, size_t records)
{
	grpc_slice s;
	grpc_byte_buffer *bb;

	if (!c->exp.call)
		return -ENOTCONN;
	s = grpc_slice_from_copied_buffer(buf, len);
	bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	if (!bb)
		return -ENOMEM;
	return export_send_bb(c, bb, records);
}

int flow_export_close(struct flow_client *c, Seg__Flow__V1__ExportAck *ack)
{
	struct stream *s = &c->exp;
	grpc_op ops[4] = {
		{ .op = GRPC_OP_SEND_CLOSE_FROM_CLIENT },
		{ .op = GRPC_OP_RECV_INITIAL_METADATA },
		{ .op = GRPC_OP_RECV_MESSAGE },
		{ .op = GRPC_OP_RECV_STATUS_ON_CLIENT },
	};
	Seg__Flow__V1__ExportAck *a = NULL;
	grpc_op *op = ops;
	size_t n = 4;
	int err;

	if (!s->call)
		return -ENOTCONN;
	ops[1].data.recv_initial_metadata.recv_initial_metadata = &s->md_init;
	ops[2].data.recv_message.recv_message = &s->recv;
	ops[3].data.recv_status_on_client.trailing_metadata = &s->md_trail;
	ops[3].data.recv_status_on_client.status = &s->status;
	ops[3].data.recv_status_on_client.status_details = &s->details;
	c->last_err[0] = '\0';
	if (s->md_received) { /* read at open */
		ops[1] = ops[0];
		op = ops + 1;
		n = 3;
	}
	err = run_ops(c, s->call, op, n, TAG(c, exp.status), c->timeout_ms);
	/* a failed batch still reports the call's status when it has one */
	if (err == -ECONNRESET && s->status != GRPC_STATUS_OK)
		err = 0;
	if (err) {
		err = log_err(err, "export stream to %s", c->target);
		goto out;
	}
	err = status_err(c, s, "export to", c->target);
	if (err)
		goto out;
	a = (void *)flow_unpack(&seg__flow__v1__export_ack__descriptor, s->recv, NULL);
	if (!a) {
		err = log_err(-EPROTO, "export to %s: no or bad ack", c->target);
		goto out;
	}
	c->st.acked_batches += a->batches;
	c->st.acked_records += a->records;
	c->st.last_acked_seq = a->last_seq;
	if (ack) {
		*ack = *a;
		ack->base.unknown_fields = NULL;
		ack->base.n_unknown_fields = 0;
	}
out:
	flow_msg_free(a);
	stream_reset(s);
	return err;
}

void flow_export_abort(struct flow_client *c)
{
	if (c->exp.call) {
		grpc_call_cancel(c->exp.call, NULL);
		stream_reset(&c->exp);
	}
}

/* ---- Query ---------------------------------------------------------------------- */

int flow_query(struct flow_client *c, const Seg__Flow__V1__QueryRequest *req,
	       Seg__Flow__V1__QueryResponse **resp)
{
	struct stream s;
	grpc_op ops[6] = {
		{ .op = GRPC_OP_SEND_INITIAL_METADATA },  { .op = GRPC_OP_SEND_MESSAGE },
		{ .op = GRPC_OP_SEND_CLOSE_FROM_CLIENT }, { .op = GRPC_OP_RECV_INITIAL_METADATA },
		{ .op = GRPC_OP_RECV_MESSAGE },		  { .op = GRPC_OP_RECV_STATUS_ON_CLIENT },
	};
	int err;

	*resp = NULL;
	err = stream_start(c, &s, FLOW_METHOD_QUERY);
	if (err)
		return err;
	ops[1].data.send_message.send_message = flow_pack(&req->base);
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &s.md_init;
	ops[4].data.recv_message.recv_message = &s.recv;
	ops[5].data.recv_status_on_client.trailing_metadata = &s.md_trail;
	ops[5].data.recv_status_on_client.status = &s.status;
	ops[5].data.recv_status_on_client.status_details = &s.details;
	err = run_ops(c, s.call, ops, 6, &s, c->timeout_ms);
	grpc_byte_buffer_destroy(ops[1].data.send_message.send_message);
	if (err) {
		err = log_err(err, "query %s", c->target);
		goto out;
	}
	err = status_err(c, &s, "query", c->target);
	if (err)
		goto out;
	*resp = (void *)flow_unpack(&seg__flow__v1__query_response__descriptor, s.recv, NULL);
	if (!*resp)
		err = log_err(-EPROTO, "query %s: bad response", c->target);
out:
	stream_reset(&s);
	return err;
}

/* ---- Watch ----------------------------------------------------------------------- */

int flow_watch_open(struct flow_client *c, const Seg__Flow__V1__WatchRequest *req)
{
	struct stream *s = &c->watch;
	grpc_op ops[4] = {
		{ .op = GRPC_OP_SEND_INITIAL_METADATA },
		{ .op = GRPC_OP_SEND_MESSAGE },
		{ .op = GRPC_OP_SEND_CLOSE_FROM_CLIENT },
		{ .op = GRPC_OP_RECV_INITIAL_METADATA },
	};
	grpc_op st = { .op = GRPC_OP_RECV_STATUS_ON_CLIENT };
	int err;

	if (s->call)
		return -EBUSY;
	err = stream_start(c, s, FLOW_METHOD_WATCH);
	if (err)
		return err;
	ops[1].data.send_message.send_message = flow_pack(&req->base);
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->md_init;
	err = run_ops(c, s->call, ops, 4, TAG(c, watch.md_init), c->timeout_ms);
	grpc_byte_buffer_destroy(ops[1].data.send_message.send_message);
	if (err) {
		stream_reset(s);
		return log_err(-ECONNREFUSED, "watch %s", c->target);
	}
	st.data.recv_status_on_client.trailing_metadata = &s->md_trail;
	st.data.recv_status_on_client.status = &s->status;
	st.data.recv_status_on_client.status_details = &s->details;
	if (grpc_call_start_batch(s->call, &st, 1, TAG(c, watch.status), NULL) != GRPC_CALL_OK) {
		stream_reset(s);
		return log_err(-EPROTO, "watch %s: status op", c->target);
	}
	s->status_pending = true;
	return 0;
}

int flow_watch_next(struct flow_client *c, FlowBatch **b, int timeout_ms)
{
	struct stream *s = &c->watch;
	int r;

	*b = NULL;
	if (!s->call)
		return -ENOTCONN;
	if (!s->recv_pending) {
		grpc_op op = { .op = GRPC_OP_RECV_MESSAGE };

		op.data.recv_message.recv_message = &s->recv;
		if (grpc_call_start_batch(s->call, &op, 1, TAG(c, watch.recv), NULL) !=
		    GRPC_CALL_OK)
			return -EPROTO;
		s->recv_pending = true;
	}
	r = wait_tag(c, TAG(c, watch.recv), timeout_ms);
	if (r == -ETIMEDOUT)
		return -EAGAIN;
	s->recv_pending = false;
	if (r == 1 && s->recv) {
		*b = (void *)flow_unpack(&seg__flow__v1__batch__descriptor, s->recv, NULL);
		grpc_byte_buffer_destroy(s->recv);
		s->recv = NULL;
		return *b ? 0 : log_err(-EPROTO, "watch %s: bad batch", c->target);
	}
	/* end of stream: the status says why */
	wait_tag(c, TAG(c, watch.status), -1);
	s->status_pending = false;
	r = status_err(c, s, "watch", c->target);
	return r ? r : -ENODATA;
}

void flow_watch_close(struct flow_client *c)
{
	stream_cancel(c, &c->watch, TAG(c, watch.status), TAG(c, watch.recv));
}

/* ---- backoff ---------------------------------------------------------------------- */

void flow_backoff_init(struct flow_backoff *b, unsigned base_ms, unsigned max_ms)
{
	b->base_ms = base_ms ? base_ms : 200;
	b->max_ms = max_ms ? max_ms : 30000;
	b->cur_ms = b->base_ms;
	b->failures = 0;
	b->rng = (uint32_t)flow_now_ns() | 1;
}

unsigned flow_backoff_next(struct flow_backoff *b)
{
	unsigned d = b->cur_ms, half = d / 2;

	b->rng ^= b->rng << 13;
	b->rng ^= b->rng >> 17;
	b->rng ^= b->rng << 5;
	d = half + (half ? b->rng % (half + 1) : 0);
	b->cur_ms = b->cur_ms > b->max_ms / 2 ? b->max_ms : b->cur_ms * 2;
	b->failures++;
	return d;
}

void flow_backoff_reset(struct flow_backoff *b)
{
	b->cur_ms = b->base_ms;
	b->failures = 0;
}
