// SPDX-License-Identifier: GPL-2.0-only
/*
 * lib/dp against the real kernel (root): pins, reuse, refusal of an
 * incompatible pin, open_existing, attach/detach on a host veth and inside
 * a pod netns, unpin_all. Everything it creates is named hd-<pid>-*
 * (netns) or lives under /sys/fs/bpf/hd-<pid>-* and is removed in the
 * teardowns, also when a test fails.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include "dp/dp.h"
#include "log.h"
#include "sh.h"
#include "testpkt.h"

#define LINK_TYPE_XDP 6
#define LINK_TYPE_TCX 11

struct fix {
	char pin[256];
	char ns_node[64], ns_pod[64];
	char ns_node_path[128], ns_pod_path[128];
	struct seg_dp_opts opts;
};

static void fix_cleanup(struct fix *f)
{
	seg_dp_unpin_all(f->pin);
	tsh("ip netns del %s 2>/dev/null", f->ns_pod);
	tsh("ip netns del %s 2>/dev/null", f->ns_node);
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	static int n;

	if (!f)
		return -1;
	n++;
	snprintf(f->pin, sizeof(f->pin), "/sys/fs/bpf/hd-%d-%d", (int)getpid(), n);
	snprintf(f->ns_node, sizeof(f->ns_node), "hd-%d-%d-node", (int)getpid(), n);
	snprintf(f->ns_pod, sizeof(f->ns_pod), "hd-%d-%d-pod", (int)getpid(), n);
	snprintf(f->ns_node_path, sizeof(f->ns_node_path), "/run/netns/%s", f->ns_node);
	snprintf(f->ns_pod_path, sizeof(f->ns_pod_path), "/run/netns/%s", f->ns_pod);
	/* Small maps: the tests run in parallel with others. */
	f->opts = (struct seg_dp_opts){ .pin_dir = f->pin,
					.max_endpoints = 64,
					.max_ipcache = 256,
					.max_ipcache_lpm = 64,
					.max_policy = 1024,
					.max_ct = 1024,
					.max_rules = 128 };
	fix_cleanup(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	fix_cleanup(f);
	free(f);
	return 0;
}

/* node netns with veth hdh0 <-> hdp0; pod netns holding eth0, whose peer
 * hdh1 is in the node netns. */
static void make_netns(struct fix *f)
{
	assert_int_equal(tsh("ip netns add %s", f->ns_node), 0);
	assert_int_equal(tsh("ip netns add %s", f->ns_pod), 0);
	assert_int_equal(tsh("ip -n %s link add hdh0 type veth peer name hdp0", f->ns_node), 0);
	assert_int_equal(tsh("ip -n %s link add hdh1 type veth peer name eth0 netns %s", f->ns_node,
			     f->ns_pod),
			 0);
	assert_int_equal(tsh("ip -n %s link set hdh0 up && ip -n %s link set hdp0 up", f->ns_node,
			     f->ns_node),
			 0);
}

static __u32 map_id(int fd)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);

	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	return info.id;
}

static __u32 prog_id(int fd)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);

	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	return info.id;
}

/* Link info layout of >= 6.6 (tcx is missing from the 6.1 UAPI header). */
struct link_info {
	__u32 type, id, prog_id, _pad;
	__u32 ifindex, attach_type;
	__u64 _more[4];
};

static int pinned_link(const struct fix *f, __u32 ifkey, const char *dir, struct link_info *li)
{
	char path[PATH_MAX];
	__u32 len = sizeof(*li);
	int fd;

	snprintf(path, sizeof(path), "%s/links/%u-%s", f->pin, ifkey, dir);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	memset(li, 0, sizeof(*li));
	assert_int_equal(bpf_obj_get_info_by_fd(fd, li, &len), 0);
	close(fd);
	return 0;
}

/* A link id stays valid while something holds the link; release is
 * asynchronous, so wait a little. */
static bool link_gone(__u32 id)
{
	for (int i = 0; i < 200; i++) {
		int fd = bpf_link_get_fd_by_id(id);

		if (fd < 0 && errno == ENOENT)
			return true;
		if (fd >= 0)
			close(fd);
		usleep(10000);
	}
	return false;
}

