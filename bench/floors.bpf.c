// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Benchmark floors and the packet driver (bench/datapath).
 *
 * Floors: what the cheapest conceivable program of each kind costs, measured
 * in the same run as seg so the ratios are machine-independent.
 *   floor_empty     returns at once
 *   floor_classify  parse Ethernet/IPv4|IPv6/TCP|UDP + one hash lookup
 *   floor_stateful  the same parse + one LRU insert + one ring buffer record
 * The floors use seg's own key/value/event layouts and map sizes, so the
 * memory they touch matches the real conntrack and events.
 *
 * Driver: bench_drive rewrites the test packet with the next variant (remote
 * address and port, local port, or a fresh local port/address per packet)
 * and tail-calls the program in bench_target[0]. BPF_PROG_TEST_RUN repeats
 * one skb; the driver is what makes every repetition a different packet.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <seg/abi.h>
#include "bench_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SEG_MAX_CT);
	__type(key, struct seg_ct_key);
	__type(value, struct seg_ct_entry);
} floor_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SEG_EVENTS_BYTES);
} floor_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BENCH_MAX_VARIANTS);
	__type(key, __u32);
	__type(value, struct bench_variant);
} bench_variants SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_target SEC(".maps");

/* Driver state, written by userspace through the mmapped .bss. */
__u64 bench_seq; /* packets driven so far: never reset */
__u32 bench_base; /* first variant of the current set */
__u32 bench_mask; /* set size - 1 (a power of two) */
__u32 bench_fresh; /* 1: every packet a new flow (see bench_abi.h) */
__u32 bench_v6; /* 1: the template is IPv6 */

SEC("tc")
int floor_empty(struct __sk_buff *skb)
{
	return TC_ACT_UNSPEC;
}

/* Egress view, as seg keys a flow leaving a pod: local = source. */
static __always_inline int floor_parse(struct __sk_buff *skb, struct seg_ct_key *k)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u16 *ports;
	__u8 proto;

	if ((void *)(eth + 1) > end)
		return -1;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->ihl < 5)
			return -1;
		k->laddr[2] = bpf_htonl(0xffff);
		k->laddr[3] = ip->saddr;
		k->raddr[2] = bpf_htonl(0xffff);
		k->raddr[3] = ip->daddr;
		proto = ip->protocol;
		ports = (void *)ip + ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end)
			return -1;
		__builtin_memcpy(k->laddr, &ip6->saddr, 16);
		__builtin_memcpy(k->raddr, &ip6->daddr, 16);
		proto = ip6->nexthdr;
		ports = (void *)(ip6 + 1);
	} else {
		return -1;
	}
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		if ((void *)(ports + 2) > end)
			return -1;
		k->lport = bpf_ntohs(ports[0]);
		k->rport = bpf_ntohs(ports[1]);
	}
	k->proto = proto;
	return 0;
}

SEC("tc")
int floor_classify(struct __sk_buff *skb)
{
	struct seg_ct_key k = {};

	if (floor_parse(skb, &k))
		return TC_ACT_SHOT;
	return bpf_map_lookup_elem(&floor_ct, &k) ? TC_ACT_UNSPEC : TC_ACT_SHOT;
}

SEC("tc")
int floor_stateful(struct __sk_buff *skb)
{
	struct seg_ct_key k = {};
	struct seg_ct_entry e = {};
	struct seg_flow_event *ev;
	__u64 now;

	if (floor_parse(skb, &k))
		return TC_ACT_SHOT;
	now = bpf_ktime_get_ns();
	e.first_seen_ns = now;
	e.last_seen_ns = now;
	e.packets[SEG_DIR_EGRESS] = 1;
	e.bytes[SEG_DIR_EGRESS] = skb->len;
	/* Insert only: a flow already there keeps its element, as seg keeps
	 * an existing entry. (BPF_ANY on an LRU hash takes a new element for
	 * every update and frees the old one: the classifier floor's flows,
	 * put there by this program twice, ended up in elements its own
	 * warm-up had just recycled and written, while seg's stay where the
	 * LRU first put them; that made the floor's varied lookups 2x
	 * cheaper.) For fresh flows (the stateful rows) the two are the
	 * same insert. */
	if (bpf_map_update_elem(&floor_ct, &k, &e, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&floor_ct, &k))
		return TC_ACT_SHOT;
	ev = bpf_ringbuf_reserve(&floor_events, sizeof(*ev), 0);
	if (!ev)
		return TC_ACT_UNSPEC;
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->ts_ns = now;
	__builtin_memcpy(ev->saddr, k.laddr, 16);
	__builtin_memcpy(ev->daddr, k.raddr, 16);
	ev->sport = k.lport;
	ev->dport = k.rport;
	ev->pkt_len = skb->len;
	ev->type = SEG_EV_NEW;
	ev->dir = SEG_DIR_EGRESS;
	ev->proto = k.proto;
	bpf_ringbuf_submit(ev, 0);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int bench_drive(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u64 seq = bench_seq++;
	__u32 idx = bench_base + (seq & bench_mask);
	struct bench_variant *v = bpf_map_lookup_elem(&bench_variants, &idx);
	__u16 lport, *ports;
	__u8 *lo16; /* low 16 bits of the local (source) address */

	if (!v)
		return BENCH_RET_NO_VARIANT;
	if (bench_v6) {
		struct ipv6hdr *ip6 = data + ETH_HLEN;

		ports = (void *)(ip6 + 1);
		if ((void *)(ports + 2) > end)
			return BENCH_RET_SHORT;
		__builtin_memcpy(&ip6->daddr, v->raddr, 16);
		lo16 = (__u8 *)&ip6->saddr + 14;
	} else {
		struct iphdr *ip = data + ETH_HLEN;

		ports = (void *)(ip + 1);
		if ((void *)(ports + 2) > end)
			return BENCH_RET_SHORT;
		ip->daddr = v->raddr[3];
		lo16 = (__u8 *)&ip->saddr + 2;
	}
	lport = v->lport;
	if (bench_fresh) {
		__u16 hi = (seq >> 15) & 0xffff;

		lport = BENCH_FRESH_PORT0 + (seq & 0x7fff);
		lo16[0] = hi >> 8;
		lo16[1] = hi & 0xff;
	}
	ports[0] = bpf_htons(lport);
	ports[1] = bpf_htons(v->rport);
	bpf_tail_call(skb, &bench_target, 0);
	return BENCH_RET_NO_TARGET;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
