/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * lib/flow: flow records on the wire (proto/seg_flow.proto) and the gRPC
 * plumbing shared by segd's exporter, the topology service and segctl.
 *
 *   codec.c   arena allocator for unpacking, batch builder (workload
 *             dictionary), names; no gRPC (segctl links it without libgrpc)
 *   cols.c    the columnar form of a batch (Batch.columns): encoder with
 *             string/address/workload tables, checks and readers; no gRPC
 *   bytebuf.c pack/unpack to and from grpc byte buffers
 *   creds.c   channel and server credentials: insecure or TLS (server
 *             certificate, optional client certificates)
 *   client.c  a blocking client: Export stream (open, send, close with the
 *             ack), Query, Watch; reconnect backoff; counters
 *   internal.h what codec.c and cols.c share (the Batch header)
 *
 * Method paths are spelled here: the gRPC C core has no codegen.
 */
#ifndef SEG_FLOW_H
#define SEG_FLOW_H

#include "seg_flow.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FLOW_PROTO_VERSION 1
#define FLOW_METHOD_EXPORT "/seg.flow.v1.Flows/Export"
#define FLOW_METHOD_QUERY "/seg.flow.v1.Flows/Query"
#define FLOW_METHOD_WATCH "/seg.flow.v1.Flows/Watch"
#define FLOW_DEFAULT_GRPC "127.0.0.1:4245"
#define FLOW_DEFAULT_HTTP "127.0.0.1:4246"
/* Export features a service announces in its initial metadata: a
 * comma-separated list under FLOW_MD_FEATURES. */
#define FLOW_MD_FEATURES "seg-flow-features"
#define FLOW_FEATURE_COLUMNS "columns" /* accepts Batch.columns */
/* Largest message either side accepts (gRPC's default is 4 MiB). */
#define FLOW_MAX_MESSAGE (16u << 20)

typedef Seg__Flow__V1__Flow FlowRec;
typedef Seg__Flow__V1__Batch FlowBatch;
typedef Seg__Flow__V1__Workload FlowWorkload;
typedef Seg__Flow__V1__Columns FlowColumns;

/* ---- arena: one allocator per unpacked message, freed at once ----------- */
struct flow_arena;
struct flow_arena *flow_arena_new(size_t chunk);
void flow_arena_reset(struct flow_arena *a); /* keeps the first chunk */
void flow_arena_free(struct flow_arena *a);
ProtobufCAllocator *flow_arena_allocator(struct flow_arena *a);

/* ---- batch builder ----------------------------------------------------------
 * Owns the strings and arrays of one Batch. Workloads are interned by
 * (namespace, name): flow_batch_workload() returns the index + 1 to store
 * in FlowRec.src_workload/dst_workload. flow_batch_add() copies the record
 * (strings included). flow_batch_reset() keeps the capacity.
 */
struct flow_batch;
struct flow_batch *flow_batch_new(const char *node, uint64_t session);
void flow_batch_free(struct flow_batch *b);
void flow_batch_reset(struct flow_batch *b); /* next seq, no flows/workloads */
/* labels: "k=v" strings. Returns index + 1 (> 0) or -ENOMEM. */
int flow_batch_workload(struct flow_batch *b, const char *ns, const char *name, uint32_t identity,
			const char *const *labels, size_t n_labels);
/* The same from a received workload message. */
int flow_batch_workload_msg(struct flow_batch *b, const FlowWorkload *w);
int flow_batch_add(struct flow_batch *b, const FlowRec *r); /* 0 or -ENOMEM */
size_t flow_batch_len(const struct flow_batch *b);
/* The message to send; valid until the next call on b. Sets seq. */
const FlowBatch *flow_batch_msg(struct flow_batch *b, uint64_t seq, uint64_t dropped);

/* ---- columnar batches (Batch.columns) ---------------------------------------
 * The encoder: like the builder above, but records go to packed columns and
 * strings, addresses and workloads to per-batch tables (cheap to encode and
 * to decode). flow_cols_workload() returns the ref (index + 1) to store in
 * FlowRec.src_workload/dst_workload before flow_cols_add(); the record's
 * strings and addresses are interned (copied). reason_text is not sent.
 */
struct flow_cols;
struct flow_cols *flow_cols_new(const char *node, uint64_t session);
void flow_cols_free(struct flow_cols *b); /* NULL-safe */
void flow_cols_reset(struct flow_cols *b); /* no records, tables empty; keeps capacity */
int flow_cols_workload(struct flow_cols *b, const char *ns, const char *name, uint32_t identity,
		       const char *const *labels, size_t n_labels); /* ref > 0, -ENOMEM */
