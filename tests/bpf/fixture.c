// SPDX-License-Identifier: GPL-2.0-only
/* Fixture for the BPF_PROG_TEST_RUN suite: see fixture.h. */
#include "fixture.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seg_bpf.skel.h"

#define FX_XDP_DROP 1
#define FX_XDP_PASS 2

static struct fx fx_g;

struct fx_peer_def {
	const char *v4, *v6;
	__u32 identity;
	__u32 owner;
	bool in_ipcache;
};

static const struct fx_peer_def fx_peers[FX_PEER_MAX] = {
	[FX_POD] = { "10.0.0.1", "fd00::1", FX_LOCAL_ID, FX_IFKEY, true },
	[FX_A] = { "10.1.0.5", "fd01::5", FX_ID_A, 0, true },
	[FX_B] = { "10.1.0.6", "fd01::6", FX_ID_B, 0, true },
	[FX_NET] = { "10.2.3.4", "fd02::34", FX_ID_NET, 0, false },
	[FX_WORLD] = { "192.0.2.9", "2001:db8::9", SEG_ID_WORLD, 0, false },
	[FX_HOST] = { "10.0.0.254", "fd00::fe", SEG_ID_HOST, 0, true },
	[FX_POD2] = { "10.0.0.2", "fd00::2", FX_LOCAL_ID, FX_IFKEY + 1, true },
};

static const struct {
	const char *addr;
	__u32 plen; /* ABI form: IPv4 /n is 96 + n */
} fx_lpm_entries[] = { { "10.2.0.0", 96 + 16 }, { "fd02::", 64 } };

struct fx *fx(void)
{
	return &fx_g;
}

__u32 fx_peer_id(enum fx_peer peer)
{
	return fx_peers[peer].identity;
}

const char *fx_addr(enum fx_peer peer, int family)
{
	return family == 6 ? fx_peers[peer].v6 : fx_peers[peer].v4;
}

const char *fx_hook_name(enum fx_hook hook)
{
	static const char *const names[] = { "to_pod", "from_pod", "xdp_from_pod" };

	return names[hook];
}

__u8 fx_hook_dir(enum fx_hook hook)
{
	return hook == FX_TO_POD ? SEG_DIR_INGRESS : SEG_DIR_EGRESS;
}

