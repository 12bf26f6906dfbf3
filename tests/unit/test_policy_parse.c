// SPDX-License-Identifier: GPL-2.0-only
/*
 * Manifest parsing: formats (multi-document YAML, JSON, kind: List),
 * defaults, and every validation error: each must name file:line:col and the
 * field path, and leave the manifests exactly as they were.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

#define NP_HEAD                                      \
	"apiVersion: networking.k8s.io/v1\n" /* 1 */ \
	"kind: NetworkPolicy\n" /* 2 */              \
	"metadata:\n" /* 3 */                        \
	"  name: p\n" /* 4 */                        \
	"  namespace: x\n" /* 5 */                   \
	"spec:\n" /* 6 */                            \
	"  podSelector: {}\n" /* 7 */

static struct seg_manifests *load_ok(const char *yaml)
{
	struct seg_manifests *m = seg_manifests_new();
	struct seg_diag d = {};

	assert_non_null(m);
	if (seg_manifests_load_buf(m, "t.yaml", yaml, strlen(yaml), &d))
		fail_msg("unexpected error: %s", d.msg);
	return m;
}

/* Fails to load, the message contains every needle, nothing was added. */
static void load_err(const char *name, const char *yaml, const char *where, const char *path,
		     const char *what)
{
	struct seg_manifests *m = seg_manifests_new();
	struct seg_diag d = {};
	int err;

	assert_non_null(m);
	err = seg_manifests_load_buf(m, name, yaml, strlen(yaml), &d);
	if (!err || !strstr(d.msg, where) || (path && !strstr(d.msg, path)) ||
	    (what && !strstr(d.msg, what)))
		fail_msg("want error at %s, %s, %s; got %d \"%s\"", where, path ? path : "-",
			 what ? what : "-", err, d.msg);
	assert_int_equal(err, -EINVAL);
	assert_int_equal(m->nnss + m->npods + m->npols, 0);
	seg_manifests_free(m);
}

static void test_multidoc_list_json(void **state)
{
	const char *yaml =
		"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n"
		"  labels: {team: red}\n"
		"---\n"
		"apiVersion: v1\nkind: List\nitems:\n"
		"- apiVersion: v1\n  kind: Pod\n  metadata: {name: a, namespace: x, labels: {app: web}}\n"
		"  spec:\n    containers:\n    - name: c\n      ports:\n"
		"      - {name: http, containerPort: 8080}\n"
		"      - {name: dns, containerPort: 53, protocol: UDP}\n"
		"  status:\n    podIP: 10.0.0.1\n    podIPs: [{ip: 10.0.0.1}, {ip: 'fd00::1'}]\n"
		"- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: ignored}\n"
		"---\n"
		"apiVersion: v1\nkind: Pod\nmetadata: {name: b}\n";
	const char *json =
		"{\"apiVersion\": \"networking.k8s.io/v1\", \"kind\": \"NetworkPolicy\","
		" \"metadata\": {\"name\": \"j\", \"namespace\": \"x\"},"
		" \"spec\": {\"podSelector\": {}, \"egress\": [{\"ports\": [{\"port\": 53,"
		" \"protocol\": \"UDP\"}, {\"port\": \"http\"}]}]}}";
	struct seg_manifests *m = load_ok(yaml);
	const struct seg_pod *a, *b;
	struct seg_diag d = {};

	assert_int_equal(m->nnss, 1);
	assert_string_equal(seg_labels_get(&m->nss[0].labels, "team"), "red");
	/* the API server's automatic namespace label */
	assert_string_equal(seg_labels_get(&m->nss[0].labels, SEG_LABEL_NS_NAME), "x");
	assert_int_equal(m->npods, 2);
	a = seg_manifests_pod(m, "x", "a");
	assert_non_null(a);
	assert_int_equal(a->naddrs, 2); /* podIP and podIPs deduplicated */
	assert_int_equal(a->nports, 2);
	assert_int_equal(seg_pod_named_port(a, "http", IPPROTO_TCP), 8080);
	assert_int_equal(seg_pod_named_port(a, "dns", IPPROTO_UDP), 53);
	assert_int_equal(seg_pod_named_port(a, "dns", IPPROTO_TCP), 0);
	b = seg_manifests_pod(m, "default", "b"); /* missing namespace: default */
	assert_non_null(b);
	assert_int_equal(b->naddrs, 0);

	assert_int_equal(seg_manifests_load_buf(m, "p.json", json, strlen(json), &d), 0);
	assert_int_equal(m->npols, 1);
	assert_int_equal(m->pols[0].nrules[SEG_DIR_EGRESS], 1);
	assert_int_equal(m->pols[0].rules[SEG_DIR_EGRESS][0].ports[0].port, 53);
	assert_int_equal(m->pols[0].rules[SEG_DIR_EGRESS][0].ports[0].proto, IPPROTO_UDP);
	assert_string_equal(m->pols[0].rules[SEG_DIR_EGRESS][0].ports[1].name, "http");
	assert_true(m->pols[0].types[SEG_DIR_INGRESS]);
	assert_true(m->pols[0].types[SEG_DIR_EGRESS]);
	seg_manifests_free(m);
}

