// SPDX-License-Identifier: GPL-2.0-only
/*
 * Every in-place writer cuts an established flow on the fast path.
 *
 * The established fast path (bpf/lib/fast.h) looks up no endpoint, ipcache
 * or policy entry: a conntrack entry passes while it names the packet's
 * endpoint key and the current seg_config.generation. So every writer that
 * changes what a flow may do must bump the generation after its write
 * (docs/architecture.md, "The established fast path"). Here each writer
 * runs for real against a pinned data path (lib/dp, pins under
 * /sys/fs/bpf/sgdp-<pid>-*): the segctl commands (the binary given as
 * argv[1]) and lib/dp's epoch flip, which lib/apply uses. Before each, a
 * TCP flow is established and its ACKs pass on the fast path; after it, the
 * next ACK must be dropped. A writer without its bump lets the ACK pass
 * (the contract itself is shown by tests/bpf "revocation": a change without
 * a generation bump is not seen by the fast path).
 *
 * Also: a conntrack pin of the previous entry layout (72-byte values) is
 * refused by a plain load, naming the map, and rebuilt (empty, the new
 * layout) by a load with rebuild_stale.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>

#include "dp/dp.h"
#include "sh.h"
#include "testpkt.h"

#define RUN_IFKEY 1 /* BPF_PROG_TEST_RUN reports the loopback's ifindex */
#define EP_ID 7
#define LOCAL_ID 300
#define PEER_ID 400
#define OTHER_ID 401
#define POL_EG 10
#define POL_EMPTY 11
#define RULE 42
#define POD "10.0.0.1"
#define PEER "10.1.0.5"
#define OLD_CT_VALUE 72 /* seg_ct_entry before the established fields moved first */

static const char *segctl;
static char pin[PATH_MAX];

/* segctl --pin-dir PIN ARGS, quiet; its exit status. */
static int run_segctl(const char *args)
{
	int st = tsh("%s --pin-dir %s %s >/dev/null", segctl, pin, args);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void addr6(const char *a, struct in6_addr *out)
{
	assert_int_equal(seg_addr_parse(a, out), 0);
}

/* The world: the pod at RUN_IFKEY, egress isolated with one rule (TCP 80
 * to PEER_ID), ingress isolated without rules (replies need the CT). */
static void world(struct seg_dp *dp)
{
	struct seg_endpoint ep = { .ep_id = EP_ID,
				   .identity = LOCAL_ID,
				   .policy_id = { POL_EMPTY, POL_EG },
				   .revision = 1,
				   .flags = { SEG_EPF_ISOLATED, SEG_EPF_ISOLATED } };
	struct seg_ipcache_val peer = { .identity = PEER_ID },
			       pod = { .identity = LOCAL_ID, .owner_ifkey = RUN_IFKEY };
	struct seg_policy_val v = { .rule_id = RULE, .action = SEG_ACT_ALLOW };
	struct in6_addr a;
	int bits;

	bits = seg_dp_policy_set_range(dp, POL_EG, PEER_ID, IPPROTO_TCP, SEG_DIR_EGRESS, 80, 80,
				       &v);
	assert_true(bits > 0);
	ep.port_mask[SEG_DIR_EGRESS] = (__u32)bits;
	assert_int_equal(seg_dp_endpoint_set(dp, RUN_IFKEY, &ep), 0);
	addr6(PEER, &a);
	assert_int_equal(seg_dp_ipcache_set(dp, &a, &peer), 0);
	addr6(POD, &a);
	assert_int_equal(seg_dp_ipcache_set(dp, &a, &pod), 0);
	assert_int_equal(seg_dp_ct_flush(dp), 0);
}

/* One packet pod:40000 -> PEER:80 (flags) through seg_tc_from_pod. */
static int run_pkt(struct seg_dp *dp, __u8 flags)
{
	struct tp_spec s = { .src = POD,
			     .dst = PEER,
			     .proto = IPPROTO_TCP,
			     .tcp_flags = flags,
			     .sport = 40000,
			     .dport = 80 };
	__u8 pkt[TP_BUF_SIZE];
	int len = tp_build(pkt, sizeof(pkt), &s);
	LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = pkt, .data_size_in = (__u32)len);

	assert_true(len > 0);
	assert_int_equal(bpf_prog_test_run_opts(seg_dp_prog_fd(dp, SEG_PROG_TC_FROM_POD), &run), 0);
	return (int)run.retval;
}

static __u64 reason_pkts(struct seg_dp *dp, __u32 reason)
{
	struct seg_counter c;

	assert_int_equal(seg_dp_reason_get(dp, reason, &c), 0);
	return c.packets;
}

/* An established flow whose ACKs pass on the fast path: the second ACK
 * passes even after a revision bump that only the full pipeline sees. */
static void establish(struct seg_dp *dp)
{
	__u64 est = reason_pkts(dp, SEG_R_ALLOW_ESTABLISHED);

	world(dp);
	assert_int_equal(run_pkt(dp, 0x02 /* SYN */), TC_ACT_UNSPEC);
	assert_int_equal(run_pkt(dp, 0x10 /* ACK */), TC_ACT_UNSPEC);
	assert_int_equal(reason_pkts(dp, SEG_R_ALLOW_ESTABLISHED), est + 1);
}

