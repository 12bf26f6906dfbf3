// SPDX-License-Identifier: GPL-2.0-only
/*
 * seg-topology store: interned strings and workloads, the bounded edge
 * table (hash + LRU eviction), the bounded ring of recent flows, per-node
 * batch dedupe, windows and filters. One mutex; batches are applied whole.
 */
#include "topology.h"
#include "addr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct strtab {
	char **s; /* id - 1 */
	uint32_t n, cap;
	uint32_t *h; /* open addressing: id, 0 = empty */
	uint32_t hcap;
};

/* Sessions remembered per node: an exporter restarted with batches of its
 * previous sessions still spooled resends them (in their own session and
 * seq) before its new ones; each must still be applied once. */
#define TOPO_NODE_SESSIONS 8

struct node_state {
	struct {
		uint64_t session, last_seq, used;
	} s[TOPO_NODE_SESSIONS];
	uint64_t tick;
};

struct topo {
	pthread_mutex_t mu;
	struct topo_limits lim;
	struct strtab strs;
	/* workloads: ids 1..n_wls */
	struct topo_wl *wls;
	uint32_t n_wls, cap_wls;
	uint32_t *wl_h, wl_hcap;
	/* edges: slots 1..max_edges; hash buckets; LRU head = oldest */
	struct topo_edge *edges; /* [max_edges] */
	uint32_t *e_bucket, e_nbucket; /* power of two */
	uint32_t e_free, e_used_top, lru_head, lru_tail, n_edges;
	/* flow ring */
	struct topo_flow *ring;
	uint64_t ring_next; /* records ever stored */
	/* nodes by string id */
	struct node_state *nodes;
	uint32_t cap_nodes;
	/* per batch (under the lock): columnar workload and string maps */
	uint32_t *scratch;
	size_t cap_scratch;
	struct flow_cols_wl *cwl;
	size_t cap_cwl;
	struct topo_stats st;
};

static uint32_t fnv(uint32_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n--)
		h = (h ^ *b++) * 16777619u;
	return h;
}

static uint32_t hstr(uint32_t h, const char *s)
{
	return fnv(h, s, strlen(s) + 1);
}

/* ---- strings ------------------------------------------------------------- */

static int strtab_rehash(struct strtab *t, uint32_t cap)
{
	uint32_t *h = calloc(cap, sizeof(*h));

	if (!h)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->n; i++) {
		uint32_t j = hstr(2166136261u, t->s[i]) & (cap - 1);

		while (h[j])
			j = (j + 1) & (cap - 1);
		h[j] = i + 1;
	}
	free(t->h);
	t->h = h;
	t->hcap = cap;
	return 0;
}

/* id (> 0) of s; 0 for "" or on allocation failure */
static uint32_t str_id(struct strtab *t, const char *s)
{
	uint32_t j;

	if (!s || !*s)
		return 0;
	if (t->hcap < 2 * (t->n + 1) && strtab_rehash(t, t->hcap ? 2 * t->hcap : 256))
		return 0;
	for (j = hstr(2166136261u, s) & (t->hcap - 1); t->h[j]; j = (j + 1) & (t->hcap - 1))
		if (!strcmp(t->s[t->h[j] - 1], s))
			return t->h[j];
	if (t->n == t->cap) {
		uint32_t cap = t->cap ? 2 * t->cap : 256;
		char **v = realloc(t->s, cap * sizeof(*v));

		if (!v)
			return 0;
		t->s = v;
		t->cap = cap;
	}
	t->s[t->n] = strdup(s);
	if (!t->s[t->n])
		return 0;
	t->h[j] = ++t->n;
	return t->n;
}

const char *topo_str(const struct topo *t, uint32_t id)
{
	return id && id <= t->strs.n ? t->strs.s[id - 1] : "";
}

/* ---- workloads --------------------------------------------------------------- */

static uint32_t wl_hash(const char *ns, const char *name)
{
	return hstr(hstr(2166136261u, ns), name);
}

static int wl_rehash(struct topo *t, uint32_t cap)
{
	uint32_t *h = calloc(cap, sizeof(*h));

	if (!h)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->n_wls; i++) {
		uint32_t j = wl_hash(t->wls[i].ns, t->wls[i].name) & (cap - 1);

		while (h[j])
			j = (j + 1) & (cap - 1);
		h[j] = i + 1;
	}
	free(t->wl_h);
	t->wl_h = h;
	t->wl_hcap = cap;
	return 0;
}

