// SPDX-License-Identifier: GPL-2.0-only
/*
 * seg-topology rendering: the graph as JSON, DOT and SVG (Graphviz, laid
 * out server-side), the flows as JSON, and the HTML page (inline CSS and
 * JS only: the page works with no other asset and no network).
 */
#include "topology.h"
#include "addr.h"

#include <errno.h>
#include <graphviz/cgraph.h>
#include <graphviz/gvc.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WORLD "world"

static const char *wl_name(const struct topo *t, uint32_t id, char *buf, size_t len)
{
	const struct topo_wl *w = topo_wl(t, id);

	if (!w)
		return WORLD;
	snprintf(buf, len, "%s/%s", w->ns, w->name);
	return buf;
}

static const char *time_str(uint64_t ns, char *buf, size_t len) /* len >= 64 */
{
	time_t s = ns / 1000000000ull;
	struct tm tm;

	if (!ns || !gmtime_r(&s, &tm)) {
		snprintf(buf, len, "-");
		return buf;
	}
	len = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + len, 8, ".%03uZ", (unsigned)(ns % 1000000000ull / 1000000) % 1000);
	return buf;
}

static long view_edges(struct topo *t, const struct topo_view *v, struct topo_edge **e,
		       bool *complete)
{
	return topo_graph(t, &v->flt, v->window_ns, e, complete);
}

/* ---- DOT --------------------------------------------------------------------- */

