// SPDX-License-Identifier: GPL-2.0-only
/*
 * Packet fuzzer: the real data path (bpf/seg_dp.bpf.c through
 * BPF_PROG_TEST_RUN, root) against a fixed policy, judged packet by packet
 * by an independent reference classifier (pktref.c).
 *
 * The endpoint (tests/bpf/fixture.h's base world) is isolated both ways:
 *   ingress: TCP from FX_A to port 80; UDP from FX_NET (LPM) to 1000-1999
 *   egress:  UDP to FX_B port 53
 * Packets are random specs (peers, ports, protocols, IPv4 options, IPv6
 * extension headers, fragments, ICMP errors quoting flows, ARP/ND, odd
 * ethertypes, truncation, bad lengths) built with tests/lib, then mutated
 * (byte flips, cuts, appended junk), sent through seg_tc_to_pod,
 * seg_tc_from_pod or seg_xdp_from_pod. Invariants, for every packet:
 *  - the test run succeeds and returns a known verdict (never errs);
 *  - a pass carries exactly one allow reason, and that reason is what the
 *    reference derives: L2 only for ARP/ND; a rule only for a 5-tuple the
 *    policy allows; established only for a flow allowed before; related
 *    only for an ICMP error addressed to the source of a packet it quotes
 *    from an allowed flow; host only with SEG_CFG_ALLOW_HOST for the
 *    node; with SEG_CFG_ANTISPOOF no new flow or ICMP error leaves from an
 *    address the pod does not own. The configuration cycles through none,
 *    ANTISPOOF and ANTISPOOF|ALLOW_HOST at each map reset. Anything else
 *    is a breach: the run fails and the packet is saved.
 * Drops the reference would have passed are counted and shown (not a
 * security failure: maps may be full, state may have expired).
 *
 * SEG_FUZZ_SECONDS (default 60) bounds the time, SEG_FUZZ_PACKETS the
 * count; SEG_FUZZ_SEED (default: the time) is printed and replays the same
 * sequence; breaches go to SEG_FUZZ_DIR (default .) as breach-SEED-N.bin.
 */
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "pktref.h"

#define FZ_RESET_EVERY 20000 /* packets: fresh maps, fresh reference state */
#define FZ_BUMP_EVERY 1500 /* packets: endpoint revision bump (re-evaluation) */
#define FZ_SHOW_MAX 8 /* disagreements printed per kind */
#define FZ_PASS_REASONS 7 /* reasons 0..6 are allow reasons */

struct fz_stats {
	unsigned long long sent[FX_HOOK_MAX], refused, passes[FZ_PASS_REASONS], drops;
	unsigned long long breaches, overdrops, errs;
};

struct fz {
	unsigned int seed, rnd;
	unsigned long long n;
	struct ref_state *ref;
	struct fz_stats st;
	__u64 reason_seen[FZ_PASS_REASONS];
	const char *dir;
	__u32 cfg; /* SEG_CFG_* of this stretch (cycled at each reset) */
	unsigned int resets;
};

static unsigned int fz_rand(struct fz *z)
{
	z->rnd = z->rnd * 1103515245u + 12345u;
	return z->rnd >> 8;
}

static unsigned int fz_pick(struct fz *z, unsigned int n)
{
	return fz_rand(z) % n;
}

/* ---- generation ------------------------------------------------------------ */

static const char *const fz_v4[] = { "10.0.0.1", "10.1.0.5",  "10.1.0.6",   "10.2.3.4",
				     "10.2.9.9", "192.0.2.9", "10.0.0.254", "10.0.0.2" };
static const char *const fz_v6[] = { "fd00::1", "fd01::5",     "fd01::6",  "fd02::34",
				     "fd02::9", "2001:db8::9", "fd00::fe", "fe80::1" };
static const __u16 fz_ports[] = { 80, 53, 1000, 1500, 1999, 2000, 40000, 40001, 0, 65535 };
static const __u8 fz_protos[] = { IPPROTO_TCP,	 IPPROTO_UDP,  IPPROTO_TCP,  IPPROTO_UDP,
				  IPPROTO_SCTP_, IPPROTO_ICMP, 50 /* ESP */, 47 /* GRE */ };