/* A workload as received: a Workload message (v1) or a columnar entry. */
struct wl_in {
	const char *ns, *name, *node;
	uint32_t identity;
	const FlowWorkload *m; /* labels from m, or: */
	const FlowColumns *c;
	const struct flow_cols_wl *cw;
};

static int wl_fill(struct topo *t, struct topo_wl *w, const struct wl_in *in)
{
	size_t n = in->m ? in->m->n_labels : in->cw->n_labels;

	memset(w, 0, sizeof(*w));
	w->ns = strdup(in->ns);
	w->name = strdup(in->name);
	w->labels = n ? calloc(n, sizeof(char *)) : NULL;
	if (!w->ns || !w->name || (n && !w->labels))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (in->m) {
			if (asprintf(&w->labels[i], "%s=%s", in->m->labels[i]->key,
				     in->m->labels[i]->value) < 0)
				return -ENOMEM;
		} else {
			w->labels[i] = strdup(flow_cols_label(in->c, in->cw, i));
			if (!w->labels[i])
				return -ENOMEM;
		}
		w->n_labels++;
	}
	w->identity = in->identity;
	w->node = str_id(&t->strs, in->node);
	return 0;
}

static void wl_clear(struct topo_wl *w)
{
	free(w->ns);
	free(w->name);
	for (uint32_t i = 0; i < w->n_labels; i++)
		free(w->labels[i]);
	free(w->labels);
}

/* id of the batch's workload; over the cap: 0 (counted) */
static uint32_t wl_id(struct topo *t, const struct wl_in *m)
{
	uint32_t j;

	if (t->wl_hcap < 2 * (t->n_wls + 1) && wl_rehash(t, t->wl_hcap ? 2 * t->wl_hcap : 1024))
		return 0;
	for (j = wl_hash(m->ns, m->name) & (t->wl_hcap - 1); t->wl_h[j];
	     j = (j + 1) & (t->wl_hcap - 1)) {
		struct topo_wl *w = &t->wls[t->wl_h[j] - 1];

		if (!strcmp(w->ns, m->ns) && !strcmp(w->name, m->name)) {
			if (m->identity)
				w->identity = m->identity;
			return t->wl_h[j];
		}
	}
	if (t->n_wls >= t->lim.max_workloads) {
		t->st.workloads_over_cap++;
		return 0;
	}
	if (t->n_wls == t->cap_wls) {
		uint32_t cap = t->cap_wls ? 2 * t->cap_wls : 256;
		struct topo_wl *v = realloc(t->wls, cap * sizeof(*v));

		if (!v)
			return 0;
		t->wls = v;
		t->cap_wls = cap;
	}
	if (wl_fill(t, &t->wls[t->n_wls], m)) {
		wl_clear(&t->wls[t->n_wls]);
		return 0;
	}
	t->wl_h[j] = ++t->n_wls;
	return t->n_wls;
}

const struct topo_wl *topo_wl(const struct topo *t, uint32_t id)
{
	return id && id <= t->n_wls ? &t->wls[id - 1] : NULL;
}

uint32_t topo_n_wls(const struct topo *t)
{
	return t->n_wls;
}

/* ---- edges ---------------------------------------------------------------------- */

#define E(t, i) (&(t)->edges[(i)-1])

/* Edges are keyed by interned ids: an integer mix, no string or byte walk. */
static uint32_t edge_hash(uint32_t src, uint32_t dst, uint16_t port, uint8_t proto)
{
	uint64_t h = (uint64_t)src * 0x9e3779b97f4a7c15ull ^
		     ((uint64_t)dst << 24 | (uint32_t)port << 8 | proto) * 0xc2b2ae3d27d4eb4full;

	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	return (uint32_t)(h >> 32);
}

static void lru_unlink(struct topo *t, uint32_t i)
{
	struct topo_edge *e = E(t, i);

	if (e->lru_prev)
		E(t, e->lru_prev)->lru_next = e->lru_next;
	else
		t->lru_head = e->lru_next;
	if (e->lru_next)
		E(t, e->lru_next)->lru_prev = e->lru_prev;
	else
		t->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = 0;
}

