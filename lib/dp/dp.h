/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * lib/dp: the one way userspace touches the data path.
 *
 *   struct seg_dp *dp;
 *   seg_dp_open(&dp, &(struct seg_dp_opts){ .pin_dir = "/sys/fs/bpf/seg" });
 *   seg_dp_attach(dp, &(struct seg_dp_attach){ .ifname = "cali1234", .mode = SEG_ATTACH_VETH });
 *   seg_dp_endpoint_set(dp, ifkey, &ep);
 *   ...
 *   seg_dp_close(dp);           // programs, maps and links stay pinned
 *
 * Every function returns 0 or -errno and has already logged what failed,
 * naming the object (map, interface, path). Nothing here calls exit().
 */
#ifndef SEG_DP_H
#define SEG_DP_H

#include <seg/abi.h>
#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>
#include "addr.h"

struct seg_dp;

struct seg_dp_opts {
	/* bpffs directory for maps, programs and links. NULL: a private
	 * instance, nothing pinned, nothing reused (tests, policy test). */
	const char *pin_dir;
	/* Map capacities; 0 keeps the default from abi.h. */
	__u32 max_endpoints, max_ipcache, max_ipcache_lpm, max_policy, max_ct, max_rules;
	/* Only open pins that exist (segctl); never load or create. */
	bool open_existing;
	/* A pin whose type, sizes or flags differ from what this seg needs
	 * (stale: an upgrade) is rebuilt instead of refused: conntrack,
	 * fragments and counters carry their entries when their layout is the
	 * same; endpoints, ipcache, policy and config are made anew, empty,
	 * and seg_dp_commit_pending() then says the caller must fill them
	 * before seg_dp_commit() moves the links (segd). */
	bool rebuild_stale;
};

/* Loads a new program instance; its maps reuse compatible pins under
 * pin_dir (an incompatible pin is refused, naming the map and the fix,
 * unless rebuild_stale) and
 * new maps are pinned. Programs are pinned as <pin_dir>/progs/<name> and
 * links already pinned under <pin_dir>/links are moved onto them, so a
 * restart runs the new code without detaching. pin_dir is created
 * (mkdir -p) and must be on bpffs. With open_existing, only bpf_obj_get()s
 * the pins: maps must exist, programs are optional (seg_dp_prog_fd then
 * fails); nothing is loaded. opts NULL = private instance, defaults. */
int seg_dp_open(struct seg_dp **dp, const struct seg_dp_opts *opts);
/* After an open with rebuild_stale: true when maps the caller computes
 * (endpoints, ipcache, policy, config) were made anew. Until seg_dp_commit()
 * the programs attached before go on with the old maps and pins; dp's maps
 * are the new ones, for the caller to fill. */
bool seg_dp_commit_pending(const struct seg_dp *dp);
/* Pins the new programs, moves every pinned link onto them, then replaces
 * the stale pins by the rebuilt maps. 0 when nothing is pending. */
int seg_dp_commit(struct seg_dp *dp);
/* Closes fds; pinned objects stay. A private instance's links are closed
 * (so detached). NULL-safe. */
void seg_dp_close(struct seg_dp *dp);
/* Removes every pin (links first => detaches, programs, maps) and the
 * directories. Refuses a directory not on bpffs. A missing dir is 0. */
int seg_dp_unpin_all(const char *pin_dir);
/* The pin directory, or NULL for a private instance. */
const char *seg_dp_pin_dir(const struct seg_dp *dp);

enum seg_attach_mode {
	SEG_ATTACH_VETH, /* host-side veth: tc ingress=from pod, tc egress=to pod */
	SEG_ATTACH_OVS, /* host-side OVS netdev port: xdp=from pod, tc egress=to pod */
	SEG_ATTACH_POD, /* inside the pod netns: tc egress=from pod, tc ingress=to pod */
};

