/* SPDX-License-Identifier: GPL-2.0-only */
/* lib/policy internals shared between its files. */
#ifndef SEG_POLICY_INTERNAL_H
#define SEG_POLICY_INTERNAL_H

#include "policy.h"

void seg_namespace_clear(struct seg_namespace *ns);
void seg_pod_clear(struct seg_pod *p);
void seg_netpol_clear(struct seg_netpol *np);

/* in6 helpers on the v6 form (IPv4 v4-mapped, prefixlen 96 + n) */
void seg_prefix_mask(struct in6_addr *a, __u32 plen);
bool seg_prefix_contains(const struct in6_addr *net, __u32 plen, const struct in6_addr *a);
/* b's canonical text (seg_ipblock.key), malloc'd; NULL: out of memory. */
char *seg_ipblock_key(const struct seg_ipblock *b);

#endif
