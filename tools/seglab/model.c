// SPDX-License-Identifier: GPL-2.0-only
/*
 * seglab-model: reads a seglab MODEL (Namespace and Pod manifests: YAML,
 * JSON, `kind: List`, files or directories) with lib/policy, the parser segd
 * uses, and prints what seglab needs as one JSON object:
 *
 *   {"namespaces": ["x", ...],
 *    "pods": [{"namespace": "x", "name": "a", "ips": ["10.1.0.1", "fd00:1::1"],
 *              "ports": [80, 81]}, ...]}
 *
 * "ports" are the distinct containerPort numbers of any protocol (seglab
 * serves each on TCP, UDP and SCTP). Errors name file:line:column.
 */
#include "addr.h"
#include "log.h"
#include "policy/policy.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
	"Usage: seglab-model MODEL...\n"
	"Prints the Namespaces and Pods of the manifests in MODEL (files or\n"
	"directories) as JSON for seglab. Exit 0 ok, 1 bad manifest, 2 usage.\n";

static json_t *pod_json(const struct seg_pod *p)
{
	json_t *ips = json_array(), *ports = json_array();
	char buf[INET6_ADDRSTRLEN];

	for (size_t i = 0; i < p->naddrs; i++)
		json_array_append_new(ips,
				      json_string(seg_addr_str(&p->addrs[i], buf, sizeof(buf))));
	for (size_t i = 0; i < p->nports; i++) {
		bool seen = false;

		for (size_t j = 0; j < i; j++)
			seen |= p->ports[j].port == p->ports[i].port;
		if (!seen)
			json_array_append_new(ports, json_integer(p->ports[i].port));
	}
	return json_pack("{s:s, s:s, s:o, s:o}", "namespace", p->ns, "name", p->name, "ips", ips,
			 "ports", ports);
}

int main(int argc, char **argv)
{
	struct seg_manifests *m;
	struct seg_diag d = { 0 };
	json_t *out, *nss, *pods;
	int rc = 1;

	log_init(argv[0], LOG_LVL_WARN);
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	m = seg_manifests_new();
	if (!m)
		return 1;
	for (int i = 1; i < argc; i++) {
		if (seg_manifests_load_path(m, argv[i], &d)) {
			log_error("%s", d.msg);
			goto out;
		}
	}
	nss = json_array();
	pods = json_array();
	for (size_t i = 0; i < m->nnss; i++)
		json_array_append_new(nss, json_string(m->nss[i].name));
	for (size_t i = 0; i < m->npods; i++)
		json_array_append_new(pods, pod_json(&m->pods[i]));
	out = json_pack("{s:o, s:o}", "namespaces", nss, "pods", pods);
	if (out && !json_dumpf(out, stdout, JSON_COMPACT)) {
		fputc('\n', stdout);
		rc = 0;
	}
	json_decref(out);
out:
	seg_manifests_free(m);
	return rc;
}
