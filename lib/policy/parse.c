// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kubernetes manifests (YAML, JSON, `kind: List`) -> struct seg_manifests,
 * validated like the API server does. Errors read
 *   file:line:col: Kind ns/name: field.path: what is wrong
 * and leave the caller's manifests untouched.
 */
#include "internal.h"
#include "limits.h"
#include "util.h"
#include "addr.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <libfyaml.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PATH_MAX_FIELD 256

/* What a load may still add (limits.h): totals of the manifests loaded
 * before and of the batch so far. */
struct budget {
	const struct seg_manifest_limits *lim; /* NULL: no limits */
	size_t pols, pods, rules;
	struct seg_manifest_counts *scanned; /* parts: what the text scan counts */
};

struct pctx {
	struct seg_manifests *m; /* the batch being built */
	const char *file; /* interned */
	const char *obj; /* "NetworkPolicy x/deny-all" */
	struct seg_diag *d;
	struct budget *b;
};

/*
 * libfyaml 0.7 has marks only on tokens: a scalar's own, a collection's
 * first scalar (its first key or item), which is where it starts to read.
 * An empty collection ({} or []) has none: its key in the parent mapping
 * speaks for it.
 */
static const struct fy_mark *first_mark(struct fy_node *n)
{
	void *it;

	for (int depth = 0; n && depth < 64; depth++) {
		if (fy_node_is_scalar(n)) {
			struct fy_token *t = fy_node_get_scalar_token(n);

			return t ? fy_token_start_mark(t) : NULL;
		}
		it = NULL;
		if (fy_node_is_mapping(n)) {
			struct fy_node_pair *p = fy_node_mapping_iterate(n, &it);

			n = p ? fy_node_pair_key(p) : NULL;
		} else {
			n = fy_node_sequence_iterate(n, &it);
		}
	}
	return NULL;
}

static void loc_of(struct fy_node *n, int *line, int *col)
{
	const struct fy_mark *mk = first_mark(n);
	struct fy_node *parent;

	for (int depth = 0; n && !mk && depth < 64; depth++, n = parent) {
		struct fy_node_pair *p;
		void *it = NULL;

		parent = fy_node_get_parent(n);
		if (parent && fy_node_is_mapping(parent)) {
			while ((p = fy_node_mapping_iterate(parent, &it)) &&
			       fy_node_pair_value(p) != n)
				;
			mk = p ? first_mark(fy_node_pair_key(p)) : NULL;
		} else if (parent) {
			mk = first_mark(parent);
		}
	}
	*line = mk ? mk->line + 1 : 0;
	*col = mk ? mk->column + 1 : 0;
}

__attribute__((format(printf, 4, 5))) static int perr(struct pctx *c, struct fy_node *n,
						      const char *path, const char *fmt, ...)
{
	char what[256];
	int line, col;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	loc_of(n, &line, &col);
	snprintf(c->d->msg, sizeof(c->d->msg), "%s:%d:%d: %s%s%s%s%s", c->file, line, col,
		 c->obj ? c->obj : "", c->obj ? ": " : "", path ? path : "", path ? ": " : "",
		 what);
	return -EINVAL;
}

static int enomem(struct pctx *c)
{
	snprintf(c->d->msg, sizeof(c->d->msg), "%s: out of memory", c->file);
	return -ENOMEM;
}

/* ---- node helpers ------------------------------------------------------- */

static bool is_null(struct fy_node *n)
{
	const char *s;
	size_t len;

	if (!n)
		return true;
	if (!fy_node_is_scalar(n) || fy_node_get_style(n) != FYNS_PLAIN)
		return false;
	s = fy_node_get_scalar(n, &len);
	return !len || (len == 4 && !memcmp(s, "null", 4)) || (len == 1 && *s == '~');
}

static struct fy_node *get(struct fy_node *map, const char *key)
{
	struct fy_node *n;

	if (!map || !fy_node_is_mapping(map))
		return NULL;
	n = fy_node_mapping_lookup_by_string(map, key, FY_NT);
	return is_null(n) ? NULL : n;
}

static void child(char *buf, const char *parent, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void child(char *buf, const char *parent, const char *fmt, ...)
{
	size_t n = 0;
	va_list ap;

	if (parent && *parent)
		n = (size_t)snprintf(buf, PATH_MAX_FIELD, "%s", parent);
	if (n >= PATH_MAX_FIELD)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + n, PATH_MAX_FIELD - n, fmt, ap);
	va_end(ap);
	/* "a" + ".b" at the root is "b" */
	if (n == 0 && buf[0] == '.')
		memmove(buf, buf + 1, strlen(buf));
}

static int want_map(struct pctx *c, struct fy_node *n, const char *path)
{
	if (n && !fy_node_is_mapping(n))
		return perr(c, n, path, "must be an object");
	return 0;
}

static int want_seq(struct pctx *c, struct fy_node *n, const char *path)
{
	if (n && !fy_node_is_sequence(n))
		return perr(c, n, path, "must be a list");
	return 0;
}

/* Scalar as a new string. */
static int get_str(struct pctx *c, struct fy_node *n, const char *path, char **out)
{
	const char *s;
	size_t len;

	if (!fy_node_is_scalar(n))
		return perr(c, n, path, "must be a string");
	s = fy_node_get_scalar(n, &len);
	if (memchr(s, '\0', len))
		return perr(c, n, path, "contains a NUL byte");
	*out = strndup(s, len);
	return *out ? 0 : enomem(c);
}

/* A plain (unquoted) scalar of digits: an integer. */
static bool scalar_is_int(struct fy_node *n)
{
	const char *s;
	size_t len;

	if (!fy_node_is_scalar(n) || fy_node_get_style(n) != FYNS_PLAIN)
		return false;
	s = fy_node_get_scalar(n, &len);
	if (!len || len > 10)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

static int get_port_num(struct pctx *c, struct fy_node *n, const char *path, __u16 *out)
{
	unsigned long v;
	char buf[16];
	size_t len;
	const char *s;

	if (!scalar_is_int(n))
		return perr(c, n, path, "must be an integer");
	s = fy_node_get_scalar(n, &len);
	memcpy(buf, s, len);
	buf[len] = '\0';
	v = strtoul(buf, NULL, 10);
	if (v < 1 || v > 65535)
		return perr(c, n, path, "must be between 1 and 65535, inclusive");
	*out = (__u16)v;
	return 0;
}

/* ---- Kubernetes name rules ---------------------------------------------- */

static bool alnum(char ch)
{
	return isalnum((unsigned char)ch);
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9], at most 63 */
static bool is_qualified_name_part(const char *s, size_t len)
{
	if (!len || len > 63 || !alnum(s[0]) || !alnum(s[len - 1]))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	}
	return true;
}

/* RFC 1123 subdomain: lowercase alnum, '-', '.', at most 253 */
static bool is_dns_subdomain(const char *s, size_t len)
{
	if (!len || len > 253 || !isalnum((unsigned char)s[0]) ||
	    !isalnum((unsigned char)s[len - 1]))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-' ||
		      s[i] == '.'))
			return false;
	}
	return true;
}

static bool is_label_key(const char *k)
{
	const char *slash = strchr(k, '/');

	if (!slash)
		return is_qualified_name_part(k, strlen(k));
	return is_dns_subdomain(k, (size_t)(slash - k)) &&
	       is_qualified_name_part(slash + 1, strlen(slash + 1));
}

static bool is_label_value(const char *v)
{
	return !*v || is_qualified_name_part(v, strlen(v));
}