static void lru_push(struct topo *t, uint32_t i)
{
	struct topo_edge *e = E(t, i);

	e->lru_prev = t->lru_tail;
	e->lru_next = 0;
	if (t->lru_tail)
		E(t, t->lru_tail)->lru_next = i;
	else
		t->lru_head = i;
	t->lru_tail = i;
}

static void edge_unhash(struct topo *t, uint32_t i)
{
	struct topo_edge *e = E(t, i);
	uint32_t *p =
		&t->e_bucket[edge_hash(e->src, e->dst, e->port, e->proto) & (t->e_nbucket - 1)];

	while (*p && *p != i)
		p = &E(t, *p)->hnext;
	if (*p)
		*p = e->hnext;
}

static uint32_t edge_get(struct topo *t, uint32_t src, uint32_t dst, uint16_t port, uint8_t proto)
{
	uint32_t *b = &t->e_bucket[edge_hash(src, dst, port, proto) & (t->e_nbucket - 1)];
	struct topo_edge *e;
	uint32_t i;

	for (i = *b; i; i = E(t, i)->hnext) {
		e = E(t, i);
		if (e->src == src && e->dst == dst && e->port == port && e->proto == proto) {
			lru_unlink(t, i);
			lru_push(t, i);
			return i;
		}
	}
	if (t->e_free) {
		i = t->e_free;
		t->e_free = E(t, i)->hnext;
	} else if (t->e_used_top < t->lim.max_edges) {
		i = ++t->e_used_top;
	} else {
		/* full: evict the least recently updated edge */
		i = t->lru_head;
		lru_unlink(t, i);
		edge_unhash(t, i);
		t->n_edges--;
		t->st.evicted_edges++;
		b = &t->e_bucket[edge_hash(src, dst, port, proto) & (t->e_nbucket - 1)];
	}
	e = E(t, i);
	memset(e, 0, sizeof(*e));
	e->src = src;
	e->dst = dst;
	e->port = port;
	e->proto = proto;
	e->used = 1;
	e->hnext = *b;
	*b = i;
	lru_push(t, i);
	t->n_edges++;
	return i;
}

/* ---- the counting rule ------------------------------------------------------------ */

/* Does this record count for the edge (see topology.h)? */
static bool counts_for_edge(const struct topo_flow *f)
{
	if (f->verdict == SEG__FLOW__V1__VERDICT__VERDICT_DENY)
		return true;
	if (f->dir == SEG__FLOW__V1__DIRECTION__DIRECTION_INGRESS)
		return true;
	return f->dst_wl == TOPO_WL_NONE; /* egress to no workload */
}

static void edge_account(struct topo_edge *e, const struct topo_flow *f)
{
	bool is_flow = f->kind == SEG__FLOW__V1__KIND__KIND_NEW ||
		       f->kind == SEG__FLOW__V1__KIND__KIND_DENY ||
		       f->kind == SEG__FLOW__V1__KIND__KIND_REVOKED ||
		       f->kind == SEG__FLOW__V1__KIND__KIND_UNSPECIFIED;
	uint64_t seen = f->last_ns ? f->last_ns : f->time_ns;
	uint64_t first = f->first_ns ? f->first_ns : f->time_ns;

	if (is_flow) {
		if (f->verdict == SEG__FLOW__V1__VERDICT__VERDICT_DENY)
			e->denied++;
		else if (f->verdict == SEG__FLOW__V1__VERDICT__VERDICT_AUDIT)
			e->audit++;
		else
			e->allowed++;
	}
	e->bytes += f->bytes_fwd + f->bytes_rev;
	e->packets += f->packets_fwd + f->packets_rev;
	if (!e->first_ns || first < e->first_ns)
		e->first_ns = first;
	if (seen > e->last_ns)
		e->last_ns = seen;
}

/* ---- batches ---------------------------------------------------------------------- */