static const __u8 fz_exts[] = { IPPROTO_HOPOPTS, IPPROTO_DSTOPTS, IPPROTO_ROUTING };

/* Addresses: the pod on its side of the hook most of the time. */
static void fz_addrs(struct fz *z, struct tp_spec *s, int fam, enum fx_hook hook)
{
	const char *const *tab = fam == 6 ? fz_v6 : fz_v4;
	const char *pod = tab[0], *peer = tab[fz_pick(z, 8)];
	bool out = hook != FX_TO_POD;

	if (fz_pick(z, 8) == 0)
		pod = tab[fz_pick(z, 8)];
	s->src = out ? pod : peer;
	s->dst = out ? peer : pod;
}

static void fz_l4(struct fz *z, struct tp_spec *s, int fam)
{
	s->proto = fz_protos[fz_pick(z, sizeof(fz_protos))];
	if (s->proto == IPPROTO_ICMP && fam == 6)
		s->proto = IPPROTO_ICMPV6;
	s->sport = fz_ports[fz_pick(z, 10)];
	s->dport = fz_ports[fz_pick(z, 10)];
	if (fz_pick(z, 4) == 0)
		s->sport = (__u16)fz_rand(z);
	s->tcp_flags = fz_pick(z, 3) ? 0 : (__u8)fz_rand(z);
	s->payload = (__u16)fz_pick(z, 3) * 16;
	if (s->proto == IPPROTO_ICMP || s->proto == IPPROTO_ICMPV6) {
		static const __u8 t4[] = { 8, 0, 3, 11, 12, 5, 4, 13 };
		static const __u8 t6[] = { 128, 129, 1, 2, 3, 4, 133, 135, 136, 137, 143 };

		s->icmp_type = fam == 6 ? t6[fz_pick(z, sizeof(t6))] : t4[fz_pick(z, sizeof(t4))];
		s->icmp_id = (__u16)fz_pick(z, 3);
		if (fam == 6 && s->icmp_type >= 133 && s->icmp_type <= 137 && fz_pick(z, 4))
			s->ttl = 255; /* neighbour discovery as a host sends it */
	}
}

static void fz_l3_knobs(struct fz *z, struct tp_spec *s, int fam)
{
	if (fz_pick(z, 6) == 0) {
		s->mf = (__u8)fz_pick(z, 2);
		s->frag_off = fz_pick(z, 2) ? 0 : (__u16)(1 + fz_pick(z, 4));
		s->frag_id = 1 + fz_pick(z, 3);
		s->frag = fam == 6;
	}
	if (fam == 4 && fz_pick(z, 6) == 0)
		s->ip4_optlen = (__u8)(4 * fz_pick(z, 11));
	if (fam == 6 && fz_pick(z, 4) == 0) {
		s->n_ext = (__u8)fz_pick(z, 11);
		for (int i = 0; i < s->n_ext; i++)
			s->ext[i] = fz_exts[fz_pick(z, 3)];
	}
	if (fz_pick(z, 20) == 0)
		s->ihl = (__u8)fz_pick(z, 16);
	if (fz_pick(z, 20) == 0)
		s->ip_len = fz_pick(z, 200);
	if (fz_pick(z, 10) == 0)
		s->cut = (__u16)(TP_ETH_LEN + fz_pick(z, 90));
}

