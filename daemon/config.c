// SPDX-License-Identifier: GPL-2.0-only
/*
 * segd's config file: a YAML mapping whose keys are segd's long option
 * names (pin-dir: /sys/fs/bpf/seg). It is turned into flags placed before
 * the command line's, so the one option table parses, checks and documents
 * both, and a flag given on the command line wins over the file.
 * true/false values are flags given or not.
 */
#include "segd.h"

#include "log.h"

#include <errno.h>
#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int push(char ***v, int *n, char *s)
{
	char **nv;

	if (!s)
		return -ENOMEM;
	nv = realloc(*v, (*n + 2) * sizeof(*nv));
	if (!nv) {
		free(s);
		return -ENOMEM;
	}
	nv[(*n)++] = s;
	nv[*n] = NULL;
	*v = nv;
	return 0;
}

static int add_pair(struct fy_node_pair *p, const char *path, char ***v, int *n)
{
	struct fy_node *k = fy_node_pair_key(p), *val = fy_node_pair_value(p);
	const char *ks, *vs;
	size_t kl, vl;
	char *s = NULL;

	if (!k || !val || !fy_node_is_scalar(k) || !fy_node_is_scalar(val)) {
		log_error("%s: %s: keys and values must be scalars (no lists or mappings)", path,
			  k && fy_node_is_scalar(k) ? fy_node_get_scalar0(k) : "?");
		return -EINVAL;
	}
	ks = fy_node_get_scalar(k, &kl);
	vs = fy_node_get_scalar(val, &vl);
	if ((kl == 6 && !strncmp(ks, "config", 6)))
		return 0;
	if (vl == 5 && !strncmp(vs, "false", 5))
		return 0;
	if (vl == 4 && !strncmp(vs, "true", 4)) {
		if (asprintf(&s, "--%.*s", (int)kl, ks) < 0)
			s = NULL;
	} else if (asprintf(&s, "--%.*s=%.*s", (int)kl, ks, (int)vl, vs) < 0) {
		s = NULL;
	}
	return push(v, n, s);
}

int segd_config_argv(const char *path, int argc, char **argv, int *out_argc, char ***out_argv)
{
	struct fy_document *doc = NULL;
	struct fy_node *root;
	struct fy_node_pair *p;
	void *it = NULL;
	char **v = NULL;
	int n = 0, err;

	err = push(&v, &n, strdup(argv[0]));
	if (err)
		goto out;
	if (access(path, R_OK)) {
		err = log_err(-errno, "config %s", path);
		goto out;
	}
	doc = fy_document_build_from_file(NULL, path);
	if (!doc) {
		err = log_err(-EINVAL, "config %s: cannot read or parse (YAML errors above)", path);
		goto out;
	}
	root = fy_document_root(doc);
	if (root && !fy_node_is_mapping(root)) {
		err = log_err(-EINVAL, "config %s: the top level must be a mapping", path);
		goto out;
	}
	while (root && (p = fy_node_mapping_iterate(root, &it))) {
		err = add_pair(p, path, &v, &n);
		if (err)
			goto out;
	}
	for (int i = 1; i < argc; i++) {
		err = push(&v, &n, strdup(argv[i]));
		if (err)
			goto out;
	}
	*out_argc = n;
	*out_argv = v;
	v = NULL;
out:
	if (v)
		segd_config_argv_free(n, v, 0);
	fy_document_destroy(doc);
	return err;
}

void segd_config_argv_free(int argc, char **argv, int orig_argc)
{
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
}