static bool exists(const char *dir, const char *a, const char *b)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), b ? "%s/%s/%s" : "%s/%s", dir, a, b);
	return access(path, F_OK) == 0;
}

static int ifindex_in(const char *nspath, const char *ifname)
{
	int self = open("/proc/thread-self/ns/net", O_RDONLY);
	int ns = open(nspath, O_RDONLY), idx;

	assert_true(self >= 0 && ns >= 0);
	assert_int_equal(setns(ns, CLONE_NEWNET), 0);
	idx = (int)if_nametoindex(ifname);
	assert_int_equal(setns(self, CLONE_NEWNET), 0);
	close(ns);
	close(self);
	return idx;
}

static ino_t own_netns(void)
{
	struct stat st;

	assert_int_equal(stat("/proc/thread-self/ns/net", &st), 0);
	return st.st_ino;
}

static int ev_ifkey_cb(const struct seg_flow_event *ev, void *ctx)
{
	*(__u32 *)ctx = ev->ifkey;
	return 0;
}

/* Runs a UDP packet through prog_fd (no endpoint: a DENY event) and
 * returns the ifkey the program reported. */
static __u32 event_ifkey(struct seg_dp *dp, int prog_fd)
{
	__u8 pkt[TP_BUF_SIZE];
	struct tp_spec s = { .src = "10.9.0.1",
			     .dst = "10.9.0.2",
			     .proto = IPPROTO_UDP,
			     .sport = 5000,
			     .dport = 53 };
	int len = tp_build(pkt, sizeof(pkt), &s);
	LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = pkt, .data_size_in = (__u32)len);
	struct seg_dp_events *evs = NULL;
	__u32 ifkey = 0;

	assert_true(len > 0);
	assert_int_equal(seg_dp_config_set(dp, &(struct seg_config){ 0 }), 0);
	assert_int_equal(seg_dp_events_open(dp, ev_ifkey_cb, &ifkey, &evs), 0);
	assert_int_equal(bpf_prog_test_run_opts(prog_fd, &run), 0);
	assert_int_equal(run.retval, TC_ACT_SHOT);
	assert_int_equal(seg_dp_events_poll(evs, 100), 1);
	seg_dp_events_close(evs);
	return ifkey;
}

/* A run that crashed (ASan abort) skipped its teardowns: remove the
 * hd-<pid>-* pins and netns of test processes that no longer exist. */
static void reap_stale(void)
{
	const char *dirs[] = { "/sys/fs/bpf", "/run/netns" };

	for (int i = 0; i < 2; i++) {
		struct dirent *de;
		DIR *d = opendir(dirs[i]);

		while (d && (de = readdir(d))) {
			char path[PATH_MAX];
			int pid;

			if (sscanf(de->d_name, "hd-%d-", &pid) != 1 || pid <= 0 || !kill(pid, 0) ||
			    errno != ESRCH)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dirs[i], de->d_name);
			if (i == 0)
				seg_dp_unpin_all(path);
			else
				tsh("ip netns del %s 2>/dev/null", de->d_name);
		}
		if (d)
			closedir(d);
	}
}

/* ---- tests ------------------------------------------------------------- */

static void test_private_instance(void **state)
{
	struct seg_dp_opts o = ((struct fix *)*state)->opts;
	struct seg_endpoint ep = { .ep_id = 3, .identity = 300, .revision = 1 }, got;
	struct seg_dp *dp = NULL;

	o.pin_dir = NULL;
	assert_int_equal(seg_dp_open(&dp, &o), 0);
	assert_non_null(dp);
	assert_null(seg_dp_pin_dir(dp));
	assert_true(seg_dp_prog_fd(dp, SEG_PROG_TC_TO_POD) >= 0);
	assert_int_equal(seg_dp_endpoint_set(dp, 5, &ep), 0);
	assert_int_equal(seg_dp_endpoint_get(dp, 5, &got), 0);
	assert_memory_equal(&ep, &got, sizeof(ep));
	assert_int_equal(seg_dp_endpoint_get(dp, 6, &got), -ENOENT);
	seg_dp_close(dp);
}

