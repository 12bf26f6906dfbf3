// SPDX-License-Identifier: GPL-2.0-only
/* segctl bpf ct | counters | events: what the data path saw. */
#include "segctl.h"

#include "log.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

static const char *const ev_type_names[] = {
	[SEG_EV_NEW] = "new",
	[SEG_EV_DENY] = "deny",
	[SEG_EV_REVOKED] = "revoked",
};

static const char *ev_type_str(unsigned t)
{
	return t <= SEG_EV_REVOKED && ev_type_names[t] ? ev_type_names[t] : "?";
}

static const char *dir_str(unsigned d)
{
	return d < SEG_DIR_MAX ? segctl_dir_names[d] : "?";
}

static unsigned long long mono_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

/* "10.0.0.1:80", "[fd00::1]:80" */
static const char *endpoint_str(const __u32 addr[4], unsigned port, char *buf, size_t len)
{
	const struct in6_addr *a = (const struct in6_addr *)addr;
	char s[INET6_ADDRSTRLEN];

	seg_addr_str(a, s, sizeof(s));
	snprintf(buf, len, seg_addr_is_v4(a) ? "%s:%u" : "[%s]:%u", s, port);
	return buf;
}

static void out_addr(struct out *o, const char *key, const __u32 addr[4])
{
	char s[INET6_ADDRSTRLEN];

	out_str(o, OUT_JSON, key, NULL, seg_addr_str((const struct in6_addr *)addr, s, sizeof(s)));
}

/* ---- ct ---------------------------------------------------------------------- */

struct ct_ctx {
	struct out *o;
	unsigned long long now;
};

static int ct_print(const struct seg_ct_key *k, const struct seg_ct_entry *e, void *ctx)
{
	struct ct_ctx *cc = ctx;
	struct out *o = cc->o;
	char l[INET6_ADDRSTRLEN + 8], r[INET6_ADDRSTRLEN + 8], pbuf[8];

	out_obj_begin(o, NULL);
	out_str(o, OUT_TEXT, "proto", NULL, segctl_proto_name(k->proto, pbuf, sizeof(pbuf)));
	out_u64(o, OUT_JSON, "proto", NULL, k->proto);
	out_str(o, OUT_TEXT, "local", NULL, endpoint_str(k->laddr, k->lport, l, sizeof(l)));
	out_str(o, OUT_TEXT, "remote", NULL, endpoint_str(k->raddr, k->rport, r, sizeof(r)));
	out_addr(o, "laddr", k->laddr);
	out_u64(o, OUT_JSON, "lport", NULL, k->lport);
	out_addr(o, "raddr", k->raddr);
	out_u64(o, OUT_JSON, "rport", NULL, k->rport);
	out_str(o, OUT_ANY, "dir", NULL, dir_str(e->dir));
	out_u64(o, OUT_ANY, "ep_id", NULL, e->ep_id);
	out_u64(o, OUT_ANY, "remote_id", NULL, e->remote_id);
	out_str(o, OUT_ANY, "verdict", NULL, seg_verdict_str(e->verdict));
	out_u64(o, OUT_JSON, "reason", NULL, e->reason);
	out_str(o, OUT_JSON, "reason_text", NULL, seg_reason_str(e->reason));
	out_u64(o, OUT_ANY, "rule", NULL, e->rule_id);
	out_u64(o, OUT_ANY, "revision", NULL, e->revision);
	out_u64(o, OUT_JSON, "generation", NULL, e->generation);
	out_u64(o, OUT_JSON, "ifkey", NULL, e->ifkey);
	out_u64(o, OUT_ANY, "packets_in", NULL, e->packets[SEG_DIR_INGRESS]);
	out_u64(o, OUT_ANY, "packets_out", NULL, e->packets[SEG_DIR_EGRESS]);
	out_u64(o, OUT_ANY, "bytes_in", NULL, e->bytes[SEG_DIR_INGRESS]);
	out_u64(o, OUT_ANY, "bytes_out", NULL, e->bytes[SEG_DIR_EGRESS]);
	out_u64(o, OUT_ANY, "idle_s", NULL,
		cc->now > e->last_seen_ns ? (cc->now - e->last_seen_ns) / 1000000000ull : 0);
	out_u64(o, OUT_JSON, "first_seen_ns", NULL, e->first_seen_ns);
	out_u64(o, OUT_JSON, "last_seen_ns", NULL, e->last_seen_ns);
	out_obj_end(o);
	return 0;
}

struct noopts {
	int unused;
};
static const struct noopts noopts_defaults;

static int do_ct_list(void *ctx, void *opts)
{
	struct segctl *c = ctx;
	struct ct_ctx cc = { .o = c->out, .now = mono_now_ns() };
	struct seg_dp *dp;
	int err = segctl_dp(c, &dp);

	if (err)
		return err;
	out_list_begin(c->out, NULL);
	err = seg_dp_ct_foreach(dp, ct_print, &cc);
	out_list_end(c->out);
	return err < 0 ? err : 0;
}

