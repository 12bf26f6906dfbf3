// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target: Kubernetes manifests (YAML/JSON bytes) -> lib/policy.
 *
 * Arbitrary bytes go through seg_manifests_load_buf(); what loads is
 * compiled (seg_compile), recompiled against the first numbering (a policy
 * update), diffed, and evaluated between the first pods. Invariants beyond
 * "no crash, no leak, no UB": a failed load leaves the manifests empty
 * (loads are atomic) and says why; a failed compile says why; a recompile
 * of the same manifests is an empty diff.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

static int diff_count(void *ctx)
{
	(*(size_t *)ctx)++;
	return 0;
}

static int d_ipc_set(void *ctx, const struct seg_compiled *c, const struct seg_ipc_entry *e)
{
	return diff_count(ctx);
}

static int d_ipc_del(void *ctx, const struct in6_addr *a)
{
	return diff_count(ctx);
}

static int d_lpm_set(void *ctx, const struct seg_lpm_entry *e)
{
	return diff_count(ctx);
}

static int d_lpm_del(void *ctx, const struct seg_lpm_key *k)
{
	return diff_count(ctx);
}

static int d_pol_set(void *ctx, const struct seg_pol_entry *e)
{
	return diff_count(ctx);
}

static int d_pol_del(void *ctx, const struct seg_policy_key *k)
{
	return diff_count(ctx);
}

static int d_ep_set(void *ctx, const struct seg_compiled *c, const struct seg_ep_entry *e)
{
	return diff_count(ctx);
}

static int d_ep_del(void *ctx, const struct seg_compiled *c, const struct seg_ep_entry *e)
{
	return diff_count(ctx);
}

static const struct seg_diff_ops diff_ops = {
	.ipcache_set = d_ipc_set,
	.ipcache_del = d_ipc_del,
	.lpm_set = d_lpm_set,
	.lpm_del = d_lpm_del,
	.policy_set = d_pol_set,
	.policy_del = d_pol_del,
	.endpoint_set = d_ep_set,
	.endpoint_del = d_ep_del,
};

static void check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_manifest: invariant broken: %s\n", what);
		abort();
	}
}

/* Evaluates a few pod pairs and ports: must not crash, verdict known. */
static void eval_some(const struct seg_compiled *c, const struct seg_manifests *m)
{
	static const __u16 ports[] = { 80, 53, 0, 65535 };
	size_t n = m->npods < 3 ? m->npods : 3;

	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			for (size_t k = 0; k < sizeof(ports) / sizeof(ports[0]); k++) {
				struct seg_verdict v;

				if (seg_eval_pods(c, &m->pods[i], &m->pods[j], 0, ports[k],
						  k % 2 ? IPPROTO_UDP : IPPROTO_TCP, &v))
					continue;
				check(v.verdict >= SEG_VERDICT_ALLOW &&
					      v.verdict <= SEG_VERDICT_AUDIT,
				      "eval verdict in range");
			}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seg_manifests *m = seg_manifests_new();
	struct seg_compiled *c = NULL, *c2 = NULL;
	struct seg_compile_opts o = { 0 };
	struct seg_diag d = { 0 };
	size_t changes = 0;
	int err;

	if (!m)
		return 0;
	err = seg_manifests_load_buf(m, "fuzz.yaml", (const char *)data, size, &d);
	if (err) {
		check(err < 0, "load returns -errno");
		check(d.msg[0] != 0, "a failed load says why");
		check(m->nnss == 0 && m->npods == 0 && m->npols == 0, "a failed load is atomic");
		goto out;
	}
	/* Audit default on odd sizes: both compile paths are reached. */
	o.audit_default = size % 2;
	d.msg[0] = 0;
	err = seg_compile(m, &o, &c, &d);
	if (err) {
		check(err < 0 && d.msg[0] != 0, "a failed compile returns -errno and says why");
		goto out;
	}
	eval_some(c, m);
	check(seg_compiled_diff(NULL, c, &diff_ops, &changes) == 0, "diff from nothing");
	o.prev = c->numbering;
	err = seg_compile(m, &o, &c2, &d);
	check(err == 0, "a recompile of what compiled succeeds");
	changes = 0;
	check(seg_compiled_diff(c, c2, &diff_ops, &changes) == 0, "diff of a recompile");
	check(changes == 0, "a recompile of the same manifests changes nothing");
out:
	seg_compiled_free(c2);
	seg_compiled_free(c);
	seg_manifests_free(m);
	return 0;
}
