// SPDX-License-Identifier: GPL-2.0-only
/*
 * Attach and detach per interface, with bpf_link only:
 *   tcx   bpf_link_create(prog, ifindex, BPF_TCX_INGRESS|EGRESS)  (>= 6.6)
 *   xdp   bpf_link_create(prog, ifindex, BPF_XDP, XDP_FLAGS_SKB_MODE)
 * A link lives as long as its pin (<pin_dir>/links/<ifkey>-{from,to}) or,
 * in a private instance, its fd in dp->att. Dropping both detaches.
 *
 * Re-attaching the same ifkey replaces: host-side, a link of the same kind
 * on the same interface is moved to the new program with bpf_link_update
 * (atomic, no window); otherwise (and always for in-netns links) the new
 * link is created first and the old one dropped by replacing its pin. A
 * host-side ifkey is an ifindex, so every host-side attachment of one pin
 * dir must be in one netns (the node's), as the endpoint map assumes.
 *
 * In another netns (a->netns), the calling thread setns()es there for the
 * interface lookup and link creation, and always returns to its own netns
 * (an fd of which it opened first). Pins are path operations in our mount
 * namespace, so they are not affected.
 */
#include "dp_priv.h"
#include "log.h"
#include "seg_bpf.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const link_suffix[2] = { [SEG_LINK_FROM] = "from", [SEG_LINK_TO] = "to" };

/* What one direction of an attachment is. */
struct hook {
	enum seg_prog prog;
	bool xdp;
	enum bpf_attach_type type; /* BPF_TCX_* or BPF_XDP */
};

static int mode_hooks(enum seg_attach_mode mode, struct hook h[2])
{
	switch (mode) {
	case SEG_ATTACH_VETH:
		h[SEG_LINK_FROM] = (struct hook){ SEG_PROG_TC_FROM_POD, false, BPF_TCX_INGRESS };
		h[SEG_LINK_TO] = (struct hook){ SEG_PROG_TC_TO_POD, false, BPF_TCX_EGRESS };
		return 0;
	case SEG_ATTACH_OVS:
		h[SEG_LINK_FROM] = (struct hook){ SEG_PROG_XDP_FROM_POD, true, BPF_XDP };
		h[SEG_LINK_TO] = (struct hook){ SEG_PROG_TC_TO_POD, false, BPF_TCX_EGRESS };
		return 0;
	case SEG_ATTACH_POD:
		h[SEG_LINK_FROM] = (struct hook){ SEG_PROG_TC_FROM_POD, false, BPF_TCX_EGRESS };
		h[SEG_LINK_TO] = (struct hook){ SEG_PROG_TC_TO_POD, false, BPF_TCX_INGRESS };
		return 0;
	}
	return log_err(-EINVAL, "unknown attach mode %d", (int)mode);
}

/* struct bpf_link_info as of 6.6: xdp and tcx both start the union with
 * ifindex; tcx has attach_type after it. The 6.1 UAPI header lacks tcx. */
struct link_info {
	__u32 type, id, prog_id, _pad;
	__u32 ifindex, attach_type;
	__u64 _more[4];
};

static int link_info_get(int fd, struct link_info *li)
{
	__u32 len = sizeof(*li);

	memset(li, 0, sizeof(*li));
	if (bpf_obj_get_info_by_fd(fd, li, &len))
		return -errno;
	return 0;
}

/* ---- netns ------------------------------------------------------------- */

static int netns_enter(const char *path, int *self)
{
	int fd, err = 0;

	*self = -1;
	if (!path)
		return 0;
	*self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (*self < 0)
		return log_err(-errno, "open own netns");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = log_err(-errno, "open netns %s", path);
	} else {
		if (setns(fd, CLONE_NEWNET))
			err = log_err(-errno, "enter netns %s", path);
		close(fd);
	}
	if (err) {
		close(*self);
		*self = -1;
	}
	return err;
}

static void netns_leave(int self)
{
	if (self < 0)
		return;
	if (setns(self, CLONE_NEWNET))
		log_err(-errno, "return to own netns: this thread is stuck in another netns");
	close(self);
}

/* ---- links: pinned or kept --------------------------------------------- */

static struct seg_dp_att *att_find(struct seg_dp *dp, __u32 ifkey)
{
	for (size_t i = 0; i < dp->natt; i++)
		if (dp->att[i].ifkey == ifkey)
			return &dp->att[i];
	return NULL;
}

