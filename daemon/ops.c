// SPDX-License-Identifier: GPL-2.0-only
/*
 * segd's control operations (docs/segd.md has the JSON of each). They run
 * on the loop; the ones that change the desired state (apply, delete,
 * cni-add, cni-del) run a sync pass before answering, so a success means
 * the maps hold the new state, and a failure means they hold the old one.
 */
#include "segd.h"

#include "addr.h"
#include "cli/opts.h"
#include "ctl_server.h"
#include "dp/dp.h"
#include "export.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SEG_VERSION
#define SEG_VERSION "unknown"
#endif

#define ERR(code, ...) (snprintf(err, errlen, __VA_ARGS__), (code))

/* ---- status ---------------------------------------------------------------------- */

static const char *const status_maps[] = {
	SEG_MAP_ENDPOINTS, SEG_MAP_IPCACHE, SEG_MAP_IPCACHE_LPM, SEG_MAP_POLICY, SEG_MAP_CT, NULL,
};

static json_t *apply_stats_json(const struct seg_apply_stats *s)
{
	return json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:b, s:i, s:i, s:I}",
			 "policies_added", s->policies_added, "policies_removed",
			 s->policies_removed, "policy_writes", s->policy_writes, "policy_deletes",
			 s->policy_deletes, "endpoint_writes", s->endpoint_writes,
			 "endpoint_deletes", s->endpoint_deletes, "ipcache_writes",
			 s->ipcache_writes, "ipcache_deletes", s->ipcache_deletes, "flipped",
			 s->flipped, "epoch", s->epoch, "generation", s->generation, "duration_us",
			 (json_int_t)s->duration_us);
}

json_t *segd_status_json(struct segd *d)
{
	const struct seg_manifests *m = d->m;
	struct seg_config cfg = {};
	json_t *maps = json_object(), *st;

	for (int i = 0; status_maps[i]; i++) {
		__u32 used = 0, max = 0;

		if (!seg_dp_map_fill(d->dp, status_maps[i], &used, &max))
			json_object_set_new(maps, status_maps[i],
					    json_pack("{s:i, s:i}", "used", used, "max", max));
	}
	seg_dp_config_get(d->dp, &cfg);
	st = json_pack("{s:s, s:i, s:I, s:s, s:s, s:s, s:s?}", "version", SEG_VERSION,
		       "abi_version", SEG_ABI_VERSION, "uptime_s",
		       (json_int_t)(time(NULL) - d->started), "pin_dir", d->o.pin_dir, "socket",
		       d->o.socket, "state_file", d->state_path, "manifests", d->o.manifests);
	json_object_set_new(st, "counts",
			    json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "namespaces",
				      m ? (int)m->nnss : 0, "pods", m ? (int)m->npods : 0,
				      "policies", m ? (int)m->npols : 0, "identities",
				      d->c ? (int)d->c->nids : 0, "endpoints_attached",
				      (int)d->natt, "applied_objects", (int)d->napplied, "cni_pods",
				      (int)d->ncni));
	json_object_set_new(st, "maps", maps);
	json_object_set_new(st, "epoch", json_integer(cfg.epoch));
	json_object_set_new(st, "generation", json_integer(cfg.generation));
	json_object_set_new(st, "last_error",
			    d->last_error[0] ? json_string(d->last_error) : json_null());
	json_object_set_new(st, "syncs", json_integer(d->st.syncs));
	json_object_set_new(st, "applies", json_integer(d->st.applies));
	json_object_set_new(st, "apply_errors", json_integer(d->st.apply_errors));
	json_object_set_new(st, "last_apply",
			    d->st.have_last ? apply_stats_json(&d->st.last) : json_null());
	json_object_set_new(st, "exporter", segd_export_status_json(d->exp));
	return st;
}

/* ---- endpoints ----------------------------------------------------------------------- */

static const struct seg_pod *pod_by_key(const struct seg_manifests *m, const char *key)
{
	for (size_t i = 0; m && i < m->npods; i++) {
		size_t l = strlen(m->pods[i].ns);

		if (!strncmp(key, m->pods[i].ns, l) && key[l] == '/' &&
		    !strcmp(key + l + 1, m->pods[i].name))
			return &m->pods[i];
	}
	return NULL;
}

