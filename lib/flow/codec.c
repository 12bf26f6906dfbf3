// SPDX-License-Identifier: GPL-2.0-only
/*
 * lib/flow codec: the arena used to unpack messages without one malloc per
 * field, the batch builder with its workload dictionary, and the names
 * shared by every printer. No gRPC here (pack/unpack over grpc byte buffers
 * is bytebuf.c), so segctl's local commands link it without libgrpc.
 */
#include "flow.h"
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- arena ----------------------------------------------------------------- */

struct arena_chunk {
	struct arena_chunk *next;
	size_t size, used;
	max_align_t data[];
};

struct flow_arena {
	ProtobufCAllocator pa;
	struct arena_chunk *head; /* current chunk first */
	size_t chunk;
};

static void *arena_alloc(void *data, size_t size)
{
	struct flow_arena *a = data;
	struct arena_chunk *c = a->head;

	size = (size + 15) & ~(size_t)15;
	if (!c || c->size - c->used < size) {
		size_t sz = size > a->chunk ? size : a->chunk;

		c = malloc(sizeof(*c) + sz);
		if (!c)
			return NULL;
		c->size = sz;
		c->used = 0;
		c->next = a->head;
		a->head = c;
	}
	c->used += size;
	return (char *)c->data + c->used - size;
}

static void arena_nofree(void *data, void *ptr)
{
}

struct flow_arena *flow_arena_new(size_t chunk)
{
	struct flow_arena *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->chunk = chunk ? chunk : 64 * 1024;
	a->pa.alloc = arena_alloc;
	a->pa.free = arena_nofree;
	a->pa.allocator_data = a;
	return a;
}

void flow_arena_reset(struct flow_arena *a)
{
	struct arena_chunk *c, *next;

	if (!a || !a->head)
		return;
	/* keep the oldest (last) chunk, grown to the biggest seen */
	for (c = a->head; c->next; c = next) {
		next = c->next;
		free(c);
	}
	c->used = 0;
	a->head = c;
}

