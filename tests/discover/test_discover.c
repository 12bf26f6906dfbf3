// SPDX-License-Identifier: GPL-2.0-only
/*
 * discover_scan and discover_watch against a node built by hnlab.sh with
 * the real CNI plugins (ptp renamed cali*, bridge, macvlan) and OVS on the
 * netdev datapath. What each pod should look like comes from hnlab's
 * records (the CNI results), not from netlink.
 *
 * Run by run.sh, which builds the lab and passes HN_ID and HN_LAB.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "discover.h"
#include "log.h"
#include "loop.h"
#include "ovsdb.h"

#define MAX_PODS 16

struct pod {
	char name[16], style[16], netns[DISC_PATH_LEN], host_if[IF_NAMESIZE];
	char iface_id[DISC_IFACE_ID_LEN];
	struct in6_addr addrs[DISC_MAX_ADDRS];
	size_t n_addrs;
};

struct lab {
	const char *id, *script;
	char run[64], node[64], ovsdb[128];
	struct pod pods[MAX_PODS];
	size_t n;
	const char *netns[MAX_PODS];
};

static int lab_sh(const struct lab *lab, const char *fmt, ...)
{
	char args[256], cmd[PATH_MAX + 300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "%s %s", lab->script, args);
	return system(cmd);
}

static void pod_parse_addrs(struct pod *p, char *list)
{
	for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ","))
		if (p->n_addrs < DISC_MAX_ADDRS && !seg_addr_parse(tok, &p->addrs[p->n_addrs]))
			p->n_addrs++;
}

static void copy(char *dst, size_t size, const char *src)
{
	size_t len = strnlen(src, size - 1);

	memcpy(dst, src, len);
	dst[len] = 0;
}

static int pod_load(struct pod *p, const char *dir, const char *name)
{
	char path[PATH_MAX], key[32], val[300];
	FILE *f;

	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fscanf(f, "%31s %299s", key, val) == 2) {
		if (!strcmp(key, "style"))
			copy(p->style, sizeof(p->style), val);
		else if (!strcmp(key, "netns"))
			copy(p->netns, sizeof(p->netns), val);
		else if (!strcmp(key, "host_if"))
			copy(p->host_if, sizeof(p->host_if), strcmp(val, "-") ? val : "");
		else if (!strcmp(key, "iface_id"))
			copy(p->iface_id, sizeof(p->iface_id), val);
		else if (!strcmp(key, "addrs"))
			pod_parse_addrs(p, val);
	}
	fclose(f);
	return 0;
}

/* (Re)reads every pod record of the lab. */
static void lab_load(struct lab *lab)
{
	char dir[128];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/pods", lab->run);
	d = opendir(dir);
	assert_non_null(d);
	lab->n = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || strchr(de->d_name, '.'))
			continue;
		assert_true(lab->n < MAX_PODS);
		assert_int_equal(pod_load(&lab->pods[lab->n], dir, de->d_name), 0);
		lab->netns[lab->n] = lab->pods[lab->n].netns;
		lab->n++;
	}
	closedir(d);
}

static const struct pod *lab_pod(const struct lab *lab, const char *name)
{
	for (size_t i = 0; i < lab->n; i++)
		if (!strcmp(lab->pods[i].name, name))
			return &lab->pods[i];
	return NULL;
}

static struct disc_opts lab_opts(const struct lab *lab, bool with_ovsdb)
{
	return (struct disc_opts){
		.node_netns = lab->node,
		.pod_netns = lab->netns,
		.n_pod_netns = lab->n,
		.ovsdb_sock = with_ovsdb ? lab->ovsdb : NULL,
	};
}

static const struct disc_iface *find_by_netns(const struct disc_result *r, const char *netns)
{
	const struct disc_iface *hit = NULL;

	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->ifs[i].netns, netns)) {
			assert_null(hit); /* one interface per pod */
			hit = &r->ifs[i];
		}
	return hit;
}

static enum disc_style style_of(const char *s)
{
	for (int i = DISC_UNKNOWN; i <= DISC_MACVLAN; i++)
		if (!strcmp(disc_style_str(i), s))
			return i;
	fail_msg("unknown style %s", s);
	return DISC_UNKNOWN;
}