/* IANA_SVC_NAME: 1-15 of [a-z0-9-], a letter, no leading/trailing/double '-' */
static bool is_port_name(const char *s)
{
	size_t len = strlen(s);
	bool letter = false;

	if (!len || len > 15 || s[0] == '-' || s[len - 1] == '-' || strstr(s, "--"))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
			return false;
		letter |= !!islower((unsigned char)s[i]);
	}
	return letter;
}

/* ---- labels and selectors ------------------------------------------------- */

static int label_cmp(const void *a, const void *b)
{
	return strcmp(((const struct seg_label *)a)->key, ((const struct seg_label *)b)->key);
}

static int labels_add(struct seg_labels *l, char *key, char *val)
{
	struct seg_label *v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	l->v = v;
	l->v[l->n].key = key;
	l->v[l->n].val = val;
	l->n++;
	return 0;
}

/* A map of label key -> value (labels, matchLabels, annotations). */
static int parse_labels(struct pctx *c, struct fy_node *n, const char *path, struct seg_labels *out,
			bool validate)
{
	char p[PATH_MAX_FIELD];
	struct fy_node_pair *pair;
	void *it = NULL;
	int err;

	err = want_map(c, n, path);
	if (err || !n)
		return err;
	while ((pair = fy_node_mapping_iterate(n, &it))) {
		struct fy_node *kn = fy_node_pair_key(pair), *vn = fy_node_pair_value(pair);
		char *key = NULL, *val = NULL;

		err = get_str(c, kn, path, &key);
		if (err)
			return err;
		child(p, path, ".%s", key);
		if (is_null(vn))
			val = strdup("");
		else if (fy_node_is_scalar(vn))
			err = get_str(c, vn, p, &val);
		else
			err = perr(c, vn, p, "must be a string");
		if (!err && !val)
			err = enomem(c);
		if (!err && validate && !is_label_key(key))
			err = perr(c, kn, p, "invalid label key \"%s\"", key);
		if (!err && validate && !is_label_value(val))
			err = perr(c, vn, p, "invalid label value \"%s\"", val);
		if (!err && labels_add(out, key, val))
			err = enomem(c);
		if (err) {
			free(key);
			free(val);
			return err;
		}
	}
	if (out->n)
		qsort(out->v, out->n, sizeof(*out->v), label_cmp);
	return 0;
}