/* A random spec for hook; inner holds an ICMP error's quote. */
static void fz_spec(struct fz *z, enum fx_hook hook, struct tp_spec *s, struct tp_spec *inner)
{
	int fam = fz_pick(z, 2) ? 4 : 6;

	memset(s, 0, sizeof(*s));
	if (fz_pick(z, 25) == 0) {
		static const __u16 et[] = { ETH_P_ARP, 0x8100, 0x88cc, 0x0801, 0x86dc, 0 };

		s->ethertype = et[fz_pick(z, 6)];
		s->payload = (__u16)fz_pick(z, 64);
		if (s->ethertype)
			return;
	}
	fz_addrs(z, s, fam, hook);
	fz_l4(z, s, fam);
	fz_l3_knobs(z, s, fam);
	if ((s->proto == IPPROTO_ICMP && s->icmp_type >= 3 && s->icmp_type <= 12 &&
	     s->icmp_type != 8) ||
	    (s->proto == IPPROTO_ICMPV6 && s->icmp_type <= 4)) {
		/* the quote: a flow from the other side, often the one it answers */
		fz_addrs(z, inner, fam, hook == FX_TO_POD ? FX_FROM_POD : FX_TO_POD);
		fz_l4(z, inner, fam);
		inner->payload = 0;
		if (inner->proto == IPPROTO_ICMP || inner->proto == IPPROTO_ICMPV6)
			inner->icmp_type = fam == 6 ? 128 : 8; /* no nested errors */
		if (fz_pick(z, 2))
			s->dst = inner->src; /* to the quoted packet's source */
		s->inner = inner;
	}
}

/* Byte flips (mostly in the headers), cuts, junk at the end. */
static int fz_mutate(struct fz *z, __u8 *buf, int len, int cap)
{
	int flips = fz_pick(z, 3) ? 0 : 1 + (int)fz_pick(z, 4);

	for (int i = 0; i < flips && len > 12; i++) {
		int span = fz_pick(z, 2) ? 100 : len;
		int off = 12 + (int)fz_pick(z, (unsigned int)((span < len ? span : len) - 12));

		buf[off] = (__u8)fz_rand(z);
	}
	if (fz_pick(z, 12) == 0 && len > 0)
		len = (int)fz_pick(z, (unsigned int)len + 1);
	if (fz_pick(z, 12) == 0) {
		int add = (int)fz_pick(z, 64);

		for (int i = 0; i < add && len < cap; i++)
			buf[len++] = (__u8)fz_rand(z);
	}
	return len;
}

static int fz_packet(struct fz *z, enum fx_hook hook, __u8 *buf, int cap)
{
	struct tp_spec s, inner;
	int len;

	if (fz_pick(z, 50) == 0) { /* pure noise with a real ethertype */
		len = TP_ETH_LEN + (int)fz_pick(z, 120);
		for (int i = 0; i < len; i++)
			buf[i] = (__u8)fz_rand(z);
		buf[12] = fz_pick(z, 2) ? 0x08 : 0x86;
		buf[13] = buf[12] == 0x08 ? 0x00 : 0xdd;
		return len;
	}
	memset(&inner, 0, sizeof(inner));
	fz_spec(z, hook, &s, &inner);
	len = tp_build(buf, (size_t)cap, &s);
	if (len < 0)
		return len;
	return fz_mutate(z, buf, len, cap);
}

/* ---- judging ------------------------------------------------------------------ */

struct fz_judge {
	__u8 dir;
	int reason;
	const struct ref_state *ref;
};

static bool fz_flow_ok(const struct ref_tuple *t, void *ctx)
{
	const struct fz_judge *j = ctx;
	struct ref_key k;

	if (j->reason == SEG_R_ALLOW_RULE)
		return ref_policy_allows(t, j->dir);
	ref_key_of(t, j->dir, &k);
	return ref_ct_has(j->ref, &k);
}