static json_t *labels_json(const struct seg_labels *l)
{
	json_t *o = json_object();

	for (size_t i = 0; l && i < l->n; i++)
		json_object_set_new(o, l->v[i].key, json_string(l->v[i].val));
	return o;
}

static json_t *dir_json(const struct seg_endpoint *ep, int dir)
{
	return json_pack("{s:b, s:b, s:i, s:i}", "isolated", !!(ep->flags[dir] & SEG_EPF_ISOLATED),
			 "audit", !!(ep->flags[dir] & SEG_EPF_AUDIT), "policy_id",
			 ep->policy_id[dir], "port_mask", ep->port_mask[dir]);
}

static json_t *endpoint_json(struct segd *d, const struct segd_att *a)
{
	struct seg_endpoint ep = {};
	bool in_maps = !seg_dp_endpoint_get(d->dp, a->ifkey, &ep);
	const struct seg_pod *pod = pod_by_key(d->m, a->pod);
	json_t *j = json_pack("{s:s, s:I, s:s, s:s, s:s}", "pod", a->pod, "ifkey",
			      (json_int_t)a->ifkey, "interface", a->ifname, "style",
			      disc_style_str(a->style), "netns", a->netns);

	json_object_set_new(j, "in_maps", json_boolean(in_maps));
	json_object_set_new(j, "ep_id", json_integer(in_maps ? ep.ep_id : 0));
	json_object_set_new(j, "identity", json_integer(in_maps ? ep.identity : 0));
	json_object_set_new(j, "revision", json_integer(in_maps ? ep.revision : 0));
	json_object_set_new(j, "ingress", dir_json(&ep, SEG_DIR_INGRESS));
	json_object_set_new(j, "egress", dir_json(&ep, SEG_DIR_EGRESS));
	json_object_set_new(j, "labels", labels_json(pod ? &pod->labels : NULL));
	return j;
}

static int op_endpoint_list(struct segd *d, json_t *args, json_t **res, char *err, size_t errlen)
{
	json_t *l = json_array();

	for (size_t i = 0; i < d->natt; i++)
		json_array_append_new(l, endpoint_json(d, &d->att[i]));
	*res = l;
	return 0;
}

static int op_endpoint_get(struct segd *d, json_t *args, json_t **res, char *err, size_t errlen)
{
	const char *pod = json_string_value(json_object_get(args, "pod"));
	json_int_t ifkey = json_integer_value(json_object_get(args, "ifkey"));

	for (size_t i = 0; i < d->natt; i++)
		if ((pod && !strcmp(d->att[i].pod, pod)) || (!pod && d->att[i].ifkey == ifkey)) {
			*res = endpoint_json(d, &d->att[i]);
			return 0;
		}
	if (pod)
		return ERR(-ENOENT, "no endpoint for pod %s on this node", pod);
	return ERR(-ENOENT, "no endpoint with ifkey %lld on this node", (long long)ifkey);
}

/* ---- identities ------------------------------------------------------------------------ */

static json_t *identity_json(const struct seg_identity *id)
{
	json_t *j = json_pack("{s:i, s:s}", "id", id->id, "key", id->key);

	json_object_set_new(j, "namespace", id->ns ? json_string(id->ns->name) : json_null());
	json_object_set_new(j, "labels", labels_json(id->labels));
	json_object_set_new(j, "cidr_blocks", json_integer(id->nblocks));
	return j;
}

static int op_identity_list(struct segd *d, json_t *args, json_t **res, char *err, size_t errlen)
{
	json_t *l = json_array();

	for (size_t i = 0; d->c && i < d->c->nids; i++)
		json_array_append_new(l, identity_json(&d->c->ids[i]));
	*res = l;
	return 0;
}

static int op_identity_get(struct segd *d, json_t *args, json_t **res, char *err, size_t errlen)
{
	json_int_t id = json_integer_value(json_object_get(args, "id"));
	const struct seg_identity *ident = d->c ? seg_identity_get(d->c, (__u32)id) : NULL;

	if (!ident)
		return ERR(-ENOENT, "no identity %lld", (long long)id);
	*res = identity_json(ident);
	return 0;
}

