// SPDX-License-Identifier: GPL-2.0-only
/*
 * segctl topology (in the gRPC module): the service graph from the topology
 * service (Query), one row per edge (table, JSON, YAML) or Graphviz DOT
 * with edges coloured by verdict.
 */
#include "grpc_module.h"

#include <stdio.h>
#include <string.h>

static void dot_edge(const char *a, const char *b, const Seg__Flow__V1__Edge *e,
		     const char *verdict, const char *color, uint64_t n)
{
	char pb[16];

	if (n)
		printf("  \"%s\" -> \"%s\" [color=\"%s\", fontcolor=\"%s\", label=\"%u/%s %s %llu\"];\n",
		       a, b, color, color, e->port, flow_proto_name(e->proto, pb, sizeof(pb)),
		       verdict, (unsigned long long)n);
}

static void print_dot(const Seg__Flow__V1__QueryResponse *r)
{
	char a[600], b[600];

	printf("digraph seg {\n  graph [rankdir=LR];\n  node [shape=box, style=rounded];\n");
	for (size_t i = 0; i < r->n_edges; i++) {
		const Seg__Flow__V1__Edge *e = r->edges[i];
		const char *s = flow_workload_str(r->workloads, r->n_workloads, e->src_workload, a,
						  sizeof(a));
		const char *d = flow_workload_str(r->workloads, r->n_workloads, e->dst_workload, b,
						  sizeof(b));

		s = e->src_workload ? s : "world";
		d = e->dst_workload ? d : "world";
		dot_edge(s, d, e, "allow", "#2e9e44", e->allowed);
		dot_edge(s, d, e, "deny", "#d62828", e->denied);
		dot_edge(s, d, e, "audit", "#f08c00", e->audit);
	}
	printf("}\n");
}

int segctl_grpc_topology(struct segctl *c, const struct segctl_topology_opts *o)
{
	Seg__Flow__V1__Filter f = SEG__FLOW__V1__FILTER__INIT;
	Seg__Flow__V1__QueryResponse *r = NULL;
	struct flow_client *fc = NULL;
	char a[600], b[600], pb[16], tb[64];
	int err;

	f.namespace_ = (char *)(o->ns ?: "");
	f.verdict = o->verdict;
	err = segctl_grpc_client(o->server, &o->tls, &fc);
	if (!err)
		err = segctl_grpc_query(fc, SEG__FLOW__V1__QUERY_REQUEST__WHAT__WHAT_GRAPH, &f, 0,
					&r);
	if (err)
		goto out;
	if (o->dot) {
		print_dot(r);
		goto out;
	}
	out_list_begin(c->out, NULL);
	for (size_t i = 0; i < r->n_edges; i++) {
		const Seg__Flow__V1__Edge *e = r->edges[i];

		out_obj_begin(c->out, NULL);
		out_str(c->out, OUT_ANY, "src", NULL,
			e->src_workload ? flow_workload_str(r->workloads, r->n_workloads,
							    e->src_workload, a, sizeof(a)) :
					  "world");
		out_str(c->out, OUT_ANY, "dst", NULL,
			e->dst_workload ? flow_workload_str(r->workloads, r->n_workloads,
							    e->dst_workload, b, sizeof(b)) :
					  "world");
		out_u64(c->out, OUT_ANY, "port", NULL, e->port);
		out_str(c->out, OUT_ANY, "proto", NULL, flow_proto_name(e->proto, pb, sizeof(pb)));
		out_u64(c->out, OUT_ANY, "allowed", NULL, e->allowed);
		out_u64(c->out, OUT_ANY, "denied", NULL, e->denied);
		out_u64(c->out, OUT_ANY, "audit", NULL, e->audit);
		out_u64(c->out, OUT_ANY, "bytes", NULL, e->bytes);
		out_u64(c->out, OUT_JSON, "packets", NULL, e->packets);
		out_str(c->out, OUT_ANY, "last_seen", NULL,
			segctl_time_str(e->last_seen_ns, tb, sizeof(tb)));
		out_obj_end(c->out);
	}
	out_list_end(c->out);
out:
	flow_msg_free(r);
	flow_client_free(fc);
	return err;
}
