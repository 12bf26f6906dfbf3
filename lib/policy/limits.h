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

#endif