static int link_path(char *buf, const struct seg_dp *dp, __u32 ifkey, int dir)
{
	char name[32];

	snprintf(name, sizeof(name), "%u-%s", ifkey, link_suffix[dir]);
	return seg_dp_path(buf, dp->pin_dir, "links", name);
}

/* Our own fd of the current link for (ifkey, dir), or -1. */
static int link_old(struct seg_dp *dp, __u32 ifkey, int dir)
{
	char path[PATH_MAX];
	struct seg_dp_att *at;

	if (!dp->pin_dir) {
		at = att_find(dp, ifkey);
		return at && at->link_fd[dir] >= 0 ? dup(at->link_fd[dir]) : -1;
	}
	if (link_path(path, dp, ifkey, dir))
		return -1;
	return bpf_obj_get(path);
}

/* Both directions of ifkey have a live link (host-side: on that ifindex). */
static bool link_kept(struct seg_dp *dp, __u32 ifkey)
{
	for (int d = 0; d < 2; d++) {
		struct link_info li;
		int fd = link_old(dp, ifkey, d);
		bool live;

		if (fd < 0)
			return false;
		live = !link_info_get(fd, &li) && li.ifindex &&
		       ((ifkey & SEG_IFKEY_NETNS) || li.ifindex == ifkey);
		close(fd);
		if (!live)
			return false;
	}
	return true;
}

/* Stores a new link for (ifkey, dir), replacing (dropping) the old one. */
static int link_store(struct seg_dp *dp, __u32 ifkey, int dir, int fd)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	struct seg_dp_att *at;
	int err;

	if (!dp->pin_dir) {
		at = att_find(dp, ifkey);
		if (!at) {
			at = realloc(dp->att, (dp->natt + 1) * sizeof(*at));
			if (!at)
				return log_err(-ENOMEM, "remember link of ifkey %u", ifkey);
			dp->att = at;
			at = &dp->att[dp->natt++];
			*at = (struct seg_dp_att){ ifkey, { -1, -1 } };
		}
		if (at->link_fd[dir] >= 0)
			close(at->link_fd[dir]);
		at->link_fd[dir] = dup(fd);
		return at->link_fd[dir] < 0 ? log_err(-errno, "dup link fd") : 0;
	}
	err = link_path(path, dp, ifkey, dir);
	if (err)
		return err;
	snprintf(tmp, sizeof(tmp), "%s_new", path);
	unlink(tmp);
	if (bpf_obj_pin(fd, tmp))
		return log_err(-errno, "pin link %s", tmp);
	if (rename(tmp, path)) {
		err = log_err(-errno, "rename %s to %s", tmp, path);
		unlink(tmp);
	}
	return err;
}

/* Attaches prog_fd at one hook. When old_fd is a link of the same kind on
 * the same interface, it is updated in place (*new_fd = -1); otherwise a
 * new link is created in *new_fd. */
static int hook_attach(const struct hook *h, int prog_fd, int ifindex, int old_fd, int *new_fd,
		       const char *ifname)
{
	LIBBPF_OPTS(bpf_link_create_opts, lo);
	struct link_info li;
	__u32 want_type = h->xdp ? BPF_LINK_TYPE_XDP : BPF_LINK_TYPE_TCX;

	*new_fd = -1;
	if (old_fd >= 0 && !link_info_get(old_fd, &li) && li.type == want_type &&
	    li.ifindex == (__u32)ifindex && (h->xdp || li.attach_type == (__u32)h->type)) {
		if (bpf_link_update(old_fd, prog_fd, NULL))
			return log_err(-errno, "update link on %s (%s)", ifname,
				       seg_dp_prog_name(h->prog));
		return 0;
	}
	if (h->xdp)
		lo.flags = XDP_FLAGS_SKB_MODE;
	*new_fd = bpf_link_create(prog_fd, ifindex, h->type, &lo);
	if (*new_fd < 0) {
		int err = -errno;

		*new_fd = -1;
		if (err == -EBUSY && h->xdp)
			return log_err(err, "attach XDP to %s: another XDP program is attached",
				       ifname);
		return log_err(err, "attach %s to %s (%s)", seg_dp_prog_name(h->prog), ifname,
			       h->xdp			  ? "xdp generic" :
			       h->type == BPF_TCX_INGRESS ? "tcx ingress" :
							    "tcx egress");
	}
	return 0;
}