static struct node_state *node_get(struct topo *t, uint32_t id)
{
	if (id >= t->cap_nodes) {
		uint32_t cap = t->cap_nodes ? t->cap_nodes : 64;
		struct node_state *v;

		while (cap <= id)
			cap *= 2;
		v = realloc(t->nodes, cap * sizeof(*v));
		if (!v)
			return NULL;
		memset(v + t->cap_nodes, 0, (cap - t->cap_nodes) * sizeof(*v));
		t->nodes = v;
		t->cap_nodes = cap;
	}
	return &t->nodes[id];
}

static void flow_from_msg(struct topo *t, struct topo_flow *f, const FlowRec *r,
			  const uint32_t *wmap, size_t n_wmap, uint32_t node)
{
	memset(f, 0, sizeof(*f));
	f->time_ns = r->time_ns;
	f->first_ns = r->first_seen_ns;
	f->last_ns = r->last_seen_ns;
	f->packets_fwd = r->packets_fwd;
	f->bytes_fwd = r->bytes_fwd;
	f->packets_rev = r->packets_rev;
	f->bytes_rev = r->bytes_rev;
	f->addr_len = r->src_addr.len == 4 ? 4 : 16;
	if (r->src_addr.len == 4 || r->src_addr.len == 16)
		memcpy(f->src, r->src_addr.data, r->src_addr.len);
	if (r->dst_addr.len == 4 || r->dst_addr.len == 16)
		memcpy(f->dst, r->dst_addr.data, r->dst_addr.len);
	f->sport = r->src_port;
	f->dport = r->dst_port;
	f->proto = r->proto;
	f->verdict = r->verdict;
	f->kind = r->kind;
	f->dir = r->direction;
	f->reason = r->reason;
	f->flags_fwd = r->tcp_flags_fwd;
	f->flags_rev = r->tcp_flags_rev;
	f->src_wl = r->src_workload && r->src_workload <= n_wmap ? wmap[r->src_workload - 1] : 0;
	f->dst_wl = r->dst_workload && r->dst_workload <= n_wmap ? wmap[r->dst_workload - 1] : 0;
	f->src_id = r->src_identity;
	f->dst_id = r->dst_identity;
	f->rule_id = r->rule_id;
	f->node = *r->node ? str_id(&t->strs, r->node) : node;
	f->policy = str_id(&t->strs, r->policy);
	f->rule = str_id(&t->strs, r->rule);
	f->suppressed = r->suppressed;
}

/* The ring slot the next record goes to (filled by the caller, then
 * flow_stored()). */
static struct topo_flow *ring_slot(struct topo *t)
{
	if (t->ring_next >= t->lim.max_flows)
		t->st.evicted_flows++;
	return &t->ring[t->ring_next++ % t->lim.max_flows];
}

static void flow_stored(struct topo *t, const struct topo_flow *f)
{
	if (counts_for_edge(f)) {
		uint32_t i = edge_get(t, f->src_wl, f->dst_wl, f->dport, f->proto);

		edge_account(E(t, i), f);
	}
}

/* ---- columnar batches --------------------------------------------------------------- */

static uint32_t *scratch(struct topo *t, size_t n)
{
	if (n > t->cap_scratch) {
		uint32_t *p = realloc(t->scratch, n * sizeof(*p));

		if (!p)
			return NULL;
		t->scratch = p;
		t->cap_scratch = n;
	}
	return t->scratch;
}

/* string ref of the batch -> id in the store, interned on first use */
static uint32_t col_str(struct topo *t, const FlowColumns *c, uint32_t *smap, uint32_t ref)
{
	if (!ref)
		return 0;
	if (smap[ref - 1] == UINT32_MAX)
		smap[ref - 1] = str_id(&t->strs, c->strings[ref - 1]);
	return smap[ref - 1];
}

static void col_addr(const FlowColumns *c, uint32_t ref, uint8_t *out, uint8_t *len)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const uint8_t *a;

	if (!ref)
		return;
	a = c->addrs.data + 16 * (ref - 1);
	if (!memcmp(a, v4mapped, 12)) {
		memcpy(out, a + 12, 4);
		*len = 4;
	} else {
		memcpy(out, a, 16);
		*len = 16;
	}
}

/* Room for apply_cols(), taken before the batch's seq counts. */
static int cols_reserve(struct topo *t, const FlowColumns *c)
{
	size_t nw = c->n_wl_namespace;

	if (!scratch(t, nw + c->n_strings + 1))
		return -ENOMEM;
	if (nw > t->cap_cwl) {
		struct flow_cols_wl *p = realloc(t->cwl, nw * sizeof(*p));

		if (!p)
			return -ENOMEM;
		t->cwl = p;
		t->cap_cwl = nw;
	}
	return 0;
}

