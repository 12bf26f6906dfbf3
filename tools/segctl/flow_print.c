// SPDX-License-Identifier: GPL-2.0-only
/* segctl: the flow printer (table, JSON, YAML from one description). */
#include "flow_cmds.h"
#include "addr.h"

static void print_end(struct out *o, const char *key, const char *text_key, FlowWorkload *const *wl,
		      size_t n_wl, uint32_t idx, const ProtobufCBinaryData *addr, uint32_t port,
		      uint32_t id)
{
	char wb[600], ab[64], tb[700];
	const char *w = flow_workload_str(wl, n_wl, idx, wb, sizeof(wb));

	flow_addr_str(addr, ab, sizeof(ab));
	snprintf(tb, sizeof(tb), "%s %s:%u", idx ? w : "world", ab, port);
	out_str(o, OUT_TEXT, text_key, NULL, tb);
	out_obj_begin(o, key);
	out_str(o, OUT_JSON, "workload", NULL, idx ? w : "");
	out_str(o, OUT_JSON, "addr", NULL, ab);
	out_u64(o, OUT_JSON, "port", NULL, port);
	out_u64(o, OUT_JSON, "identity", NULL, id);
	out_obj_end(o);
}

void segctl_flow_print(struct out *o, FlowWorkload *const *wl, size_t n_wl, const char *node,
		       const FlowRec *r)
{
	char tb[64], pb[16];

	out_obj_begin(o, NULL);
	out_str(o, OUT_ANY, "time", NULL, segctl_time_str(r->time_ns, tb, sizeof(tb)));
	out_str(o, OUT_ANY, "node", NULL, *r->node ? r->node : node);
	out_str(o, OUT_JSON, "kind", NULL, flow_kind_name(r->kind));
	print_end(o, "src", "source", wl, n_wl, r->src_workload, &r->src_addr, r->src_port,
		  r->src_identity);
	print_end(o, "dst", "destination", wl, n_wl, r->dst_workload, &r->dst_addr, r->dst_port,
		  r->dst_identity);
	out_str(o, OUT_ANY, "proto", NULL, flow_proto_name(r->proto, pb, sizeof(pb)));
	out_str(o, OUT_ANY, "direction", NULL,
		r->direction == SEG__FLOW__V1__DIRECTION__DIRECTION_EGRESS ? "egress" : "ingress");
	out_str(o, OUT_ANY, "verdict", NULL, flow_verdict_name(r->verdict));
	out_str(o, OUT_ANY, "reason", NULL,
		*r->reason_text ? r->reason_text : seg_reason_str(r->reason));
	out_u64(o, OUT_JSON, "reason_code", NULL, r->reason);
	out_str(o, OUT_ANY, "policy", NULL, *r->policy ? r->policy : "-");
	out_u64(o, OUT_JSON, "rule_id", NULL, r->rule_id);
	out_u64(o, OUT_JSON, "packets_fwd", NULL, r->packets_fwd);
	out_u64(o, OUT_JSON, "packets_rev", NULL, r->packets_rev);
	out_u64(o, OUT_JSON, "bytes_fwd", NULL, r->bytes_fwd);
	out_u64(o, OUT_JSON, "bytes_rev", NULL, r->bytes_rev);
	out_u64(o, OUT_TEXT, "bytes", NULL, r->bytes_fwd + r->bytes_rev);
	out_u64(o, OUT_JSON, "tcp_flags_fwd", NULL, r->tcp_flags_fwd);
	out_u64(o, OUT_JSON, "tcp_flags_rev", NULL, r->tcp_flags_rev);
	out_obj_end(o);
}