/* The policy entry deleted in place, as a writer without a bump would:
 * the fast path still passes the flow. */
static void raw_rule_delete(struct seg_dp *dp)
{
	__u64 est = reason_pkts(dp, SEG_R_ALLOW_ESTABLISHED);

	assert_int_equal(
		seg_dp_policy_del_range(dp, POL_EG, PEER_ID, IPPROTO_TCP, SEG_DIR_EGRESS, 80, 80),
		0);
	assert_int_equal(run_pkt(dp, 0x10), TC_ACT_UNSPEC);
	assert_int_equal(reason_pkts(dp, SEG_R_ALLOW_ESTABLISHED), est + 1);
}

/* The next ACK is dropped under reason. */
static void assert_cut(struct seg_dp *dp, __u32 reason)
{
	__u64 before = reason_pkts(dp, reason);

	assert_int_equal(run_pkt(dp, 0x10), TC_ACT_SHOT);
	assert_int_equal(reason_pkts(dp, reason), before + 1);
}

struct fix {
	struct seg_dp *dp;
	struct seg_dp_opts opts;
};

static int setup(void **state)
{
	static struct fix f;
	static int n;

	snprintf(pin, sizeof(pin), "/sys/fs/bpf/sgdp-%d-%d", (int)getpid(), ++n);
	seg_dp_unpin_all(pin);
	f.opts = (struct seg_dp_opts){ .pin_dir = pin,
				       .max_endpoints = 64,
				       .max_ipcache = 256,
				       .max_ipcache_lpm = 64,
				       .max_policy = 1024,
				       .max_ct = 1024,
				       .max_rules = 128 };
	f.dp = NULL;
	if (seg_dp_open(&f.dp, &f.opts))
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	seg_dp_close(f->dp);
	seg_dp_unpin_all(pin);
	return 0;
}

static struct seg_dp *dp_of(void **state)
{
	return ((struct fix *)*state)->dp;
}

/* The segctl writers: each changes what the established flow may do and
 * must cut it on the fast path. raw: the rule deleted in place first (as
 * a writer without a bump would leave it), so only the writer's bump of
 * the revision or generation can cut the flow. */
static const struct writer_case {
	const char *args;
	bool raw;
	__u32 reason;
} writers[] = {
	{ "bpf policy delete --policy 10 --dir egress --peer 400 --proto tcp --port 80", false,
	  SEG_DROP_REVOKED },
	{ "bpf endpoint set --ifkey 1 --policy-egress 11", false, SEG_DROP_REVOKED },
	{ "bpf endpoint set --ifkey 1 --bump-revision", true, SEG_DROP_REVOKED },
	{ "bpf endpoint set --ifkey 1 --revision 77", true, SEG_DROP_REVOKED },
	{ "bpf endpoint sync-masks --bump-revision", true, SEG_DROP_REVOKED },
	{ "bpf endpoint delete --ifkey 1", false, SEG_DROP_NO_ENDPOINT },
	{ "bpf ipcache set " PEER " --identity 401", false, SEG_DROP_REVOKED },
	{ "bpf ipcache delete " PEER, false, SEG_DROP_REVOKED }, /* WORLD: no rule */
};

static void test_segctl_writers(void **state)
{
	struct seg_dp *dp = dp_of(state);

	for (size_t i = 0; i < sizeof(writers) / sizeof(writers[0]); i++) {
		const struct writer_case *w = &writers[i];

		print_message("segctl %s%s\n", w->args,
			      w->raw ? " (rule deleted in place first)" : "");
		establish(dp);
		if (w->raw)
			raw_rule_delete(dp);
		assert_int_equal(run_segctl(w->args), 0);
		assert_cut(dp, w->reason);
	}
}

/* lib/apply's way: the inactive epoch written, then one flip. */
static void test_epoch_flip(void **state)
{
	struct seg_dp *dp = dp_of(state);
	struct seg_endpoint ep;
	__u32 epoch, gen, gen2;

	establish(dp);
	assert_int_equal(seg_dp_epoch_get(dp, &epoch, &gen), 0);
	assert_int_equal(seg_dp_endpoint_get(dp, RUN_IFKEY, &ep), 0);
	ep.policy_id[SEG_DIR_EGRESS] = POL_EMPTY;
	ep.port_mask[SEG_DIR_EGRESS] = 0;
	assert_int_equal(seg_dp_endpoint_set_in(dp, epoch ^ 1, RUN_IFKEY, &ep), 0);
	assert_int_equal(run_pkt(dp, 0x10), TC_ACT_UNSPEC); /* not in force yet */
	assert_int_equal(seg_dp_epoch_flip(dp), 0);
	assert_int_equal(seg_dp_epoch_get(dp, NULL, &gen2), 0);
	assert_int_equal(gen2, gen + 1);
	assert_cut(dp, SEG_DROP_REVOKED);
	/* both epochs alike again, for the next case */
	assert_int_equal(seg_dp_endpoint_set_in(dp, epoch, RUN_IFKEY, &ep), 0);
}