static void test_open_pins_and_reuse(void **state)
{
	struct fix *f = *state;
	struct seg_endpoint ep = { .ep_id = 9, .identity = 1234, .revision = 7 }, got;
	struct seg_config cfg = { .flags = SEG_CFG_ALLOW_HOST, .evt_rate = 5 }, gcfg;
	const char *maps[] = { SEG_MAP_ENDPOINTS, SEG_MAP_IPCACHE, SEG_MAP_IPCACHE_LPM,
			       SEG_MAP_POLICY,	  SEG_MAP_CT,	   SEG_MAP_FRAG,
			       SEG_MAP_EVENTS,	  SEG_MAP_REASONS, SEG_MAP_RULES,
			       SEG_MAP_EVT_RL,	  SEG_MAP_CONFIG };
	struct seg_dp *dp = NULL;
	__u32 ids[11], used, max;
	char rodata[64];

	assert_int_equal(seg_dp_open(&dp, &f->opts), 0);
	assert_string_equal(seg_dp_pin_dir(dp), f->pin);
	for (size_t i = 0; i < 11; i++) {
		assert_true(exists(f->pin, maps[i], NULL));
		ids[i] = map_id(seg_dp_map_fd(dp, maps[i]));
	}
	/* Per-instance maps are not pinned. */
	snprintf(rodata, sizeof(rodata), "%s", "seg_bpf.rodata");
	assert_false(exists(f->pin, rodata, NULL));
	assert_true(exists(f->pin, "progs", "seg_tc_to_pod"));
	assert_true(exists(f->pin, "progs", "seg_tc_from_pod"));
	assert_true(exists(f->pin, "progs", "seg_xdp_from_pod"));

	assert_int_equal(seg_dp_map_fill(dp, SEG_MAP_ENDPOINTS, &used, &max), 0);
	assert_int_equal(used, 0);
	assert_int_equal(max, 64);
	assert_int_equal(seg_dp_endpoint_set(dp, 42, &ep), 0);
	assert_int_equal(seg_dp_config_set(dp, &cfg), 0);
	seg_dp_close(dp);
	dp = NULL;

	/* Reopen: same maps (ids), same contents; new programs. */
	assert_int_equal(seg_dp_open(&dp, &f->opts), 0);
	for (size_t i = 0; i < 11; i++)
		assert_int_equal(map_id(seg_dp_map_fd(dp, maps[i])), ids[i]);
	assert_int_equal(seg_dp_endpoint_get(dp, 42, &got), 0);
	assert_memory_equal(&ep, &got, sizeof(ep));
	assert_int_equal(seg_dp_config_get(dp, &gcfg), 0);
	assert_memory_equal(&cfg, &gcfg, sizeof(cfg));
	assert_int_equal(seg_dp_map_fill(dp, SEG_MAP_ENDPOINTS, &used, &max), 0);
	assert_int_equal(used, 1);
	seg_dp_close(dp);
}

static int count_ep(__u32 ifkey, const struct seg_endpoint *ep, void *ctx)
{
	(*(int *)ctx)++;
	return 0;
}

static void test_incompatible_refused(void **state)
{
	struct fix *f = *state;
	struct seg_dp_opts o = f->opts;
	struct seg_dp *dp = NULL;
	int cnt = 0;

	assert_int_equal(seg_dp_open(&dp, &f->opts), 0);
	assert_int_equal(seg_dp_endpoint_set(dp, 1, &(struct seg_endpoint){ .ep_id = 1 }), 0);
	seg_dp_close(dp);
	dp = NULL;

	o.max_policy = 2048;
	assert_int_equal(seg_dp_open(&dp, &o), -EEXIST);
	assert_null(dp);

	/* The refused open changed nothing: the old state is still there. */
	assert_int_equal(seg_dp_open(&dp, &f->opts), 0);
	assert_int_equal(seg_dp_endpoint_foreach(dp, count_ep, &cnt), 0);
	assert_int_equal(cnt, 1);
	seg_dp_close(dp);
}

