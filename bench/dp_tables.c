// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench/datapath tables: fill one seg instance (endpoint, ipcache, LPM,
 * policy, config), build the driver's variant sets and the test packets.
 *
 * Layout, per family, with E = ipcache / 2 entries:
 *   exact hash  9/10 E pod addresses   10.16.0.0 + e     fd00:10:16::e
 *   LPM         1/10 E CIDRs           172.16.0.0/24+c   fd00:17:0:c::/64
 * Entry e names identity 256 + (e % nid); nid = min(policy entries, 1000).
 * Policy entry j (TCP, egress, exact port) = {remote 256 + j % nid,
 * port 1000 + j / nid}: every address has allowed ports, and the number of
 * entries is the only thing that differs between the three instances.
 * Only epoch 0's endpoint/ipcache maps are filled; seg_config.epoch and
 * generation stay 0 (the bench never flips).
 * Rule ids: entries_per_rule consecutive entries share one (default 1: every
 * entry its own rule id, up to SEG_MAX_RULES - 1, the worst case for the
 * per-rule counters).
 */
#include "datapath.h"
#include "seg_bpf.skel.h"
#include "seg_floors.skel.h"
#include "bench_abi.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>
#include <bpf/bpf.h>
#include <seg/abi.h>

#define BENCH_POLICY_ID 1
#define BENCH_EP_ID 1

__u64 bench_rand(__u64 *state)
{
	__u64 x = *state; /* xorshift64* */

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}

static __u32 n_exact(const struct bench *b)
{
	return b->o.ipcache / 2 * 9 / 10;
}

static __u32 n_lpm(const struct bench *b)
{
	return b->o.ipcache / 2 - n_exact(b);
}

static void v4_mapped(__u32 a[4], __u32 host_order)
{
	a[0] = 0;
	a[1] = 0;
	a[2] = htonl(0xffff);
	a[3] = htonl(host_order);
}

/* The remote address that ipcache entry e of a family resolves. */
static void entry_addr(const struct bench *b, __u32 e, int v6, __u32 a[4])
{
	__u32 nex = n_exact(b);

	if (e < nex && !v6) {
		v4_mapped(a, (10u << 24 | 16u << 16) + e);
	} else if (e < nex) {
		a[0] = htonl(0xfd000010);
		a[1] = htonl(0x00160000);
		a[2] = 0;
		a[3] = htonl(e);
	} else if (!v6) {
		v4_mapped(a, (172u << 24 | 16u << 16) + ((e - nex) << 8) + 7);
	} else {
		a[0] = htonl(0xfd000017);
		a[1] = htonl(e - nex);
		a[2] = 0;
		a[3] = htonl(7);
	}
}

static __u32 entry_identity(const struct bench *b, const struct bench_seg *s, __u32 e)
{
	__u32 nex = n_exact(b);

	return SEG_ID_FIRST_ALLOC + (e < nex ? e : e - nex) % s->nid;
}

static int fill_ipcache(struct bench *b, struct bench_seg *s)
{
	int hfd = bpf_map__fd(s->skel->maps.seg_ipcache);
	int lfd = bpf_map__fd(s->skel->maps.seg_ipc_lpm);
	__u32 nex = n_exact(b), n = nex + n_lpm(b);

	for (int v6 = 0; v6 < 2; v6++) {
		for (__u32 e = 0; e < n; e++) {
			struct seg_ipcache_val val = {
				.identity = entry_identity(b, s, e),
			};
			struct seg_lpm_key lk = {};
			struct seg_ipcache_key hk = {};
			int err;

			if (e < nex) {
				entry_addr(b, e, v6, hk.addr);
				err = bpf_map_update_elem(hfd, &hk, &val, BPF_ANY);
			} else {
				entry_addr(b, e, v6, lk.addr);
				lk.addr[3] &= v6 ? 0 : htonl(0xffffff00);
				lk.prefixlen = v6 ? 64 : 96 + 24;
				err = bpf_map_update_elem(lfd, &lk, &val, BPF_ANY);
			}
			if (err)
				return log_err(-errno, "fill %s entry %u",
					       e < nex ? SEG_MAP_IPCACHE : SEG_MAP_IPCACHE_LPM, e);
		}
	}
	return 0;
}

static int fill_policy(const struct bench *b, struct bench_seg *s)
{
	int fd = bpf_map__fd(s->skel->maps.seg_policy);

	for (__u32 j = 0; j < s->entries; j++) {
		struct seg_policy_key k = {
			.policy_id = BENCH_POLICY_ID,
			.remote_id = SEG_ID_FIRST_ALLOC + j % s->nid,
			.port = BENCH_PORT0 + j / s->nid,
			.proto = IPPROTO_TCP,
			.dir = SEG_DIR_EGRESS,
		};
		struct seg_policy_val v = {
			.rule_id = 1 + j / b->o.entries_per_rule % (SEG_MAX_RULES - 1),
			.action = SEG_ACT_ALLOW,
		};

		if (bpf_map_update_elem(fd, &k, &v, BPF_ANY))
			return log_err(-errno, "fill %s entry %u", SEG_MAP_POLICY, j);
	}
	return 0;
}