static void fx_pin_cpu(void)
{
	cpu_set_t set;
	int cpu = sched_getcpu();

	CPU_ZERO(&set);
	CPU_SET(cpu < 0 ? 0 : cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		fprintf(stderr, "bpf tests: sched_setaffinity: %s (per-CPU checks may flake)\n",
			strerror(errno));
}

static int fx_on_event(void *ctx, void *data, size_t size)
{
	struct fx *f = ctx;

	if (size < sizeof(struct seg_flow_event))
		return 0;
	f->n_ev_seen++;
	if (f->n_ev >= FX_MAX_EV)
		return 0;
	memcpy(&f->ev[f->n_ev++], data, sizeof(struct seg_flow_event));
	return 0;
}

int fx_load(__u32 cfg_ifkey)
{
	struct fx *f = &fx_g;
	struct seg_bpf *skel;
	int err;

	skel = seg_bpf__open();
	if (!skel) {
		fprintf(stderr, "bpf tests: open skeleton: %s\n", strerror(errno));
		return -1;
	}
	if (cfg_ifkey)
		skel->rodata->seg_cfg_ifkey = cfg_ifkey;
	/* Small maps: quick to load and to clear between cases. */
	bpf_map__set_max_entries(skel->maps.seg_rules, FX_RULES_MAX);
	bpf_map__set_max_entries(skel->maps.seg_ct, 16384);
	bpf_map__set_max_entries(skel->maps.seg_ipcache, 4096);
	bpf_map__set_max_entries(skel->maps.seg_policy, 16384);
	err = seg_bpf__load(skel);
	if (err) {
		fprintf(stderr, "bpf tests: load skeleton: %s\n", strerror(-err));
		seg_bpf__destroy(skel);
		return -1;
	}
	memset(f, 0, sizeof(*f));
	f->skel = skel;
	f->ifkey = cfg_ifkey ? cfg_ifkey : FX_IFKEY;
	f->ncpu = libbpf_num_possible_cpus();
	f->fd_ep = bpf_map__fd(skel->maps.seg_endpoints);
	f->fd_ipc = bpf_map__fd(skel->maps.seg_ipcache);
	f->fd_lpm = bpf_map__fd(skel->maps.seg_ipc_lpm);
	f->fd_pol = bpf_map__fd(skel->maps.seg_policy);
	f->fd_ct = bpf_map__fd(skel->maps.seg_ct);
	f->fd_frag = bpf_map__fd(skel->maps.seg_frag);
	f->fd_reasons = bpf_map__fd(skel->maps.seg_reasons);
	f->fd_rules = bpf_map__fd(skel->maps.seg_rules);
	f->fd_rl = bpf_map__fd(skel->maps.seg_evt_rl);
	f->fd_cfg = bpf_map__fd(skel->maps.seg_config);
	f->prog[FX_TO_POD] = bpf_program__fd(skel->progs.seg_tc_to_pod);
	f->prog[FX_FROM_POD] = bpf_program__fd(skel->progs.seg_tc_from_pod);
	f->prog[FX_XDP_FROM_POD] = bpf_program__fd(skel->progs.seg_xdp_from_pod);
	f->rb = ring_buffer__new(bpf_map__fd(skel->maps.seg_events), fx_on_event, f, NULL);
	if (!f->rb) {
		fprintf(stderr, "bpf tests: ring_buffer__new: %s\n", strerror(errno));
		seg_bpf__destroy(skel);
		f->skel = NULL;
		return -1;
	}
	return 0;
}

int fx_group_setup(void **state)
{
	fx_pin_cpu();
	return fx_load(0);
}

int fx_group_teardown(void **state)
{
	struct fx *f = &fx_g;

	ring_buffer__free(f->rb);
	seg_bpf__destroy(f->skel);
	f->rb = NULL;
	f->skel = NULL;
	return 0;
}

static void fx_clear_hash(int fd, size_t key_size)
{
	__u8 key[64];

	assert_true(key_size <= sizeof(key));
	while (!bpf_map_get_next_key(fd, NULL, key))
		assert_int_equal(bpf_map_delete_elem(fd, key), 0);
}

static void fx_clear_percpu_array(int fd, __u32 n, size_t value_size)
{
	size_t sz = value_size * (size_t)fx_g.ncpu;
	void *zero = calloc(1, sz);

	assert_non_null(zero);
	for (__u32 i = 0; i < n; i++)
		assert_int_equal(bpf_map_update_elem(fd, &i, zero, BPF_ANY), 0);
	free(zero);
}

void fx_ipcache(const char *addr, __u32 identity, __u32 owner)
{
	struct seg_ipcache_key k;
	struct seg_ipcache_val v = { .identity = identity, .owner_ifkey = owner };

	assert_int_equal(tp_addr(addr, k.addr), 0);
	assert_int_equal(bpf_map_update_elem(fx_g.fd_ipc, &k, &v, BPF_ANY), 0);
}

static void fx_base_world(void)
{
	struct seg_ipcache_val v = { .identity = FX_ID_NET };
	struct seg_lpm_key lk;

	for (int p = 0; p < FX_PEER_MAX; p++) {
		if (!fx_peers[p].in_ipcache)
			continue;
		fx_ipcache(fx_peers[p].v4, fx_peers[p].identity, fx_peers[p].owner);
		fx_ipcache(fx_peers[p].v6, fx_peers[p].identity, fx_peers[p].owner);
	}
	for (size_t i = 0; i < sizeof(fx_lpm_entries) / sizeof(fx_lpm_entries[0]); i++) {
		memset(&lk, 0, sizeof(lk));
		lk.prefixlen = fx_lpm_entries[i].plen;
		assert_int_equal(tp_addr(fx_lpm_entries[i].addr, lk.addr), 0);
		assert_int_equal(bpf_map_update_elem(fx_g.fd_lpm, &lk, &v, BPF_ANY), 0);
	}
}

int fx_reset(void **state)
{
	struct fx *f = &fx_g;

	fx_clear_hash(f->fd_ep, sizeof(__u32));
	fx_clear_hash(f->fd_ipc, sizeof(struct seg_ipcache_key));
	fx_clear_hash(f->fd_lpm, sizeof(struct seg_lpm_key));
	fx_clear_hash(f->fd_pol, sizeof(struct seg_policy_key));
	fx_clear_hash(f->fd_ct, sizeof(struct seg_ct_key));
	fx_clear_hash(f->fd_frag, sizeof(struct seg_frag_key));
	fx_clear_hash(f->fd_rl, sizeof(__u32));
	fx_clear_percpu_array(f->fd_reasons, SEG_REASON_MAX, sizeof(struct seg_counter));
	fx_clear_percpu_array(f->fd_rules, FX_RULES_MAX, sizeof(struct seg_rule_counter));
	fx_config(0);
	ring_buffer__consume(f->rb);
	f->n_ev = 0;
	f->n_ev_seen = 0;
	fx_base_world();
	memset(&f->ep, 0, sizeof(f->ep));
	f->ep.ep_id = FX_EP_ID;
	f->ep.identity = FX_LOCAL_ID;
	f->ep.policy_id[SEG_DIR_INGRESS] = FX_POL_IN;
	f->ep.policy_id[SEG_DIR_EGRESS] = FX_POL_EG;
	f->ep.revision = FX_REV;
	fx_ep_write();
	return 0;
}

void fx_ep_write(void)
{
	assert_int_equal(bpf_map_update_elem(fx_g.fd_ep, &fx_g.ifkey, &fx_g.ep, BPF_ANY), 0);
}

void fx_ep_flags(__u8 flags_in, __u8 flags_eg)
{
	fx_g.ep.flags[SEG_DIR_INGRESS] = flags_in;
	fx_g.ep.flags[SEG_DIR_EGRESS] = flags_eg;
	fx_ep_write();
}

void fx_gen_bump(void)
{
	struct seg_config cfg;
	__u32 zero = 0;

	assert_int_equal(bpf_map_lookup_elem(fx_g.fd_cfg, &zero, &cfg), 0);
	cfg.generation++;
	assert_int_equal(bpf_map_update_elem(fx_g.fd_cfg, &zero, &cfg, BPF_ANY), 0);
}

__u32 fx_gen(void)
{
	struct seg_config cfg;
	__u32 zero = 0;

	assert_int_equal(bpf_map_lookup_elem(fx_g.fd_cfg, &zero, &cfg), 0);
	return cfg.generation;
}

void fx_ep_bump_only(void)
{
	fx_g.ep.revision++;
	fx_ep_write();
}

void fx_ep_bump(void)
{
	fx_ep_bump_only();
	fx_gen_bump();
}

void fx_ep_delete(void)
{
	assert_int_equal(bpf_map_delete_elem(fx_g.fd_ep, &fx_g.ifkey), 0);
}

void fx_config_full(const struct seg_config *cfg)
{
	__u32 zero = 0;

	assert_int_equal(bpf_map_update_elem(fx_g.fd_cfg, &zero, cfg, BPF_ANY), 0);
}

void fx_config(__u32 flags)
{
	struct seg_config cfg = { .flags = flags };

	fx_config_full(&cfg);
}

int fx_range_blocks(__u16 lo, __u16 hi, __u16 *port, __u8 *k, int max)
{
	__u32 p = lo;
	int n = 0;

	while (p <= hi && n < max) {
		__u8 w = 0;

		/* widest aligned block starting at p that ends within hi */
		while (w < 16 && !(p & ((1u << (w + 1)) - 1)) && p + (1u << (w + 1)) - 1 <= hi)
			w++;
		port[n] = (__u16)p;
		k[n] = w;
		n++;
		p += 1u << w;
	}
	return n;
}

bool fx_proto_has_ports(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP_;
}

static int fx_rule_apply(const struct fx_rule *r, bool add)
{
	struct seg_policy_val v = { .rule_id = r->rule_id, .action = r->action };
	struct seg_policy_key key;
	__u16 port[32];
	__u8 k[32];
	int n;

	if (r->proto == 0 || !fx_proto_has_ports(r->proto)) {
		n = 1;
		port[0] = 0;
		k[0] = 16;
	} else {
		n = fx_range_blocks(r->lo, r->hi, port, k, 32);
		assert_true(n <= 30);
	}
	for (int i = 0; i < n; i++) {
		memset(&key, 0, sizeof(key));
		key.policy_id = fx_g.ep.policy_id[r->dir];
		key.remote_id = r->remote_id;
		key.port = port[i];
		key.proto = r->proto;
		key.dir = r->dir;
		key.port_wild = k[i];
		if (add)
			assert_int_equal(bpf_map_update_elem(fx_g.fd_pol, &key, &v, BPF_ANY), 0);
		else
			assert_int_equal(bpf_map_delete_elem(fx_g.fd_pol, &key), 0);
		if (add)
			fx_g.ep.port_mask[r->dir] |= r->proto ? 1u << k[i] : SEG_PMASK_ANYPROTO;
	}
	if (add)
		fx_ep_write();
	return n;
}

int fx_rule_add(const struct fx_rule *r)
{
	return fx_rule_apply(r, true);
}

void fx_rule_del(const struct fx_rule *r)
{
	fx_rule_apply(r, false);
}

struct tp_spec fx_flow(int family, enum fx_hook hook, enum fx_peer peer, __u8 proto, __u16 lport,
		       __u16 rport)
{
	bool out = hook != FX_TO_POD;
	struct tp_spec s = { .proto = proto };

	s.src = fx_addr(out ? FX_POD : peer, family);
	s.dst = fx_addr(out ? peer : FX_POD, family);
	s.sport = out ? lport : rport;
	s.dport = out ? rport : lport;
	if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
		s.proto = family == 6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
		s.icmp_type = family == 6 ? 128 : 8;
		s.icmp_id = FX_ECHO_ID;
		s.sport = s.dport = 0;
	}
	return s;
}

