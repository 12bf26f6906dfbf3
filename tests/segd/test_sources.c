// SPDX-License-Identifier: GPL-2.0-only
/* segd's label sources and state file (sources.c, state.c), without a kernel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "addr.h"
#include "policy/limits.h"
#include "segd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const pods_yaml =
	"apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {app: a}}\n"
	"status: {podIP: 10.0.0.2}\n---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: noip, namespace: x}\n";

static void cni(struct segd *d, const char *json)
{
	char err[128] = "";
	json_t *j = json_loads(json, 0, NULL);

	assert_non_null(j);
	d->cni = realloc(d->cni, (d->ncni + 1) * sizeof(*d->cni));
	assert_int_equal(segd_cni_pod_parse(j, &d->cni[d->ncni], err, sizeof(err)), 0);
	d->ncni++;
	json_decref(j);
}

static void addr_is(const struct seg_pod *p, const char *want)
{
	char buf[64];

	assert_non_null(p);
	assert_int_equal(p->naddrs, 1);
	assert_string_equal(seg_addr_str(&p->addrs[0], buf, sizeof(buf)), want);
}

/* Appends name/content to d's applied set, as segd's apply does. */
static void applied_add(struct segd *d, const char *name, const char *content)
{
	d->applied = realloc(d->applied, (d->napplied + 1) * sizeof(*d->applied));
	assert_non_null(d->applied);
	assert_int_equal(segd_applied_set(&d->applied[d->napplied], name, content, strlen(content)),
			 0);
	d->napplied++;
}

/* Replaces the text of d's applied entry i. */
static void applied_text(struct segd *d, size_t i, const char *content)
{
	free(d->applied[i].content);
	assert_int_equal(segd_applied_text(&d->applied[i], content, strlen(content)), 0);
}

static void test_cni_pods_give_addresses_or_become_pods(void **state)
{
	struct segd d = {};
	struct seg_manifests *m = NULL;
	struct seg_diag diag = {};

	applied_add(&d, "pods.yaml", pods_yaml);
	/* a CNI result's ips (objects with a prefix), and plain strings */
	cni(&d,
	    "{\"container_id\": \"c1\", \"netns\": \"/run/netns/n1\", \"pod_namespace\": \"x\","
	    " \"pod_name\": \"noip\", \"ips\": [{\"address\": \"10.0.0.9/24\", \"interface\": 1}]}");
	cni(&d, "{\"container_id\": \"c2\", \"pod_namespace\": \"x\", \"pod_name\": \"a\","
		" \"ips\": [\"10.0.0.77\"]}");
	cni(&d, "{\"container_id\": \"c3\", \"pod_namespace\": \"y\", \"pod_name\": \"new\","
		" \"ips\": [\"fd00::3\"]}");
	assert_int_equal(segd_manifests_build(&d, &m, &diag), 0);
	addr_is(seg_manifests_pod(m, "x", "noip"), "10.0.0.9"); /* filled in */
	addr_is(seg_manifests_pod(m, "x", "a"), "10.0.0.2"); /* the manifest's wins */
	addr_is(seg_manifests_pod(m, "y", "new"), "fd00::3"); /* made up, no labels */
	assert_int_equal(seg_manifests_pod(m, "y", "new")->labels.n, 0);
	seg_manifests_free(m);
	segd_state_free(&d);
}

static void test_bad_source_fails_with_location(void **state)
{
	struct segd d = {};
	struct seg_manifests *m = NULL;
	struct seg_diag diag = {};

	applied_add(&d, "bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: [x]}\n");
	assert_true(segd_manifests_build(&d, &m, &diag) < 0);
	assert_null(m);
	assert_non_null(strstr(diag.msg, "bad.yaml:3:"));
	segd_state_free(&d);
}

static void test_cni_args_refused(void **state)
{
	struct segd_cni_pod p;
	char err[128] = "";
	json_t *j = json_loads(
		"{\"container_id\": \"c\", \"pod_namespace\": \"x\", \"pod_name\": \"a\","
		" \"ips\": [\"nope\"]}",
		0, NULL);

	assert_int_equal(segd_cni_pod_parse(j, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "ips[0]"));
	json_decref(j);
	j = json_loads("{\"container_id\": \"c\"}", 0, NULL);
	assert_int_equal(segd_cni_pod_parse(j, &p, err, sizeof(err)), -EINVAL);
	json_decref(j);
}

