/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * lib/apply: compiled policy state (lib/policy) -> data path maps (lib/dp),
 * so that no packet ever sees half of an update.
 *
 * It keeps a mirror of what it wrote (read back from the active epoch when
 * it starts, so a restarted segd reconciles instead of rewriting), and on
 * each seg_apply():
 *   1. diffs the desired state against the mirror (plan.h: pure);
 *   2. writes policy sets that changed under FRESH policy ids (a policy id
 *      in use is never modified; identical sets share one id, found by
 *      content);
 *   3. writes the inactive epoch's endpoint and ipcache maps (exact and
 *      LPM): changed entries and deletes (abi.h "epochs");
 *   4. flips the epoch (one write of seg_config: generation += 1, so
 *      established flows are re-checked against the new state);
 *   5. after a grace period, writes the same changes into the now-inactive
 *      epoch (both epochs equal again) and deletes the policy ids nothing
 *      references any more.
 * Killed before 4, the maps still enforce the old state; killed after, the
 * new one, with a stale inactive epoch that the next seg_apply_new() brings
 * in line (every mirror entry written into it, the keys only it has
 * deleted); so does a seg_apply() after a failed one.
 *
 * Endpoints are written only for pods the caller says are attached here
 * (ifkey != 0); the compiled state of the others is not needed by the
 * data path. An attached ifkey whose pod is gone loses its endpoint (the
 * data path then drops: SEG_DROP_NO_ENDPOINT).
 */
#ifndef SEG_APPLY_H
#define SEG_APPLY_H

#include <seg/abi.h>
#include <stdbool.h>
#include <stddef.h>

struct seg_dp;
struct seg_compiled;
struct seg_pod;
struct seg_apply;

struct seg_apply_opts {
	/* ifkey where the pod is attached on this node, 0 = not here. */
	__u32 (*pod_ifkey)(const struct seg_pod *pod, void *ctx);
	/* stable endpoint id for the pod (shown in events); 0 = derive from ifkey */
	__u32 (*pod_ep_id)(const struct seg_pod *pod, void *ctx);
	void *ctx;
	/* time a flipped-out slot stays untouched (in-flight packets); 0 = 1 ms */
	unsigned int grace_us;
};

struct seg_apply_stats {
	unsigned int policies_added, policies_removed; /* policy ids */
	unsigned int policy_writes, policy_deletes; /* entries */
	unsigned int endpoint_writes, endpoint_deletes;
	unsigned int ipcache_writes, ipcache_deletes;
	bool flipped; /* false: nothing differed, nothing written, no flip */
	bool incremental; /* planned from an update's delta (seg_compile_update) */
	__u32 epoch, generation; /* after the call */
	unsigned long long duration_us;
};

/* Reads the current maps into the mirror (reconcile). dp must stay open
 * while a is used. Policy ids used so far are never handed out again by
 * this apply (fresh ids start above the highest one in the maps). */
int seg_apply_new(struct seg_dp *dp, struct seg_apply **out);
void seg_apply_free(struct seg_apply *a); /* NULL-safe */

/* Makes the maps hold c. On error (-errno, logged with the object) the
 * epoch is not flipped: the old state stays enforced, and the next call
 * starts over from what is really in the maps. */
int seg_apply(struct seg_apply *a, const struct seg_compiled *c, const struct seg_apply_opts *o,
	      struct seg_apply_stats *st);

/* The data path policy id that the compiler's policy id maps to now, for
 * tools that explain verdicts; 0 if none. */
__u32 seg_apply_policy_id(const struct seg_apply *a, __u32 compiled_policy_id);

#endif