static int fx_verdict(enum fx_hook hook, __u32 retval)
{
	if (hook == FX_XDP_FROM_POD)
		return retval == FX_XDP_PASS ? FX_PASS : retval == FX_XDP_DROP ? FX_DROP : FX_OTHER;
	if ((int)retval == TC_ACT_UNSPEC)
		return FX_PASS;
	return retval == TC_ACT_SHOT ? FX_DROP : FX_OTHER;
}

int fx_run_raw(enum fx_hook hook, const void *pkt, int len)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = (__u32)len, .repeat = 1);
	int ret;

	ret = bpf_prog_test_run_opts(fx_g.prog[hook], &o);
	if (ret)
		fail_msg("%s: BPF_PROG_TEST_RUN: %s", fx_hook_name(hook), strerror(-ret));
	return fx_verdict(hook, o.retval);
}

int fx_run(enum fx_hook hook, const struct tp_spec *s, int *len)
{
	__u8 buf[TP_BUF_SIZE];
	int n = tp_build(buf, sizeof(buf), s);

	if (n < 0)
		fail_msg("tp_build: %s", strerror(-n));
	if (len)
		*len = n;
	return fx_run_raw(hook, buf, n);
}

struct seg_counter fx_reason(__u32 reason)
{
	struct seg_counter sum = { 0 };
	struct seg_counter *v = calloc((size_t)fx_g.ncpu, sizeof(*v));