static void test_open_existing(void **state)
{
	struct fix *f = *state;
	struct seg_dp_opts ex = { .pin_dir = f->pin, .open_existing = true };
	struct seg_dp *dp = NULL, *rd = NULL;
	struct seg_endpoint got;
	struct link_info li;
	__u32 pid, mid, ifkey = 0;

	/* Nothing pinned yet: refused, nothing created. */
	assert_true(seg_dp_open(&rd, &ex) < 0);
	assert_null(rd);
	assert_false(exists(f->pin, SEG_MAP_POLICY, NULL));

	assert_int_equal(seg_dp_open(&dp, &f->opts), 0);
	pid = prog_id(seg_dp_prog_fd(dp, SEG_PROG_TC_FROM_POD));
	mid = map_id(seg_dp_map_fd(dp, SEG_MAP_ENDPOINTS));

	assert_int_equal(seg_dp_open(&rd, &ex), 0);
	/* The very programs and maps of the loader: nothing was loaded. */
	assert_int_equal(prog_id(seg_dp_prog_fd(rd, SEG_PROG_TC_FROM_POD)), pid);
	assert_int_equal(map_id(seg_dp_map_fd(rd, SEG_MAP_ENDPOINTS)), mid);
	/* Writes through one are seen through the other. */
	assert_int_equal(seg_dp_endpoint_set(dp, 77, &(struct seg_endpoint){ .ep_id = 77 }), 0);
	assert_int_equal(seg_dp_endpoint_get(rd, 77, &got), 0);
	assert_int_equal(got.ep_id, 77);
	seg_dp_close(dp);

	/* A short-lived user of the pins (CNI plugin) attaches with the
	 * pinned programs; the links outlive it. */
	make_netns(f);
	assert_int_equal(seg_dp_attach(rd,
				       &(struct seg_dp_attach){ .ifname = "hdh0",
								.netns = f->ns_node_path,
								.mode = SEG_ATTACH_VETH },
				       &ifkey),
			 0);
	seg_dp_close(rd);
	assert_int_equal(pinned_link(f, ifkey, "from", &li), 0);
	assert_int_equal(li.prog_id, pid);
}

static void test_attach_veth(void **state)
{
	struct fix *f = *state;
	struct seg_dp *dp = NULL;
	struct link_info from, to, from2, to2;
	ino_t ns_before = own_netns();
	__u32 ifkey = 0, idx;

	make_netns(f);
	idx = (__u32)ifindex_in(f->ns_node_path, "hdh0");
	assert_true(idx > 0);
	assert_int_equal(seg_dp_open(&dp, &f->opts), 0);
	assert_int_equal(seg_dp_attach(dp,
				       &(struct seg_dp_attach){ .ifname = "hdh0",
								.netns = f->ns_node_path,
								.mode = SEG_ATTACH_VETH },
				       &ifkey),
			 0);
	assert_int_equal(own_netns(), ns_before);
	assert_int_equal(ifkey, idx);
	assert_int_equal(pinned_link(f, ifkey, "from", &from), 0);
	assert_int_equal(pinned_link(f, ifkey, "to", &to), 0);
	assert_int_equal(from.type, LINK_TYPE_TCX);
	assert_int_equal(from.ifindex, idx);
	assert_int_equal(from.attach_type, 46); /* BPF_TCX_INGRESS */
	assert_int_equal(from.prog_id, prog_id(seg_dp_prog_fd(dp, SEG_PROG_TC_FROM_POD)));
	assert_int_equal(to.type, LINK_TYPE_TCX);
	assert_int_equal(to.attach_type, 47); /* BPF_TCX_EGRESS */
	assert_int_equal(to.prog_id, prog_id(seg_dp_prog_fd(dp, SEG_PROG_TC_TO_POD)));

	/* Re-attach, same mode: the same links, updated in place. */
	assert_int_equal(seg_dp_attach(dp,
				       &(struct seg_dp_attach){ .ifname = "hdh0",
								.netns = f->ns_node_path,
								.mode = SEG_ATTACH_VETH },
				       NULL),
			 0);
	assert_int_equal(pinned_link(f, ifkey, "from", &from2), 0);
	assert_int_equal(from2.id, from.id);

	/* Re-attach as OVS: from becomes XDP (a new link, old one gone). */
	assert_int_equal(seg_dp_attach(dp,
				       &(struct seg_dp_attach){ .ifindex = (int)idx,
								.netns = f->ns_node_path,
								.mode = SEG_ATTACH_OVS },
				       NULL),
			 0);
	assert_int_equal(pinned_link(f, ifkey, "from", &from2), 0);
	assert_int_equal(from2.type, LINK_TYPE_XDP);
	assert_int_equal(from2.ifindex, idx);
	assert_int_equal(from2.prog_id, prog_id(seg_dp_prog_fd(dp, SEG_PROG_XDP_FROM_POD)));
	assert_true(link_gone(from.id));
	assert_int_equal(pinned_link(f, ifkey, "to", &to2), 0);
	assert_int_equal(to2.id, to.id);

	/* A reload (restart) moves the pinned links onto the new programs. */
	seg_dp_close(dp);
	dp = NULL;
	assert_int_equal(seg_dp_open(&dp, &f->opts), 0);
	assert_int_equal(pinned_link(f, ifkey, "to", &to2), 0);
	assert_int_equal(to2.id, to.id);
	assert_int_equal(to2.prog_id, prog_id(seg_dp_prog_fd(dp, SEG_PROG_TC_TO_POD)));
	assert_int_not_equal(to2.prog_id, to.prog_id);

	/* Detach: pins gone, links released. */
	assert_int_equal(seg_dp_detach(dp, ifkey), 0);
	assert_int_equal(pinned_link(f, ifkey, "from", &from), -ENOENT);
	assert_int_equal(pinned_link(f, ifkey, "to", &to2), -ENOENT);
	assert_true(link_gone(from2.id));
	assert_true(link_gone(to.id));
	assert_int_equal(seg_dp_detach(dp, ifkey), -ENOENT);
	seg_dp_close(dp);
}

