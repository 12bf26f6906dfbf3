// SPDX-License-Identifier: GPL-2.0-only
/*
 * segd's flow recorder and exporter: see export.h and docs/flows.md
 * ("Exporter"). Loop side first (events, conntrack walk, snapshot, ring,
 * flow-list), then the exporter thread (batches, spool, stream).
 */
#include "export.h"

#include "addr.h"
#include "dp/dp.h"
#include "flow.h"
#include "log.h"
#include "loop.h"
#include "segd.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXP_RING 8192 /* recent flows kept for flow-list */
#define EXP_QUEUE 32768 /* records between the loop and the thread */
#define EXP_TRACK (1u << 16) /* conntrack entries followed (power of 2) */
#define EXP_BATCH_MAX 2000 /* records per batch */
#define EXP_BATCH_MS 200 /* flush a partial batch after this long */
#define EXP_ACK_MS 1000 /* close the stream (ack) this often while sending */
#define EXP_POP 256 /* records taken from the queue per lock */
/* A conntrack entry's first_seen_ns (coarse clock) trails its first
 * packet's event time (precise) by less than a tick: an entry first seen
 * no earlier than this before a NEW event is the event's flow. */
#define EXP_CLOCK_SLACK_NS (50 * 1000000ull)

/* ---- snapshot of the compiled state: what records point into ---------------- */

struct exp_wl {
	char *ns, *name;
	char **labels; /* "k=v" */
	size_t nlabels;
	uint32_t identity;
};

struct exp_rule {
	uint32_t id;
	char *policy; /* "ns/name" */
	char *text;
};

struct exp_addr {
	struct in6_addr a;
	uint32_t wl;
};

/* A local endpoint (the ep_id its events and conntrack entries carry, the
 * ifkey its events carry) and its pod. */
struct exp_ep {
	uint32_t ep_id, ifkey;
	uint32_t wl;
};

struct exp_snap {
	atomic_uint refs;
	uint64_t id; /* unique in the process: with an index, the encoder's key */
	struct exp_wl *wl;
	size_t nwl;
	struct exp_addr *addr; /* sorted by address */
	size_t naddr;
	struct exp_rule *rules; /* sorted by id */
	size_t nrules;
	struct exp_ep *eps;
	size_t neps;
};

/* One record, fixed size. Counters are deltas (see seg_flow.proto). */
struct exp_rec {
	struct exp_snap *snap; /* a reference */
	uint64_t seq; /* ring position */
	uint64_t time_ns, first_ns, last_ns; /* wall clock */
	struct in6_addr src, dst;
	uint64_t pk[2], by[2]; /* fwd, rev */
	uint32_t src_id, dst_id, rule_id, suppressed;
	/* the local endpoint (source on egress, destination on ingress):
	 * conntrack entries name its ep_id, events its ifkey too (also when
	 * it had no endpoint entry yet: SEG_DROP_NO_ENDPOINT, ep_id 0) */
	uint32_t ep_id, ifkey;
	int32_t src_wl, dst_wl, rule; /* indexes into snap, -1 = none */
	uint16_t sport, dport;
	uint8_t proto, kind, dir, verdict, reason, tf[2];
};

/* A conntrack entry followed across walks. */
struct exp_track {
	struct seg_ct_key k;
	struct seg_ct_entry e; /* as last seen */
	uint64_t rep_pk[2], rep_by[2]; /* reported so far, fwd/rev */
	uint32_t gen;
	bool used, ended, walked; /* walked: e came from the map */
};

struct exp_spool {
	int fd;
	char *path; /* NULL: memory only */
	uint64_t head, tail; /* oldest unacked entry, end */
	uint64_t max;
	uint64_t batches, records; /* in the spool now */
};

/* Spool entry header; the packed Batch follows. */
struct exp_spool_hdr {
	uint32_t len, records;
	uint64_t seq;
};

struct segd_export {
	struct segd *d;
	char node[256];

	/* loop side */
	struct seg_dp_events *evs;
	struct loop_src *ev_src, *ct_timer;
	struct exp_snap *snap;
	const void *snap_c;
	unsigned long snap_syncs;
	struct exp_track *track;
	size_t ntrack;
	uint32_t gen;
	uint64_t mono_off; /* realtime - monotonic, refreshed per wake-up */
	uint64_t idle_ns;
	struct exp_rec *ring;
	uint64_t ring_seq; /* next seq */
	uint64_t events, ct_updates, ct_ends, track_full, suppressed;

	/* loop -> thread */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct exp_rec *q;
	size_t qhead, qlen;
	bool stop;
	bool have_thread;
	pthread_t thread;

	/* thread side; read by status under mu */
	struct flow_client_opts co;
	struct flow_client *fc;
	struct flow_cols *b; /* the batch being filled: columnar (Batch.columns) */
	struct flow_batch *v1; /* a spooled batch as Flow messages, for an old service */
	struct flow_backoff bo;
	struct exp_spool sp;
	uint64_t session, seq;
	uint64_t queued, q_dropped, spool_dropped, sent_records, sent_batches, acked_streams;
	uint64_t pending_drop; /* not yet reported in a batch's dropped */
	uint64_t q_dropped_taken; /* part of q_dropped already in pending_drop */
	bool connected, spool_full;
	bool columns; /* the service of the last stream opened takes Batch.columns */
	char last_error[256];
	/* status copies (guarded by mu) */
	struct {
		uint64_t spool_batches, spool_records, spool_bytes, sent_records, sent_batches,
			spool_dropped, streams, send_errors;
		bool connected, columns, opened;
		char last_error[256];
	} pub;
};

static uint64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void snap_free(struct exp_snap *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nwl; i++) {
		/* NULL-terminated: the labels, then ns and name */
		for (size_t j = 0; s->wl[i].labels && s->wl[i].labels[j]; j++)
			free(s->wl[i].labels[j]);
		free(s->wl[i].labels);
	}
	free(s->wl);
	for (size_t i = 0; i < s->nrules; i++) {
		free(s->rules[i].policy);
		free(s->rules[i].text);
	}
	free(s->rules);
	free(s->addr);
	free(s->eps);
	free(s);
}

static struct exp_snap *snap_ref(struct exp_snap *s)
{
	if (s)
		atomic_fetch_add(&s->refs, 1);
	return s;
}

static void snap_unref(struct exp_snap *s)
{
	if (s && atomic_fetch_sub(&s->refs, 1) == 1)
		snap_free(s);
}

static int addr_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct exp_addr *)a)->a, &((const struct exp_addr *)b)->a,
		      sizeof(struct in6_addr));
}

static int rule_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct exp_rule *)a)->id, y = ((const struct exp_rule *)b)->id;

	return x < y ? -1 : x > y;
}

/* The local endpoints of compiled state c: each attachment's ep_id (as
 * lib/apply writes it: the attachment's own, else its ifkey) with the pod
 * it was attached for. Pods come from c->eps (the local ones), so this is
 * (local pods x attachments), not the cluster's pods. */
