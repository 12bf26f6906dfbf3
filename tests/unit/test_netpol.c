// SPDX-License-Identifier: GPL-2.0-only
/*
 * Conformance corpus (tests/netpol): each case directory holds policies
 * (*.yaml, *.json) and expect.txt, the reachability matrices written by hand
 * from the NetworkPolicy spec, in the upstream e2e format:
 *
 *   probe 80/TCP            (optionally "probe 80/TCP v6")
 *   -    x/a x/b ...        columns: to
 *   x/a  .   X   ...        rows: from; '.' allowed, 'X' denied
 *
 * Directives: "no-base" (the case brings its own cluster instead of
 * tests/netpol/base.yaml), "audit-default" (compile with audit as the
 * global default). Each case compiles base + case with lib/policy and the
 * evaluator must reproduce every matrix.
 *
 * Usage: test_netpol CORPUS_DIR [CASE]   (SEG_NETPOL_PRINT=1 prints matrices)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "policy/policy.h"

#define MAXP 32

static const char *corpus;

struct ncase {
	char name[256];
	char dir[8192];
};

struct probe {
	__u16 port;
	__u8 proto;
	int family;
	int npods;
	char pods[MAXP][64];
	char cell[MAXP][MAXP];
};

static int parse_probe_line(const char *line, struct probe *p)
{
	char spec[64] = "", fam[8] = "", proto[16];
	unsigned int port;
	int n = sscanf(line, "probe %63s %7s", spec, fam);

	if (n < 1 || sscanf(spec, "%u/%15s", &port, proto) != 2)
		return -1;
	memset(p, 0, sizeof(*p));
	p->port = (__u16)port;
	p->proto = (__u8)seg_proto_parse(proto);
	p->family = n == 2 && !strcmp(fam, "v6") ? 6 : 4;
	return 0;
}

static const struct seg_pod *find_pod(const struct seg_manifests *m, const char *nspod)
{
	char ns[64];
	const char *slash = strchr(nspod, '/');

	if (!slash || (size_t)(slash - nspod) >= sizeof(ns))
		return NULL;
	memcpy(ns, nspod, (size_t)(slash - nspod));
	ns[slash - nspod] = '\0';
	return seg_manifests_pod(m, ns, slash + 1);
}

static int check_probe(const struct seg_compiled *c, const struct seg_manifests *m,
		       const struct probe *p, const char *cname)
{
	bool print = getenv("SEG_NETPOL_PRINT");
	int bad = 0;

	if (print)
		printf("# %s: probe %u/%s%s\n-", cname, p->port, seg_proto_str(p->proto),
		       p->family == 6 ? " v6" : "");
	for (int j = 0; print && j < p->npods; j++)
		printf("\t%s", p->pods[j]);
	if (print)
		printf("\n");
	for (int i = 0; i < p->npods; i++) {
		const struct seg_pod *src = find_pod(m, p->pods[i]);

		assert_non_null(src);
		if (print)
			printf("%s", p->pods[i]);
		for (int j = 0; j < p->npods; j++) {
			const struct seg_pod *dst = find_pod(m, p->pods[j]);
			struct seg_verdict v;
			char got;

			assert_non_null(dst);
			assert_int_equal(
				seg_eval_pods(c, src, dst, p->family, p->port, p->proto, &v), 0);
			got = v.verdict == SEG_VERDICT_DENY ? 'X' : '.';
			if (print)
				printf("\t%c", got);
			if (got != p->cell[i][j]) {
				fprintf(stderr, "%s: %u/%s %s -> %s: expected %c, got %c (%s)\n",
					cname, p->port, seg_proto_str(p->proto), p->pods[i],
					p->pods[j], p->cell[i][j], got, v.reason);
				bad++;
			}
		}
		if (print)
			printf("\n");
	}
	return bad;
}

static int load_case_files(struct seg_manifests *m, const char *dir, struct seg_diag *d)
{
	struct dirent **ents = NULL;
	int n = scandir(dir, &ents, NULL, alphasort), err = 0;

	for (int i = 0; i < n; i++) {
		const char *nm = ents[i]->d_name;
		size_t l = strlen(nm);
		char path[8500];

		if (!err && nm[0] != '.' &&
		    ((l > 5 && !strcmp(nm + l - 5, ".yaml")) ||
		     (l > 5 && !strcmp(nm + l - 5, ".json")))) {
			snprintf(path, sizeof(path), "%s/%s", dir, nm);
			err = seg_manifests_load_path(m, path, d);
		}
		free(ents[i]);
	}
	free(ents);
	return n < 0 ? -1 : err;
}

static void run_case(void **state)
{
	const struct ncase *nc = *state;
	struct seg_compile_opts o = {};
	struct seg_manifests *m = seg_manifests_new();
	struct seg_compiled *c = NULL;
	struct seg_diag d = {};
	char path[8300], line[1024];
	struct probe *p = calloc(1, sizeof(*p));
	bool in_probe = false, base = true;
	int bad = 0, nprobes = 0, row = 0;
	FILE *f;

	assert_non_null(m);
	assert_non_null(p);
	snprintf(path, sizeof(path), "%s/expect.txt", nc->dir);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "no-base", 7))
			base = false;
		if (!strncmp(line, "audit-default", 13))
			o.audit_default = true;
	}
	if (base) {
		snprintf(path, sizeof(path), "%s/base.yaml", corpus);
		if (seg_manifests_load_path(m, path, &d))
			fail_msg("%s", d.msg);
	}
	if (load_case_files(m, nc->dir, &d))
		fail_msg("%s: %s", nc->name, d.msg);
	if (seg_compile(m, &o, &c, &d))
		fail_msg("%s: %s", nc->name, d.msg);

	rewind(f);
	while (fgets(line, sizeof(line), f)) {
		char *tok, *save = NULL;
		int col = 0;

		line[strcspn(line, "\r\n")] = '\0';
		if (!strncmp(line, "probe ", 6)) {
			if (in_probe)
				bad += check_probe(c, m, p, nc->name);
			assert_int_equal(parse_probe_line(line, p), 0);
			in_probe = true;
			row = -1;
			nprobes++;
			continue;
		}
		if (!in_probe || !line[0] || line[0] == '#')
			continue;
		tok = strtok_r(line, " \t", &save);
		if (row == -1) { /* header: "-" then the pods */
			assert_string_equal(tok, "-");
			while ((tok = strtok_r(NULL, " \t", &save)) && p->npods < MAXP)
				snprintf(p->pods[p->npods++], sizeof(p->pods[0]), "%s", tok);
			row = 0;
			continue;
		}
		assert_true(row < p->npods);
		assert_string_equal(tok, p->pods[row]);
		while ((tok = strtok_r(NULL, " \t", &save)) && col < p->npods)
			p->cell[row][col++] = tok[0];
		assert_int_equal(col, p->npods);
		row++;
	}
	if (in_probe)
		bad += check_probe(c, m, p, nc->name);
	fclose(f);
	assert_true(nprobes > 0);
	seg_compiled_free(c);
	seg_manifests_free(m);
	free(p);
	if (bad)
		fail_msg("%s: %d cells differ from the expected matrix", nc->name, bad);
}

