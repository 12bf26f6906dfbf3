/* SPDX-License-Identifier: GPL-2.0-only */
/* Address and reason helpers shared by every userspace part (no libbpf). */
#ifndef SEG_ADDR_H
#define SEG_ADDR_H

#include <seg/abi.h>
#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>

void seg_addr_from_v4(struct in6_addr *out, __u32 be_addr);
bool seg_addr_is_v4(const struct in6_addr *a);
/* "10.0.0.1" or "fd00::1" -> v4-mapped/v6; 0 or -EINVAL. */
int seg_addr_parse(const char *s, struct in6_addr *out);
/* "10.0.0.0/8" -> addr + v6-form prefixlen (104); 0 or -EINVAL. */
int seg_prefix_parse(const char *s, struct in6_addr *out, __u32 *prefixlen);
/* Prints the v4 form for v4-mapped addresses. buf >= INET6_ADDRSTRLEN. */
const char *seg_addr_str(const struct in6_addr *a, char *buf, size_t len);
const char *seg_reason_str(__u32 reason);
const char *seg_verdict_str(__u32 verdict);

#endif