static int snap_eps(struct exp_snap *s, const struct segd *d, const struct seg_compiled *c)
{
	if (!c->neps || !d->natt)
		return 0;
	s->eps = calloc(c->neps, sizeof(*s->eps));
	if (!s->eps)
		return -ENOMEM;
	for (size_t i = 0; i < c->neps; i++) {
		size_t wl = c->eps[i].pod, l;

		if (wl >= s->nwl)
			continue;
		l = strlen(s->wl[wl].ns);
		for (size_t j = 0; j < d->natt; j++) {
			const struct segd_att *a = &d->att[j];

			if (strncmp(a->pod, s->wl[wl].ns, l) || a->pod[l] != '/' ||
			    strcmp(a->pod + l + 1, s->wl[wl].name))
				continue;
			s->eps[s->neps].ep_id = a->ep_id ? a->ep_id : a->ifkey;
			s->eps[s->neps].ifkey = a->ifkey;
			s->eps[s->neps].wl = (uint32_t)wl;
			s->neps++;
			break;
		}
	}
	return 0;
}

/* Workloads are the pods of the manifests (names point into the
 * manifests, which die with the next sync: copied). */
static atomic_uint_fast64_t snap_ids;

static int snap_build(const struct segd *d, struct exp_snap **out)
{
	const struct seg_manifests *m = d->m;
	const struct seg_compiled *c = d->c;
	struct exp_snap *s = calloc(1, sizeof(*s));
	int err = -ENOMEM;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	atomic_init(&s->refs, 1);
	s->id = atomic_fetch_add(&snap_ids, 1) + 1;
	if (m && m->npods) {
		s->wl = calloc(m->npods, sizeof(*s->wl));
		if (!s->wl)
			goto fail;
		s->nwl = m->npods;
		for (size_t i = 0; i < m->npods; i++) {
			const struct seg_pod *p = &m->pods[i];
			struct exp_wl *w = &s->wl[i];

			w->ns = p->ns;
			w->name = p->name;
			w->labels = calloc(p->labels.n + 3, sizeof(char *));
			if (!w->labels)
				goto fail;
			for (size_t j = 0; j < p->labels.n; j++) {
				if (asprintf(&w->labels[j], "%s=%s", p->labels.v[j].key,
					     p->labels.v[j].val) < 0) {
					w->labels[j] = NULL;
					goto fail;
				}
				w->nlabels++;
			}
			/* ns and name live in the label array's tail, owned */
			w->labels[p->labels.n] = strdup(p->ns);
			if (!w->labels[p->labels.n])
				goto fail;
			w->labels[p->labels.n + 1] = strdup(p->name);
			if (!w->labels[p->labels.n + 1])
				goto fail;
			w->ns = w->labels[p->labels.n];
			w->name = w->labels[p->labels.n + 1];
		}
	}
	if (c && c->nipc) {
		s->addr = calloc(c->nipc, sizeof(*s->addr));
		if (!s->addr)
			goto fail;
		for (size_t i = 0; i < c->nipc; i++) {
			if (c->ipc[i].pod >= s->nwl)
				continue;
			s->addr[s->naddr].a = c->ipc[i].addr;
			s->addr[s->naddr].wl = (uint32_t)c->ipc[i].pod;
			s->wl[c->ipc[i].pod].identity = c->ipc[i].val.identity;
			s->naddr++;
		}
		qsort(s->addr, s->naddr, sizeof(*s->addr), addr_cmp);
	}
	if (c && c->nrules) {
		s->rules = calloc(c->nrules, sizeof(*s->rules));
		if (!s->rules)
			goto fail;
		for (size_t i = 0; i < c->nrules; i++) {
			const struct seg_rule_info *ri = &c->rules[i];
			struct exp_rule *r = &s->rules[s->nrules];
			char buf[512];

			if (!m || ri->pol >= m->npols)
				continue;
			seg_rule_describe(c, ri->rule_id, buf, sizeof(buf));
			r->id = ri->rule_id;
			if (asprintf(&r->policy, "%s/%s", m->pols[ri->pol].ns,
				     m->pols[ri->pol].name) < 0) {
				r->policy = NULL;
				goto fail;
			}
			r->text = strdup(buf);
			s->nrules++;
			if (!r->text)
				goto fail;
		}
		qsort(s->rules, s->nrules, sizeof(*s->rules), rule_cmp);
	}
	if (c && snap_eps(s, d, c))
		goto fail;
	*out = s;
	return 0;
fail:
	snap_free(s); /* a half-built workload's label array is NULL-terminated too */
	return err;
}

/* The snapshot of the current compiled state, rebuilt after each sync. */
static struct exp_snap *snap_get(struct segd_export *x)
{
	struct exp_snap *s;

	if (x->snap && x->snap_c == x->d->c && x->snap_syncs == x->d->st.syncs)
		return x->snap;
	if (snap_build(x->d, &s)) {
		log_warn("exporter: out of memory for the workload table; flows go unresolved");
		return x->snap; /* the old one still names most workloads */
	}
	snap_unref(x->snap);
	x->snap = s;
	x->snap_c = x->d->c;
	x->snap_syncs = x->d->st.syncs;
	return s;
}

static int32_t snap_wl(const struct exp_snap *s, const struct in6_addr *a)
{
	struct exp_addr k = { .a = *a };
	const struct exp_addr *r;

	if (!s || !s->naddr)
		return -1;
	r = bsearch(&k, s->addr, s->naddr, sizeof(k), addr_cmp);
	return r ? (int32_t)r->wl : -1;
}

/* The pod of the endpoint a record was made on. A scan of this node's
 * endpoints: only records with a link-only local address ask. */
static int32_t snap_ep_wl(const struct exp_snap *s, const struct exp_rec *r)
{
	for (size_t i = 0; s && i < s->neps; i++) {
		const struct exp_ep *e = &s->eps[i];

		if ((r->ifkey && e->ifkey == r->ifkey) || (r->ep_id && e->ep_id == r->ep_id))
			return (int32_t)e->wl;
	}
	return -1;
}

/* An address that does not leave the link: IPv6 unspecified, link-local
 * (fe80::/10) and link-scope multicast (ff02::/16: ND, MLD, RS), IPv4
 * 0.0.0.0, link-local (169.254/16), local network control multicast
 * (224.0.0.0/24) and broadcast. */
static bool addr_on_link(const struct in6_addr *a)
{
	const uint8_t *v4 = &a->s6_addr[12];

	if (seg_addr_is_v4(a))
		return !memcmp(v4, "\0\0\0\0", 4) || (v4[0] == 169 && v4[1] == 254) ||
		       (v4[0] == 224 && v4[1] == 0 && v4[2] == 0) ||
		       !memcmp(v4, "\xff\xff\xff\xff", 4);
	return IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
	       IN6_IS_ADDR_MC_LINKLOCAL(a);
}

/* The workloads at both ends. By address (the ipcache's pods); besides, a
 * record's local side at a link-only address (a pod's MLD reports from
 * fe80:: or ::, ping or UDP between fe80:: addresses, a link multicast it
 * receives) is the pod of the endpoint the data path saw it on, which no
 * address names: without this both ends were world (docs/flows.md). */
static void rec_workloads(const struct exp_snap *s, struct exp_rec *r)
{
	bool egress = r->dir == SEG_DIR_EGRESS;
	int32_t *local_wl = egress ? &r->src_wl : &r->dst_wl;

	r->src_wl = snap_wl(s, &r->src);
	r->dst_wl = snap_wl(s, &r->dst);
	if (*local_wl < 0 && addr_on_link(egress ? &r->src : &r->dst))
		*local_wl = snap_ep_wl(s, r);
}