/* A state directory of its own: dir/state.json, items in dir/state.json.d. */
static void state_at(struct segd *d, char *dir)
{
	assert_non_null(mkdtemp(dir));
	snprintf(d->state_path, sizeof(d->state_path), "%s/state.json", dir);
}

static void state_rm(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* The names in dir/state.json.d, sorted, one per line. */
static void items_are(const char *dir, const char *want)
{
	char cmd[160], got[256] = "";
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof(cmd), "ls %s/state.json.d | sort", dir);
	f = popen(cmd, "r");
	assert_non_null(f);
	n = fread(got, 1, sizeof(got) - 1, f);
	got[n] = '\0';
	pclose(f);
	assert_string_equal(got, want);
}

static void test_state_file_round_trip(void **state)
{
	struct segd d = {}, e = {};
	char dir[] = "/tmp/sgsr-state-test.XXXXXX";

	state_at(&d, dir);
	memcpy(e.state_path, d.state_path, sizeof(e.state_path));
	applied_add(&d, "/p/np.yaml", "kind: List\nitems: []\n");
	cni(&d,
	    "{\"container_id\": \"c1\", \"netns\": \"/run/netns/n1\", \"ifname\": \"net1\","
	    " \"pod_namespace\": \"x\", \"pod_name\": \"a\", \"ips\": [\"10.0.0.2\", \"fd00::2\"]}");
	assert_int_equal(segd_state_save(&d), 0);
	assert_int_equal(segd_state_load(&e), 0);
	assert_int_equal(e.napplied, 1);
	assert_string_equal(e.applied[0].name, "/p/np.yaml");
	assert_string_equal(e.applied[0].content, "kind: List\nitems: []\n");
	/* loaded with what the parse cache compares */
	assert_int_equal(e.applied[0].len, strlen(e.applied[0].content));
	assert_memory_equal(e.applied[0].hash, d.applied[0].hash, sizeof(d.applied[0].hash));
	assert_int_equal(e.ncni, 1);
	assert_string_equal(e.cni[0].netns, "/run/netns/n1");
	assert_string_equal(e.cni[0].ifname, "net1");
	assert_int_equal(e.cni[0].naddrs, 2);
	assert_memory_equal(&e.cni[0].addrs[1], &d.cni[0].addrs[1], sizeof(struct in6_addr));
	segd_state_free(&d);
	segd_state_free(&e);
	state_rm(dir);
}

/* Each applied text is an item written once: a save writes only the texts
 * not written yet, removes the items the new index no longer names, and a
 * load removes items no index names (a crash between the writes). */
