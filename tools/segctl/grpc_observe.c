// SPDX-License-Identifier: GPL-2.0-only
/*
 * segctl observe --server ADDR (in the gRPC module): recent flows from the
 * topology service (Query), or with --follow new ones as they arrive
 * (Watch).
 */
#include "grpc_module.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

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

int segctl_grpc_observe(struct segctl *c, const struct segctl_observe_opts *o)
{
	Seg__Flow__V1__Filter f = SEG__FLOW__V1__FILTER__INIT;
	Seg__Flow__V1__QueryResponse *resp = NULL;
	struct flow_client *fc = NULL;
	int err;

	err = fill_filter(c, o, &f);
	if (!err)
		err = segctl_grpc_client(o->server, &o->tls, &fc);
	if (err)
		goto out;
	if (o->follow) {
		err = follow(c, fc, &f);
		goto out;
	}
	err = segctl_grpc_query(fc, SEG__FLOW__V1__QUERY_REQUEST__WHAT__WHAT_FLOWS, &f, o->last,
				&resp);
	if (err)
		goto out;
	out_list_begin(c->out, NULL);
	for (size_t i = 0; i < resp->n_flows; i++)
		segctl_flow_print(c->out, resp->workloads, resp->n_workloads, "", resp->flows[i]);
	out_list_end(c->out);
out:
	flow_msg_free(resp);
	flow_client_free(fc);
	return err;
}
