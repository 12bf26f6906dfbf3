/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* ipcache: address -> identity. Exact hash (pod addresses) first, then the
 * LPM trie (CIDRs), else WORLD. Also the anti-spoofing ownership check. */
#ifndef SEG_BPF_IPCACHE_H
#define SEG_BPF_IPCACHE_H

#include "common.h"

#define SEG_LPM_FULL_PREFIX 128

/* Each epoch has its own pair of maps (abi.h "epochs"). */
static __always_inline const struct seg_ipcache_val *seg_ipc_exact(const __u32 addr[4], __u32 epoch)
{
	struct seg_ipcache_key k;

	seg_addr_copy(k.addr, addr);
	return seg_epoch_lookup(epoch, seg_ipcache, seg_ipcache1, &k);
}

static __always_inline __u32 seg_identity(const __u32 addr[4], __u32 epoch)
{
	const struct seg_ipcache_val *v = seg_ipc_exact(addr, epoch);
	struct seg_lpm_key lk;

	if (v)
		return v->identity;
	lk.prefixlen = SEG_LPM_FULL_PREFIX;
	seg_addr_copy(lk.addr, addr);
	v = seg_epoch_lookup(epoch, seg_ipc_lpm, seg_ipc_lpm1, &lk);
	return v ? v->identity : SEG_ID_WORLD;
}

/* IPv6 link-local (fe80::/10) or unspecified (::): never leaves the link
 * (neighbour discovery, MLD, DAD) and is not in the ipcache. */
static __always_inline int seg_addr_link_scope(const __u32 addr[4])
{
	if ((addr[0] & bpf_htonl(0xffc00000)) == bpf_htonl(0xfe800000))
		return 1;
	return !(addr[0] | addr[1] | addr[2] | addr[3]);
}

/* Anti-spoofing: the pod's source address must be one the ipcache says
 * this endpoint (ifkey) owns; link-scope IPv6 sources are exempt. */
static __always_inline int seg_addr_owned(const __u32 addr[4], __u32 ifkey, __u32 epoch)
{
	const struct seg_ipcache_val *v;

	if (seg_addr_link_scope(addr))
		return 1;
	v = seg_ipc_exact(addr, epoch);
	return v && v->owner_ifkey == ifkey;
}

#endif