static int do_ct_flush(void *ctx, void *opts)
{
	struct segctl *c = ctx;
	struct seg_dp *dp;
	int err = segctl_dp(c, &dp);

	if (!err)
		err = seg_dp_ct_flush(dp);
	if (err < 0)
		return err;
	out_bool(c->out, OUT_ANY, "flushed", true);
	return 0;
}

const struct cmd segctl_bpf_ct_cmds[] = {
	CMD_LEAF("list", do_ct_list, NULL, noopts_defaults, "list tracked flows",
		 .description = "Flows are seen from the endpoint: local is the pod's side.\n"
				"PACKETS_IN/BYTES_IN count packets towards the pod."),
	CMD_LEAF("flush", do_ct_flush, NULL, noopts_defaults,
		 "delete every tracked flow (new packets are decided afresh)"),
	CMD_END,
};

/* ---- counters ---------------------------------------------------------------- */

const struct segctl_counters_opts segctl_counters_defaults;
const struct opt segctl_counters_optv[] = {
	OPT_BOOL('r', "rules", struct segctl_counters_opts, rules,
		 "also counters by rule (rules that decided packets): a rule counts the\n"
		 "first packet of each flow it decided, the drops of revoked flows it had\n"
		 "allowed and ICMP errors of its flows; established packets are counted\n"
		 "under 'established or reply' and per flow (segctl bpf ct), not per rule"),
	OPT_BOOL('a', "all", struct segctl_counters_opts, all,
		 "list reasons and rules without packets too"),
	OPT_END,
};

#define REASON_ROW(sym, num, verdict, text) { num, verdict, #sym },
static const struct {
	unsigned num, verdict;
	const char *sym;
} reason_rows[] = { SEG_REASONS(REASON_ROW) };
#undef REASON_ROW

static int print_reasons(struct seg_dp *dp, struct out *o, bool all)
{
	out_list_begin(o, "reasons");
	for (size_t i = 0; i < sizeof(reason_rows) / sizeof(reason_rows[0]); i++) {
		struct seg_counter cnt;
		int err = seg_dp_reason_get(dp, reason_rows[i].num, &cnt);

		if (err)
			return err;
		if (!all && !cnt.packets)
			continue;
		out_obj_begin(o, NULL);
		out_u64(o, OUT_ANY, "reason", NULL, reason_rows[i].num);
		out_str(o, OUT_ANY, "name", NULL, reason_rows[i].sym);
		out_str(o, OUT_ANY, "verdict", NULL, seg_verdict_str(reason_rows[i].verdict));
		out_u64(o, OUT_ANY, "packets", NULL, cnt.packets);
		out_u64(o, OUT_ANY, "bytes", NULL, cnt.bytes);
		out_str(o, OUT_ANY, "description", NULL, seg_reason_str(reason_rows[i].num));
		out_obj_end(o);
	}
	out_list_end(o);
	return 0;
}

static int print_rules(struct seg_dp *dp, struct out *o, bool all)
{
	__u32 used = 0, max = 0;
	char tbuf[40];
	int err = seg_dp_map_fill(dp, SEG_MAP_RULES, &used, &max);

	if (err)
		return err;
	out_list_begin(o, "rules");
	for (__u32 id = 0; id < max; id++) {
		struct seg_rule_counter rc;

		err = seg_dp_rule_get(dp, id, &rc);
		if (err)
			return err;
		if (!rc.packets && (!all || id >= 64))
			continue; /* --all: the first 64 rules, even if idle */
		out_obj_begin(o, NULL);
		out_u64(o, OUT_ANY, "rule", NULL, id);
		out_u64(o, OUT_ANY, "packets", NULL, rc.packets);
		out_u64(o, OUT_ANY, "bytes", NULL, rc.bytes);
		if (rc.last_hit_ns)
			out_str(o, OUT_ANY, "last_hit", NULL,
				segctl_time_str(segctl_mono_to_real_ns(rc.last_hit_ns), tbuf,
						sizeof(tbuf)));
		else
			out_null(o, OUT_ANY, "last_hit");
		out_u64(o, OUT_JSON, "last_hit_ns", NULL, rc.last_hit_ns);
		out_obj_end(o);
	}
	out_list_end(o);
	return 0;
}

int segctl_counters_run(void *ctx, void *opts)
{
	struct segctl *c = ctx;
	struct segctl_counters_opts *o = opts;
	struct seg_dp *dp;
	int err = segctl_dp(c, &dp);

	if (!err)
		err = print_reasons(dp, c->out, o->all);
	if (!err && o->rules)
		err = print_rules(dp, c->out, o->all);
	return err;
}

/* ---- events ------------------------------------------------------------------ */

const struct segctl_events_opts segctl_events_defaults;
const struct opt segctl_events_optv[] = {
	OPT_BOOL('f', "follow", struct segctl_events_opts, follow,
		 "wait for events until --count, --timeout or Ctrl-C; else print what is queued"),
	OPT_U32('c', "count", struct segctl_events_opts, count, "N", "stop after N events",
		.defstr = "no limit"),
	OPT_U32('t', "timeout", struct segctl_events_opts, timeout, "S",
		"wait for events, stop after S seconds (implies --follow)", .defstr = "no limit"),
	OPT_END,
};

