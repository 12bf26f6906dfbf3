// SPDX-License-Identifier: GPL-2.0-only
/*
 * segctl observe without --server: flows from segd's ring of recent
 * records (control op flow-list, daemon/export.c), printed by the same
 * printer as the service's (segctl_flow_print). --follow polls flow-list
 * with a cursor every 200 ms, so a new connection shows within a second.
 */
#include "ctl_segd.h"
#include "flow_cmds.h"
#include "addr.h"
#include "log.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define POLL_MS 200

static const char *const verdicts[] = { "", "allow", "deny", "audit" };

/* One end of a flow-list record -> a workload (index + 1 into wl) and the
 * record's address/port/identity. */
struct end_buf {
	FlowWorkload w;
	Seg__Flow__V1__Label lab[64];
	Seg__Flow__V1__Label *labp[64];
	char kv[64][256];
	struct in6_addr a;
};

static uint32_t end_fill(json_t *j, struct end_buf *e, FlowWorkload **wl, size_t *nwl,
			 ProtobufCBinaryData *addr, uint32_t *port, uint32_t *id)
{
	const char *s = json_string_value(json_object_get(j, "addr"));
	json_t *labels = json_object_get(j, "labels"), *l;
	size_t i;

	*port = (uint32_t)json_integer_value(json_object_get(j, "port"));
	*id = (uint32_t)json_integer_value(json_object_get(j, "identity"));
	if (!s || seg_addr_parse(s, &e->a)) {
		addr->len = 0;
	} else if (seg_addr_is_v4(&e->a)) {
		addr->data = e->a.s6_addr + 12;
		addr->len = 4;
	} else {
		addr->data = e->a.s6_addr;
		addr->len = 16;
	}
	if (!json_object_get(j, "name"))
		return 0;
	seg__flow__v1__workload__init(&e->w);
	e->w.namespace_ = (char *)json_string_value(json_object_get(j, "namespace"));
	e->w.name = (char *)json_string_value(json_object_get(j, "name"));
	e->w.identity = *id;
	e->w.labels = e->labp;
	json_array_foreach(labels, i, l)
	{
		const char *kv = json_string_value(l);
		char *eq;

		if (!kv || e->w.n_labels == 64)
			continue;
		seg__flow__v1__label__init(&e->lab[e->w.n_labels]);
		snprintf(e->kv[e->w.n_labels], sizeof(e->kv[0]), "%s", kv);
		eq = strchr(e->kv[e->w.n_labels], '=');
		if (eq)
			*eq++ = 0;
		e->lab[e->w.n_labels].key = e->kv[e->w.n_labels];
		e->lab[e->w.n_labels].value = eq ?: (char *)"";
		e->labp[e->w.n_labels] = &e->lab[e->w.n_labels];
		e->w.n_labels++;
	}
	wl[*nwl] = &e->w;
	return (uint32_t)++ * nwl;
}

static uint64_t u64(json_t *r, const char *k)
{
	return (uint64_t)json_integer_value(json_object_get(r, k));
}

static void print_one(struct segctl *c, json_t *r)
{
	static struct end_buf ends[2];
	FlowWorkload *wl[2];
	size_t nwl = 0;
	FlowRec f;

	seg__flow__v1__flow__init(&f);
	f.src_workload = end_fill(json_object_get(r, "src"), &ends[0], wl, &nwl, &f.src_addr,
				  &f.src_port, &f.src_identity);
	f.dst_workload = end_fill(json_object_get(r, "dst"), &ends[1], wl, &nwl, &f.dst_addr,
				  &f.dst_port, &f.dst_identity);
	f.time_ns = u64(r, "time_ns");
	f.kind = (int)u64(r, "kind");
	f.proto = (uint32_t)u64(r, "proto");
	f.direction = (int)u64(r, "direction");
	f.verdict = (int)u64(r, "verdict");
	f.reason = (uint32_t)u64(r, "reason");
	f.rule_id = (uint32_t)u64(r, "rule_id");
	f.policy = (char *)(json_string_value(json_object_get(r, "policy")) ?: "");
	f.rule = (char *)(json_string_value(json_object_get(r, "rule")) ?: "");
	f.packets_fwd = u64(r, "packets_fwd");
	f.bytes_fwd = u64(r, "bytes_fwd");
	f.packets_rev = u64(r, "packets_rev");
	f.bytes_rev = u64(r, "bytes_rev");
	f.first_seen_ns = u64(r, "first_seen_ns");
	f.last_seen_ns = u64(r, "last_seen_ns");
	f.tcp_flags_fwd = (uint32_t)u64(r, "tcp_flags_fwd");
	f.tcp_flags_rev = (uint32_t)u64(r, "tcp_flags_rev");
	f.suppressed = (uint32_t)u64(r, "suppressed");
	segctl_flow_print(c->out, wl, nwl, json_string_value(json_object_get(r, "node")) ?: "", &f);
}

/* One flow-list call; prints the flows; *next = the cursor after them. */
static int fetch(struct segctl *c, json_t *args, long long after, uint32_t limit, bool print,
		 long long *next)
{
	json_t *res = NULL, *flows, *r;
	size_t i;
	long long lost;
	int err;

	json_object_set_new(args, "after", json_integer(after));
	json_object_set_new(args, "limit", json_integer(limit));
	err = segctl_segd_call(c, "flow-list", args, &res);
	if (err)
		return err;
	flows = json_object_get(res, "flows");
	lost = (long long)json_integer_value(json_object_get(res, "lost"));
	if (lost)
		log_warn("%lld flows went by before they could be read (segd keeps the last ones)",
			 lost);
	json_array_foreach(flows, i, r) if (print) print_one(c, r);
	*next = (long long)json_integer_value(json_object_get(res, "next"));
	json_decref(res);
	return 0;
}

int segctl_observe_local(struct segctl *c, const struct segctl_observe_opts *o)
{
	json_t *args = json_object();
	long long next = -1;
	uint64_t d;
	int err;

	if (!args)
		return -ENOMEM;
	if (o->pod && !strchr(o->pod, '/')) {
		json_decref(args);
		return segctl_usage(c, "--pod wants NS/POD, not '%s'", o->pod);
	}
	if (o->ns)
		json_object_set_new(args, "namespace", json_string(o->ns));
	if (o->pod)
		json_object_set_new(args, "pod", json_string(o->pod));
	if (o->verdict > 0 && o->verdict < 4)
		json_object_set_new(args, "verdict", json_string(verdicts[o->verdict]));
	if (o->since) {
		if (flow_parse_duration(o->since, &d) || !d) {
			json_decref(args);
			return segctl_usage(c,
					    "--since wants a duration like 30s, 5m or 1h, not '%s'",
					    o->since);
		}
		json_object_set_new(args, "since_ns",
				    json_integer((json_int_t)(flow_now_ns() - d)));
	}
	if (o->follow)
		out_stream(c->out, true);
	out_list_begin(c->out, NULL);
	/* without --follow, or with --since: the most recent ones first */
	err = fetch(c, args, -1, o->follow && !o->since ? 1 : o->last, !o->follow || o->since,
		    &next);
	while (o->follow && !err) {
		struct timespec ts = { 0, POLL_MS * 1000000L };

		fflush(stdout);
		nanosleep(&ts, NULL);
		err = fetch(c, args, next, 1000, true, &next);
	}
	out_list_end(c->out);
	json_decref(args);
	return err;
}