struct seg_dp_attach {
	const char *ifname; /* or ifindex */
	int ifindex;
	const char *netns; /* path (/run/netns/x, /proc/PID/ns/net) or NULL: ours */
	enum seg_attach_mode mode;
	__u32 ep_id; /* SEG_ATTACH_POD: ifkey = SEG_IFKEY_NETNS | ep_id */
};

/* Attaches both directions and pins the links as
 * <pin_dir>/links/<ifkey>-{from,to} (%u decimal; a private instance keeps
 * the link fds). Re-attaching replaces: host-side, a link of the same kind
 * on the same interface is moved to the program with bpf_link_update (no
 * window); else (and always in POD mode) the new link is made first and
 * then the old dropped. If the second direction fails, a first one made
 * anew is dropped but one updated in place stays updated. VETH/OVS: ifkey =
 * the ifindex (in a->netns if given; all host-side attachments of a pin dir
 * must share one netns, the node's). POD: a separate program instance is
 * loaded with seg_cfg_ifkey = SEG_IFKEY_NETNS | ep_id, sharing all maps;
 * ep_id must be 1..0x7fffffff. With a->netns, the calling thread enters
 * that netns for the lookup and attach and always returns to its own.
 * Works on an open_existing dp when its programs are pinned. Returns the
 * endpoint map key (ifkey) through *ifkey when not NULL. */
int seg_dp_attach(struct seg_dp *dp, const struct seg_dp_attach *a, __u32 *ifkey);
/* Detaches what seg_dp_attach attached for this ifkey (unpins links).
 * -ENOENT (logged) when nothing was attached for it. */
int seg_dp_detach(struct seg_dp *dp, __u32 ifkey);

/* Program fds for BPF_PROG_TEST_RUN (owned by dp; -errno if not pinned). */
enum seg_prog { SEG_PROG_TC_TO_POD, SEG_PROG_TC_FROM_POD, SEG_PROG_XDP_FROM_POD, SEG_PROG_MAX };
int seg_dp_prog_fd(const struct seg_dp *dp, enum seg_prog p);

/* ---- typed map access ----------------------------------------------------
 * Lookups and deletes of an absent key return -ENOENT without logging (it
 * is an answer); every other failure is logged with the map name. */
int seg_dp_config_get(struct seg_dp *dp, struct seg_config *cfg);
int seg_dp_config_set(struct seg_dp *dp, const struct seg_config *cfg);

int seg_dp_endpoint_set(struct seg_dp *dp, __u32 ifkey, const struct seg_endpoint *ep);
int seg_dp_endpoint_get(struct seg_dp *dp, __u32 ifkey, struct seg_endpoint *ep);
int seg_dp_endpoint_del(struct seg_dp *dp, __u32 ifkey);

/* Addresses: struct in6_addr; IPv4 as v4-mapped (seg_addr_from_v4). */
int seg_dp_ipcache_set(struct seg_dp *dp, const struct in6_addr *addr,
		       const struct seg_ipcache_val *v);
int seg_dp_ipcache_get(struct seg_dp *dp, const struct in6_addr *addr, struct seg_ipcache_val *v);
int seg_dp_ipcache_del(struct seg_dp *dp, const struct in6_addr *addr);
/* prefixlen is of the v6 form: IPv4 /n -> 96 + n. */
int seg_dp_ipcache_lpm_set(struct seg_dp *dp, const struct in6_addr *addr, __u32 prefixlen,
			   const struct seg_ipcache_val *v);
int seg_dp_ipcache_lpm_del(struct seg_dp *dp, const struct in6_addr *addr, __u32 prefixlen);

int seg_dp_policy_set(struct seg_dp *dp, const struct seg_policy_key *k,
		      const struct seg_policy_val *v);
int seg_dp_policy_get(struct seg_dp *dp, const struct seg_policy_key *k, struct seg_policy_val *v);
int seg_dp_policy_del(struct seg_dp *dp, const struct seg_policy_key *k);
/* Writes the aligned power-of-two blocks covering [lo, hi] for one
 * (policy, remote, proto, dir); returns the port_mask bits it used (>= 0)
 * or -errno. lo == 0 && hi == 65535 is one k = 16 entry. proto 0 (any
 * protocol) needs the full range and writes {port 0, wild 16}, returning
 * SEG_PMASK_ANYPROTO. All or nothing: on error, written blocks are removed.
 * del_range removes the same blocks (absent ones are not an error). */