static int parse_expr(struct pctx *c, struct fy_node *n, const char *path, struct seg_sel_expr *e)
{
	static const char *const ops[] = { "In", "NotIn", "Exists", "DoesNotExist" };
	struct fy_node *kn = get(n, "key"), *on = get(n, "operator"), *vn = get(n, "values"), *it_n;
	char p[PATH_MAX_FIELD], *op = NULL;
	void *it = NULL;
	int err, i;

	err = want_map(c, n, path);
	if (err)
		return err;
	child(p, path, ".key");
	if (!kn)
		return perr(c, n, p, "required value");
	err = get_str(c, kn, p, &e->key);
	if (err)
		return err;
	if (!is_label_key(e->key))
		return perr(c, kn, p, "invalid label key \"%s\"", e->key);
	child(p, path, ".operator");
	if (!on)
		return perr(c, n, p, "required value");
	err = get_str(c, on, p, &op);
	if (err)
		return err;
	for (i = 0; i < 4 && strcmp(op, ops[i]); i++)
		;
	if (i == 4) {
		err = perr(c, on, p,
			   "not a valid selector operator \"%s\" (In, NotIn, Exists, DoesNotExist)",
			   op);
		free(op);
		return err;
	}
	free(op);
	e->op = (enum seg_sel_op)i;
	child(p, path, ".values");
	err = want_seq(c, vn, p);
	if (err)
		return err;
	while (vn && (it_n = fy_node_sequence_iterate(vn, &it))) {
		char vp[PATH_MAX_FIELD];
		char **v = realloc(e->values, (e->nvalues + 1) * sizeof(*v));

		if (!v)
			return enomem(c);
		e->values = v;
		child(vp, p, "[%zu]", e->nvalues);
		err = get_str(c, it_n, vp, &e->values[e->nvalues]);
		if (err)
			return err;
		e->nvalues++;
		if (!is_label_value(e->values[e->nvalues - 1]))
			return perr(c, it_n, vp, "invalid label value \"%s\"",
				    e->values[e->nvalues - 1]);
	}
	if ((e->op == SEG_SEL_IN || e->op == SEG_SEL_NOT_IN) && !e->nvalues)
		return perr(c, vn ? vn : n, p,
			    "must be specified when `operator` is 'In' or 'NotIn'");
	if ((e->op == SEG_SEL_EXISTS || e->op == SEG_SEL_NOT_EXISTS) && e->nvalues)
		return perr(c, vn, p,
			    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
	return 0;
}

static int parse_selector(struct pctx *c, struct fy_node *n, const char *path,
			  struct seg_selector *s)
{
	struct fy_node *ml = get(n, "matchLabels"), *me = get(n, "matchExpressions"), *it_n;
	char p[PATH_MAX_FIELD];
	void *it = NULL;
	int err;

	err = want_map(c, n, path);
	if (err || !n)
		return err;
	child(p, path, ".matchLabels");
	err = parse_labels(c, ml, p, &s->match, true);
	if (err)
		return err;
	child(p, path, ".matchExpressions");
	err = want_seq(c, me, p);
	while (!err && me && (it_n = fy_node_sequence_iterate(me, &it))) {
		struct seg_sel_expr *v = realloc(s->exprs, (s->nexprs + 1) * sizeof(*v));
		char ep[PATH_MAX_FIELD];

		if (!v)
			return enomem(c);
		s->exprs = v;
		memset(&s->exprs[s->nexprs], 0, sizeof(*v));
		child(ep, p, "[%zu]", s->nexprs);
		s->nexprs++;
		err = parse_expr(c, it_n, ep, &s->exprs[s->nexprs - 1]);
	}
	return err;
}

/* ---- NetworkPolicy -------------------------------------------------------- */

static int parse_cidr(struct pctx *c, struct fy_node *n, const char *path, struct in6_addr *a,
		      __u32 *plen)
{
	char *s = NULL;
	int err;

	err = get_str(c, n, path, &s);
	if (err)
		return err;
	if (seg_prefix_parse(s, a, plen))
		err = perr(c, n, path, "invalid CIDR address: %s", s);
	free(s);
	if (!err)
		seg_prefix_mask(a, *plen);
	return err;
}

static int parse_ipblock(struct pctx *c, struct fy_node *n, const char *path, struct seg_ipblock *b)
{
	struct fy_node *cn = get(n, "cidr"), *en = get(n, "except"), *it_n;
	char p[PATH_MAX_FIELD];
	void *it = NULL;
	int err;

	err = want_map(c, n, path);
	if (err)
		return err;
	child(p, path, ".cidr");
	if (!cn)
		return perr(c, n, p, "required value");
	err = parse_cidr(c, cn, p, &b->cidr, &b->plen);
	if (err)
		return err;
	child(p, path, ".except");
	err = want_seq(c, en, p);
	while (!err && en && (it_n = fy_node_sequence_iterate(en, &it))) {
		char ep[PATH_MAX_FIELD];
		size_t i = b->nexcept;
		struct in6_addr *ea = realloc(b->except, (i + 1) * sizeof(*ea));
		__u32 *el;

		if (!ea)
			return enomem(c);
		b->except = ea;
		el = realloc(b->except_plen, (i + 1) * sizeof(*el));
		if (!el)
			return enomem(c);
		b->except_plen = el;
		b->nexcept++;
		child(ep, p, "[%zu]", i);
		err = parse_cidr(c, it_n, ep, &ea[i], &el[i]);
		if (err)
			return err;
		if (seg_addr_is_v4(&ea[i]) != seg_addr_is_v4(&b->cidr) || el[i] <= b->plen ||
		    !seg_prefix_contains(&b->cidr, b->plen, &ea[i]))
			return perr(c, it_n, ep, "must be a strict subset of `cidr`");
	}
	/* the compiler's key, made once per parsed file */
	if (!err && !(b->key = seg_ipblock_key(b)))
		return enomem(c);
	return err;
}

static int parse_peer(struct pctx *c, struct fy_node *n, const char *path, struct seg_peer *pe)
{
	struct fy_node *ps = get(n, "podSelector"), *ns = get(n, "namespaceSelector");
	struct fy_node *ib = get(n, "ipBlock");
	char p[PATH_MAX_FIELD];
	int err;

	err = want_map(c, n, path);
	if (err)
		return err;
	if (ib && (ps || ns))
		return perr(c, n, path,
			    "may not specify more than 1 peer type (ipBlock with a selector)");
	if (!ib && !ps && !ns)
		return perr(c, n, path, "must specify a peer");
	if (ib) {
		pe->kind = SEG_PEER_IPBLOCK;
		child(p, path, ".ipBlock");
		return parse_ipblock(c, ib, p, &pe->block);
	}
	pe->kind = ps && ns ? SEG_PEER_NS_PODS : ps ? SEG_PEER_PODS : SEG_PEER_NAMESPACES;
	child(p, path, ".podSelector");
	err = parse_selector(c, ps, p, &pe->pod_sel);
	if (err)
		return err;
	child(p, path, ".namespaceSelector");
	return parse_selector(c, ns, p, &pe->ns_sel);
}

static int parse_port(struct pctx *c, struct fy_node *n, const char *path, struct seg_port *po)
{
	struct fy_node *pr = get(n, "protocol"), *pn = get(n, "port"), *en = get(n, "endPort");
	char p[PATH_MAX_FIELD], *s = NULL;
	int err, proto;

	err = want_map(c, n, path);
	if (err)
		return err;
	po->proto = IPPROTO_TCP;
	if (pr) {
		child(p, path, ".protocol");
		err = get_str(c, pr, p, &s);
		if (err)
			return err;
		proto = seg_proto_parse(s);
		if (proto < 0)
			err = perr(
				c, pr, p,
				"unsupported value \"%s\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
				s);
		free(s);
		if (err)
			return err;
		po->proto = (__u8)proto;
	}
	child(p, path, ".port");
	if (pn && scalar_is_int(pn)) {
		err = get_port_num(c, pn, p, &po->port);
		po->end_port = po->port;
		po->has_port = true;
	} else if (pn) {
		err = get_str(c, pn, p, &po->name);
		if (!err && !is_port_name(po->name))
			err = perr(
				c, pn, p,
				"invalid port name \"%s\" (IANA_SVC_NAME: at most 15 of a-z0-9 and '-', with a letter)",
				po->name);
		po->has_port = true;
	}
	if (err || !en)
		return err;
	child(p, path, ".endPort");
	if (!pn)
		return perr(c, en, p, "may not be specified when `port` is not specified");
	if (po->name)
		return perr(c, en, p, "may not be specified when `port` is non-numeric");
	err = get_port_num(c, en, p, &po->end_port);
	if (!err && po->end_port < po->port)
		err = perr(c, en, p, "must be greater than or equal to `port`");
	return err;
}

static int parse_rule(struct pctx *c, struct fy_node *n, const char *path, const char *peers_key,
		      struct seg_rule *r)
{
	struct fy_node *pl = get(n, peers_key), *po = get(n, "ports"), *it_n;
	char p[PATH_MAX_FIELD], ip[PATH_MAX_FIELD];
	void *it = NULL;
	int err;

	err = want_map(c, n, path);
	if (err)
		return err;
	child(p, path, ".%s", peers_key);
	err = want_seq(c, pl, p);
	while (!err && pl && (it_n = fy_node_sequence_iterate(pl, &it))) {
		struct seg_peer *v = realloc(r->peers, (r->npeers + 1) * sizeof(*v));

		if (!v)
			return enomem(c);
		r->peers = v;
		memset(&v[r->npeers], 0, sizeof(*v));
		child(ip, p, "[%zu]", r->npeers);
		r->npeers++;
		err = parse_peer(c, it_n, ip, &v[r->npeers - 1]);
	}
	if (err)
		return err;
	child(p, path, ".ports");
	err = want_seq(c, po, p);
	it = NULL;
	while (!err && po && (it_n = fy_node_sequence_iterate(po, &it))) {
		struct seg_port *v = realloc(r->ports, (r->nports + 1) * sizeof(*v));

		if (!v)
			return enomem(c);
		r->ports = v;
		memset(&v[r->nports], 0, sizeof(*v));
		child(ip, p, "[%zu]", r->nports);
		r->nports++;
		err = parse_port(c, it_n, ip, &v[r->nports - 1]);
	}
	return err;
}

static int parse_rules(struct pctx *c, struct fy_node *spec, struct seg_netpol *np, int dir)
{
	const char *key = dir == SEG_DIR_INGRESS ? "ingress" : "egress";
	struct fy_node *l = get(spec, key), *it_n;
	char p[PATH_MAX_FIELD], rp[PATH_MAX_FIELD];
	void *it = NULL;
	int err;

	child(p, "spec", ".%s", key);
	err = want_seq(c, l, p);
	while (!err && l && (it_n = fy_node_sequence_iterate(l, &it))) {
		struct seg_rule *v = realloc(np->rules[dir], (np->nrules[dir] + 1) * sizeof(*v));

		if (!v)
			return enomem(c);
		np->rules[dir] = v;
		memset(&v[np->nrules[dir]], 0, sizeof(*v));
		child(rp, p, "[%zu]", np->nrules[dir]);
		np->nrules[dir]++;
		err = parse_rule(c, it_n, rp, dir == SEG_DIR_INGRESS ? "from" : "to",
				 &v[np->nrules[dir] - 1]);
	}
	return err;
}

static int parse_policy_types(struct pctx *c, struct fy_node *spec, struct seg_netpol *np)
{
	struct fy_node *pt = get(spec, "policyTypes"), *it_n;
	char p[PATH_MAX_FIELD];
	void *it = NULL;
	size_t i = 0;
	int err;

	err = want_seq(c, pt, "spec.policyTypes");
	if (err)
		return err;
	if (!pt || !fy_node_sequence_item_count(pt)) {
		/* the API server's defaulting: Ingress, plus Egress if rules */
		np->types[SEG_DIR_INGRESS] = true;
		np->types[SEG_DIR_EGRESS] = np->nrules[SEG_DIR_EGRESS] > 0;
		return 0;
	}
	while ((it_n = fy_node_sequence_iterate(pt, &it))) {
		char *s = NULL;

		child(p, "spec.policyTypes", "[%zu]", i++);
		err = get_str(c, it_n, p, &s);
		if (err)
			return err;
		if (!strcmp(s, "Ingress"))
			np->types[SEG_DIR_INGRESS] = true;
		else if (!strcmp(s, "Egress"))
			np->types[SEG_DIR_EGRESS] = true;
		else
			err = perr(
				c, it_n, p,
				"unsupported value \"%s\": supported values: \"Ingress\", \"Egress\"",
				s);
		free(s);
		if (err)
			return err;
	}
	return 0;
}

/* ---- objects ----------------------------------------------------------------- */

struct meta {
	char *name, *ns;
	struct seg_labels labels, annots;
};

static void meta_clear(struct meta *mt)
{
	free(mt->name);
	free(mt->ns);
	for (size_t i = 0; i < mt->labels.n; i++) {
		free(mt->labels.v[i].key);
		free(mt->labels.v[i].val);
	}
	for (size_t i = 0; i < mt->annots.n; i++) {
		free(mt->annots.v[i].key);
		free(mt->annots.v[i].val);
	}
	free(mt->labels.v);
	free(mt->annots.v);
}

static int parse_meta(struct pctx *c, struct fy_node *obj, struct meta *mt, bool namespaced)
{
	struct fy_node *md = get(obj, "metadata"), *nn, *nsn;
	int err;

	if (!md)
		return perr(c, obj, "metadata", "required value");
	err = want_map(c, md, "metadata");
	if (err)
		return err;
	nn = get(md, "name");
	if (!nn)
		return perr(c, md, "metadata.name", "required value");
	err = get_str(c, nn, "metadata.name", &mt->name);
	if (!err && !is_dns_subdomain(mt->name, strlen(mt->name)))
		err = perr(c, nn, "metadata.name", "invalid name \"%s\" (RFC 1123 subdomain)",
			   mt->name);
	if (err)
		return err;
	nsn = namespaced ? get(md, "namespace") : NULL;
	if (nsn)
		err = get_str(c, nsn, "metadata.namespace", &mt->ns);
	else if (namespaced)
		mt->ns = strdup("default");
	if (!err && namespaced && !mt->ns)
		err = enomem(c);
	if (!err && nsn && !is_dns_subdomain(mt->ns, strlen(mt->ns)))
		err = perr(c, nsn, "metadata.namespace", "invalid namespace \"%s\"", mt->ns);
	if (!err)
		err = parse_labels(c, get(md, "labels"), "metadata.labels", &mt->labels, true);
	if (!err)
		err = parse_labels(c, get(md, "annotations"), "metadata.annotations", &mt->annots,
				   false);
	return err;
}

static void set_loc(struct pctx *c, struct fy_node *n, struct seg_src_loc *loc)
{
	loc->file = c->file;
	loc_of(n, &loc->line, &loc->col);
}

static int parse_namespace(struct pctx *c, struct fy_node *obj, struct meta *mt)
{
	struct seg_manifests *m = c->m;
	struct seg_namespace *ns;
	const char *enf;
	char *k, *v;

	if (vec_reserve(&m->nss, &m->cap_nss, m->nnss, sizeof(*m->nss)))
		return enomem(c);
	ns = &m->nss[m->nnss];
	memset(ns, 0, sizeof(*ns));
	enf = seg_labels_get(&mt->annots, SEG_ANNOT_ENFORCEMENT);
	if (enf && !strcmp(enf, "audit"))
		ns->enforcement = SEG_ENF_AUDIT;
	else if (enf && !strcmp(enf, "enforce"))
		ns->enforcement = SEG_ENF_ENFORCE;
	else if (enf)
		return perr(c, get(get(get(obj, "metadata"), "annotations"), SEG_ANNOT_ENFORCEMENT),
			    "metadata.annotations." SEG_ANNOT_ENFORCEMENT,
			    "must be \"audit\" or \"enforce\", not \"%s\"", enf);
	/* the API server adds kubernetes.io/metadata.name (immutable) */
	if (!seg_labels_get(&mt->labels, SEG_LABEL_NS_NAME)) {
		k = strdup(SEG_LABEL_NS_NAME);
		v = strdup(mt->name);
		if (!k || !v || labels_add(&mt->labels, k, v)) {
			free(k);
			free(v);
			return enomem(c);
		}
		qsort(mt->labels.v, mt->labels.n, sizeof(*mt->labels.v), label_cmp);
	}
	ns->name = mt->name;
	ns->labels = mt->labels;
	mt->name = NULL;
	memset(&mt->labels, 0, sizeof(mt->labels));
	set_loc(c, obj, &ns->loc);
	m->nnss++;
	return 0;
}

static int pod_add_addr(struct pctx *c, struct seg_pod *p, struct fy_node *n, const char *path)
{
	struct in6_addr a;
	char *s = NULL;
	int err;

	err = get_str(c, n, path, &s);
	if (err)
		return err;
	if (seg_addr_parse(s, &a))
		err = perr(c, n, path, "invalid IP address: %s", s);
	free(s);
	if (err)
		return err;
	for (size_t i = 0; i < p->naddrs; i++) {
		if (!memcmp(&p->addrs[i], &a, sizeof(a)))
			return 0;
	}
	if (p->naddrs == SEG_POD_MAX_ADDRS)
		return perr(c, n, path, "more than %d addresses", SEG_POD_MAX_ADDRS);
	p->addrs[p->naddrs++] = a;
	return 0;
}

static int parse_cport(struct pctx *c, struct fy_node *n, const char *path, struct seg_pod *p)
{
	struct fy_node *nn = get(n, "name"), *cn = get(n, "containerPort"),
		       *pn = get(n, "protocol");
	struct seg_cport *cp;
	char q[PATH_MAX_FIELD], *s = NULL;
	int err, proto;

	err = want_map(c, n, path);
	if (err)
		return err;
	cp = realloc(p->ports, (p->nports + 1) * sizeof(*cp));
	if (!cp)
		return enomem(c);
	p->ports = cp;
	cp = &cp[p->nports++];
	memset(cp, 0, sizeof(*cp));
	cp->proto = IPPROTO_TCP;
	child(q, path, ".containerPort");
	if (!cn)
		return perr(c, n, q, "required value");
	err = get_port_num(c, cn, q, &cp->port);
	if (!err && nn) {
		child(q, path, ".name");
		err = get_str(c, nn, q, &cp->name);
		if (!err && !is_port_name(cp->name))
			err = perr(c, nn, q, "invalid port name \"%s\"", cp->name);
	}
	if (!err && pn) {
		child(q, path, ".protocol");
		err = get_str(c, pn, q, &s);
		proto = err ? 0 : seg_proto_parse(s);
		if (!err && proto < 0)
			err = perr(
				c, pn, q,
				"unsupported value \"%s\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
				s);
		free(s);
		cp->proto = err ? 0 : (__u8)proto;
	}
	return err;
}

static int parse_pod_body(struct pctx *c, struct fy_node *obj, struct seg_pod *p)
{
	struct fy_node *st = get(obj, "status"), *spec = get(obj, "spec"), *n, *it_n, *it2_n;
	char q[PATH_MAX_FIELD], q2[PATH_MAX_FIELD];
	void *it = NULL, *it2;
	size_t i = 0, j;
	int err = 0;

	n = get(st, "podIP");
	if (n)
		err = pod_add_addr(c, p, n, "status.podIP");
	n = get(st, "podIPs");
	if (!err)
		err = want_seq(c, n, "status.podIPs");
	while (!err && n && (it_n = fy_node_sequence_iterate(n, &it))) {
		struct fy_node *ipn = get(it_n, "ip");

		child(q, "status.podIPs", "[%zu].ip", i++);
		err = ipn ? pod_add_addr(c, p, ipn, q) : perr(c, it_n, q, "required value");
	}
	n = get(spec, "containers");
	if (!err)
		err = want_seq(c, n, "spec.containers");
	it = NULL;
	i = 0;
	while (!err && n && (it_n = fy_node_sequence_iterate(n, &it))) {
		struct fy_node *pl = get(it_n, "ports");

		child(q, "spec.containers", "[%zu].ports", i++);
		err = want_seq(c, pl, q);
		it2 = NULL;
		j = 0;
		while (!err && pl && (it2_n = fy_node_sequence_iterate(pl, &it2))) {
			child(q2, q, "[%zu]", j++);
			err = parse_cport(c, it2_n, q2, p);
		}
	}
	return err;
}

static bool host_network(struct fy_node *obj)
{
	struct fy_node *hn = get(get(obj, "spec"), "hostNetwork");
	const char *s;
	size_t len;

	if (!hn || !fy_node_is_scalar(hn))
		return false;
	s = fy_node_get_scalar(hn, &len);
	return len == 4 && !memcmp(s, "true", 4);
}

static bool pod_finished(struct fy_node *obj)
{
	struct fy_node *ph = get(get(obj, "status"), "phase");
	const char *s;
	size_t len;

	if (!ph || !fy_node_is_scalar(ph))
		return false;
	s = fy_node_get_scalar(ph, &len);
	return (len == 9 && !memcmp(s, "Succeeded", 9)) || (len == 6 && !memcmp(s, "Failed", 6));
}

static int parse_pod(struct pctx *c, struct fy_node *obj, struct meta *mt)
{
	struct seg_manifests *m = c->m;
	struct seg_pod *p;
	int err;

	/* host-network pods are the node itself (SEG_ID_HOST), not workloads;
	 * finished pods keep status.podIP but have no network any more, and
	 * their address may already belong to another pod */
	if (host_network(obj) || pod_finished(obj))
		return 0;
	if (vec_reserve(&m->pods, &m->cap_pods, m->npods, sizeof(*m->pods)))
		return enomem(c);
	p = &m->pods[m->npods];
	memset(p, 0, sizeof(*p));
	p->name = mt->name;
	p->ns = mt->ns;
	p->labels = mt->labels;
	mt->name = mt->ns = NULL;
	memset(&mt->labels, 0, sizeof(mt->labels));
	set_loc(c, obj, &p->loc);
	m->npods++; /* owned by m now, also on error */
	err = parse_pod_body(c, obj, p);
	if (!err && c->b->lim && c->b->lim->max_pods && ++c->b->pods > c->b->lim->max_pods) {
		perr(c, obj, NULL, "more than %zu Pods (limit max-pods)", c->b->lim->max_pods);
		return -E2BIG;
	}
	return err;
}

/* Rule ids the compiler gives a policy: one per peer of each rule (one for
 * a rule without peers), in each direction it enforces. */
static size_t netpol_rules(const struct seg_netpol *np)
{
	size_t n = 0;

	for (int d = 0; d < SEG_DIR_MAX; d++)
		for (size_t r = 0; np->types[d] && r < np->nrules[d]; r++)
			n += np->rules[d][r].npeers ? np->rules[d][r].npeers : 1;
	return n;
}

static int netpol_budget(struct pctx *c, struct fy_node *obj, const struct seg_netpol *np)
{
	const struct seg_manifest_limits *l = c->b->lim;

	if (!l)
		return 0;
	c->b->pols++;
	c->b->rules += netpol_rules(np);
	if (l->max_policies && c->b->pols > l->max_policies) {
		perr(c, obj, NULL, "more than %zu NetworkPolicies (limit max-policies)",
		     l->max_policies);
		return -E2BIG;
	}
	if (l->max_rules && c->b->rules > l->max_rules) {
		perr(c, obj, NULL,
		     "more than %zu rules (one per peer of each ingress/egress rule; limit "
		     "max-rules)",
		     l->max_rules);
		return -E2BIG;
	}
	return 0;
}

static int parse_netpol(struct pctx *c, struct fy_node *obj, struct meta *mt)
{
	struct fy_node *av = get(obj, "apiVersion"), *spec = get(obj, "spec");
	struct seg_manifests *m = c->m;
	struct seg_netpol *np;
	const char *s;
	size_t len;
	int err;

	s = av && fy_node_is_scalar(av) ? fy_node_get_scalar(av, &len) : NULL;
	if (!s || len != strlen("networking.k8s.io/v1") || memcmp(s, "networking.k8s.io/v1", len))
		return perr(c, av ? av : obj, "apiVersion", "must be networking.k8s.io/v1");
	if (vec_reserve(&m->pols, &m->cap_pols, m->npols, sizeof(*m->pols)))
		return enomem(c);
	np = &m->pols[m->npols];
	memset(np, 0, sizeof(*np));
	np->name = mt->name;
	np->ns = mt->ns;
	mt->name = mt->ns = NULL;
	set_loc(c, obj, &np->loc);
	m->npols++;
	if (!spec)
		return perr(c, obj, "spec", "required value");
	err = want_map(c, spec, "spec");
	if (!err)
		err = parse_selector(c, get(spec, "podSelector"), "spec.podSelector", &np->pod_sel);
	if (!err)
		err = parse_rules(c, spec, np, SEG_DIR_INGRESS);
	if (!err)
		err = parse_rules(c, spec, np, SEG_DIR_EGRESS);
	if (!err)
		err = parse_policy_types(c, spec, np);
	if (!err)
		err = netpol_budget(c, obj, np);
	/* what the compiler asks of every policy, answered once */
	for (size_t r = 0; !err && r < np->nrules[SEG_DIR_INGRESS]; r++) {
		for (size_t q = 0; q < np->rules[SEG_DIR_INGRESS][r].nports; q++)
			np->ingress_names |= np->rules[SEG_DIR_INGRESS][r].ports[q].name != NULL;
	}
	for (int d = 0; !err && d < SEG_DIR_MAX; d++) {
		for (size_t r = 0; r < np->nrules[d]; r++) {
			for (size_t k = 0; k < np->rules[d][r].npeers; k++)
				np->has_blocks |= np->rules[d][r].peers[k].kind == SEG_PEER_IPBLOCK;
		}
	}
	return err;
}

static int parse_object(struct pctx *c, struct fy_node *obj, const char *where);

static int parse_list(struct pctx *c, struct fy_node *obj)
{
	struct fy_node *items = get(obj, "items"), *it_n;
	char where[PATH_MAX_FIELD];
	void *it = NULL;
	size_t i = 0;
	int err;

	err = want_seq(c, items, "items");
	while (!err && items && (it_n = fy_node_sequence_iterate(items, &it))) {
		snprintf(where, sizeof(where), "items[%zu]", i++);
		err = parse_object(c, it_n, where);
	}
	return err;
}

static int parse_object(struct pctx *c, struct fy_node *obj, const char *where)
{
	char kind[64] = "", obj_name[PATH_MAX_FIELD];
	struct fy_node *kn = get(obj, "kind");
	struct meta mt = {};
	const char *s;
	size_t len = 0;
	int err;

	if (!obj || is_null(obj))
		return 0;
	c->obj = where;
	if (!fy_node_is_mapping(obj))
		return perr(c, obj, NULL, "a Kubernetes object must be a mapping");
	s = kn && fy_node_is_scalar(kn) ? fy_node_get_scalar(kn, &len) : NULL;
	if (!s)
		return perr(c, obj, "kind", "required value");
	snprintf(kind, sizeof(kind), "%.*s", (int)len, s);
	if (len >= 4 && !memcmp(s + len - 4, "List", 4)) /* kind[] may be cut short */
		return parse_list(c, obj);
	if (strcmp(kind, "Namespace") && strcmp(kind, "Pod") && strcmp(kind, "NetworkPolicy"))
		return 0; /* Services, Deployments, ...: not ours */
	snprintf(obj_name, sizeof(obj_name), "%s%s%s", where ? where : "", where ? " " : "", kind);
	c->obj = obj_name;
	err = parse_meta(c, obj, &mt, strcmp(kind, "Namespace"));
	if (!err) {
		snprintf(obj_name, sizeof(obj_name), "%s %s%s%s", kind, mt.ns ? mt.ns : "",
			 mt.ns ? "/" : "", mt.name);
		if (!strcmp(kind, "Namespace"))
			err = parse_namespace(c, obj, &mt);
		else if (!strcmp(kind, "Pod"))
			err = parse_pod(c, obj, &mt);
		else
			err = parse_netpol(c, obj, &mt);
	}
	meta_clear(&mt);
	c->obj = NULL;
	return err;
}

/* ---- streams, files, batches --------------------------------------------------- */

/* libfyaml's messages ("3:1: error: missing comma ...") for the first
 * error, prefixed with our file name. */
struct diag_sink {
	struct pctx *c;
	bool got;
};

static void diag_out(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
	struct diag_sink *s = user;
	const char *gt;
	size_t n;

	if (s->got || !len)
		return;
	/* "<memory-@0x...-0x...>:3:1: ..." -> "3:1: ..." */
	if (buf[0] == '<' && (gt = memchr(buf, '>', len)) && gt + 1 < buf + len && gt[1] == ':') {
		len -= (size_t)(gt + 2 - buf);
		buf = gt + 2;
	}
	n = strcspn(buf, "\n");
	snprintf(s->c->d->msg, sizeof(s->c->d->msg), "%s:%.*s", s->c->file,
		 (int)(n < len ? n : len), buf);
	s->got = true;
}

/* Resolving aliases copies what they name: a few lines of nested aliases
 * ("billion laughs") would fill memory. Before resolving, count the nodes
 * the copies would add and refuse a document past these. */
#define ALIAS_COPY_MAX 1000000
#define ALIAS_DEPTH_MAX 256

static int alias_walk(struct fy_node *n, bool copy, int depth, size_t *copied)
{
	struct fy_node_pair *p;
	struct fy_node *k;
	void *it = NULL;

	if (!n)
		return 0; /* an unknown anchor: fy_document_resolve() reports it */
	if (depth > ALIAS_DEPTH_MAX || (copy && ++*copied > ALIAS_COPY_MAX))
		return -1;
	if (fy_node_is_alias(n))
		return alias_walk(fy_node_resolve_alias(n), true, depth + 1, copied);
	if (fy_node_is_sequence(n)) {
		while ((k = fy_node_sequence_iterate(n, &it)))
			if (alias_walk(k, copy, depth + 1, copied))
				return -1;
	} else if (fy_node_is_mapping(n)) {
		while ((p = fy_node_mapping_iterate(n, &it)))
			if (alias_walk(fy_node_pair_key(p), copy, depth + 1, copied) ||
			    alias_walk(fy_node_pair_value(p), copy, depth + 1, copied))
				return -1;
	}
	return 0;
}

static int resolve_doc(struct pctx *c, struct fy_document *fyd, const struct diag_sink *sink)
{
	size_t copied = 0;

	if (alias_walk(fy_document_root(fyd), false, 0, &copied))
		return perr(c, fy_document_root(fyd), NULL,
			    "YAML aliases expand past %d nodes or %d levels", ALIAS_COPY_MAX,
			    ALIAS_DEPTH_MAX);
	if (fy_document_resolve(fyd)) {
		if (!sink->got)
			snprintf(c->d->msg, sizeof(c->d->msg), "%s: bad YAML anchor or alias",
				 c->file);
		return -EINVAL;
	}
	return 0;
}

static int parse_stream(struct pctx *c, const char *buf, size_t len)
{
	size_t flen = strlen(c->file);
	struct diag_sink sink = { .c = c };
	struct fy_diag_cfg dcfg;
	struct fy_parse_cfg cfg = {
		/* anchors, aliases and merge keys: resolve_doc() */
		.flags = flen > 5 && !strcmp(c->file + flen - 5, ".json") ? FYPCF_JSON_FORCE : 0,
	};
	struct fy_parser *fyp = NULL;
	struct fy_document *fyd;
	int err = 0;

	fy_diag_cfg_default(&dcfg);
	dcfg.fp = NULL;
	dcfg.output_fn = diag_out;
	dcfg.user = &sink;
	dcfg.level = FYET_ERROR;
	dcfg.colorize = false;
	dcfg.show_source = false;
	dcfg.show_position = true;
	dcfg.show_type = false;
	dcfg.show_module = false;
	dcfg.position_width = 0;
	cfg.diag = fy_diag_create(&dcfg);
	if (cfg.diag)
		fyp = fy_parser_create(&cfg);
	if (!fyp) {
		err = enomem(c);
		goto out;
	}
	if (fy_parser_set_string(fyp, buf, len)) {
		err = enomem(c);
		goto out;
	}
	while ((fyd = fy_parse_load_document(fyp))) {
		err = resolve_doc(c, fyd, &sink);
		if (!err)
			err = parse_object(c, fy_document_root(fyd), NULL);
		fy_parse_document_destroy(fyp, fyd);
		if (err)
			goto out;
	}
	if (fy_parser_get_stream_error(fyp)) {
		if (!sink.got)
			snprintf(c->d->msg, sizeof(c->d->msg), "%s: invalid YAML/JSON", c->file);
		err = -EINVAL;
	}
out:
	fy_parser_destroy(fyp);
	if (cfg.diag)
		fy_diag_destroy(cfg.diag);
	return err;
}

static const char *intern_file(struct seg_manifests *m, const char *name)
{
	char **v = realloc(m->files, (m->nfiles + 1) * sizeof(*v));

	if (!v)
		return NULL;
	m->files = v;
	v[m->nfiles] = strdup(name);
	return v[m->nfiles] ? v[m->nfiles++] : NULL;
}

/* A manifest file may hold 100 000 policies (~30 MB); libfyaml needs ~30
 * times its size in memory, so bigger ones are refused. */
#define MANIFEST_MAX_BYTES (64u << 20)

/* Offset of the first byte that is not valid UTF-8 (overlong forms and
 * surrogates included), or len. Manifests are UTF-8, and libfyaml 0.7.12
 * loops forever on some invalid sequences ("%\xf9"), so nothing else
 * reaches it. */
static size_t utf8_bad(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char b = s[i];
		uint32_t cp;
		size_t n;

		if (b < 0x80) {
			i++;
			continue;
		}
		if (b >= 0xc2 && b <= 0xdf)
			n = 1, cp = b & 0x1f;
		else if (b >= 0xe0 && b <= 0xef)
			n = 2, cp = b & 0x0f;
		else if (b >= 0xf0 && b <= 0xf4)
			n = 3, cp = b & 0x07;
		else
			return i;
		if (len - i <= n)
			return i;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return i;
		i += n + 1;
	}
	return len;
}

