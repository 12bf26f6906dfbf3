// SPDX-License-Identifier: GPL-2.0-only
/*
 * lib/flow columns: the columnar form of a batch's records (Batch.columns,
 * proto/seg_flow.proto). The encoder interns strings, addresses and
 * workloads into per-batch tables and writes every record field into its
 * column; a column no record uses is sent empty. Decoders check a batch
 * once (flow_cols_check) and then read the columns directly.
 */
#include "flow.h"
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	C32_META,
	C32_PORTS,
	C32_SADDR,
	C32_DADDR,
	C32_SWL,
	C32_DWL,
	C32_SID,
	C32_DID,
	C32_POLICY,
	C32_RULE_ID,
	C32_RULE,
	C32_REASON,
	C32_FLAGS,
	C32_SUPP,
	C32_NODE,
	N_C32
};
enum { C64_TIME, C64_PKF, C64_BYF, C64_PKR, C64_BYR, C64_FIRST, C64_LAST, N_C64 };

/* open addressing: ref (index + 1), 0 = empty; hash kept beside it */
struct itab {
	uint32_t *ref, *hash;
	uint32_t cap; /* power of two, >= 2 * entries */
};

/* caller's keys -> refs (flow_cols_workload_key, flow_cols_str_key) */
struct kmap {
	uint64_t *key;
	uint32_t *ref; /* 0 = empty */
	uint32_t cap, n;
};

struct flow_cols {
	FlowBatch msg;
	FlowColumns cols;
	char *node;
	/* string table: bytes in sbuf, offsets in soff; pointers built per msg */
	char *sbuf;
	size_t slen, scap;
	uint32_t *soff, *slen_of; /* offset and length of each string */
	char **sptr;
	uint32_t n_str, cap_str, cap_sptr;
	struct itab st;
	/* address table */
	uint8_t *addrs;
	uint32_t n_addr, cap_addr;
	struct itab at;
	/* workloads */
	uint32_t *wl_ns, *wl_name, *wl_id, *wl_nlab, *labels;
	uint32_t n_wl, cap_wl, n_lab, cap_lab;
	uint32_t wl_used; /* bit 0: identity, 1: labels */
	struct itab wt;
	struct kmap wk, sk;
	/* records */
	uint32_t *c32[N_C32];
	uint64_t *c64[N_C64];
	uint32_t used32, used64;
	uint32_t n, cap;
};

/* Word at a time: names and addresses are short, and this runs several
 * times per record on the exporter. */