static void test_policy_types(void **state)
{
	struct {
		const char *spec;
		bool in, eg;
	} cases[] = {
		{ "", true, false },
		{ "  egress: []\n", true, false }, /* no rules: not inferred */
		{ "  egress: [{}]\n", true, true },
		{ "  policyTypes: [Egress]\n", false, true },
		{ "  policyTypes: [Ingress]\n  egress: [{}]\n", true, false },
		{ "  policyTypes: [Ingress, Egress]\n", true, true },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[1024];
		struct seg_manifests *m;

		snprintf(buf, sizeof(buf), NP_HEAD "%s", cases[i].spec);
		m = load_ok(buf);
		assert_int_equal(m->pols[0].types[SEG_DIR_INGRESS], cases[i].in);
		assert_int_equal(m->pols[0].types[SEG_DIR_EGRESS], cases[i].eg);
		seg_manifests_free(m);
	}
}

static void test_ports_and_peers(void **state)
{
	struct seg_manifests *m =
		load_ok(NP_HEAD "  ingress:\n"
				"  - from:\n"
				"    - podSelector: {}\n"
				"      namespaceSelector: {matchLabels: {a: b}}\n"
				"    - ipBlock: {cidr: 10.1.2.3/16, except: [10.1.9.0/24, 10.1.4.0/24]}\n"
				"    ports:\n"
				"    - {port: 80, endPort: 90}\n"
				"    - {protocol: SCTP}\n"
				"    - {port: web, protocol: UDP}\n");
	const struct seg_rule *r = &m->pols[0].rules[SEG_DIR_INGRESS][0];

	assert_int_equal(r->npeers, 2);
	assert_int_equal(r->peers[0].kind, SEG_PEER_NS_PODS);
	assert_true(seg_selector_empty(&r->peers[0].pod_sel));
	assert_int_equal(r->peers[1].kind, SEG_PEER_IPBLOCK);
	/* host bits are cleared: 10.1.2.3/16 is 10.1.0.0/16 (v6 form /112) */
	assert_int_equal(r->peers[1].block.plen, 112);
	assert_int_equal(r->peers[1].block.cidr.s6_addr[14], 0);
	assert_int_equal(r->peers[1].block.cidr.s6_addr[13], 1);
	/* the compiler's canonical key: excepts sorted */
	assert_string_equal(r->peers[1].block.key, "10.1.0.0/112!10.1.4.0/120!10.1.9.0/120");
	assert_int_equal(r->nports, 3);
	assert_int_equal(r->ports[0].port, 80);
	assert_int_equal(r->ports[0].end_port, 90);
	assert_int_equal(r->ports[0].proto, IPPROTO_TCP); /* default */
	assert_false(r->ports[1].has_port);
	assert_int_equal(r->ports[1].proto, IPPROTO_SCTP);
	assert_string_equal(r->ports[2].name, "web");
	seg_manifests_free(m);
}