static void assert_same_addrs(const struct pod *p, const struct disc_iface *d)
{
	char a[INET6_ADDRSTRLEN];

	assert_int_equal(d->n_addrs, p->n_addrs);
	for (size_t i = 0; i < p->n_addrs; i++) {
		bool found = false;

		for (size_t j = 0; j < d->n_addrs; j++)
			found |= !memcmp(&p->addrs[i], &d->addrs[j], sizeof(p->addrs[i]));
		if (!found)
			fail_msg("%s: address %s not discovered", p->name,
				 seg_addr_str(&p->addrs[i], a, sizeof(a)));
	}
}

/* The pod as hnlab recorded it; ovs_style is what an OVS pod must be. */
static void assert_pod(const struct pod *p, const struct disc_iface *d, enum disc_style ovs_style)
{
	static const uint8_t zero_mac[6];
	enum disc_style want = style_of(p->style);

	if (!d)
		fail_msg("pod %s (%s) not discovered", p->name, p->style);
	if (want == DISC_OVS)
		want = ovs_style;
	if (d->style != want)
		fail_msg("pod %s: style %s, want %s", p->name, disc_style_str(d->style),
			 disc_style_str(want));
	assert_string_equal(d->host_ifname, p->host_if);
	assert_int_equal(d->host_ifindex > 0, p->host_if[0] != 0);
	assert_string_equal(d->pod_ifname, "eth0");
	assert_true(d->pod_ifindex > 0);
	assert_memory_not_equal(d->mac, zero_mac, sizeof(zero_mac));
	assert_same_addrs(p, d);
	if (want == DISC_FLANNEL)
		assert_true(d->master[0] != 0);
	if (want == DISC_OVS) {
		char mac[18];

		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", d->mac[0], d->mac[1],
			 d->mac[2], d->mac[3], d->mac[4], d->mac[5]);
		assert_string_equal(d->iface_id, p->iface_id);
		assert_string_equal(d->attached_mac, mac);
	} else {
		assert_string_equal(d->iface_id, "");
	}
}

/* Every pod, and nothing else: not the bridge, the OVS taps, nor the
 * macvlan parent (a veth with both ends in the node). With o->netns_dir,
 * pods are expected under their names there, not in /run/netns. Frees r. */
static void check_result(struct lab *lab, const struct disc_opts *o, struct disc_result *r,
			 enum disc_style ovs_style)
{
	char path[DISC_PATH_LEN];

	assert_int_equal(r->n, lab->n);
	for (size_t i = 0; i < lab->n; i++) {
		const struct pod *p = &lab->pods[i];

		if (o->netns_dir)
			snprintf(path, sizeof(path), "%s/%s", o->netns_dir, p->name);
		assert_pod(p, find_by_netns(r, o->netns_dir ? path : p->netns), ovs_style);
	}
	discover_result_free(r);
}

static void scan_and_check(struct lab *lab, const struct disc_opts *o, enum disc_style ovs_style)
{
	struct disc_result r;

	assert_int_equal(discover_scan(o, &r), 0);
	check_result(lab, o, &r, ovs_style);
}

static void test_scan_all_styles(void **state)
{
	struct lab *lab = *state;
	struct disc_opts o = lab_opts(lab, true);

	assert_int_equal(lab->n, 4);
	scan_and_check(lab, &o, DISC_OVS);
}

/* Without OVSDB (none configured, or unreachable) an OVS port is not
 * guessed (it looks like any routeless veth): unknown, but with its pod
 * netns and addresses. */
static void test_scan_without_ovsdb(void **state)
{
	struct lab *lab = *state;
	struct disc_opts o = lab_opts(lab, false);

	scan_and_check(lab, &o, DISC_UNKNOWN);
	/* a configured but dead OVSDB: the scan still succeeds, same answer */
	o.ovsdb_sock = "/nonexistent/hn-db.sock";
	o.ovsdb_timeout_ms = 200;
	scan_and_check(lab, &o, DISC_UNKNOWN);
}

/* The default candidate list is a directory of netns files (/run/netns);
 * here a private one with links to the lab's pods. */