static uint32_t hash_bytes(uint32_t seed, const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull), w;
	uint32_t lo, hi;

	for (; n >= 8; b += 8, n -= 8) {
		memcpy(&w, b, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	if (n >= 4) { /* the tail as two overlapping fixed-size loads */
		memcpy(&lo, b, 4);
		memcpy(&hi, b + n - 4, 4);
		h = (h ^ ((uint64_t)hi << 32 | lo)) * 0xc4ceb9fe1a85ec53ull;
	} else if (n) {
		w = (uint64_t)b[0] << 16 | (uint64_t)b[n >> 1] << 8 | b[n - 1];
		h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
	}
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	return (uint32_t)(h >> 32);
}

static int itab_grow(struct itab *t, uint32_t entries)
{
	uint32_t cap = t->cap ? t->cap : 256, *ref, *hash;

	if (t->cap >= 2 * (entries + 1))
		return 0;
	while (cap < 2 * (entries + 1))
		cap *= 2;
	ref = calloc(cap, sizeof(*ref));
	hash = calloc(cap, sizeof(*hash));
	if (!ref || !hash) {
		free(ref);
		free(hash);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < t->cap; i++) {
		uint32_t j;

		if (!t->ref[i])
			continue;
		for (j = t->hash[i] & (cap - 1); ref[j]; j = (j + 1) & (cap - 1))
			;
		ref[j] = t->ref[i];
		hash[j] = t->hash[i];
	}
	free(t->ref);
	free(t->hash);
	t->ref = ref;
	t->hash = hash;
	t->cap = cap;
	return 0;
}

static void itab_clear(struct itab *t)
{
	if (t->ref)
		memset(t->ref, 0, t->cap * sizeof(*t->ref));
}

static void itab_free(struct itab *t)
{
	free(t->ref);
	free(t->hash);
}

static int grow(void **v, uint32_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 64;
	void *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	if (n > UINT32_MAX)
		return -ENOMEM;
	p = realloc(*v, n * elem);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = n;
	return 0;
}

struct flow_cols *flow_cols_new(const char *node, uint64_t session)
{
	struct flow_cols *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	seg__flow__v1__columns__init(&b->cols);
	if (flow_batch_msg_init(&b->msg, &b->node, node, session)) {
		free(b);
		return NULL;
	}
	return b;
}

void flow_cols_reset(struct flow_cols *b)
{
	b->slen = 0;
	b->n_str = 0;
	itab_clear(&b->st);
	b->n_addr = 0;
	itab_clear(&b->at);
	b->n_wl = 0;
	b->n_lab = 0;
	b->wl_used = 0;
	itab_clear(&b->wt);
	if (b->wk.ref)
		memset(b->wk.ref, 0, b->wk.cap * sizeof(*b->wk.ref));
	if (b->sk.ref)
		memset(b->sk.ref, 0, b->sk.cap * sizeof(*b->sk.ref));
	b->wk.n = b->sk.n = 0;
	b->n = 0;
	b->used32 = 0;
	b->used64 = 0;
}

void flow_cols_free(struct flow_cols *b)
{
	if (!b)
		return;
	free(b->node);
	free(b->sbuf);
	free(b->soff);
	free(b->slen_of);
	free(b->sptr);
	itab_free(&b->st);
	free(b->addrs);
	itab_free(&b->at);
	free(b->wl_ns);
	free(b->wl_name);
	free(b->wl_id);
	free(b->wl_nlab);
	free(b->labels);
	itab_free(&b->wt);
	free(b->wk.key);
	free(b->wk.ref);
	free(b->sk.key);
	free(b->sk.ref);
	for (int k = 0; k < N_C32; k++)
		free(b->c32[k]);
	for (int k = 0; k < N_C64; k++)
		free(b->c64[k]);
	free(b);
}

static const char *str_at(const struct flow_cols *b, uint32_t ref)
{
	return b->sbuf + b->soff[ref - 1];
}

static int str_ref(struct flow_cols *b, const char *s, size_t len, uint32_t h)
{
	uint32_t j, cap;

	if (itab_grow(&b->st, b->n_str))
		return -ENOMEM;
	for (j = h & (b->st.cap - 1); b->st.ref[j]; j = (j + 1) & (b->st.cap - 1)) {
		uint32_t r = b->st.ref[j];

		if (b->st.hash[j] == h && b->slen_of[r - 1] == len && !memcmp(str_at(b, r), s, len))
			return r;
	}
	if (b->slen + len + 1 > b->scap) {
		size_t n = b->scap ? b->scap : 4096;
		char *p;

		while (n < b->slen + len + 1)
			n *= 2;
		p = realloc(b->sbuf, n);
		if (!p)
			return -ENOMEM;
		b->sbuf = p;
		b->scap = n;
	}
	cap = b->cap_str;
	if (grow((void **)&b->soff, &cap, b->n_str + 1, sizeof(*b->soff)))
		return -ENOMEM;
	cap = b->cap_str;
	if (grow((void **)&b->slen_of, &cap, b->n_str + 1, sizeof(*b->slen_of)))
		return -ENOMEM;
	b->cap_str = cap;
	memcpy(b->sbuf + b->slen, s, len);
	b->sbuf[b->slen + len] = '\0';
	b->soff[b->n_str] = b->slen;
	b->slen_of[b->n_str] = len;
	b->slen += len + 1;
	b->st.ref[j] = ++b->n_str;
	b->st.hash[j] = h;
	return b->n_str;
}

int flow_cols_str(struct flow_cols *b, const char *s)
{
	size_t len;

	if (!s || !*s)
		return 0;
	len = strlen(s);
	return str_ref(b, s, len, hash_bytes(2166136261u, s, len));
}

int flow_cols_addr(struct flow_cols *b, const uint8_t *a, size_t len)
{
	uint8_t k[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	uint64_t w[2], x;
	uint32_t h, j, cap;

	if (len == 4)
		memcpy(k + 12, a, 4);
	else if (len == 16)
		memcpy(k, a, 16);
	else
		return 0;
	memcpy(w, k, 16);
	x = w[0] * 0x9e3779b97f4a7c15ull ^ w[1]; /* then murmur3's finalizer */
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	h = (uint32_t)(x ^ x >> 33);
	if (itab_grow(&b->at, b->n_addr))
		return -ENOMEM;
	for (j = h & (b->at.cap - 1); b->at.ref[j]; j = (j + 1) & (b->at.cap - 1)) {
		uint64_t o[2];

		if (b->at.hash[j] != h)
			continue;
		memcpy(o, b->addrs + 16 * (b->at.ref[j] - 1), 16);
		if (o[0] == w[0] && o[1] == w[1])
			return b->at.ref[j];
	}
	cap = b->cap_addr;
	if (grow((void **)&b->addrs, &cap, b->n_addr + 1, 16))
		return -ENOMEM;
	b->cap_addr = cap;
	memcpy(b->addrs + 16 * b->n_addr, k, 16);
	b->at.ref[j] = ++b->n_addr;
	b->at.hash[j] = h;
	return b->n_addr;
}

int flow_cols_workload(struct flow_cols *b, const char *ns, const char *name, uint32_t identity,
		       const char *const *labels, size_t n_labels)
{
	size_t lns = strlen(ns), lname = strlen(name);
	uint32_t hns = hash_bytes(2166136261u, ns, lns),
		 hname = hash_bytes(2166136261u, name, lname);
	uint32_t h = hns * 31u + hname, j, cap;
	int rns, rname;

	if (itab_grow(&b->wt, b->n_wl))
		return -ENOMEM;
	for (j = h & (b->wt.cap - 1); b->wt.ref[j]; j = (j + 1) & (b->wt.cap - 1)) {
		uint32_t w = b->wt.ref[j] - 1, rn = b->wl_ns[w], rm = b->wl_name[w];

		if (b->wt.hash[j] == h && b->slen_of[rn - 1] == lns &&
		    b->slen_of[rm - 1] == lname && !memcmp(str_at(b, rn), ns, lns) &&
		    !memcmp(str_at(b, rm), name, lname))
			return b->wt.ref[j];
	}
	/* a new workload: "" names are strings too (refs must be > 0) */
	rns = str_ref(b, ns, lns, hns);
	rname = str_ref(b, name, lname, hname);
	if (rns < 0 || rname < 0)
		return -ENOMEM;
	cap = b->cap_wl;
	if (grow((void **)&b->wl_ns, &cap, b->n_wl + 1, sizeof(uint32_t)))
		return -ENOMEM;
	cap = b->cap_wl;
	if (grow((void **)&b->wl_name, &cap, b->n_wl + 1, sizeof(uint32_t)))
		return -ENOMEM;
	cap = b->cap_wl;
	if (grow((void **)&b->wl_id, &cap, b->n_wl + 1, sizeof(uint32_t)))
		return -ENOMEM;
	cap = b->cap_wl;
	if (grow((void **)&b->wl_nlab, &cap, b->n_wl + 1, sizeof(uint32_t)))
		return -ENOMEM;
	b->cap_wl = cap;
	cap = b->cap_lab;
	if (grow((void **)&b->labels, &cap, b->n_lab + n_labels, sizeof(uint32_t)))
		return -ENOMEM;
	b->cap_lab = cap;
	b->wl_nlab[b->n_wl] = 0;
	for (size_t i = 0; i < n_labels; i++) {
		int r = flow_cols_str(b, labels[i]);

		if (r < 0) {
			b->n_lab -= b->wl_nlab[b->n_wl];
			return r;
		}
		if (!r) /* an empty label string: not sent */
			continue;
		b->labels[b->n_lab++] = r;
		b->wl_nlab[b->n_wl]++;
		b->wl_used |= 2;
	}
	b->wl_ns[b->n_wl] = rns;
	b->wl_name[b->n_wl] = rname;
	b->wl_id[b->n_wl] = identity;
	b->wl_used |= identity ? 1 : 0;
	b->wt.ref[j] = ++b->n_wl;
	b->wt.hash[j] = h;
	return b->n_wl;
}

static uint32_t key_hash(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return (uint32_t)k;
}

/* slot of key in m (ref 0: free slot for it); -ENOMEM */
static long kmap_slot(struct kmap *m, uint64_t key)
{
	uint32_t j;

	if (m->cap < 2 * (m->n + 1)) {
		uint32_t cap = m->cap ? 2 * m->cap : 256;
		uint64_t *k = calloc(cap, sizeof(*k));
		uint32_t *r = calloc(cap, sizeof(*r));

		if (!k || !r) {
			free(k);
			free(r);
			return -ENOMEM;
		}
		for (uint32_t i = 0; i < m->cap; i++) {
			if (!m->ref[i])
				continue;
			for (j = key_hash(m->key[i]) & (cap - 1); r[j]; j = (j + 1) & (cap - 1))
				;
			k[j] = m->key[i];
			r[j] = m->ref[i];
		}
		free(m->key);
		free(m->ref);
		m->key = k;
		m->ref = r;
		m->cap = cap;
	}
	for (j = key_hash(key) & (m->cap - 1); m->ref[j] && m->key[j] != key;
	     j = (j + 1) & (m->cap - 1))
		;
	return j;
}

static int kmap_set(struct kmap *m, long slot, uint64_t key, int ref)
{
	if (ref > 0) {
		m->key[slot] = key;
		m->ref[slot] = ref;
		m->n++;
	}
	return ref;
}

int flow_cols_workload_key(struct flow_cols *b, uint64_t key, const char *ns, const char *name,
			   uint32_t identity, const char *const *labels, size_t n_labels)
{
	long j = kmap_slot(&b->wk, key);

	if (j < 0)
		return -ENOMEM;
	if (b->wk.ref[j])
		return b->wk.ref[j];
	return kmap_set(&b->wk, j, key,
			flow_cols_workload(b, ns, name, identity, labels, n_labels));
}

int flow_cols_str_key(struct flow_cols *b, uint64_t key, const char *s)
{
	long j;

	if (!s || !*s)
		return 0;
	j = kmap_slot(&b->sk, key);
	if (j < 0)
		return -ENOMEM;
	if (b->sk.ref[j])
		return b->sk.ref[j];
	return kmap_set(&b->sk, j, key, flow_cols_str(b, s));
}

static int cols_reserve(struct flow_cols *b)
{
	size_t n;

	if (b->n < b->cap)
		return 0;
	n = b->cap ? 2 * (size_t)b->cap : 1024;
	if (n > UINT32_MAX)
		return -ENOMEM;
	for (int k = 0; k < N_C32; k++) {
		uint32_t *p = realloc(b->c32[k], n * sizeof(*p));

		if (!p)
			return -ENOMEM;
		b->c32[k] = p;
	}
	for (int k = 0; k < N_C64; k++) {
		uint64_t *p = realloc(b->c64[k], n * sizeof(*p));

		if (!p)
			return -ENOMEM;
		b->c64[k] = p;
	}
	b->cap = n;
	return 0;
}

int flow_cols_add(struct flow_cols *b, const FlowRec *r)
{
	return flow_cols_add_ref(b, r, -1, -1);
}

int flow_cols_add_ref(struct flow_cols *b, const FlowRec *r, int policy, int rule_text)
{
	uint32_t v32[N_C32];
	uint64_t v64[N_C64];
	int sa, da, pol, rule, node;
	uint32_t i = b->n, u32 = 0, u64 = 0;

	if (cols_reserve(b))
		return -ENOMEM;
	sa = flow_cols_addr(b, r->src_addr.data, r->src_addr.len);
	da = flow_cols_addr(b, r->dst_addr.data, r->dst_addr.len);
	pol = policy >= 0 ? policy : flow_cols_str(b, r->policy);
	rule = rule_text >= 0 ? rule_text : flow_cols_str(b, r->rule);
	node = r->node && *r->node ? flow_cols_str(b, r->node) : 0;
	if (pol > (int)b->n_str || rule > (int)b->n_str)
		return -EINVAL;
	if (sa < 0 || da < 0 || pol < 0 || rule < 0 || node < 0)
		return -ENOMEM;
	v32[C32_META] = (r->kind & 0xff) | (r->direction & 0xff) << 8 | (r->verdict & 0xff) << 16 |
			(r->proto & 0xff) << 24;
	v32[C32_PORTS] = (r->src_port & 0xffff) << 16 | (r->dst_port & 0xffff);
	v32[C32_SADDR] = sa;
	v32[C32_DADDR] = da;
	v32[C32_SWL] = r->src_workload <= b->n_wl ? r->src_workload : 0;
	v32[C32_DWL] = r->dst_workload <= b->n_wl ? r->dst_workload : 0;
	v32[C32_SID] = r->src_identity;
	v32[C32_DID] = r->dst_identity;
	v32[C32_POLICY] = pol;
	v32[C32_RULE_ID] = r->rule_id;
	v32[C32_RULE] = rule;
	v32[C32_REASON] = r->reason;
	v32[C32_FLAGS] = (r->tcp_flags_fwd & 0xff) | (r->tcp_flags_rev & 0xff) << 8;
	v32[C32_SUPP] = r->suppressed;
	v32[C32_NODE] = node;
	v64[C64_TIME] = r->time_ns;
	v64[C64_PKF] = r->packets_fwd;
	v64[C64_BYF] = r->bytes_fwd;
	v64[C64_PKR] = r->packets_rev;
	v64[C64_BYR] = r->bytes_rev;
	v64[C64_FIRST] = r->first_seen_ns;
	v64[C64_LAST] = r->last_seen_ns;
	for (int k = 0; k < N_C32; k++) {
		b->c32[k][i] = v32[k];
		u32 |= (uint32_t)(v32[k] != 0) << k;
	}
	for (int k = 0; k < N_C64; k++) {
		b->c64[k][i] = v64[k];
		u64 |= (uint32_t)(v64[k] != 0) << k;
	}
	b->used32 |= u32;
	b->used64 |= u64;
	b->n++;
	return 0;
}

size_t flow_cols_len(const struct flow_cols *b)
{
	return b->n;
}

const FlowBatch *flow_cols_msg(struct flow_cols *b, uint64_t seq, uint64_t dropped)
{
	FlowColumns *c = &b->cols;
	uint32_t cap = b->cap_sptr;

#define COL32(field, k)                                            \
	do {                                                       \
		c->n_##field = b->used32 & (1u << (k)) ? b->n : 0; \
		c->field = b->c32[k];                              \
	} while (0)
#define COL64(field, k)                                            \
	do {                                                       \
		c->n_##field = b->used64 & (1u << (k)) ? b->n : 0; \
		c->field = b->c64[k];                              \
	} while (0)

	if (grow((void **)&b->sptr, &cap, b->n_str + 1, sizeof(*b->sptr)))
		return NULL;
	b->cap_sptr = cap;
	for (uint32_t i = 0; i < b->n_str; i++)
		b->sptr[i] = b->sbuf + b->soff[i];
	c->count = b->n;
	c->n_strings = b->n_str;
	c->strings = b->sptr;
	c->addrs.len = 16 * (size_t)b->n_addr;
	c->addrs.data = b->addrs;
	c->n_wl_namespace = c->n_wl_name = b->n_wl;
	c->wl_namespace = b->wl_ns;
	c->wl_name = b->wl_name;
	c->n_wl_identity = b->wl_used & 1 ? b->n_wl : 0;
	c->wl_identity = b->wl_id;
	c->n_wl_node = 0;
	c->n_wl_labels = b->wl_used & 2 ? b->n_wl : 0;
	c->wl_labels = b->wl_nlab;
	c->n_labels = b->n_lab;
	c->labels = b->labels;
	COL64(time_ns, C64_TIME);
	c->n_time_ns = b->n; /* always sent: the record count must show on the wire */
	COL32(meta, C32_META);
	COL32(ports, C32_PORTS);
	COL32(src_addr, C32_SADDR);
	COL32(dst_addr, C32_DADDR);
	COL32(src_workload, C32_SWL);
	COL32(dst_workload, C32_DWL);
	COL32(src_identity, C32_SID);
	COL32(dst_identity, C32_DID);
	COL32(policy, C32_POLICY);
	COL32(rule_id, C32_RULE_ID);
	COL32(rule, C32_RULE);
	COL32(reason, C32_REASON);
	COL64(packets_fwd, C64_PKF);
	COL64(bytes_fwd, C64_BYF);
	COL64(packets_rev, C64_PKR);
	COL64(bytes_rev, C64_BYR);
	COL64(first_seen_ns, C64_FIRST);
	COL64(last_seen_ns, C64_LAST);
	COL32(tcp_flags, C32_FLAGS);
	COL32(suppressed, C32_SUPP);
	COL32(node, C32_NODE);
#undef COL32
#undef COL64
	b->msg.columns = b->n || b->n_wl ? c : NULL;
	b->msg.seq = seq;
	b->msg.dropped = dropped;
	return &b->msg;
}

/* ---- decoding ------------------------------------------------------------------ */

static bool refs_ok(const uint32_t *v, size_t n, size_t max)
{
	uint32_t bad = 0;

	for (size_t i = 0; i < n; i++)
		bad |= v[i] > max;
	return !bad;
}

int flow_cols_check(const FlowColumns *c)
{
	size_t n = c->count, nw = c->n_wl_namespace, ns = c->n_strings, na = c->addrs.len / 16;
	uint64_t labels = 0;

	/* count is bounded by what was sent: some record column has entries */
	if (n && !c->n_time_ns && !c->n_meta && !c->n_ports && !c->n_src_addr && !c->n_dst_addr &&
	    !c->n_src_workload && !c->n_dst_workload && !c->n_src_identity && !c->n_dst_identity &&
	    !c->n_policy && !c->n_rule_id && !c->n_rule && !c->n_reason && !c->n_packets_fwd &&
	    !c->n_bytes_fwd && !c->n_packets_rev && !c->n_bytes_rev && !c->n_first_seen_ns &&
	    !c->n_last_seen_ns && !c->n_tcp_flags && !c->n_suppressed && !c->n_node)
		return -EINVAL;
#define NCOL(f) (c->n_##f == 0 || c->n_##f == n)
	if (!NCOL(time_ns) || !NCOL(meta) || !NCOL(ports) || !NCOL(src_addr) || !NCOL(dst_addr) ||
	    !NCOL(src_workload) || !NCOL(dst_workload) || !NCOL(src_identity) ||
	    !NCOL(dst_identity) || !NCOL(policy) || !NCOL(rule_id) || !NCOL(rule) ||
	    !NCOL(reason) || !NCOL(packets_fwd) || !NCOL(bytes_fwd) || !NCOL(packets_rev) ||
	    !NCOL(bytes_rev) || !NCOL(first_seen_ns) || !NCOL(last_seen_ns) || !NCOL(tcp_flags) ||
	    !NCOL(suppressed) || !NCOL(node))
		return -EINVAL;
#undef NCOL
	if (c->addrs.len % 16 || c->n_wl_name != nw ||
	    (c->n_wl_identity && c->n_wl_identity != nw) || (c->n_wl_node && c->n_wl_node != nw) ||
	    (c->n_wl_labels && c->n_wl_labels != nw))
		return -EINVAL;
	for (size_t i = 0; i < c->n_wl_labels; i++)
		labels += c->wl_labels[i];
	if (labels != c->n_labels)
		return -EINVAL;
	/* workload names are strings (> 0); every other reference may be 0 */
	for (size_t i = 0; i < nw; i++)
		if (!c->wl_namespace[i] || !c->wl_name[i])
			return -EINVAL;
	if (!refs_ok(c->wl_namespace, nw, ns) || !refs_ok(c->wl_name, nw, ns) ||
	    !refs_ok(c->wl_node, c->n_wl_node, ns) || !refs_ok(c->labels, c->n_labels, ns) ||
	    !refs_ok(c->src_addr, c->n_src_addr, na) || !refs_ok(c->dst_addr, c->n_dst_addr, na) ||
	    !refs_ok(c->src_workload, c->n_src_workload, nw) ||
	    !refs_ok(c->dst_workload, c->n_dst_workload, nw) ||
	    !refs_ok(c->policy, c->n_policy, ns) || !refs_ok(c->rule, c->n_rule, ns) ||
	    !refs_ok(c->node, c->n_node, ns))
		return -EINVAL;
	for (size_t i = 0; i < ns; i++)
		if (!c->strings[i])
			return -EINVAL;
	return 0;
}

int flow_batch_check(const FlowBatch *b)
{
	return b->columns ? flow_cols_check(b->columns) : 0;
}

size_t flow_batch_count(const FlowBatch *b)
{
	return b->n_flows + (b->columns ? b->columns->count : 0);
}

static const char *cstr(const FlowColumns *c, uint32_t ref)
{
	return ref ? c->strings[ref - 1] : "";
}

static void caddr(const FlowColumns *c, uint32_t ref, ProtobufCBinaryData *a)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (!ref) {
		a->len = 0;
		a->data = NULL;
		return;
	}
	a->data = c->addrs.data + 16 * (ref - 1);
	a->len = 16;
	if (!memcmp(a->data, v4mapped, 12)) {
		a->data += 12;
		a->len = 4;
	}
}

void flow_cols_rec(const FlowColumns *c, size_t i, FlowRec *r)
{
	uint32_t meta = FLOW_COL(c, meta, i), ports = FLOW_COL(c, ports, i);
	uint32_t flags = FLOW_COL(c, tcp_flags, i);

	seg__flow__v1__flow__init(r);
	r->time_ns = FLOW_COL(c, time_ns, i);
	r->node = (char *)cstr(c, FLOW_COL(c, node, i));
	r->kind = meta & 0xff;
	r->direction = meta >> 8 & 0xff;
	r->verdict = meta >> 16 & 0xff;
	r->proto = meta >> 24;
	caddr(c, FLOW_COL(c, src_addr, i), &r->src_addr);
	caddr(c, FLOW_COL(c, dst_addr, i), &r->dst_addr);
	r->src_port = ports >> 16;
	r->dst_port = ports & 0xffff;
	r->src_workload = FLOW_COL(c, src_workload, i);
	r->dst_workload = FLOW_COL(c, dst_workload, i);
	r->src_identity = FLOW_COL(c, src_identity, i);
	r->dst_identity = FLOW_COL(c, dst_identity, i);
	r->policy = (char *)cstr(c, FLOW_COL(c, policy, i));
	r->rule_id = FLOW_COL(c, rule_id, i);
	r->rule = (char *)cstr(c, FLOW_COL(c, rule, i));
	r->reason = FLOW_COL(c, reason, i);
	r->packets_fwd = FLOW_COL(c, packets_fwd, i);
	r->bytes_fwd = FLOW_COL(c, bytes_fwd, i);
	r->packets_rev = FLOW_COL(c, packets_rev, i);
	r->bytes_rev = FLOW_COL(c, bytes_rev, i);
	r->first_seen_ns = FLOW_COL(c, first_seen_ns, i);
	r->last_seen_ns = FLOW_COL(c, last_seen_ns, i);
	r->tcp_flags_fwd = flags & 0xff;
	r->tcp_flags_rev = flags >> 8 & 0xff;
	r->suppressed = FLOW_COL(c, suppressed, i);
}

void flow_cols_wls(const FlowColumns *c, struct flow_cols_wl *out)
{
	size_t lab = 0;

	for (size_t i = 0; i < c->n_wl_namespace; i++) {
		out[i].ns = cstr(c, c->wl_namespace[i]);
		out[i].name = cstr(c, c->wl_name[i]);
		out[i].node = c->n_wl_node ? cstr(c, c->wl_node[i]) : "";
		out[i].identity = c->n_wl_identity ? c->wl_identity[i] : 0;
		out[i].n_labels = c->n_wl_labels ? c->wl_labels[i] : 0;
		/* no labels at all: c->labels may be NULL (NULL + 0 is undefined) */
		out[i].labels = c->n_labels ? c->labels + lab : NULL;
		lab += out[i].n_labels;
	}
}

const char *flow_cols_label(const FlowColumns *c, const struct flow_cols_wl *w, size_t k)
{
	return cstr(c, w->labels[k]);
}

int flow_batch_add_cols(struct flow_batch *out, const FlowColumns *c)
{
	size_t nw = c->n_wl_namespace, maxl = 0;
	struct flow_cols_wl *wl = nw ? calloc(nw, sizeof(*wl)) : NULL;
	uint32_t *map = nw ? calloc(nw, sizeof(*map)) : NULL;
	const char **kv = NULL;
	int err = -ENOMEM;

	if (nw && (!wl || !map))
		goto out;
	flow_cols_wls(c, wl);
	for (size_t i = 0; i < nw; i++)
		maxl = wl[i].n_labels > maxl ? wl[i].n_labels : maxl;
	kv = calloc(maxl + 1, sizeof(*kv));
	if (!kv)
		goto out;
	for (size_t i = 0; i < nw; i++) {
		int r;

		for (size_t k = 0; k < wl[i].n_labels; k++)
			kv[k] = flow_cols_label(c, &wl[i], k);
		r = flow_batch_workload(out, wl[i].ns, wl[i].name, wl[i].identity, kv,
					wl[i].n_labels);
		if (r < 0)
			goto out;
		map[i] = r;
	}
	for (size_t i = 0; i < c->count; i++) {
		FlowRec r;

		flow_cols_rec(c, i, &r);
		r.src_workload = r.src_workload ? map[r.src_workload - 1] : 0;
		r.dst_workload = r.dst_workload ? map[r.dst_workload - 1] : 0;
		if (flow_batch_add(out, &r))
			goto out;
	}
	err = 0;
out:
	free(kv);
	free(map);
	free(wl);
	return err;
}

int flow_cols_add_flows(struct flow_cols *c, const FlowBatch *in)
{
	size_t nw = in->n_workloads, maxl = 0;
	uint32_t *map = nw ? calloc(nw, sizeof(*map)) : NULL;
	char **kv = NULL;
	int err = -ENOMEM;

	if (nw && !map)
		return -ENOMEM;
	for (size_t i = 0; i < nw; i++)
		maxl = in->workloads[i]->n_labels > maxl ? in->workloads[i]->n_labels : maxl;
	kv = calloc(maxl + 1, sizeof(*kv));
	if (!kv)
		goto out;
	for (size_t i = 0; i < nw; i++) {
		const FlowWorkload *w = in->workloads[i];
		size_t k;
		int r;

		for (k = 0; k < w->n_labels; k++)
			if (asprintf(&kv[k], "%s=%s", w->labels[k]->key, w->labels[k]->value) < 0)
				break;
		r = k == w->n_labels ? flow_cols_workload(c, w->namespace_, w->name, w->identity,
							  (const char *const *)kv, k) :
				       -ENOMEM;
		while (k--)
			free(kv[k]);
		if (r < 0)
			goto out;
		map[i] = r;
	}
	for (size_t i = 0; i < in->n_flows; i++) {
		FlowRec r = *in->flows[i];

		r.src_workload =
			r.src_workload && r.src_workload <= nw ? map[r.src_workload - 1] : 0;
		r.dst_workload =
			r.dst_workload && r.dst_workload <= nw ? map[r.dst_workload - 1] : 0;
		if (flow_cols_add(c, &r))
			goto out;
	}
	err = 0;
out:
	free(kv);
	free(map);
	return err;
}
