// SPDX-License-Identifier: GPL-2.0-only
#include "discover.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "discover_priv.h"
#include "log.h"
#include "ovsdb.h"

#define DISC_NETNS_DIR "/run/netns"
#define DISC_OVSDB_TIMEOUT_MS 2000

const char *disc_style_str(enum disc_style s)
{
	static const char *const names[] = {
		[DISC_UNKNOWN] = "unknown", [DISC_CALICO] = "calico",	[DISC_FLANNEL] = "flannel",
		[DISC_OVS] = "ovs",	    [DISC_MACVLAN] = "macvlan",
	};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

/* ---- network namespaces ------------------------------------------------ */

int disc_in_netns(const char *path, int (*fn)(void *), void *arg)
{
	int self = -1, target = -1, err;

	if (!path)
		return fn(arg);
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return log_err(-errno, "open /proc/thread-self/ns/net");
	target = open(path, O_RDONLY | O_CLOEXEC);
	if (target < 0) {
		err = -errno;
		goto out;
	}
	if (setns(target, CLONE_NEWNET)) {
		err = -errno;
		goto out;
	}
	err = fn(arg);
	if (setns(self, CLONE_NEWNET)) {
		/* Carrying on in a pod's netns would be worse than stopping. */
		log_err(-errno, "setns back from %s", path);
		abort();
	}
out:
	if (target >= 0)
		close(target);
	close(self);
	return err;
}

int disc_nl_open(struct nl_sock **out)
{
	struct nl_sock *sk = nl_socket_alloc();
	int err;

	if (!sk)
		return log_err(-ENOMEM, "netlink socket");
	err = nl_connect(sk, NETLINK_ROUTE);
	if (err) {
		nl_socket_free(sk);
		return log_err(-EIO, "netlink connect: %s", nl_geterror(err));
	}
	*out = sk;
	return 0;
}

static int disc_nsid_parse(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[NETNSA_MAX + 1];

	if (nlmsg_parse(nlmsg_hdr(msg), sizeof(struct rtgenmsg), tb, NETNSA_MAX, NULL) == 0 &&
	    tb[NETNSA_NSID])
		*(int *)arg = (int)nla_get_u32(tb[NETNSA_NSID]);
	return NL_OK;
}

/* The id the socket's netns gives the netns behind fd: >= 0, or -1 if it has
 * none (no link between them was ever reported); -errno on failure. */
static int disc_get_nsid(struct nl_sock *sk, int fd)
{
	struct rtgenmsg g = { .rtgen_family = AF_UNSPEC };
	struct nl_msg *m = nlmsg_alloc_simple(RTM_GETNSID, NLM_F_REQUEST);
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	int nsid = -1, err = -ENOMEM;

	if (!m || !cb)
		goto out;
	err = -EIO;
	if (nlmsg_append(m, &g, sizeof(g), NLMSG_ALIGNTO) < 0 || nla_put_u32(m, NETNSA_FD, fd) < 0)
		goto out;
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, disc_nsid_parse, &nsid);
	/* the reply, then the ACK nl_send_auto() asked for */
	if (nl_send_auto(sk, m) < 0 || nl_recvmsgs(sk, cb) < 0 || nl_wait_for_ack(sk) < 0)
		goto out;
	err = nsid < 0 ? -1 : nsid;
out:
	nl_cb_put(cb);
	nlmsg_free(m);
	return err;
}

/* ---- scan state ---------------------------------------------------------- */

struct disc_cand {
	char path[DISC_PATH_LEN];
	int nsid; /* as the node netns numbers it, -1 if none */
};

struct disc_scan {
	const struct disc_opts *o;
	struct disc_result *res;
	size_t cap;
	struct disc_cand *cand;
	size_t n_cand, cap_cand;
	int node_fd; /* the node netns, for RTM_GETNSID from pods */
	struct ovsdb_iface *ovs; /* OVSDB Interface rows, NULL if no OVSDB */
	size_t n_ovs;
	const struct disc_cand *cur; /* the pod netns being read */
};

static struct disc_iface *disc_add(struct disc_scan *s)
{
	struct disc_result *r = s->res;

	if (r->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct disc_iface *v = realloc(r->ifs, cap * sizeof(*v));

		if (!v)
			return NULL;
		r->ifs = v;
		s->cap = cap;
	}
	memset(&r->ifs[r->n], 0, sizeof(r->ifs[0]));
	return &r->ifs[r->n++];
}