static void test_scan_netns_dir(void **state)
{
	struct lab *lab = *state;
	struct disc_opts o = lab_opts(lab, true);
	char dir[128], link[256];

	snprintf(dir, sizeof(dir), "%s/netns.XXXXXX", lab->run);
	assert_non_null(mkdtemp(dir));
	for (size_t i = 0; i < lab->n; i++) {
		snprintf(link, sizeof(link), "%s/%s", dir, lab->pods[i].name);
		assert_int_equal(symlink(lab->pods[i].netns, link), 0);
	}
	/* the node itself listed as a candidate must not confuse anything */
	snprintf(link, sizeof(link), "%s/node", dir);
	assert_int_equal(symlink(lab->node, link), 0);
	o.pod_netns = NULL;
	o.n_pod_netns = 0;
	o.netns_dir = dir;
	scan_and_check(lab, &o, DISC_OVS);
}

/* A pod whose netns is not among the candidates is still classified from
 * the node side (a routed pod even keeps its addresses, from the routes),
 * with no netns and no pod-side details. */
static void test_scan_unlisted_netns(void **state)
{
	struct lab *lab = *state;
	struct disc_opts o = lab_opts(lab, true);
	const struct pod *cal = lab_pod(lab, "cal-a"), *fl = lab_pod(lab, "fl-a");
	const char *only[] = { lab_pod(lab, "mv-a")->netns };
	struct disc_result r;
	size_t seen = 0;

	o.pod_netns = only;
	o.n_pod_netns = 1;
	assert_int_equal(discover_scan(&o, &r), 0);
	assert_int_equal(r.n, lab->n); /* the same interfaces */
	for (size_t i = 0; i < r.n; i++) {
		const struct disc_iface *d = &r.ifs[i];

		if (d->style == DISC_MACVLAN) {
			assert_string_equal(d->netns, only[0]);
			continue;
		}
		assert_string_equal(d->netns, "");
		assert_string_equal(d->pod_ifname, "");
		if (!strcmp(d->host_ifname, cal->host_if)) {
			assert_int_equal(d->style, DISC_CALICO);
			assert_same_addrs(cal, d); /* from the /32 and /128 routes */
			for (size_t j = 0; j < d->n_addrs; j++)
				assert_true(d->prefixlen[j] == 32 || d->prefixlen[j] == 128);
			seen++;
		} else if (!strcmp(d->host_ifname, fl->host_if)) {
			assert_int_equal(d->style, DISC_FLANNEL);
			assert_int_equal(d->n_addrs, 0);
			seen++;
		}
	}
	assert_int_equal(seen, 2);
	discover_result_free(&r);
}

/* node_netns NULL: the calling thread's netns is the node (segd run inside
 * it); the thread's netns is unchanged afterwards. */
static void test_scan_from_inside_node(void **state)
{
	struct lab *lab = *state;
	struct disc_opts o = lab_opts(lab, true);
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int node = open(lab->node, O_RDONLY | O_CLOEXEC);
	struct stat before = { 0 }, after = { 0 };
	struct disc_result r;
	int err;

	assert_true(self >= 0 && node >= 0);
	o.node_netns = NULL;
	/* no assertion while inside: a failure must not strand the thread */
	assert_int_equal(setns(node, CLONE_NEWNET), 0);
	stat("/proc/thread-self/ns/net", &before);
	err = discover_scan(&o, &r);
	stat("/proc/thread-self/ns/net", &after);
	assert_int_equal(setns(self, CLONE_NEWNET), 0);
	assert_int_equal(err, 0);
	assert_true(before.st_ino == after.st_ino);
	check_result(lab, &o, &r, DISC_OVS);
	close(node);
	close(self);
}

/* ---- watch ------------------------------------------------------------- */

struct seen {
	struct disc_watch *w;
	enum disc_event want;
	char want_name[IF_NAMESIZE]; /* NEW: this name (after a rename: CHANGE) */
	int want_ifindex; /* DEL: this ifindex */
	int got_ifindex;
	int events;
};

static int on_watch(struct loop *l, struct loop_src *src, uint32_t events, void *ctx)
{
	struct seen *s = ctx;
	int err = discover_watch_process(s->w);

	if (s->got_ifindex)
		loop_stop(l);
	return err;
}