/* libfyaml scans a flow collection to its end before its parser checks
 * the depth (64): 1 000 000 '[' took 717 MB. Text opening more than this
 * many '[' / '{' without closing them is refused first (quotes and
 * comments are not told apart: only absurd text comes near). */
#define MANIFEST_MAX_OPEN 1024

static bool too_open(const char *buf, size_t len)
{
	size_t open = 0;

	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '[' || buf[i] == '{') {
			if (++open > MANIFEST_MAX_OPEN)
				return true;
		} else if ((buf[i] == ']' || buf[i] == '}') && open) {
			open--;
		}
	}
	return false;
}

static bool ident_char(char ch)
{
	return alnum(ch) || ch == '_' || ch == '-' || ch == '.';
}

/* At p (after "kind"): `"?\s*:\s*["']?` then the kind name; returns the
 * name's start or NULL. */
static const char *kind_value(const char *p, const char *end)
{
	if (p < end && (*p == '"' || *p == '\''))
		p++;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p >= end || *p != ':')
		return NULL;
	p++;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p < end && (*p == '"' || *p == '\''))
		p++;
	return p;
}

static bool word_at(const char *p, const char *end, const char *w)
{
	size_t n = strlen(w);

	return (size_t)(end - p) >= n && !memcmp(p, w, n) && (p + n == end || !ident_char(p[n]));
}

