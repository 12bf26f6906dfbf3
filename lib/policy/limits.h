/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Bounds on what a manifest load may add, so that a huge manifest is
 * refused before it costs memory and time (docs/security.md 4).
 *
 *   struct seg_manifest_limits l = { .max_policies = 65535, .max_rules = 65535 };
 *   seg_manifests_load_path_limited(m, "dir/", &l, &d);  // -E2BIG: d.msg names file:line
 *
 * Counts are of the whole of m after the load (what it held before plus
 * what the load adds). NetworkPolicies and Pods are counted twice: in the
 * text before libfyaml parses it (`kind: NetworkPolicy`, JSON or YAML,
 * quotes optional; comment lines skipped), so a manifest far over the
 * limit costs no parse; then exactly, object by object, while parsing
 * (which also catches kinds the text scan cannot see: aliases, tags, block
 * scalars). Rules are counted while parsing, as the compiler numbers them:
 * one per peer of a rule (one for a rule without peers), in each direction
 * the policy enforces. 0 = no limit.
 */
#ifndef SEG_POLICY_LIMITS_H
#define SEG_POLICY_LIMITS_H

#include "policy.h"

#include <stdbool.h>
#include <stddef.h>

struct seg_manifest_limits {
	size_t max_policies;
	size_t max_pods;
	size_t max_rules;
};

/* seg_manifests_load_path/_buf with limits (NULL: none). Past a limit:
 * -E2BIG, m unchanged, d->msg "file:line[:col]: ...: more than N ... (limit
 * max-...)". */
int seg_manifests_load_path_limited(struct seg_manifests *m, const char *path,
				    const struct seg_manifest_limits *l, struct seg_diag *d);
int seg_manifests_load_buf_limited(struct seg_manifests *m, const char *name, const char *buf,
				   size_t len, const struct seg_manifest_limits *l,
				   struct seg_diag *d);

/*
 * Parts: a caller that keeps each of its sources loaded on its own (segd's
 * cache: a file, an applied document) and puts them together with
 * seg_manifests_append() (policy.h) judges them by the limits as one load
 * of all would. seg_manifests_load_*_part() load like the functions above,
 * but count as if objects counting *before (NULL: m's) were loaded first,
 * leave duplicates to seg_manifests_append(), and fill *scanned with what
 * the text scan counted (also without limits). A part loaded once fits
 * again later, after other counts before it, when
 * seg_manifest_part_fits(l, before, own, scanned) holds, own being
 * seg_manifests_count() of its objects; otherwise loading it there is
 * refused (load it again with that before to get the message).
 */
struct seg_manifest_counts {
	size_t pols, pods, rules;
};

int seg_manifests_load_path_part(struct seg_manifests *m, const char *path,
				 const struct seg_manifest_limits *l,
				 const struct seg_manifest_counts *before,
				 struct seg_manifest_counts *scanned, struct seg_diag *d);
int seg_manifests_load_buf_part(struct seg_manifests *m, const char *name, const char *buf,
				size_t len, const struct seg_manifest_limits *l,
				const struct seg_manifest_counts *before,
				struct seg_manifest_counts *scanned, struct seg_diag *d);
/* What the limits count of m: policies, pods, rules (as the compiler numbers them). */
void seg_manifests_count(const struct seg_manifests *m, struct seg_manifest_counts *out);
bool seg_manifest_part_fits(const struct seg_manifest_limits *l,
			    const struct seg_manifest_counts *before,
			    const struct seg_manifest_counts *own,
			    const struct seg_manifest_counts *scanned);

#endif