static void test_attach_pod(void **state)
{
	struct fix *f = *state;
	struct seg_dp *dp = NULL;
	struct link_info from, to, from2;
	ino_t ns_before = own_netns();
	__u32 ifkey = 0, map_ids[16], nmaps = 16, ep_map;
	struct bpf_prog_info pi = { 0 };
	__u32 len = sizeof(pi);
	bool shared = false;
	int idx, pfd;

	make_netns(f);
	idx = ifindex_in(f->ns_pod_path, "eth0");
	assert_true(idx > 0);
	assert_int_equal(seg_dp_open(&dp, &f->opts), 0);
	/* ep_id 0 or with the netns bit is refused. */
	assert_int_equal(seg_dp_attach(dp,
				       &(struct seg_dp_attach){ .ifname = "eth0",
								.netns = f->ns_pod_path,
								.mode = SEG_ATTACH_POD },
				       NULL),
			 -EINVAL);
	assert_int_equal(seg_dp_attach(dp,
				       &(struct seg_dp_attach){ .ifname = "eth0",
								.netns = f->ns_pod_path,
								.mode = SEG_ATTACH_POD,
								.ep_id = 7 },
				       &ifkey),
			 0);
	assert_int_equal(own_netns(), ns_before);
	assert_int_equal(ifkey, SEG_IFKEY_NETNS | 7);
	assert_int_equal(pinned_link(f, ifkey, "from", &from), 0);
	assert_int_equal(pinned_link(f, ifkey, "to", &to), 0);
	assert_int_equal(from.type, LINK_TYPE_TCX);
	assert_int_equal(from.ifindex, (__u32)idx);
	assert_int_equal(from.attach_type, 47); /* egress = from the pod */
	assert_int_equal(to.attach_type, 46);
	/* Its own program instance, sharing dp's maps. */
	assert_int_not_equal(from.prog_id, prog_id(seg_dp_prog_fd(dp, SEG_PROG_TC_FROM_POD)));
	pfd = bpf_prog_get_fd_by_id(from.prog_id);
	assert_true(pfd >= 0);
	pi.nr_map_ids = nmaps;
	pi.map_ids = (__u64)(unsigned long)map_ids;
	assert_int_equal(bpf_obj_get_info_by_fd(pfd, &pi, &len), 0);
	/* The instance reports its ifkey (seg_cfg_ifkey), the main one the
	 * ifindex, through the shared ring buffer. */
	assert_int_equal(event_ifkey(dp, pfd), SEG_IFKEY_NETNS | 7);
	assert_int_not_equal(event_ifkey(dp, seg_dp_prog_fd(dp, SEG_PROG_TC_FROM_POD)),
			     SEG_IFKEY_NETNS | 7);
	close(pfd);
	/* Every map the instance uses is one of dp's, except its own
	 * internal ones (.rodata holding seg_cfg_ifkey). */
	for (__u32 i = 0; i < pi.nr_map_ids && i < nmaps; i++) {
		struct bpf_map_info mi = { 0 };
		__u32 mlen = sizeof(mi);
		int mfd = bpf_map_get_fd_by_id(map_ids[i]);

		assert_true(mfd >= 0);
		assert_int_equal(bpf_obj_get_info_by_fd(mfd, &mi, &mlen), 0);
		close(mfd);
		if (strchr(mi.name, '.'))
			continue;
		assert_int_equal(mi.id, map_id(seg_dp_map_fd(dp, mi.name)));
		shared = true;
	}
	ep_map = map_id(seg_dp_map_fd(dp, SEG_MAP_ENDPOINTS));
	assert_true(ep_map > 0);
	assert_true(shared);

	/* Re-attach: in-netns links are made anew, the old ones dropped. */
	assert_int_equal(seg_dp_attach(dp,
				       &(struct seg_dp_attach){ .ifname = "eth0",
								.netns = f->ns_pod_path,
								.mode = SEG_ATTACH_POD,
								.ep_id = 7 },
				       NULL),
			 0);
	assert_int_equal(pinned_link(f, ifkey, "from", &from2), 0);
	assert_int_not_equal(from2.id, from.id);
	assert_int_equal(from2.ifindex, (__u32)idx);
	assert_true(link_gone(from.id));
	from = from2;
	assert_int_equal(pinned_link(f, ifkey, "to", &to), 0);

	/* A missing interface fails and leaves our netns intact. */
	assert_int_equal(seg_dp_attach(dp,
				       &(struct seg_dp_attach){ .ifname = "nosuch0",
								.netns = f->ns_pod_path,
								.mode = SEG_ATTACH_POD,
								.ep_id = 8 },
				       NULL),
			 -ENODEV);
	assert_int_equal(own_netns(), ns_before);
	/* A missing netns too. */
	assert_int_equal(seg_dp_attach(dp,
				       &(struct seg_dp_attach){ .ifname = "eth0",
								.netns = "/run/netns/hd-none",
								.mode = SEG_ATTACH_POD,
								.ep_id = 8 },
				       NULL),
			 -ENOENT);

	/* A reload keeps an in-netns instance whose code and maps are
	 * unchanged (no per-pod reload on restart). */
	seg_dp_close(dp);
	dp = NULL;
	assert_int_equal(seg_dp_open(&dp, &f->opts), 0);
	assert_int_equal(pinned_link(f, ifkey, "from", &from2), 0);
	assert_int_equal(from2.id, from.id);
	assert_int_equal(from2.prog_id, from.prog_id);
	pfd = bpf_prog_get_fd_by_id(from2.prog_id);
	assert_true(pfd >= 0);
	assert_int_equal(event_ifkey(dp, pfd), SEG_IFKEY_NETNS | 7);
	close(pfd);

	assert_int_equal(seg_dp_detach(dp, ifkey), 0);
	assert_int_equal(pinned_link(f, ifkey, "from", &from), -ENOENT);
	assert_true(link_gone(to.id));
	seg_dp_close(dp);
}

