// SPDX-License-Identifier: GPL-2.0-only
/*
 * seg-topology: the flow collector and service map. See topology.h for the
 * parts; docs/flows.md for the wire format, the counting rule and scaling.
 */
#include "topology.h"
#include "cli/opts.h"
#include "log.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

struct topo_opts {
	const char *grpc;
	const char *http;
	uint32_t max_edges, max_flows, max_workloads, watch_queue;
	const char *tls_cert, *tls_key, *tls_client_ca;
	const char *ports_file;
	bool no_columns;
	bool verbose;
};

static const struct topo_opts topo_defaults = {
	.grpc = FLOW_DEFAULT_GRPC,
	.http = FLOW_DEFAULT_HTTP,
	.max_edges = 100000,
	.max_flows = 100000,
	.max_workloads = 65536,
	.watch_queue = 65536,
};

static const struct opt topo_optv[] = {
	OPT_STR(0, "grpc", struct topo_opts, grpc, "ADDR",
		"gRPC listen address (Export, Query, Watch); port 0 = any free port"),
	OPT_STR(0, "http", struct topo_opts, http, "ADDR",
		"HTTP listen address (page, /api/v1/graph, /api/v1/flows, /graph.dot, /healthz)"),
	OPT_U32(0, "max-edges", struct topo_opts, max_edges, "N",
		"edges held; the least recently updated is evicted (counted)", .min = 16,
		.max = 100000000),
	OPT_U32(0, "max-flows", struct topo_opts, max_flows, "N",
		"recent flow records held (ring; windows and the flow table)", .min = 16,
		.max = 100000000),
	OPT_U32(0, "max-workloads", struct topo_opts, max_workloads, "N",
		"workloads held; more are shown as world (counted)", .min = 16, .max = 10000000),
	OPT_U32(0, "watch-queue", struct topo_opts, watch_queue, "N",
		"records queued per Watch stream before drops (counted, sent in the next batch)",
		.min = 1, .max = 10000000),
	OPT_STR(0, "tls-cert", struct topo_opts, tls_cert, "PEM",
		"server certificate chain: gRPC over TLS", .defstr = "insecure"),
	OPT_STR(0, "tls-key", struct topo_opts, tls_key, "PEM", "server private key"),
	OPT_STR(0, "tls-client-ca", struct topo_opts, tls_client_ca, "PEM",
		"require client certificates signed by this CA", .defstr = "none"),
	OPT_STR(0, "ports-file", struct topo_opts, ports_file, "FILE",
		"write \"grpc PORT\" and \"http PORT\" here once listening (for port 0)"),
	OPT_BOOL(0, "no-columns", struct topo_opts, no_columns,
		 "do not announce columnar batches: exporters send Flow messages, as to a service "
		 "older than them (columns sent anyway are still accepted)"),
	OPT_BOOL('v', "verbose", struct topo_opts, verbose, "debug messages"),
	OPT_END,
};

static const int no_leaf_opts;

static const struct cmd topo_root = {
	.defaults = &no_leaf_opts,
	.opts_size = sizeof(no_leaf_opts),
	.name = "seg-topology",
	.summary = "seg's flow collector and service map",
	.description =
		"Nodes (segd's exporter) stream flow records over gRPC (seg.flow.v1.Flows/Export);\n"
		"the service aggregates them into a service graph: workload -> workload edges by\n"
		"port and protocol with allowed/denied/audit counts, bytes and first/last seen.\n"
		"segctl reads it (Query, Watch); people read the web page: the graph laid out by\n"
		"Graphviz, edges coloured by verdict, the flow table, filters by namespace, verdict\n"
		"and window (5 min, 1 h, all), auto-refresh.\n"
		"\n"
		"Memory is bounded by --max-edges, --max-flows and --max-workloads; whatever is\n"
		"evicted is counted and shown. SIGTERM/SIGINT stop it.",
	.examples = "seg-topology\n"
		    "seg-topology --grpc 0.0.0.0:4245 --tls-cert srv.pem --tls-key srv.key\n"
		    "seg-topology --grpc 127.0.0.1:0 --http 127.0.0.1:0 --ports-file ports",
};

static int write_ports(const char *path, int grpc_port, int http_port)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f)
		return log_err(-errno, "open %s", tmp);
	fprintf(f, "grpc %d\nhttp %d\n", grpc_port, http_port);
	if (fclose(f) || rename(tmp, path))
		return log_err(-errno, "write %s", path);
	return 0;
}

int main(int argc, char **argv)
{
	struct topo_opts o = topo_defaults;
	struct opts_globals g = { .opts = topo_optv, .dst = &o };
	struct topo_limits lim;
	struct topo_rpc_opts ro;
	struct opts_parsed res;
	struct topo_rpc *rpc = NULL;
	struct topo_http *http = NULL;
	struct topo *t = NULL;
	sigset_t set;
	int r, sig, err;

	log_init("seg-topology", LOG_LVL_INFO);
	r = opts_parse(&topo_root, &g, argc, argv, &res, stdout, stderr);
	if (r != OPTS_RUN)
		return r;
	opts_parsed_free(&res);
	if (o.verbose)
		log_set_level(LOG_LVL_DEBUG);
	/* signals are waited for, not handled: block them in every thread */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	lim = (struct topo_limits){ o.max_edges, o.max_flows, o.max_workloads };
	t = topo_new(&lim);
	if (!t) {
		log_error("out of memory for %u edges and %u flows", o.max_edges, o.max_flows);
		return OPTS_EXIT_FAIL;
	}
	ro = (struct topo_rpc_opts){ .addr = o.grpc,
				     .watch_queue = o.watch_queue,
				     .no_columns = o.no_columns,
				     .tls = { .ca_file = o.tls_client_ca,
					      .cert_file = o.tls_cert,
					      .key_file = o.tls_key } };
	err = topo_rpc_start(&rpc, t, &ro);
	if (!err)
		err = topo_http_start(&http, t, o.http);
	if (!err && o.ports_file)
		err = write_ports(o.ports_file, topo_rpc_port(rpc), topo_http_port(http));
	if (err) {
		r = OPTS_EXIT_FAIL;
		goto out;
	}
	log_info("gRPC on %s (port %d)%s, HTTP on http://%s (port %d)", o.grpc, topo_rpc_port(rpc),
		 o.tls_cert ? " with TLS" : "", o.http, topo_http_port(http));
	if (sigwait(&set, &sig) == 0)
		log_info("%s: stopping", strsignal(sig));
	r = OPTS_EXIT_OK;
out:
	topo_http_stop(http);
	topo_rpc_stop(rpc);
	topo_free(t);
	return r;
}