static int32_t snap_rule(const struct exp_snap *s, uint32_t id)
{
	struct exp_rule k = { .id = id };
	const struct exp_rule *r;

	if (!s || !id || !s->nrules)
		return -1;
	r = bsearch(&k, s->rules, s->nrules, sizeof(k), rule_cmp);
	return r ? (int32_t)(r - s->rules) : -1;
}

/* ---- records: ring + queue ------------------------------------------------------------ */

static void rec_emit(struct segd_export *x, struct exp_rec *r)
{
	struct exp_snap *s = snap_get(x);
	struct exp_rec *slot;

	r->snap = s;
	rec_workloads(s, r);
	r->rule = snap_rule(s, r->rule_id);
	if (r->src_wl >= 0 && !r->src_id)
		r->src_id = s->wl[r->src_wl].identity;
	if (r->dst_wl >= 0 && !r->dst_id)
		r->dst_id = s->wl[r->dst_wl].identity;
	r->seq = x->ring_seq++;
	slot = &x->ring[r->seq % EXP_RING];
	snap_unref(slot->snap);
	*slot = *r;
	snap_ref(s);
	if (!x->have_thread)
		return;
	pthread_mutex_lock(&x->mu);
	if (x->qlen == EXP_QUEUE) {
		x->q_dropped++;
	} else {
		x->q[(x->qhead + x->qlen++) % EXP_QUEUE] = *r;
		snap_ref(s);
		x->queued++;
		if (x->qlen == EXP_BATCH_MAX)
			pthread_cond_signal(&x->cv);
	}
	pthread_mutex_unlock(&x->mu);
}

static void refresh_clock(struct segd_export *x)
{
	struct timespec r;

	clock_gettime(CLOCK_REALTIME, &r);
	x->mono_off = (uint64_t)r.tv_sec * 1000000000ull + (uint64_t)r.tv_nsec - mono_ns();
}

/* ---- conntrack tracking table (open addressing, linear probing) -------------------------- */

static size_t track_hash(const struct seg_ct_key *k)
{
	const unsigned char *p = (const unsigned char *)k;
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < sizeof(*k); i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29)) & (EXP_TRACK - 1);
}

/* Finds k; with add, inserts it (NULL when full). */
static struct exp_track *track_get(struct segd_export *x, const struct seg_ct_key *k, bool add)
{
	size_t i = track_hash(k);