/* Program fds for this attachment: dp's, or a fresh instance's for POD. */
static int progs_get(struct seg_dp *dp, const struct seg_dp_attach *a, struct seg_bpf **inst,
		     int fds[SEG_PROG_MAX])
{
	__u32 ifkey = SEG_IFKEY_NETNS | a->ep_id;
	int err;

	*inst = NULL;
	if (a->mode != SEG_ATTACH_POD) {
		for (int p = 0; p < SEG_PROG_MAX; p++)
			fds[p] = dp->prog_fd[p];
		return 0;
	}
	err = seg_dp_instance_open(dp, ifkey, inst);
	if (err)
		return err;
	/* In a pod netns only the TC programs are attached. */
	bpf_program__set_autoload((*inst)->progs.seg_xdp_from_pod, false);
	err = seg_bpf__load(*inst);
	if (err)
		return log_err(err, "load program instance for ifkey %#x", ifkey);
	fds[SEG_PROG_TC_TO_POD] = bpf_program__fd((*inst)->progs.seg_tc_to_pod);
	fds[SEG_PROG_TC_FROM_POD] = bpf_program__fd((*inst)->progs.seg_tc_from_pod);
	fds[SEG_PROG_XDP_FROM_POD] = -1;
	return 0;
}

/* In the target netns: find the interface, attach both hooks. */
static int attach_in_ns(const struct seg_dp_attach *a, const struct hook h[2],
			const int prog_fd[SEG_PROG_MAX], const int old_fd[2], int new_fd[2],
			int *ifindex)
{
	const char *ifname = a->ifname;
	char namebuf[IF_NAMESIZE];
	int err;

	*ifindex = a->ifname ? (int)if_nametoindex(a->ifname) : a->ifindex;
	if (*ifindex <= 0)
		return log_err(a->ifname ? -ENODEV : -EINVAL, "interface %s%s%s",
			       a->ifname ? a->ifname : "(none given)", a->netns ? " in netns " : "",
			       a->netns ? a->netns : "");
	if (!ifname)
		ifname = if_indextoname(*ifindex, namebuf) ? namebuf : "?";
	for (int d = 0; d < 2; d++) {
		if (prog_fd[h[d].prog] < 0)
			return log_err(-ENOENT, "program %s is not available (not pinned?)",
				       seg_dp_prog_name(h[d].prog));
		err = hook_attach(&h[d], prog_fd[h[d].prog], *ifindex, old_fd[d], &new_fd[d],
				  ifname);
		if (err)
			return err;
	}
	return 0;
}

int seg_dp_attach(struct seg_dp *dp, const struct seg_dp_attach *a, __u32 *ifkey_out)
{
	struct seg_bpf *inst = NULL;
	int prog_fd[SEG_PROG_MAX], old_fd[2] = { -1, -1 }, new_fd[2] = { -1, -1 };
	int self = -1, ifindex = 0, err;
	struct hook h[2];
	__u32 ifkey = 0;

	err = mode_hooks(a->mode, h);
	if (err)
		return err;
	if (a->mode == SEG_ATTACH_POD) {
		if (!a->ep_id || (a->ep_id & SEG_IFKEY_NETNS))
			return log_err(-EINVAL, "in-netns attach of %s needs an ep_id in 1..%#x",
				       a->ifname ? a->ifname : "?", SEG_IFKEY_NETNS - 1);
		ifkey = SEG_IFKEY_NETNS | a->ep_id;
	}
	err = progs_get(dp, a, &inst, prog_fd);
	if (err)
		goto out;
	err = netns_enter(a->netns, &self);
	if (err)
		goto out;
	if (a->mode != SEG_ATTACH_POD) {
		/* The ifkey is the ifindex: known only inside the netns. */
		ifindex = a->ifname ? (int)if_nametoindex(a->ifname) : a->ifindex;
		ifkey = ifindex > 0 ? (__u32)ifindex : 0;
	}
	/* In-place update only host-side: an in-netns link of the same ep_id
	 * may be on a same-numbered device of another pod's netns (link info
	 * does not tell the netns), so POD links are always made anew. */
	for (int d = 0; d < 2 && ifkey && a->mode != SEG_ATTACH_POD; d++)
		old_fd[d] = link_old(dp, ifkey, d);
	/* Stale pins being rebuilt (adopt.c): an attached interface keeps its
	 * programs and their maps until seg_dp_commit() moves every link. */
	if (seg_dp_commit_pending(dp) && ifkey && link_kept(dp, ifkey)) {
		netns_leave(self);
		log_debug("ifkey %#x stays on its programs until the commit", ifkey);
		if (ifkey_out)
			*ifkey_out = ifkey;
		goto out;
	}
	err = attach_in_ns(a, h, prog_fd, old_fd, new_fd, &ifindex);
	netns_leave(self);
	if (err)
		goto out;
	for (int d = 0; d < 2; d++) {
		if (new_fd[d] < 0)
			continue; /* updated in place */
		err = link_store(dp, ifkey, d, new_fd[d]);
		if (err)
			goto out;
	}
	log_debug("attached %s ifindex %d%s%s as ifkey %#x", a->ifname ? a->ifname : "", ifindex,
		  a->netns ? " in " : "", a->netns ? a->netns : "", ifkey);
	if (ifkey_out)
		*ifkey_out = ifkey;
out:
	/* New links that were not stored detach here; stored ones live on. */
	for (int d = 0; d < 2; d++) {
		if (new_fd[d] >= 0)
			close(new_fd[d]);
		if (old_fd[d] >= 0)
			close(old_fd[d]);
	}
	seg_bpf__destroy(inst);
	return err;
}