static void test_state_items(void **state)
{
	struct segd d = {}, e = {}, f = {};
	char dir[] = "/tmp/sgsr-state-test.XXXXXX", path[PATH_MAX + 32];
	struct stat st1, st2;
	FILE *fp;

	state_at(&d, dir);
	memcpy(e.state_path, d.state_path, sizeof(e.state_path));
	memcpy(f.state_path, d.state_path, sizeof(f.state_path));
	applied_add(&d, "a.yaml", "a: 1\n");
	applied_add(&d, "b.yaml", "b: 1\n");
	assert_int_equal(segd_state_save(&d), 0);
	items_are(dir, "applied-1\napplied-2\n");
	snprintf(path, sizeof(path), "%s/state.json.d/applied-1", dir);
	assert_int_equal(stat(path, &st1), 0);

	/* b changes: a new item; the old one goes once the index is in place */
	free(d.applied[1].content);
	assert_int_equal(segd_applied_text(&d.applied[1], "b: 2\n", 5), 0);
	segd_state_retire(&d, 2);
	usleep(20000); /* past the file time granularity */
	assert_int_equal(segd_state_save(&d), 0);
	items_are(dir, "applied-1\napplied-3\n");
	assert_int_equal(stat(path, &st2), 0); /* a's item was not written again */
	assert_int_equal(st1.st_mtim.tv_nsec, st2.st_mtim.tv_nsec);
	assert_int_equal(st1.st_mtim.tv_sec, st2.st_mtim.tv_sec);

	/* a crash left an item no index names: the load removes it, and the
	 * next item is numbered above it */
	snprintf(path, sizeof(path), "%s/state.json.d/applied-9", dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("x: 1\n", fp);
	fclose(fp);
	assert_int_equal(segd_state_load(&e), 0);
	items_are(dir, "applied-1\napplied-3\n");
	assert_int_equal(e.napplied, 2);
	assert_string_equal(e.applied[1].content, "b: 2\n");
	assert_int_equal(e.applied[1].item, 3);
	applied_add(&e, "c.yaml", "c: 1\n");
	assert_int_equal(segd_state_save(&e), 0);
	items_are(dir, "applied-1\napplied-10\napplied-3\n");

	/* an item gone: that object is skipped, the others load */
	snprintf(path, sizeof(path), "%s/state.json.d/applied-3", dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(segd_state_load(&f), 0);
	assert_int_equal(f.napplied, 2);
	assert_string_equal(f.applied[0].name, "a.yaml");
	assert_string_equal(f.applied[1].name, "c.yaml");
	assert_string_equal(f.applied[1].content, "c: 1\n");
	segd_state_free(&d);
	segd_state_free(&e);
	segd_state_free(&f);
	state_rm(dir);
}

/* An index in the earlier single-file form (the texts inline) loads; the
 * next save writes its texts as items and the index without them. */
static void test_state_file_inline_form(void **state)
{
	struct segd d = {}, e = {};
	char dir[] = "/tmp/sgsr-state-test.XXXXXX";
	json_t *j;
	FILE *fp;

	state_at(&d, dir);
	memcpy(e.state_path, d.state_path, sizeof(e.state_path));
	fp = fopen(d.state_path, "w");
	assert_non_null(fp);
	fputs("{\"applied\": [{\"name\": \"/p/np.yaml\", \"content\": \"kind: List\\nitems: []\\n\"}],"
	      " \"cni\": []}\n",
	      fp);
	fclose(fp);
	assert_int_equal(segd_state_load(&d), 0);
	assert_int_equal(d.napplied, 1);
	assert_string_equal(d.applied[0].content, "kind: List\nitems: []\n");
	assert_int_equal(d.applied[0].item, 0);
	assert_int_equal(segd_state_save(&d), 0);
	items_are(dir, "applied-1\n");
	j = json_load_file(d.state_path, 0, NULL);
	assert_non_null(j);
	assert_null(json_object_get(json_array_get(json_object_get(j, "applied"), 0), "content"));
	json_decref(j);
	assert_int_equal(segd_state_load(&e), 0);
	assert_string_equal(e.applied[0].content, "kind: List\nitems: []\n");
	segd_state_free(&d);
	segd_state_free(&e);
	state_rm(dir);
}


#define NP(name, rule)                                                                       \
	"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: " name \
	", namespace: x}\nspec:\n  podSelector: {}\n" rule
#define NP_1RULE "  ingress:\n  - from: [{podSelector: {}}]\n"
#define NP_3RULES "  ingress:\n  - from: [{podSelector: {}}, {namespaceSelector: {}}]\n  - {}\n"

/* The limits (--max-policies, --max-rules, --max-pods) count across the
 * sources; the text scan refuses before parsing, naming file:line; what it
 * cannot see (an alias) or does not count (rules) is refused while parsing,
 * naming file:line:col; comment lines and JSON quotes are understood. */
static void test_limits(void **state)
{
	struct segd d = { .o = { .max_policies = 3, .max_rules = 5, .max_pods = 1 } };
	struct seg_manifests *m = NULL;
	struct seg_diag diag = {};

	applied_add(&d, "a.yaml", NP("p1", NP_1RULE) "# kind: NetworkPolicy\n" NP("p2", NP_1RULE));
	applied_add(&d, "b.json",
		    "{\"apiVersion\": \"networking.k8s.io/v1\", \"kind\" : \"NetworkPolicy\", "
		    "\"metadata\": {\"name\": \"p3\", \"namespace\": \"x\"}, \"spec\": "
		    "{\"podSelector\": {}}}");
	assert_int_equal(segd_manifests_build(&d, &m, &diag), 0);
	assert_int_equal(m->npols, 3);
	seg_manifests_free(m);
	m = NULL;

	/* a fourth policy, in a third source: refused by the text scan at its line */
	applied_add(&d, "c.yaml", "# one more\n" NP("p4", ""));
	assert_int_equal(segd_manifests_build(&d, &m, &diag), -E2BIG);
	assert_null(m);
	assert_non_null(strstr(diag.msg, "c.yaml:4: NetworkPolicy: more than 3 NetworkPolicies"));
	assert_non_null(strstr(diag.msg, "max-policies"));

	/* an alias hides the kind from the scan: counted while parsing */
	applied_text(&d, 2,
		     "apiVersion: v1\nkind: List\nitems:\n"
		     "- apiVersion: networking.k8s.io/v1\n  kind: &k NetworkPolicy\n"
		     "  metadata: {name: p4, namespace: x}\n  spec: {podSelector: {}}\n"
		     "- apiVersion: networking.k8s.io/v1\n  kind: *k\n"
		     "  metadata: {name: p5, namespace: x}\n  spec: {podSelector: {}}\n");
	assert_int_equal(segd_manifests_build(&d, &m, &diag), -E2BIG);
	assert_non_null(strstr(diag.msg, "c.yaml:4:"));
	assert_non_null(strstr(diag.msg, "NetworkPolicy x/p4: more than 3 NetworkPolicies"));

	/* rules: p1, p2 take 1 each; 3 more pass the 5, 4 more do not */
	d.o.max_policies = 0;
	applied_text(&d, 2, NP("p4", NP_3RULES));
	assert_int_equal(segd_manifests_build(&d, &m, &diag), 0);
	seg_manifests_free(m);
	m = NULL;
	applied_text(&d, 2, NP("p4", NP_3RULES "  - {}\n"));
	assert_int_equal(segd_manifests_build(&d, &m, &diag), -E2BIG);
	assert_non_null(strstr(diag.msg, "c.yaml:2:"));
	assert_non_null(strstr(diag.msg, "more than 5 rules"));

	/* pods: the second is refused by the scan */
	d.o.max_rules = 0;
	applied_text(&d, 2, pods_yaml);
	assert_int_equal(segd_manifests_build(&d, &m, &diag), -E2BIG);
	assert_non_null(strstr(diag.msg, "c.yaml:7: Pod: more than 1 Pods (limit max-pods)"));

	/* no limits: everything loads */
	d.o.max_pods = 0;
	assert_int_equal(segd_manifests_build(&d, &m, &diag), 0);
	assert_int_equal(m->npods, 2);
	seg_manifests_free(m);
	segd_state_free(&d);
}

/* ---- the parse cache: a cached build equals a full parse --------------------- */

static void dump_sel(FILE *f, const struct seg_selector *s)
{
	fprintf(f, "{");
	for (size_t i = 0; i < s->match.n; i++)
		fprintf(f, "%s=%s,", s->match.v[i].key, s->match.v[i].val);
	for (size_t i = 0; i < s->nexprs; i++) {
		fprintf(f, "%s op%d[", s->exprs[i].key, (int)s->exprs[i].op);
		for (size_t j = 0; j < s->exprs[i].nvalues; j++)
			fprintf(f, "%s,", s->exprs[i].values[j]);
		fprintf(f, "]");
	}
	fprintf(f, "}");
}

static void dump_labels(FILE *f, const struct seg_labels *l)
{
	for (size_t i = 0; i < l->n; i++)
		fprintf(f, "%s=%s,", l->v[i].key, l->v[i].val);
}

static void dump_loc(FILE *f, const struct seg_src_loc *loc)
{
	fprintf(f, " @%s:%d:%d\n", loc->file, loc->line, loc->col);
}

/* Every field of every object, as text. */
static char *dump(const struct seg_manifests *m)
{
	char *buf = NULL, a[64];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	for (size_t i = 0; i < m->nfiles; i++)
		fprintf(f, "file %s\n", m->files[i]);
	for (size_t i = 0; i < m->nnss; i++) {
		const struct seg_namespace *ns = &m->nss[i];

		fprintf(f, "ns %s enf %d impl %d ", ns->name, ns->enforcement, ns->implicit);
		dump_labels(f, &ns->labels);
		dump_loc(f, &ns->loc);
	}
	for (size_t i = 0; i < m->npods; i++) {
		const struct seg_pod *p = &m->pods[i];

		fprintf(f, "pod %s/%s ", p->ns, p->name);
		dump_labels(f, &p->labels);
		for (size_t k = 0; k < p->naddrs; k++)
			fprintf(f, " %s", seg_addr_str(&p->addrs[k], a, sizeof(a)));
		for (size_t k = 0; k < p->nports; k++)
			fprintf(f, " %s:%u/%u", p->ports[k].name ?: "-", p->ports[k].port,
				p->ports[k].proto);
		dump_loc(f, &p->loc);
	}
	for (size_t i = 0; i < m->npols; i++) {
		const struct seg_netpol *np = &m->pols[i];

		fprintf(f, "np %s/%s ", np->ns, np->name);
		dump_sel(f, &np->pod_sel);
		for (int d = 0; d < SEG_DIR_MAX; d++) {
			fprintf(f, " dir%d:%d", d, np->types[d]);
			for (size_t r = 0; r < np->nrules[d]; r++) {
				const struct seg_rule *ru = &np->rules[d][r];

				fprintf(f, " rule(");
				for (size_t k = 0; k < ru->npeers; k++) {
					const struct seg_peer *pe = &ru->peers[k];

					fprintf(f, "peer%d ", (int)pe->kind);
					dump_sel(f, &pe->pod_sel);
					dump_sel(f, &pe->ns_sel);
					fprintf(f, " %s/%u",
						seg_addr_str(&pe->block.cidr, a, sizeof(a)),
						pe->block.plen);
					for (size_t e = 0; e < pe->block.nexcept; e++)
						fprintf(f, " -%s/%u",
							seg_addr_str(&pe->block.except[e], a,
								     sizeof(a)),
							pe->block.except_plen[e]);
				}
				for (size_t k = 0; k < ru->nports; k++)
					fprintf(f, " port %u %d %s %u-%u", ru->ports[k].proto,
						ru->ports[k].has_port, ru->ports[k].name ?: "-",
						ru->ports[k].port, ru->ports[k].end_port);
				fprintf(f, ")");
			}
		}
		dump_loc(f, &np->loc);
	}
	fclose(f);
	return buf;
}

/* The cached build and the reference agree: both fail with the same error,
 * or both give the same objects. Returns the cached build's manifests
 * (NULL on error) and its count of parsed items. */
static struct seg_manifests *same_as_full(struct segd *d, size_t *parsed)
{
	struct seg_manifests *a = NULL, *b = NULL;
	struct seg_diag da = {}, db = {};
	int ea = segd_manifests_build(d, &a, &da), eb = segd_manifests_build_full(d, &b, &db);
	size_t reused;

	segd_cache_stats(d, parsed, &reused);
	if (ea != eb || strcmp(da.msg, db.msg))
		fail_msg("cached: %d %s\nfull:   %d %s", ea, da.msg, eb, db.msg);
	if (!ea) {
		char *x = dump(a), *y = dump(b);

		assert_string_equal(x, y);
		free(x);
		free(y);
	} else {
		assert_null(a);
	}
	seg_manifests_free(b);
	return a;
}

static char tmpdir[64];

static void write_file(const char *name, const char *content)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static void remove_file(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	unlink(path);
}

static void rm_tmpdir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	assert_int_equal(system(cmd), 0);
}

static void applied_set(struct segd *d, const char *name, const char *content)
{
	for (size_t i = 0; i < d->napplied; i++)
		if (!strcmp(d->applied[i].name, name)) {
			applied_text(d, i, content);
			return;
		}
	applied_add(d, name, content);
}

static void applied_del(struct segd *d, const char *name)
{
	for (size_t i = 0; i < d->napplied; i++)
		if (!strcmp(d->applied[i].name, name)) {
			free(d->applied[i].name);
			free(d->applied[i].content);
			memmove(&d->applied[i], &d->applied[i + 1],
				(d->napplied - i - 1) * sizeof(d->applied[0]));
			d->napplied--;
			return;
		}
}

static void cni_del(struct segd *d, const char *cid)
{
	for (size_t i = 0; i < d->ncni; i++)
		if (!strcmp(d->cni[i].container_id, cid)) {
			segd_cni_pod_free(&d->cni[i]);
			memmove(&d->cni[i], &d->cni[i + 1], (d->ncni - i - 1) * sizeof(d->cni[0]));
			d->ncni--;
			return;
		}
}

#define POD(ns, name, app, ip)                                                           \
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: " name ", namespace: " ns      \
	", labels: {app: " app "}}\nspec: {containers: [{name: c, ports: [{name: http, " \
	"containerPort: 8080}]}]}\nstatus: {podIP: " ip "}\n"