int seg_dp_policy_set_range(struct seg_dp *dp, __u32 policy_id, __u32 remote_id, __u8 proto,
			    __u8 dir, __u16 lo, __u16 hi, const struct seg_policy_val *v);
int seg_dp_policy_del_range(struct seg_dp *dp, __u32 policy_id, __u32 remote_id, __u8 proto,
			    __u8 dir, __u16 lo, __u16 hi);

/* Port range -> aligned blocks: {port, wild} covers [port, port + 2^wild - 1]
 * with the low wild bits of port zero. Greedy: from lo, the largest aligned
 * block that fits; at most SEG_PORT_BLOCKS_MAX blocks. Returns the count,
 * -EINVAL if lo > hi, -E2BIG if max is too small. Pure (no kernel). */
#define SEG_PORT_BLOCKS_MAX 30
struct seg_port_block {
	__u16 port;
	__u8 wild; /* 0..16 */
};
int seg_port_range_blocks(__u16 lo, __u16 hi, struct seg_port_block *out, size_t max);
/* port_mask bits (1 << wild) of n blocks. */
__u32 seg_port_blocks_mask(const struct seg_port_block *b, size_t n);

/* ---- epochs (abi.h "epochs"): whole-node atomic updates -----------------
 * The endpoint and ipcache maps exist once per epoch; the data path reads
 * the active one. The plain set and del calls above write both epochs and the
 * getters and iterators read the active one, so tools that know nothing of
 * epochs stay correct; seg_dp_map_fd() resolves the epoch-0 names
 * (SEG_MAP_ENDPOINTS, SEG_MAP_IPCACHE, SEG_MAP_IPCACHE_LPM) to the active
 * epoch's map. The single writer (segd, via lib/apply) fills the inactive
 * epoch with the *_in() calls, then flips.
 */
#define SEG_EPOCH_BOTH 2u
/* The map of exactly this name, without the active-epoch resolution
 * seg_dp_map_fd() applies to the epoch-0 names. Not a new fd. */
int seg_dp_map_fd_in(const struct seg_dp *dp, const char *name);
/* Active epoch (0/1) and generation from seg_config; either may be NULL. */
int seg_dp_epoch_get(struct seg_dp *dp, __u32 *epoch, __u32 *generation);
/* epoch ^= 1, generation += 1, in one write of seg_config. */
int seg_dp_epoch_flip(struct seg_dp *dp);
/* generation += 1 (epoch unchanged). Established packets on the fast path
 * see no endpoint, ipcache or policy write, only the generation their
 * conntrack entry was checked in: whoever writes those maps in place (the
 * plain set/del calls above, with an effect on flows already tracked) must
 * call this after its writes, or established flows go on as they were
 * (docs/architecture.md, "The established fast path"). A flip bumps it
 * already. */
int seg_dp_generation_bump(struct seg_dp *dp);
/* Read-modify-write of seg_config under the pin directory's lock (the one
 * seg_dp_open() and seg_dp_commit() take; none for a private instance):
 * fn edits the value read (0, or -errno to write nothing); it is written
 * back in one write if it changed. Flips, generation bumps and every
 * config change of segd and segctl go through it, so writers in different
 * processes never lose each other's epoch or generation (a plain get +
 * set racing a flip could roll the epoch back). */
typedef int (*seg_dp_config_fn)(struct seg_config *cfg, void *arg);
int seg_dp_config_update(struct seg_dp *dp, seg_dp_config_fn fn, void *arg);
/* Every ipcache entry of one epoch (0 or 1): the exact table first
 * (prefixlen 128, lpm false), then the LPM trie. cb returns 0 to go on. */