int seg_dp_detach(struct seg_dp *dp, __u32 ifkey)
{
	char path[PATH_MAX];
	struct seg_dp_att *at;
	int found = 0, err;

	if (!dp->pin_dir) {
		at = att_find(dp, ifkey);
		if (!at)
			return log_err(-ENOENT, "ifkey %u is not attached", ifkey);
		for (int d = 0; d < 2; d++)
			if (at->link_fd[d] >= 0)
				close(at->link_fd[d]);
		*at = dp->att[--dp->natt];
		return 0;
	}
	for (int d = 0; d < 2; d++) {
		err = link_path(path, dp, ifkey, d);
		if (err)
			return err;
		if (!unlink(path))
			found++;
		else if (errno != ENOENT)
			return log_err(-errno, "unpin link %s", path);
	}
	return found ? 0 :
		       log_err(-ENOENT, "ifkey %u is not attached (no links under %s/links)", ifkey,
			       dp->pin_dir);
}

void seg_dp_att_close_all(struct seg_dp *dp)
{
	for (size_t i = 0; i < dp->natt; i++)
		for (int d = 0; d < 2; d++)
			if (dp->att[i].link_fd[d] >= 0)
				close(dp->att[i].link_fd[d]);
	free(dp->att);
	dp->att = NULL;
	dp->natt = 0;
}

/* ---- refresh pinned links after a reload --------------------------------- */

struct pinned_link {
	__u32 ifkey;
	int dir;
};

static int pinned_link_cmp(const void *a, const void *b)
{
	const struct pinned_link *x = a, *y = b;

	return x->ifkey < y->ifkey ? -1 : x->ifkey > y->ifkey;
}

/* Lists <pin_dir>/links/<ifkey>-{from,to}, sorted by ifkey. */
static int pinned_links_list(const struct seg_dp *dp, struct pinned_link **out, size_t *n)
{
	char path[PATH_MAX];
	struct pinned_link *v = NULL, *nv;
	struct dirent *de;
	size_t cnt = 0;
	DIR *d;
	int err;

	*out = NULL;
	*n = 0;
	err = seg_dp_path(path, dp->pin_dir, "links", NULL);
	if (err)
		return err;
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : log_err(-errno, "open %s", path);
	while ((de = readdir(d))) {
		char *end;
		unsigned long k = strtoul(de->d_name, &end, 10);
		int dir = !strcmp(end, "-from") ? SEG_LINK_FROM :
			  !strcmp(end, "-to")	? SEG_LINK_TO :
						  -1;

		if (end == de->d_name || dir < 0 || k > 0xffffffffUL)
			continue;
		nv = realloc(v, (cnt + 1) * sizeof(*v));
		if (!nv) {
			err = log_err(-ENOMEM, "list %s", path);
			break;
		}
		v = nv;
		v[cnt++] = (struct pinned_link){ (__u32)k, dir };
	}
	closedir(d);
	if (err) {
		free(v);
		return err;
	}
	if (cnt)
		qsort(v, cnt, sizeof(*v), pinned_link_cmp);
	*out = v;
	*n = cnt;
	return 0;
}

/* Same code (tag) as ref_fd, and every shared map it uses is one of dp's:
 * an in-netns instance that a reload would only replace by its twin. */