#define NS(name, team)                                                                          \
	"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: " name ", labels: {team: " team \
	"}}\n"

/* Unchanged items are not parsed again; a changed one is, alone, also when
 * it keeps its size; a file that turns invalid fails as a full parse does
 * and the build after its repair parses only it. */
static void test_cache_parses_only_changes(void **state)
{
	struct segd d = { .o = { .max_policies = 100, .max_pods = 100, .max_rules = 100 } };
	struct seg_manifests *m, *old;
	size_t parsed;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sgsr-cache.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	d.o.manifests = tmpdir;
	write_file("a.yaml", NS("x", "t1") POD("x", "a", "a1", "10.0.0.2"));
	write_file("b.yaml", POD("x", "b", "b1", "10.0.0.3") NP("np", NP_1RULE));
	write_file("c.json", "{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": "
			     "{\"name\": \"noip\", \"namespace\": \"x\"}}");
	write_file(".hidden.yaml", "not: [read");
	write_file("notes.txt", "not: [read");
	applied_add(&d, "/p/ns-y.yaml", NS("y", "t2") POD("y", "c", "c1", "10.0.1.2"));
	cni(&d, "{\"container_id\": \"c1\", \"pod_namespace\": \"x\", \"pod_name\": \"noip\","
		" \"ips\": [\"10.0.0.9\"]}");
	cni(&d, "{\"container_id\": \"c2\", \"pod_namespace\": \"z\", \"pod_name\": \"made\","
		" \"ips\": [\"fd00::9\"]}");
	sleep(3); /* older than the racy window (RACY_NS in sources.c) */
	m = same_as_full(&d, &parsed);
	assert_int_equal(parsed, 5); /* 3 files, 1 applied, 1 made-up pod */
	addr_is(seg_manifests_pod(m, "x", "noip"), "10.0.0.9");
	old = m;

	m = same_as_full(&d, &parsed);
	assert_int_equal(parsed, 0);
	seg_manifests_free(m);

	/* one applied document changes: only it */
	applied_set(&d, "/p/ns-y.yaml", NS("y", "t3") POD("y", "c", "c1", "10.0.1.2"));
	m = same_as_full(&d, &parsed);
	assert_int_equal(parsed, 1);
	assert_string_equal(seg_labels_get(&seg_manifests_ns(m, "y")->labels, "team"), "t3");
	seg_manifests_free(m);

	/* a file rewritten with the same size: its ctime tells */
	write_file("b.yaml", POD("x", "b", "b2", "10.0.0.3") NP("np", NP_1RULE));
	m = same_as_full(&d, &parsed);
	assert_int_equal(parsed, 1);
	assert_string_equal(seg_labels_get(&seg_manifests_pod(m, "x", "b")->labels, "app"), "b2");
	seg_manifests_free(m);
	/* and again at once, same size: within the racy window it is read again */
	write_file("b.yaml", POD("x", "b", "b3", "10.0.0.3") NP("np", NP_1RULE));
	m = same_as_full(&d, &parsed);
	assert_string_equal(seg_labels_get(&seg_manifests_pod(m, "x", "b")->labels, "app"), "b3");
	seg_manifests_free(m);

	/* invalid, then repaired */
	write_file("a.yaml", NS("x", "t1") "---\nkind: Pod\nmetadata: {name: [a]}\n");
	assert_null(same_as_full(&d, &parsed));
	write_file("a.yaml", NS("x", "t1") POD("x", "a", "a2", "10.0.0.2"));
	m = same_as_full(&d, &parsed);
	assert_true(parsed <= 2); /* a.yaml, and b.yaml if still in its racy window */
	seg_manifests_free(m);

	/* the pod the CNI pod c2 made up appears in a file: it gets c2's address;
	 * the file goes: made up again */
	write_file("d.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: made, namespace: z}\n");
	m = same_as_full(&d, &parsed);
	addr_is(seg_manifests_pod(m, "z", "made"), "fd00::9");
	assert_int_equal(seg_manifests_pod(m, "z", "made")->labels.n, 0);
	seg_manifests_free(m);
	remove_file("d.yaml");
	seg_manifests_free(same_as_full(&d, &parsed));

	/* a duplicate across sources: the full parse's message */
	applied_set(&d, "/p/dup.yaml", POD("x", "a", "zz", "10.0.0.7"));
	assert_null(same_as_full(&d, &parsed));
	applied_del(&d, "/p/dup.yaml");
	/* a limit crossed by a part kept from before: refused as a full parse does */
	d.o.max_pods = 4;
	assert_null(same_as_full(&d, &parsed));
	d.o.max_pods = 100;
	d.o.max_rules = 0;

	/* the first build's manifests still read fine: they hold their parts */
	segd_state_free(&d);
	free(dump(old));
	assert_string_equal(seg_manifests_pod(old, "x", "a")->labels.v[0].val, "a1");
	seg_manifests_free(old);
	rm_tmpdir();
}