/* policies/: every example parses, with the corpus cluster, and compiles. */
static const char *examples_dir;

static void examples(void **state)
{
	struct seg_manifests *m = seg_manifests_new();
	struct seg_compiled *c = NULL;
	struct seg_diag d = {};
	char path[8192];

	assert_non_null(m);
	snprintf(path, sizeof(path), "%s/base.yaml", corpus);
	if (seg_manifests_load_path(m, path, &d) || seg_manifests_load_path(m, examples_dir, &d))
		fail_msg("%s", d.msg);
	assert_true(m->npols >= 5);
	if (seg_compile(m, NULL, &c, &d))
		fail_msg("%s", d.msg);
	assert_true(c->nrules >= 5); /* the examples live in "default": no pods there */
	assert_true(c->nlpm > 0);
	seg_compiled_free(c);
	seg_manifests_free(m);
}

static int run_examples(const char *dir)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(examples) };

	examples_dir = dir;
	return cmocka_run_group_tests_name("policies", tests, NULL, NULL);
}

int main(int argc, char **argv)
{
	struct CMUnitTest *tests;
	struct dirent **ents = NULL;
	struct ncase *cases;
	char dir[4096];
	int n, nt = 0, rc;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR [CASE]\n", argv[0]);
		return 2;
	}
	corpus = argv[1];
	if (argc > 3 && !strcmp(argv[2], "--examples"))
		return run_examples(argv[3]);
	snprintf(dir, sizeof(dir), "%s/cases", corpus);
	n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0) {
		perror(dir);
		return 1;
	}
	cases = calloc((size_t)n + 1, sizeof(*cases));
	tests = calloc((size_t)n + 1, sizeof(*tests));
	if (!cases || !tests)
		return 1;
	for (int i = 0; i < n; i++) {
		struct ncase *nc = &cases[nt];
		struct stat st;

		snprintf(nc->name, sizeof(nc->name), "%s", ents[i]->d_name);
		snprintf(nc->dir, sizeof(nc->dir), "%s/%s", dir, ents[i]->d_name);
		free(ents[i]);
		if (nc->name[0] == '.' || stat(nc->dir, &st) || !S_ISDIR(st.st_mode))
			continue;
		if (argc > 2 && strcmp(argv[2], nc->name))
			continue;
		tests[nt].name = nc->name;
		tests[nt].test_func = run_case;
		tests[nt].initial_state = nc;
		nt++;
	}
	free(ents);
	if (!nt) {
		fprintf(stderr, "no cases under %s\n", dir);
		return 1;
	}
	rc = _cmocka_run_group_tests("netpol", tests, (size_t)nt, NULL, NULL);
	free(tests);
	free(cases);
	return rc;
}