/* The text scan of limits.h: counts `kind: NetworkPolicy` and `kind: Pod`
 * (comment lines skipped) on top of the budget, and refuses the load at
 * the line of the first object past a limit, before libfyaml runs. */
static int prescan(struct budget *b, const char *name, const char *buf, size_t len,
		   struct seg_diag *d)
{
	const struct seg_manifest_limits *l = b->lim;
	const char *end = buf + len, *p = buf, *line_start = buf, *counted = buf;
	size_t pols = b->pols, pods = b->pods;
	int line = 1;

	if (!b->scanned && (!l || (!l->max_policies && !l->max_pods)))
		return 0;
	/* memchr, not memmem: ASan's memmem checks the whole rest each call */
	for (; (p = memchr(p, 'k', (size_t)(end - p))); p++) {
		const char *v, *q;
		bool comment;

		for (; counted < p; counted++)
			if (*counted == '\n')
				line++, line_start = counted + 1;
		if (end - p < 4 || memcmp(p, "kind", 4) || (p > buf && ident_char(p[-1])))
			continue;
		for (q = line_start; q < p && (*q == ' ' || *q == '\t'); q++)
			;
		comment = q < p && *q == '#';
		if (comment)
			continue;
		v = kind_value(p + 4, end);
		if (!v)
			continue;
		if (b->scanned) {
			b->scanned->pols += word_at(v, end, "NetworkPolicy");
			b->scanned->pods += word_at(v, end, "Pod");
		}
		if (!l)
			continue;
		if (word_at(v, end, "NetworkPolicy") && l->max_policies &&
		    ++pols > l->max_policies) {
			snprintf(d->msg, sizeof(d->msg),
				 "%s:%d: NetworkPolicy: more than %zu NetworkPolicies (limit "
				 "max-policies); refused before parsing, nothing loaded",
				 name, line, l->max_policies);
			return -E2BIG;
		}
		if (word_at(v, end, "Pod") && l->max_pods && ++pods > l->max_pods) {
			snprintf(d->msg, sizeof(d->msg),
				 "%s:%d: Pod: more than %zu Pods (limit max-pods); refused before "
				 "parsing, nothing loaded",
				 name, line, l->max_pods);
			return -E2BIG;
		}
	}
	return 0;
}