void flow_arena_free(struct flow_arena *a)
{
	struct arena_chunk *c, *next;

	if (!a)
		return;
	for (c = a->head; c; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}

ProtobufCAllocator *flow_arena_allocator(struct flow_arena *a)
{
	return &a->pa;
}

/* ---- batch builder ------------------------------------------------------------ */

struct rec_slot {
	FlowRec r;
	uint8_t src[16], dst[16];
};

struct wl_slot {
	FlowWorkload w;
	Seg__Flow__V1__Label *label_v; /* n_labels */
	Seg__Flow__V1__Label **label_p;
	char *strs; /* one allocation: ns, name, label keys and values */
};

struct flow_batch {
	FlowBatch msg;
	char *node;
	struct rec_slot *recs;
	FlowRec **rec_p;
	size_t n_recs, cap_recs;
	struct wl_slot *wls;
	FlowWorkload **wl_p;
	size_t n_wls, cap_wls;
	uint32_t *wl_hash; /* open addressing: index + 1, 0 = empty */
	size_t hash_cap; /* power of two, >= 2 * cap_wls */
	char **owned; /* strdup'd strings of records */
	size_t n_owned, cap_owned;
};

int flow_batch_msg_init(FlowBatch *msg, char **node_copy, const char *node, uint64_t session)
{
	seg__flow__v1__batch__init(msg);
	*node_copy = strdup(node ?: "");
	if (!*node_copy)
		return -ENOMEM;
	msg->version = FLOW_PROTO_VERSION;
	msg->node = *node_copy;
	msg->session = session;
	return 0;
}

struct flow_batch *flow_batch_new(const char *node, uint64_t session)
{
	struct flow_batch *b = calloc(1, sizeof(*b));

	if (b && flow_batch_msg_init(&b->msg, &b->node, node, session)) {
		free(b);
		return NULL;
	}
	return b;
}

static void wl_clear(struct flow_batch *b)
{
	for (size_t i = 0; i < b->n_wls; i++) {
		free(b->wls[i].label_v);
		free(b->wls[i].label_p);
		free(b->wls[i].strs);
	}
	b->n_wls = 0;
	if (b->wl_hash)
		memset(b->wl_hash, 0, b->hash_cap * sizeof(*b->wl_hash));
}

void flow_batch_reset(struct flow_batch *b)
{
	wl_clear(b);
	for (size_t i = 0; i < b->n_owned; i++)
		free(b->owned[i]);
	b->n_owned = 0;
	b->n_recs = 0;
}

void flow_batch_free(struct flow_batch *b)
{
	if (!b)
		return;
	flow_batch_reset(b);
	free(b->recs);
	free(b->rec_p);
	free(b->wls);
	free(b->wl_p);
	free(b->wl_hash);
	free(b->owned);
	free(b->node);
	free(b);
}

static int grow(void **v, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 64;
	void *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	p = realloc(*v, n * elem);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = n;
	return 0;
}

static uint32_t str_hash(uint32_t h, const char *s)
{
	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

static int wl_rehash(struct flow_batch *b, size_t cap)
{
	uint32_t *h = calloc(cap, sizeof(*h));

	if (!h)
		return -ENOMEM;
	free(b->wl_hash);
	b->wl_hash = h;
	b->hash_cap = cap;
	for (size_t i = 0; i < b->n_wls; i++) {
		uint32_t k =
			str_hash(str_hash(2166136261u, b->wls[i].w.namespace_), b->wls[i].w.name);
		size_t j = k & (cap - 1);

		while (h[j])
			j = (j + 1) & (cap - 1);
		h[j] = i + 1;
	}
	return 0;
}

static int wl_fill(struct wl_slot *s, const char *ns, const char *name, uint32_t identity,
		   const char *const *labels, size_t n)
{
	size_t len = strlen(ns) + strlen(name) + 2, off;

	for (size_t i = 0; i < n; i++)
		len += strlen(labels[i]) + 2;
	seg__flow__v1__workload__init(&s->w);
	s->strs = malloc(len);
	s->label_v = n ? calloc(n, sizeof(*s->label_v)) : NULL;
	s->label_p = n ? calloc(n, sizeof(*s->label_p)) : NULL;
	if (!s->strs || (n && (!s->label_v || !s->label_p))) {
		free(s->strs);
		free(s->label_v);
		free(s->label_p);
		return -ENOMEM;
	}
	off = stpcpy(s->strs, ns) - s->strs + 1;
	s->w.namespace_ = s->strs;
	s->w.name = s->strs + off;
	off += stpcpy(s->strs + off, name) - (s->strs + off) + 1;
	for (size_t i = 0; i < n; i++) {
		char *k = s->strs + off, *eq;

		off += stpcpy(k, labels[i]) - k + 1;
		seg__flow__v1__label__init(&s->label_v[i]);
		eq = strchr(k, '=');
		s->label_v[i].key = k;
		if (eq) {
			*eq = '\0';
			s->label_v[i].value = eq + 1;
		}
		s->label_p[i] = &s->label_v[i];
	}
	s->w.labels = s->label_p;
	s->w.n_labels = n;
	s->w.identity = identity;
	return 0;
}

int flow_batch_workload(struct flow_batch *b, const char *ns, const char *name, uint32_t identity,
			const char *const *labels, size_t n_labels)
{
	uint32_t k = str_hash(str_hash(2166136261u, ns), name);
	size_t j;
	int err;

	if (b->hash_cap < 2 * (b->n_wls + 1)) {
		err = wl_rehash(b, b->hash_cap ? 2 * b->hash_cap : 64);
		if (err)
			return err;
	}
	for (j = k & (b->hash_cap - 1); b->wl_hash[j]; j = (j + 1) & (b->hash_cap - 1)) {
		struct wl_slot *s = &b->wls[b->wl_hash[j] - 1];

		if (!strcmp(s->w.namespace_, ns) && !strcmp(s->w.name, name))
			return b->wl_hash[j];
	}
	if (grow((void **)&b->wls, &b->cap_wls, b->n_wls + 1, sizeof(*b->wls)))
		return -ENOMEM;
	err = wl_fill(&b->wls[b->n_wls], ns, name, identity, labels, n_labels);
	if (err)
		return err;
	b->wl_hash[j] = ++b->n_wls;
	return b->n_wls;
}

int flow_batch_workload_msg(struct flow_batch *b, const FlowWorkload *w)
{
	size_t n = w->n_labels;
	char **kv = n ? calloc(n, sizeof(*kv)) : NULL;
	int r = -ENOMEM;

	if (n && !kv)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (asprintf(&kv[i], "%s=%s", w->labels[i]->key, w->labels[i]->value) < 0) {
			kv[i] = NULL;
			goto out;
		}
	r = flow_batch_workload(b, w->namespace_, w->name, w->identity, (const char *const *)kv, n);
out:
	for (size_t i = 0; i < n; i++)
		free(kv[i]);
	free(kv);
	return r;
}

static int own_str(struct flow_batch *b, char **s)
{
	char *c;

	if (!*s || !**s) {
		*s = (char *)protobuf_c_empty_string;
		return 0;
	}
	if (grow((void **)&b->owned, &b->cap_owned, b->n_owned + 1, sizeof(*b->owned)))
		return -ENOMEM;
	c = strdup(*s);
	if (!c)
		return -ENOMEM;
	b->owned[b->n_owned++] = c;
	*s = c;
	return 0;
}

int flow_batch_add(struct flow_batch *b, const FlowRec *r)
{
	struct rec_slot *s;

	if (grow((void **)&b->recs, &b->cap_recs, b->n_recs + 1, sizeof(*b->recs)))
		return -ENOMEM;
	s = &b->recs[b->n_recs];
	s->r = *r;
	s->r.src_addr.len = r->src_addr.len > 16 ? 16 : r->src_addr.len;
	s->r.dst_addr.len = r->dst_addr.len > 16 ? 16 : r->dst_addr.len;
	if (s->r.src_addr.len)
		memcpy(s->src, r->src_addr.data, s->r.src_addr.len);
	if (s->r.dst_addr.len)
		memcpy(s->dst, r->dst_addr.data, s->r.dst_addr.len);
	s->r.src_addr.data = s->src; /* re-pointed in flow_batch_msg (recs may move) */
	s->r.dst_addr.data = s->dst;
	if (own_str(b, &s->r.node) || own_str(b, &s->r.policy) || own_str(b, &s->r.rule) ||
	    own_str(b, &s->r.reason_text))
		return -ENOMEM;
	b->n_recs++;
	return 0;
}

size_t flow_batch_len(const struct flow_batch *b)
{
	return b->n_recs;
}

const FlowBatch *flow_batch_msg(struct flow_batch *b, uint64_t seq, uint64_t dropped)
{
	size_t cap_p = 0;

	/* pointer arrays sized to the slots' capacity */
	if (b->n_recs) {
		cap_p = b->cap_recs;
		FlowRec **p = realloc(b->rec_p, cap_p * sizeof(*p));

		if (!p)
			return NULL;
		b->rec_p = p;
	}
	for (size_t i = 0; i < b->n_recs; i++) {
		b->recs[i].r.src_addr.data = b->recs[i].src;
		b->recs[i].r.dst_addr.data = b->recs[i].dst;
		b->rec_p[i] = &b->recs[i].r;
	}
	if (b->n_wls) {
		FlowWorkload **p = realloc(b->wl_p, b->cap_wls * sizeof(*p));

		if (!p)
			return NULL;
		b->wl_p = p;
	}
	for (size_t i = 0; i < b->n_wls; i++) {
		b->wls[i].w.labels = b->wls[i].label_p;
		b->wl_p[i] = &b->wls[i].w;
	}
	b->msg.flows = b->rec_p;
	b->msg.n_flows = b->n_recs;
	b->msg.workloads = b->wl_p;
	b->msg.n_workloads = b->n_wls;
	b->msg.seq = seq;
	b->msg.dropped = dropped;
	return &b->msg;
}

void flow_msg_free(void *msg)
{
	if (msg)
		protobuf_c_message_free_unpacked(msg, NULL);
}

/* ---- names ------------------------------------------------------------------------ */

static const char *const verdict_names[] = { "unspecified", "allow", "deny", "audit" };

const char *flow_verdict_name(int v)
{
	return v >= 0 && v < 4 ? verdict_names[v] : "unknown";
}

int flow_verdict_parse(const char *s)
{
	for (int i = 1; i < 4; i++)
		if (!strcasecmp(s, verdict_names[i]))
			return i;
	if (!strcasecmp(s, "allowed"))
		return SEG__FLOW__V1__VERDICT__VERDICT_ALLOW;
	if (!strcasecmp(s, "denied") || !strcasecmp(s, "drop") || !strcasecmp(s, "dropped"))
		return SEG__FLOW__V1__VERDICT__VERDICT_DENY;
	return -EINVAL;
}

const char *flow_kind_name(int k)
{
	static const char *const n[] = { "unspecified", "new", "deny", "revoked", "update", "end" };

	return k >= 0 && k < 6 ? n[k] : "unknown";
}

const char *flow_proto_name(uint32_t proto, char *buf, size_t len)
{
	switch (proto) {
	case 6:
		return "TCP";
	case 17:
		return "UDP";
	case 132:
		return "SCTP";
	case 1:
		return "ICMP";
	case 58:
		return "ICMPv6";
	case 0:
		return "any";
	}
	snprintf(buf, len, "%u", proto);
	return buf;
}

const char *flow_addr_str(const ProtobufCBinaryData *a, char *buf, size_t len)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (a->len == 4 && inet_ntop(AF_INET, a->data, buf, len))
		return buf;
	if (a->len == 16 && !memcmp(a->data, v4mapped, 12) &&
	    inet_ntop(AF_INET, a->data + 12, buf, len))
		return buf;
	if (a->len == 16 && inet_ntop(AF_INET6, a->data, buf, len))
		return buf;
	return "-";
}

const char *flow_workload_str(FlowWorkload *const *wl, size_t n, uint32_t idx, char *buf,
			      size_t len)
{
	if (!idx || idx > n)
		return "-";
	snprintf(buf, len, "%s/%s", wl[idx - 1]->namespace_, wl[idx - 1]->name);
	return buf;
}

uint64_t flow_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int flow_parse_duration(const char *s, uint64_t *ns)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1000000000ull;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (!strcmp(end, "ms"))
		mul = 1000000ull;
	else if (!strcmp(end, "m"))
		mul *= 60;
	else if (!strcmp(end, "h"))
		mul *= 3600;
	else if (!strcmp(end, "d"))
		mul *= 86400;
	else if (*end && strcmp(end, "s"))
		return -EINVAL;
	if (v > UINT64_MAX / mul)
		return -EINVAL;
	*ns = v * mul;
	return 0;
}