/* NULL if a pass with this reason is justified, else why not. */
static const char *fz_judge(const struct fz *z, const struct ref_pkt *r, __u8 dir, int reason)
{
	struct fz_judge j = { .dir = dir, .reason = reason, .ref = z->ref };
	bool spoofed = dir == SEG_DIR_EGRESS && (z->cfg & SEG_CFG_ANTISPOOF) && r->cls != REF_L2 &&
		       !ref_src_owned(r->t.saddr);
	struct ref_key k;

	if (spoofed && (reason == SEG_R_ALLOW_RULE || reason == SEG_R_ALLOW_RELATED ||
			reason == SEG_R_ALLOW_HOST))
		return "a new flow or an ICMP error left the pod from an address it does not own";
	switch (reason) {
	case SEG_R_ALLOW_HOST:
		if (!(z->cfg & SEG_CFG_ALLOW_HOST) || r->cls == REF_BAD || r->cls == REF_L2)
			return "host pass without SEG_CFG_ALLOW_HOST or for an unparseable packet";
		return ref_identity(dir == SEG_DIR_INGRESS ? r->t.saddr : r->t.daddr) ==
				       SEG_ID_HOST ?
			       NULL :
			       "host pass for a peer that is not the host";
	case SEG_R_ALLOW_L2:
		return r->cls == REF_L2 ? NULL : "L2 pass for a packet that is not ARP/ND";
	case SEG_R_ALLOW_RULE:
	case SEG_R_ALLOW_ESTABLISHED:
		if (r->cls == REF_FLOW && fz_flow_ok(&r->t, &j))
			return NULL;
		if (r->cls == REF_LATER_FRAG &&
		    ref_frag_any(z->ref, &r->t, r->frag_id, fz_flow_ok, &j))
			return NULL;
		return reason == SEG_R_ALLOW_RULE ? "rule pass for a 5-tuple the policy denies" :
						    "established pass for a flow never allowed";
	case SEG_R_ALLOW_RELATED:
		if (r->cls != REF_ICMP_ERR || !r->q_ok)
			return "related pass for a packet that is not an ICMP error with a quote";
		if (memcmp(r->t.daddr, r->q.saddr, 16))
			return "related pass for an error not sent to the quoted packet's source";
		ref_key_of(&r->q, dir == SEG_DIR_INGRESS ? SEG_DIR_EGRESS : SEG_DIR_INGRESS, &k);
		return ref_ct_has(z->ref, &k) ? NULL : "related pass quoting a flow never allowed";
	}
	return "pass with a reason this policy never gives";
}

/* What the reference expects to pass (for the over-drop count). */
static bool fz_expect_pass(const struct fz *z, const struct ref_pkt *r, __u8 dir)
{
	struct ref_key k;

	if (r->cls == REF_L2)
		return true;
	if (r->cls != REF_FLOW)
		return false;
	ref_key_of(&r->t, dir, &k);
	if (ref_ct_has(z->ref, &k))
		return true;
	if (dir == SEG_DIR_EGRESS && (z->cfg & SEG_CFG_ANTISPOOF) && !ref_src_owned(r->t.saddr))
		return false;
	return ref_policy_allows(&r->t, dir);
}

/* ---- running ------------------------------------------------------------------ */

static void fz_dump(const struct fz *z, const __u8 *pkt, int len, enum fx_hook hook,
		    const char *what)
{
	char path[512];
	FILE *f;

	fprintf(stderr, "packet %llu (seed %u) on %s, %d bytes: %s\n ", z->n, z->seed,
		fx_hook_name(hook), len, what);
	for (int i = 0; i < len && i < 96; i++)
		fprintf(stderr, "%02x%s", pkt[i], i % 32 == 31 ? "\n " : " ");
	fputc('\n', stderr);
	snprintf(path, sizeof(path), "%s/breach-%u-%llu-%s.bin", z->dir, z->seed, z->n,
		 fx_hook_name(hook));
	f = fopen(path, "w");
	if (f) {
		fwrite(pkt, 1, (size_t)len, f);
		fclose(f);
		fprintf(stderr, " saved as %s\n", path);
	}
}

/* The allow reason whose counter moved since the last pass; -1 if not
 * exactly one packet under exactly one of them. */
static int fz_pass_reason(struct fz *z)
{
	int found = -1, moved = 0;

	for (int r = 0; r < FZ_PASS_REASONS; r++) {
		__u64 p = fx_reason((__u32)r).packets;

		if (p != z->reason_seen[r]) {
			moved++;
			found = p == z->reason_seen[r] + 1 ? r : -1;
			z->reason_seen[r] = p;
		}
	}
	return moved == 1 ? found : -1;
}

