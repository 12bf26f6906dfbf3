// SPDX-License-Identifier: GPL-2.0-only
/*
 * lib/dp typed map access and events against the real kernel (root), on
 * one private instance (nothing pinned): policy ranges, ipcache and LPM,
 * conntrack walk/delete/flush, per-CPU sums, map fill, and flow events
 * produced by running a packet through the program (BPF_PROG_TEST_RUN),
 * also through an in-netns program instance (its seg_cfg_ifkey).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dp/dp.h"
#include "log.h"
#include "testpkt.h"

struct fix {
	struct seg_dp *dp;
	int ncpus;
};

static int group_setup(void **state)
{
	static struct fix f;
	/* max_policy 8: small enough to overflow on purpose. */
	struct seg_dp_opts o = { .max_endpoints = 64,
				 .max_ipcache = 64,
				 .max_ipcache_lpm = 16,
				 .max_policy = 8,
				 .max_ct = 64,
				 .max_rules = 32 };

	f.ncpus = libbpf_num_possible_cpus();
	if (f.ncpus <= 0 || seg_dp_open(&f.dp, &o))
		return -1;
	*state = &f;
	return 0;
}

static int group_teardown(void **state)
{
	struct fix *f = *state;

	seg_dp_close(f->dp);
	return 0;
}

/* ---- policy ----------------------------------------------------------- */

struct pol_list {
	struct seg_policy_key k[16];
	struct seg_policy_val v[16];
	int n;
};

static int pol_collect(const struct seg_policy_key *k, const struct seg_policy_val *v, void *ctx)
{
	struct pol_list *l = ctx;

	if (l->n == 16)
		return -E2BIG;
	l->k[l->n] = *k;
	l->v[l->n++] = *v;
	return 0;
}

static int pol_count(struct seg_dp *dp)
{
	struct pol_list l = { .n = 0 };

	assert_int_equal(seg_dp_policy_foreach(dp, pol_collect, &l), 0);
	return l.n;
}

static void test_policy_range(void **state)
{
	struct fix *f = *state;
	struct seg_policy_val v = { .rule_id = 9, .action = SEG_ACT_ALLOW }, got;
	struct seg_policy_key k = {
		.policy_id = 5, .remote_id = 300, .proto = IPPROTO_TCP, .dir = SEG_DIR_INGRESS
	};
	struct pol_list l = { .n = 0 };
	bool seen[3] = { false };

	/* 8080-8090 = 8080/3, 8088/1, 8090/0 */
	assert_int_equal(seg_dp_policy_set_range(f->dp, 5, 300, IPPROTO_TCP, SEG_DIR_INGRESS, 8080,
						 8090, &v),
			 (1 << 3) | (1 << 1) | 1);
	assert_int_equal(seg_dp_policy_foreach(f->dp, pol_collect, &l), 0);
	assert_int_equal(l.n, 3);
	for (int i = 0; i < l.n; i++) {
		assert_int_equal(l.k[i].policy_id, 5);
		assert_int_equal(l.k[i].remote_id, 300);
		assert_int_equal(l.k[i].proto, IPPROTO_TCP);
		assert_int_equal(l.k[i].dir, SEG_DIR_INGRESS);
		assert_int_equal(l.v[i].rule_id, 9);
		if (l.k[i].port == 8080 && l.k[i].port_wild == 3)
			seen[0] = true;
		if (l.k[i].port == 8088 && l.k[i].port_wild == 1)
			seen[1] = true;
		if (l.k[i].port == 8090 && l.k[i].port_wild == 0)
			seen[2] = true;
	}
	assert_true(seen[0] && seen[1] && seen[2]);
	k.port = 8088;
	k.port_wild = 1;
	assert_int_equal(seg_dp_policy_get(f->dp, &k, &got), 0);
	assert_int_equal(got.rule_id, 9);
	k.port = 8089;
	k.port_wild = 0;
	assert_int_equal(seg_dp_policy_get(f->dp, &k, &got), -ENOENT);

	/* Any protocol: only the full range, one k = 16 entry. */
	assert_int_equal(seg_dp_policy_set_range(f->dp, 5, 0, 0, SEG_DIR_EGRESS, 0, 65535, &v),
			 (int)SEG_PMASK_ANYPROTO);
	assert_int_equal(pol_count(f->dp), 4);
	assert_int_equal(seg_dp_policy_set_range(f->dp, 5, 0, 0, SEG_DIR_EGRESS, 1, 65535, &v),
			 -EINVAL);
	assert_int_equal(seg_dp_policy_set_range(f->dp, 5, 0, IPPROTO_UDP, 2, 1, 2, &v), -EINVAL);
	assert_int_equal(seg_dp_policy_set_range(f->dp, 5, 0, IPPROTO_UDP, 0, 9, 8, &v), -EINVAL);

	/* All or nothing: 30 blocks do not fit in max_policy 8. */
	assert_int_equal(
		seg_dp_policy_set_range(f->dp, 6, 1, IPPROTO_UDP, SEG_DIR_EGRESS, 1, 65534, &v),
		-E2BIG);
	assert_int_equal(pol_count(f->dp), 4);

	assert_int_equal(
		seg_dp_policy_del_range(f->dp, 5, 300, IPPROTO_TCP, SEG_DIR_INGRESS, 8080, 8090),
		0);
	assert_int_equal(pol_count(f->dp), 1);
	assert_int_equal(seg_dp_policy_del_range(f->dp, 5, 0, 0, SEG_DIR_EGRESS, 0, 65535), 0);
	assert_int_equal(pol_count(f->dp), 0);
	/* Deleting what is absent is fine for a range, -ENOENT for one key. */
	assert_int_equal(seg_dp_policy_del_range(f->dp, 5, 0, 0, SEG_DIR_EGRESS, 0, 65535), 0);
	assert_int_equal(seg_dp_policy_del(f->dp, &k), -ENOENT);
}

