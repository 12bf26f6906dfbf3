/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * seg BPF <-> userspace ABI: every map key and value, the flow event, the
 * verdict reasons and the pin names. Included by bpf/ (clang -target bpf)
 * and by userspace C alike, so it uses only fixed-size __uN/__beN fields,
 * explicit padding and a size assert per struct.
 *
 * Changing any struct here changes the ABI of pinned maps: bump
 * SEG_ABI_VERSION. Reasons are append-only: never renumber one.
 *
 * Conventions:
 *  - Addresses are 16 bytes in network byte order. IPv4 is stored
 *    v4-mapped (::ffff:a.b.c.d), so one key type serves both families.
 *  - Ports are in host byte order (they are masked for port ranges).
 *  - Directions are relative to the pod: INGRESS = towards the pod,
 *    EGRESS = leaving the pod.
 */
#ifndef SEG_ABI_H
#define SEG_ABI_H

#include <linux/types.h>

#define SEG_ABI_VERSION 2

/* ---- pin names: one spelling for bpf/, segd and segctl ---------------- */
#define SEG_PIN_DIR_DEFAULT "/sys/fs/bpf/seg"
#define SEG_MAP_ENDPOINTS "seg_endpoints"
#define SEG_MAP_IPCACHE "seg_ipcache"
#define SEG_MAP_IPCACHE_LPM "seg_ipc_lpm"
#define SEG_MAP_ENDPOINTS1 "seg_endpoints1" /* epoch 1 twins of the three above */
#define SEG_MAP_IPCACHE1 "seg_ipcache1"
#define SEG_MAP_IPCACHE_LPM1 "seg_ipc_lpm1"
#define SEG_MAP_POLICY "seg_policy"
#define SEG_MAP_CT "seg_ct"
#define SEG_MAP_FRAG "seg_frag"
#define SEG_MAP_EVENTS "seg_events"
#define SEG_MAP_REASONS "seg_reasons"
#define SEG_MAP_RULES "seg_rules"
#define SEG_MAP_EVT_RL "seg_evt_rl"
#define SEG_MAP_CONFIG "seg_config"

/* ---- default capacities (segd can override before load) --------------- */
#define SEG_MAX_ENDPOINTS 16384
#define SEG_MAX_IPCACHE 262144
#define SEG_MAX_IPCACHE_LPM 65536
#define SEG_MAX_POLICY 262144
#define SEG_MAX_CT 262144
#define SEG_MAX_FRAG 8192
#define SEG_MAX_RULES 65536 /* rule ids 0..SEG_MAX_RULES-1; 0 = "no rule" */
#define SEG_EVENTS_BYTES (4u << 20)
#define SEG_REASON_MAX 64

/* IPv6 extension headers walked before giving up (drop when isolated). */
#define SEG_MAX_EXTHDR 8

/* ---- directions (relative to the pod) ---------------------------------- */
#define SEG_DIR_INGRESS 0 /* towards the pod  */
#define SEG_DIR_EGRESS 1 /* leaving the pod  */
#define SEG_DIR_MAX 2

/* ---- reserved identities ----------------------------------------------- */
#define SEG_ID_ANY 0 /* policy key wildcard; never a packet's identity */
#define SEG_ID_HOST 1 /* this node */
#define SEG_ID_WORLD 2 /* no ipcache entry */
#define SEG_ID_FIRST_ALLOC 256 /* first identity the compiler hands out */

/* ---- endpoint map: ifkey -> endpoint ------------------------------------
 * ifkey is skb->ifindex (host-side attachments) or, for programs loaded for
 * an attachment inside a pod's netns (macvlan), SEG_IFKEY_NETNS | ep_id set
 * through the program's read-only config before load.
 */
#define SEG_IFKEY_NETNS 0x80000000u

#define SEG_EPF_ISOLATED (1u << 0) /* some policy selects it in this dir */
#define SEG_EPF_AUDIT (1u << 1) /* would-deny passes, reported as audit */

/* port_mask bits: bit k (0..16) = policy entries with k wildcarded low port
 * bits exist for this policy/direction; SEG_PMASK_ANYPROTO = entries with
 * proto 0 (any protocol, any port) exist. The data path probes only these.
 */
#define SEG_PMASK_ALLPORTS (1u << 16)
#define SEG_PMASK_ANYPROTO (1u << 17)