static int load_buf(struct seg_manifests *batch, const char *name, const char *buf, size_t len,
		    struct budget *b, struct seg_diag *d)
{
	struct pctx c = { .m = batch, .d = d, .b = b };
	size_t bad = utf8_bad((const unsigned char *)buf, len);
	int err;

	if (len > MANIFEST_MAX_BYTES) {
		snprintf(d->msg, sizeof(d->msg), "%s: larger than the %u MiB a manifest may hold",
			 name, MANIFEST_MAX_BYTES >> 20);
		return -EFBIG;
	}
	if (too_open(buf, len)) {
		snprintf(d->msg, sizeof(d->msg), "%s: more than %d '[' or '{' open at once", name,
			 MANIFEST_MAX_OPEN);
		return -EINVAL;
	}
	if (bad < len) {
		const char *nl = buf;
		int line = 1;

		for (const char *p = memchr(buf, '\n', bad); p;
		     p = memchr(p + 1, '\n', buf + bad - p - 1)) {
			line++;
			nl = p + 1;
		}
		snprintf(d->msg, sizeof(d->msg), "%s:%d:%d: not UTF-8 (byte 0x%02x)", name, line,
			 (int)(buf + bad - nl) + 1, (unsigned char)buf[bad]);
		return -EINVAL;
	}
	err = prescan(b, name, buf, len, d);
	if (err)
		return err;
	c.file = intern_file(batch, name);
	if (!c.file) {
		snprintf(d->msg, sizeof(d->msg), "%s: out of memory", name);
		return -ENOMEM;
	}
	return parse_stream(&c, buf, len);
}

