/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * lib/apply internals: the pure half. A map state (the mirror of what is in
 * the maps, or the state wanted) is four sorted arrays; a plan is the
 * difference between the mirror and the wanted state, in the order it must
 * be written. No I/O here: tests build states and compiled policies by
 * hand and check the plan.
 *
 * Policy sets: the entries sharing a policy id. A set is identified by its
 * content (the entries with the policy id left out, in key order): the
 * compiler's set whose content equals a set already in the mirror reuses
 * that data path id; any other gets a fresh id, above every id in use, so
 * an id a packet may be looking at is never modified.
 */
#ifndef SEG_APPLY_PLAN_H
#define SEG_APPLY_PLAN_H

#include "apply.h"

#include <netinet/in.h>

struct ap_ep {
	__u32 ifkey;
	struct seg_endpoint ep;
};

struct ap_ipc {
	struct seg_ipcache_key key;
	struct seg_ipcache_val val;
};

struct ap_lpm {
	struct seg_lpm_key key;
	struct seg_ipcache_val val;
};

struct ap_pol {
	struct seg_policy_key key;
	struct seg_policy_val val;
};

/* ep by ifkey, ipc and lpm by key bytes (memcmp). pol: each policy id's
 * entries contiguous and in the compiler's key order (dir, remote, proto,
 * port, wild), so equal sets have equal entry sequences whatever their id;
 * ap_state_sort() also orders the ids. */
struct ap_state {
	struct ap_ep *ep;
	size_t nep;
	struct ap_ipc *ipc;
	size_t nipc;
	struct ap_lpm *lpm;
	size_t nlpm;
	struct ap_pol *pol;
	size_t npol;
};

struct ap_plan {
	struct ap_state want; /* the whole state after the plan (next mirror) */
	/* 1. policy entries of new sets (fresh ids, unreferenced until 3.) */
	struct ap_pol *pol_add;
	size_t npol_add;
	/* 2. ipcache entries new or changed, 3. endpoints new or changed */
	struct ap_ipc *ipc_set;
	size_t nipc_set;
	struct ap_lpm *lpm_set;
	size_t nlpm_set;
	struct ap_ep *ep_set;
	size_t nep_set;
	/* 4. what nothing references any more */
	__u32 *ep_del;
	size_t nep_del;
	struct seg_ipcache_key *ipc_del;
	size_t nipc_del;
	struct seg_lpm_key *lpm_del;
	size_t nlpm_del;
	struct seg_policy_key *pol_del;
	size_t npol_del;
	unsigned int sets_added, sets_removed;
	/* compiled policy id -> data path id (index: compiled id) */
	__u32 *idmap;
	size_t nidmap;
	__u32 next_id; /* first id never used, after the plan */
};

void ap_state_free(struct ap_state *s);
void ap_state_sort(struct ap_state *s);
/* true when the plan writes or deletes nothing */
bool ap_plan_empty(const struct ap_plan *p);
void ap_plan_free(struct ap_plan *p);

/* Also bump the revision of unchanged endpoints whose policy sets name an
 * identity some address moved from or to (for data paths without epochs,
 * where no generation bump makes established flows re-checked). */
#define AP_BUMP_REIDENTIFIED (1u << 0)

/* Builds the plan taking mirror to compiled c (policy ids above next_id are
 * fresh). 0, -ENOMEM, -EEXIST (two pods at one ifkey), or -ERANGE when
 * policy ids would wrap. */
int ap_plan_build(const struct ap_state *mirror, __u32 next_id, const struct seg_compiled *c,
		  const struct seg_apply_opts *o, unsigned int flags, struct ap_plan *p);

/*
 * The plan of an update (seg_compile_update) from the compile the mirror
 * holds: idmap is that apply's compiled -> data path policy ids. Sets the
 * update only added entries to (of identities no address has yet) and
 * removed entries from (of identities no address has any more after the
 * flip) change in place under their data path ids; sets that are new, or
 * shared by several compiled sets, or whose change would be visible before
 * the flip, are written whole under fresh ids; data path sets no endpoint
 * uses any more are deleted. Endpoints and ipcache as ap_plan_build().
 */
int ap_plan_delta(const struct ap_state *mirror, __u32 next_id, const __u32 *idmap, size_t nidmap,
		  const struct seg_compiled *c, const struct seg_apply_opts *o, struct ap_plan *p);

/* Content hash of n entries of one set (policy id ignored). */
__u64 ap_set_hash(const struct ap_pol *e, size_t n);

#endif
