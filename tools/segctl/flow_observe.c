// SPDX-License-Identifier: GPL-2.0-only
/*
 * segctl observe --server ADDR: recent flows from the topology service
 * (Query), or --follow: new ones as they arrive (Watch). Without --server:
 * from segd (observe_local.c), printed by the same segctl_flow_print().
 */
#include "flow_cmds.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const verdict_names[] = { "any", "allow", "deny", "audit", NULL };

const struct segctl_observe_opts segctl_observe_defaults = { .last = 100 };
const struct opt segctl_observe_optv[] = {
	OPT_STR(0, "server", struct segctl_observe_opts, server, "ADDR",
		"the topology service (host:port)", .defstr = "segd on this node (--socket)"),
	OPT_BOOL('f', "follow", struct segctl_observe_opts, follow,
		 "keep printing new flows as they arrive"),
	OPT_STR('n', "namespace", struct segctl_observe_opts, ns, "NS", "either end in NS"),
	OPT_STR(0, "pod", struct segctl_observe_opts, pod, "NS/POD", "either end is this pod"),
	OPT_ENUM(0, "verdict", struct segctl_observe_opts, verdict, verdict_names,
		 "only this verdict"),
	OPT_STR(0, "since", struct segctl_observe_opts, since, "DURATION",
		"flows of the last DURATION (30s, 5m, 1h); with --follow, printed first"),
	OPT_U32(0, "last", struct segctl_observe_opts, last, "N",
		"without --follow: the N most recent flows", .min = 1, .max = 100000),
	OPT_STR(0, "tls-ca", struct segctl_observe_opts, tls.ca_file, "PEM",
		"TLS: CA of the service's certificate", .defstr = "insecure"),
	OPT_STR(0, "tls-cert", struct segctl_observe_opts, tls.cert_file, "PEM",
		"TLS: client certificate (if the service asks for one)"),
	OPT_STR(0, "tls-key", struct segctl_observe_opts, tls.key_file, "PEM", "TLS: client key"),
	OPT_END,
};

static int fill_filter(struct segctl *c, const struct segctl_observe_opts *o,
		       Seg__Flow__V1__Filter *f)
{
	uint64_t d;

	f->namespace_ = (char *)(o->ns ?: "");
	f->pod = (char *)(o->pod ?: "");
	if (o->pod && !strchr(o->pod, '/'))
		return segctl_usage(c, "--pod wants NS/POD, not '%s'", o->pod);
	f->verdict = o->verdict;
	if (o->since) {
		if (flow_parse_duration(o->since, &d) || !d)
			return segctl_usage(c,
					    "--since wants a duration like 30s, 5m or 1h, not '%s'",
					    o->since);
		f->since_ns = flow_now_ns() - d;
	}
	return 0;
}

static int follow(struct segctl *c, struct flow_client *fc, Seg__Flow__V1__Filter *f)
{
	Seg__Flow__V1__WatchRequest req = SEG__FLOW__V1__WATCH_REQUEST__INIT;
	int err;

	req.version = FLOW_PROTO_VERSION;
	req.filter = f;
	err = flow_watch_open(fc, &req);
	if (err)
		return SEGCTL_EREPORTED;
	out_stream(c->out, true);
	out_list_begin(c->out, NULL);
	for (;;) {
		FlowBatch *b;

		err = flow_watch_next(fc, &b, -1);
		if (err)
			break;
		if (b->dropped)
			log_warn("the service dropped %llu flows for this watch (too slow)",
				 (unsigned long long)b->dropped);
		for (size_t i = 0; i < b->n_flows; i++)
			segctl_flow_print(c->out, b->workloads, b->n_workloads, b->node,
					  b->flows[i]);
		flow_msg_free(b);
		fflush(stdout);
	}
	out_list_end(c->out);
	return err == -ENODATA ? 0 : SEGCTL_EREPORTED;
}

int segctl_observe_run(void *ctx, void *opts)
{
	const struct segctl_observe_opts *o = opts;
	struct segctl *c = ctx;
	Seg__Flow__V1__Filter f = SEG__FLOW__V1__FILTER__INIT;
	Seg__Flow__V1__QueryRequest req = SEG__FLOW__V1__QUERY_REQUEST__INIT;
	Seg__Flow__V1__QueryResponse *resp = NULL;
	struct flow_client_opts co = { .target = o->server, .tls = o->tls };
	struct flow_client *fc = NULL;
	int err;

	if (!o->server)
		return segctl_observe_local(c, o); /* observe_local.c */
	err = fill_filter(c, o, &f);
	if (err)
		return err;
	if (flow_client_new(&fc, &co))
		return SEGCTL_EREPORTED;
	if (o->follow) {
		err = follow(c, fc, &f);
		goto out;
	}
	req.version = FLOW_PROTO_VERSION;
	req.what = SEG__FLOW__V1__QUERY_REQUEST__WHAT__WHAT_FLOWS;
	req.filter = &f;
	req.limit = o->last;
	if (flow_query(fc, &req, &resp)) {
		err = SEGCTL_EREPORTED;
		goto out;
	}
	out_list_begin(c->out, NULL);
	for (size_t i = 0; i < resp->n_flows; i++)
		segctl_flow_print(c->out, resp->workloads, resp->n_workloads, "", resp->flows[i]);
	out_list_end(c->out);
out:
	flow_msg_free(resp);
	flow_client_free(fc);
	return err;
}
