// SPDX-License-Identifier: GPL-2.0-only
/*
 * Hostile manifests and control frames, without segd: each must end in
 * bounded time and memory with either a result or a clear error, never a
 * crash. Sizes are those of issue 7 (100 000 policies, 100 MB, deep
 * nesting); what each took is printed for docs/security.md.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "ctl/ctl.h"
#include "policy/policy.h"

#define HOSTILE_SECS 120.0 /* per case, generous for ASan on a busy CI box */

struct meter {
	struct timespec t0;
	long rss0;
};

static long max_rss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void meter_start(struct meter *m)
{
	clock_gettime(CLOCK_MONOTONIC, &m->t0);
	m->rss0 = max_rss_kb();
}

/* Prints what the case took; fails past HOSTILE_SECS. */
static void meter_end(const struct meter *m, const char *what, int err, const char *msg)
{
	struct timespec t1;
	double s;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	s = (double)(t1.tv_sec - m->t0.tv_sec) + (double)(t1.tv_nsec - m->t0.tv_nsec) / 1e9;
	print_message("FIGURES hostile %s: %.2fs, peak RSS +%ld MB, result %d%s%.120s\n", what, s,
		      (max_rss_kb() - m->rss0) / 1024, err, msg && *msg ? ": " : "",
		      msg ? msg : "");
	assert_true(s < HOSTILE_SECS);
}

/* A growable text buffer. */
struct text {
	char *s;
	size_t len, cap;
};

static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		assert_true(n >= 0);
		if (t->len + (size_t)n < t->cap)
			break;
		t->cap = t->cap ? t->cap * 2 : 1 << 16;
		t->s = realloc(t->s, t->cap);
		assert_non_null(t->s);
	}
	t->len += (size_t)n;
}

static int load(const char *buf, size_t len, struct seg_diag *d, struct seg_manifests **out)
{
	struct seg_manifests *m = seg_manifests_new();
	int err;

	assert_non_null(m);
	err = seg_manifests_load_buf(m, "hostile.yaml", buf, len, d);
	if (out && !err)
		*out = m;
	else
		seg_manifests_free(m);
	return err;
}

/* Nesting: flow sequences, flow mappings, block mappings, anchors. Each
 * must fail with a message (no field of ours nests like that). */
static void test_deep_nesting(void **state)
{
	static const int depths[] = { 1000, 100000, 1000000 };

	for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
		int depth = depths[i];
		struct text t = { 0 };
		struct seg_diag d = { 0 };
		struct meter m;
		char what[64];
		int err;

		/* inside a real object, where a string map is expected */
		text_add(&t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n  labels: ");
		for (int k = 0; k < depth; k++)
			text_add(&t, k % 2 ? "{a: " : "[");
		for (int k = depth - 1; k >= 0; k--)
			text_add(&t, k % 2 ? "}" : "]");
		text_add(&t, "\n");
		snprintf(what, sizeof(what), "flow nesting depth %d", depth);
		meter_start(&m);
		err = load(t.s, t.len, &d, NULL);
		meter_end(&m, what, err, d.msg);
		assert_int_equal(err, -EINVAL);
		assert_non_null(strstr(d.msg, depth > 1024 ? "open at once" : "depth"));
		free(t.s);
	}
}