static void on_link(void *ctx, enum disc_event ev, const struct disc_link *dl)
{
	struct seen *s = ctx;

	s->events++;
	/* a veth moved in from the pod netns; its peer's nsid and (cali*)
	 * its name come with later CHANGEs, so the caller rescans */
	if (s->want == DISC_EV_NEW && ev == DISC_EV_NEW && !strcmp(dl->kind, "veth"))
		s->got_ifindex = dl->ifindex;
	if (s->want == DISC_EV_DEL && ev == DISC_EV_DEL && dl->ifindex == s->want_ifindex)
		s->got_ifindex = dl->ifindex;
}

static int on_timeout(struct loop *l, struct loop_src *src, uint32_t n, void *ctx)
{
	loop_stop(l);
	return 0;
}

/* Runs the loop over the watch until the wanted event or 5 s. */
static void watch_wait(struct seen *s)
{
	struct loop_src *src = NULL, *timer = NULL;
	struct loop *l = NULL;

	assert_int_equal(loop_new(&l), 0);
	assert_int_equal(
		loop_add_fd(l, discover_watch_fd(s->w), EPOLLIN, "discover", on_watch, s, &src), 0);
	assert_int_equal(loop_add_timer(l, 5000, 0, "timeout", on_timeout, s, &timer), 0);
	if (!s->got_ifindex)
		assert_int_equal(loop_run(l), 0);
	loop_del(l, src);
	loop_del(l, timer);
	loop_free(l);
}

static void test_watch_new_and_deleted_pod(void **state)
{
	struct lab *lab = *state;
	struct seen s = { .want = DISC_EV_NEW };
	struct disc_opts o;
	struct disc_result r;
	const struct pod *p;
	const struct disc_iface *d;
	int ifindex;

	assert_int_equal(discover_watch_new(lab->node, on_link, &s, &s.w), 0);
	assert_true(discover_watch_fd(s.w) >= 0);
	/* nothing happened yet: processing returns at once */
	assert_int_equal(discover_watch_process(s.w), 0);
	assert_int_equal(s.got_ifindex, 0);

	assert_int_equal(lab_sh(lab, "pod %s calico cal-w", lab->id), 0);
	watch_wait(&s);
	assert_true(s.got_ifindex > 0);
	lab_load(lab);
	p = lab_pod(lab, "cal-w");
	assert_non_null(p);
	o = lab_opts(lab, true);
	assert_int_equal(discover_scan(&o, &r), 0);
	d = find_by_netns(&r, p->netns);
	assert_pod(p, d, DISC_OVS);
	assert_int_equal(d->host_ifindex, s.got_ifindex); /* the link the event named */
	ifindex = d->host_ifindex;
	discover_result_free(&r);

	s.want = DISC_EV_DEL;
	s.want_ifindex = ifindex;
	s.got_ifindex = 0;
	assert_int_equal(lab_sh(lab, "unpod %s cal-w", lab->id), 0);
	watch_wait(&s);
	assert_int_equal(s.got_ifindex, ifindex);
	lab_load(lab);
	o = lab_opts(lab, true);
	assert_int_equal(discover_scan(&o, &r), 0);
	assert_int_equal(r.n, lab->n); /* gone from the scan too */
	discover_result_free(&r);
	discover_watch_free(s.w);
}

/* ---- OVSDB client --------------------------------------------------------- */

/* A server that accepts and never answers: the client gives up in time. */
static void test_ovsdb_timeout(void **state)
{
	struct lab *lab = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ovsdb_iface *v = NULL;
	struct timespec t0, t1;
	size_t n = 99;
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/mute.sock", lab->run);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(ovsdb_list_ifaces(sa.sun_path, 300, &v, &n), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_null(v);
	assert_int_equal(n, 0);
	assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 2000);
	/* no server at all */
	assert_int_equal(ovsdb_list_ifaces("/nonexistent/hn.sock", 300, &v, &n), -ENOENT);
	close(fd);
	unlink(sa.sun_path);
}

/* A scripted server: accepts once, reads the request, writes each chunk
 * (a short pause between them, so the client sees partial messages). */
static pid_t fake_ovsdb(const char *path, const char *const *chunks)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0), c;
	char req[4096];
	pid_t pid;

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid) {
		close(fd);
		return pid;
	}
	c = accept(fd, NULL, NULL);
	if (c < 0 || read(c, req, sizeof(req)) <= 0 || !strstr(req, "\"transact\""))
		_exit(1);
	for (; *chunks; chunks++) {
		if (write(c, *chunks, strlen(*chunks)) < 0)
			_exit(1);
		usleep(20000);
	}
	usleep(100000);
	_exit(0);
}