	assert_non_null(v);
	assert_int_equal(bpf_map_lookup_elem(fx_g.fd_reasons, &reason, v), 0);
	for (int i = 0; i < fx_g.ncpu; i++) {
		sum.packets += v[i].packets;
		sum.bytes += v[i].bytes;
	}
	free(v);
	return sum;
}

struct seg_rule_counter fx_rule_ctr(__u32 rule_id)
{
	struct seg_rule_counter sum = { 0 };
	struct seg_rule_counter *v = calloc((size_t)fx_g.ncpu, sizeof(*v));

	assert_non_null(v);
	assert_int_equal(bpf_map_lookup_elem(fx_g.fd_rules, &rule_id, v), 0);
	for (int i = 0; i < fx_g.ncpu; i++) {
		sum.packets += v[i].packets;
		sum.bytes += v[i].bytes;
		if (v[i].last_hit_ns > sum.last_hit_ns)
			sum.last_hit_ns = v[i].last_hit_ns;
	}
	free(v);
	return sum;
}

struct seg_evt_rl fx_evt_rl(__u32 ifkey)
{
	struct seg_evt_rl sum = { 0 };
	struct seg_evt_rl *v = calloc((size_t)fx_g.ncpu, sizeof(*v));

	assert_non_null(v);
	if (bpf_map_lookup_elem(fx_g.fd_rl, &ifkey, v) == 0) {
		for (int i = 0; i < fx_g.ncpu; i++) {
			sum.suppressed += v[i].suppressed;
			sum.suppressed_total += v[i].suppressed_total;
		}
	}
	free(v);
	return sum;
}