static void test_deep_block_nesting(void **state)
{
	struct text t = { 0 };
	struct seg_diag d = { 0 };
	struct meter m;
	int depth = 3000, err;

	text_add(&t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n  labels:\n");
	for (int k = 0; k < depth; k++)
		text_add(&t, "%*sk%d:\n", 4 + k, "", k);
	text_add(&t, "%*sv\n", 4 + depth, "");
	meter_start(&m);
	err = load(t.s, t.len, &d, NULL);
	meter_end(&m, "block nesting depth 3000", err, d.msg);
	assert_true(err < 0);
	assert_true(d.msg[0]);
	free(t.s);
}

/* "Billion laughs": aliases multiplying one anchor. */
static void test_alias_bomb(void **state)
{
	struct text t = { 0 };
	struct seg_diag d = { 0 };
	struct meter m;
	int err;

	text_add(&t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n"
		     "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
	for (int k = 1; k < 10; k++)
		text_add(&t,
			 "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n",
			 k, k, k - 1, k - 1, k - 1, k - 1, k - 1, k - 1, k - 1, k - 1, k - 1,
			 k - 1);
	text_add(&t, "spec: *a9\n");
	meter_start(&m);
	err = load(t.s, t.len, &d, NULL);
	meter_end(&m, "alias bomb 10^10", err, d.msg);
	free(t.s);
}

/* 100 000 NetworkPolicies (each selecting, each with a rule) over 100
 * pods: loads and compiles, or says which map would overflow. */
static void test_many_policies(void **state)
{
	struct seg_compile_opts o = { 0 };
	struct seg_manifests *mf = NULL;
	struct seg_compiled *c = NULL;
	struct text t = { 0 };
	struct seg_diag d = { 0 };
	struct meter m;
	int n = getenv("SEG_HOSTILE_POLICIES") ? atoi(getenv("SEG_HOSTILE_POLICIES")) : 100000;
	int err;

	text_add(&t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\n"
		     "apiVersion: v1\nkind: List\nitems:\n");
	for (int k = 0; k < 100; k++)
		text_add(&t,
			 "- {apiVersion: v1, kind: Pod, metadata: {name: p%d, namespace: x, "
			 "labels: {app: a%d}}, status: {podIP: 10.1.%d.%d}}\n",
			 k, k % 10, k / 250, k % 250 + 1);
	for (int k = 0; k < n; k++)
		text_add(
			&t,
			"- {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: "
			"{name: np%d, namespace: x}, spec: {podSelector: {matchLabels: {app: a%d}}, "
			"ingress: [{from: [{podSelector: {matchLabels: {app: a%d}}}], "
			"ports: [{port: %d}]}]}}\n",
			k, k % 10, (k / 10) % 10, 1 + k % 65535);
	print_message("  %zu policies in %zu bytes\n", (size_t)n, t.len);
	meter_start(&m);
	err = load(t.s, t.len, &d, &mf);
	meter_end(&m, "policies: load", err, d.msg);
	assert_int_equal(err, 0);
	assert_int_equal(mf->npols, (size_t)n);
	meter_start(&m);
	err = seg_compile(mf, &o, &c, &d);
	meter_end(&m, "policies: compile", err, d.msg);
	/* fits, or -E2BIG naming the map */
	assert_true(err == 0 || (err == -E2BIG && d.msg[0]));
	if (!err)
		print_message("  %zu policy entries, %zu rules, %zu identities\n", c->npol,
			      c->nrules, c->nids);
	seg_compiled_free(c);
	seg_manifests_free(mf);
	free(t.s);
}

/* A 100 MB manifest file: one real object, then a comment block. */
static void test_big_file(void **state)
{
	char path[] = "/tmp/seg-hostile-XXXXXX.yaml";
	struct seg_manifests *mf = seg_manifests_new();
	struct seg_diag d = { 0 };
	static char line[1024];
	struct meter m;
	FILE *f;
	int fd, err;

	assert_non_null(mf);
	fd = mkstemps(path, 5);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n", f);
	memset(line, 'x', sizeof(line) - 1);
	line[0] = '#';
	line[sizeof(line) - 2] = '\n';
	for (int k = 0; k < 100 * 1024; k++)
		fputs(line, f);
	assert_int_equal(fclose(f), 0);
	meter_start(&m);
	err = seg_manifests_load_path(mf, path, &d);
	meter_end(&m, "100 MB file", err, d.msg);
	unlink(path);
	assert_int_equal(err, -EFBIG);
	assert_non_null(strstr(d.msg, "MiB a manifest may hold"));
	assert_int_equal(mf->nnss, 0);
	seg_manifests_free(mf);
}

/* Bytes that are not UTF-8: libfyaml 0.7.12 never returns on "%\xf9". */
static void test_not_utf8(void **state)
{
	static const struct {
		const char *in;
		const char *where;
	} cases[] = {
		{ "%\xf9", ":1:2:" },
		{ "a: b\n%YAML \xf9", ":2:7:" },
		{ "kind: Pod\nmetadata: {name: \xc0\xaf}", ":2:18:" }, /* overlong '/' */
		{ "x: \xed\xa0\x80", ":1:4:" }, /* a surrogate */
		{ "x: \xe2\x82", ":1:4:" }, /* cut short */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct seg_diag d = { 0 };
		struct meter m;

		meter_start(&m);
		assert_int_equal(load(cases[i].in, strlen(cases[i].in), &d, NULL), -EINVAL);
		meter_end(&m, "not UTF-8", -EINVAL, d.msg);
		assert_non_null(strstr(d.msg, "not UTF-8"));
		assert_non_null(strstr(d.msg, cases[i].where));
	}
	/* valid multi-byte text still loads */
	{
		static const char ok[] = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x, "
					 "annotations: {note: \"caf\xc3\xa9 \xf0\x9f\x99\x82\"}}\n";
		struct seg_diag d = { 0 };

		assert_int_equal(load(ok, strlen(ok), &d, NULL), 0);
	}
}

/* Control frames: a huge claimed length is refused before any payload is
 * buffered; garbage bodies are EBADMSG; nothing is leaked. */
static void test_ctl_frames(void **state)
{
	static const char junk[] = "\x00\x00\x00\x05[1,2]\x00\x00\x00\x03{}}"
				   "\x00\x00\x00\x02{}";
	struct seg_ctl_decoder dec;
	char err[256];
	json_t *msg = NULL;
	ssize_t n;
	size_t off = 0;
	int bad = 0, good = 0;

	seg_ctl_decoder_init(&dec, 0);
	n = seg_ctl_decoder_feed(&dec, "\xff\xff\xff\xff", 4, &msg, err, sizeof(err));
	assert_int_equal(n, -EMSGSIZE);
	assert_null(dec.payload);
	seg_ctl_decoder_reset(&dec);
	while (off < sizeof(junk) - 1) {
		n = seg_ctl_decoder_feed(&dec, junk + off, sizeof(junk) - 1 - off, &msg, err,
					 sizeof(err));
		if (n < 0) {
			bad++;
			/* a real server drops the client here; this skips the frame */
			off += 4 + (size_t)(junk[off + 3]);
			seg_ctl_decoder_reset(&dec);
			continue;
		}
		off += (size_t)n;
		if (msg) {
			good++;
			json_decref(msg);
		}
	}
	assert_int_equal(bad, 2);
	assert_int_equal(good, 1);
	seg_ctl_decoder_reset(&dec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* cheap first: peak RSS only grows, so each figure shows its own */
		cmocka_unit_test(test_ctl_frames),    cmocka_unit_test(test_not_utf8),
		cmocka_unit_test(test_alias_bomb),    cmocka_unit_test(test_deep_block_nesting),
		cmocka_unit_test(test_big_file),      cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_many_policies),
	};

	return cmocka_run_group_tests_name("hostile input", tests, NULL, NULL);
}
