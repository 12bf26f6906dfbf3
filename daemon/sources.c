// SPDX-License-Identifier: GPL-2.0-only
/*
 * Where segd's desired state comes from: label sources (Namespaces, Pods,
 * NetworkPolicies) behind one interface, each parsed only when it changed
 * (the parse cache). What was applied over the socket and the pods the CNI
 * plugin registered are also kept in the state file (state.c).
 */
#include "segd.h"

#include "addr.h"
#include "log.h"
#include "policy/limits.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int segd_parse_addr(const char *s, struct in6_addr *a)
{
	char buf[INET6_ADDRSTRLEN + 8];
	size_t n = strcspn(s, "/");

	if (n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return seg_addr_parse(buf, a) ? -EINVAL : 0;
}

/* ---- sources ----------------------------------------------------------------- */

/* Every source loads under the same limits, counted over all of them. */
static struct seg_manifest_limits limits_of(const struct segd *d)
{
	return (struct seg_manifest_limits){
		.max_policies = d->o.max_policies,
		.max_pods = d->o.max_pods,
		.max_rules = d->o.max_rules,
	};
}

/* The Pod a CNI pod without a Pod object becomes, as a manifest. */
static int cni_doc(const struct segd_cni_pod *p, char **buf, char *name, size_t namelen)
{
	char ips[SEG_POD_MAX_ADDRS * 56] = "";
	size_t off = 0;
	int len;

	for (size_t k = 0; k < p->naddrs; k++) {
		char a[INET6_ADDRSTRLEN];

		seg_addr_str(&p->addrs[k], a, sizeof(a));
		off += snprintf(ips + off, sizeof(ips) - off, "%s{ip: \"%s\"}", k ? ", " : "", a);
	}
	len = asprintf(buf,
		       "apiVersion: v1\nkind: Pod\nmetadata:\n  namespace: \"%s\"\n"
		       "  name: \"%s\"\nstatus:\n  podIPs: [%s]\n",
		       p->ns, p->name, ips);
	snprintf(name, namelen, "cni:%.40s", p->container_id);
	return len < 0 ? -ENOMEM : len;
}

/* A CNI pod's addresses go to its Pod object if it has none. */
static void cni_fill(struct seg_pod *pod, const struct segd_cni_pod *p)
{
	if (pod->naddrs)
		return;
	pod->naddrs = p->naddrs;
	memcpy(pod->addrs, p->addrs, p->naddrs * sizeof(p->addrs[0]));
}

/*
 * The reference: every source loaded into one object, in order, each
 * source parsed in full. segd_manifests_build() must give exactly this
 * (tests/segd/test_sources.c checks it); segd itself does not call it.
 */
int segd_manifests_build_full(struct segd *d, struct seg_manifests **out, struct seg_diag *diag)
{
	struct seg_manifest_limits l = limits_of(d);
	struct seg_manifests *m = seg_manifests_new();
	int err = 0;

	if (!m)
		return -ENOMEM;
	if (d->o.manifests && !(access(d->o.manifests, F_OK) && errno == ENOENT))
		err = seg_manifests_load_path_limited(m, d->o.manifests, &l, diag);
	for (size_t i = 0; !err && i < d->napplied; i++)
		err = seg_manifests_load_buf_limited(m, d->applied[i].name, d->applied[i].content,
						     d->applied[i].len, &l, diag);
	for (size_t i = 0; !err && i < d->ncni; i++) {
		const struct segd_cni_pod *p = &d->cni[i];
		const struct seg_pod *pod = seg_manifests_pod(m, p->ns, p->name);
		char *buf = NULL, name[64];
		int len;

		if (pod) {
			cni_fill(&m->pods[pod - m->pods], p);
			continue;
		}
		len = cni_doc(p, &buf, name, sizeof(name));
		err = len < 0 ? len : seg_manifests_load_buf_limited(m, name, buf, len, &l, diag);
		free(buf);
	}
	if (err) {
		seg_manifests_free(m);
		return err;
	}
	*out = m;
	return 0;
}

/* ---- the parse cache -----------------------------------------------------------
 * Each source item (a file of the manifests directory, an applied
 * document, the Pod made for a CNI pod) is loaded on its own into a part
 * (policy/limits.h) and kept with what it was loaded from. A build takes
 * the parts of unchanged items as they are, loads the others, and puts
 * them together with seg_manifests_append() in the order and batches of
 * segd_manifests_build_full(): the same objects, the same duplicate check,
 * the limits counted over everything before each item (a kept part is
 * loaded again only if it no longer fits: that load gives the message).
 * The objects are shared with the merged manifests (no copies); a part
 * lives while the cache or a merged manifests holds it.
 */
struct segd_part {
	char *key; /* path, applied name, CNI container id; NULL: taken */
	struct seg_manifests *m; /* NULL: not loaded */
	struct seg_manifest_counts own, scanned;
	union {
		struct { /* file: stat() when loaded */
			dev_t dev;
			ino_t ino;
			off_t size;
			struct timespec mtime, ctime;
			bool racy; /* changed too recently to trust the above */
		} f;
		struct { /* applied document */
			uint64_t hash[2];
			size_t len;
		} a;
		struct { /* CNI pod */
			char *ns, *name;
			struct in6_addr addrs[SEG_POD_MAX_ADDRS];
			size_t naddrs;
		} c;
	};
};

struct part_list {
	struct segd_part *v;
	size_t n, cap;
};

enum { PL_FILES, PL_APPLIED, PL_CNI, PL_N };

struct segd_cache {
	struct part_list l[PL_N]; /* in the order of the last build */
	size_t parsed, reused; /* items, in the last build */
};

/* A file whose ctime or mtime is this close to the time its stat() was
 * taken may change again within the timestamp granularity without its
 * stat() changing: it is loaded again until it is older. */
#define RACY_NS 2000000000LL

static void part_clear(struct segd_part *p, int kind)
{
	free(p->key);
	seg_manifests_free(p->m);
	if (kind == PL_CNI) {
		free(p->c.ns);
		free(p->c.name);
	}
	memset(p, 0, sizeof(*p));
}

static void cache_free(struct segd_cache *c)
{
	for (int k = 0; c && k < PL_N; k++) {
		for (size_t i = 0; i < c->l[k].n; i++)
			part_clear(&c->l[k].v[i], k);
		free(c->l[k].v);
	}
	free(c);
}

/* Two 64-bit lanes over 8-byte words. For a fixed word each step is a
 * bijection of the lane, and for a fixed lane it is injective in the
 * word: texts of one length that differ in one word never collide. */
static void text_hash(const char *s, size_t len, uint64_t h[2])
{
	uint64_t a = 0x243f6a8885a308d3ull ^ len, b = 0x13198a2e03707344ull, w;
	size_t i = 0;

	for (;; i += 8) {
		if (i + 8 <= len) {
			memcpy(&w, s + i, 8);
		} else if (i < len) {
			w = 0;
			memcpy(&w, s + i, len - i);
		} else {
			break;
		}
		a = (a ^ w) * 0x9e3779b97f4a7c15ull;
		a ^= a >> 29;
		b = (b + w) * 0xc2b2ae3d27d4eb4full;
		b = b << 31 | b >> 33;
	}
	h[0] = a;
	h[1] = b;
}

static int list_push(struct part_list *l, const struct segd_part *p);

struct build {
	struct segd *d;
	struct segd_cache *c;
	struct seg_manifest_limits lim;
	struct seg_manifest_counts before; /* of everything put together so far */
	struct part_list nl[PL_N]; /* the cache after this build */
	size_t cur[PL_N]; /* where the next item is expected in c->l */
	struct hsearch_data ht[PL_N]; /* c->l by key, made at the first miss */
	bool have_ht[PL_N];
	struct seg_manifests *all;
	struct seg_diag *diag;
	struct timespec now;
};

/* The cached entry of key, moved to the new list (a new empty entry if
 * there is none). Items keep their order from build to build, so it is
 * looked for a few entries on from where the last one was found, then in
 * a hash table of the list (made once per build, when needed). */
#define PART_SEARCH 16

static size_t part_find(struct build *b, int k, const char *key)
{
	struct part_list *o = &b->c->l[k];
	ENTRY e = { .key = (char *)key }, *r;

	if (!b->have_ht[k]) {
		if (!hcreate_r(2 * o->n + 16, &b->ht[k]))
			return SIZE_MAX;
		b->have_ht[k] = true;
		for (size_t i = 0; i < o->n; i++) {
			ENTRY in = { .key = o->v[i].key, .data = (void *)(uintptr_t)i };

			if (in.key && !hsearch_r(in, ENTER, &r, &b->ht[k]))
				return SIZE_MAX;
		}
	}
	if (!hsearch_r(e, FIND, &r, &b->ht[k]))
		return SIZE_MAX;
	return (size_t)(uintptr_t)r->data;
}

static struct segd_part *part_take(struct build *b, int k, const char *key)
{
	struct part_list *o = &b->c->l[k], *n = &b->nl[k];
	size_t i, end = b->cur[k] + PART_SEARCH < o->n ? b->cur[k] + PART_SEARCH : o->n;
	struct segd_part p = {};

	for (i = b->cur[k]; i < end && !(o->v[i].key && !strcmp(o->v[i].key, key)); i++)
		;
	if (i == end && o->n)
		i = part_find(b, k, key);
	if (i < o->n && o->v[i].key) {
		if (list_push(n, &o->v[i]))
			return NULL;
		memset(&o->v[i], 0, sizeof(o->v[i]));
		b->cur[k] = i + 1;
	} else {
		p.key = strdup(key);
		if (!p.key || list_push(n, &p)) {
			free(p.key);
			return NULL;
		}
	}
	return &n->v[n->n - 1];
}

/* Loads p again (path, or name + buf), judged after b->before. */
static int part_load(struct build *b, struct segd_part *p, const char *path, const char *name,
		     const char *buf, size_t len)
{
	struct seg_manifests *m = seg_manifests_new();
	int err;

	seg_manifests_free(p->m);
	p->m = NULL;
	if (!m)
		return -ENOMEM;
	err = path ? seg_manifests_load_path_part(m, path, &b->lim, &b->before, &p->scanned,
						  b->diag) :
		     seg_manifests_load_buf_part(m, name, buf, len, &b->lim, &b->before,
						 &p->scanned, b->diag);
	if (err) {
		seg_manifests_free(m);
		return err;
	}
	p->m = m;
	seg_manifests_count(m, &p->own);
	b->c->parsed++;
	return 0;
}

/* Counts p in (once it is put together with the rest). */
static void part_count(struct build *b, const struct segd_part *p)
{
	b->before.pols += p->own.pols;
	b->before.pods += p->own.pods;
	b->before.rules += p->own.rules;
}

/* p as loaded still stands: its source is unchanged and it fits. */
static bool part_reuse(struct build *b, const struct segd_part *p, bool same)
{
	if (!p->m || !same || !seg_manifest_part_fits(&b->lim, &b->before, &p->own, &p->scanned))
		return false;
	b->c->reused++;
	return true;
}

static bool racy(const struct timespec *t, const struct timespec *now)
{
	long long dt =
		(long long)(now->tv_sec - t->tv_sec) * 1000000000LL + (now->tv_nsec - t->tv_nsec);

	return dt < RACY_NS;
}

static int file_part(struct build *b, const char *path, const struct stat *st,
		     struct seg_manifests **out)
{
	struct segd_part *p = part_take(b, PL_FILES, path);
	bool same;
	int err;

	if (!p)
		return -ENOMEM;
	same = !p->f.racy && p->f.dev == st->st_dev && p->f.ino == st->st_ino &&
	       p->f.size == st->st_size && p->f.mtime.tv_sec == st->st_mtim.tv_sec &&
	       p->f.mtime.tv_nsec == st->st_mtim.tv_nsec &&
	       p->f.ctime.tv_sec == st->st_ctim.tv_sec && p->f.ctime.tv_nsec == st->st_ctim.tv_nsec;
	if (!part_reuse(b, p, same)) {
		/* stat() before the read: a change after it shows next time */
		p->f.dev = st->st_dev;
		p->f.ino = st->st_ino;
		p->f.size = st->st_size;
		p->f.mtime = st->st_mtim;
		p->f.ctime = st->st_ctim;
		p->f.racy = racy(&st->st_mtim, &b->now) || racy(&st->st_ctim, &b->now);
		err = part_load(b, p, path, NULL, NULL, 0);
		if (err)
			return err;
	}
	part_count(b, p);
	*out = p->m;
	return 0;
}

/* The manifests source as one batch, not cached: what is not a directory
 * of regular files (or cannot be listed) is loaded as the reference does. */
static int dir_whole(struct build *b)
{
	struct seg_manifest_counts scanned, own;
	struct seg_manifests *m = seg_manifests_new();
	int err;

	if (!m)
		return -ENOMEM;
	err = seg_manifests_load_path_part(m, b->d->o.manifests, &b->lim, &b->before, &scanned,
					   b->diag);
	if (!err)
		err = seg_manifests_append(b->all, &m, 1, b->diag);
	if (!err) {
		seg_manifests_count(m, &own);
		b->before.pols += own.pols;
		b->before.pods += own.pods;
		b->before.rules += own.rules;
		b->c->parsed++;
	}
	seg_manifests_free(m);
	return err;
}

static int build_dir(struct build *b)
{
	const char *dir = b->d->o.manifests;
	struct seg_manifests **parts = NULL;
	struct dirent **ents = NULL;
	int n = 0, np = 0, err = 0;
	struct stat st;

	if (!dir || (access(dir, F_OK) && errno == ENOENT))
		return 0; /* not made yet: nothing wanted from it */
	if (stat(dir, &st) || !(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)))
		return dir_whole(b);
	if (S_ISREG(st.st_mode)) {
		struct seg_manifests *m;

		err = file_part(b, dir, &st, &m);
		return err ?: seg_manifests_append(b->all, &m, 1, b->diag);
	}
	n = scandir(dir, &ents, NULL, alphasort); /* the order of a directory load */
	if (n < 0)
		return dir_whole(b);
	parts = calloc((size_t)n + 1, sizeof(*parts));
	if (!parts)
		err = -ENOMEM;
	for (int i = 0; i < n && !err; i++) {
		char full[4096];

		if (!seg_manifest_file_name(ents[i]->d_name))
			continue;
		snprintf(full, sizeof(full), "%s/%s", dir, ents[i]->d_name);
		if (stat(full, &st) || !S_ISREG(st.st_mode)) {
			err = -EAGAIN; /* gone, or not a file: as the reference does */
			break;
		}
		err = file_part(b, full, &st, &parts[np]);
		np += !err;
	}
	if (!err)
		err = seg_manifests_append(b->all, parts, (size_t)np, b->diag);
	for (int i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	free(parts);
	if (err == -EAGAIN) {
		/* the parts counted so far are not in: count from here again */
		struct seg_manifest_counts none = {};

		b->before = none;
		return dir_whole(b);
	}
	return err;
}

static int build_applied(struct build *b)
{
	for (size_t i = 0; i < b->d->napplied; i++) {
		const struct segd_applied *a = &b->d->applied[i];
		struct segd_part *p = part_take(b, PL_APPLIED, a->name);
		int err;

		if (!p)
			return -ENOMEM;
		/* the hash was taken once, when the text was applied */
		if (!part_reuse(b, p,
				p->a.len == a->len && p->a.hash[0] == a->hash[0] &&
					p->a.hash[1] == a->hash[1])) {
			p->a.len = a->len;
			p->a.hash[0] = a->hash[0];
			p->a.hash[1] = a->hash[1];
			err = part_load(b, p, NULL, a->name, a->content, a->len);
			if (err)
				return err;
		}
		err = seg_manifests_append(b->all, &p->m, 1, b->diag);
		if (err)
			return err;
		part_count(b, p);
	}
	return 0;
}

static bool cni_same(const struct segd_part *p, const struct segd_cni_pod *q)
{
	return p->c.ns && !strcmp(p->c.ns, q->ns) && !strcmp(p->c.name, q->name) &&
	       p->c.naddrs == q->naddrs &&
	       !memcmp(p->c.addrs, q->addrs, q->naddrs * sizeof(q->addrs[0]));
}

static int cni_part(struct build *b, const struct segd_cni_pod *q)
{
	struct segd_part *p = part_take(b, PL_CNI, q->container_id);
	char *buf = NULL, name[64];
	int err, len;

	if (!p)
		return -ENOMEM;
	if (!part_reuse(b, p, cni_same(p, q))) {
		free(p->c.ns);
		free(p->c.name);
		p->c.ns = strdup(q->ns);
		p->c.name = strdup(q->name);
		p->c.naddrs = q->naddrs;
		memcpy(p->c.addrs, q->addrs, sizeof(p->c.addrs));
		if (!p->c.ns || !p->c.name)
			return -ENOMEM;
		len = cni_doc(q, &buf, name, sizeof(name));
		err = len < 0 ? len : part_load(b, p, NULL, name, buf, len);
		free(buf);
		if (err)
			return err;
	}
	err = seg_manifests_append(b->all, &p->m, 1, b->diag);
	if (!err)
		part_count(b, p);
	return err;
}

/* A CNI pod gives addresses to its Pod object; one without a Pod object
 * anywhere becomes a Pod with no labels (still isolated by policies that
 * select every pod of its namespace). */
static int build_cni(struct build *b)
{
	for (size_t i = 0; i < b->d->ncni; i++) {
		const struct segd_cni_pod *q = &b->d->cni[i];
		const struct seg_pod *pod = seg_manifests_pod(b->all, q->ns, q->name);
		int err;

		if (pod) {
			cni_fill(&b->all->pods[pod - b->all->pods], q);
			continue;
		}
		err = cni_part(b, q);
		if (err)
			return err;
	}
	return 0;
}

static int list_push(struct part_list *l, const struct segd_part *p)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct segd_part *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *p;
	return 0;
}