static int fake_list(const char *path, const char *const *chunks, struct ovsdb_iface **v, size_t *n)
{
	pid_t pid = fake_ovsdb(path, chunks);
	int err = ovsdb_list_ifaces(path, 2000, v, n), status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	unlink(path);
	return err;
}

/* Messages before the reply (an echo probe, another id) are skipped; a
 * reply split across reads is reassembled; unset columns are handled. */
static void test_ovsdb_protocol(void **state)
{
	static const char *const good[] = {
		"{\"id\":\"echo\",\"method\":\"echo\",\"params\":[]}{\"id\":1,\"result\":[]}",
		"{\"id\":4711,\"result\":[{\"rows\":[{\"name\":\"p1\",\"external_ids\":[\"map\","
		"[[\"iface-id\",\"ns_pod\"],[\"attached-mac\",\"02:00:00:00:00:01\"]]],",
		"\"ofport\":3},{\"name\":\"p2\",\"external_ids\":[\"map\",[]],"
		"\"ofport\":[\"set\",[]]},{\"name\":\"a-name-too-long-for-linux\"}]}],\"error\":null}",
		NULL,
	};
	static const char *const failed[] = {
		"{\"id\":4711,\"result\":[{\"error\":\"syntax error\"}],\"error\":null}", NULL
	};
	static const char *const garbage[] = { "HTTP/1.0 400 nonsense\r\n\r\n", NULL };
	struct lab *lab = *state;
	struct ovsdb_iface *v = NULL;
	char path[128];
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/fake.sock", lab->run);
	assert_int_equal(fake_list(path, good, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].name, "p1");
	assert_string_equal(v[0].iface_id, "ns_pod");
	assert_string_equal(v[0].attached_mac, "02:00:00:00:00:01");
	assert_int_equal(v[0].ofport, 3);
	assert_string_equal(v[1].name, "p2");
	assert_string_equal(v[1].iface_id, "");
	assert_int_equal(v[1].ofport, -1);
	free(v);
	assert_int_equal(fake_list(path, failed, &v, &n), -EPROTO);
	assert_null(v);
	assert_int_equal(fake_list(path, garbage, &v, &n), -EPROTO);
	assert_null(v);
}

/* ...and a real one lists the OVS port with its external_ids. */
static void test_ovsdb_real(void **state)
{
	struct lab *lab = *state;
	const struct pod *p = lab_pod(lab, "ovs-a");
	struct ovsdb_iface *v = NULL;
	size_t n = 0;
	bool found = false;

	assert_non_null(p);
	assert_int_equal(ovsdb_list_ifaces(lab->ovsdb, 2000, &v, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].name, p->host_if)) {
			found = true;
			assert_string_equal(v[i].iface_id, p->iface_id);
			assert_true(v[i].ofport > 0);
		}
	assert_true(found);
	free(v);
}

static int lab_setup(void **state)
{
	static struct lab lab;

	lab.id = getenv("HN_ID");
	lab.script = getenv("HN_LAB");
	if (!lab.id || !lab.script) {
		fprintf(stderr, "HN_ID and HN_LAB must be set (run through run.sh)\n");
		return -1;
	}
	snprintf(lab.run, sizeof(lab.run), "/tmp/hn-%s", lab.id);
	snprintf(lab.node, sizeof(lab.node), "/run/netns/hn-%s-node", lab.id);
	snprintf(lab.ovsdb, sizeof(lab.ovsdb), "%s/ovs/db.sock", lab.run);
	lab_load(&lab);
	*state = &lab;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scan_all_styles),
		cmocka_unit_test(test_scan_without_ovsdb),
		cmocka_unit_test(test_scan_netns_dir),
		cmocka_unit_test(test_scan_unlisted_netns),
		cmocka_unit_test(test_scan_from_inside_node),
		cmocka_unit_test(test_watch_new_and_deleted_pod),
		cmocka_unit_test(test_ovsdb_timeout),
		cmocka_unit_test(test_ovsdb_protocol),
		cmocka_unit_test(test_ovsdb_real),
	};

	log_init("test_discover", LOG_LVL_WARN);
	return cmocka_run_group_tests(tests, lab_setup, NULL);
}
