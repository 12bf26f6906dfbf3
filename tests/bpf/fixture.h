/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Fixture for the BPF_PROG_TEST_RUN suite: one skeleton loaded per group,
 * every map cleared and refilled with a base world before each case, and
 * small helpers to write endpoints/rules, run a packet, and read counters,
 * conntrack entries and ring-buffer events. Tests run pinned to one CPU so
 * per-CPU state (token bucket) is deterministic.
 *
 * The base world (both families):
 *   FX_POD    10.0.0.1   fd00::1    identity FX_LOCAL_ID, owned by FX_IFKEY
 *   FX_A      10.1.0.5   fd01::5    FX_ID_A        (ipcache hash)
 *   FX_B      10.1.0.6   fd01::6    FX_ID_B        (ipcache hash)
 *   FX_NET    10.2.3.4   fd02::34   FX_ID_NET      (LPM 10.2.0.0/16, fd02::/64)
 *   FX_WORLD  192.0.2.9  2001:db8::9 no entry -> SEG_ID_WORLD
 *   FX_HOST   10.0.0.254 fd00::fe   SEG_ID_HOST
 *   FX_POD2   10.0.0.2   fd00::2    FX_LOCAL_ID, owned by another ifkey
 * The endpoint under test sits at FX_IFKEY (the loopback's ifindex, which
 * BPF_PROG_TEST_RUN reports) and starts not isolated in both directions.
 */
#ifndef SEG_TEST_FIXTURE_H
#define SEG_TEST_FIXTURE_H

#include <seg/abi.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "testpkt.h"

#define FX_IFKEY 1
#define FX_EP_ID 7
#define FX_LOCAL_ID 300
#define FX_POL_IN 10
#define FX_POL_EG 11
#define FX_REV 1
#define FX_ID_A 400
#define FX_ID_B 401
#define FX_ID_NET 500
#define FX_CLIENT_PORT 40000 /* the client's ephemeral port */
#define FX_ECHO_ID 0x1234
#define FX_MAX_EV 64
#define FX_RULES_MAX 1024 /* seg_rules resized to this: fast to clear */
#define IPPROTO_SCTP_ 132

enum fx_peer { FX_POD, FX_A, FX_B, FX_NET, FX_WORLD, FX_HOST, FX_POD2, FX_PEER_MAX };

enum fx_hook { FX_TO_POD, FX_FROM_POD, FX_XDP_FROM_POD, FX_HOOK_MAX };

enum fx_verdict { FX_PASS = 1, FX_DROP, FX_OTHER };

struct fx {
	struct seg_bpf *skel;
	int fd_ep, fd_ipc, fd_lpm, fd_pol, fd_ct, fd_frag, fd_reasons, fd_rules, fd_rl, fd_cfg;
	int prog[FX_HOOK_MAX];
	struct ring_buffer *rb;
	int ncpu;
	__u32 ifkey;
	struct seg_endpoint ep;
	struct seg_flow_event ev[FX_MAX_EV]; /* the first FX_MAX_EV since reset */
	int n_ev;
	long n_ev_seen; /* all events since reset */
};

/* The one fixture of this test process. */
struct fx *fx(void);

/* Group setup/teardown (load/destroy with the given ifkey rodata; 0 = as
 * built), and per-case setup (reset to the base world). */
int fx_load(__u32 cfg_ifkey);
int fx_group_setup(void **state);
int fx_group_teardown(void **state);
int fx_reset(void **state);

const char *fx_addr(enum fx_peer peer, int family);
__u32 fx_peer_id(enum fx_peer peer);
const char *fx_hook_name(enum fx_hook hook);
__u8 fx_hook_dir(enum fx_hook hook);

/* Endpoint: set flags per direction and write (in place, no generation
 * bump: a writer that forgot it). fx_ep_bump: revision + 1, written, then
 * seg_config.generation + 1, as every in-place writer does
 * (seg_dp_generation_bump); fx_ep_bump_only: the revision alone. */
void fx_ep_flags(__u8 flags_in, __u8 flags_eg);
void fx_ep_write(void);
void fx_ep_bump(void);
void fx_ep_bump_only(void);
void fx_gen_bump(void);
__u32 fx_gen(void);
void fx_ep_delete(void);
void fx_config(__u32 flags);
void fx_config_full(const struct seg_config *cfg);
void fx_ipcache(const char *addr, __u32 identity, __u32 owner);

/* A rule as the compiler writes it: [lo, hi] split into aligned blocks,
 * port_mask bits set on the endpoint; proto 0 = any protocol; protocols
 * without ports use one k = 16 entry. Returns the number of entries. */
struct fx_rule {
	__u8 dir;
	__u32 remote_id;
	__u8 proto;
	__u16 lo, hi;
	__u8 action; /* SEG_ACT_*; 0 = no rule (tables) */
	__u32 rule_id;
};
int fx_rule_add(const struct fx_rule *r);
void fx_rule_del(const struct fx_rule *r);
/* The split itself: blocks {port, k} of [lo, hi]; returns the count. */
int fx_range_blocks(__u16 lo, __u16 hi, __u16 *port, __u8 *k, int max);
bool fx_proto_has_ports(__u8 proto);

/* A packet between the pod and a peer as seen at hook: the pod's port is
 * lport, the peer's rport (ICMP echo: request, id FX_ECHO_ID, in the
 * direction of the hook). */
struct tp_spec fx_flow(int family, enum fx_hook hook, enum fx_peer peer, __u8 proto, __u16 lport,
		       __u16 rport);

/* Runs a packet; returns FX_PASS/FX_DROP/FX_OTHER; *len = its length. */
int fx_run(enum fx_hook hook, const struct tp_spec *s, int *len);
int fx_run_raw(enum fx_hook hook, const void *pkt, int len);
/* Same on another interface (ifindex in the program's context). */
int fx_run_on(enum fx_hook hook, const struct tp_spec *s, __u32 ifindex);

/* Sums over CPUs. */
struct seg_counter fx_reason(__u32 reason);
struct seg_rule_counter fx_rule_ctr(__u32 rule_id);
struct seg_evt_rl fx_evt_rl(__u32 ifkey);
/* Conntrack entry of the pod <-> peer flow; 0 or -ENOENT. */
int fx_ct(int family, enum fx_peer peer, __u16 lport, __u16 rport, __u8 proto,
	  struct seg_ct_entry *out);
int fx_ct_count(void);
int fx_map_count(int fd);
/* Consumes the ring buffer into fx()->ev; returns fx()->n_ev. */
int fx_events(void);

/* Asserts exactly `packets` packets (and `bytes` if >= 0) under reason and
 * nothing under any other reason. */
void fx_assert_only_reason(__u32 reason, __u64 packets, long long bytes);

/* Tables: every row struct starts with struct fx_row; fx_run_table runs
 * one cmocka test per row and family ("v4 <name>", "v6 <name>"), each
 * after fx_reset, with *state = the struct fx_inst. */
struct fx_row {
	const char *name;
	int fam; /* 4, 6, or 0 = both */
};
struct fx_inst {
	const struct fx_row *row;
	int family;
	char name[128];
};
int fx_run_table(const char *group, CMUnitTestFunction fn, const void *rows, size_t row_size,
		 size_t n);
#define FX_RUN_TABLE(group, fn, rows) \
	fx_run_table(group, fn, rows, sizeof(rows[0]), sizeof(rows) / sizeof(rows[0]))

#endif