	for (size_t n = 0; n < EXP_TRACK; n++, i = (i + 1) & (EXP_TRACK - 1)) {
		struct exp_track *t = &x->track[i];

		if (!t->used) {
			if (!add)
				return NULL;
			if (x->ntrack >= EXP_TRACK - EXP_TRACK / 8) {
				x->track_full++;
				return NULL;
			}
			memset(t, 0, sizeof(*t));
			t->used = true;
			t->k = *k;
			t->gen = x->gen;
			x->ntrack++;
			return t;
		}
		if (!memcmp(&t->k, k, sizeof(*k)))
			return t;
	}
	return NULL;
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void track_del(struct segd_export *x, size_t i)
{
	size_t j = i;

	x->track[i].used = false;
	x->ntrack--;
	for (;;) {
		size_t h;

		j = (j + 1) & (EXP_TRACK - 1);
		if (!x->track[j].used)
			return;
		h = track_hash(&x->track[j].k);
		/* j's entry may move to i if i lies cyclically in [h, j) */
		if ((j > i && (h <= i || h > j)) || (j < i && (h <= i && h > j))) {
			x->track[i] = x->track[j];
			x->track[j].used = false;
			i = j;
		}
	}
}

static void ct_record(struct segd_export *x, const struct exp_track *t, uint8_t kind,
		      const uint64_t dpk[2], const uint64_t dby[2])
{
	const struct seg_ct_entry *e = &t->e;
	const struct seg_ct_key *k = &t->k;
	struct exp_rec r = { .kind = kind, .proto = k->proto, .dir = e->dir, .ep_id = e->ep_id };
	uint8_t fwd = e->dir & 1, rev = fwd ^ 1;

	if (e->dir == SEG_DIR_EGRESS) { /* first packet left the pod: local is the source */
		memcpy(&r.src, k->laddr, 16);
		memcpy(&r.dst, k->raddr, 16);
		r.sport = k->lport;
		r.dport = k->rport;
		r.dst_id = e->remote_id;
	} else {
		memcpy(&r.src, k->raddr, 16);
		memcpy(&r.dst, k->laddr, 16);
		r.sport = k->rport;
		r.dport = k->lport;
		r.src_id = e->remote_id;
	}
	r.time_ns = flow_now_ns();
	r.first_ns = e->first_seen_ns + x->mono_off;
	r.last_ns = e->last_seen_ns + x->mono_off;
	r.verdict = e->verdict;
	r.reason = e->reason;
	r.rule_id = e->rule_id;
	r.pk[0] = dpk[0];
	r.pk[1] = dpk[1];
	r.by[0] = dby[0];
	r.by[1] = dby[1];
	r.tf[0] = e->tcp_flags[fwd];
	r.tf[1] = e->tcp_flags[rev];
	rec_emit(x, &r);
}

static int ct_visit(const struct seg_ct_key *k, const struct seg_ct_entry *e, void *ctx)
{
	struct segd_export *x = ctx;
	struct exp_track *t = track_get(x, k, true);
	uint8_t fwd = e->dir & 1, rev = fwd ^ 1;
	uint64_t cur_pk[2] = { e->packets[fwd], e->packets[rev] };
	uint64_t cur_by[2] = { e->bytes[fwd], e->bytes[rev] };
	uint64_t dpk[2], dby[2], now = mono_ns();
	bool idle, moved;

	if (!t)
		return 0;
	if (t->walked && t->e.first_seen_ns != e->first_seen_ns) {
		/* the key was reused by a new flow: start over */
		memset(t->rep_pk, 0, sizeof(t->rep_pk));
		memset(t->rep_by, 0, sizeof(t->rep_by));
		t->ended = false;
	}
	t->e = *e;
	t->walked = true;
	t->gen = x->gen;
	for (int i = 0; i < 2; i++) {
		dpk[i] = cur_pk[i] >= t->rep_pk[i] ? cur_pk[i] - t->rep_pk[i] : cur_pk[i];
		dby[i] = cur_by[i] >= t->rep_by[i] ? cur_by[i] - t->rep_by[i] : cur_by[i];
	}
	moved = dpk[0] || dpk[1];
	idle = now > e->last_seen_ns && now - e->last_seen_ns >= x->idle_ns;
	if (moved && t->ended)
		t->ended = false; /* traffic again after an END */
	if (!moved && (t->ended || !idle))
		return 0;
	ct_record(x, t, idle ? SEG__FLOW__V1__KIND__KIND_END : SEG__FLOW__V1__KIND__KIND_UPDATE,
		  dpk, dby);
	if (idle) {
		x->ct_ends++;
		t->ended = true;
	} else {
		x->ct_updates++;
	}
	for (int i = 0; i < 2; i++) {
		t->rep_pk[i] = cur_pk[i];
		t->rep_by[i] = cur_by[i];
	}
	return 0;
}

static int on_ct_timer(struct loop *l, struct loop_src *s, uint32_t ev, void *ctx)
{
	struct segd_export *x = ctx;
	static const uint64_t zero[2];
	int err;

	refresh_clock(x);
	x->gen++;
	err = seg_dp_ct_foreach(x->d->dp, ct_visit, x);
	if (err)
		return err;
	/* entries gone from the map (expired, evicted, closed): END once */
	for (size_t i = 0; i < EXP_TRACK;) {
		struct exp_track *t = &x->track[i];

		if (!t->used || t->gen == x->gen) {
			i++;
			continue;
		}
		if (!t->ended) {
			ct_record(x, t, SEG__FLOW__V1__KIND__KIND_END, zero, zero);
			x->ct_ends++;
		}
		track_del(x, i); /* an entry may have moved into i: look again */
	}
	return 0;
}

/* ---- ring buffer events ---------------------------------------------------------------------- */

static int on_event(const struct seg_flow_event *ev, void *ctx)
{
	struct segd_export *x = ctx;
	struct exp_track *t = NULL;
	struct exp_rec r = { 0 };
	static const uint8_t kinds[] = {
		[SEG_EV_NEW] = SEG__FLOW__V1__KIND__KIND_NEW,
		[SEG_EV_DENY] = SEG__FLOW__V1__KIND__KIND_DENY,
		[SEG_EV_REVOKED] = SEG__FLOW__V1__KIND__KIND_REVOKED,
	};

	x->events++;
	x->suppressed += ev->suppressed;
	r.kind = ev->type < sizeof(kinds) ? kinds[ev->type] : 0;
	memcpy(&r.src, ev->saddr, 16);
	memcpy(&r.dst, ev->daddr, 16);
	r.sport = ev->sport;
	r.dport = ev->dport;
	r.proto = ev->proto;
	r.dir = ev->dir;
	r.verdict = ev->verdict;
	r.reason = ev->reason;
	r.rule_id = ev->rule_id;
	r.suppressed = ev->suppressed;
	r.ep_id = ev->ep_id;
	r.ifkey = ev->ifkey;
	if (ev->dir == SEG_DIR_EGRESS) {
		r.src_id = ev->local_id;
		r.dst_id = ev->remote_id;
	} else {
		r.src_id = ev->remote_id;
		r.dst_id = ev->local_id;
	}
	r.time_ns = r.first_ns = r.last_ns = ev->ts_ns + x->mono_off;
	r.pk[0] = 1;
	r.by[0] = ev->pkt_len;
	r.tf[0] = ev->tcp_flags;
	if (ev->type == SEG_EV_NEW) {
		/* the conntrack walk reports what comes after this packet */
		struct seg_ct_key k = { .proto = ev->proto };

		if (ev->dir == SEG_DIR_EGRESS) {
			memcpy(k.laddr, ev->saddr, 16);
			memcpy(k.raddr, ev->daddr, 16);
			k.lport = ev->sport;
			k.rport = ev->dport;
		} else {
			memcpy(k.laddr, ev->daddr, 16);
			memcpy(k.raddr, ev->saddr, 16);
			k.lport = ev->dport;
			k.rport = ev->sport;
		}
		t = track_get(x, &k, true);
		if (t && t->walked && t->e.first_seen_ns + EXP_CLOCK_SLACK_NS >= ev->ts_ns) {
			/* The walk came first (timer and ring buffer ready in one
			 * loop turn): it has reported this flow from its first
			 * packet, this one included, and keeps its baseline. */
			r.pk[0] = 0;
			r.by[0] = 0;
			t = NULL;
		}
	}
	rec_emit(x, &r);
	if (t) {
		memset(t->rep_pk, 0, sizeof(t->rep_pk));
		memset(t->rep_by, 0, sizeof(t->rep_by));
		t->rep_pk[0] = 1;
		t->rep_by[0] = ev->pkt_len;
		t->ended = false;
		t->walked = false;
		t->gen = x->gen;
		memset(&t->e, 0, sizeof(t->e)); /* filled by the next walk */
		t->e.dir = ev->dir;
		t->e.verdict = ev->verdict;
		t->e.reason = ev->reason;
		t->e.rule_id = ev->rule_id;
		t->e.remote_id = ev->remote_id;
		t->e.ep_id = ev->ep_id;
		t->e.first_seen_ns = ev->ts_ns;
		t->e.last_seen_ns = ev->ts_ns;
	}
	return 0;
}

static int on_events(struct loop *l, struct loop_src *s, uint32_t events, void *ctx)
{
	struct segd_export *x = ctx;
	int n;

	refresh_clock(x);
	/* drains what is there: bounded by the ring buffer's size */
	n = seg_dp_events_poll(x->evs, 0);
	return n < 0 ? n : 0;
}

/* ---- flow-list (segctl observe) ------------------------------------------------------------------- */

static json_t *wl_json(const struct exp_snap *s, int32_t wl, const struct in6_addr *a,
		       uint16_t port, uint32_t id)
{
	char ab[INET6_ADDRSTRLEN];
	json_t *o = json_pack("{s:s, s:i, s:I}", "addr", seg_addr_str(a, ab, sizeof(ab)), "port",
			      port, "identity", (json_int_t)id);

	if (o && wl >= 0) {
		const struct exp_wl *w = &s->wl[wl];
		json_t *labels = json_array();

		for (size_t i = 0; i < w->nlabels; i++)
			json_array_append_new(labels, json_string(w->labels[i]));
		json_object_set_new(o, "namespace", json_string(w->ns));
		json_object_set_new(o, "name", json_string(w->name));
		json_object_set_new(o, "labels", labels);
	}
	return o;
}

static bool wl_in_ns(const struct exp_snap *s, int32_t wl, const char *ns)
{
	return wl >= 0 && !strcmp(s->wl[wl].ns, ns);
}

static bool wl_is(const struct exp_snap *s, int32_t wl, const char *pod)
{
	size_t l;

	if (wl < 0)
		return false;
	l = strlen(s->wl[wl].ns);
	return !strncmp(pod, s->wl[wl].ns, l) && pod[l] == '/' &&
	       !strcmp(pod + l + 1, s->wl[wl].name);
}

static json_t *rec_json(const struct segd_export *x, const struct exp_rec *r)
{
	const struct exp_snap *s = r->snap;
	json_t *o = json_pack(
		"{s:I, s:I, s:s, s:i, s:o, s:o, s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:I, "
		"s:I, s:I, s:i, s:i, s:i, s:i}",
		"seq", (json_int_t)r->seq, "time_ns", (json_int_t)r->time_ns, "node", x->node,
		"kind", r->kind, "src", wl_json(s, r->src_wl, &r->src, r->sport, r->src_id), "dst",
		wl_json(s, r->dst_wl, &r->dst, r->dport, r->dst_id), "proto", r->proto, "direction",
		r->dir, "verdict", r->verdict, "reason", r->reason, "packets_fwd",
		(json_int_t)r->pk[0], "bytes_fwd", (json_int_t)r->by[0], "packets_rev",
		(json_int_t)r->pk[1], "bytes_rev", (json_int_t)r->by[1], "first_seen_ns",
		(json_int_t)r->first_ns, "last_seen_ns", (json_int_t)r->last_ns, "tcp_flags_fwd",
		r->tf[0], "tcp_flags_rev", r->tf[1], "rule_id", r->rule_id, "suppressed",
		r->suppressed);

	if (o && r->rule >= 0) {
		json_object_set_new(o, "policy", json_string(s->rules[r->rule].policy));
		json_object_set_new(o, "rule", json_string(s->rules[r->rule].text));
	}
	return o;
}

int segd_export_flow_list(struct segd_export *x, json_t *args, json_t **res, char *err,
			  size_t errlen)
{
	json_int_t after = -1, limit = 1000, since = 0;
	const char *ns = NULL, *pod = NULL, *verdict = NULL;
	uint64_t first, from, lost = 0;
	int want_v = 0;
	json_t *flows;

	if (!x) {
		snprintf(err, errlen, "flow recording is off");
		return -ENOTSUP;
	}
	if (args && json_unpack_ex(args, NULL, 0, "{s?I, s?I, s?s, s?s, s?s, s?I}", "after", &after,
				   "limit", &limit, "namespace", &ns, "pod", &pod, "verdict",
				   &verdict, "since_ns", &since)) {
		snprintf(err, errlen,
			 "flow-list wants {after, limit, namespace, pod, verdict, since_ns}");
		return -EINVAL;
	}
	if (verdict && *verdict) {
		want_v = flow_verdict_parse(verdict);
		if (want_v < 0) {
			snprintf(err, errlen, "verdict: allow, deny or audit, not '%s'", verdict);
			return -EINVAL;
		}
	}
	if (limit <= 0 || limit > EXP_RING)
		limit = EXP_RING;
	first = x->ring_seq > EXP_RING ? x->ring_seq - EXP_RING : 0;
	if (after < 0) {
		/* the most recent `limit` matching ones: walk back to find the start */
		json_int_t n = 0;

		from = x->ring_seq;
		while (from > first && n < limit) {
			const struct exp_rec *r = &x->ring[(from - 1) % EXP_RING];

			from--;
			if ((!ns || wl_in_ns(r->snap, r->src_wl, ns) ||
			     wl_in_ns(r->snap, r->dst_wl, ns)) &&
			    (!pod || wl_is(r->snap, r->src_wl, pod) ||
			     wl_is(r->snap, r->dst_wl, pod)) &&
			    (!want_v || r->verdict == want_v) && r->time_ns >= (uint64_t)since)
				n++;
		}
	} else {
		from = (uint64_t)after;
		if (from < first) {
			lost = first - from;
			from = first;
		}
		if (from > x->ring_seq)
			from = x->ring_seq;
	}
	flows = json_array();
	for (uint64_t q = from; q < x->ring_seq && json_array_size(flows) < (size_t)limit; q++) {
		const struct exp_rec *r = &x->ring[q % EXP_RING];

		if (ns && !wl_in_ns(r->snap, r->src_wl, ns) && !wl_in_ns(r->snap, r->dst_wl, ns))
			continue;
		if (pod && !wl_is(r->snap, r->src_wl, pod) && !wl_is(r->snap, r->dst_wl, pod))
			continue;
		if (want_v && r->verdict != want_v)
			continue;
		if (r->time_ns < (uint64_t)since)
			continue;
		json_array_append_new(flows, rec_json(x, r));
	}
	*res = json_pack("{s:I, s:I, s:o}", "next", (json_int_t)x->ring_seq, "lost",
			 (json_int_t)lost, "flows", flows);
	return *res ? 0 : -ENOMEM;
}

/* ---- spool: unacknowledged batches, in order --------------------------------------------------- */

static int spool_open(struct exp_spool *sp, const char *path, uint64_t max)
{
	struct exp_spool_hdr h;
	struct stat st;

	sp->max = max;
	sp->fd = path ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) :
			memfd_create("segd-spool", MFD_CLOEXEC);
	if (sp->fd < 0)
		return log_err(-errno, "open spool %s", path ?: "(memory)");
	if (fstat(sp->fd, &st))
		return log_err(-errno, "stat spool %s", path ?: "(memory)");
	/* batches a previous segd did not deliver: kept (their own session
	 * and seq; the service applies them once), a torn tail cut */
	while (sp->tail + sizeof(h) <= (uint64_t)st.st_size &&
	       pread(sp->fd, &h, sizeof(h), (off_t)sp->tail) == sizeof(h) && h.len &&
	       sp->tail + sizeof(h) + h.len <= (uint64_t)st.st_size) {
		sp->tail += sizeof(h) + h.len;
		sp->batches++;
		sp->records += h.records;
	}
	if (ftruncate(sp->fd, (off_t)sp->tail))
		return log_err(-errno, "truncate spool %s", path ?: "(memory)");
	if (sp->batches)
		log_info("spool %s: %llu batches (%llu records) from before; delivering them first",
			 path, (unsigned long long)sp->batches, (unsigned long long)sp->records);
	return 0;
}

