/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Pod interface discovery for segd: which links in the node netns are pod
 * interfaces, of which CNI style, in which pod netns, with which addresses.
 * Classification goes by link kind and master (plus OVSDB for OVS ports of
 * the userspace datapath), never by guessing from names alone; matching an
 * interface to a Pod manifest is by address and is the caller's job.
 *
 *   CALICO   veth, no master, routed: a host route /32 or /128 via it, or
 *            named cali*
 *   FLANNEL  veth whose master is a Linux bridge
 *   OVS      veth that is an OVS port: master of kind openvswitch (kernel
 *            datapath) or an OVSDB Interface row of that name (userspace
 *            datapath: no master in rtnetlink); without an OVSDB socket such
 *            a port is reported as UNKNOWN
 *   MACVLAN  no host-side link: a macvlan device inside a pod netns whose
 *            link-netns is the node netns
 *
 * Netns changes are done with setns() on the calling thread, which always
 * returns to the netns it started in.
 */
#ifndef SEGD_DISCOVER_H
#define SEGD_DISCOVER_H

#include <net/if.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

enum disc_style {
	DISC_UNKNOWN = 0, /* a veth to another netns we cannot classify */
	DISC_CALICO,
	DISC_FLANNEL,
	DISC_OVS,
	DISC_MACVLAN,
};

const char *disc_style_str(enum disc_style s);

#define DISC_MAX_ADDRS 8
#define DISC_PATH_LEN 256
#define DISC_IFACE_ID_LEN 128

struct disc_iface {
	enum disc_style style;
	/* host side (node netns); 0 / "" for MACVLAN */
	int host_ifindex;
	char host_ifname[IF_NAMESIZE];
	char master[IF_NAMESIZE]; /* bridge name, "" if none */
	/* pod side: netns path ("" if no candidate netns matched) */
	char netns[DISC_PATH_LEN];
	int pod_ifindex; /* inside netns, 0 if unknown */
	char pod_ifname[IF_NAMESIZE];
	uint8_t mac[6]; /* pod-side MAC (the macvlan's, or the veth peer's) */
	/* OVS only (from OVSDB): external_ids:iface-id / attached-mac */
	char iface_id[DISC_IFACE_ID_LEN];
	char attached_mac[18];
	/* pod addresses (global scope), v4 as v4-mapped (lib/addr.h) */
	size_t n_addrs;
	struct in6_addr addrs[DISC_MAX_ADDRS];
	uint8_t prefixlen[DISC_MAX_ADDRS]; /* as configured: 24 for 10.0.0.2/24 */
};

struct disc_opts {
	/* node netns path; NULL = the calling thread's netns */
	const char *node_netns;
	/* candidate pod netns paths; NULL = every entry of netns_dir */
	const char *const *pod_netns;
	size_t n_pod_netns;
	const char *netns_dir; /* NULL = /run/netns */
	/* ovsdb-server unix socket; NULL = do not identify OVS ports */
	const char *ovsdb_sock;
	int ovsdb_timeout_ms; /* 0 = 2000 */
};

struct disc_result {
	struct disc_iface *ifs;
	size_t n;
};

/* Blocks (netlink dumps; OVSDB with its timeout). 0 or -errno; a candidate
 * netns that vanished or cannot be entered is skipped, not an error; an
 * unreachable OVSDB is logged and its ports come out as DISC_UNKNOWN. */
int discover_scan(const struct disc_opts *o, struct disc_result *res);
void discover_result_free(struct disc_result *res);

/*
 * Link events from the node netns, for segd's loop: put discover_watch_fd()
 * into loop_add_fd(..., EPOLLIN, ...) and call discover_watch_process() when
 * it is readable. It never blocks and handles at most a bounded batch; the
 * callback gets NEW/DEL/CHANGE per link (CHANGE also for a route or address
 * added or removed on it: then only ifindex is set), or RESYNC when the
 * kernel dropped messages (the socket overran): rescan then.
 * A veth moved in from a pod netns comes as NEW, usually before its peer's
 * nsid (and a cali* rename) arrive as CHANGEs: classify by rescanning, e.g.
 * once per loop iteration. MacVlan pods cause no event in the node netns
 * (the CNI plugin creates the device inside the pod netns): segd learns of
 * them from its CNI plugin, then rescans.
 */
enum disc_event {
	DISC_EV_NEW,
	DISC_EV_DEL,
	DISC_EV_CHANGE,
	DISC_EV_RESYNC,
};

struct disc_link {
	int ifindex;
	char ifname[IF_NAMESIZE];
	char kind[16]; /* "veth", "bridge", ... or "" */
	int master; /* ifindex, 0 if none */
	int link_nsid; /* the peer's netns id, -1 if same netns / none */
	unsigned flags; /* IFF_* */
};

typedef void (*disc_watch_cb)(void *ctx, enum disc_event ev, const struct disc_link *link);

struct disc_watch;

int discover_watch_new(const char *node_netns, disc_watch_cb cb, void *ctx,
		       struct disc_watch **out);
int discover_watch_fd(const struct disc_watch *w);
/* 0 or -errno; -EAGAIN never escapes (nothing to read is 0). */
int discover_watch_process(struct disc_watch *w);
void discover_watch_free(struct disc_watch *w);

#endif
