// SPDX-License-Identifier: GPL-2.0-only
/*
 * Where segd's desired state comes from: label sources (Namespaces, Pods,
 * NetworkPolicies) behind one interface, and the state file that keeps
 * what was applied over the socket and the pods the CNI plugin registered,
 * so that a restarted segd wants the same state.
 *
 * State file (JSON, written atomically with rename):
 *   {"applied": [{"name": "/x/np.yaml", "content": "..."}],
 *    "cni": [{"container_id": "...", "netns": "...", "ifname": "eth0",
 *             "pod_namespace": "default", "pod_name": "a", "ips": ["10.0.0.2"]}]}
 */
#include "segd.h"

#include "addr.h"
#include "log.h"
#include "policy/limits.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int segd_parse_addr(const char *s, struct in6_addr *a)
{
	char buf[INET6_ADDRSTRLEN + 8];
	size_t n = strcspn(s, "/");

	if (n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return seg_addr_parse(buf, a) ? -EINVAL : 0;
}

/* ---- sources ----------------------------------------------------------------- */

/* Every source loads under the same limits, counted over all of them. */
static struct seg_manifest_limits limits_of(const struct segd *d)
{
	return (struct seg_manifest_limits){
		.max_policies = d->o.max_policies,
		.max_pods = d->o.max_pods,
		.max_rules = d->o.max_rules,
	};
}

static int load_dir(struct segd *d, struct seg_manifests *m, struct seg_diag *diag)
{
	if (!d->o.manifests)
		return 0;
	if (access(d->o.manifests, F_OK) && errno == ENOENT)
		return 0; /* not made yet: nothing wanted from it */
	struct seg_manifest_limits l = limits_of(d);

	return seg_manifests_load_path_limited(m, d->o.manifests, &l, diag);
}

static int load_applied(struct segd *d, struct seg_manifests *m, struct seg_diag *diag)
{
	struct seg_manifest_limits l = limits_of(d);

	for (size_t i = 0; i < d->napplied; i++) {
		const struct segd_applied *a = &d->applied[i];
		int err = seg_manifests_load_buf_limited(m, a->name, a->content, strlen(a->content),
							 &l, diag);

		if (err)
			return err;
	}
	return 0;
}

static struct seg_pod *pod_find(struct seg_manifests *m, const char *ns, const char *name)
{
	for (size_t i = 0; i < m->npods; i++)
		if (!strcmp(m->pods[i].ns, ns) && !strcmp(m->pods[i].name, name))
			return &m->pods[i];
	return NULL;
}

/* A CNI pod gives addresses to its Pod object; one without a Pod object
 * anywhere becomes a Pod with no labels (still isolated by policies that
 * select every pod of its namespace). */
static int load_cni(struct segd *d, struct seg_manifests *m, struct seg_diag *diag)
{
	struct seg_manifest_limits l = limits_of(d);

	for (size_t i = 0; i < d->ncni; i++) {
		const struct segd_cni_pod *p = &d->cni[i];
		struct seg_pod *pod = pod_find(m, p->ns, p->name);
		char *buf = NULL, name[64];
		char ips[SEG_POD_MAX_ADDRS * 56] = "";
		size_t off = 0;
		int err, len;

		if (pod) {
			if (pod->naddrs)
				continue;
			pod->naddrs = p->naddrs;
			memcpy(pod->addrs, p->addrs, p->naddrs * sizeof(p->addrs[0]));
			continue;
		}
		for (size_t k = 0; k < p->naddrs; k++) {
			char a[INET6_ADDRSTRLEN];

			seg_addr_str(&p->addrs[k], a, sizeof(a));
			off += snprintf(ips + off, sizeof(ips) - off, "%s{ip: \"%s\"}",
					k ? ", " : "", a);
		}
		len = asprintf(&buf,
			       "apiVersion: v1\nkind: Pod\nmetadata:\n  namespace: \"%s\"\n"
			       "  name: \"%s\"\nstatus:\n  podIPs: [%s]\n",
			       p->ns, p->name, ips);
		if (len < 0)
			return -ENOMEM;
		snprintf(name, sizeof(name), "cni:%.40s", p->container_id);
		err = seg_manifests_load_buf_limited(m, name, buf, len, &l, diag);
		free(buf);
		if (err)
			return err;
	}
	return 0;
}

const struct segd_source segd_sources[] = {
	{ "manifests", load_dir },
	{ "applied", load_applied },
	{ "cni", load_cni },
	{ NULL, NULL },
};

int segd_manifests_build(struct segd *d, struct seg_manifests **out, struct seg_diag *diag)
{
	struct seg_manifests *m = seg_manifests_new();
	int err = 0;

	if (!m)
		return -ENOMEM;
	for (const struct segd_source *s = segd_sources; s->name; s++) {
		err = s->load(d, m, diag);
		if (err) {
			seg_manifests_free(m);
			return err;
		}
	}
	*out = m;
	return 0;
}

/* ---- state file ----------------------------------------------------------------- */

void segd_cni_pod_free(struct segd_cni_pod *p)
{
	free(p->container_id);
	free(p->netns);
	free(p->ifname);
	free(p->ns);
	free(p->name);
}

void segd_state_free(struct segd *d)
{
	for (size_t i = 0; i < d->napplied; i++) {
		free(d->applied[i].name);
		free(d->applied[i].content);
	}
	free(d->applied);
	d->applied = NULL;
	d->napplied = 0;
	for (size_t i = 0; i < d->ncni; i++)
		segd_cni_pod_free(&d->cni[i]);
	free(d->cni);
	d->cni = NULL;
	d->ncni = 0;
}

static json_t *cni_pod_json(const struct segd_cni_pod *p)
{
	json_t *ips = json_array();

	for (size_t k = 0; k < p->naddrs; k++) {
		char a[INET6_ADDRSTRLEN];

		seg_addr_str(&p->addrs[k], a, sizeof(a));
		json_array_append_new(ips, json_string(a));
	}
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "container_id", p->container_id, "netns",
			 p->netns, "ifname", p->ifname, "pod_namespace", p->ns, "pod_name", p->name,
			 "ips", ips);
}

