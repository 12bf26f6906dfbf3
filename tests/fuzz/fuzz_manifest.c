// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target: Kubernetes manifests (YAML/JSON bytes) -> lib/policy.
 *
 * Arbitrary bytes go through seg_manifests_load_buf(); what loads is
 * compiled (seg_compile), recompiled against the first numbering (a policy
 * update), diffed, and evaluated between the first pods. Invariants beyond
 * "no crash, no leak, no UB": a failed load leaves the manifests empty
 * (loads are atomic) and says why; a failed compile says why; a recompile
 * of the same manifests is an empty diff. Limits (policy/limits.h): what
 * loads loads again with max-rules at its own rule count, and is refused
 * (-E2BIG, naming the limit, atomic) one policy or one rule below.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/limits.h"
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

/* Rule ids as the compiler numbers them (limits.h). */
static size_t rules_of(const struct seg_manifests *m)
{
	size_t n = 0;

	for (size_t i = 0; i < m->npols; i++)
		for (int d = 0; d < SEG_DIR_MAX; d++)
			for (size_t r = 0; m->pols[i].types[d] && r < m->pols[i].nrules[d]; r++)
				n += m->pols[i].rules[d][r].npeers ? m->pols[i].rules[d][r].npeers :
								     1;
	return n;
}

/* Loads data again under l: 0 and the same objects, or -E2BIG naming what. */
static void load_limited(const uint8_t *data, size_t size, const struct seg_manifest_limits *l,
			 const struct seg_manifests *want, const char *refused_by)
{
	struct seg_manifests *m = seg_manifests_new();
	struct seg_diag d = { 0 };
	int err;

	if (!m)
		return;
	err = seg_manifests_load_buf_limited(m, "fuzz.yaml", (const char *)data, size, l, &d);
	if (refused_by) {
		check(err == -E2BIG, "a load past a limit is -E2BIG");
		check(strstr(d.msg, refused_by) != NULL, "a refusal names the limit");
		check(m->nnss == 0 && m->npods == 0 && m->npols == 0, "a refused load is atomic");
	} else {
		check(err == 0, "a load within the limits loads");
		check(m->npols == want->npols && m->npods == want->npods,
		      "limits change nothing within them");
	}
	seg_manifests_free(m);
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
	{
		size_t rules = rules_of(m);

		load_limited(data, size, &(struct seg_manifest_limits){ .max_rules = rules ?: 1 },
			     m, NULL);
		if (rules > 1)
			load_limited(data, size,
				     &(struct seg_manifest_limits){ .max_rules = rules - 1 }, m,
				     "max-rules");
		if (m->npols > 1)
			load_limited(data, size,
				     &(struct seg_manifest_limits){ .max_policies = m->npols - 1 },
				     m, "max-policies");
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