/* ---- policies -------------------------------------------------------------------------- */

static json_t *policy_json(struct segd *d, size_t pi, bool detail)
{
	const struct seg_netpol *p = &d->m->pols[pi];
	json_t *types = json_array(), *eps = json_array();
	char src[PATH_MAX + 32];
	json_t *j;

	if (p->types[SEG_DIR_INGRESS])
		json_array_append_new(types, json_string("Ingress"));
	if (p->types[SEG_DIR_EGRESS])
		json_array_append_new(types, json_string("Egress"));
	snprintf(src, sizeof(src), "%s:%d", p->loc.file ?: "?", p->loc.line);
	for (size_t e = 0; d->c && e < d->c->neps; e++) {
		const struct seg_ep_entry *ep = &d->c->eps[e];
		bool sel = false;

		for (int dir = 0; dir < SEG_DIR_MAX; dir++)
			for (size_t k = 0; k < ep->nsel[dir]; k++)
				sel |= ep->sel[dir][k] == pi;
		if (sel) {
			const struct seg_pod *pod = &d->m->pods[ep->pod];
			char key[320];

			snprintf(key, sizeof(key), "%s/%s", pod->ns, pod->name);
			json_array_append_new(eps, json_string(key));
		}
	}
	j = json_pack("{s:s, s:s, s:o, s:i, s:i, s:s, s:i}", "namespace", p->ns, "name", p->name,
		      "types", types, "ingress_rules", (int)p->nrules[SEG_DIR_INGRESS],
		      "egress_rules", (int)p->nrules[SEG_DIR_EGRESS], "source", src, "endpoints",
		      (int)json_array_size(eps));
	if (detail) {
		json_t *rules = json_array();

		json_object_set_new(j, "selected_pods", eps);
		eps = NULL;
		for (size_t r = 0; d->c && r < d->c->nrules; r++) {
			char desc[256];

			if (d->c->rules[r].pol != pi)
				continue;
			seg_rule_describe(d->c, d->c->rules[r].rule_id, desc, sizeof(desc));
			json_array_append_new(rules,
					      json_pack("{s:i, s:s}", "rule_id",
							d->c->rules[r].rule_id, "describe", desc));
		}
		json_object_set_new(j, "rules", rules);
	}
	json_decref(eps);
	return j;
}

static int op_policy_list(struct segd *d, json_t *args, json_t **res, char *err, size_t errlen)
{
	json_t *l = json_array();

	for (size_t i = 0; d->m && i < d->m->npols; i++)
		json_array_append_new(l, policy_json(d, i, false));
	*res = l;
	return 0;
}

static int op_policy_get(struct segd *d, json_t *args, json_t **res, char *err, size_t errlen)
{
	const char *ns = json_string_value(json_object_get(args, "namespace"));
	const char *name = json_string_value(json_object_get(args, "name"));

	if (!ns || !name)
		return ERR(-EINVAL, "policy-get needs namespace and name");
	for (size_t i = 0; d->m && i < d->m->npols; i++)
		if (!strcmp(d->m->pols[i].ns, ns) && !strcmp(d->m->pols[i].name, name)) {
			*res = policy_json(d, i, true);
			return 0;
		}
	return ERR(-ENOENT, "no NetworkPolicy %s/%s", ns, name);
}

/* ---- policy test against the live state -------------------------------------------------- */

static int resolve_peer(struct segd *d, const char *s, struct seg_endpoint_ref *r)
{
	const struct seg_pod *pod = strchr(s, '/') ? pod_by_key(d->m, s) : NULL;

	memset(r, 0, sizeof(*r));
	if (pod) {
		if (!pod->naddrs)
			return -EADDRNOTAVAIL;
		r->pod = pod;
		r->addr = pod->addrs[0];
		return 0;
	}
	if (segd_parse_addr(s, &r->addr))
		return -ENOENT;
	for (size_t i = 0; d->m && i < d->m->npods; i++)
		for (size_t a = 0; a < d->m->pods[i].naddrs; a++)
			if (!memcmp(&d->m->pods[i].addrs[a], &r->addr, sizeof(r->addr)))
				r->pod = &d->m->pods[i];
	return 0;
}

