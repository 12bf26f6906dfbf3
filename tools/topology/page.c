// SPDX-License-Identifier: GPL-2.0-only
/*
 * seg-topology web page: filters, the service map (SVG laid out by
 * Graphviz on the server) and the flow table. Inline CSS and JS only; the
 * same handler serves the whole page and, with fragment=1, the part the
 * auto-refresh replaces.
 */
#include "topology.h"
#include "addr.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static void esc(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '&':
			fputs("&amp;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

static const char css[] =
	"body{font:14px/1.4 system-ui,Helvetica,Arial,sans-serif;margin:0;color:#1d2733;"
	"background:#fafbfc}"
	"header{background:#1d2733;color:#fff;padding:10px 18px;display:flex;gap:18px;"
	"align-items:baseline}header h1{font-size:18px;margin:0}#stats{color:#b8c4d0;font-size:12px}"
	"form{padding:10px 18px;background:#eef1f5;display:flex;gap:14px;align-items:center;"
	"flex-wrap:wrap}form input,form select{font:inherit;padding:2px 4px}"
	"#graph{padding:12px 18px;overflow:auto;background:#fff;border-bottom:1px solid #dde3ea}"
	"#graph svg{max-width:100%;height:auto}"
	".legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;"
	"width:22px;height:3px;vertical-align:middle;margin-right:4px}"
	"table{border-collapse:collapse;margin:12px 18px;font-size:12px;min-width:60%}"
	"th,td{border-bottom:1px solid #e3e8ee;padding:3px 8px;text-align:left;white-space:nowrap}"
	"th{background:#f1f4f8}td.verdict-deny{color:#d62828;font-weight:600}"
	"td.verdict-audit{color:#f08c00;font-weight:600}td.verdict-allow{color:#2e9e44}"
	".empty{padding:30px 18px;color:#6b7785}";

static const char js[] =
	"(function(){var f=document.getElementById('filters'),a=document.getElementById('auto');"
	"function q(){var p=new URLSearchParams(new FormData(f));p.set('fragment','1');"
	"return '/?'+p.toString();}"
	"function refresh(){if(!a.checked)return;fetch(q()).then(function(r){return r.text();})"
	".then(function(h){document.getElementById('content').innerHTML=h;"
	"var b=document.body.dataset;b.refreshed=(+b.refreshed||0)+1;}).catch(function(){});}"
	"setInterval(refresh,5000);"
	"f.addEventListener('change',function(){f.submit();});})();";

static void select_opt(FILE *f, const char *value, const char *label, const char *cur)
{
	fputs("<option value=\"", f);
	esc(f, value);
	fprintf(f, "\"%s>", !strcmp(value, cur ?: "") ? " selected" : "");
	esc(f, label);
	fputs("</option>", f);
}

static void flow_row(FILE *f, const struct topo *t, const struct topo_flow *x)
{
	ProtobufCBinaryData sa = { .len = x->addr_len, .data = (uint8_t *)x->src };
	ProtobufCBinaryData da = { .len = x->addr_len, .data = (uint8_t *)x->dst };
	char ab[64], pb[16], tb[32];
	const struct topo_wl *s = topo_wl(t, x->src_wl), *d = topo_wl(t, x->dst_wl);
	time_t sec = x->time_ns / 1000000000ull;
	struct tm tm;

	gmtime_r(&sec, &tm);
	strftime(tb, sizeof(tb), "%H:%M:%S", &tm);
	fprintf(f, "<tr class=\"flow verdict-%s\"><td>%s</td><td>", flow_verdict_name(x->verdict),
		tb);
	esc(f, topo_str(t, x->node));
	fputs("</td><td>", f);
	if (s) {
		esc(f, s->ns);
		fputc('/', f);
		esc(f, s->name);
	} else {
		fputs("world", f);
	}
	fprintf(f, " <small>%s:%u</small></td><td>", flow_addr_str(&sa, ab, sizeof(ab)), x->sport);
	if (d) {
		esc(f, d->ns);
		fputc('/', f);
		esc(f, d->name);
	} else {
		fputs("world", f);
	}
	fprintf(f, " <small>%s:%u</small></td><td>%s</td><td>%s</td>",
		flow_addr_str(&da, ab, sizeof(ab)), x->dport,
		flow_proto_name(x->proto, pb, sizeof(pb)),
		x->dir == SEG_DIR_EGRESS ? "egress" : "ingress");
	fprintf(f, "<td class=\"verdict-%s\">%s</td><td>", flow_verdict_name(x->verdict),
		flow_verdict_name(x->verdict));
	esc(f, seg_reason_str(x->reason));
	fputs("</td><td>", f);
	esc(f, topo_str(t, x->policy));
	if (x->rule_id)
		fprintf(f, " #%u", x->rule_id);
	fprintf(f, "</td><td>%llu</td></tr>\n", (unsigned long long)(x->bytes_fwd + x->bytes_rev));
}

static void fragment(FILE *f, struct topo *t, const struct topo_view *v)
{
	char *dot = topo_render_dot(t, v), *svg = NULL, *p;
	size_t len = 0, lim = v->limit ? v->limit : 200, n;
	const struct topo_flow **fv = malloc(lim * sizeof(*fv));
	struct topo_filter flt = v->flt;

	fputs("<div id=\"graph\"><div class=\"legend\"><span><i style=\"background:#2e9e44\"></i>"
	      "allowed</span><span><i style=\"background:#d62828\"></i>denied</span><span>"
	      "<i style=\"background:#f08c00\"></i>audit</span></div>\n",
	      f);
	/* libgvc is not thread-safe: the HTTP server runs one thread */
	svg = dot && strstr(dot, "->") ? topo_render_svg(v->gvc, dot, &len) : NULL;
	p = svg ? strstr(svg, "<svg") : NULL;
	if (p)
		fputs(p, f);
	else
		fputs("<p class=\"empty\">No flows match (yet).</p>", f);
	fputs("</div>\n<table id=\"flows\"><thead><tr><th>time (UTC)</th><th>node</th><th>source</th>"
	      "<th>destination</th><th>proto</th><th>dir</th><th>verdict</th><th>reason</th>"
	      "<th>policy / rule</th><th>bytes</th></tr></thead><tbody>\n",
	      f);
	if (v->window_ns && !flt.since_ns)
		flt.since_ns = flow_now_ns() - v->window_ns;
	n = fv ? topo_flows(t, &flt, lim, fv) : 0;
	for (size_t i = n; i-- > 0;)
		flow_row(f, t, fv[i]);
	fputs("</tbody></table>\n", f);
	free(fv);
	free(svg);
	free(dot);
}

char *topo_render_page(struct topo *t, const struct topo_view *v, bool frag)
{
	static const char *const windows[][2] = { { "5m", "last 5 min" },
						  { "1h", "last hour" },
						  { "all", "all" } };
	char *buf = NULL;
	size_t len = 0;
	struct topo_stats st;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	if (frag) {
		fragment(f, t, v);
		goto out;
	}
	topo_unlock(t);
	topo_get_stats(t, &st);
	topo_lock(t);
	fprintf(f,
		"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		"<title>seg service map</title><style>%s</style></head><body>\n",
		css);
	fprintf(f,
		"<header><h1>seg service map</h1><span id=\"stats\">%llu workloads, %llu edges, "
		"%llu flows held; %llu records from %llu batches; evicted: %llu edges, %llu flows; "
		"rejected messages: %llu</span></header>\n",
		(unsigned long long)st.workloads, (unsigned long long)st.edges,
		(unsigned long long)st.flows, (unsigned long long)st.records,
		(unsigned long long)st.batches, (unsigned long long)st.evicted_edges,
		(unsigned long long)st.evicted_flows, (unsigned long long)st.rejected);
	fputs("<form id=\"filters\" method=\"get\" action=\"/\"><label>namespace <input "
	      "name=\"namespace\" placeholder=\"all\" value=\"",
	      f);
	esc(f, v->flt.ns);
	fputs("\"></label><label>verdict <select name=\"verdict\">", f);
	select_opt(f, "", "any", v->verdict_name);
	select_opt(f, "allow", "allowed", v->verdict_name);
	select_opt(f, "deny", "denied", v->verdict_name);
	select_opt(f, "audit", "audit", v->verdict_name);
	fputs("</select></label><label>window <select name=\"window\">", f);
	for (size_t i = 0; i < 3; i++)
		select_opt(f, windows[i][0], windows[i][1], v->window_name);
	fputs("</select></label><button type=\"submit\">apply</button>"
	      "<label><input type=\"checkbox\" id=\"auto\" checked> auto-refresh (5 s)</label>"
	      "<a href=\"/graph.dot\">DOT</a><a href=\"/api/v1/graph\">graph JSON</a>"
	      "<a href=\"/api/v1/flows\">flows JSON</a></form>\n<div id=\"content\">\n",
	      f);
	fragment(f, t, v);
	fprintf(f, "</div>\n<script>%s</script>\n</body></html>\n", js);
out:
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}