static bool prog_current(const struct seg_dp *dp, __u32 prog_id, int ref_fd)
{
	struct bpf_prog_info pi = { 0 }, ri = { 0 };
	__u32 ids[SEG_DP_MAPS_MAX], len = sizeof(pi), rlen = sizeof(ri);
	bool ok = false;
	int fd;

	fd = bpf_prog_get_fd_by_id(prog_id);
	if (fd < 0)
		return false;
	pi.nr_map_ids = SEG_DP_MAPS_MAX;
	pi.map_ids = (__u64)(unsigned long)ids;
	if (bpf_obj_get_info_by_fd(fd, &pi, &len) || bpf_obj_get_info_by_fd(ref_fd, &ri, &rlen) ||
	    memcmp(pi.tag, ri.tag, sizeof(pi.tag)) || pi.nr_map_ids > SEG_DP_MAPS_MAX)
		goto out;
	for (__u32 i = 0; i < pi.nr_map_ids; i++) {
		struct bpf_map_info mi = { 0 };
		__u32 mlen = sizeof(mi);
		bool ours = false;
		int mfd;

		for (int j = 0; j < dp->nmaps && !ours; j++)
			ours = dp->maps[j].id == ids[i];
		if (ours)
			continue;
		mfd = bpf_map_get_fd_by_id(ids[i]);
		if (mfd < 0)
			goto out;
		ours = !bpf_obj_get_info_by_fd(mfd, &mi, &mlen) && strchr(mi.name, '.');
		close(mfd);
		if (!ours) /* an old shared map: the instance must be replaced */
			goto out;
	}
	ok = true;
out:
	close(fd);
	return ok;
}

static enum seg_prog link_prog(int dir, const struct link_info *li)
{
	if (dir == SEG_LINK_TO)
		return SEG_PROG_TC_TO_POD;
	return li->type == BPF_LINK_TYPE_XDP ? SEG_PROG_XDP_FROM_POD : SEG_PROG_TC_FROM_POD;
}

/* Per in-netns ifkey: its reloaded instance, loaded on first need. */
struct refresh {
	__u32 ifkey;
	struct seg_bpf *inst;
	bool failed;
};

static int refresh_inst_fd(struct seg_dp *dp, struct refresh *r, enum seg_prog prog)
{
	if (!r->inst && !r->failed) {
		if (seg_dp_instance_open(dp, r->ifkey, &r->inst) ||
		    bpf_program__set_autoload(r->inst->progs.seg_xdp_from_pod, false) ||
		    seg_bpf__load(r->inst)) {
			log_warn("ifkey %#x keeps its old program (instance load failed)",
				 r->ifkey);
			seg_bpf__destroy(r->inst);
			r->inst = NULL;
			r->failed = true;
		}
	}
	if (!r->inst)
		return -1;
	return prog == SEG_PROG_TC_TO_POD ? bpf_program__fd(r->inst->progs.seg_tc_to_pod) :
					    bpf_program__fd(r->inst->progs.seg_tc_from_pod);
}

/* Moves one pinned link onto the matching new program. A link whose
 * interface is gone is unpinned. Failures are logged, not fatal. */
static void link_refresh(struct seg_dp *dp, const struct pinned_link *pl, struct refresh *r)
{
	char path[PATH_MAX];
	struct link_info li;
	enum seg_prog prog;
	int fd, pfd;

	if (link_path(path, dp, pl->ifkey, pl->dir))
		return;
	fd = bpf_obj_get(path);
	if (fd < 0) {
		log_warn_err(-errno, "open pinned link %s", path);
		return;
	}
	if (link_info_get(fd, &li)) {
		log_warn_err(-errno, "link info of %s", path);
		goto out;
	}
	if (!li.ifindex) {
		log_info("%s: its interface is gone; unpinning it", path);
		unlink(path);
		goto out;
	}
	prog = link_prog(pl->dir, &li);
	if (!(pl->ifkey & SEG_IFKEY_NETNS)) {
		pfd = dp->prog_fd[prog];
	} else if (prog_current(dp, li.prog_id, dp->prog_fd[prog])) {
		log_debug("%s: program unchanged, kept", path);
		goto out;
	} else {
		pfd = refresh_inst_fd(dp, r, prog);
		if (pfd < 0)
			goto out;
	}
	if (bpf_link_update(fd, pfd, NULL))
		log_warn_err(-errno, "move %s to the new program %s", path, seg_dp_prog_name(prog));
out:
	close(fd);
}

int seg_dp_links_refresh(struct seg_dp *dp)
{
	struct refresh r = { 0 };
	struct pinned_link *v;
	size_t n;
	int err;

	err = pinned_links_list(dp, &v, &n);
	if (err)
		return err;
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || v[i].ifkey != r.ifkey) { /* sorted: one ifkey at a time */
			seg_bpf__destroy(r.inst);
			r = (struct refresh){ .ifkey = v[i].ifkey };
		}
		link_refresh(dp, &v[i], &r);
	}
	seg_bpf__destroy(r.inst);
	free(v);
	return 0;
}