#define ING_PEER "  ingress:\n  - from:\n    - " /* the peer starts at 10:7 */
#define ING_PORT "  ingress:\n  - ports:\n    - " /* the port starts at 10:7 */

static void test_validation_errors(void **state)
{
	/* ipBlock */
	load_err("t.yaml", NP_HEAD ING_PEER "ipBlock: {cidr: 10.0.0.0/33}\n",
		 "t.yaml:10:23:", "NetworkPolicy x/p: spec.ingress[0].from[0].ipBlock.cidr",
		 "invalid CIDR");
	load_err("t.yaml", NP_HEAD ING_PEER "ipBlock: {cidr: nope}\n",
		 "t.yaml:10:23:", "spec.ingress[0].from[0].ipBlock.cidr", "invalid CIDR");
	load_err("t.yaml",
		 NP_HEAD ING_PEER "podSelector: {}\n    - ipBlock:\n        cidr: 10.0.0.0/8\n"
				  "        except: [10.0.0.0/16, 11.0.0.0/16]\n",
		 "t.yaml:13:31:", "spec.ingress[0].from[1].ipBlock.except[1]", "strict subset");
	load_err("t.yaml", NP_HEAD ING_PEER "ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8]}\n",
		 "t.yaml:10:44:", "ipBlock.except[0]", "strict subset");
	load_err("t.yaml", NP_HEAD ING_PEER "ipBlock: {cidr: '::/0', except: [10.0.0.0/8]}\n",
		 "t.yaml:10:40:", "ipBlock.except[0]", "strict subset");
	load_err("t.yaml", NP_HEAD ING_PEER "ipBlock: {except: [10.0.0.0/8]}\n",
		 "t.yaml:10:17:", "ipBlock.cidr", "required");
	/* peers */
	load_err("t.yaml", NP_HEAD ING_PEER "ipBlock: {cidr: 10.0.0.0/8}\n      podSelector: {}\n",
		 "t.yaml:10:7:", "spec.ingress[0].from[0]", "more than 1 peer type");
	load_err("t.yaml", NP_HEAD ING_PEER "{}\n", "t.yaml:9:5:", "spec.ingress[0].from[0]",
		 "must specify a peer");
	/* selectors */
	load_err(
		"t.yaml",
		NP_HEAD ING_PEER "podSelector:\n        matchExpressions:\n"
				 "        - {key: app, operator: Maybe, values: [a]}\n",
		"t.yaml:12:32:", "spec.ingress[0].from[0].podSelector.matchExpressions[0].operator",
		"not a valid selector operator");
	load_err("t.yaml",
		 NP_HEAD ING_PEER "podSelector:\n        matchExpressions:\n"
				  "        - {key: app, operator: In}\n",
		 "t.yaml:12:12:", "matchExpressions[0].values", "must be specified");
	load_err("t.yaml",
		 NP_HEAD ING_PEER "podSelector:\n        matchExpressions:\n"
				  "        - {key: app, operator: In, values: []}\n",
		 "t.yaml:12:36:", "matchExpressions[0].values", "must be specified");
	load_err("t.yaml",
		 NP_HEAD ING_PEER "podSelector:\n        matchExpressions:\n"
				  "        - {key: app, operator: Exists, values: [a]}\n",
		 "t.yaml:12:49:", "matchExpressions[0].values", "may not be specified");
	load_err("t.yaml",
		 NP_HEAD ING_PEER "namespaceSelector:\n        matchLabels: {'bad key!': x}\n",
		 "t.yaml:11:24:", "namespaceSelector.matchLabels.bad key!", "invalid label key");
	load_err("t.yaml", NP_HEAD ING_PEER "podSelector: {matchLabels: {app: 'a b'}}\n",
		 "t.yaml:10:41:", "podSelector.matchLabels.app", "invalid label value");
	/* ports */
	load_err("t.yaml", NP_HEAD ING_PORT "{port: 80, protocol: ICMP}\n",
		 "t.yaml:10:28:", "spec.ingress[0].ports[0].protocol",
		 "unsupported value \"ICMP\"");
	load_err("t.yaml", NP_HEAD ING_PORT "{endPort: 90}\n",
		 "t.yaml:10:17:", "spec.ingress[0].ports[0].endPort", "`port` is not specified");
	load_err("t.yaml", NP_HEAD ING_PORT "{port: 90, endPort: 80}\n",
		 "t.yaml:10:27:", "spec.ingress[0].ports[0].endPort", "greater than or equal");
	load_err("t.yaml", NP_HEAD ING_PORT "{port: http, endPort: 80}\n",
		 "t.yaml:10:29:", "spec.ingress[0].ports[0].endPort", "non-numeric");
	load_err("t.yaml", NP_HEAD ING_PORT "{port: 70000}\n",
		 "t.yaml:10:14:", "spec.ingress[0].ports[0].port", "between 1 and 65535");
	load_err("t.yaml", NP_HEAD ING_PORT "{port: 0}\n",
		 "t.yaml:10:14:", "spec.ingress[0].ports[0].port", "between 1 and 65535");
	load_err("t.yaml", NP_HEAD ING_PORT "{port: Not_A_Name}\n",
		 "t.yaml:10:14:", "spec.ingress[0].ports[0].port", "invalid port name");
	load_err("t.yaml", NP_HEAD ING_PORT "{port: '80'}\n",
		 "t.yaml:10:15:", "spec.ingress[0].ports[0].port",
		 "invalid port name"); /* a string */
	load_err("t.yaml", NP_HEAD ING_PORT "{port: 80, endPort: 65536}\n",
		 "t.yaml:10:27:", "spec.ingress[0].ports[0].endPort", "between 1 and 65535");
	/* egress side and policyTypes */
	load_err("t.yaml", NP_HEAD "  egress:\n  - to:\n    - ipBlock: {cidr: 1.2.3.4}\n",
		 "t.yaml:10:23:", "spec.egress[0].to[0].ipBlock.cidr", "invalid CIDR");
	load_err("t.yaml", NP_HEAD "  policyTypes: [Ingress, Sideways]\n",
		 "t.yaml:8:26:", "spec.policyTypes[1]", "unsupported value \"Sideways\"");
	load_err("t.yaml", NP_HEAD "  ingress: {from: []}\n", "t.yaml:8:13:", "spec.ingress",
		 "must be a list");
	/* objects */
	load_err("t.yaml",
		 "apiVersion: networking.k8s.io/v1beta1\nkind: NetworkPolicy\n"
		 "metadata: {name: p}\nspec: {}\n",
		 "t.yaml:1:13:", "apiVersion", "networking.k8s.io/v1");
	load_err("t.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {namespace: x}\n",
		 "t.yaml:3:12:", "metadata.name", "required");
	load_err("t.yaml",
		 "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nstatus: {podIP: 10.0.0.300}\n",
		 "t.yaml:4:17:", "Pod default/a: status.podIP", "invalid IP address");
	load_err("t.yaml",
		 "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n"
		 "  - ports: [{containerPort: 80, protocol: TCPX}]\n",
		 "t.yaml:6:43:", "spec.containers[0].ports[0].protocol", "unsupported value");
	load_err("t.yaml",
		 "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n  annotations:\n"
		 "    seg.io/enforcement: sometimes\n",
		 "t.yaml:6:25:", "metadata.annotations.seg.io/enforcement",
		 "\"audit\" or \"enforce\"");
	load_err("t.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: Upper}\n",
		 "t.yaml:3:18:", "metadata.name", "invalid name");
	/* kind: List items name their index */
	load_err("t.yaml",
		 "kind: List\nitems:\n- kind: Pod\n  apiVersion: v1\n  metadata: {name: a}\n"
		 "  status: {podIP: nope}\n",
		 "t.yaml:6:19:", "Pod default/a: status.podIP", "invalid IP");
	/* syntax errors come from libfyaml with their position */
	load_err("t.yaml", "kind: Pod\nmetadata: {name: a\n", "t.yaml:3:1:", NULL, "flow mapping");
	load_err("t.json", "{\"kind\": \"Pod\",, }", "t.json:1:16:", NULL, "trailing comma");
}