static int spool_append(struct exp_spool *sp, const void *buf, uint32_t len, uint32_t records,
			uint64_t seq)
{
	struct exp_spool_hdr h = { .len = len, .records = records, .seq = seq };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)buf, len } };

	if (sp->tail - sp->head + sizeof(h) + len > sp->max)
		return -ENOSPC;
	if (pwritev(sp->fd, iov, 2, (off_t)sp->tail) != (ssize_t)(sizeof(h) + len))
		return -errno ?: -EIO;
	sp->tail += sizeof(h) + len;
	sp->batches++;
	sp->records += records;
	return 0;
}

/* Reads the entry at *off into *buf (grown); advances *off. */
static int spool_read(struct exp_spool *sp, uint64_t *off, uint8_t **buf, size_t *cap,
		      struct exp_spool_hdr *h)
{
	if (pread(sp->fd, h, sizeof(*h), (off_t)*off) != sizeof(*h))
		return -EIO;
	if (h->len > *cap) {
		uint8_t *nb = realloc(*buf, h->len);

		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = h->len;
	}
	if (pread(sp->fd, *buf, h->len, (off_t)(*off + sizeof(*h))) != (ssize_t)h->len)
		return -EIO;
	*off += sizeof(*h) + h->len;
	return 0;
}

/* Everything before off was applied by the service. */
static uint64_t spool_ack(struct exp_spool *sp, uint64_t off)
{
	struct exp_spool_hdr h;
	uint64_t recs = 0;

	while (sp->head < off && pread(sp->fd, &h, sizeof(h), (off_t)sp->head) == sizeof(h)) {
		sp->head += sizeof(h) + h.len;
		sp->batches--;
		sp->records -= h.records;
		recs += h.records;
	}
	if (sp->head == sp->tail) {
		sp->head = sp->tail = 0;
		if (ftruncate(sp->fd, 0))
			log_warn("truncate spool: %s", strerror(errno));
	}
	return recs;
}

/* ---- the exporter thread ------------------------------------------------------------------------- */

/* The gRPC core's reason when it gave one (a TLS handshake that failed
 * says so there: "UNAVAILABLE: ... Ssl handshake failed: ... certificate
 * verify failed"), else the errno's text. */
