/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * segctl internals. Each command group lives in its own file and exports
 * one `struct cmd` table; main.c strings them together, so adding a group
 * (e.g. one that talks to segd) is one table and one line in main.c.
 */
#ifndef SEGCTL_H
#define SEGCTL_H

#include "cli/opts.h"
#include "cli/out.h"
#include "dp/dp.h"

#include <stdbool.h>
#include <stdint.h>

/* Returned by a command for a usage error found after parsing (exit 2). */
#define SEGCTL_EUSAGE (-4095)
/* Returned by a command that already reported its failure (exit 1). */
#define SEGCTL_EREPORTED (-4094)

/* -o dot: a value of segctl_globals.output past enum out_mode, accepted by
 * segctl topology only (its printer writes DOT; everyone else refuses). */
#define SEGCTL_OUTPUT_DOT (OUT_MODE_YAML + 1)

struct segctl_globals {
	const char *pin_dir;
	const char *socket; /* segd's control socket; NULL: $SEG_SOCKET or the default */
	int output; /* enum out_mode, or SEGCTL_OUTPUT_DOT */
	bool verbose;
};

struct segctl {
	struct segctl_globals g;
	struct out *out;
	const struct opts_parsed *parsed; /* the command being run */
	struct seg_dp *dp; /* opened on first use */
};

/* Opens the pinned data path (never loads). */
int segctl_dp(struct segctl *c, struct seg_dp **dp);
/* Prints "<command>: <msg>" + hint on stderr; returns SEGCTL_EUSAGE. */
__attribute__((format(printf, 2, 3))) int segctl_usage(struct segctl *c, const char *fmt, ...);
bool segctl_given(const struct segctl *c, const char *name);

/* ---- shared value parsers (OPT_T_CUSTOM) and names (parse.c) -------------- */
extern const char *const segctl_dir_names[]; /* index = SEG_DIR_* */
extern const char *const segctl_onoff_names[]; /* off, on */

struct port_range {
	uint16_t lo, hi;
};
int segctl_parse_proto(const char *arg, void *field); /* int: IPPROTO_* or 0 = any */
int segctl_parse_port(const char *arg, void *field); /* struct port_range; "any" = 0-65535 */
int segctl_parse_peer(const char *arg, void *field); /* uint32_t; "any" = SEG_ID_ANY */
const char *segctl_proto_name(unsigned proto, char *buf, size_t len);
/* An ifkey field: hex in tables for in-netns keys (0x80000000|ep_id). */
void segctl_out_ifkey(struct out *o, const char *key, __u32 ifkey);
/* 'name' or a path; names are /run/netns/<name>. buf >= PATH_MAX. */
const char *segctl_netns_path(const char *arg, char *buf, size_t len);
/* Monotonic ns (bpf_ktime_get_ns) to wall-clock ns since the epoch. */
unsigned long long segctl_mono_to_real_ns(unsigned long long mono_ns);
/* "2026-11-28T03:01:02.123Z" */
const char *segctl_time_str(unsigned long long real_ns, char *buf, size_t len);

/* ---- the policy/endpoint invariant (bpf_endpoint.c) ----------------------- */
/* port_mask for (policy, dir) from what is in the policy map. */
int segctl_policy_mask(struct seg_dp *dp, uint32_t policy_id, uint8_t dir, uint32_t *mask);
/* Recomputes port masks of the endpoints using policy_id (any if all) and
 * bumps their revision when anything about their policy changed (bump:
 * always). Returns the number of endpoints updated or -errno. */
int segctl_endpoints_resync(struct seg_dp *dp, uint32_t policy_id, bool all, bool bump);

/* ---- command groups -------------------------------------------------------- */
extern const struct cmd segctl_bpf_cmds[];
extern const struct cmd segctl_bpf_config_cmds[];
extern const struct cmd segctl_bpf_endpoint_cmds[];
extern const struct cmd segctl_bpf_ipcache_cmds[];
extern const struct cmd segctl_bpf_policy_cmds[];
extern const struct cmd segctl_bpf_ct_cmds[];

/* Leaves of the bpf group that live outside bpf.c (bpf_stats.c). */
struct segctl_counters_opts {
	bool rules;
	bool all;
};
extern const struct opt segctl_counters_optv[];
extern const struct segctl_counters_opts segctl_counters_defaults;
int segctl_counters_run(void *ctx, void *opts);

struct segctl_events_opts {
	bool follow;
	uint32_t count;
	uint32_t timeout;
};
extern const struct opt segctl_events_optv[];
extern const struct segctl_events_opts segctl_events_defaults;
int segctl_events_run(void *ctx, void *opts);

#endif