static void test_duplicates_atomic(void **state)
{
	const char *ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n";
	const char *pod_x = "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n";
	const char *two = "apiVersion: v1\nkind: Namespace\nmetadata: {name: y}\n---\n"
			  "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n";
	struct seg_manifests *m = load_ok(ns);
	struct seg_diag d = {};

	/* across calls: rejected, and y (valid, same batch) is not applied */
	assert_int_equal(seg_manifests_load_buf(m, "u.yaml", two, strlen(two), &d), -EINVAL);
	assert_non_null(strstr(d.msg, "u.yaml:5:1:"));
	assert_non_null(strstr(d.msg, "duplicate name"));
	assert_int_equal(m->nnss, 1);
	assert_null(seg_manifests_ns(m, "y"));
	/* within one batch */
	load_err("v.yaml",
		 "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\n"
		 "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: default}\n",
		 "v.yaml:5:1:", "Pod default/a", "duplicate name");
	/* same name, different namespace or kind: fine */
	assert_int_equal(seg_manifests_load_buf(m, "w.yaml", pod_x, strlen(pod_x), &d), 0);
	/* an error in a later file of a batch loses the earlier good one */
	assert_int_equal(seg_manifests_load_path(m, "/nonexistent/seg", &d), -ENOENT);
	assert_int_equal(m->npods, 1);
	seg_manifests_free(m);
}