static void disc_add_addr(struct disc_iface *d, struct nl_addr *a, unsigned prefixlen)
{
	struct in6_addr x;
	uint32_t v4;
	size_t i;

	if (!a)
		return;
	if (nl_addr_get_family(a) == AF_INET && nl_addr_get_len(a) == 4) {
		memcpy(&v4, nl_addr_get_binary_addr(a), 4);
		seg_addr_from_v4(&x, v4);
	} else if (nl_addr_get_family(a) == AF_INET6 && nl_addr_get_len(a) == 16) {
		memcpy(&x, nl_addr_get_binary_addr(a), 16);
	} else {
		return;
	}
	for (i = 0; i < d->n_addrs; i++)
		if (!memcmp(&d->addrs[i], &x, sizeof(x))) {
			/* an address seen as a host route: keep the pod's prefix */
			if (prefixlen < d->prefixlen[i])
				d->prefixlen[i] = (uint8_t)prefixlen;
			return;
		}
	if (d->n_addrs == DISC_MAX_ADDRS) {
		log_warn("%s: more than %d addresses, extra ignored",
			 d->host_ifname[0] ? d->host_ifname : d->pod_ifname, DISC_MAX_ADDRS);
		return;
	}
	d->addrs[d->n_addrs] = x;
	d->prefixlen[d->n_addrs++] = (uint8_t)prefixlen;
}

static void disc_copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

/* ---- candidates: the pod netns paths ------------------------------------- */

static int disc_cand_add(struct disc_scan *s, const char *path, const struct stat *node,
			 struct stat *seen, size_t *n_seen)
{
	struct stat st;
	size_t i;

	if (stat(path, &st)) {
		log_debug("skip netns %s: %s", path, strerror(errno));
		return 0;
	}
	if (st.st_dev == node->st_dev && st.st_ino == node->st_ino)
		return 0; /* the node itself */
	for (i = 0; i < *n_seen; i++)
		if (seen[i].st_dev == st.st_dev && seen[i].st_ino == st.st_ino)
			return 0; /* the same netns under another name */
	if (s->n_cand == s->cap_cand) {
		size_t cap = s->cap_cand ? s->cap_cand * 2 : 16;
		struct disc_cand *v = realloc(s->cand, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->cand = v;
		s->cap_cand = cap;
	}
	seen[(*n_seen)++] = st;
	disc_copy(s->cand[s->n_cand].path, DISC_PATH_LEN, path);
	s->cand[s->n_cand++].nsid = -1;
	return 0;
}

static int disc_cands(struct disc_scan *s)
{
	const struct disc_opts *o = s->o;
	const char *dir = o->netns_dir ? o->netns_dir : DISC_NETNS_DIR;
	struct stat node, *seen = NULL;
	size_t n_seen = 0, max;
	struct dirent *de;
	DIR *d = NULL;
	int err = 0;

	if (fstat(s->node_fd, &node))
		return log_err(-errno, "stat node netns");
	if (o->pod_netns) {
		max = o->n_pod_netns;
	} else {
		d = opendir(dir);
		if (!d)
			return errno == ENOENT ? 0 : log_err(-errno, "open %s", dir);
		max = 0;
		while (readdir(d))
			max++;
		rewinddir(d);
	}
	seen = calloc(max + 1, sizeof(*seen));
	if (!seen) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; o->pod_netns && i < o->n_pod_netns && !err; i++)
		err = disc_cand_add(s, o->pod_netns[i], &node, seen, &n_seen);
	while (d && !err && n_seen < max && (de = readdir(d))) {
		char path[DISC_PATH_LEN];

		if (de->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path))
			continue;
		err = disc_cand_add(s, path, &node, seen, &n_seen);
	}
	if (err)
		log_err(err, "list pod netns");
out:
	free(seen);
	if (d)
		closedir(d);
	return err;
}

/* ---- node netns: host-side veths ----------------------------------------- */

static const struct ovsdb_iface *disc_ovs_find(const struct disc_scan *s, const char *name)
{
	for (size_t i = 0; i < s->n_ovs; i++)
		if (!strcmp(s->ovs[i].name, name))
			return &s->ovs[i];
	return NULL;
}

/* Host routes (/32, /128) in the main table through ifindex: Calico-style
 * routed pod addresses. Returns how many were found. */
static int disc_host_routes(struct nl_cache *routes, struct disc_iface *d)
{
	struct nl_object *obj;
	int found = 0;

	for (obj = nl_cache_get_first(routes); obj; obj = nl_cache_get_next(obj)) {
		struct rtnl_route *r = (struct rtnl_route *)obj;
		struct nl_addr *dst = rtnl_route_get_dst(r);
		struct rtnl_nexthop *nh;
		unsigned full;

		/* proto kernel: the node's own address on the veth (ptp puts
		 * the gateway fd00::1/128 there), not a pod's */
		if (rtnl_route_get_table(r) != RT_TABLE_MAIN ||
		    rtnl_route_get_type(r) != RTN_UNICAST ||
		    rtnl_route_get_protocol(r) == RTPROT_KERNEL ||
		    rtnl_route_get_nnexthops(r) != 1 || !dst)
			continue;
		full = nl_addr_get_family(dst) == AF_INET ? 32 : 128;
		nh = rtnl_route_nexthop_n(r, 0);
		if (nl_addr_get_prefixlen(dst) != full ||
		    rtnl_route_nh_get_ifindex(nh) != d->host_ifindex)
			continue;
		disc_add_addr(d, dst, full);
		found++;
	}
	return found;
}