/* Hundreds of random changes to every source (files written, rewritten,
 * removed, some invalid, some duplicating others; applied documents;
 * CNI pods; limits), each build compared with a full parse. */
static const char *const docs[] = {
	NS("x", "t1"),
	NS("x", "t2"),
	POD("x", "a", "a1", "10.0.0.2") POD("x", "b", "b1", "10.0.0.3"),
	POD("x", "a", "a2", "10.0.0.2") POD("x", "b", "b1", "10.0.0.3"),
	POD("y", "c", "c1", "10.0.1.2"),
	POD("y", "c", "c2", "10.0.1.2"),
	"apiVersion: v1\nkind: Pod\nmetadata: {name: noip, namespace: x}\n",
	NP("np1", NP_1RULE),
	NP("np1", NP_3RULES),
	NP("np2", NP_3RULES) NP("np3", NP_1RULE),
	"apiVersion: v1\nkind: List\nitems:\n- apiVersion: networking.k8s.io/v1\n  kind: "
	"NetworkPolicy\n  metadata: {name: np4, namespace: y}\n  spec: {podSelector: {}}\n",
	"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n",
	"",
	"# kind: Pod\n" NS("z", "t9"),
	/* the last two are broken */
	"kind: Pod\nmetadata: {name: [broken]}\n",
	"not: [closed\n",
};
#define NDOCS (sizeof(docs) / sizeof(docs[0]))

