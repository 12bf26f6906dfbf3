// SPDX-License-Identifier: GPL-2.0-only
/*
 * `segctl policy test --datapath`: the kernel decides.
 *
 * A private (unpinned) lib/dp instance is filled through lib/apply with
 * every pod attached at a synthetic ifkey (PT_IFKEY_BASE + pod index). For
 * each probe a packet is built (TCP SYN, UDP, SCTP INIT; IPv4 or IPv6 by
 * the probe's addresses) and run through BPF_PROG_TEST_RUN: seg_tc_from_pod
 * with the source's endpoint, then, if it passed, seg_tc_to_pod with the
 * destination's. A test run reports skb->ifindex 1 (the loopback), so the
 * endpoint of the side being run is copied to ifkey 1 first (private maps:
 * nothing else reads them). The conntrack is flushed before each probe so
 * every probe is a new flow, and the flow event (SEG_EV_NEW / SEG_EV_DENY)
 * of each run says the reason, rule and remote identity.
 */
#include "policy_test.h"
#include "apply/apply.h"
#include "addr.h"
#include "dp/dp.h"
#include "log.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PT_IFKEY_BASE 1000u
#define PT_RUN_IFKEY 1 /* skb->ifindex in BPF_PROG_TEST_RUN */
#define PT_SPORT 40000

struct pt_dp {
	const struct seg_compiled *c;
	struct seg_dp *dp;
	struct seg_dp_events *evs;
	struct seg_flow_event ev;
	int nev;
};

static __u32 pod_index(const struct seg_compiled *c, const struct seg_pod *pod)
{
	return (__u32)(pod - c->m->pods);
}

static __u32 pt_pod_ifkey(const struct seg_pod *pod, void *ctx)
{
	return PT_IFKEY_BASE + pod_index(ctx, pod);
}

static int ev_cb(const struct seg_flow_event *ev, void *ctx)
{
	struct pt_dp *d = ctx;

	d->ev = *ev;
	d->nev++;
	return 0;
}

/* ---- packets ------------------------------------------------------------------- */

/* Headers are built in aligned locals and copied into the frame: after the
 * 14-byte Ethernet header nothing in it is aligned for struct access. */
static size_t build_l4(__u8 *l4, __u8 proto, __u16 port)
{
	if (proto == IPPROTO_TCP) {
		struct tcphdr t = { 0 };

		t.source = htons(PT_SPORT);
		t.dest = htons(port);
		t.seq = htonl(1);
		t.doff = 5;
		t.syn = 1;
		t.window = htons(65535);
		memcpy(l4, &t, sizeof(t));
		return sizeof(t);
	}
	if (proto == IPPROTO_UDP) {
		struct udphdr u = { 0 };

		u.source = htons(PT_SPORT);
		u.dest = htons(port);
		u.len = htons(sizeof(u) + 8);
		memcpy(l4, &u, sizeof(u));
		return sizeof(u) + 8;
	}
	/* SCTP: common header + INIT chunk (type 1, length 20) */
	l4[0] = PT_SPORT >> 8;
	l4[1] = PT_SPORT & 0xff;
	l4[2] = port >> 8;
	l4[3] = port & 0xff;
	l4[12] = 1;
	l4[15] = 20;
	l4[19] = 1; /* initiate tag */
	l4[22] = 0xff; /* a_rwnd */
	l4[25] = 1; /* outbound streams */
	l4[27] = 1; /* inbound streams */
	l4[31] = 1; /* initial TSN */
	return 32;
}

static size_t build_pkt(__u8 *buf, size_t cap, const struct in6_addr *s, const struct in6_addr *d,
			__u8 proto, __u16 port)
{
	struct ethhdr eth = { 0 };
	bool v4 = seg_addr_is_v4(s);
	size_t l3 = v4 ? sizeof(struct iphdr) : sizeof(struct ip6_hdr), l4;

	memset(buf, 0, cap);
	memcpy(eth.h_dest, "\x02\x00\x00\x00\x00\x02", ETH_ALEN);
	memcpy(eth.h_source, "\x02\x00\x00\x00\x00\x01", ETH_ALEN);
	eth.h_proto = htons(v4 ? ETH_P_IP : ETH_P_IPV6);
	memcpy(buf, &eth, sizeof(eth));
	l4 = build_l4(buf + sizeof(eth) + l3, proto, port);
	if (v4) {
		struct iphdr ip = { 0 };

		ip.version = 4;
		ip.ihl = 5;
		ip.ttl = 64;
		ip.protocol = proto;
		ip.tot_len = htons((__u16)(l3 + l4));
		memcpy(&ip.saddr, &s->s6_addr[12], 4);
		memcpy(&ip.daddr, &d->s6_addr[12], 4);
		memcpy(buf + sizeof(eth), &ip, sizeof(ip));
	} else {
		struct ip6_hdr ip6;

		memset(&ip6, 0, sizeof(ip6));
		ip6.ip6_flow = htonl(6u << 28);
		ip6.ip6_plen = htons((__u16)l4);
		ip6.ip6_nxt = proto;
		ip6.ip6_hlim = 64;
		ip6.ip6_src = *s;
		ip6.ip6_dst = *d;
		memcpy(buf + sizeof(eth), &ip6, sizeof(ip6));
	}
	return sizeof(eth) + l3 + l4;
}

/* ---- one direction ----------------------------------------------------------------- */