static int load_file(struct seg_manifests *batch, const char *path, struct budget *b,
		     struct seg_diag *d)
{
	FILE *f = fopen(path, "re");
	size_t len = 0, cap;
	struct stat st;
	char *buf;
	int err = 0;

	if (!f) {
		err = -errno;
		snprintf(d->msg, sizeof(d->msg), "%s: %s", path, strerror(errno));
		return err;
	}
	/* One buffer of the file's size (no copies while it grows), grown only
	 * if the file does; one byte past the limit at most: load_buf() refuses
	 * it. */
	cap = !fstat(fileno(f), &st) && st.st_size > 0 ? (size_t)st.st_size + 1 : 8192;
	if (cap > MANIFEST_MAX_BYTES + 1)
		cap = MANIFEST_MAX_BYTES + 1;
	buf = malloc(cap);
	while (buf) {
		size_t n;

		if (len == cap) {
			size_t ncap =
				cap > MANIFEST_MAX_BYTES / 2 ? MANIFEST_MAX_BYTES + 1 : cap * 2;
			char *nb;

			if (cap > MANIFEST_MAX_BYTES)
				break; /* one byte past the limit: refused */
			nb = realloc(buf, ncap);
			if (!nb) {
				err = -ENOMEM;
				break;
			}
			buf = nb;
			cap = ncap;
		}
		n = fread(buf + len, 1, cap - len, f);
		if (!n)
			break;
		len += n;
	}
	if (!buf)
		err = -ENOMEM;
	else if (!err && ferror(f))
		err = -EIO;
	if (err)
		snprintf(d->msg, sizeof(d->msg), "%s: read failed: %s", path, strerror(-err));
	else
		err = load_buf(batch, path, buf, len, b, d);
	free(buf);
	fclose(f);
	return err;
}

bool seg_manifest_file_name(const char *n)
{
	size_t l = strlen(n);

	if (n[0] == '.')
		return false;
	return (l > 5 && !strcmp(n + l - 5, ".yaml")) || (l > 4 && !strcmp(n + l - 4, ".yml")) ||
	       (l > 5 && !strcmp(n + l - 5, ".json"));
}

static int load_dir(struct seg_manifests *batch, const char *path, struct budget *b,
		    struct seg_diag *d)
{
	struct dirent **ents = NULL;
	int n, err = 0;

	n = scandir(path, &ents, NULL, alphasort);
	if (n < 0) {
		err = -errno;
		snprintf(d->msg, sizeof(d->msg), "%s: %s", path, strerror(errno));
		return err;
	}
	for (int i = 0; i < n; i++) {
		char full[4096];

		if (!err && seg_manifest_file_name(ents[i]->d_name)) {
			snprintf(full, sizeof(full), "%s/%s", path, ents[i]->d_name);
			err = load_file(batch, full, b, d);
		}
		free(ents[i]);
	}
	free(ents);
	return err;
}