static unsigned int rnd(unsigned int *s, unsigned int n)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 16) % n;
}

/* A document; one in 12 is broken. */
static const char *doc(unsigned int *s)
{
	return rnd(s, 12) ? docs[rnd(s, NDOCS - 2)] : docs[NDOCS - 2 + rnd(s, 2)];
}

static void test_cache_equals_full_random(void **state)
{
	static const char *const files[] = { "f0.yaml", "f1.yaml", "f2.yml", "f3.json", "f4.yaml" };
	static const char *const names[] = { "/a/0.yaml", "/a/1.yaml", "/a/2.yml" };
	static const char *const cpods[][2] = {
		{ "x", "noip" }, { "x", "a" }, { "y", "new" }, { "z", "q" }
	};
	struct segd d = {};
	struct seg_manifests *prev = NULL;
	unsigned int seed = 42, ok = 0;
	size_t parsed;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sgsr-cache.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	d.o.manifests = tmpdir;
	for (int step = 0; step < 400; step++) {
		unsigned int op = rnd(&seed, 10), k;
		struct seg_manifests *m;
		char json[256], cid[8];

		switch (op) {
		case 0:
		case 1: /* write a file */
			k = rnd(&seed, 5);
			write_file(files[k], k == 3 ? "{\"kind\": \"ConfigMap\"}" : doc(&seed));
			break;
		case 2:
		case 3:
			remove_file(files[rnd(&seed, 5)]);
			break;
		case 4:
			applied_set(&d, names[rnd(&seed, 3)], doc(&seed));
			break;
		case 5:
		case 6:
			applied_del(&d, names[rnd(&seed, 3)]);
			break;
		case 7:
			k = rnd(&seed, 4);
			snprintf(cid, sizeof(cid), "c%u", rnd(&seed, 6));
			snprintf(json, sizeof(json),
				 "{\"container_id\": \"%s\", \"pod_namespace\": \"%s\", "
				 "\"pod_name\": \"%s\", \"ips\": [\"10.9.0.%u\"]}",
				 cid, cpods[k][0], cpods[k][1], rnd(&seed, 3));
			cni_del(&d, cid); /* a new ADD replaces an old one */
			cni(&d, json);
			break;
		case 8:
			snprintf(cid, sizeof(cid), "c%u", rnd(&seed, 6));
			cni_del(&d, cid);
			break;
		default:
			d.o.max_policies = rnd(&seed, 6) ? 0 : 1 + rnd(&seed, 5);
			d.o.max_pods = rnd(&seed, 6) ? 0 : 1 + rnd(&seed, 6);
			d.o.max_rules = rnd(&seed, 6) ? 0 : 1 + rnd(&seed, 8);
		}
		m = same_as_full(&d, &parsed);
		ok += m != NULL;
		seg_manifests_free(prev); /* after the next build: parts outlive */
		prev = m;
	}
	if (ok < 100) /* builds that succeed, of 400 */
		fail_msg("only %u builds succeeded", ok);
	seg_manifests_free(prev);
	segd_state_free(&d);
	rm_tmpdir();
}