static json_t *dir_verdict_json(struct segd *d, const struct seg_dir_verdict *v)
{
	char rule[256] = "";

	if (!v->evaluated)
		return json_null();
	if (v->rule_id)
		seg_rule_describe(d->c, v->rule_id, rule, sizeof(rule));
	return json_pack("{s:s, s:s, s:i, s:i, s:s?}", "verdict", seg_verdict_str(v->verdict),
			 "reason", seg_reason_str(v->reason), "remote_id", v->remote_id, "rule_id",
			 v->rule_id, "rule", v->rule_id ? rule : NULL);
}

/* One probe: from/to are "ns/name" or an address; port a number or a
 * container port name of the destination pod. */
static int decide(struct segd *d, const char *from, const char *to, const char *port_s,
		  const char *proto_s, json_t **out, char *err, size_t errlen)
{
	struct seg_endpoint_ref src, dst;
	struct seg_verdict v = {};
	unsigned long long port = 0;
	int proto, e;

	proto = seg_proto_parse(proto_s);
	if (proto < 0)
		return ERR(-EINVAL, "probe %s->%s: unknown protocol %s", from, to, proto_s);
	for (int side = 0; side < 2; side++) {
		const char *who = side ? to : from;

		e = resolve_peer(d, who, side ? &dst : &src);
		if (e)
			return ERR(e,
				   "probe %s->%s: %s is not a known pod (ns/name) with an "
				   "address, or an address",
				   from, to, who);
	}
	if (opts_parse_ull(port_s, 0, 65535, &port)) {
		port = dst.pod ? seg_pod_named_port(dst.pod, port_s, proto) : 0;
		if (!port)
			return ERR(-ENOENT, "probe %s->%s: no container port named %s/%s", from, to,
				   port_s, seg_proto_str(proto));
	}
	e = seg_eval(d->c, &src, &dst, port, proto, &v);
	if (e)
		return ERR(e, "probe %s->%s: %s", from, to, strerror(-e));
	/* The shape of `segctl policy test -o json`, plus the per-direction details. */
	*out = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}", "from", from, "to", to, "port",
			 (int)port, "protocol", seg_proto_str(proto), "verdict",
			 v.verdict == SEG_VERDICT_DENY ? "deny" : "allow", "reason", v.reason);
	json_object_set_new(*out, "egress", dir_verdict_json(d, &v.dir[SEG_DIR_EGRESS]));
	json_object_set_new(*out, "ingress", dir_verdict_json(d, &v.dir[SEG_DIR_INGRESS]));
	return 0;
}

/* "PORT/PROTO" or "PORT" (TCP) into port and protocol strings. */
static void split_port(const char *s, char *port, size_t plen, char *proto, size_t prlen)
{
	const char *slash = strchr(s, '/');

	snprintf(port, plen, "%.*s", slash ? (int)(slash - s) : (int)strlen(s), s);
	snprintf(proto, prlen, "%s", slash ? slash + 1 : "TCP");
}

/* {from, to, port, protocol} or {spec: "FROM->TO:PORT[/PROTO]"} (segctl's --probe). */
static int probe_one(struct segd *d, json_t *p, json_t **out, char *err, size_t errlen)
{
	const char *from = NULL, *to = NULL, *proto_s = "TCP", *spec = NULL;
	char buf[512], port[64], proto[16], *arrow, *colon;
	json_t *port_j = NULL;
	json_error_t je;

	if (json_unpack_ex(p, &je, 0, "{s?s, s?s, s?o, s?s, s?s, s?s}", "spec", &spec, "from",
			   &from, "to", &to, "port", &port_j, "protocol", &proto_s, "proto",
			   &proto_s))
		return ERR(-EINVAL, "probe: %s", je.text);
	if (spec) {
		snprintf(buf, sizeof(buf), "%s", spec);
		arrow = strstr(buf, "->");
		colon = arrow ? strrchr(arrow + 2, ':') : NULL;
		if (!arrow || !colon)
			return ERR(-EINVAL, "probe '%s': want FROM->TO:PORT[/PROTO]", spec);
		*arrow = *colon = '\0';
		split_port(colon + 1, port, sizeof(port), proto, sizeof(proto));
		return decide(d, buf, arrow + 2, port, proto, out, err, errlen);
	}
	if (!from || !to || !port_j)
		return ERR(-EINVAL, "probe: want {from, to, port, protocol} or {spec}");
	if (json_is_integer(port_j))
		snprintf(port, sizeof(port), "%lld", (long long)json_integer_value(port_j));
	else
		snprintf(port, sizeof(port), "%s", json_string_value(port_j) ?: "");
	return decide(d, from, to, port, proto_s, out, err, errlen);
}