/* A one-shot tool's only signal state: Ctrl-C ends --follow cleanly. */
static volatile sig_atomic_t events_stop;

static void on_sigint(int sig)
{
	events_stop = 1;
}

struct ev_ctx {
	struct out *o;
	uint32_t seen, max;
};

static int ev_print(const struct seg_flow_event *ev, void *ctx)
{
	struct ev_ctx *ec = ctx;
	struct out *o = ec->o;
	char s[INET6_ADDRSTRLEN + 8], d[INET6_ADDRSTRLEN + 8], flow[2 * sizeof(s) + 8];
	char tbuf[40], pbuf[8];
	unsigned long long real = segctl_mono_to_real_ns(ev->ts_ns);

	if (ec->max && ec->seen >= ec->max)
		return 1; /* stop */
	ec->seen++;
	snprintf(flow, sizeof(flow), "%s -> %s", endpoint_str(ev->saddr, ev->sport, s, sizeof(s)),
		 endpoint_str(ev->daddr, ev->dport, d, sizeof(d)));
	out_obj_begin(o, NULL);
	out_str(o, OUT_ANY, "time", NULL, segctl_time_str(real, tbuf, sizeof(tbuf)));
	out_str(o, OUT_ANY, "type", NULL, ev_type_str(ev->type));
	out_str(o, OUT_ANY, "verdict", "%s:", seg_verdict_str(ev->verdict));
	out_str(o, OUT_TEXT, "reason", NULL, seg_reason_str(ev->reason));
	out_u64(o, OUT_JSON, "reason", NULL, ev->reason);
	out_str(o, OUT_JSON, "reason_text", NULL, seg_reason_str(ev->reason));
	out_str(o, OUT_ANY, "dir", NULL, dir_str(ev->dir));
	out_str(o, OUT_TEXT, "proto", NULL, segctl_proto_name(ev->proto, pbuf, sizeof(pbuf)));
	out_u64(o, OUT_JSON, "proto", NULL, ev->proto);
	out_str(o, OUT_TEXT, "flow", NULL, flow);
	out_addr(o, "saddr", ev->saddr);
	out_u64(o, OUT_JSON, "sport", NULL, ev->sport);
	out_addr(o, "daddr", ev->daddr);
	out_u64(o, OUT_JSON, "dport", NULL, ev->dport);
	out_u64(o, OUT_ANY, "local_id", "local=%llu", ev->local_id);
	out_u64(o, OUT_ANY, "remote_id", "remote=%llu", ev->remote_id);
	out_u64(o, OUT_ANY, "rule", "rule=%llu", ev->rule_id);
	out_u64(o, OUT_ANY, "ep_id", "ep=%llu", ev->ep_id);
	out_u64(o, OUT_JSON, "ifkey", NULL, ev->ifkey);
	out_u64(o, OUT_JSON, "pkt_len", NULL, ev->pkt_len);
	out_u64(o, OUT_JSON, "tcp_flags", NULL, ev->tcp_flags);
	out_u64(o, OUT_JSON, "ts_ns", NULL, ev->ts_ns);
	if (ev->suppressed)
		out_u64(o, OUT_ANY, "suppressed", "(+%llu suppressed)", ev->suppressed);
	out_obj_end(o);
	return 0;
}

int segctl_events_run(void *ctx, void *opts)
{
	struct segctl *c = ctx;
	struct segctl_events_opts *o = opts;
	struct ev_ctx ec = { .o = c->out, .max = o->count };
	struct sigaction sa = { .sa_handler = on_sigint };
	unsigned long long deadline = o->timeout ? mono_now_ns() + o->timeout * 1000000000ull : 0;
	bool follow = o->follow || o->timeout; /* a timeout means: wait that long */
	struct seg_dp_events *evs = NULL;
	struct seg_dp *dp;
	int err = segctl_dp(c, &dp);

	if (err)
		return err;
	err = seg_dp_events_open(dp, ev_print, &ec, &evs);
	if (err)
		return err;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	out_stream(c->out, true);
	out_list_begin(c->out, NULL);
	for (;;) {
		int n, wait_ms = follow ? 200 : 0;

		if (deadline) {
			unsigned long long now = mono_now_ns();

			if (now >= deadline)
				break;
			if ((deadline - now) / 1000000 < (unsigned long long)wait_ms)
				wait_ms = (int)((deadline - now) / 1000000);
		}
		n = seg_dp_events_poll(evs, wait_ms);
		if (n < 0 && n != -EINTR) {
			err = n;
			break;
		}
		if (events_stop || (ec.max && ec.seen >= ec.max))
			break;
		if (!follow && n <= 0)
			break;
	}
	out_list_end(c->out);
	seg_dp_events_close(evs);
	return err;
}