/* Parts put together: the first duplicate of the batch (namespaces, then
 * pods, then policies) is named, and the merged object is left as it was. */
static void test_append_duplicate_leaves_it(void **state)
{
	struct seg_manifests *all = seg_manifests_new(), *p[3];
	struct seg_manifest_counts before = {}, scanned;
	struct seg_diag diag = {};
	const char *const text[3] = { NS("x", "t") POD("x", "a", "a", "10.0.0.2"),
				      POD("x", "b", "b", "10.0.0.3") POD("x", "c", "c", "10.0.0.4"),
				      NS("w", "t") POD("x", "a", "a", "10.0.0.5") };

	for (int i = 0; i < 3; i++) {
		char name[16];

		snprintf(name, sizeof(name), "p%d.yaml", i);
		p[i] = seg_manifests_new();
		assert_int_equal(seg_manifests_load_buf_part(p[i], name, text[i], strlen(text[i]),
							     NULL, &before, &scanned, &diag),
				 0);
	}
	assert_int_equal(seg_manifests_append(all, p, 1, &diag), 0);
	/* p2 repeats pod x/a: found after namespace w and pods b, c went in */
	assert_int_equal(seg_manifests_append(all, p + 1, 2, &diag), -EINVAL);
	assert_non_null(strstr(diag.msg, "p2.yaml:"));
	assert_non_null(strstr(diag.msg, "Pod x/a: metadata.name: duplicate name"));
	assert_int_equal(all->nnss, 1);
	assert_int_equal(all->npods, 1);
	assert_null(seg_manifests_ns(all, "w"));
	assert_null(seg_manifests_pod(all, "x", "b"));
	assert_null(seg_manifests_pod(all, "x", "c"));
	assert_non_null(seg_manifests_pod(all, "x", "a"));
	assert_int_equal(seg_manifests_append(all, p + 1, 1, &diag), 0);
	assert_int_equal(all->npods, 3);
	assert_int_equal(all->nfiles, 2);
	for (int i = 0; i < 3; i++)
		seg_manifests_free(p[i]); /* all holds p[0] and p[1] */
	assert_string_equal(seg_manifests_pod(all, "x", "c")->labels.v[0].val, "c");
	assert_string_equal(seg_manifests_ns(all, "x")->name, "x");
	seg_manifests_free(all);
}