/* The new lists become the cache. After a failed build the entries not
 * reached are kept too (at the end): they still hold their sources. */
static void cache_commit(struct build *b, bool ok)
{
	for (int k = 0; k < PL_N; k++) {
		struct part_list *o = &b->c->l[k], *n = &b->nl[k];

		for (size_t i = 0; i < o->n; i++)
			if (o->v[i].key && (ok || list_push(n, &o->v[i])))
				part_clear(&o->v[i], k);
		free(o->v);
		*o = *n;
	}
}

int segd_manifests_build(struct segd *d, struct seg_manifests **out, struct seg_diag *diag)
{
	struct build b = { .d = d, .lim = limits_of(d), .diag = diag };
	struct timespec t0, t1;
	int err = 0;

	if (!d->cache && !(d->cache = calloc(1, sizeof(*d->cache))))
		return -ENOMEM;
	b.c = d->cache;
	b.c->parsed = b.c->reused = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	clock_gettime(CLOCK_REALTIME, &b.now); /* before any stat(): see RACY_NS */
	b.all = seg_manifests_new();
	if (!b.all)
		err = -ENOMEM;
	if (!err)
		err = build_dir(&b);
	if (!err)
		err = build_applied(&b);
	if (!err)
		err = build_cni(&b);
	for (int k = 0; k < PL_N; k++)
		if (b.have_ht[k])
			hdestroy_r(&b.ht[k]);
	cache_commit(&b, !err);
	if (err) {
		seg_manifests_free(b.all);
		return err;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_info("manifests: %zu namespaces, %zu pods, %zu policies; %zu sources parsed, %zu "
		 "unchanged, in %.1f ms",
		 b.all->nnss, b.all->npods, b.all->npols, b.c->parsed, b.c->reused,
		 (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	*out = b.all;
	return 0;
}

void segd_cache_stats(const struct segd *d, size_t *parsed, size_t *reused)
{
	*parsed = d->cache ? d->cache->parsed : 0;
	*reused = d->cache ? d->cache->reused : 0;
}

/* ---- state file ----------------------------------------------------------------- */

void segd_cni_pod_free(struct segd_cni_pod *p)
{
	free(p->container_id);
	free(p->netns);
	free(p->ifname);
	free(p->ns);
	free(p->name);
}

int segd_applied_text(struct segd_applied *a, const char *content, size_t len)
{
	char *c = malloc(len + 1);

	if (!c)
		return -ENOMEM;
	memcpy(c, content, len);
	c[len] = '\0';
	a->content = c;
	a->len = len;
	text_hash(c, len, a->hash);
	a->item = 0;
	return 0;
}

int segd_applied_set(struct segd_applied *a, const char *name, const char *content, size_t len)
{
	char *nm = strdup(name);

	if (!nm || segd_applied_text(a, content, len)) {
		free(nm);
		return -ENOMEM;
	}
	a->name = nm;
	return 0;
}

void segd_state_free(struct segd *d)
{
	cache_free(d->cache);
	d->cache = NULL;
	free(d->state_retired);
	d->state_retired = NULL;
	d->nretired = 0;
	for (size_t i = 0; i < d->napplied; i++) {
		free(d->applied[i].name);
		free(d->applied[i].content);
	}
	free(d->applied);
	d->applied = NULL;
	d->napplied = 0;
	for (size_t i = 0; i < d->ncni; i++)
		segd_cni_pod_free(&d->cni[i]);
	free(d->cni);
	d->cni = NULL;
	d->ncni = 0;
}

static json_t *cni_pod_json(const struct segd_cni_pod *p)
{
	json_t *ips = json_array();

	for (size_t k = 0; k < p->naddrs; k++) {
		char a[INET6_ADDRSTRLEN];

		seg_addr_str(&p->addrs[k], a, sizeof(a));
		json_array_append_new(ips, json_string(a));
	}
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "container_id", p->container_id, "netns",
			 p->netns, "ifname", p->ifname, "pod_namespace", p->ns, "pod_name", p->name,
			 "ips", ips);
}

json_t *segd_cni_pod_json(const struct segd_cni_pod *p)
{
	return cni_pod_json(p);
}

/* Fills p from {container_id, netns, ifname, pod_namespace, pod_name, ips}. */
int segd_cni_pod_parse(json_t *j, struct segd_cni_pod *p, char *err, size_t errlen)
{
	const char *cid = NULL, *netns = "", *ifname = "eth0", *ns = NULL, *name = NULL;
	json_t *ips = NULL, *ip;
	json_error_t je;
	size_t i;

	memset(p, 0, sizeof(*p));
	if (json_unpack_ex(j, &je, 0, "{s:s, s?s, s?s, s:s, s:s, s?o}", "container_id", &cid,
			   "netns", &netns, "ifname", &ifname, "pod_namespace", &ns, "pod_name",
			   &name, "ips", &ips)) {
		snprintf(err, errlen, "bad arguments: %s", je.text);
		return -EINVAL;
	}
	json_array_foreach(ips, i, ip)
	{
		/* "10.0.0.2" or a CNI result's {"address": "10.0.0.2/24", ...} */
		const char *s = json_is_object(ip) ?
					json_string_value(json_object_get(ip, "address")) :
					json_string_value(ip);

		if (!s || p->naddrs == SEG_POD_MAX_ADDRS ||
		    segd_parse_addr(s, &p->addrs[p->naddrs])) {
			snprintf(err, errlen, "ips[%zu]: not an address (at most %d)", i,
				 SEG_POD_MAX_ADDRS);
			return -EINVAL;
		}
		p->naddrs++;
	}
	p->container_id = strdup(cid);
	p->netns = strdup(netns);
	p->ifname = strdup(ifname);
	p->ns = strdup(ns);
	p->name = strdup(name);
	if (!p->container_id || !p->netns || !p->ifname || !p->ns || !p->name) {
		segd_cni_pod_free(p);
		return -ENOMEM;
	}
	return 0;
}