static void disc_classify(struct disc_scan *s, struct nl_cache *links, struct nl_cache *routes,
			  struct rtnl_link *l, struct disc_iface *d)
{
	int mi = rtnl_link_get_master(l);
	const struct ovsdb_iface *ovs;
	int routed;

	if (mi > 0) {
		struct rtnl_link *m = rtnl_link_get(links, mi);
		const char *kind = m ? rtnl_link_get_type(m) : NULL;

		disc_copy(d->master, sizeof(d->master), m ? rtnl_link_get_name(m) : NULL);
		if (kind && !strcmp(kind, "bridge"))
			d->style = DISC_FLANNEL;
		else if (kind && !strcmp(kind, "openvswitch"))
			d->style = DISC_OVS; /* kernel datapath */
		rtnl_link_put(m);
	}
	ovs = s->ovs ? disc_ovs_find(s, d->host_ifname) : NULL;
	if (ovs) {
		d->style = DISC_OVS;
		disc_copy(d->iface_id, sizeof(d->iface_id), ovs->iface_id);
		disc_copy(d->attached_mac, sizeof(d->attached_mac), ovs->attached_mac);
	}
	routed = disc_host_routes(routes, d);
	if (d->style == DISC_UNKNOWN && mi <= 0 &&
	    (routed > 0 || !strncmp(d->host_ifname, "cali", 4)))
		d->style = DISC_CALICO;
}

static int disc_node_links(struct disc_scan *s, struct nl_cache *links, struct nl_cache *routes)
{
	struct nl_object *obj;

	for (obj = nl_cache_get_first(links); obj; obj = nl_cache_get_next(obj)) {
		struct rtnl_link *l = (struct rtnl_link *)obj;
		const char *kind = rtnl_link_get_type(l);
		struct disc_iface *d;
		int32_t nsid;

		/* a pod veth has its peer in another netns; a veth with both
		 * ends here (a macvlan parent, say) is not a pod interface */
		if (!kind || strcmp(kind, "veth") || rtnl_link_get_link_netnsid(l, &nsid))
			continue;
		d = disc_add(s);
		if (!d)
			return log_err(-ENOMEM, "discover");
		d->host_ifindex = rtnl_link_get_ifindex(l);
		disc_copy(d->host_ifname, sizeof(d->host_ifname), rtnl_link_get_name(l));
		d->pod_ifindex = rtnl_link_get_link(l); /* the peer, inside its netns */
		for (size_t i = 0; i < s->n_cand; i++)
			if (s->cand[i].nsid == nsid)
				disc_copy(d->netns, sizeof(d->netns), s->cand[i].path);
		disc_classify(s, links, routes, l, d);
	}
	return 0;
}