/* Runs the packet on the pod's endpoint in dir; fills dv from the event. */
static int run_dir(struct pt_dp *d, const struct seg_pod *pod, __u8 dir, const __u8 *pkt,
		   size_t len, struct seg_dir_verdict *dv)
{
	enum seg_prog prog = dir == SEG_DIR_EGRESS ? SEG_PROG_TC_FROM_POD : SEG_PROG_TC_TO_POD;
	__u8 out[256];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = (__u32)len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);
	struct seg_endpoint ep;
	int fd = seg_dp_prog_fd(d->dp, prog), err;

	if (fd < 0)
		return fd;
	err = seg_dp_endpoint_get(d->dp, PT_IFKEY_BASE + pod_index(d->c, pod), &ep);
	if (err)
		return log_err(err, "no endpoint for %s/%s in the private data path", pod->ns,
			       pod->name);
	err = seg_dp_endpoint_set(d->dp, PT_RUN_IFKEY, &ep);
	if (err)
		return err;
	d->nev = 0;
	if (bpf_prog_test_run_opts(fd, &o))
		return log_err(-errno, "BPF_PROG_TEST_RUN %s",
			       dir == SEG_DIR_EGRESS ? "seg_tc_from_pod" : "seg_tc_to_pod");
	err = seg_dp_events_poll(d->evs, 0);
	if (err < 0)
		return err;
	if (d->nev != 1)
		return log_err(-EPROTO, "%s/%s %s: %d flow events for one new flow (want 1)",
			       pod->ns, pod->name, dir == SEG_DIR_EGRESS ? "egress" : "ingress",
			       d->nev);
	dv->evaluated = true;
	dv->verdict = d->ev.verdict;
	dv->reason = d->ev.reason;
	dv->remote_id = d->ev.remote_id;
	dv->rule_id = d->ev.rule_id;
	if ((o.retval == TC_ACT_SHOT) != (d->ev.verdict == SEG_VERDICT_DENY))
		return log_err(-EPROTO, "%s/%s: verdict %s but program returned %d", pod->ns,
			       pod->name, seg_verdict_str(d->ev.verdict), o.retval);
	return 0;
}

static int run_probe(struct pt_dp *d, struct pt_probe *p)
{
	const struct seg_pod *sp = p->src.pod, *dpod = p->dst.pod;
	__u8 pkt[256];
	size_t len;
	int err;

	memset(&p->v, 0, sizeof(p->v));
	p->v.verdict = SEG_VERDICT_ALLOW;
	if (sp && sp == dpod)
		goto text; /* never leaves the pod */
	err = seg_dp_ct_flush(d->dp);
	if (err)
		return err;
	len = build_pkt(pkt, sizeof(pkt), &p->src.addr, &p->dst.addr, p->proto, p->port);
	if (sp && seg_compiled_endpoint(d->c, sp)) {
		err = run_dir(d, sp, SEG_DIR_EGRESS, pkt, len, &p->v.dir[SEG_DIR_EGRESS]);
		if (err)
			return err;
		if (p->v.dir[SEG_DIR_EGRESS].verdict == SEG_VERDICT_DENY)
			goto text; /* dropped on the way out */
	}
	if (dpod && seg_compiled_endpoint(d->c, dpod)) {
		err = run_dir(d, dpod, SEG_DIR_INGRESS, pkt, len, &p->v.dir[SEG_DIR_INGRESS]);
		if (err)
			return err;
	}
text:
	pt_reason_text(d->c, p, &p->v);
	return 0;
}

/* Policy only: no anti-spoofing (the run's ifkey owns no address), no
 * event rate limit (every run is on ifkey 1). */
static int config(struct seg_dp *dp)
{
	struct seg_config cfg;
	int err = seg_dp_config_get(dp, &cfg);

	if (err)
		return err;
	cfg.flags = 0;
	cfg.evt_rate = 0;
	cfg.evt_burst = 0;
	return seg_dp_config_set(dp, &cfg);
}

int pt_datapath_run(const struct seg_compiled *c, struct pt_probe *p, size_t n)
{
	struct seg_apply_opts ao = { .pod_ifkey = pt_pod_ifkey, .ctx = (void *)c };
	/* sized to the compiled state: small maps load fast */
	struct seg_dp_opts dopts = {
		.pin_dir = NULL,
		.max_endpoints = (__u32)c->neps + 16,
		.max_ipcache = (__u32)c->nipc + 16,
		.max_ipcache_lpm = (__u32)c->nlpm + 16,
		.max_policy = (__u32)c->npol + 16,
		.max_ct = 1024,
		.max_rules = 16,
	};
	struct pt_dp d = { .c = c };
	struct seg_apply *a = NULL;
	int err;

	for (size_t i = 0; i < c->nrules; i++) {
		if (c->rules[i].rule_id + 16 > dopts.max_rules)
			dopts.max_rules = c->rules[i].rule_id + 16;
	}
	if (geteuid() != 0)
		return log_err(-EPERM, "--datapath loads BPF programs: run as root");
	err = seg_dp_open(&d.dp, &dopts);
	if (err)
		goto out;
	err = config(d.dp);
	if (!err)
		err = seg_apply_new(d.dp, &a);
	if (!err)
		err = seg_apply(a, c, &ao, NULL);
	if (!err)
		err = seg_dp_events_open(d.dp, ev_cb, &d, &d.evs);
	for (size_t i = 0; i < n && !err; i++)
		err = run_probe(&d, &p[i]);
out:
	seg_dp_events_close(d.evs);
	seg_apply_free(a);
	seg_dp_close(d.dp);
	return err;
}