/* ---- ipcache ---------------------------------------------------------- */

static void test_ipcache(void **state)
{
	struct fix *f = *state;
	struct seg_ipcache_val v = { .identity = 500, .owner_ifkey = 4 }, got;
	struct in6_addr a, net;
	struct seg_lpm_key lk = { 0 };
	__u32 plen, used, max;
	int fd;

	assert_int_equal(seg_addr_parse("10.1.2.3", &a), 0);
	assert_int_equal(seg_dp_ipcache_set(f->dp, &a, &v), 0);
	assert_int_equal(seg_dp_ipcache_get(f->dp, &a, &got), 0);
	assert_memory_equal(&v, &got, sizeof(v));
	assert_int_equal(seg_dp_map_fill(f->dp, SEG_MAP_IPCACHE, &used, &max), 0);
	assert_int_equal(used, 1);
	assert_int_equal(max, 64);
	assert_int_equal(seg_dp_ipcache_del(f->dp, &a), 0);
	assert_int_equal(seg_dp_ipcache_get(f->dp, &a, &got), -ENOENT);
	assert_int_equal(seg_dp_ipcache_del(f->dp, &a), -ENOENT);

	/* A prefix given with host bits set is stored clean; the trie
	 * answers for an address inside it. */
	assert_int_equal(seg_prefix_parse("192.168.7.99/24", &net, &plen), 0);
	assert_int_equal(plen, 120);
	v.identity = 501;
	assert_int_equal(seg_dp_ipcache_lpm_set(f->dp, &net, plen, &v), 0);
	fd = seg_dp_map_fd(f->dp, SEG_MAP_IPCACHE_LPM);
	assert_true(fd >= 0);
	assert_int_equal(bpf_map_get_next_key(fd, NULL, &lk), 0);
	assert_int_equal(lk.prefixlen, 120);
	assert_int_equal(((__u8 *)lk.addr)[15], 0);
	assert_int_equal(((__u8 *)lk.addr)[14], 7);
	assert_int_equal(tp_addr("192.168.7.200", lk.addr), 0);
	lk.prefixlen = 128;
	assert_int_equal(bpf_map_lookup_elem(fd, &lk, &got), 0);
	assert_int_equal(got.identity, 501);
	assert_int_equal(seg_dp_ipcache_lpm_set(f->dp, &net, 129, &v), -EINVAL);
	assert_int_equal(seg_dp_ipcache_lpm_del(f->dp, &net, plen), 0);
	assert_int_not_equal(bpf_map_lookup_elem(fd, &lk, &got), 0);
}