static void note_error(struct segd_export *x, const char *what, int err)
{
	const char *why = flow_client_last_error(x->fc);

	snprintf(x->last_error, sizeof(x->last_error), "%s %s: %s", what, x->co.target,
		 why && *why ? why : strerror(-err));
}

static void publish(struct segd_export *x)
{
	const struct flow_client_stats *cs = flow_client_stats(x->fc);

	pthread_mutex_lock(&x->mu);
	x->pub.spool_batches = x->sp.batches;
	x->pub.spool_records = x->sp.records;
	x->pub.spool_bytes = x->sp.tail - x->sp.head;
	x->pub.sent_records = x->sent_records;
	x->pub.sent_batches = x->sent_batches;
	x->pub.spool_dropped = x->spool_dropped;
	x->pub.streams = cs->streams;
	x->pub.send_errors = cs->send_errors;
	x->pub.connected = x->connected;
	x->pub.columns = x->columns;
	x->pub.opened = cs->streams > 0;
	memcpy(x->pub.last_error, x->last_error, sizeof(x->last_error));
	pthread_mutex_unlock(&x->mu);
}

/* Encoder keys: the snapshot's id and a slot, so names are hashed once
 * per batch (a snapshot's names never change). */
#define EXP_KEY_SLOTS (1u << 24)
static uint64_t exp_key(const struct exp_snap *s, uint32_t slot)
{
	return s->id * EXP_KEY_SLOTS + slot;
}

/* f from r, its workloads, policy and rule text interned in b (*pol,
 * *rtext: string refs, -1 when they could not be). */
static void rec_to_flow(struct flow_cols *b, const struct exp_rec *r, FlowRec *f, int *pol,
			int *rtext)
{
	const struct exp_snap *s = r->snap;
	int32_t wl[2] = { r->src_wl, r->dst_wl };
	uint32_t idx[2] = { 0, 0 };

	for (int i = 0; i < 2; i++) {
		const struct exp_wl *w;
		int n;

		if (wl[i] < 0)
			continue;
		w = &s->wl[wl[i]];
		n = wl[i] < (int32_t)EXP_KEY_SLOTS ?
			    flow_cols_workload_key(b, exp_key(s, wl[i]), w->ns, w->name,
						   w->identity, (const char *const *)w->labels,
						   w->nlabels) :
			    flow_cols_workload(b, w->ns, w->name, w->identity,
					       (const char *const *)w->labels, w->nlabels);
		idx[i] = n > 0 ? (uint32_t)n : 0;
	}
	*pol = *rtext = r->rule >= 0 ? -1 : 0;
	if (r->rule >= 0 && 2 * (uint32_t)r->rule + 1 < EXP_KEY_SLOTS) {
		*pol = flow_cols_str_key(b, exp_key(s, 2 * r->rule), s->rules[r->rule].policy);
		*rtext = flow_cols_str_key(b, exp_key(s, 2 * r->rule + 1), s->rules[r->rule].text);
	}
	seg__flow__v1__flow__init(f);
	f->time_ns = r->time_ns;
	f->kind = r->kind;
	f->src_addr.data = (uint8_t *)&r->src;
	f->dst_addr.data = (uint8_t *)&r->dst;
	if (seg_addr_is_v4(&r->src)) {
		f->src_addr.data += 12;
		f->src_addr.len = 4;
	} else {
		f->src_addr.len = 16;
	}
	if (seg_addr_is_v4(&r->dst)) {
		f->dst_addr.data += 12;
		f->dst_addr.len = 4;
	} else {
		f->dst_addr.len = 16;
	}
	f->src_port = r->sport;
	f->dst_port = r->dport;
	f->proto = r->proto;
	f->src_workload = idx[0];
	f->dst_workload = idx[1];
	f->src_identity = r->src_id;
	f->dst_identity = r->dst_id;
	f->direction = r->dir;
	f->verdict = r->verdict;
	f->policy = r->rule >= 0 ? s->rules[r->rule].policy : (char *)"";
	f->rule = r->rule >= 0 ? s->rules[r->rule].text : (char *)"";
	f->rule_id = r->rule_id;
	f->reason = r->reason;
	f->reason_text = (char *)seg_reason_str(r->reason);
	f->packets_fwd = r->pk[0];
	f->bytes_fwd = r->by[0];
	f->packets_rev = r->pk[1];
	f->bytes_rev = r->by[1];
	f->first_seen_ns = r->first_ns;
	f->last_seen_ns = r->last_ns;
	f->tcp_flags_fwd = r->tf[0];
	f->tcp_flags_rev = r->tf[1];
	f->suppressed = r->suppressed;
}

/* The builder's records become the next batch in the spool (or are
 * dropped, counted, when the spool is full: no seq is used then). */
static void seal(struct segd_export *x)
{
	size_t n = flow_cols_len(x->b);
	const FlowBatch *m;
	uint8_t *buf = NULL;
	size_t len;
	int err = -ENOMEM;

	if (!n && !x->pending_drop)
		return; /* an empty batch still carries a drop count */
	m = flow_cols_msg(x->b, x->seq + 1, x->pending_drop);
	if (m) {
		len = protobuf_c_message_get_packed_size(&m->base);
		buf = malloc(len ?: 1);
	}
	if (buf) {
		protobuf_c_message_pack(&m->base, buf);
		err = spool_append(&x->sp, buf, (uint32_t)len, (uint32_t)n, x->seq + 1);
	}
	free(buf);
	if (err) {
		if (err != -ENOSPC)
			log_warn("exporter: spool write: %s; %zu records dropped", strerror(-err),
				 n);
		else if (!x->spool_full)
			log_warn(
				"exporter: spool full (%llu bytes unacknowledged); dropping new records, counted",
				(unsigned long long)(x->sp.tail - x->sp.head));
		x->spool_full = err == -ENOSPC;
		x->spool_dropped += n;
		x->pending_drop += n;
	} else {
		if (x->pending_drop)
			log_info("exporter: batch %llu reports %llu records dropped before it",
				 (unsigned long long)x->seq + 1,
				 (unsigned long long)x->pending_drop);
		x->spool_full = false;
		x->seq++;
		x->pending_drop = 0;
	}
	flow_cols_reset(x->b);
}

/* One spool entry on the stream: as it is when the service takes columns
 * (or the entry has none: a spool written before columns); else rewritten
 * as Flow messages, in its own node, session and seq. */
static int send_entry(struct segd_export *x, const uint8_t *buf, const struct exp_spool_hdr *h)
{
	Seg__Flow__V1__Batch *b;
	const FlowBatch *m;
	FlowBatch conv;
	int err;

	if (flow_export_columns(x->fc))
		return flow_export_send_raw(x->fc, buf, h->len, h->records);
	b = seg__flow__v1__batch__unpack(NULL, h->len, buf);
	if (!b)
		return -EBADMSG;
	if (!b->columns) {
		err = flow_export_send(x->fc, b);
		goto out;
	}
	err = -ENOMEM;
	if (!x->v1)
		x->v1 = flow_batch_new("", 0);
	if (!x->v1)
		goto out;
	flow_batch_reset(x->v1);
	if (flow_batch_add_cols(x->v1, b->columns))
		goto out;
	m = flow_batch_msg(x->v1, b->seq, b->dropped);
	if (!m)
		goto out;
	conv = *m;
	conv.node = b->node;
	conv.session = b->session;
	err = flow_export_send(x->fc, &conv);
out:
	seg__flow__v1__batch__free_unpacked(b, NULL);
	return err;
}