/* Every pod with an address to every pod: the netpol e2e truth table. */
static int matrix(struct segd *d, const char *spec, json_t *l, char *err, size_t errlen)
{
	const struct seg_manifests *m = d->m;
	char port[64], proto[16];

	split_port(spec, port, sizeof(port), proto, sizeof(proto));
	for (size_t i = 0; m && i < m->npods; i++)
		for (size_t k = 0; k < m->npods; k++) {
			char from[320], to[320];
			json_t *one = NULL;
			int e;

			if (!m->pods[i].naddrs || !m->pods[k].naddrs)
				continue;
			snprintf(from, sizeof(from), "%s/%s", m->pods[i].ns, m->pods[i].name);
			snprintf(to, sizeof(to), "%s/%s", m->pods[k].ns, m->pods[k].name);
			e = decide(d, from, to, port, proto, &one, err, errlen);
			if (e)
				return e;
			json_array_append_new(l, one);
		}
	return 0;
}

static int op_policy_test(struct segd *d, json_t *args, json_t **res, char *err, size_t errlen)
{
	json_t *probes = json_object_get(args, "probes"), *p, *l;
	const char *mx = json_string_value(json_object_get(args, "matrix"));
	size_t i;
	int e = 0;

	if (!json_is_array(probes) && !mx)
		return ERR(-EINVAL,
			   "policy-test needs probes: [{from, to, port, protocol} | {spec}] "
			   "or matrix: \"PORT/PROTO\"");
	if (!d->c)
		return ERR(-EAGAIN, "no compiled state yet");
	l = json_array();
	json_array_foreach(probes, i, p)
	{
		json_t *one = NULL;

		e = probe_one(d, p, &one, err, errlen);
		if (e)
			break;
		json_array_append_new(l, one);
	}
	if (!e && mx)
		e = matrix(d, mx, l, err, errlen);
	if (e) {
		json_decref(l);
		return e;
	}
	*res = l;
	return 0;
}

/* ---- desired state: apply, delete ------------------------------------------------------- */

/* Runs a sync; on failure restores the previous error text (the refusal
 * belongs to the caller, not to the node's state). */
static int sync_or_refuse(struct segd *d, char *err, size_t errlen)
{
	char prev[sizeof(d->last_error)];
	int r;

	memcpy(prev, d->last_error, sizeof(prev));
	r = segd_sync_now(d, false, err, errlen);
	if (r)
		memcpy(d->last_error, prev, sizeof(prev));
	return r;
}

static json_t *result_stats(struct segd *d, json_t *names)
{
	return json_pack("{s:O, s:o}", "names", names, "stats",
			 d->st.have_last ? apply_stats_json(&d->st.last) : json_null());
}

/* Frees the strings of a that b does not share. b's entries that come from
 * a are in a's order (an apply replaces in place and appends, a delete
 * leaves out): shared entries have the same name pointer, and a shared
 * entry whose text changed has a new content pointer in one of them. With d,
 * the state items of the texts freed are retired (a commit's old set). */
static void applied_release(struct segd *d, struct segd_applied *a, size_t na,
			    const struct segd_applied *b, size_t nb)
{
	size_t j = 0;

	for (size_t i = 0; i < na; i++) {
		size_t k = j;

		while (k < nb && b[k].name != a[i].name)
			k++;
		if (k < nb && b[k].content == a[i].content) {
			j = k + 1;
			continue;
		}
		if (k < nb)
			j = k + 1;
		else
			free(a[i].name);
		free(a[i].content);
		if (d)
			segd_state_retire(d, a[i].item);
	}
}