/* The state file holds any text: quotes, backslashes, control characters
 * and UTF-8 come back as they were. */
static void test_state_file_escapes(void **state)
{
	struct segd d = {}, e = {};
	char dir[] = "/tmp/sgsr-state-test.XXXXXX";
	const char *text = "a: \"q\" \\ b\n\tc\r\x01\x1f caf\xc3\xa9 \xe2\x82\xac";

	state_at(&d, dir);
	memcpy(e.state_path, d.state_path, sizeof(e.state_path));
	applied_add(&d, "/p/\"odd\" name.yaml", text);
	applied_add(&d, "/p/two.yaml", "");
	assert_int_equal(segd_state_save(&d), 0);
	assert_int_equal(segd_state_load(&e), 0);
	assert_int_equal(e.napplied, 2);
	assert_string_equal(e.applied[0].name, "/p/\"odd\" name.yaml");
	assert_string_equal(e.applied[0].content, text);
	assert_string_equal(e.applied[1].content, "");
	segd_state_free(&d);
	segd_state_free(&e);
	state_rm(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cni_pods_give_addresses_or_become_pods),
		cmocka_unit_test(test_bad_source_fails_with_location),
		cmocka_unit_test(test_cni_args_refused),
		cmocka_unit_test(test_state_file_round_trip),
		cmocka_unit_test(test_state_items),
		cmocka_unit_test(test_state_file_inline_form),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_cache_parses_only_changes),
		cmocka_unit_test(test_cache_equals_full_random),
		cmocka_unit_test(test_append_duplicate_leaves_it),
		cmocka_unit_test(test_state_file_escapes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