static void test_private_attach(void **state)
{
	struct fix *f = *state;
	struct seg_dp_opts o = f->opts;
	struct seg_dp *dp = NULL;
	__u32 ifkey = 0;

	make_netns(f);
	o.pin_dir = NULL;
	assert_int_equal(seg_dp_open(&dp, &o), 0);
	assert_int_equal(seg_dp_attach(dp,
				       &(struct seg_dp_attach){ .ifname = "hdh0",
								.netns = f->ns_node_path,
								.mode = SEG_ATTACH_VETH },
				       &ifkey),
			 0);
	assert_int_equal(ifkey, (__u32)ifindex_in(f->ns_node_path, "hdh0"));
	assert_int_equal(seg_dp_detach(dp, ifkey), 0);
	assert_int_equal(seg_dp_detach(dp, ifkey), -ENOENT);
	/* Closing with links still held detaches them (no leak under ASan). */
	assert_int_equal(seg_dp_attach(dp,
				       &(struct seg_dp_attach){ .ifname = "hdh0",
								.netns = f->ns_node_path,
								.mode = SEG_ATTACH_VETH },
				       NULL),
			 0);
	seg_dp_close(dp);
}

struct ev_log {
	struct seg_flow_event ev[16];
	int n;
};

static int ev_log_cb(const struct seg_flow_event *ev, void *ctx)
{
	struct ev_log *l = ctx;

	if (l->n < 16)
		l->ev[l->n++] = *ev;
	return 0;
}

