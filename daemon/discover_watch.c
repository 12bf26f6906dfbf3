// SPDX-License-Identifier: GPL-2.0-only
/* discover_watch: rtnetlink link/address/route events from the node netns. */
#include "discover.h"

#include <errno.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <stdlib.h>
#include <string.h>

#include "discover_priv.h"
#include "log.h"

#define DISC_WATCH_BATCH 64 /* datagrams per discover_watch_process() */

struct disc_watch {
	struct nl_sock *sk;
	struct nl_cb *cb;
	disc_watch_cb fn;
	void *ctx;
	/* ifindexes known to exist, sorted: tells NEW from CHANGE */
	int *known;
	size_t n_known, cap_known;
	int err; /* from inside the netlink callback */
};

static size_t disc_known_pos(const struct disc_watch *w, int ifindex)
{
	size_t lo = 0, hi = w->n_known;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (w->known[mid] < ifindex)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Returns 1 if ifindex was new, 0 if known, -ENOMEM. */
static int disc_known_add(struct disc_watch *w, int ifindex)
{
	size_t pos = disc_known_pos(w, ifindex);

	if (pos < w->n_known && w->known[pos] == ifindex)
		return 0;
	if (w->n_known == w->cap_known) {
		size_t cap = w->cap_known ? w->cap_known * 2 : 64;
		int *v = realloc(w->known, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		w->known = v;
		w->cap_known = cap;
	}
	memmove(&w->known[pos + 1], &w->known[pos], (w->n_known - pos) * sizeof(int));
	w->known[pos] = ifindex;
	w->n_known++;
	return 1;
}

static void disc_known_del(struct disc_watch *w, int ifindex)
{
	size_t pos = disc_known_pos(w, ifindex);

	if (pos < w->n_known && w->known[pos] == ifindex) {
		memmove(&w->known[pos], &w->known[pos + 1], (w->n_known - pos - 1) * sizeof(int));
		w->n_known--;
	}
}

static void disc_link_parse(struct nlmsghdr *h, struct disc_link *dl)
{
	struct ifinfomsg *ifi = nlmsg_data(h);
	struct nlattr *tb[IFLA_MAX + 1], *info[IFLA_INFO_MAX + 1];

	memset(dl, 0, sizeof(*dl));
	dl->ifindex = ifi->ifi_index;
	dl->flags = ifi->ifi_flags;
	dl->link_nsid = -1;
	if (nlmsg_parse(h, sizeof(*ifi), tb, IFLA_MAX, NULL))
		return;
	if (tb[IFLA_IFNAME])
		nla_strlcpy(dl->ifname, tb[IFLA_IFNAME], sizeof(dl->ifname));
	if (tb[IFLA_MASTER])
		dl->master = (int)nla_get_u32(tb[IFLA_MASTER]);
	if (tb[IFLA_LINK_NETNSID])
		dl->link_nsid = (int)nla_get_u32(tb[IFLA_LINK_NETNSID]);
	if (tb[IFLA_LINKINFO] && !nla_parse_nested(info, IFLA_INFO_MAX, tb[IFLA_LINKINFO], NULL) &&
	    info[IFLA_INFO_KIND])
		nla_strlcpy(dl->kind, info[IFLA_INFO_KIND], sizeof(dl->kind));
}

/* An address or route change: reported as CHANGE of the link it is on. */
static int disc_other_ifindex(struct nlmsghdr *h)
{
	struct nlattr *tb[RTA_MAX + 1];

	if (h->nlmsg_type == RTM_NEWADDR || h->nlmsg_type == RTM_DELADDR) {
		if (nlmsg_datalen(h) < (int)sizeof(struct ifaddrmsg))
			return 0;
		return (int)((struct ifaddrmsg *)nlmsg_data(h))->ifa_index;
	}
	if (nlmsg_parse(h, sizeof(struct rtmsg), tb, RTA_MAX, NULL) || !tb[RTA_OIF])
		return 0;
	return (int)nla_get_u32(tb[RTA_OIF]);
}

static int disc_watch_msg(struct nl_msg *msg, void *arg)
{
	struct disc_watch *w = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct disc_link dl;
	int isnew;

	switch (h->nlmsg_type) {
	case RTM_NEWLINK:
	case RTM_DELLINK:
		/* AF_BRIDGE copies describe bridge-port state, not the link */
		if (nlmsg_datalen(h) < (int)sizeof(struct ifinfomsg) ||
		    ((struct ifinfomsg *)nlmsg_data(h))->ifi_family != AF_UNSPEC)
			return NL_OK;
		disc_link_parse(h, &dl);
		if (h->nlmsg_type == RTM_DELLINK) {
			disc_known_del(w, dl.ifindex);
			w->fn(w->ctx, DISC_EV_DEL, &dl);
			return NL_OK;
		}
		isnew = disc_known_add(w, dl.ifindex);
		if (isnew < 0) {
			w->err = isnew;
			return NL_STOP;
		}
		w->fn(w->ctx, isnew ? DISC_EV_NEW : DISC_EV_CHANGE, &dl);
		return NL_OK;
	case RTM_NEWADDR:
	case RTM_DELADDR:
	case RTM_NEWROUTE:
	case RTM_DELROUTE:
		memset(&dl, 0, sizeof(dl));
		dl.link_nsid = -1;
		dl.ifindex = disc_other_ifindex(h);
		if (dl.ifindex > 0)
			w->fn(w->ctx, DISC_EV_CHANGE, &dl);
		return NL_OK;
	}
	return NL_OK;
}

/* notifications carry no sequence number of ours */
static int disc_watch_noseq(struct nl_msg *msg, void *arg)
{
	return NL_OK;
}

static int disc_watch_open(void *arg)
{
	struct disc_watch *w = arg;
	struct nl_cache *links = NULL;
	struct nl_sock *dump = NULL;
	struct nl_object *obj;
	int err;

	w->sk = nl_socket_alloc();
	if (!w->sk)
		return log_err(-ENOMEM, "netlink socket");
	nl_socket_disable_seq_check(w->sk);
	err = nl_connect(w->sk, NETLINK_ROUTE);
	if (!err)
		err = nl_socket_add_memberships(w->sk, RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR,
						RTNLGRP_IPV6_IFADDR, RTNLGRP_IPV4_ROUTE,
						RTNLGRP_IPV6_ROUTE, 0);
	if (!err)
		err = nl_socket_set_nonblocking(w->sk);
	if (!err)
		err = nl_socket_set_buffer_size(w->sk, 1 << 20, 0);
	if (err)
		return log_err(-EIO, "rtnetlink subscribe: %s", nl_geterror(err));
	/* subscribed first, then listed: a link born in between is CHANGE */
	err = disc_nl_open(&dump);
	if (err)
		return err;
	err = rtnl_link_alloc_cache(dump, AF_UNSPEC, &links);
	if (err) {
		err = log_err(-EIO, "dump links: %s", nl_geterror(err));
		goto out;
	}
	for (obj = nl_cache_get_first(links); obj && !err; obj = nl_cache_get_next(obj))
		if (disc_known_add(w, rtnl_link_get_ifindex((struct rtnl_link *)obj)) < 0)
			err = log_err(-ENOMEM, "discover watch");
out:
	nl_cache_free(links);
	nl_socket_free(dump);
	return err;
}

int discover_watch_new(const char *node_netns, disc_watch_cb cb, void *ctx, struct disc_watch **out)
{
	struct disc_watch *w = calloc(1, sizeof(*w));
	int err;

	*out = NULL;
	if (!w)
		return log_err(-ENOMEM, "discover watch");
	w->fn = cb;
	w->ctx = ctx;
	w->cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!w->cb) {
		err = log_err(-ENOMEM, "discover watch");
		goto out;
	}
	nl_cb_set(w->cb, NL_CB_VALID, NL_CB_CUSTOM, disc_watch_msg, w);
	nl_cb_set(w->cb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, disc_watch_noseq, NULL);
	err = disc_in_netns(node_netns, disc_watch_open, w);
	if (err) {
		if (err != -EIO && err != -ENOMEM)
			log_err(err, "enter node netns %s", node_netns);
		goto out;
	}
	*out = w;
	w = NULL;
out:
	discover_watch_free(w);
	return err;
}

int discover_watch_fd(const struct disc_watch *w)
{
	return nl_socket_get_fd(w->sk);
}

int discover_watch_process(struct disc_watch *w)
{
	static const struct disc_link none = { .link_nsid = -1 };

	for (int i = 0; i < DISC_WATCH_BATCH; i++) {
		int err = nl_recvmsgs(w->sk, w->cb);

		if (w->err) {
			err = w->err;
			w->err = 0;
			return log_err(err, "discover watch");
		}
		if (err == -NLE_AGAIN)
			return 0;
		if (err == -NLE_NOMEM) { /* ENOBUFS: the kernel dropped events */
			w->fn(w->ctx, DISC_EV_RESYNC, &none);
			continue;
		}
		if (err < 0)
			return log_err(-EIO, "discover watch: %s", nl_geterror(err));
	}
	return 0;
}

void discover_watch_free(struct disc_watch *w)
{
	if (!w)
		return;
	nl_socket_free(w->sk);
	nl_cb_put(w->cb);
	free(w->known);
	free(w);
}