static int disc_node(void *arg)
{
	struct disc_scan *s = arg;
	struct nl_cache *links = NULL, *routes = NULL;
	struct nl_sock *sk = NULL;
	int err;

	err = disc_nl_open(&sk);
	if (err)
		return err;
	/* dump links first: reporting a peer allocates the nsids we ask for */
	err = rtnl_link_alloc_cache(sk, AF_UNSPEC, &links);
	if (!err)
		err = rtnl_route_alloc_cache(sk, AF_UNSPEC, 0, &routes);
	if (err) {
		err = log_err(-EIO, "dump node links/routes: %s", nl_geterror(err));
		goto out;
	}
	for (size_t i = 0; i < s->n_cand; i++) {
		int fd = open(s->cand[i].path, O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			continue; /* deleted meanwhile */
		s->cand[i].nsid = disc_get_nsid(sk, fd);
		close(fd);
	}
	err = disc_node_links(s, links, routes);
out:
	nl_cache_free(routes);
	nl_cache_free(links);
	nl_socket_free(sk);
	return err;
}

/* ---- pod netns: the pod side ---------------------------------------------- */

static void disc_pod_fill(struct disc_iface *d, struct rtnl_link *l, struct nl_cache *addrs)
{
	struct nl_addr *mac = rtnl_link_get_addr(l);
	struct nl_object *obj;

	d->pod_ifindex = rtnl_link_get_ifindex(l);
	disc_copy(d->pod_ifname, sizeof(d->pod_ifname), rtnl_link_get_name(l));
	if (mac && nl_addr_get_len(mac) == sizeof(d->mac))
		memcpy(d->mac, nl_addr_get_binary_addr(mac), sizeof(d->mac));
	for (obj = nl_cache_get_first(addrs); obj; obj = nl_cache_get_next(obj)) {
		struct rtnl_addr *a = (struct rtnl_addr *)obj;

		if (rtnl_addr_get_ifindex(a) == d->pod_ifindex &&
		    rtnl_addr_get_scope(a) == RT_SCOPE_UNIVERSE)
			disc_add_addr(d, rtnl_addr_get_local(a),
				      (unsigned)rtnl_addr_get_prefixlen(a));
	}
}

static int disc_pod_macvlans(struct disc_scan *s, struct nl_sock *sk, struct nl_cache *links,
			     struct nl_cache *addrs)
{
	int node_nsid = disc_get_nsid(sk, s->node_fd);
	struct nl_object *obj;

	if (node_nsid < 0)
		return 0; /* no link of this netns refers to the node */
	for (obj = nl_cache_get_first(links); obj; obj = nl_cache_get_next(obj)) {
		struct rtnl_link *l = (struct rtnl_link *)obj;
		const char *kind = rtnl_link_get_type(l);
		struct disc_iface *d;
		int32_t nsid;

		if (!kind || (strcmp(kind, "macvlan") && strcmp(kind, "macvtap")) ||
		    rtnl_link_get_link_netnsid(l, &nsid) || nsid != node_nsid)
			continue;
		d = disc_add(s);
		if (!d)
			return log_err(-ENOMEM, "discover");
		d->style = DISC_MACVLAN;
		disc_copy(d->netns, sizeof(d->netns), s->cur->path);
		disc_pod_fill(d, l, addrs);
	}
	return 0;
}

static int disc_pod(void *arg)
{
	struct disc_scan *s = arg;
	struct nl_cache *links = NULL, *addrs = NULL;
	struct nl_sock *sk = NULL;
	size_t n_node = s->res->n;
	int err;

	err = disc_nl_open(&sk);
	if (err)
		return err;
	err = rtnl_link_alloc_cache(sk, AF_UNSPEC, &links);
	if (!err)
		err = rtnl_addr_alloc_cache(sk, &addrs);
	if (err) {
		err = log_err(-EIO, "dump links/addresses in %s: %s", s->cur->path,
			      nl_geterror(err));
		goto out;
	}
	for (size_t i = 0; i < n_node; i++) {
		struct disc_iface *d = &s->res->ifs[i];
		struct rtnl_link *l;

		if (d->style == DISC_MACVLAN || strcmp(d->netns, s->cur->path))
			continue;
		l = rtnl_link_get(links, d->pod_ifindex);
		if (l)
			disc_pod_fill(d, l, addrs);
		rtnl_link_put(l);
	}
	err = disc_pod_macvlans(s, sk, links, addrs);
out:
	nl_cache_free(addrs);
	nl_cache_free(links);
	nl_socket_free(sk);
	return err;
}

/* ---- discover_scan --------------------------------------------------------- */

static int disc_open_node(const char *path)
{
	int fd = open(path ? path : "/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return log_err(-errno, "open node netns %s", path ? path : "(own)");
	return fd;
}

int discover_scan(const struct disc_opts *o, struct disc_result *res)
{
	struct disc_scan s = { .o = o, .res = res, .node_fd = -1 };
	int err;

	memset(res, 0, sizeof(*res));
	s.node_fd = disc_open_node(o->node_netns);
	if (s.node_fd < 0)
		return s.node_fd;
	err = disc_cands(&s);
	if (err)
		goto out;
	if (o->ovsdb_sock &&
	    ovsdb_list_ifaces(o->ovsdb_sock,
			      o->ovsdb_timeout_ms > 0 ? o->ovsdb_timeout_ms : DISC_OVSDB_TIMEOUT_MS,
			      &s.ovs, &s.n_ovs))
		log_warn("OVS ports of %s come out as unknown", o->ovsdb_sock);
	err = disc_in_netns(o->node_netns, disc_node, &s);
	if (err) {
		if (err != -EIO && err != -ENOMEM)
			log_err(err, "enter node netns %s", o->node_netns);
		goto out;
	}
	for (size_t i = 0; i < s.n_cand; i++) {
		s.cur = &s.cand[i];
		err = disc_in_netns(s.cur->path, disc_pod, &s);
		if (err == -ENOMEM)
			goto out;
		if (err)
			log_debug("skip pod netns %s: %s", s.cur->path, strerror(-err));
		err = 0;
	}
out:
	if (err)
		discover_result_free(res);
	free(s.ovs);
	free(s.cand);
	close(s.node_fd);
	return err;
}

void discover_result_free(struct disc_result *res)
{
	free(res->ifs);
	res->ifs = NULL;
	res->n = 0;
}