/* A checked Columns (flow_cols_check), room reserved: workloads and
 * strings mapped once per batch, then one pass over the columns. */
static void apply_cols(struct topo *t, const FlowColumns *c, uint32_t node)
{
	size_t nw = c->n_wl_namespace, ns = c->n_strings;
	uint32_t *wmap = t->scratch, *smap = wmap + nw;

	flow_cols_wls(c, t->cwl);
	for (size_t i = 0; i < nw; i++) {
		struct wl_in in = { .ns = t->cwl[i].ns,
				    .name = t->cwl[i].name,
				    .node = t->cwl[i].node,
				    .identity = t->cwl[i].identity,
				    .c = c,
				    .cw = &t->cwl[i] };

		wmap[i] = wl_id(t, &in);
	}
	memset(smap, 0xff, ns * sizeof(*smap));
	for (size_t i = 0; i < c->count; i++) {
		struct topo_flow *f = ring_slot(t);
		uint32_t meta = FLOW_COL(c, meta, i), ports = FLOW_COL(c, ports, i);
		uint32_t flags = FLOW_COL(c, tcp_flags, i), sw, dw;
		uint8_t alen = 16;

		memset(f, 0, sizeof(*f));
		f->time_ns = FLOW_COL(c, time_ns, i);
		f->first_ns = FLOW_COL(c, first_seen_ns, i);
		f->last_ns = FLOW_COL(c, last_seen_ns, i);
		f->packets_fwd = FLOW_COL(c, packets_fwd, i);
		f->bytes_fwd = FLOW_COL(c, bytes_fwd, i);
		f->packets_rev = FLOW_COL(c, packets_rev, i);
		f->bytes_rev = FLOW_COL(c, bytes_rev, i);
		col_addr(c, FLOW_COL(c, src_addr, i), f->src, &alen);
		f->addr_len = alen;
		col_addr(c, FLOW_COL(c, dst_addr, i), f->dst, &alen);
		f->sport = ports >> 16;
		f->dport = ports & 0xffff;
		f->kind = meta & 0xff;
		f->dir = meta >> 8 & 0xff;
		f->verdict = meta >> 16 & 0xff;
		f->proto = meta >> 24;
		f->reason = FLOW_COL(c, reason, i);
		f->flags_fwd = flags & 0xff;
		f->flags_rev = flags >> 8 & 0xff;
		sw = FLOW_COL(c, src_workload, i);
		dw = FLOW_COL(c, dst_workload, i);
		f->src_wl = sw ? wmap[sw - 1] : 0;
		f->dst_wl = dw ? wmap[dw - 1] : 0;
		f->src_id = FLOW_COL(c, src_identity, i);
		f->dst_id = FLOW_COL(c, dst_identity, i);
		f->rule_id = FLOW_COL(c, rule_id, i);
		f->node = c->n_node && c->node[i] ? col_str(t, c, smap, c->node[i]) : node;
		f->policy = col_str(t, c, smap, FLOW_COL(c, policy, i));
		f->rule = col_str(t, c, smap, FLOW_COL(c, rule, i));
		f->suppressed = FLOW_COL(c, suppressed, i);
		flow_stored(t, f);
	}
}