/* One UDP datagram from inside nspath to dst:dport, source port sport. */
static void send_udp(const char *nspath, const char *dst, __u16 sport, __u16 dport)
{
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_port = htons(sport) };
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(dport) };
	int self = open("/proc/thread-self/ns/net", O_RDONLY);
	int ns = open(nspath, O_RDONLY), fd;

	assert_true(self >= 0 && ns >= 0);
	assert_int_equal(inet_pton(AF_INET, dst, &to.sin_addr), 1);
	assert_int_equal(setns(ns, CLONE_NEWNET), 0);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd >= 0 && !bind(fd, (struct sockaddr *)&src, sizeof(src)))
		sendto(fd, "x", 1, 0, (struct sockaddr *)&to, sizeof(to));
	if (fd >= 0)
		close(fd);
	assert_int_equal(setns(self, CLONE_NEWNET), 0);
	close(ns);
	close(self);
}

static const struct seg_flow_event *ev_find(const struct ev_log *l, __u16 sport)
{
	for (int i = 0; i < l->n; i++)
		if (l->ev[i].proto == IPPROTO_UDP && l->ev[i].sport == sport)
			return &l->ev[i];
	return NULL;
}

/* Real packets over the attached host veth: without an endpoint they are
 * dropped (counted); with one, an event per new flow tells which hook saw
 * it: leaving the pod = EGRESS (tcx ingress of the host veth), towards
 * the pod = INGRESS (its tcx egress). */