/* A new applied set: d->applied's entries (sharing their strings) and room
 * for extra more. NULL if out of memory. */
static struct segd_applied *applied_begin(const struct segd *d, size_t extra)
{
	struct segd_applied *v = calloc(d->napplied + extra + 1, sizeof(*v));

	if (v && d->napplied)
		memcpy(v, d->applied, d->napplied * sizeof(*v));
	return v;
}

/* Makes v the applied set, all or nothing: on success what only the old set
 * held is freed and the state file written; on failure what only v held is
 * freed and nothing changed. Takes v. */
static int applied_commit(struct segd *d, struct segd_applied *v, size_t n, char *err,
			  size_t errlen)
{
	struct segd_applied *old = d->applied;
	size_t nold = d->napplied;
	int r;

	d->applied = v;
	d->napplied = n;
	r = sync_or_refuse(d, err, errlen);
	if (r) {
		d->applied = old;
		d->napplied = nold;
		d->dirty_manifests = true; /* back to what the maps hold */
		applied_release(NULL, v, n, old, nold);
		free(v);
		return r;
	}
	applied_release(d, old, nold, v, n);
	free(old);
	segd_state_save(d);
	return 0;
}

/* Sets entry k of v (n entries, v from applied_begin()) to content; an
 * unchanged text keeps its entry, state item included. */
static int applied_replace(const struct segd *d, struct segd_applied *v, size_t k,
			   const char *content, size_t len)
{
	struct segd_applied t = v[k];
	int r;

	if (v[k].len == len && !memcmp(v[k].content, content, len))
		return 0;
	r = segd_applied_text(&t, content, len);
	if (r)
		return r;
	if (k >= d->napplied || v[k].content != d->applied[k].content)
		free(v[k].content); /* v's own, from an earlier item of this apply */
	v[k] = t;
	return 0;
}

/* {name, content} or {items: [{name, content}, ...]}: one sync for all. */
static int op_apply(struct segd *d, json_t *args, json_t **res, char *err, size_t errlen)
{
	json_t *items = json_object_get(args, "items"), *one = NULL, *it, *names;
	struct segd_applied *v = NULL;
	size_t n = 0, i;
	int r = 0;

	if (!items)
		items = one = json_pack("[O]", args);
	if (!json_is_array(items) || !json_array_size(items)) {
		json_decref(one);
		return ERR(-EINVAL, "apply needs {name, content} or {items: [{name, content}]}");
	}
	v = applied_begin(d, json_array_size(items));
	if (!v) {
		json_decref(one);
		return -ENOMEM;
	}
	n = d->napplied;
	names = json_array();
	json_array_foreach(items, i, it)
	{
		const char *name = NULL, *content = NULL;
		json_error_t je;
		size_t k;

		if (r)
			break;
		if (json_unpack_ex(it, &je, 0, "{s:s, s:s}", "name", &name, "content", &content)) {
			r = ERR(-EINVAL, "apply: items[%zu]: %s", i, je.text);
			break;
		}
		json_array_append_new(names, json_string(name));
		for (k = 0; k < n && strcmp(v[k].name, name); k++)
			;
		if (k < n)
			r = applied_replace(d, v, k, content, strlen(content));
		else if (!(r = segd_applied_set(&v[n], name, content, strlen(content))))
			n++;
	}
	json_decref(one);
	if (r) {
		applied_release(NULL, v, n, d->applied, d->napplied);
		free(v);
		json_decref(names);
		return r;
	}
	r = applied_commit(d, v, n, err, errlen);
	if (!r)
		*res = result_stats(d, names);
	json_decref(names);
	return r;
}