/* Sends what the stream has not carried yet; closes it for an ack once a
 * second; on failure, aborts and sets the next attempt (backoff). */
static void pump(struct segd_export *x, uint64_t *cursor, uint64_t *opened, uint64_t *retry_at,
		 uint8_t **buf, size_t *cap)
{
	uint64_t now = mono_ns();
	struct exp_spool_hdr h;
	int err;

	if (!flow_export_is_open(x->fc)) {
		if (x->sp.head == x->sp.tail || now < *retry_at)
			return;
		err = flow_export_open(x->fc);
		if (err) {
			note_error(x, "open stream to", err);
			goto failed;
		}
		*cursor = x->sp.head;
		*opened = now;
		x->columns = flow_export_columns(x->fc);
	}
	while (*cursor < x->sp.tail) {
		uint64_t off = *cursor;

		err = spool_read(&x->sp, &off, buf, cap, &h);
		if (err) {
			note_error(x, "read spool for", err);
			goto failed;
		}
		err = send_entry(x, *buf, &h);
		if (err == -EBADMSG) { /* cannot happen unless the file was damaged: skip it */
			log_warn("exporter: spool entry seq %llu unreadable, skipped",
				 (unsigned long long)h.seq);
			*cursor = off;
			continue;
		}
		if (err) {
			note_error(x, "send to", err);
			goto failed;
		}
		*cursor = off;
	}
	if (mono_ns() - *opened >= EXP_ACK_MS * 1000000ull || x->stop) {
		Seg__Flow__V1__ExportAck ack = SEG__FLOW__V1__EXPORT_ACK__INIT;
		uint64_t batches = x->sp.batches;

		err = flow_export_close(x->fc, &ack);
		if (err) {
			note_error(x, "close stream to", err);
			goto failed;
		}
		x->sent_records += spool_ack(&x->sp, *cursor);
		x->sent_batches += batches - x->sp.batches;
		x->connected = true;
		x->last_error[0] = 0;
		flow_backoff_reset(&x->bo);
		*retry_at = 0;
	}
	return;
failed:
	flow_export_abort(x->fc);
	if (x->connected)
		log_warn("exporter: %s; spooling and retrying", x->last_error);
	x->connected = false;
	*retry_at = mono_ns() + flow_backoff_next(&x->bo) * 1000000ull;
}

static void *exporter_main(void *arg)
{
	struct segd_export *x = arg;
	struct exp_rec *take = calloc(EXP_POP, sizeof(*take));
	uint64_t cursor = 0, opened = 0, retry_at = 0, batch_start = 0, stop_deadline = 0;
	uint8_t *buf = NULL;
	size_t cap = 0;

	if (!take) {
		log_error("exporter: out of memory; not exporting");
		return NULL;
	}
	for (;;) {
		struct timespec ts;
		size_t n = 0;
		bool stop;

		pthread_mutex_lock(&x->mu);
		if (!x->qlen) { /* also when stopping: paces the last delivery attempts */
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 50 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&x->cv, &x->mu, &ts);
		}
		while (x->qlen && n < EXP_POP && flow_cols_len(x->b) + n < EXP_BATCH_MAX) {
			take[n++] = x->q[x->qhead];
			x->qhead = (x->qhead + 1) % EXP_QUEUE;
			x->qlen--;
		}
		x->pending_drop += x->q_dropped - x->q_dropped_taken;
		x->q_dropped_taken = x->q_dropped;
		stop = x->stop && !x->qlen;
		pthread_mutex_unlock(&x->mu);

		for (size_t i = 0; i < n; i++) {
			FlowRec f;
			int pol, rtext;

			rec_to_flow(x->b, &take[i], &f, &pol, &rtext);
			if (flow_cols_add_ref(x->b, &f, pol, rtext)) {
				x->spool_dropped++;
				x->pending_drop++;
			}
			snap_unref(take[i].snap);
		}
		/* drops wait for the next batch at most EXP_BATCH_MS */
		if (!flow_cols_len(x->b) && !x->pending_drop)
			batch_start = mono_ns();
		if (flow_cols_len(x->b) >= EXP_BATCH_MAX || stop ||
		    mono_ns() - batch_start >= EXP_BATCH_MS * 1000000ull) {
			seal(x);
			batch_start = mono_ns();
		}
		if (stop && !stop_deadline)
			stop_deadline = mono_ns() + 2000000000ull;
		pump(x, &cursor, &opened, &retry_at, &buf, &cap);
		publish(x);
		if (stop && (x->sp.head == x->sp.tail || mono_ns() >= stop_deadline))
			break;
	}
	flow_export_abort(x->fc);
	if (x->sp.batches)
		log_warn("exporter: stopping with %llu batches (%llu records) undelivered%s",
			 (unsigned long long)x->sp.batches, (unsigned long long)x->sp.records,
			 x->sp.path ? " (kept in the spool file)" : "");
	free(buf);
	free(take);
	return NULL;
}

/* ---- start / stop / report ------------------------------------------------------------------------- */

static int start_thread(struct segd_export *x)
{
	const struct segd_opts *o = &x->d->o;
	uint64_t r = 0;
	int err;

	x->q = calloc(EXP_QUEUE, sizeof(*x->q));
	if (!x->q)
		return log_err(-ENOMEM, "exporter queue");
	x->co.target = o->export_addr;
	x->co.tls.ca_file = o->export_tls_ca;
	x->co.tls.cert_file = o->export_tls_cert;
	x->co.tls.key_file = o->export_tls_key;
	x->co.timeout_ms = 2000;
	x->sp.fd = -1;
	x->sp.path = (char *)o->export_spool;
	err = spool_open(&x->sp, o->export_spool, o->export_spool_max);
	if (err)
		return err;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = mono_ns() ^ ((uint64_t)getpid() << 32);
	x->session = r;
	x->b = flow_cols_new(x->node, x->session);
	if (!x->b)
		return log_err(-ENOMEM, "exporter batch");
	err = flow_client_new(&x->fc, &x->co);
	if (err)
		return err;
	flow_backoff_init(&x->bo, 200, 30000);
	err = -pthread_create(&x->thread, NULL, exporter_main, x);
	if (err)
		return log_err(err, "exporter thread");
	x->have_thread = true;
	log_info("exporting flows to %s as node %s (session %016llx, spool %s, max %llu bytes)",
		 x->co.target, x->node, (unsigned long long)x->session,
		 o->export_spool ?: "in memory", (unsigned long long)x->sp.max);
	return 0;
}