static void fz_policy(struct fz *z)
{
	static const struct fx_rule rules[] = {
		{ SEG_DIR_INGRESS, FX_ID_A, IPPROTO_TCP, 80, 80, SEG_ACT_ALLOW, 1 },
		{ SEG_DIR_INGRESS, FX_ID_NET, IPPROTO_UDP, 1000, 1999, SEG_ACT_ALLOW, 2 },
		{ SEG_DIR_EGRESS, FX_ID_B, IPPROTO_UDP, 53, 53, SEG_ACT_ALLOW, 3 },
	};

	static const __u32 modes[] = { 0, SEG_CFG_ANTISPOOF,
				       SEG_CFG_ANTISPOOF | SEG_CFG_ALLOW_HOST };

	fx_reset(NULL);
	z->cfg = modes[z->resets++ % (sizeof(modes) / sizeof(modes[0]))];
	fx_config(z->cfg);
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		fx_rule_add(&rules[i]);
	fx_ep_flags(SEG_EPF_ISOLATED, SEG_EPF_ISOLATED);
	ref_state_clear(z->ref);
	memset(z->reason_seen, 0, sizeof(z->reason_seen));
}

struct fz_track {
	struct fz *z;
	__u8 dir;
	bool any; /* host flows: whatever the ports */
};

/* A flow the data path was right to start tracking; never stops ref_frag_any. */
static bool fz_track(const struct ref_tuple *t, void *ctx)
{
	struct fz_track *tr = ctx;
	struct ref_key k;

	if (tr->any || ref_policy_allows(t, tr->dir)) {
		ref_key_of(t, tr->dir, &k);
		assert_int_equal(ref_ct_add(tr->z->ref, &k), 0);
	}
	return false;
}

/* Sends one packet; judges it; updates the reference state. */
static void fz_one(struct fz *z, enum fx_hook hook, __u8 *pkt, int len)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = (__u32)len, .repeat = 1);
	__u8 dir = fx_hook_dir(hook);
	bool pass, drop;
	struct ref_pkt r;
	const char *why;
	int err, reason;

	ref_parse(pkt, (size_t)len, &r);
	err = bpf_prog_test_run_opts(fx()->prog[hook], &o);
	if (err) {
		/* the harness refuses frames shorter than the L3 header it expects */
		if (len < TP_ETH_LEN + 40 && (err == -EINVAL || err == -E2BIG)) {
			z->st.refused++;
			return;
		}
		z->st.errs++;
		fz_dump(z, pkt, len, hook, strerror(-err));
		return;
	}
	z->st.sent[hook]++;
	pass = hook == FX_XDP_FROM_POD ? o.retval == 2 /* XDP_PASS */ :
					 (int)o.retval == TC_ACT_UNSPEC;
	drop = hook == FX_XDP_FROM_POD ? o.retval == 1 /* XDP_DROP */ : o.retval == TC_ACT_SHOT;
	if (!pass && !drop) {
		z->st.errs++;
		fz_dump(z, pkt, len, hook, "unknown return code");
		return;
	}
	if (r.cls == REF_FLOW && r.first_frag) {
		ref_frag_add(z->ref, &r.t, r.frag_id);
		if (r.frag_proto != r.t.proto) {
			struct ref_tuple t = r.t;

			t.proto = r.frag_proto;
			ref_frag_add(z->ref, &t, r.frag_id);
		}
	}
	if (drop) {
		z->st.drops++;
		if (fz_expect_pass(z, &r, dir) && z->st.overdrops++ < FZ_SHOW_MAX)
			fz_dump(z, pkt, len, hook,
				"over-drop: the reference would pass it (not a breach)");
		return;
	}
	reason = fz_pass_reason(z);
	why = reason < 0 ? "a pass not counted under exactly one allow reason" :
			   fz_judge(z, &r, dir, reason);
	if (why) {
		z->st.breaches++;
		fz_dump(z, pkt, len, hook, why);
		return;
	}
	z->st.passes[reason]++;
	if (reason == SEG_R_ALLOW_RULE || reason == SEG_R_ALLOW_HOST) {
		struct fz_track tr = { .z = z, .dir = dir, .any = reason == SEG_R_ALLOW_HOST };

		if (r.cls == REF_FLOW)
			fz_track(&r.t, &tr);
		else /* a later fragment: the flows its first fragments named */
			ref_frag_any(z->ref, &r.t, r.frag_id, fz_track, &tr);
	}
}

