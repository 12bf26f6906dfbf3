// SPDX-License-Identifier: GPL-2.0-only
/*
 * seg-topology HTTP (libmicrohttpd, one internal thread): the page, JSON,
 * DOT and SVG of the graph, /healthz. Each handler holds the store's lock
 * while it renders.
 */
#include "topology.h"
#include "log.h"

#include <arpa/inet.h>
#include <graphviz/gvc.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

struct topo_http {
	struct MHD_Daemon *d;
	struct topo *t;
	GVC_t *gvc; /* for the life of the server: see topo_view.gvc */
	int port;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *type,
			     char *body, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (!body) {
		code = MHD_HTTP_INTERNAL_SERVER_ERROR;
		body = strdup("out of memory\n");
		type = "text/plain";
		len = body ? strlen(body) : 0;
	}
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result text(struct MHD_Connection *conn, unsigned code, const char *msg)
{
	char *s = strdup(msg);

	return reply(conn, code, "text/plain; charset=utf-8", s, s ? strlen(s) : 0);
}

static const char *arg(struct MHD_Connection *conn, const char *k)
{
	return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, k);
}

/* Prometheus text: the store's counters and sizes. */
static char *metrics(struct topo *t)
{
	static const char *const names[][2] = {
		{ "batches_total", "batches applied" },
		{ "records_total", "flow records applied" },
		{ "duplicate_batches_total", "batches skipped: already applied" },
		{ "rejected_messages_total", "Export messages that were not a Batch" },
		{ "sender_dropped_records_total", "records the exporters reported dropping" },
		{ "evicted_edges_total", "edges evicted over --max-edges" },
		{ "evicted_flows_total", "records evicted from the ring over --max-flows" },
		{ "workloads_over_cap_total", "workloads shown as world over --max-workloads" },
		{ "edges", "edges held" },
		{ "flows", "records held" },
		{ "workloads", "workloads held" },
	};
	struct topo_stats st;
	uint64_t v[11];
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	topo_get_stats(t, &st);
	v[0] = st.batches, v[1] = st.records, v[2] = st.duplicates, v[3] = st.rejected;
	v[4] = st.dropped_by_senders, v[5] = st.evicted_edges, v[6] = st.evicted_flows;
	v[7] = st.workloads_over_cap, v[8] = st.edges, v[9] = st.flows, v[10] = st.workloads;
	for (size_t i = 0; i < 11; i++)
		fprintf(f,
			"# HELP seg_topology_%s %s\n# TYPE seg_topology_%s %s\nseg_topology_%s %llu\n",
			names[i][0], names[i][1], names[i][0], i < 8 ? "counter" : "gauge",
			names[i][0], (unsigned long long)v[i]);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_len, void **state)
{
	struct topo_http *h = cls;
	struct topo_view v;
	const char *type = "application/json";
	char *body = NULL;
	size_t len = 0;

	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n");
	if (!strcmp(url, "/healthz"))
		return text(conn, MHD_HTTP_OK, "ok\n");
	if (!strcmp(url, "/metrics")) {
		body = metrics(h->t);
		return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4", body,
			     body ? strlen(body) : 0);
	}
	if (topo_view_parse(&v, arg(conn, "namespace"), arg(conn, "verdict"), arg(conn, "window"),
			    arg(conn, "pod"), arg(conn, "node"), arg(conn, "limit")))
		return text(conn, MHD_HTTP_BAD_REQUEST,
			    "bad filter: verdict=allow|deny|audit, window=5m|1h|all|<n>[smhd], "
			    "limit=1..100000\n");
	v.gvc = h->gvc;
	topo_lock(h->t);
	if (!strcmp(url, "/")) {
		const char *frag = arg(conn, "fragment");

		body = topo_render_page(h->t, &v, frag && !strcmp(frag, "1"));
		type = "text/html; charset=utf-8";
	} else if (!strcmp(url, "/api/v1/graph")) {
		body = topo_render_graph_json(h->t, &v);
	} else if (!strcmp(url, "/api/v1/flows")) {
		body = topo_render_flows_json(h->t, &v);
	} else if (!strcmp(url, "/graph.dot")) {
		body = topo_render_dot(h->t, &v);
		type = "text/vnd.graphviz; charset=utf-8";
	} else if (!strcmp(url, "/graph.svg")) {
		char *dot = topo_render_dot(h->t, &v);

		body = dot ? topo_render_svg(h->gvc, dot, &len) : NULL;
		free(dot);
		type = "image/svg+xml";
	} else {
		topo_unlock(h->t);
		return text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
	}
	topo_unlock(h->t);
	if (body && !len)
		len = strlen(body);
	return reply(conn, MHD_HTTP_OK, type, body, len);
}

static int parse_addr(const char *addr, struct sockaddr_in *sa)
{
	const char *colon = strrchr(addr, ':');
	char host[64];
	char *end;
	unsigned long port;

	if (!colon || (size_t)(colon - addr) >= sizeof(host))
		return -EINVAL;
	memcpy(host, addr, colon - addr);
	host[colon - addr] = '\0';
	port = strtoul(colon + 1, &end, 10);
	if (*end || port > 65535)
		return -EINVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(port);
	if (inet_pton(AF_INET, *host ? host : "0.0.0.0", &sa->sin_addr) != 1)
		return -EINVAL;
	return 0;
}

int topo_http_start(struct topo_http **out, struct topo *t, const char *addr)
{
	struct topo_http *h;
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *info;

	if (parse_addr(addr, &sa))
		return log_err(-EINVAL, "--http %s: want IPv4:PORT", addr);
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->t = t;
	h->gvc = gvContext();
	if (!h->gvc) {
		free(h);
		return log_err(-ENOMEM, "Graphviz context");
	}
	h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
				handle, h, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_CONNECTION_TIMEOUT,
				(unsigned int)30, MHD_OPTION_END);
	if (!h->d) {
		gvFreeContext(h->gvc);
		free(h);
		return log_err(-EADDRINUSE, "HTTP listen on %s", addr);
	}
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info ? info->port : ntohs(sa.sin_port);
	*out = h;
	return 0;
}

int topo_http_port(const struct topo_http *h)
{
	return h->port;
}

void topo_http_stop(struct topo_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d);
	gvFreeContext(h->gvc);
	free(h);
}
