/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Every map of the data path. The endpoint and ipcache maps come twice,
 * one per epoch (seg_config.epoch picks; abi.h "epochs"). Types and sizes
 * come from include/seg/abi.h; userspace may resize (bpf_map__set_max_entries) before load. Maps are not
 * auto-pinned: lib/dp pins and reuses them under a configurable directory. */
#ifndef SEG_BPF_MAPS_H
#define SEG_BPF_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <seg/abi.h>

/* The epoch-keyed maps: one type each, declared once per epoch. */
#define SEG_ENDPOINTS_MAP(name)                         \
	struct {                                        \
		__uint(type, BPF_MAP_TYPE_HASH);        \
		__uint(max_entries, SEG_MAX_ENDPOINTS); \
		__type(key, __u32); /* ifkey */         \
		__type(value, struct seg_endpoint);     \
	} name SEC(".maps")

#define SEG_IPCACHE_MAP(name)                          \
	struct {                                       \
		__uint(type, BPF_MAP_TYPE_HASH);       \
		__uint(max_entries, SEG_MAX_IPCACHE);  \
		__type(key, struct seg_ipcache_key);   \
		__type(value, struct seg_ipcache_val); \
	} name SEC(".maps")

#define SEG_IPCACHE_LPM_MAP(name)                         \
	struct {                                          \
		__uint(type, BPF_MAP_TYPE_LPM_TRIE);      \
		__uint(max_entries, SEG_MAX_IPCACHE_LPM); \
		__uint(map_flags, BPF_F_NO_PREALLOC);     \
		__type(key, struct seg_lpm_key);          \
		__type(value, struct seg_ipcache_val);    \
	} name SEC(".maps")

SEG_ENDPOINTS_MAP(seg_endpoints);
SEG_ENDPOINTS_MAP(seg_endpoints1);
SEG_IPCACHE_MAP(seg_ipcache);
SEG_IPCACHE_MAP(seg_ipcache1);
SEG_IPCACHE_LPM_MAP(seg_ipc_lpm);
SEG_IPCACHE_LPM_MAP(seg_ipc_lpm1);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SEG_MAX_POLICY);
	__type(key, struct seg_policy_key);
	__type(value, struct seg_policy_val);
} seg_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SEG_MAX_CT);
	__type(key, struct seg_ct_key);
	__type(value, struct seg_ct_entry);
} seg_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SEG_MAX_FRAG);
	__type(key, struct seg_frag_key);
	__type(value, struct seg_frag_val);
} seg_frag SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SEG_EVENTS_BYTES);
} seg_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SEG_REASON_MAX);
	__type(key, __u32);
	__type(value, struct seg_counter);
} seg_reasons SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SEG_MAX_RULES);
	__type(key, __u32);
	__type(value, struct seg_rule_counter);
} seg_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, SEG_MAX_ENDPOINTS);
	__type(key, __u32); /* ifkey */
	__type(value, struct seg_evt_rl);
} seg_evt_rl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct seg_config);
} seg_config SEC(".maps");

/* Lookup in epoch's map of a twin pair (map0 for epoch 0, map1 for 1).
 * Two call sites the compiler must not merge into one: the verifier
 * inlines a lookup only where the map is a known constant, and a merged
 * call site (map pointer chosen at run time) becomes the generic, indirect
 * bpf_map_lookup_elem. The empty asm in one branch keeps them apart. */
#define seg_epoch_lookup(epoch, map0, map1, key)                 \
	({                                                       \
		void *__v;                                       \
		if (epoch) {                                     \
			__v = bpf_map_lookup_elem(&(map1), key); \
			asm volatile("" ::: "memory");           \
		} else {                                         \
			__v = bpf_map_lookup_elem(&(map0), key); \
		}                                                \
		__v;                                             \
	})

#endif