/* ---- conntrack ------------------------------------------------------------- */

static int ct_count(const struct seg_ct_key *k, const struct seg_ct_entry *e, void *ctx)
{
	(*(int *)ctx)++;
	return e->rule_id == 999 ? 42 : 0; /* a stop value travels back */
}

static void test_ct(void **state)
{
	struct fix *f = *state;
	int fd = seg_dp_map_fd(f->dp, SEG_MAP_CT), n = 0;
	struct seg_ct_key k = { .proto = IPPROTO_TCP, .rport = 80 };
	struct seg_ct_entry e = { .rule_id = 3, .verdict = SEG_VERDICT_ALLOW }, got;
	__u32 used, max;

	assert_true(fd >= 0);
	for (int i = 0; i < 20; i++) {
		k.lport = (__u16)(40000 + i);
		assert_int_equal(bpf_map_update_elem(fd, &k, &e, BPF_ANY), 0);
	}
	assert_int_equal(seg_dp_ct_foreach(f->dp, ct_count, &n), 0);
	assert_int_equal(n, 20);
	assert_int_equal(seg_dp_map_fill(f->dp, SEG_MAP_CT, &used, &max), 0);
	assert_int_equal(used, 20);
	assert_int_equal(max, 64);

	k.lport = 40005;
	assert_int_equal(seg_dp_ct_lookup(f->dp, &k, &got), 0);
	assert_int_equal(got.rule_id, 3);
	assert_int_equal(seg_dp_ct_del(f->dp, &k), 0);
	assert_int_equal(seg_dp_ct_lookup(f->dp, &k, &got), -ENOENT);

	/* The callback's stop value is returned. */
	e.rule_id = 999;
	assert_int_equal(bpf_map_update_elem(fd, &k, &e, BPF_ANY), 0);
	n = 0;
	assert_int_equal(seg_dp_ct_foreach(f->dp, ct_count, &n), 42);

	assert_int_equal(seg_dp_ct_flush(f->dp), 0);
	n = 0;
	assert_int_equal(seg_dp_ct_foreach(f->dp, ct_count, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(seg_dp_ct_flush(f->dp), 0); /* empty is fine */
}

/* ---- per-CPU sums ------------------------------------------------------------ */

static void test_percpu_sums(void **state)
{
	struct fix *f = *state;
	struct seg_counter *rc = calloc(f->ncpus, sizeof(*rc)), c;
	struct seg_rule_counter *uc = calloc(f->ncpus, sizeof(*uc)), u;
	struct seg_evt_rl *ec = calloc(f->ncpus, sizeof(*ec)), e;
	__u32 key = SEG_DROP_SPOOF, ifkey = 12345, used, max;
	__u64 n = (__u64)f->ncpus;

	assert_non_null(rc);
	assert_non_null(uc);
	assert_non_null(ec);
	for (int i = 0; i < f->ncpus; i++) {
		rc[i] = (struct seg_counter){ .packets = i + 1, .bytes = 100 * (i + 1) };
		uc[i] = (struct seg_rule_counter){ .packets = 1,
						   .bytes = 10,
						   .last_hit_ns = 1000 + i };
		ec[i] = (struct seg_evt_rl){ .last_ns = 50 + i,
					     .suppressed = 2,
					     .suppressed_total = 3 };
	}
	assert_int_equal(bpf_map_update_elem(seg_dp_map_fd(f->dp, SEG_MAP_REASONS), &key, rc, 0),
			 0);
	key = 7;
	assert_int_equal(bpf_map_update_elem(seg_dp_map_fd(f->dp, SEG_MAP_RULES), &key, uc, 0), 0);
	assert_int_equal(bpf_map_update_elem(seg_dp_map_fd(f->dp, SEG_MAP_EVT_RL), &ifkey, ec, 0),
			 0);

	assert_int_equal(seg_dp_reason_get(f->dp, SEG_DROP_SPOOF, &c), 0);
	assert_int_equal(c.packets, n * (n + 1) / 2);
	assert_int_equal(c.bytes, 100 * n * (n + 1) / 2);
	assert_int_equal(seg_dp_rule_get(f->dp, 7, &u), 0);
	assert_int_equal(u.packets, n);
	assert_int_equal(u.bytes, 10 * n);
	assert_int_equal(u.last_hit_ns, 1000 + n - 1);
	assert_int_equal(seg_dp_evt_rl_get(f->dp, ifkey, &e), 0);
	assert_int_equal(e.last_ns, 50 + n - 1);
	assert_int_equal(e.suppressed, 2 * n);
	assert_int_equal(e.suppressed_total, 3 * n);
	assert_int_equal(seg_dp_evt_rl_get(f->dp, ifkey + 1, &e), -ENOENT);
	/* Out of the array: the kernel says no. */
	assert_int_not_equal(seg_dp_rule_get(f->dp, 32, &u), 0);

	assert_int_equal(seg_dp_map_fill(f->dp, SEG_MAP_RULES, &used, &max), 0);
	assert_int_equal(used, 32);
	assert_int_equal(max, 32);
	assert_int_equal(seg_dp_map_fill(f->dp, SEG_MAP_EVENTS, &used, &max), -EOPNOTSUPP);
	assert_int_equal(seg_dp_map_fill(f->dp, "nosuch", &used, &max), -ENOENT);
	assert_int_equal(seg_dp_map_fd(f->dp, "nosuch"), -ENOENT);
	assert_int_equal(seg_dp_prog_fd(f->dp, SEG_PROG_MAX), -EINVAL);
	free(rc);
	free(uc);
	free(ec);
}

/* ---- events -------------------------------------------------------------------- */

struct ev_seen {
	struct seg_flow_event ev[8];
	int n;
};

static int ev_cb(const struct seg_flow_event *ev, void *ctx)
{
	struct ev_seen *s = ctx;

	if (s->n < 8)
		s->ev[s->n] = *ev;
	s->n++;
	return 0;
}

static void run_udp(int prog_fd, __u16 dport)
{
	__u8 pkt[TP_BUF_SIZE];
	struct tp_spec s = { .src = "10.9.0.1",
			     .dst = "10.9.0.2",
			     .proto = IPPROTO_UDP,
			     .sport = 5000,
			     .dport = dport };
	int len = tp_build(pkt, sizeof(pkt), &s);
	LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = pkt, .data_size_in = (__u32)len);

	assert_true(len > 0);
	assert_int_equal(bpf_prog_test_run_opts(prog_fd, &run), 0);
	assert_int_equal(run.retval, TC_ACT_SHOT); /* no endpoint: dropped */
}

static void test_events(void **state)
{
	struct fix *f = *state;
	struct seg_dp_events *evs = NULL;
	struct ev_seen seen = { .n = 0 };
	struct seg_counter before, after;
	struct seg_config cfg = { 0 };

	assert_int_equal(seg_dp_config_set(f->dp, &cfg), 0); /* no rate limit */
	assert_int_equal(seg_dp_events_open(f->dp, ev_cb, &seen, &evs), 0);
	assert_true(seg_dp_events_fd(evs) >= 0);
	assert_int_equal(seg_dp_events_poll(evs, 0), 0);
	assert_int_equal(seg_dp_reason_get(f->dp, SEG_DROP_NO_ENDPOINT, &before), 0);

	run_udp(seg_dp_prog_fd(f->dp, SEG_PROG_TC_FROM_POD), 53);
	run_udp(seg_dp_prog_fd(f->dp, SEG_PROG_TC_FROM_POD), 54);
	assert_int_equal(seg_dp_events_poll(evs, 100), 2);
	assert_int_equal(seen.n, 2);
	assert_int_equal(seen.ev[0].type, SEG_EV_DENY);
	assert_int_equal(seen.ev[0].reason, SEG_DROP_NO_ENDPOINT);
	assert_int_equal(seen.ev[0].proto, IPPROTO_UDP);
	assert_int_equal(seen.ev[0].dport, 53);
	assert_int_equal(seen.ev[1].dport, 54);
	assert_int_equal(seg_dp_reason_get(f->dp, SEG_DROP_NO_ENDPOINT, &after), 0);
	assert_int_equal(after.packets - before.packets, 2);
	seg_dp_events_close(evs);
	seg_dp_events_close(NULL);
}

/* ---- epochs ------------------------------------------------------------
 * Writes to the inactive epoch change nothing a packet sees until the flip;
 * the flip switches endpoint, ipcache and policy ids together, and the
 * generation bump re-checks an established flow against the new epoch. */

#define EP_IFKEY 1 /* skb->ifindex in BPF_PROG_TEST_RUN: the loopback */

static int run_tcp_to_pod(struct fix *f, __u16 dport, __u8 flags)
{
	__u8 pkt[TP_BUF_SIZE];
	struct tp_spec s = { .src = "10.8.0.1",
			     .dst = "10.8.0.2",
			     .proto = IPPROTO_TCP,
			     .tcp_flags = flags,
			     .sport = 40000,
			     .dport = dport };
	int len = tp_build(pkt, sizeof(pkt), &s);
	LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = pkt, .data_size_in = (__u32)len);

	assert_true(len > 0);
	assert_int_equal(bpf_prog_test_run_opts(seg_dp_prog_fd(f->dp, SEG_PROG_TC_TO_POD), &run),
			 0);
	return run.retval;
}