int flow_cols_str(struct flow_cols *b, const char *s); /* ref, 0 for NULL/"", -ENOMEM */
int flow_cols_addr(struct flow_cols *b, const uint8_t *a, size_t len); /* len 4/16; else 0 */
int flow_cols_add(struct flow_cols *b, const FlowRec *r); /* 0 or -ENOMEM */
/* Faster interning for a caller with stable names (segd's snapshot): a key
 * the caller guarantees names the same content for the whole batch
 * (until flow_cols_reset) is looked up as an integer; hashes the strings
 * only the first time. */
int flow_cols_workload_key(struct flow_cols *b, uint64_t key, const char *ns, const char *name,
			   uint32_t identity, const char *const *labels, size_t n_labels);
int flow_cols_str_key(struct flow_cols *b, uint64_t key, const char *s); /* ref, 0 for "" */
/* flow_cols_add() with the policy and rule text as refs from
 * flow_cols_str*() (-1: intern r->policy / r->rule instead). */
int flow_cols_add_ref(struct flow_cols *b, const FlowRec *r, int policy, int rule_text);
size_t flow_cols_len(const struct flow_cols *b);
/* A Batch with .columns (and no .flows); valid until the next call on b. */
const FlowBatch *flow_cols_msg(struct flow_cols *b, uint64_t seq, uint64_t dropped);

/* Decoding. flow_cols_check(): 0 when every column has count entries or
 * none (and, with count > 0, at least one has them: a tiny message cannot
 * claim billions of records) and every reference is in its table, else
 * -EINVAL (refuse the batch). The readers below assume a checked batch. */
int flow_cols_check(const FlowColumns *c);
int flow_batch_check(const FlowBatch *b); /* its columns, if any */
size_t flow_batch_count(const FlowBatch *b); /* records in both forms */
/* Column field f of record i (0 when the column is empty). */
#define FLOW_COL(c, f, i) ((c)->n_##f ? (c)->f[i] : 0)
/* Record i as a FlowRec whose strings and addresses point into c; its
 * workloads stay refs into c's workload columns; reason_text "". */
void flow_cols_rec(const FlowColumns *c, size_t i, FlowRec *r);
struct flow_cols_wl {
	const char *ns, *name, *node;
	uint32_t identity;
	size_t n_labels;
	const uint32_t *labels; /* string refs: flow_cols_label() */
};
/* Every workload of c: out[n_wl_namespace] (ref - 1 = index). */
void flow_cols_wls(const FlowColumns *c, struct flow_cols_wl *out);
const char *flow_cols_label(const FlowColumns *c, const struct flow_cols_wl *w,
			    size_t k); /* "key=value" */
/* Appends c's records (and their workloads) to a v1 builder: for a reader
 * that wants Flow messages (Watch, an old service). 0 or -ENOMEM. */
int flow_batch_add_cols(struct flow_batch *out, const FlowColumns *c);
/* The other way: appends a batch's Flow messages (and their workloads) to
 * a columnar encoder. 0 or -ENOMEM. */
int flow_cols_add_flows(struct flow_cols *c, const FlowBatch *in);

/* ---- pack / unpack ---------------------------------------------------------- */
struct grpc_byte_buffer;
/* NULL on allocation failure. */
struct grpc_byte_buffer *flow_pack(const ProtobufCMessage *m);
/* Unpacks bb as desc's message with alloc (NULL: malloc). NULL when the
 * bytes are not that message. */
ProtobufCMessage *flow_unpack(const ProtobufCMessageDescriptor *desc, struct grpc_byte_buffer *bb,
			      ProtobufCAllocator *alloc);

/* ---- names -------------------------------------------------------------- */
const char *flow_verdict_name(int v); /* "allow", "deny", "audit", "unspecified" */
int flow_verdict_parse(const char *s); /* Verdict or -EINVAL */
const char *flow_kind_name(int k);
const char *flow_proto_name(uint32_t proto, char *buf, size_t len); /* "TCP", "132" */
/* src/dst address of a record as text ("10.0.0.1", "fd00::1", "-"). */
const char *flow_addr_str(const ProtobufCBinaryData *a, char *buf, size_t len);
/* "ns/name", or "world"/"-" for index 0; buf >= 2 * 254 + 2. */
const char *flow_workload_str(FlowWorkload *const *wl, size_t n, uint32_t idx, char *buf,
			      size_t len);