static void test_traffic_directions(void **state)
{
	struct fix *f = *state;
	struct seg_endpoint ep = { .ep_id = 21, .identity = 600, .revision = 1 };
	struct seg_counter c0, c1;
	struct seg_dp_events *evs = NULL;
	struct ev_log log = { .n = 0 };
	const struct seg_flow_event *e;
	struct seg_dp *dp = NULL;
	__u32 ifkey = 0;

	make_netns(f);
	assert_int_equal(tsh("ip -n %s addr add 10.99.0.1/24 dev hdh1 && ip -n %s link set hdh1 up",
			     f->ns_node, f->ns_node),
			 0);
	assert_int_equal(tsh("ip -n %s addr add 10.99.0.2/24 dev eth0 && ip -n %s link set eth0 up"
			     " && ip -n %s link set lo up",
			     f->ns_pod, f->ns_pod, f->ns_pod),
			 0);
	assert_int_equal(seg_dp_open(&dp, &f->opts), 0);
	assert_int_equal(seg_dp_config_set(dp, &(struct seg_config){ 0 }), 0);
	assert_int_equal(seg_dp_attach(dp,
				       &(struct seg_dp_attach){ .ifname = "hdh1",
								.netns = f->ns_node_path,
								.mode = SEG_ATTACH_VETH },
				       &ifkey),
			 0);
	/* No endpoint: the pod's packets (ARP first) are dropped. */
	assert_int_equal(seg_dp_reason_get(dp, SEG_DROP_NO_ENDPOINT, &c0), 0);
	send_udp(f->ns_pod_path, "10.99.0.1", 7001, 9);
	usleep(200000);
	assert_int_equal(seg_dp_reason_get(dp, SEG_DROP_NO_ENDPOINT, &c1), 0);
	assert_true(c1.packets > c0.packets);

	assert_int_equal(seg_dp_endpoint_set(dp, ifkey, &ep), 0);
	assert_int_equal(seg_dp_events_open(dp, ev_log_cb, &log, &evs), 0);
	seg_dp_events_poll(evs, 0); /* drop the no-endpoint events */
	log.n = 0;
	send_udp(f->ns_pod_path, "10.99.0.1", 7002, 9);
	usleep(200000);
	send_udp(f->ns_node_path, "10.99.0.2", 7003, 9);
	for (int i = 0; i < 20 && (!ev_find(&log, 7002) || !ev_find(&log, 7003)); i++)
		seg_dp_events_poll(evs, 50);
	e = ev_find(&log, 7002);
	assert_non_null(e);
	assert_int_equal(e->dir, SEG_DIR_EGRESS);
	assert_int_equal(e->ifkey, ifkey);
	assert_int_equal(e->ep_id, 21);
	assert_int_equal(e->reason, SEG_R_ALLOW_NOT_ISOLATED);
	e = ev_find(&log, 7003);
	assert_non_null(e);
	assert_int_equal(e->dir, SEG_DIR_INGRESS);
	assert_int_equal(e->ifkey, ifkey);

	/* The same inside the pod (macvlan style): eth0's tcx egress is
	 * "from the pod", its ingress "to the pod", keyed by ep_id. */
	assert_int_equal(seg_dp_detach(dp, ifkey), 0);
	ep.ep_id = 22;
	assert_int_equal(seg_dp_endpoint_set(dp, SEG_IFKEY_NETNS | 22, &ep), 0);
	assert_int_equal(seg_dp_attach(dp,
				       &(struct seg_dp_attach){ .ifname = "eth0",
								.netns = f->ns_pod_path,
								.mode = SEG_ATTACH_POD,
								.ep_id = 22 },
				       &ifkey),
			 0);
	send_udp(f->ns_pod_path, "10.99.0.1", 7004, 9);
	send_udp(f->ns_node_path, "10.99.0.2", 7005, 9);
	for (int i = 0; i < 20 && (!ev_find(&log, 7004) || !ev_find(&log, 7005)); i++)
		seg_dp_events_poll(evs, 50);
	e = ev_find(&log, 7004);
	assert_non_null(e);
	assert_int_equal(e->dir, SEG_DIR_EGRESS);
	assert_int_equal(e->ifkey, SEG_IFKEY_NETNS | 22);
	assert_int_equal(e->ep_id, 22);
	e = ev_find(&log, 7005);
	assert_non_null(e);
	assert_int_equal(e->dir, SEG_DIR_INGRESS);
	assert_int_equal(e->ifkey, SEG_IFKEY_NETNS | 22);
	seg_dp_events_close(evs);
	seg_dp_close(dp);
}

static void test_unpin_all(void **state)
{
	struct fix *f = *state;
	struct seg_dp *dp = NULL;
	struct link_info from;
	__u32 ifkey = 0;

	make_netns(f);
	assert_int_equal(seg_dp_open(&dp, &f->opts), 0);
	assert_int_equal(seg_dp_attach(dp,
				       &(struct seg_dp_attach){ .ifname = "hdh0",
								.netns = f->ns_node_path,
								.mode = SEG_ATTACH_VETH },
				       &ifkey),
			 0);
	assert_int_equal(pinned_link(f, ifkey, "from", &from), 0);
	seg_dp_close(dp);

	assert_int_equal(seg_dp_unpin_all(f->pin), 0);
	assert_int_equal(access(f->pin, F_OK), -1);
	assert_true(link_gone(from.id));
	/* Idempotent; and never outside bpffs. */
	assert_int_equal(seg_dp_unpin_all(f->pin), 0);
	assert_int_equal(seg_dp_unpin_all("/tmp"), -ENOTSUP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_private_instance, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_pins_and_reuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incompatible_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_existing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_veth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_pod, setup, teardown),
		cmocka_unit_test_setup_teardown(test_private_attach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_traffic_directions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unpin_all, setup, teardown),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_dp: needs root (loads BPF, creates netns): skipped\n");
		return 77;
	}
	log_init("test_dp", LOG_LVL_WARN);
	reap_stale();
	return cmocka_run_group_tests_name("dp", tests, NULL, NULL);
}