/* The applied entry that holds exactly one object, kind/ns/name. */
static int find_single(struct segd *d, const char *kind, const char *ns, const char *name,
		       size_t *idx, char *err, size_t errlen)
{
	for (size_t i = 0; i < d->napplied; i++) {
		struct seg_manifests *m = seg_manifests_new();
		struct seg_diag diag;
		bool hit = false;
		size_t n;

		if (!m || seg_manifests_load_buf(m, d->applied[i].name, d->applied[i].content,
						 d->applied[i].len, &diag)) {
			seg_manifests_free(m);
			continue;
		}
		n = m->nnss + m->npods + m->npols;
		if (!strcasecmp(kind, "Namespace"))
			hit = seg_manifests_ns(m, name);
		else if (!strcasecmp(kind, "Pod"))
			hit = seg_manifests_pod(m, ns, name);
		else
			for (size_t k = 0; k < m->npols; k++)
				hit |= !strcmp(m->pols[k].ns, ns) && !strcmp(m->pols[k].name, name);
		seg_manifests_free(m);
		if (hit && n == 1) {
			*idx = i;
			return 0;
		}
		if (hit)
			return ERR(-EBUSY,
				   "%s %s/%s was applied with other objects as %s: delete that",
				   kind, ns, name, d->applied[i].name);
	}
	return ERR(-ENOENT,
		   "%s %s/%s was not applied over the socket (objects of the manifests directory "
		   "go away with their file)",
		   kind, ns, name);
}

/* {name}, {names: [...]} or {kind, namespace, name}: one sync for all. */
static int op_delete(struct segd *d, json_t *args, json_t **res, char *err, size_t errlen)
{
	const char *name = json_string_value(json_object_get(args, "name"));
	const char *kind = json_string_value(json_object_get(args, "kind"));
	const char *ns = json_string_value(json_object_get(args, "namespace")) ?: "default";
	json_t *names = json_object_get(args, "names"), *it;
	struct segd_applied *v = NULL;
	size_t idx, n = 0, i;
	bool *gone;
	int r = 0;

	if (kind) {
		if (!name)
			return ERR(-EINVAL, "delete: kind needs a name");
		r = find_single(d, kind, ns, name, &idx, err, errlen);
		if (r)
			return r;
		names = json_pack("[s]", d->applied[idx].name);
	} else if (name) {
		names = json_pack("[s]", name);
	} else if (json_is_array(names)) {
		json_incref(names);
	} else {
		return ERR(-EINVAL, "delete needs {name}, {names} or {kind, namespace, name}");
	}
	gone = calloc(d->napplied + 1, sizeof(*gone));
	v = applied_begin(d, 0);
	if (!gone || !v) {
		free(gone);
		free(v);
		json_decref(names);
		return -ENOMEM;
	}
	json_array_foreach(names, i, it)
	{
		const char *nm = json_string_value(it);
		size_t k;

		for (k = 0; nm && k < d->napplied && strcmp(d->applied[k].name, nm); k++)
			;
		if (!nm || k == d->napplied) {
			r = ERR(-ENOENT, "nothing was applied as %s", nm ?: "(not a string)");
			break;
		}
		gone[k] = true;
	}
	for (i = 0; i < d->napplied; i++)
		if (!gone[i])
			v[n++] = d->applied[i]; /* shared, as applied_begin() made them */
	free(gone);
	if (!r)
		r = applied_commit(d, v, n, err, errlen);
	else
		free(v); /* shares all it holds */
	if (!r)
		*res = result_stats(d, names);
	json_decref(names);
	return r;
}

/* ---- CNI ---------------------------------------------------------------------------------- */

static ssize_t cni_find(struct segd *d, const char *cid)
{
	for (size_t i = 0; i < d->ncni; i++)
		if (!strcmp(d->cni[i].container_id, cid))
			return i;
	return -1;
}

static void cni_remove(struct segd *d, size_t i)
{
	segd_cni_pod_free(&d->cni[i]);
	memmove(&d->cni[i], &d->cni[i + 1], (d->ncni - i - 1) * sizeof(d->cni[0]));
	d->ncni--;
}