struct seg_endpoint {
	__u32 ep_id; /* userspace handle, reported in events */
	__u32 identity; /* local workload identity */
	__u32 policy_id[SEG_DIR_MAX];
	__u32 port_mask[SEG_DIR_MAX];
	__u32 revision; /* bumped on any change deciding this endpoint; the
			 * writer then also bumps seg_config.generation (only
			 * that is seen by established packets on the fast
			 * path); segd's flips bump the generation alone */
	__u8 flags[SEG_DIR_MAX]; /* SEG_EPF_* */
	__u8 _pad[2];
};
_Static_assert(sizeof(struct seg_endpoint) == 32, "ABI: seg_endpoint");

/* ---- ipcache: address -> identity ---------------------------------------
 * Exact hash (pod addresses) first, then the LPM trie (CIDRs), else WORLD.
 */
struct seg_ipcache_key {
	__u32 addr[4]; /* network order; IPv4 v4-mapped */
};
_Static_assert(sizeof(struct seg_ipcache_key) == 16, "ABI: seg_ipcache_key");

struct seg_lpm_key {
	__u32 prefixlen; /* bits of addr; IPv4 /n is 96 + n */
	__u32 addr[4];
};
_Static_assert(sizeof(struct seg_lpm_key) == 20, "ABI: seg_lpm_key");

struct seg_ipcache_val {
	__u32 identity;
	__u32 owner_ifkey; /* local endpoint owning this address, 0 = none */
};
_Static_assert(sizeof(struct seg_ipcache_val) == 8, "ABI: seg_ipcache_val");

/* ---- epochs: whole-node atomic policy updates ----------------------------
 * The endpoint map and both ipcache maps exist twice, one per epoch
 * (SEG_MAP_*1 are epoch 1). A packet reads seg_config.epoch once and looks
 * up that epoch's maps only. segd writes the inactive epoch's maps (and
 * policy entries under fresh policy ids), then flips seg_config.epoch in
 * one write: every packet sees the old state or the new one, never a mix,
 * and a segd killed mid-update leaves the old state in force. Conntrack
 * entries record endpoint revision + seg_config.generation (bumped by each
 * flip), so established flows are re-checked against the new state.
 */
#define SEG_EPOCHS 2

/* ---- policy map ----------------------------------------------------------
 * Lookup for a packet (policy P, dir D, remote identity I, proto X, port p):
 *   for id in (I, SEG_ID_ANY):
 *     for k in 0..16 with bit k of port_mask[D]:
 *       {P, id, p & ~((1<<k)-1), X, D, k}           first hit decides
 *   then, if SEG_PMASK_ANYPROTO: {P, I, 0, 0, D, 16}, {P, ANY, 0, 0, D, 16}
 * so the most specific entry wins: a named identity before ANY, a narrower
 * port block before a wider one. A port range [lo, hi] is stored as its
 * aligned power-of-two blocks (at most 30 entries, never one per port).
 * Protocols without ports (ICMP, ...) have port 0 and match only k = 16
 * entries of their protocol and any-protocol entries.
 */
#define SEG_ACT_ALLOW 1
#define SEG_ACT_DENY 2

struct seg_policy_key {
	__u32 policy_id;
	__u32 remote_id; /* SEG_ID_ANY = any peer */
	__u16 port; /* host order, low port_wild bits zero */
	__u8 proto; /* IPPROTO_*, 0 = any protocol (then port_wild = 16) */
	__u8 dir; /* SEG_DIR_* */
	__u8 port_wild; /* wildcarded low bits of port, 0..16 */
	__u8 _pad[3];
};
_Static_assert(sizeof(struct seg_policy_key) == 16, "ABI: seg_policy_key");

struct seg_policy_val {
	__u32 rule_id; /* index in seg_rules counters; names the rule */
	__u8 action; /* SEG_ACT_* */
	__u8 _pad[3];
};
_Static_assert(sizeof(struct seg_policy_val) == 8, "ABI: seg_policy_val");

/* ---- conntrack: LRU hash, one entry per endpoint and flow ----------------
 * Keyed from the endpoint's point of view: local = the pod's side of the
 * packet (source when leaving the pod, destination when entering it). ICMP
 * echo uses the echo id as both ports; ICMP errors are looked up with the
 * tuple they quote.
 */
struct seg_ct_key {
	__u32 laddr[4];
	__u32 raddr[4];
	__u16 lport; /* host order */
	__u16 rport;
	__u8 proto;
	__u8 _pad[3];
};
_Static_assert(sizeof(struct seg_ct_key) == 40, "ABI: seg_ct_key");

#define SEG_VERDICT_ALLOW 1
#define SEG_VERDICT_DENY 2
#define SEG_VERDICT_AUDIT 3 /* would be denied, passed in audit mode */