int topo_apply(struct topo *t, const FlowBatch *b, uint64_t *last_seq)
{
	uint32_t *wmap = NULL, node;
	struct node_state *ns;
	int r = 1;

	/* refused whole, before its seq counts */
	if (flow_batch_check(b))
		return -EINVAL;
	topo_lock(t);
	node = str_id(&t->strs, b->node);
	ns = node_get(t, node);
	if (!ns || (b->columns && cols_reserve(t, b->columns))) {
		r = -ENOMEM;
		goto out;
	}
	if (b->session && b->seq) {
		/* a session's batches apply in order, once: older ones are
		 * duplicates (a resend), a gap means batches in between were
		 * lost (a cut stream still delivering): refused, resend */
		int k, free_k = 0;

		for (k = 0; k < TOPO_NODE_SESSIONS && ns->s[k].session != b->session; k++)
			if (ns->s[k].used < ns->s[free_k].used)
				free_k = k;
		if (k == TOPO_NODE_SESSIONS) { /* new (or forgotten): starts here */
			k = free_k;
			ns->s[k].session = b->session;
			ns->s[k].last_seq = b->seq - 1;
		}
		ns->s[k].used = ++ns->tick;
		*last_seq = ns->s[k].last_seq;
		if (b->seq <= ns->s[k].last_seq) {
			t->st.duplicates++;
			r = 0;
			goto out;
		}
		if (b->seq != ns->s[k].last_seq + 1) {
			r = -ERANGE;
			goto out;
		}
		ns->s[k].last_seq = *last_seq = b->seq;
	}
	if (b->n_workloads) {
		wmap = malloc(b->n_workloads * sizeof(*wmap));
		if (!wmap) {
			r = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < b->n_workloads; i++) {
			const FlowWorkload *m = b->workloads[i];
			struct wl_in in = { .ns = m->namespace_,
					    .name = m->name,
					    .node = m->node,
					    .identity = m->identity,
					    .m = m };

			wmap[i] = wl_id(t, &in);
		}
	}
	for (size_t i = 0; i < b->n_flows; i++) {
		struct topo_flow *f = ring_slot(t);

		flow_from_msg(t, f, b->flows[i], wmap, b->n_workloads, node);
		flow_stored(t, f);
	}
	if (b->columns)
		apply_cols(t, b->columns, node);
	t->st.batches++;
	t->st.records += flow_batch_count(b);
	t->st.dropped_by_senders += b->dropped;
out:
	topo_unlock(t);
	free(wmap);
	return r;
}

void topo_count_rejected(struct topo *t)
{
	topo_lock(t);
	t->st.rejected++;
	topo_unlock(t);
}

void topo_get_stats(struct topo *t, struct topo_stats *st)
{
	topo_lock(t);
	*st = t->st;
	st->edges = t->n_edges;
	st->flows = t->ring_next < t->lim.max_flows ? t->ring_next : t->lim.max_flows;
	st->workloads = t->n_wls;
	topo_unlock(t);
}

/* ---- filters ------------------------------------------------------------------------- */

static bool wl_is(const struct topo *t, uint32_t id, const char *ns, const char *name)
{
	const struct topo_wl *w = topo_wl(t, id);

	return w && !strcmp(w->ns, ns) && (!name || !strcmp(w->name, name));
}

static bool match_ends(const struct topo *t, uint32_t a, uint32_t b, const struct topo_filter *flt)
{
	if (flt->ns && *flt->ns && !wl_is(t, a, flt->ns, NULL) && !wl_is(t, b, flt->ns, NULL))
		return false;
	if (flt->pod && *flt->pod) {
		const char *sl = strchr(flt->pod, '/');
		char ns[256];

		if (!sl || (size_t)(sl - flt->pod) >= sizeof(ns))
			return false;
		memcpy(ns, flt->pod, sl - flt->pod);
		ns[sl - flt->pod] = '\0';
		if (!wl_is(t, a, ns, sl + 1) && !wl_is(t, b, ns, sl + 1))
			return false;
	}
	return true;
}

bool topo_flow_match(const struct topo *t, const struct topo_flow *f, const struct topo_filter *flt)
{
	if (flt->verdict && f->verdict != flt->verdict)
		return false;
	if (flt->since_ns && f->time_ns < flt->since_ns)
		return false;
	if (flt->node && *flt->node && strcmp(topo_str(t, f->node), flt->node))
		return false;
	return match_ends(t, f->src_wl, f->dst_wl, flt);
}

static bool msg_wl_is(const FlowBatch *b, uint32_t idx, const char *ns, size_t ns_len,
		      const char *name)
{
	const FlowWorkload *w;

	if (!idx || idx > b->n_workloads)
		return false;
	w = b->workloads[idx - 1];
	return strlen(w->namespace_) == ns_len && !strncmp(w->namespace_, ns, ns_len) &&
	       (!name || !strcmp(w->name, name));
}