/* The pod's endpoint as the data path has it, or an error naming what is missing. */
static int cni_ready(struct segd *d, const struct segd_cni_pod *p, json_t **res, char *err,
		     size_t errlen)
{
	char key[320];
	const struct segd_att *a;
	struct seg_endpoint ep;

	snprintf(key, sizeof(key), "%s/%s", p->ns, p->name);
	a = segd_att_find(d, key);
	if (!a)
		return ERR(-ENODEV,
			   "pod %s: no pod interface with its addresses found (netns %s, %zu "
			   "addresses given)",
			   key, p->netns, p->naddrs);
	if (seg_dp_endpoint_get(d->dp, a->ifkey, &ep))
		return ERR(-ENOENT,
			   "pod %s: attached to %s but its endpoint is not in the maps%s%s", key,
			   a->ifname, d->last_error[0] ? ": " : "", d->last_error);
	*res = endpoint_json(d, a);
	return 0;
}

static int op_cni_add(struct segd *d, json_t *args, json_t **res, char *err, size_t errlen)
{
	struct segd_cni_pod p, *nv;
	ssize_t old;
	int r;

	r = segd_cni_pod_parse(args, &p, err, errlen);
	if (r)
		return r;
	old = cni_find(d, p.container_id);
	if (old >= 0)
		cni_remove(d, old);
	nv = realloc(d->cni, (d->ncni + 1) * sizeof(*nv));
	if (!nv) {
		segd_cni_pod_free(&p);
		return -ENOMEM;
	}
	d->cni = nv;
	d->cni[d->ncni++] = p;
	r = segd_sync_now(d, true, err, errlen); /* its interface is new: rescan */
	if (!r)
		r = cni_ready(d, &d->cni[d->ncni - 1], res, err, errlen);
	if (r) {
		cni_remove(d, d->ncni - 1);
		d->dirty_manifests = true;
	}
	segd_state_save(d);
	return r;
}

static int op_cni_del(struct segd *d, json_t *args, json_t **res, char *err, size_t errlen)
{
	const char *cid = json_string_value(json_object_get(args, "container_id"));
	ssize_t i;

	if (!cid)
		return ERR(-EINVAL, "cni-del needs container_id");
	i = cni_find(d, cid);
	if (i < 0)
		return 0; /* DEL is idempotent */
	cni_remove(d, i);
	segd_state_save(d);
	segd_sync_now(d, false, err, errlen); /* a failure here is the node's, in status */
	*res = json_pack("{s:s}", "container_id", cid);
	return 0;
}

static int op_cni_check(struct segd *d, json_t *args, json_t **res, char *err, size_t errlen)
{
	const char *cid = json_string_value(json_object_get(args, "container_id"));
	ssize_t i = cid ? cni_find(d, cid) : -1;

	if (i < 0)
		return ERR(-ENOENT, "container %s is not registered", cid ?: "(none given)");
	return cni_ready(d, &d->cni[i], res, err, errlen);
}

static int op_flow_list(struct segd *d, json_t *args, json_t **res, char *err, size_t errlen)
{
	return segd_export_flow_list(d->exp, args, res, err, errlen);
}

static int op_status(struct segd *d, json_t *args, json_t **res, char *err, size_t errlen)
{
	*res = segd_status_json(d);
	return 0;
}

/* ---- dispatch ------------------------------------------------------------------------------ */

typedef int (*op_fn)(struct segd *d, json_t *args, json_t **res, char *err, size_t errlen);

static const struct {
	const char *name;
	op_fn fn;
} ops[] = {
	{ "status", op_status },
	{ "apply", op_apply },
	{ "delete", op_delete },
	{ "endpoint-list", op_endpoint_list },
	{ "endpoint-get", op_endpoint_get },
	{ "identity-list", op_identity_list },
	{ "identity-get", op_identity_get },
	{ "policy-list", op_policy_list },
	{ "policy-get", op_policy_get },
	{ "policy-test", op_policy_test },
	{ "cni-add", op_cni_add },
	{ "cni-del", op_cni_del },
	{ "cni-check", op_cni_check },
	{ "flow-list", op_flow_list },
};

int segd_ctl_handler(void *ctx, const char *op, json_t *args, json_t **result, char *err,
		     size_t errlen)
{
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!strcmp(ops[i].name, op)) {
			int r = ops[i].fn(ctx, args, result, err, errlen);

			if (r && !err[0])
				snprintf(err, errlen, "%s: %s", op, strerror(-r));
			return r;
		}
	return ERR(-EOPNOTSUPP, "unknown operation '%s'", op);
}