/* What an established packet reads and writes comes first, so it shares
 * cache lines with the key: an LRU hash element is 48 bytes of header + the
 * key (40) + this value (80) = 168 bytes, preallocated back to back.
 * Validity: the entry passes packets on the fast path only while ifkey is
 * the packet's endpoint key and generation is seg_config.generation (every
 * writer that changes what a flow may do bumps it, docs/architecture.md
 * "The established fast path"); the full pipeline also compares revision. */
struct seg_ct_entry {
	__u64 last_seen_ns; /* CLOCK_MONOTONIC_COARSE (bpf_ktime_get_coarse_ns) */
	__u32 ifkey; /* endpoint key (seg_endpoints) of its last (re)validation */
	__u32 generation; /* seg_config.generation of its last (re)validation */
	__u8 tcp_flags[SEG_DIR_MAX]; /* OR of flags seen, by direction */
	__u8 dir; /* direction of the first packet */
	__u8 verdict; /* SEG_VERDICT_* */
	__u8 reason; /* enum seg_reason that allowed it */
	__u8 _pad[3];
	__u64 packets[SEG_DIR_MAX]; /* by packet direction */
	__u64 bytes[SEG_DIR_MAX];
	/* not read by established packets */
	__u64 first_seen_ns;
	__u32 revision; /* endpoint revision + generation that last allowed it */
	__u32 rule_id;
	__u32 remote_id;
	__u32 ep_id;
};
_Static_assert(sizeof(struct seg_ct_entry) == 80, "ABI: seg_ct_entry");
_Static_assert(__builtin_offsetof(struct seg_ct_entry, packets) == 24 &&
		       __builtin_offsetof(struct seg_ct_entry, first_seen_ns) == 56,
	       "ABI: seg_ct_entry layout (established fields first)");

/* Timeouts (seconds) unless seg_config overrides them (0 = default). */
#define SEG_CT_TIMEOUT_TCP 21600
#define SEG_CT_TIMEOUT_TCP_CLOSE 10
#define SEG_CT_TIMEOUT_OTHER 60

/* ---- fragments: first fragment's ports for the later ones ---------------- */
struct seg_frag_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u32 id; /* IPv4 id (16 bits) or IPv6 fragment id */
	__u8 proto;
	__u8 _pad[3];
};
_Static_assert(sizeof(struct seg_frag_key) == 40, "ABI: seg_frag_key");

struct seg_frag_val {
	__u16 sport; /* host order */
	__u16 dport;
	__u32 _pad;
};
_Static_assert(sizeof(struct seg_frag_val) == 8, "ABI: seg_frag_val");

/* ---- reasons: why a verdict was reached (append only) --------------------
 * X(symbol, number, verdict, text)
 */
#define SEG_REASONS(X)                                                        \
	X(SEG_R_ALLOW_RULE, 0, SEG_VERDICT_ALLOW, "allowed by rule")          \
	X(SEG_R_ALLOW_NOT_ISOLATED, 1, SEG_VERDICT_ALLOW,                     \
	  "not isolated: no policy selects the pod")                          \
	X(SEG_R_ALLOW_ESTABLISHED, 2, SEG_VERDICT_ALLOW,                      \
	  "established or reply")                                             \
	X(SEG_R_ALLOW_RELATED, 3, SEG_VERDICT_ALLOW,                          \
	  "ICMP error of a tracked flow")                                     \
	X(SEG_R_ALLOW_HOST, 4, SEG_VERDICT_ALLOW, "to or from the node")      \
	X(SEG_R_ALLOW_L2, 5, SEG_VERDICT_ALLOW, "ARP or IPv6 neighbour discovery") \
	X(SEG_R_AUDIT, 6, SEG_VERDICT_AUDIT,                                  \
	  "audit: isolated, no rule allows; passed")                          \
	X(SEG_DROP_POLICY, 16, SEG_VERDICT_DENY, "isolated, no rule allows")  \
	X(SEG_DROP_DENY_RULE, 17, SEG_VERDICT_DENY, "denied by rule")         \
	X(SEG_DROP_REVOKED, 18, SEG_VERDICT_DENY,                             \
	  "established flow no longer allowed")                               \
	X(SEG_DROP_NO_ENDPOINT, 19, SEG_VERDICT_DENY,                         \
	  "interface has no endpoint")                                        \
	X(SEG_DROP_TRUNCATED, 20, SEG_VERDICT_DENY, "truncated header")       \
	X(SEG_DROP_BAD_LEN, 21, SEG_VERDICT_DENY, "bad length or header field") \
	X(SEG_DROP_FRAG_NO_HEAD, 22, SEG_VERDICT_DENY,                        \
	  "fragment of an unknown datagram")                                  \
	X(SEG_DROP_FRAG_TINY, 23, SEG_VERDICT_DENY,                           \
	  "first fragment too short for ports")                               \
	X(SEG_DROP_EXTHDR, 24, SEG_VERDICT_DENY,                              \
	  "too many or bad IPv6 extension headers")                          \
	X(SEG_DROP_UNKNOWN_L3, 25, SEG_VERDICT_DENY, "not IP, ARP or ND")     \
	X(SEG_DROP_ICMP_UNTRACKED, 26, SEG_VERDICT_DENY,                      \
	  "ICMP error for an untracked flow")                                 \
	X(SEG_DROP_SPOOF, 27, SEG_VERDICT_DENY,                               \
	  "source address not owned by the pod")                              \
	X(SEG_DROP_CT_FULL, 28, SEG_VERDICT_DENY,                             \
	  "conntrack insert failed")

