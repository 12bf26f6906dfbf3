// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* STUB — being replaced by the real pipeline. Entry points only. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "lib/maps.h"

const volatile __u32 seg_cfg_ifkey = 0;

SEC("tc")
int seg_tc_to_pod(struct __sk_buff *skb)
{
	return TC_ACT_UNSPEC;
}

SEC("tc")
int seg_tc_from_pod(struct __sk_buff *skb)
{
	return TC_ACT_UNSPEC;
}

SEC("xdp")
int seg_xdp_from_pod(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