bool topo_msg_match(const FlowBatch *b, const FlowRec *r, const struct topo_filter *flt)
{
	if (flt->verdict && (int)r->verdict != flt->verdict)
		return false;
	if (flt->since_ns && r->time_ns < flt->since_ns)
		return false;
	if (flt->node && *flt->node && strcmp(*r->node ? r->node : b->node, flt->node))
		return false;
	if (flt->ns && *flt->ns) {
		size_t l = strlen(flt->ns);

		if (!msg_wl_is(b, r->src_workload, flt->ns, l, NULL) &&
		    !msg_wl_is(b, r->dst_workload, flt->ns, l, NULL))
			return false;
	}
	if (flt->pod && *flt->pod) {
		const char *sl = strchr(flt->pod, '/');

		if (!sl)
			return false;
		if (!msg_wl_is(b, r->src_workload, flt->pod, sl - flt->pod, sl + 1) &&
		    !msg_wl_is(b, r->dst_workload, flt->pod, sl - flt->pod, sl + 1))
			return false;
	}
	return true;
}

size_t topo_flows(const struct topo *t, const struct topo_filter *flt, size_t limit,
		  const struct topo_flow **out)
{
	uint64_t held = t->ring_next < t->lim.max_flows ? t->ring_next : t->lim.max_flows;
	size_t n = 0;

	/* newest first into out[], then reversed */
	for (uint64_t k = 0; k < held && (!limit || n < limit); k++) {
		const struct topo_flow *f = &t->ring[(t->ring_next - 1 - k) % t->lim.max_flows];

		if (topo_flow_match(t, f, flt))
			out[n++] = f;
	}
	for (size_t i = 0; i < n / 2; i++) {
		const struct topo_flow *x = out[i];

		out[i] = out[n - 1 - i];
		out[n - 1 - i] = x;
	}
	return n;
}

static bool edge_match(const struct topo *t, const struct topo_edge *e,
		       const struct topo_filter *flt)
{
	if (flt->verdict == SEG__FLOW__V1__VERDICT__VERDICT_ALLOW && !e->allowed)
		return false;
	if (flt->verdict == SEG__FLOW__V1__VERDICT__VERDICT_DENY && !e->denied)
		return false;
	if (flt->verdict == SEG__FLOW__V1__VERDICT__VERDICT_AUDIT && !e->audit)
		return false;
	if (flt->since_ns && e->last_ns < flt->since_ns)
		return false;
	return match_ends(t, e->src, e->dst, flt);
}

/* A window's edges from the ring, into a private table. */
static long graph_window(struct topo *t, const struct topo_filter *flt, uint64_t from_ns,
			 struct topo_edge **edges, bool *complete)
{
	uint64_t held = t->ring_next < t->lim.max_flows ? t->ring_next : t->lim.max_flows;
	/* at most one edge per held flow: the private table never evicts */
	struct topo_limits lim = { .max_edges = held + 16, .max_flows = 1, .max_workloads = 1 };
	struct topo *w = topo_new(&lim);
	struct topo_edge *out = NULL;
	long n = 0;

	if (!w)
		return -ENOMEM;
	*complete = t->ring_next <= t->lim.max_flows;
	for (uint64_t k = 0; k < held; k++) {
		const struct topo_flow *f = &t->ring[(t->ring_next - 1 - k) % t->lim.max_flows];

		if (f->time_ns < from_ns) {
			*complete = true;
			continue;
		}
		if (counts_for_edge(f) && topo_flow_match(t, f, flt))
			edge_account(E(w, edge_get(w, f->src_wl, f->dst_wl, f->dport, f->proto)),
				     f);
	}
	out = calloc(w->n_edges + 1, sizeof(*out));
	if (!out) {
		topo_free(w);
		return -ENOMEM;
	}
	for (uint32_t i = w->lru_head; i; i = E(w, i)->lru_next)
		if (edge_match(t, E(w, i), flt))
			out[n++] = *E(w, i);
	topo_free(w);
	*edges = out;
	return n;
}

long topo_graph(struct topo *t, const struct topo_filter *flt, uint64_t window_ns,
		struct topo_edge **edges, bool *complete)
{
	struct topo_edge *out;
	long n = 0;