#define SEG_REASON_ENUM(sym, num, verdict, text) sym = num,
enum seg_reason { SEG_REASONS(SEG_REASON_ENUM) };
#undef SEG_REASON_ENUM

/* Counters indexed by reason (per-CPU array, SEG_REASON_MAX entries). */
struct seg_counter {
	__u64 packets;
	__u64 bytes;
};
_Static_assert(sizeof(struct seg_counter) == 16, "ABI: seg_counter");

/* Counters indexed by rule id (per-CPU array, SEG_MAX_RULES entries). */
struct seg_rule_counter {
	__u64 packets;
	__u64 bytes;
	__u64 last_hit_ns; /* CLOCK_MONOTONIC_COARSE */
};
_Static_assert(sizeof(struct seg_rule_counter) == 24, "ABI: seg_rule_counter");

/* ---- flow events (ring buffer) ------------------------------------------- */
#define SEG_EV_NEW 1 /* first packet of an allowed (or audited) flow */
#define SEG_EV_DENY 2 /* a packet was dropped */
#define SEG_EV_REVOKED 3 /* established flow cut by a policy change */

struct seg_flow_event {
	__u64 ts_ns;
	__u32 saddr[4]; /* of the packet */
	__u32 daddr[4];
	__u16 sport; /* host order */
	__u16 dport;
	__u32 ifkey;
	__u32 ep_id;
	__u32 local_id;
	__u32 remote_id;
	__u32 rule_id;
	__u32 pkt_len;
	__u32 suppressed; /* events this endpoint (this CPU) lost to the rate
			   * limit since its previous event */
	__u8 type; /* SEG_EV_* */
	__u8 dir; /* SEG_DIR_* */
	__u8 proto;
	__u8 family; /* 4 or 6 */
	__u8 verdict; /* SEG_VERDICT_* */
	__u8 reason; /* enum seg_reason */
	__u8 tcp_flags;
	__u8 _pad;
};
_Static_assert(sizeof(struct seg_flow_event) == 80, "ABI: seg_flow_event");

/* Per-endpoint, per-CPU token bucket for events (per-CPU hash on ifkey). */
struct seg_evt_rl {
	__u64 last_ns;
	__u64 tokens_milli; /* tokens x 1000 */
	__u32 suppressed; /* since the last event sent */
	__u32 suppressed_total;
};
_Static_assert(sizeof(struct seg_evt_rl) == 24, "ABI: seg_evt_rl");

/* ---- global configuration (array, one entry) ------------------------------ */
#define SEG_CFG_ALLOW_HOST (1u << 0) /* node <-> its pods always allowed */
#define SEG_CFG_ANTISPOOF (1u << 1) /* new flows from a pod need an owned saddr */
#define SEG_CFG_PASS_NO_ENDPOINT (1u << 2) /* unknown ifkey passes (default drops) */

struct seg_config {
	__u32 flags; /* SEG_CFG_* */
	__u32 evt_rate; /* events per second per endpoint and CPU; 0 = no limit */
	__u32 evt_burst; /* bucket size; 0 = evt_rate */
	__u32 ct_timeout_tcp; /* seconds; 0 = SEG_CT_TIMEOUT_TCP */
	__u32 ct_timeout_tcp_close;
	__u32 ct_timeout_other;
	__u32 epoch; /* active epoch slot of endpoint/ipcache values (0 or 1) */
	__u32 generation; /* bumped with each epoch flip and after every
			   * in-place write that changes what a flow may do
			   * (seg_dp_generation_bump): conntrack entries of
			   * another generation are re-checked */
};
_Static_assert(sizeof(struct seg_config) == 32, "ABI: seg_config");

#endif /* SEG_ABI_H */