uint64_t flow_now_ns(void); /* CLOCK_REALTIME */
/* "5m", "1h", "30s", "2d", or plain seconds -> ns; 0 or -EINVAL. */
int flow_parse_duration(const char *s, uint64_t *ns);

/* ---- credentials ------------------------------------------------------------ */
struct flow_tls {
	const char *ca_file; /* client: CA of the server; server: CA of clients (optional) */
	const char *cert_file; /* server: its certificate; client: its own (optional) */
	const char *key_file;
};
struct grpc_channel_credentials;
struct grpc_server_credentials;
/* tls NULL or empty: insecure. 0 or -errno (file named in the log). */
int flow_channel_creds(const struct flow_tls *tls, struct grpc_channel_credentials **out);
/* TLS when cert_file is set; with ca_file, client certificates are required. */
int flow_server_creds(const struct flow_tls *tls, struct grpc_server_credentials **out);

/* ---- client ----------------------------------------------------------------- */
struct flow_client_opts {
	const char *target; /* "host:port" or "unix:/path" */
	struct flow_tls tls;
	unsigned timeout_ms; /* per operation (connect, send, unary call); 0 = 5000 */
};

struct flow_client_stats {
	uint64_t streams; /* Export streams opened */
	uint64_t batches_sent;
	uint64_t records_sent;
	uint64_t send_errors; /* sends or opens that failed */
	uint64_t acked_batches; /* as reported by the service's acks */
	uint64_t acked_records;
	uint64_t last_acked_seq;
};

struct flow_client;
int flow_client_new(struct flow_client **c, const struct flow_client_opts *o);
void flow_client_free(struct flow_client *c); /* NULL-safe; aborts an open stream */
const struct flow_client_stats *flow_client_stats(const struct flow_client *c);

/* Export: open a stream, send batches, close to get the ack. A failed
 * send aborts the stream (-ECONNRESET, -ETIMEDOUT); the caller keeps the
 * unacknowledged batches and resends them after flow_export_open() (the
 * service applies each (node, session, seq) once). */
int flow_export_open(struct flow_client *c);
int flow_export_send(struct flow_client *c, const FlowBatch *b);
/* The same with a Batch already packed (records: for the counters). */
int flow_export_send_raw(struct flow_client *c, const void *buf, size_t len, size_t records);
/* Does the service of the open stream accept Batch.columns (it said so in
 * its initial metadata)? false with no stream. */
bool flow_export_columns(const struct flow_client *c);
/* Half-closes and waits for the ack; ack may be NULL. 0, or -errno with the
 * status text logged (-EINVAL: the service refused a message). */
int flow_export_close(struct flow_client *c, Seg__Flow__V1__ExportAck *ack);
void flow_export_abort(struct flow_client *c);
bool flow_export_is_open(const struct flow_client *c);

/* Query: *resp freed with flow_msg_free(). */
int flow_query(struct flow_client *c, const Seg__Flow__V1__QueryRequest *req,
	       Seg__Flow__V1__QueryResponse **resp);
/* Watch: one stream per client. next: 0 with *b (flow_msg_free), -EAGAIN
 * after timeout_ms without a batch (-1: wait forever), -ENODATA when the
 * service ended the stream, other -errno on failure. */
int flow_watch_open(struct flow_client *c, const Seg__Flow__V1__WatchRequest *req);
int flow_watch_next(struct flow_client *c, FlowBatch **b, int timeout_ms);
void flow_watch_close(struct flow_client *c);
void flow_msg_free(void *msg); /* NULL-safe; messages unpacked with malloc */
/* Why the last failed operation failed, as the gRPC core put it (status
 * code name and details, e.g. the TLS handshake's error); "" if unknown.
 * Valid until the next call on c. */
const char *flow_client_last_error(const struct flow_client *c);

/* ---- reconnect backoff: exponential with jitter ---------------------------- */
struct flow_backoff {
	unsigned base_ms; /* first delay (default 200) */
	unsigned max_ms; /* cap (default 30000) */
	unsigned cur_ms;
	unsigned failures; /* consecutive */
	uint32_t rng;
};
void flow_backoff_init(struct flow_backoff *b, unsigned base_ms, unsigned max_ms);
/* Delay before the next attempt, in [cur/2, cur]; doubles cur up to max. */
unsigned flow_backoff_next(struct flow_backoff *b);
void flow_backoff_reset(struct flow_backoff *b); /* after a success */

#endif