int segd_export_start(struct segd *d, struct segd_export **out)
{
	struct segd_export *x = calloc(1, sizeof(*x));
	int err;

	*out = NULL;
	if (!x)
		return log_err(-ENOMEM, "flow recorder");
	x->d = d;
	x->sp.fd = -1;
	pthread_mutex_init(&x->mu, NULL);
	pthread_cond_init(&x->cv, NULL);
	if (d->o.node_name)
		snprintf(x->node, sizeof(x->node), "%s", d->o.node_name);
	else if (gethostname(x->node, sizeof(x->node) - 1))
		snprintf(x->node, sizeof(x->node), "unknown");
	x->idle_ns = (uint64_t)(d->o.flow_idle ?: 30) * 1000000000ull;
	x->ring = calloc(EXP_RING, sizeof(*x->ring));
	x->track = calloc(EXP_TRACK, sizeof(*x->track));
	if (!x->ring || !x->track) {
		err = log_err(-ENOMEM, "flow recorder tables");
		goto fail;
	}
	refresh_clock(x);
	if (d->o.export_addr && (err = start_thread(x)))
		goto fail;
	err = seg_dp_events_open(d->dp, on_event, x, &x->evs);
	if (!err)
		err = loop_add_fd(d->loop, seg_dp_events_fd(x->evs), EPOLLIN, "flow-events",
				  on_events, x, &x->ev_src);
	if (!err)
		err = loop_add_timer(d->loop, 1000, (uint64_t)(d->o.ct_walk ?: 5) * 1000, "ct-walk",
				     on_ct_timer, x, &x->ct_timer);
	if (err)
		goto fail;
	*out = x;
	return 0;
fail:
	segd_export_stop(x);
	return err;
}

void segd_export_stop(struct segd_export *x)
{
	if (!x)
		return;
	if (x->ev_src)
		loop_del(x->d->loop, x->ev_src);
	if (x->ct_timer)
		loop_del(x->d->loop, x->ct_timer);
	seg_dp_events_close(x->evs);
	if (x->have_thread) {
		pthread_mutex_lock(&x->mu);
		x->stop = true;
		pthread_cond_signal(&x->cv);
		pthread_mutex_unlock(&x->mu);
		pthread_join(x->thread, NULL);
	}
	for (size_t i = 0; x->q && i < x->qlen; i++)
		snap_unref(x->q[(x->qhead + i) % EXP_QUEUE].snap);
	for (size_t i = 0; x->ring && i < EXP_RING; i++)
		snap_unref(x->ring[i].snap);
	snap_unref(x->snap);
	flow_client_free(x->fc);
	flow_cols_free(x->b);
	flow_batch_free(x->v1);
	if (x->sp.fd >= 0)
		close(x->sp.fd);
	free(x->q);
	free(x->ring);
	free(x->track);
	pthread_mutex_destroy(&x->mu);
	pthread_cond_destroy(&x->cv);
	free(x);
}

json_t *segd_export_status_json(struct segd_export *x)
{
	json_t *o;

	if (!x)
		return json_null();
	o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:i, s:I}", "node", x->node, "events",
		      (json_int_t)x->events, "ct_updates", (json_int_t)x->ct_updates, "ct_ends",
		      (json_int_t)x->ct_ends, "suppressed_by_rate_limit", (json_int_t)x->suppressed,
		      "tracked_flows", (int)x->ntrack, "untracked_flows",
		      (json_int_t)x->track_full);
	json_object_set_new(o, "target", x->have_thread ? json_string(x->co.target) : json_null());
	if (!x->have_thread)
		return o;
	pthread_mutex_lock(&x->mu);
	json_object_set_new(o, "connected", json_boolean(x->pub.connected));
	/* what the service took on the last stream: "columns" or "flows" */
	json_object_set_new(o, "wire",
			    x->pub.opened ? json_string(x->pub.columns ? "columns" : "flows") :
					    json_null());
	json_object_set_new(o, "queued", json_integer((json_int_t)x->queued));
	json_object_set_new(o, "sent", json_integer((json_int_t)x->pub.sent_records));
	json_object_set_new(o, "sent_batches", json_integer((json_int_t)x->pub.sent_batches));
	json_object_set_new(o, "spooled", json_integer((json_int_t)x->pub.spool_records));
	json_object_set_new(o, "spooled_batches", json_integer((json_int_t)x->pub.spool_batches));
	json_object_set_new(o, "spool_bytes", json_integer((json_int_t)x->pub.spool_bytes));
	json_object_set_new(o, "dropped",
			    json_integer((json_int_t)(x->q_dropped + x->pub.spool_dropped)));
	json_object_set_new(o, "dropped_queue_full", json_integer((json_int_t)x->q_dropped));
	json_object_set_new(o, "dropped_spool_full",
			    json_integer((json_int_t)x->pub.spool_dropped));
	json_object_set_new(o, "streams", json_integer((json_int_t)x->pub.streams));
	json_object_set_new(o, "send_errors", json_integer((json_int_t)x->pub.send_errors));
	json_object_set_new(o, "last_error",
			    x->pub.last_error[0] ? json_string(x->pub.last_error) : json_null());
	pthread_mutex_unlock(&x->mu);
	return o;
}

void segd_export_metrics(struct segd_export *x, FILE *f)
{
	if (!x)
		return;
	fprintf(f,
		"# HELP seg_flow_events_total Flow events read from the ring buffer.\n"
		"# TYPE seg_flow_events_total counter\nseg_flow_events_total %llu\n"
		"# HELP seg_flow_ct_records_total Records from the conntrack walk.\n"
		"# TYPE seg_flow_ct_records_total counter\n"
		"seg_flow_ct_records_total{kind=\"update\"} %llu\n"
		"seg_flow_ct_records_total{kind=\"end\"} %llu\n",
		(unsigned long long)x->events, (unsigned long long)x->ct_updates,
		(unsigned long long)x->ct_ends);
	if (!x->have_thread)
		return;
	pthread_mutex_lock(&x->mu);
	fprintf(f,
		"# HELP seg_export_connected 1 when the last stream to the topology service was acknowledged.\n"
		"# TYPE seg_export_connected gauge\nseg_export_connected %d\n"
		"# HELP seg_export_records_total Flow records by outcome.\n"
		"# TYPE seg_export_records_total counter\n"
		"seg_export_records_total{outcome=\"queued\"} %llu\n"
		"seg_export_records_total{outcome=\"sent\"} %llu\n"
		"seg_export_records_total{outcome=\"dropped_queue_full\"} %llu\n"
		"seg_export_records_total{outcome=\"dropped_spool_full\"} %llu\n"
		"# HELP seg_export_spooled_records Records in the spool, not yet acknowledged.\n"
		"# TYPE seg_export_spooled_records gauge\nseg_export_spooled_records %llu\n"
		"# HELP seg_export_spool_bytes Bytes in the spool.\n"
		"# TYPE seg_export_spool_bytes gauge\nseg_export_spool_bytes %llu\n"
		"# HELP seg_export_send_errors_total Failed stream opens and sends.\n"
		"# TYPE seg_export_send_errors_total counter\nseg_export_send_errors_total %llu\n",
		x->pub.connected, (unsigned long long)x->queued,
		(unsigned long long)x->pub.sent_records, (unsigned long long)x->q_dropped,
		(unsigned long long)x->pub.spool_dropped, (unsigned long long)x->pub.spool_records,
		(unsigned long long)x->pub.spool_bytes, (unsigned long long)x->pub.send_errors);
	pthread_mutex_unlock(&x->mu);
}