static void dot_id(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static const struct {
	const char *verdict, *color;
} verdict_style[] = { { "allow", "#2e9e44" }, { "deny", "#d62828" }, { "audit", "#f08c00" } };

static void dot_edge(FILE *f, const struct topo *t, const struct topo_edge *e, int vi,
		     uint64_t count)
{
	char a[600], b[600], pb[16];

	if (!count)
		return;
	fputs("  ", f);
	dot_id(f, wl_name(t, e->src, a, sizeof(a)));
	fputs(" -> ", f);
	dot_id(f, wl_name(t, e->dst, b, sizeof(b)));
	fprintf(f,
		" [color=\"%s\", fontcolor=\"%s\", class=\"verdict-%s\", id=\"e-%s-%s-%u-%s\", "
		"label=\"%u/%s %s %llu\", tooltip=\"%s -> %s %u/%s: %llu %s\"];\n",
		verdict_style[vi].color, verdict_style[vi].color, verdict_style[vi].verdict, a, b,
		e->port, verdict_style[vi].verdict, e->port,
		flow_proto_name(e->proto, pb, sizeof(pb)), verdict_style[vi].verdict,
		(unsigned long long)count, a, b, e->port, flow_proto_name(e->proto, pb, sizeof(pb)),
		(unsigned long long)count, verdict_style[vi].verdict);
}

/* Workloads of the edges, by namespace (clusters), then the edges: one
 * line per verdict present, coloured by it. */
char *topo_render_dot(struct topo *t, const struct topo_view *v)
{
	struct topo_edge *e = NULL;
	char *buf = NULL, nb[600];
	size_t len = 0;
	bool complete, world = false;
	uint8_t *seen = NULL;
	long n = view_edges(t, v, &e, &complete);
	FILE *f;

	if (n < 0)
		return NULL;
	seen = calloc(topo_n_wls(t) + 1, 1);
	f = open_memstream(&buf, &len);
	if (!seen || !f) {
		free(seen);
		free(e);
		return NULL;
	}
	for (long i = 0; i < n; i++) {
		seen[e[i].src] = seen[e[i].dst] = 1;
		world |= !e[i].src || !e[i].dst;
	}
	fputs("digraph seg {\n  graph [rankdir=LR, ranksep=1.1, fontname=\"Helvetica\", bgcolor=\"transparent\"];\n"
	      "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#eef3fb\", "
	      "fontname=\"Helvetica\", fontsize=11];\n  edge [fontname=\"Helvetica\", fontsize=9];\n",
	      f);
	/* one cluster per namespace, in order of first appearance */
	for (uint32_t i = 1; i <= topo_n_wls(t); i++) {
		const struct topo_wl *w = topo_wl(t, i);

		if (seen[i] != 1)
			continue;
		fputs("  subgraph ", f);
		snprintf(nb, sizeof(nb), "cluster_%s", w->ns);
		dot_id(f, nb);
		fputs(" {\n    label=", f);
		dot_id(f, w->ns);
		fputs("; style=\"rounded,dashed\"; labelloc=\"b\"; labeljust=\"r\"; fontcolor=\"#667788\"; color=\"#8899aa\"; class=\"namespace\";\n",
		      f);
		for (uint32_t j = i; j <= topo_n_wls(t); j++) {
			const struct topo_wl *x = topo_wl(t, j);

			if (seen[j] != 1 || strcmp(x->ns, w->ns))
				continue;
			seen[j] = 2;
			fputs("    ", f);
			dot_id(f, wl_name(t, j, nb, sizeof(nb)));
			fputs(" [label=", f);
			dot_id(f, x->name);
			fputs(", class=\"workload\", id=", f);
			snprintf(nb, sizeof(nb), "wl-%s-%s", x->ns, x->name);
			dot_id(f, nb);
			fputs("];\n", f);
		}
		fputs("  }\n", f);
	}
	if (world)
		fputs("  \"" WORLD
		      "\" [shape=ellipse, fillcolor=\"#f4f4f4\", class=\"workload world\", "
		      "id=\"wl-world\"];\n",
		      f);
	for (long i = 0; i < n; i++) {
		dot_edge(f, t, &e[i], 0, e[i].allowed);
		dot_edge(f, t, &e[i], 1, e[i].denied);
		dot_edge(f, t, &e[i], 2, e[i].audit);
	}
	fputs("}\n", f);
	free(seen);
	free(e);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

char *topo_render_svg(void *ctx, const char *dot, size_t *len)
{
	GVC_t *gvc = ctx;
	Agraph_t *g = NULL;
	char *data = NULL, *out = NULL;
	unsigned int n = 0;

	if (!gvc)
		return NULL;
	g = agmemread(dot);
	if (!g)
		goto out;
	if (gvLayout(gvc, g, "dot"))
		goto out;
	if (!gvRenderData(gvc, g, "svg", &data, &n) && data) {
		out = malloc(n + 1);
		if (out) {
			memcpy(out, data, n);
			out[n] = '\0';
			*len = n;
		}
	}
	gvFreeRenderData(data);
	gvFreeLayout(gvc, g);
out:
	if (g)
		agclose(g);
	return out;
}

/* ---- JSON ------------------------------------------------------------------------ */

static json_t *labels_json(const struct topo_wl *w)
{
	json_t *o = json_object();

	for (uint32_t i = 0; w && i < w->n_labels; i++) {
		const char *eq = strchr(w->labels[i], '=');
		char k[256];

		if (!eq || (size_t)(eq - w->labels[i]) >= sizeof(k))
			continue;
		memcpy(k, w->labels[i], eq - w->labels[i]);
		k[eq - w->labels[i]] = '\0';
		json_object_set_new(o, k, json_string(eq + 1));
	}
	return o;
}

static char *dump(json_t *root)
{
	char *s = root ? json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;

	json_decref(root);
	return s;
}

static json_t *stats_json(struct topo *t)
{
	struct topo_stats st;

	topo_unlock(t);
	topo_get_stats(t, &st);
	topo_lock(t);
	return json_pack("{sI sI sI sI sI sI sI sI sI sI sI}", "batches", (json_int_t)st.batches,
			 "records", (json_int_t)st.records, "duplicate_batches",
			 (json_int_t)st.duplicates, "rejected_messages", (json_int_t)st.rejected,
			 "dropped_by_senders", (json_int_t)st.dropped_by_senders, "evicted_edges",
			 (json_int_t)st.evicted_edges, "evicted_flows",
			 (json_int_t)st.evicted_flows, "workloads_over_cap",
			 (json_int_t)st.workloads_over_cap, "edges", (json_int_t)st.edges, "flows",
			 (json_int_t)st.flows, "workloads", (json_int_t)st.workloads);
}

char *topo_render_graph_json(struct topo *t, const struct topo_view *v)
{
	struct topo_edge *e = NULL;
	bool complete;
	long n = view_edges(t, v, &e, &complete);
	json_t *root, *nodes, *edges;
	uint8_t *seen;
	char a[600], b[600], pb[16], t1[64], t2[64];

	if (n < 0)
		return NULL;
	seen = calloc(topo_n_wls(t) + 1, 1);
	root = json_object();
	nodes = json_array();
	edges = json_array();
	if (!seen || !root || !nodes || !edges) {
		free(seen);
		free(e);
		json_decref(root);
		json_decref(nodes);
		json_decref(edges);
		return NULL;
	}
	json_object_set_new(root, "window", json_string(v->window_name ?: "all"));
	json_object_set_new(root, "complete", json_boolean(complete));
	for (long i = 0; i < n; i++) {
		uint32_t ends[2] = { e[i].src, e[i].dst };

		for (int k = 0; k < 2; k++) {
			const struct topo_wl *w = topo_wl(t, ends[k]);

			if (seen[ends[k]])
				continue;
			seen[ends[k]] = 1;
			json_array_append_new(
				nodes, json_pack("{ss ss ss so sI}", "id",
						 wl_name(t, ends[k], a, sizeof(a)), "namespace",
						 w ? w->ns : "", "name", w ? w->name : WORLD,
						 "labels", labels_json(w), "identity",
						 (json_int_t)(w ? w->identity : SEG_ID_WORLD)));
		}
		json_array_append_new(
			edges,
			json_pack("{ss ss si ss sI sI sI sI sI ss ss sI sI}", "src",
				  wl_name(t, e[i].src, a, sizeof(a)), "dst",
				  wl_name(t, e[i].dst, b, sizeof(b)), "port", e[i].port, "proto",
				  flow_proto_name(e[i].proto, pb, sizeof(pb)), "allowed",
				  (json_int_t)e[i].allowed, "denied", (json_int_t)e[i].denied,
				  "audit", (json_int_t)e[i].audit, "bytes", (json_int_t)e[i].bytes,
				  "packets", (json_int_t)e[i].packets, "first_seen",
				  time_str(e[i].first_ns, t1, sizeof(t1)), "last_seen",
				  time_str(e[i].last_ns, t2, sizeof(t2)), "first_seen_ns",
				  (json_int_t)e[i].first_ns, "last_seen_ns",
				  (json_int_t)e[i].last_ns));
	}
	json_object_set_new(root, "nodes", nodes);
	json_object_set_new(root, "edges", edges);
	json_object_set_new(root, "stats", stats_json(t));
	free(seen);
	free(e);
	return dump(root);
}

static json_t *end_json(const struct topo *t, const struct topo_flow *f, bool src)
{
	ProtobufCBinaryData a = { .len = f->addr_len, .data = (uint8_t *)(src ? f->src : f->dst) };
	char ab[64], wb[600];
	uint32_t wl = src ? f->src_wl : f->dst_wl;

	return json_pack("{ss si ss sI}", "addr", flow_addr_str(&a, ab, sizeof(ab)), "port",
			 src ? f->sport : f->dport, "workload",
			 wl ? wl_name(t, wl, wb, sizeof(wb)) : "", "identity",
			 (json_int_t)(src ? f->src_id : f->dst_id));
}

json_t *topo_flow_json(const struct topo *t, const struct topo_flow *f);
json_t *topo_flow_json(const struct topo *t, const struct topo_flow *f)
{
	char tb[64], pb[16];

	return json_pack(
		"{ss sI ss ss so so ss ss ss ss sI ss sI ss sI sI sI sI sI si si}", "time",
		time_str(f->time_ns, tb, sizeof(tb)), "time_ns", (json_int_t)f->time_ns, "node",
		topo_str(t, f->node), "kind", flow_kind_name(f->kind), "src", end_json(t, f, true),
		"dst", end_json(t, f, false), "proto", flow_proto_name(f->proto, pb, sizeof(pb)),
		"direction", f->dir == SEG_DIR_EGRESS ? "egress" : "ingress", "verdict",
		flow_verdict_name(f->verdict), "policy", topo_str(t, f->policy), "rule_id",
		(json_int_t)f->rule_id, "rule", topo_str(t, f->rule), "reason",
		(json_int_t)f->reason, "reason_text", seg_reason_str(f->reason), "packets_fwd",
		(json_int_t)f->packets_fwd, "bytes_fwd", (json_int_t)f->bytes_fwd, "packets_rev",
		(json_int_t)f->packets_rev, "bytes_rev", (json_int_t)f->bytes_rev, "first_seen_ns",
		(json_int_t)f->first_ns, "tcp_flags_fwd", f->flags_fwd, "tcp_flags_rev",
		f->flags_rev);
}

char *topo_render_flows_json(struct topo *t, const struct topo_view *v)
{
	size_t lim = v->limit ? v->limit : 1000, n;
	const struct topo_flow **fv = malloc(lim * sizeof(*fv));
	json_t *root, *arr;

	if (!fv)
		return NULL;
	if (v->window_ns && !v->flt.since_ns) {
		struct topo_filter f = v->flt;

		f.since_ns = flow_now_ns() - v->window_ns;
		n = topo_flows(t, &f, lim, fv);
	} else {
		n = topo_flows(t, &v->flt, lim, fv);
	}
	arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		json_array_append_new(arr, topo_flow_json(t, fv[i]));
	free(fv);
	root = json_pack("{ss so}", "window", v->window_name ?: "all", "flows", arr);
	if (root)
		json_object_set_new(root, "stats", stats_json(t));
	return dump(root);
}

/* ---- views ------------------------------------------------------------------------- */

int topo_view_parse(struct topo_view *v, const char *ns, const char *verdict, const char *window,
		    const char *pod, const char *node, const char *limit)
{
	memset(v, 0, sizeof(*v));
	v->flt.ns = ns && *ns ? ns : NULL;
	v->flt.pod = pod && *pod ? pod : NULL;
	v->flt.node = node && *node ? node : NULL;
	v->verdict_name = "";
	v->window_name = "all";
	v->limit = 200;
	if (verdict && *verdict && strcmp(verdict, "any")) {
		int x = flow_verdict_parse(verdict);

		if (x < 0)
			return -EINVAL;
		v->flt.verdict = x;
		v->verdict_name = flow_verdict_name(x);
	}
	if (window && *window && strcmp(window, "all")) {
		if (flow_parse_duration(window, &v->window_ns) || !v->window_ns)
			return -EINVAL;
		v->window_name = window;
	}
	if (limit && *limit) {
		char *end;
		unsigned long l = strtoul(limit, &end, 10);

		if (*end || !l || l > 100000)
			return -EINVAL;
		v->limit = l;
	}
	return 0;
}