int fx_ct(int family, enum fx_peer peer, __u16 lport, __u16 rport, __u8 proto,
	  struct seg_ct_entry *out)
{
	struct seg_ct_key k;

	memset(&k, 0, sizeof(k));
	assert_int_equal(tp_addr(fx_addr(FX_POD, family), k.laddr), 0);
	assert_int_equal(tp_addr(fx_addr(peer, family), k.raddr), 0);
	if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
		proto = family == 6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
		lport = rport = FX_ECHO_ID;
	}
	k.lport = lport;
	k.rport = rport;
	k.proto = proto;
	if (bpf_map_lookup_elem(fx_g.fd_ct, &k, out))
		return -ENOENT;
	return 0;
}

int fx_map_count(int fd)
{
	__u8 key[64], next[64];
	int n = 0;
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, sizeof(key));
		prev = key;
		n++;
	}
	return n;
}

int fx_ct_count(void)
{
	return fx_map_count(fx_g.fd_ct);
}

int fx_events(void)
{
	int err = ring_buffer__consume(fx_g.rb);

	assert_true(err >= 0);
	return fx_g.n_ev;
}

void fx_assert_only_reason(__u32 reason, __u64 packets, long long bytes)
{
	for (__u32 r = 0; r < SEG_REASON_MAX; r++) {
		struct seg_counter c = fx_reason(r);

		if (r != reason) {
			if (c.packets)
				fail_msg("reason %u counted %llu packets (expected only reason %u)",
					 r, (unsigned long long)c.packets, reason);
			continue;
		}
		if (c.packets != packets)
			fail_msg("reason %u: %llu packets, expected %llu", r,
				 (unsigned long long)c.packets, (unsigned long long)packets);
		if (bytes >= 0 && c.bytes != (__u64)bytes)
			fail_msg("reason %u: %llu bytes, expected %lld", r,
				 (unsigned long long)c.bytes, bytes);
	}
}

int fx_run_table(const char *group, CMUnitTestFunction fn, const void *rows, size_t row_size,
		 size_t n)
{
	struct CMUnitTest *tests = calloc(2 * n, sizeof(*tests));
	struct fx_inst *inst = calloc(2 * n, sizeof(*inst));
	size_t count = 0;
	int failed;

	if (!tests || !inst) {
		free(tests);
		free(inst);
		fprintf(stderr, "bpf tests: out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		const struct fx_row *row = (const void *)((const char *)rows + i * row_size);

		for (int fam = 4; fam <= 6; fam += 2) {
			struct fx_inst *in = &inst[count];

			if (row->fam && row->fam != fam)
				continue;
			in->row = row;
			in->family = fam;
			snprintf(in->name, sizeof(in->name), "v%d %s", fam, row->name);
			tests[count] = (struct CMUnitTest){ .name = in->name,
							    .test_func = fn,
							    .setup_func = fx_reset,
							    .initial_state = in };
			count++;
		}
	}
	failed = _cmocka_run_group_tests(group, tests, count, fx_group_setup, fx_group_teardown);
	free(tests);
	free(inst);
	return failed;
}

int fx_run_on(enum fx_hook hook, const struct tp_spec *s, __u32 ifindex)
{
	struct __sk_buff skb = { .ifindex = ifindex };
	struct xdp_md xdp = { .ingress_ifindex = ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o, .repeat = 1);
	__u8 buf[TP_BUF_SIZE];
	int n = tp_build(buf, sizeof(buf), s);
	int ret;

	if (n < 0)
		fail_msg("tp_build: %s", strerror(-n));
	o.data_in = buf;
	o.data_size_in = (__u32)n;
	if (hook == FX_XDP_FROM_POD) {
		xdp.data_end = (__u32)n;
		o.ctx_in = &xdp;
		o.ctx_size_in = sizeof(xdp);
	} else {
		o.ctx_in = &skb;
		o.ctx_size_in = sizeof(skb);
	}
	ret = bpf_prog_test_run_opts(fx_g.prog[hook], &o);
	if (ret)
		fail_msg("%s on ifindex %u: BPF_PROG_TEST_RUN: %s", fx_hook_name(hook), ifindex,
			 strerror(-ret));
	return fx_verdict(hook, o.retval);
}