json_t *segd_cni_pod_json(const struct segd_cni_pod *p)
{
	return cni_pod_json(p);
}

/* Fills p from {container_id, netns, ifname, pod_namespace, pod_name, ips}. */
int segd_cni_pod_parse(json_t *j, struct segd_cni_pod *p, char *err, size_t errlen)
{
	const char *cid = NULL, *netns = "", *ifname = "eth0", *ns = NULL, *name = NULL;
	json_t *ips = NULL, *ip;
	json_error_t je;
	size_t i;

	memset(p, 0, sizeof(*p));
	if (json_unpack_ex(j, &je, 0, "{s:s, s?s, s?s, s:s, s:s, s?o}", "container_id", &cid,
			   "netns", &netns, "ifname", &ifname, "pod_namespace", &ns, "pod_name",
			   &name, "ips", &ips)) {
		snprintf(err, errlen, "bad arguments: %s", je.text);
		return -EINVAL;
	}
	json_array_foreach(ips, i, ip)
	{
		/* "10.0.0.2" or a CNI result's {"address": "10.0.0.2/24", ...} */
		const char *s = json_is_object(ip) ?
					json_string_value(json_object_get(ip, "address")) :
					json_string_value(ip);

		if (!s || p->naddrs == SEG_POD_MAX_ADDRS ||
		    segd_parse_addr(s, &p->addrs[p->naddrs])) {
			snprintf(err, errlen, "ips[%zu]: not an address (at most %d)", i,
				 SEG_POD_MAX_ADDRS);
			return -EINVAL;
		}
		p->naddrs++;
	}
	p->container_id = strdup(cid);
	p->netns = strdup(netns);
	p->ifname = strdup(ifname);
	p->ns = strdup(ns);
	p->name = strdup(name);
	if (!p->container_id || !p->netns || !p->ifname || !p->ns || !p->name) {
		segd_cni_pod_free(p);
		return -ENOMEM;
	}
	return 0;
}

int segd_state_save(const struct segd *d)
{
	json_t *root = json_object(), *ap = json_array(), *cni = json_array();
	char tmp[PATH_MAX + 8];
	int err = 0;

	for (size_t i = 0; i < d->napplied; i++)
		json_array_append_new(ap, json_pack("{s:s, s:s}", "name", d->applied[i].name,
						    "content", d->applied[i].content));
	for (size_t i = 0; i < d->ncni; i++)
		json_array_append_new(cni, cni_pod_json(&d->cni[i]));
	json_object_set_new(root, "applied", ap);
	json_object_set_new(root, "cni", cni);
	snprintf(tmp, sizeof(tmp), "%s.tmp", d->state_path);
	if (json_dump_file(root, tmp, JSON_INDENT(1) | JSON_SORT_KEYS)) {
		err = log_err(-EIO, "write state file %s", tmp);
		goto out;
	}
	if (rename(tmp, d->state_path))
		err = log_err(-errno, "rename %s to %s", tmp, d->state_path);
out:
	json_decref(root);
	return err;
}

int segd_state_load(struct segd *d)
{
	json_t *root, *ap, *cni, *it;
	json_error_t je;
	size_t i;
	int err = 0;

	if (access(d->state_path, F_OK) && errno == ENOENT)
		return 0;
	root = json_load_file(d->state_path, 0, &je);
	if (!root)
		return log_err(-EINVAL, "state file %s:%d: %s", d->state_path, je.line, je.text);
	ap = json_object_get(root, "applied");
	cni = json_object_get(root, "cni");
	d->applied = calloc(json_array_size(ap) + 1, sizeof(*d->applied));
	d->cni = calloc(json_array_size(cni) + 1, sizeof(*d->cni));
	if (!d->applied || !d->cni) {
		err = -ENOMEM;
		goto out;
	}
	json_array_foreach(ap, i, it)
	{
		const char *name = json_string_value(json_object_get(it, "name"));
		const char *content = json_string_value(json_object_get(it, "content"));

		if (!name || !content)
			continue;
		d->applied[d->napplied].name = strdup(name);
		d->applied[d->napplied].content = strdup(content);
		d->napplied++;
	}
	json_array_foreach(cni, i, it)
	{
		char msg[128];

		if (segd_cni_pod_parse(it, &d->cni[d->ncni], msg, sizeof(msg)))
			log_warn("state file %s: cni[%zu] skipped: %s", d->state_path, i, msg);
		else
			d->ncni++;
	}
	log_info("state file %s: %zu applied objects, %zu CNI pods", d->state_path, d->napplied,
		 d->ncni);
out:
	json_decref(root);
	return err;
}