static void test_audit_annotation(void **state)
{
	struct seg_manifests *m =
		load_ok("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n"
			"  annotations: {seg.io/enforcement: audit}\n---\n"
			"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: e\n"
			"  annotations: {seg.io/enforcement: enforce, other: whatever}\n---\n"
			"apiVersion: v1\nkind: Namespace\nmetadata: {name: d}\n");

	assert_int_equal(seg_manifests_ns(m, "a")->enforcement, SEG_ENF_AUDIT);
	assert_int_equal(seg_manifests_ns(m, "e")->enforcement, SEG_ENF_ENFORCE);
	assert_int_equal(seg_manifests_ns(m, "d")->enforcement, SEG_ENF_DEFAULT);
	seg_manifests_free(m);
}

static void test_finished_pods_and_anchors(void **state)
{
	struct seg_manifests *m =
		load_ok("apiVersion: v1\nkind: Pod\nmetadata: {name: old, namespace: x}\n"
			"status: {phase: Succeeded, podIP: 10.0.0.1}\n---\n"
			"apiVersion: v1\nkind: Pod\nmetadata: {name: hostnet, namespace: x}\n"
			"spec: {hostNetwork: true}\nstatus: {podIP: 192.168.0.1}\n---\n"
			"apiVersion: v1\nkind: Pod\nmetadata:\n  name: new\n  namespace: x\n"
			"  annotations: &l {app: web}\n  labels: *l\n"
			"status: {phase: Running, podIP: 10.0.0.1}\n");

	assert_int_equal(m->npods, 1);
	assert_non_null(seg_manifests_pod(m, "x", "new"));
	assert_string_equal(seg_labels_get(&m->pods[0].labels, "app"), "web");
	seg_manifests_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_multidoc_list_json),
		cmocka_unit_test(test_policy_types),
		cmocka_unit_test(test_ports_and_peers),
		cmocka_unit_test(test_validation_errors),
		cmocka_unit_test(test_duplicates_atomic),
		cmocka_unit_test(test_audit_annotation),
		cmocka_unit_test(test_finished_pods_and_anchors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