static int dup_check(struct seg_manifests *m, struct seg_manifests *b, struct seg_diag *d)
{
	struct hmap h = {};
	char key[600];
	int err = 0;

	for (int pass = 0; pass < 2 && !err; pass++) {
		struct seg_manifests *s = pass ? b : m;

		for (size_t i = 0; i < s->nnss + s->npods + s->npols && !err; i++) {
			const struct seg_src_loc *loc;
			const char *kind, *ns, *name;
			size_t prev;

			if (i < s->nnss) {
				kind = "Namespace", ns = "", name = s->nss[i].name;
				loc = &s->nss[i].loc;
			} else if (i < s->nnss + s->npods) {
				const struct seg_pod *p = &s->pods[i - s->nnss];

				kind = "Pod", ns = p->ns, name = p->name, loc = &p->loc;
			} else {
				const struct seg_netpol *p = &s->pols[i - s->nnss - s->npods];

				kind = "NetworkPolicy", ns = p->ns, name = p->name, loc = &p->loc;
			}
			snprintf(key, sizeof(key), "%s %s%s%s", kind, ns, *ns ? "/" : "", name);
			if (hmap_get_str(&h, key, &prev)) {
				snprintf(
					d->msg, sizeof(d->msg),
					"%s:%d:%d: %.300s: metadata.name: duplicate name (also defined earlier)",
					loc->file, loc->line, loc->col, key);
				err = -EINVAL;
			} else if (hmap_put_str(&h, key, i)) {
				snprintf(d->msg, sizeof(d->msg), "out of memory");
				err = -ENOMEM;
			}
		}
	}
	hmap_free(&h);
	return err;
}

#define APPEND(dst, src, field, nfield)                                                          \
	do {                                                                                     \
		void *p_ = realloc((dst)->field,                                                 \
				   ((dst)->nfield + (src)->nfield + 1) * sizeof(*(dst)->field)); \
		if (!p_)                                                                         \
			return -ENOMEM;                                                          \
		(dst)->field = p_;                                                               \
	} while (0)

/* Moves everything of b into m; m's arrays are grown first so nothing fails
 * half-way. */
static int merge(struct seg_manifests *m, struct seg_manifests *b)
{
	APPEND(m, b, nss, nnss);
	APPEND(m, b, pods, npods);
	APPEND(m, b, pols, npols);
	APPEND(m, b, files, nfiles);
	if (b->nnss)
		memcpy(m->nss + m->nnss, b->nss, b->nnss * sizeof(*b->nss));
	if (b->npods)
		memcpy(m->pods + m->npods, b->pods, b->npods * sizeof(*b->pods));
	if (b->npols)
		memcpy(m->pols + m->npols, b->pols, b->npols * sizeof(*b->pols));
	if (b->nfiles)
		memcpy(m->files + m->nfiles, b->files, b->nfiles * sizeof(*b->files));
	m->nnss += b->nnss;
	m->npods += b->npods;
	m->npols += b->npols;
	m->nfiles += b->nfiles;
	m->cap_nss = m->nnss + 1;
	m->cap_pods = m->npods + 1;
	m->cap_pols = m->npols + 1;
	b->nnss = b->npods = b->npols = b->nfiles = 0;
	return 0;
}

/* dups: false for parts, whose duplicates seg_manifests_append() finds */
static int finish_batch(struct seg_manifests *m, struct seg_manifests *b, int err, bool dups,
			struct seg_diag *d)
{
	if (!err && dups)
		err = dup_check(m, b, d);
	if (!err && merge(m, b)) {
		snprintf(d->msg, sizeof(d->msg), "out of memory");
		err = -ENOMEM;
	}
	seg_manifests_free(b);
	return err;
}

static struct budget budget_of(const struct seg_manifests *m, const struct seg_manifest_limits *l)
{
	struct budget b = { .lim = l, .pols = m->npols, .pods = m->npods };

	for (size_t i = 0; l && l->max_rules && i < m->npols; i++)
		b.rules += netpol_rules(&m->pols[i]);
	return b;
}

int seg_manifests_load_buf_limited(struct seg_manifests *m, const char *name, const char *buf,
				   size_t len, const struct seg_manifest_limits *l,
				   struct seg_diag *d)
{
	struct seg_manifests *b = seg_manifests_new();
	struct budget bud = budget_of(m, l);

	if (!b) {
		snprintf(d->msg, sizeof(d->msg), "out of memory");
		return -ENOMEM;
	}
	return finish_batch(m, b, load_buf(b, name, buf, len, &bud, d), true, d);
}

int seg_manifests_load_buf(struct seg_manifests *m, const char *name, const char *buf, size_t len,
			   struct seg_diag *d)
{
	return seg_manifests_load_buf_limited(m, name, buf, len, NULL, d);
}

static int load_path(struct seg_manifests *m, const char *path, struct budget *bud, bool dups,
		     struct seg_diag *d)
{
	struct seg_manifests *b = seg_manifests_new();
	struct stat st;
	int err;

	if (!b) {
		snprintf(d->msg, sizeof(d->msg), "out of memory");
		return -ENOMEM;
	}
	if (stat(path, &st)) {
		err = -errno;
		snprintf(d->msg, sizeof(d->msg), "%s: %s", path, strerror(errno));
	} else if (S_ISDIR(st.st_mode)) {
		err = load_dir(b, path, bud, d);
	} else {
		err = load_file(b, path, bud, d);
	}
	return finish_batch(m, b, err, dups, d);
}

int seg_manifests_load_path_limited(struct seg_manifests *m, const char *path,
				    const struct seg_manifest_limits *l, struct seg_diag *d)
{
	struct budget bud = budget_of(m, l);

	return load_path(m, path, &bud, true, d);
}

/* ---- parts (limits.h) ------------------------------------------------------------ */

static struct budget budget_part(const struct seg_manifests *m, const struct seg_manifest_limits *l,
				 const struct seg_manifest_counts *before,
				 struct seg_manifest_counts *scanned)
{
	struct budget b = budget_of(m, l);

	if (before) {
		b.pols = before->pols;
		b.pods = before->pods;
		b.rules = before->rules;
	}
	memset(scanned, 0, sizeof(*scanned));
	b.scanned = scanned;
	return b;
}

int seg_manifests_load_path_part(struct seg_manifests *m, const char *path,
				 const struct seg_manifest_limits *l,
				 const struct seg_manifest_counts *before,
				 struct seg_manifest_counts *scanned, struct seg_diag *d)
{
	struct budget bud = budget_part(m, l, before, scanned);

	return load_path(m, path, &bud, false, d);
}

int seg_manifests_load_buf_part(struct seg_manifests *m, const char *name, const char *buf,
				size_t len, const struct seg_manifest_limits *l,
				const struct seg_manifest_counts *before,
				struct seg_manifest_counts *scanned, struct seg_diag *d)
{
	struct seg_manifests *b = seg_manifests_new();
	struct budget bud = budget_part(m, l, before, scanned);

	if (!b) {
		snprintf(d->msg, sizeof(d->msg), "out of memory");
		return -ENOMEM;
	}
	return finish_batch(m, b, load_buf(b, name, buf, len, &bud, d), false, d);
}

void seg_manifests_count(const struct seg_manifests *m, struct seg_manifest_counts *out)
{
	out->pols = m->npols;
	out->pods = m->npods;
	out->rules = 0;
	for (size_t i = 0; i < m->npols; i++)
		out->rules += netpol_rules(&m->pols[i]);
}

/* The checks of prescan() and of the parser (parse_pod, netpol_budget) on
 * the totals: each only fails past its limit, so the totals decide. */
bool seg_manifest_part_fits(const struct seg_manifest_limits *l,
			    const struct seg_manifest_counts *before,
			    const struct seg_manifest_counts *own,
			    const struct seg_manifest_counts *scanned)
{
	if (!l)
		return true;
	if (l->max_policies && (before->pols + own->pols > l->max_policies ||
				before->pols + scanned->pols > l->max_policies))
		return false;
	if (l->max_pods &&
	    (before->pods + own->pods > l->max_pods || before->pods + scanned->pods > l->max_pods))
		return false;
	return !l->max_rules || before->rules + own->rules <= l->max_rules;
}

int seg_manifests_load_path(struct seg_manifests *m, const char *path, struct seg_diag *d)
{
	return seg_manifests_load_path_limited(m, path, NULL, d);
}