static unsigned long env_ul(const char *name, unsigned long dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoul(v, NULL, 0) : dflt;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fz_report(const struct fz *z, double secs)
{
	static const char *const rn[] = { "rule", "not-isolated", "established", "related",
					  "host", "l2",		  "audit" };

	printf("FIGURES fuzz_packets: seed %u, %llu packets in %.0fs (to_pod %llu, from_pod %llu, "
	       "xdp %llu; %llu refused by the harness as too short)\n",
	       z->seed, z->n, secs, z->st.sent[FX_TO_POD], z->st.sent[FX_FROM_POD],
	       z->st.sent[FX_XDP_FROM_POD], z->st.refused);
	printf("  passed:");
	for (int r = 0; r < FZ_PASS_REASONS; r++)
		printf(" %s %llu", rn[r], z->st.passes[r]);
	printf("; dropped %llu\n  breaches %llu, program errors %llu, over-drops %llu\n",
	       z->st.drops, z->st.breaches, z->st.errs, z->st.overdrops);
}

static void test_fuzz_packets(void **state)
{
	struct fz z = { 0 };
	double secs = (double)env_ul("SEG_FUZZ_SECONDS", 60), t0 = now_s();
	unsigned long long max = env_ul("SEG_FUZZ_PACKETS", 0);
	__u8 buf[TP_BUF_SIZE];

	z.seed = (unsigned int)env_ul("SEG_FUZZ_SEED", (unsigned long)time(NULL));
	z.rnd = z.seed;
	z.dir = getenv("SEG_FUZZ_DIR") ? getenv("SEG_FUZZ_DIR") : ".";
	z.ref = ref_state_new();
	assert_non_null(z.ref);
	printf("fuzz_packets: seed %u (replay: SEG_FUZZ_SEED=%u), %.0fs\n", z.seed, z.seed, secs);
	fflush(stdout);
	while ((!max || z.n < max) && (max || now_s() - t0 < secs)) {
		enum fx_hook hook = (enum fx_hook)fz_pick(&z, FX_HOOK_MAX);
		int len;

		if (z.n % FZ_RESET_EVERY == 0)
			fz_policy(&z);
		else if (z.n % FZ_BUMP_EVERY == 0)
			fx_ep_bump();
		if (z.n % 2048 == 0)
			fx_events(); /* keep the ring buffer drained */
		z.n++;
		len = fz_packet(&z, hook, buf, sizeof(buf));
		if (len >= 0)
			fz_one(&z, hook, buf, len);
	}
	fz_report(&z, now_s() - t0);
	ref_state_free(z.ref);
	assert_int_equal(z.st.breaches, 0);
	assert_int_equal(z.st.errs, 0);
	/* the run reached every kind of justified pass */
	assert_true(z.st.passes[SEG_R_ALLOW_RULE] > 0);
	assert_true(z.st.passes[SEG_R_ALLOW_ESTABLISHED] > 0);
	assert_true(z.st.passes[SEG_R_ALLOW_L2] > 0);
	if (!max)
		assert_true(z.st.passes[SEG_R_ALLOW_RELATED] > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_fuzz_packets) };

	if (geteuid() != 0) {
		fprintf(stderr, "fuzz_packets: need root to load BPF programs, skipping\n");
		return 77;
	}
	return cmocka_run_group_tests_name("packet fuzzer", tests, fx_group_setup,
					   fx_group_teardown);
}
