// SPDX-License-Identifier: GPL-2.0-only
/* segd's label sources and state file (sources.c), without a kernel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "addr.h"
#include "segd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static void test_cni_pods_give_addresses_or_become_pods(void **state)
{
	struct segd d = {};
	struct seg_manifests *m = NULL;
	struct seg_diag diag = {};

	d.applied = calloc(1, sizeof(*d.applied));
	d.applied[0].name = strdup("pods.yaml");
	d.applied[0].content = strdup(pods_yaml);
	d.napplied = 1;
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

	d.applied = calloc(1, sizeof(*d.applied));
	d.applied[0].name = strdup("bad.yaml");
	d.applied[0].content = strdup("apiVersion: v1\nkind: Pod\nmetadata: {name: [x]}\n");
	d.napplied = 1;
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

static void test_state_file_round_trip(void **state)
{
	struct segd d = {}, e = {};
	char path[] = "/tmp/segd-state-test.XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	snprintf(d.state_path, sizeof(d.state_path), "%s", path);
	snprintf(e.state_path, sizeof(e.state_path), "%s", path);
	d.applied = calloc(1, sizeof(*d.applied));
	d.applied[0].name = strdup("/p/np.yaml");
	d.applied[0].content = strdup("kind: List\nitems: []\n");
	d.napplied = 1;
	cni(&d,
	    "{\"container_id\": \"c1\", \"netns\": \"/run/netns/n1\", \"ifname\": \"net1\","
	    " \"pod_namespace\": \"x\", \"pod_name\": \"a\", \"ips\": [\"10.0.0.2\", \"fd00::2\"]}");
	assert_int_equal(segd_state_save(&d), 0);
	assert_int_equal(segd_state_load(&e), 0);
	assert_int_equal(e.napplied, 1);
	assert_string_equal(e.applied[0].name, "/p/np.yaml");
	assert_string_equal(e.applied[0].content, "kind: List\nitems: []\n");
	assert_int_equal(e.ncni, 1);
	assert_string_equal(e.cni[0].netns, "/run/netns/n1");
	assert_string_equal(e.cni[0].ifname, "net1");
	assert_int_equal(e.cni[0].naddrs, 2);
	assert_memory_equal(&e.cni[0].addrs[1], &d.cni[0].addrs[1], sizeof(struct in6_addr));
	segd_state_free(&d);
	segd_state_free(&e);
	unlink(path);
}

static void applied_add(struct segd *d, const char *name, const char *content)
{
	d->applied = realloc(d->applied, (d->napplied + 1) * sizeof(*d->applied));
	assert_non_null(d->applied);
	d->applied[d->napplied].name = strdup(name);
	d->applied[d->napplied].content = strdup(content);
	d->napplied++;
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
	free(d.applied[2].content);
	d.applied[2].content =
		strdup("apiVersion: v1\nkind: List\nitems:\n"
		       "- apiVersion: networking.k8s.io/v1\n  kind: &k NetworkPolicy\n"
		       "  metadata: {name: p4, namespace: x}\n  spec: {podSelector: {}}\n"
		       "- apiVersion: networking.k8s.io/v1\n  kind: *k\n"
		       "  metadata: {name: p5, namespace: x}\n  spec: {podSelector: {}}\n");
	assert_int_equal(segd_manifests_build(&d, &m, &diag), -E2BIG);
	assert_non_null(strstr(diag.msg, "c.yaml:4:"));
	assert_non_null(strstr(diag.msg, "NetworkPolicy x/p4: more than 3 NetworkPolicies"));

	/* rules: p1, p2 take 1 each; 3 more pass the 5, 4 more do not */
	d.o.max_policies = 0;
	free(d.applied[2].content);
	d.applied[2].content = strdup(NP("p4", NP_3RULES));
	assert_int_equal(segd_manifests_build(&d, &m, &diag), 0);
	seg_manifests_free(m);
	m = NULL;
	free(d.applied[2].content);
	d.applied[2].content = strdup(NP("p4", NP_3RULES "  - {}\n"));
	assert_int_equal(segd_manifests_build(&d, &m, &diag), -E2BIG);
	assert_non_null(strstr(diag.msg, "c.yaml:2:"));
	assert_non_null(strstr(diag.msg, "more than 5 rules"));

	/* pods: the second is refused by the scan */
	d.o.max_rules = 0;
	free(d.applied[2].content);
	d.applied[2].content = strdup(pods_yaml);
	assert_int_equal(segd_manifests_build(&d, &m, &diag), -E2BIG);
	assert_non_null(strstr(diag.msg, "c.yaml:7: Pod: more than 1 Pods (limit max-pods)"));

	/* no limits: everything loads */
	d.o.max_pods = 0;
	assert_int_equal(segd_manifests_build(&d, &m, &diag), 0);
	assert_int_equal(m->npods, 2);
	seg_manifests_free(m);
	segd_state_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cni_pods_give_addresses_or_become_pods),
		cmocka_unit_test(test_bad_source_fails_with_location),
		cmocka_unit_test(test_cni_args_refused),
		cmocka_unit_test(test_state_file_round_trip),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