	if (window_ns)
		return graph_window(t, flt, flow_now_ns() - window_ns, edges, complete);
	*complete = t->st.evicted_edges == 0;
	out = calloc(t->n_edges + 1, sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (uint32_t i = t->lru_head; i; i = E(t, i)->lru_next)
		if (edge_match(t, E(t, i), flt))
			out[n++] = *E(t, i);
	*edges = out;
	return n;
}

/* ---- to messages ---------------------------------------------------------------------- */

int topo_wl_to_batch(const struct topo *t, uint32_t id, struct flow_batch *b)
{
	const struct topo_wl *w = topo_wl(t, id);

	if (!w)
		return 0;
	return flow_batch_workload(b, w->ns, w->name, w->identity, (const char *const *)w->labels,
				   w->n_labels);
}

int topo_flows_to_batch(const struct topo *t, const struct topo_flow *const *fv, size_t n,
			struct flow_batch *b)
{
	for (size_t i = 0; i < n; i++) {
		const struct topo_flow *f = fv[i];
		FlowRec r = SEG__FLOW__V1__FLOW__INIT;
		int s = topo_wl_to_batch(t, f->src_wl, b), d = topo_wl_to_batch(t, f->dst_wl, b);

		if (s < 0 || d < 0)
			return -ENOMEM;
		r.time_ns = f->time_ns;
		r.node = (char *)topo_str(t, f->node);
		r.kind = f->kind;
		r.src_addr.data = (uint8_t *)f->src;
		r.src_addr.len = f->addr_len;
		r.dst_addr.data = (uint8_t *)f->dst;
		r.dst_addr.len = f->addr_len;
		r.src_port = f->sport;
		r.dst_port = f->dport;
		r.proto = f->proto;
		r.src_workload = s;
		r.dst_workload = d;
		r.src_identity = f->src_id;
		r.dst_identity = f->dst_id;
		r.direction = f->dir;
		r.verdict = f->verdict;
		r.policy = (char *)topo_str(t, f->policy);
		r.rule_id = f->rule_id;
		r.rule = (char *)topo_str(t, f->rule);
		r.reason = f->reason;
		r.reason_text = (char *)seg_reason_str(f->reason);
		r.packets_fwd = f->packets_fwd;
		r.bytes_fwd = f->bytes_fwd;
		r.packets_rev = f->packets_rev;
		r.bytes_rev = f->bytes_rev;
		r.first_seen_ns = f->first_ns;
		r.last_seen_ns = f->last_ns;
		r.tcp_flags_fwd = f->flags_fwd;
		r.tcp_flags_rev = f->flags_rev;
		r.suppressed = f->suppressed;
		if (flow_batch_add(b, &r))
			return -ENOMEM;
	}
	return 0;
}

/* ---- life cycle ------------------------------------------------------------------------ */

struct topo *topo_new(const struct topo_limits *l)
{
	struct topo *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	pthread_mutex_init(&t->mu, NULL);
	t->lim.max_edges = l && l->max_edges ? l->max_edges : 100000;
	t->lim.max_flows = l && l->max_flows ? l->max_flows : 100000;
	t->lim.max_workloads = l && l->max_workloads ? l->max_workloads : 65536;
	for (t->e_nbucket = 64; t->e_nbucket < t->lim.max_edges; t->e_nbucket *= 2)
		;
	t->edges = malloc((size_t)t->lim.max_edges * sizeof(*t->edges));
	t->e_bucket = calloc(t->e_nbucket, sizeof(*t->e_bucket));
	t->ring = malloc((size_t)t->lim.max_flows * sizeof(*t->ring));
	if (!t->edges || !t->e_bucket || !t->ring) {
		topo_free(t);
		return NULL;
	}
	return t;
}

void topo_free(struct topo *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i < t->n_wls; i++)
		wl_clear(&t->wls[i]);
	free(t->wls);
	free(t->wl_h);
	for (uint32_t i = 0; i < t->strs.n; i++)
		free(t->strs.s[i]);
	free(t->strs.s);
	free(t->strs.h);
	free(t->edges);
	free(t->e_bucket);
	free(t->ring);
	free(t->nodes);
	free(t->scratch);
	free(t->cwl);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

void topo_lock(struct topo *t)
{
	pthread_mutex_lock(&t->mu);
}

void topo_unlock(struct topo *t)
{
	pthread_mutex_unlock(&t->mu);
}