int bench_fill_seg(struct bench *b, struct bench_seg *s)
{
	struct seg_endpoint ep = {
		.ep_id = BENCH_EP_ID,
		.identity = SEG_ID_FIRST_ALLOC + BENCH_NID_MAX,
		.policy_id = { BENCH_POLICY_ID, BENCH_POLICY_ID },
		.port_mask = { 1, 1 }, /* exact ports only */
		.revision = 1,
		.flags = { SEG_EPF_ISOLATED, SEG_EPF_ISOLATED },
	};
	struct seg_config cfg = {};
	__u32 zero = 0;
	int err;

	s->nid = s->entries < BENCH_NID_MAX ? s->entries : BENCH_NID_MAX;
	if (s->entries % s->nid)
		return log_err(-EINVAL, "policy size %u: use a multiple of %u", s->entries, s->nid);
	if (bpf_map_update_elem(bpf_map__fd(s->skel->maps.seg_endpoints), &b->ifkey, &ep, BPF_ANY))
		return log_err(-errno, "fill %s", SEG_MAP_ENDPOINTS);
	if (bpf_map_update_elem(bpf_map__fd(s->skel->maps.seg_config), &zero, &cfg, BPF_ANY))
		return log_err(-errno, "fill %s", SEG_MAP_CONFIG);
	err = fill_ipcache(b, s);
	if (!err)
		err = fill_policy(b, s);
	return err;
}

__u32 bench_set_allowed(int size, int v6)
{
	return 2 * size + v6;
}

__u32 bench_set_denied(int v6)
{
	return 2 * BENCH_NSIZES + v6;
}

/* exact: a pod address (hash hit); else any entry, 1/10 of them CIDRs. */
static void make_variant(struct bench *b, __u64 *rng, const struct bench_seg *s, int v6, bool exact,
			 struct bench_variant *v)
{
	__u32 e = bench_rand(rng) % (exact ? n_exact(b) : n_exact(b) + n_lpm(b));

	memset(v, 0, sizeof(*v));
	entry_addr(b, e, v6, v->raddr);
	v->lport = BENCH_FIXED_PORT0 + bench_rand(rng) % 20000;
	if (s) /* a port this address's identity is allowed on */
		v->rport = BENCH_PORT0 + bench_rand(rng) % (s->entries / s->nid);
	else
		v->rport = BENCH_DENY_PORT0 + bench_rand(rng) % 1000;
}

int bench_fill_variants(struct bench *b)
{
	__u32 n = BENCH_NSETS * b->o.nvar;
	struct bench_variant *v = calloc(n, sizeof(*v));
	__u32 *keys = calloc(n, sizeof(*keys));
	__u64 rng = b->o.seed;
	int err = 0;

	if (!v || !keys) {
		err = log_err(-ENOMEM, "variants");
		goto out;
	}
	for (__u32 i = 0; i < n; i++) {
		__u32 set = i / b->o.nvar;
		int v6 = set & 1;
		const struct bench_seg *s = set < 2 * BENCH_NSIZES ? &b->seg[set / 2] : NULL;

		keys[i] = i;
		/* the first of a set is the hot key: pod-to-pod, an exact hit */
		make_variant(b, &rng, s, v6, i % b->o.nvar == 0, &v[i]);
	}
	if (bpf_map_update_batch(bpf_map__fd(b->fl->maps.bench_variants), keys, v, &n, NULL))
		err = log_err(-errno, "fill bench_variants (%u)", n);
out:
	free(keys);
	free(v);
	return err;
}

static __u16 ip_csum(const void *hdr, size_t len)
{
	const __u16 *p = hdr;
	__u32 sum = 0;

	for (size_t i = 0; i < len / 2; i++)
		sum += p[i];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/* Ethernet + IPv4|IPv6 + TCP (SYN, or ACK for established flows). The driver
 * overwrites destination, ports and possibly the low source bits. */
size_t bench_build_pkt(__u8 *buf, int v6, bool ack)
{
	static const __u8 eth[12] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2 };
	struct tcphdr tcp = {
		.th_sport = htons(BENCH_FIXED_PORT0),
		.th_dport = htons(BENCH_PORT0),
		.th_seq = htonl(1),
		.th_ack = ack ? htonl(1) : 0,
		.th_off = 5,
		.th_flags = ack ? TH_ACK : TH_SYN,
		.th_win = htons(65535),
	};
	size_t l3;

	memset(buf, 0, BENCH_PKT_MAX);
	memcpy(buf, eth, sizeof(eth));
	if (v6) {
		struct ip6_hdr ip6 = {
			.ip6_flow = htonl(6u << 28),
			.ip6_plen = htons(sizeof(tcp)),
			.ip6_nxt = IPPROTO_TCP,
			.ip6_hops = 64,
		};

		buf[12] = 0x86;
		buf[13] = 0xdd;
		inet_pton(AF_INET6, "fd00:200::1", &ip6.ip6_src);
		inet_pton(AF_INET6, "fd00:10:16::1", &ip6.ip6_dst);
		memcpy(buf + 14, &ip6, sizeof(ip6));
		l3 = sizeof(ip6);
	} else {
		struct iphdr ip = {
			.version = 4,
			.ihl = 5,
			.tot_len = htons(sizeof(ip) + sizeof(tcp)),
			.ttl = 64,
			.protocol = IPPROTO_TCP,
			.saddr = htonl(10u << 24 | 200u << 16 | 1),
			.daddr = htonl(10u << 24 | 16u << 16 | 1),
		};

		ip.check = ip_csum(&ip, sizeof(ip));
		buf[12] = 0x08;
		buf[13] = 0x00;
		memcpy(buf + 14, &ip, sizeof(ip));
		l3 = sizeof(ip);
	}
	memcpy(buf + 14 + l3, &tcp, sizeof(tcp));
	return 14 + l3 + sizeof(tcp);
}