/* The bump itself: generation + 1, epoch and the rest unchanged. */
static void test_generation_bump(void **state)
{
	struct seg_dp *dp = dp_of(state);
	struct seg_config a, b;

	assert_int_equal(seg_dp_config_get(dp, &a), 0);
	assert_int_equal(seg_dp_generation_bump(dp), 0);
	assert_int_equal(seg_dp_config_get(dp, &b), 0);
	assert_int_equal(b.generation, a.generation + 1);
	b.generation = a.generation;
	assert_memory_equal(&a, &b, sizeof(a));
}

/* Writers in different processes never lose each other's write: WRITERS
 * children open the pins, wait for one start signal and flip FLIPS times
 * each, while segctl changes the event rate SETS times; every flip must
 * show in the generation and the epoch's parity, and segctl's last value
 * must stay (seg_dp_config_update() holds the pin dir's lock across get
 * and set; with plain get + set this loses flips: checked by hand). */
#define WRITERS 3
#define FLIPS 20000
#define SETS 40
static void test_concurrent_writers(void **state)
{
	struct seg_dp *dp = dp_of(state);
	struct seg_config a, b;
	pid_t kids[WRITERS + 1];
	int status, go[2];
	char c;

	assert_int_equal(pipe(go), 0);
	assert_int_equal(seg_dp_config_get(dp, &a), 0);
	for (int i = 0; i <= WRITERS; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i])
			continue;
		close(go[1]);
		if (i == WRITERS) { /* segctl bpf config set, SETS times */
			char cmd[PATH_MAX * 2 + 96];
			int rc = read(go[0], &c, 1) < 0;

			for (int k = 1; k <= SETS && !rc; k++) {
				snprintf(
					cmd, sizeof(cmd),
					"%s --pin-dir %s bpf config set --event-rate %d >/dev/null",
					segctl, pin, k);
				rc = system(cmd);
			}
			_exit(rc ? 1 : 0);
		}
		struct seg_dp_opts o = { .pin_dir = pin, .open_existing = true };
		struct seg_dp *mine = NULL;
		int rc = seg_dp_open(&mine, &o);

		if (read(go[0], &c, 1) < 0) /* EOF: all started */
			rc = -1;
		for (int k = 0; k < FLIPS && !rc; k++)
			rc = seg_dp_epoch_flip(mine);
		seg_dp_close(mine);
		_exit(rc ? 1 : 0);
	}
	close(go[0]);
	usleep(200 * 1000); /* the children open their pins */
	close(go[1]);
	for (int i = 0; i <= WRITERS; i++) {
		assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	assert_int_equal(seg_dp_config_get(dp, &b), 0);
	assert_int_equal(b.generation, a.generation + WRITERS * FLIPS);
	assert_int_equal(b.epoch & 1, (a.epoch + WRITERS * FLIPS) & 1);
	assert_int_equal(b.evt_rate, SETS); /* segctl's last write */
}

/* A conntrack pin of the old layout: refused, or rebuilt when asked. */
static void test_old_ct_layout(void **state)
{
	struct fix *f = *state;
	char path[PATH_MAX + 16];
	struct bpf_map_info mi = { 0 };
	__u32 len = sizeof(mi);
	struct seg_dp_opts o = f->opts;
	struct seg_dp *dp = NULL;
	int fd;

	seg_dp_close(f->dp);
	f->dp = NULL;
	assert_int_equal(seg_dp_unpin_all(pin), 0);
	assert_int_equal(mkdir(pin, 0700), 0);
	fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, SEG_MAP_CT, sizeof(struct seg_ct_key),
			    OLD_CT_VALUE, o.max_ct, NULL);
	assert_true(fd >= 0);
	snprintf(path, sizeof(path), "%s/%s", pin, SEG_MAP_CT);
	assert_int_equal(bpf_obj_pin(fd, path), 0);
	close(fd);

	assert_int_not_equal(seg_dp_open(&dp, &o), 0);
	assert_null(dp);
	o.rebuild_stale = true;
	assert_int_equal(seg_dp_open(&dp, &o), 0);
	if (seg_dp_commit_pending(dp))
		assert_int_equal(seg_dp_commit(dp), 0);
	fd = bpf_obj_get(path);
	assert_true(fd >= 0);
	assert_int_equal(bpf_obj_get_info_by_fd(fd, &mi, &len), 0);
	assert_int_equal(mi.value_size, sizeof(struct seg_ct_entry));
	close(fd);
	f->dp = dp;
	/* and the rebuilt data path works */
	establish(dp);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generation_bump), cmocka_unit_test(test_segctl_writers),
		cmocka_unit_test(test_epoch_flip),	cmocka_unit_test(test_concurrent_writers),
		cmocka_unit_test(test_old_ct_layout),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH/TO/segctl\n", argv[0]);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: needs root (BPF, bpffs pins)\n");
		return 77;
	}
	segctl = argv[1];
	return cmocka_run_group_tests_name("dp generation: every writer cuts", tests, setup,
					   teardown);
}