typedef int (*seg_dp_ipc_cb)(const struct in6_addr *addr, __u32 prefixlen, bool lpm,
			     const struct seg_ipcache_val *v, void *ctx);
int seg_dp_ipcache_foreach_in(struct seg_dp *dp, __u32 epoch, seg_dp_ipc_cb cb, void *ctx);
/* epoch: 0, 1 or SEG_EPOCH_BOTH. */
int seg_dp_endpoint_set_in(struct seg_dp *dp, __u32 epoch, __u32 ifkey,
			   const struct seg_endpoint *ep);
int seg_dp_endpoint_del_in(struct seg_dp *dp, __u32 epoch, __u32 ifkey);
int seg_dp_ipcache_set_in(struct seg_dp *dp, __u32 epoch, const struct in6_addr *addr,
			  const struct seg_ipcache_val *v);
int seg_dp_ipcache_del_in(struct seg_dp *dp, __u32 epoch, const struct in6_addr *addr);
int seg_dp_ipcache_lpm_set_in(struct seg_dp *dp, __u32 epoch, const struct in6_addr *addr,
			      __u32 prefixlen, const struct seg_ipcache_val *v);
int seg_dp_ipcache_lpm_del_in(struct seg_dp *dp, __u32 epoch, const struct in6_addr *addr,
			      __u32 prefixlen);

/* Sums per-CPU counters (rule last_hit_ns and evt_rl last_ns: the latest). */
int seg_dp_reason_get(struct seg_dp *dp, __u32 reason, struct seg_counter *c);
int seg_dp_rule_get(struct seg_dp *dp, __u32 rule_id, struct seg_rule_counter *c);
int seg_dp_evt_rl_get(struct seg_dp *dp, __u32 ifkey, struct seg_evt_rl *sum);

/* Iteration: cb returns 0 to go on, anything else stops and is returned. */
typedef int (*seg_dp_ct_cb)(const struct seg_ct_key *k, const struct seg_ct_entry *e, void *ctx);
int seg_dp_ct_foreach(struct seg_dp *dp, seg_dp_ct_cb cb, void *ctx);
int seg_dp_ct_lookup(struct seg_dp *dp, const struct seg_ct_key *k, struct seg_ct_entry *e);
int seg_dp_ct_del(struct seg_dp *dp, const struct seg_ct_key *k);
int seg_dp_ct_flush(struct seg_dp *dp);
typedef int (*seg_dp_ep_cb)(__u32 ifkey, const struct seg_endpoint *ep, void *ctx);
int seg_dp_endpoint_foreach(struct seg_dp *dp, seg_dp_ep_cb cb, void *ctx);
typedef int (*seg_dp_pol_cb)(const struct seg_policy_key *k, const struct seg_policy_val *v,
			     void *ctx);
int seg_dp_policy_foreach(struct seg_dp *dp, seg_dp_pol_cb cb, void *ctx);

/* Raw map fd by abi.h name (SEG_MAP_*), for what has no typed call. */
int seg_dp_map_fd(const struct seg_dp *dp, const char *name);
/* Current entries / capacity of a map (hash maps: counted by iteration). */
int seg_dp_map_fill(struct seg_dp *dp, const char *name, __u32 *used, __u32 *max);

/* Flow events: cb per record (return 0; < 0 stops and is returned).
 * poll: timeout_ms 0 = only what is there, -1 = wait; returns events
 * consumed or -errno. The fd is epoll-able (readable = events pending). */
typedef int (*seg_dp_event_cb)(const struct seg_flow_event *ev, void *ctx);
struct seg_dp_events;
int seg_dp_events_open(struct seg_dp *dp, seg_dp_event_cb cb, void *ctx,
		       struct seg_dp_events **out);
int seg_dp_events_fd(struct seg_dp_events *ev); /* epoll-able */
int seg_dp_events_poll(struct seg_dp_events *ev, int timeout_ms);
void seg_dp_events_close(struct seg_dp_events *ev);

#endif
