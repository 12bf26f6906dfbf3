// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* seg data path: entry points only. Every hook runs the one pipeline in
 * lib/pipeline.h; docs/architecture.md ("Data path") describes it. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "lib/pipeline.h"

/* Non-zero for an instance loaded for an attachment inside a pod netns:
 * SEG_IFKEY_NETNS | ep_id, used as the endpoint key instead of ifindex. */
const volatile __u32 seg_cfg_ifkey = 0;

static __always_inline int seg_tc(struct __sk_buff *skb, __u8 dir)
{
	struct seg_ctx c = {
		.data = (void *)(long)skb->data,
		.data_end = (void *)(long)skb->data_end,
		.m.len = skb->len,
		.m.ifkey = seg_cfg_ifkey ? seg_cfg_ifkey : skb->ifindex,
		.m.dir = dir,
	};

	return seg_pipeline(&c, skb, 0) ? TC_ACT_SHOT : TC_ACT_UNSPEC;
}

SEC("tc")
int seg_tc_to_pod(struct __sk_buff *skb)
{
	return seg_tc(skb, SEG_DIR_INGRESS);
}

SEC("tc")
int seg_tc_from_pod(struct __sk_buff *skb)
{
	return seg_tc(skb, SEG_DIR_EGRESS);
}

/* OVS userspace-datapath ports: AF_PACKET reads them before TC ingress, so
 * what leaves the pod is enforced here. */
SEC("xdp")
int seg_xdp_from_pod(struct xdp_md *xdp)
{
	struct seg_ctx c = {
		.data = (void *)(long)xdp->data,
		.data_end = (void *)(long)xdp->data_end,
		.m.len = xdp->data_end - xdp->data,
		.m.ifkey = seg_cfg_ifkey ? seg_cfg_ifkey : xdp->ingress_ifindex,
		.m.dir = SEG_DIR_EGRESS,
	};

	return seg_pipeline(&c, xdp, 1) ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