static void allow_port(struct fix *f, __u32 policy, __u32 peer, __u16 port)
{
	struct seg_policy_val v = { .rule_id = policy, .action = SEG_ACT_ALLOW };
	struct seg_policy_key k = { .policy_id = policy,
				    .remote_id = peer,
				    .port = port,
				    .proto = IPPROTO_TCP,
				    .dir = SEG_DIR_INGRESS };

	assert_int_equal(seg_dp_policy_set(f->dp, &k, &v), 0);
}

struct ipc_seen {
	__u32 identity;
	int n;
};

static int ipc_seen_cb(const struct in6_addr *a, __u32 plen, bool lpm,
		       const struct seg_ipcache_val *v, void *ctx)
{
	struct ipc_seen *s = ctx;

	if (!lpm && plen == 128) {
		s->identity = v->identity;
		s->n++;
	}
	return 0;
}

static void test_epochs(void **state)
{
	struct ipc_seen seen0 = { 0 }, seen1 = { 0 };
	struct fix *f = *state;
	struct seg_endpoint ep = { .ep_id = 7, .identity = 300 };
	struct seg_ipcache_val peer = { .identity = 301 }, other = { .identity = 302 };
	struct seg_config cfg = { 0 };
	struct seg_counter rev0, rev1;
	struct in6_addr a;
	__u32 epoch, gen;

	assert_int_equal(seg_dp_ct_flush(f->dp), 0);
	assert_int_equal(seg_dp_config_set(f->dp, &cfg), 0);
	assert_int_equal(seg_addr_parse("10.8.0.1", &a), 0);
	/* both epochs: peer 301; policy 1 allows 301 on 80 */
	assert_int_equal(seg_dp_ipcache_set(f->dp, &a, &peer), 0);
	allow_port(f, 1, 301, 80);
	allow_port(f, 2, 302, 81);
	ep.flags[SEG_DIR_INGRESS] = SEG_EPF_ISOLATED;
	ep.policy_id[SEG_DIR_INGRESS] = 1;
	ep.port_mask[SEG_DIR_INGRESS] = 1;
	assert_int_equal(seg_dp_endpoint_set(f->dp, EP_IFKEY, &ep), 0);
	assert_int_equal(run_tcp_to_pod(f, 80, 0), TC_ACT_UNSPEC);
	assert_int_equal(run_tcp_to_pod(f, 81, 0), TC_ACT_SHOT);

	/* epoch 1 (inactive): the peer becomes 302 and policy 2 applies */
	ep.policy_id[SEG_DIR_INGRESS] = 2;
	assert_int_equal(seg_dp_endpoint_set_in(f->dp, 1, EP_IFKEY, &ep), 0);
	assert_int_equal(seg_dp_ipcache_set_in(f->dp, 1, &a, &other), 0);
	assert_int_equal(seg_dp_ipcache_foreach_in(f->dp, 0, ipc_seen_cb, &seen0), 0);
	assert_int_equal(seg_dp_ipcache_foreach_in(f->dp, 1, ipc_seen_cb, &seen1), 0);
	assert_int_equal(seen0.n, 1); /* each epoch's own table */
	assert_int_equal(seen0.identity, 301);
	assert_int_equal(seen1.n, 1);
	assert_int_equal(seen1.identity, 302);
	assert_int_equal(run_tcp_to_pod(f, 81, 0), TC_ACT_SHOT); /* not yet */
	assert_int_equal(seg_dp_endpoint_get(f->dp, EP_IFKEY, &ep), 0);
	assert_int_equal(ep.policy_id[SEG_DIR_INGRESS], 1); /* getters: active epoch */

	assert_int_equal(seg_dp_epoch_flip(f->dp), 0);
	assert_int_equal(seg_dp_epoch_get(f->dp, &epoch, &gen), 0);
	assert_int_equal(epoch, 1);
	assert_int_equal(gen, 1);
	assert_int_equal(seg_dp_endpoint_get(f->dp, EP_IFKEY, &ep), 0);
	assert_int_equal(ep.policy_id[SEG_DIR_INGRESS], 2);
	assert_int_equal(run_tcp_to_pod(f, 81, 0), TC_ACT_UNSPEC); /* new peer identity + policy */

	/* established on 81; epoch 0 (now inactive) still has policy 1, so
	 * flipping back revokes the flow: the generation moved */
	assert_int_equal(seg_dp_reason_get(f->dp, SEG_DROP_REVOKED, &rev0), 0);
	assert_int_equal(run_tcp_to_pod(f, 81, 0x10 /* ACK */), TC_ACT_UNSPEC);
	assert_int_equal(seg_dp_epoch_flip(f->dp), 0);
	assert_int_equal(run_tcp_to_pod(f, 81, 0x10), TC_ACT_SHOT);
	assert_int_equal(seg_dp_reason_get(f->dp, SEG_DROP_REVOKED, &rev1), 0);
	assert_int_equal(rev1.packets - rev0.packets, 1);
	assert_int_equal(run_tcp_to_pod(f, 80, 0), TC_ACT_UNSPEC);

	/* plain del removes from both epochs */
	assert_int_equal(seg_dp_endpoint_del(f->dp, EP_IFKEY), 0);
	assert_int_equal(seg_dp_endpoint_del_in(f->dp, 1, EP_IFKEY), -ENOENT);
	assert_int_equal(seg_dp_ipcache_del(f->dp, &a), 0);
	assert_int_equal(seg_dp_ipcache_del(f->dp, &a), -ENOENT);
	assert_int_equal(seg_dp_ct_flush(f->dp), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_range), cmocka_unit_test(test_ipcache),
		cmocka_unit_test(test_ct),	     cmocka_unit_test(test_percpu_sums),
		cmocka_unit_test(test_events),	     cmocka_unit_test(test_epochs),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_dp_maps: needs root (loads BPF): skipped\n");
		return 77;
	}
	log_init("test_dp_maps", LOG_LVL_WARN);
	return cmocka_run_group_tests_name("dp_maps", tests, group_setup, group_teardown);
}
