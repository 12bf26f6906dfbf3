// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target: what the container runtime hands seg-cni (the pure half,
 * tools/cni/cni_conf.c): the CNI_* environment, CNI_ARGS, the network
 * configuration on stdin and its prevResult.
 *
 * Input: "NAME=VALUE" lines (the environment), an empty line, then stdin.
 * Without an empty line everything is stdin and CNI_COMMAND is ADD.
 * The target runs what seg-cni's main() runs before it talks to segd:
 * environment, configuration (for the parsed command), segd's request args,
 * VERSION's answer, and the error object. Invariants: an error has a CNI
 * code and a message and its JSON carries them; a success has a supported
 * cniVersion, and segd's args are JSON naming the container.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cni.h"

#define FZ_MAX_ENV 16

struct fz_env {
	char *name[FZ_MAX_ENV];
	char *val[FZ_MAX_ENV];
	int n;
};

static void check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_cni: invariant broken: %s\n", what);
		abort();
	}
}

static const char *fz_get(const char *name, void *ctx)
{
	const struct fz_env *env = ctx;

	for (int i = env->n - 1; i >= 0; i--) /* the last one wins, like setenv */
		if (!strcmp(env->name[i], name))
			return env->val[i];
	return NULL;
}

/* Splits the input; returns the offset of stdin. */
static size_t fz_env_split(const char *data, size_t size, struct fz_env *env)
{
	const char *end = memmem(data, size, "\n\n", 2);
	size_t off = 0;

	env->n = 0;
	if (!end) {
		env->name[0] = strdup("CNI_COMMAND");
		env->val[0] = strdup("ADD");
		env->n = 1;
		return 0;
	}
	while (off < (size_t)(end - data) && env->n < FZ_MAX_ENV) {
		const char *line = data + off;
		const char *nl = memchr(line, '\n', (size_t)(end - line) + 1);
		const char *eq = memchr(line, '=', (size_t)(nl - line));

		if (eq) {
			env->name[env->n] = strndup(line, (size_t)(eq - line));
			env->val[env->n] = strndup(eq + 1, (size_t)(nl - eq - 1));
			env->n++;
		}
		off = (size_t)(nl - data) + 1;
	}
	return (size_t)(end - data) + 2;
}

static bool utf8(const char *s)
{
	json_t *j = s ? json_string(s) : json_null();

	json_decref(j);
	return j != NULL;
}

static bool env_utf8(const struct cni_env *env)
{
	return utf8(env->container_id) && utf8(env->netns) && utf8(env->ifname) &&
	       utf8(env->args.pod_namespace) && utf8(env->args.pod_name) && utf8(env->args.pod_uid);
}

static void fz_check_error(const char *version, const struct cni_err *e)
{
	json_t *j = cni_error_json(version, e);

	check(e->code > 0 && e->msg[0], "an error has a code and a message");
	check(j && json_is_object(j), "the error is a JSON object");
	check(json_integer_value(json_object_get(j, "code")) == e->code, "the error's code");
	check(json_is_string(json_object_get(j, "msg")), "the error's msg");
	check(cni_version_supported(json_string_value(json_object_get(j, "cniVersion"))),
	      "the error names a supported version");
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_env fe;
	struct cni_env env;
	struct cni_conf c;
	struct cni_err e = { 0 };
	json_t *root = NULL, *args, *ver;
	size_t in = fz_env_split((const char *)data, size, &fe);
	int err;

	err = cni_env_parse(fz_get, &fe, &env, &e);
	if (err) {
		fz_check_error(NULL, &e);
		goto out;
	}
	err = cni_conf_parse((const char *)data + in, size - in, env.cmd, &root, &c, &e);
	if (err) {
		check(!root, "no root on failure");
		fz_check_error(NULL, &e);
		goto out;
	}
	check(root && c.cni_version, "a parsed configuration has a cniVersion");
	if (env.cmd == CNI_CMD_VERSION) {
		ver = cni_version_json(c.cni_version);
		check(ver && json_is_array(json_object_get(ver, "supportedVersions")),
		      "VERSION lists versions");
		json_decref(ver);
		goto out;
	}
	check(cni_version_supported(c.cni_version), "a parsed configuration's version is ours");
	if (env.cmd == CNI_CMD_ADD)
		check(c.prev_result != NULL, "ADD has a prevResult");
	if (env.cmd == CNI_CMD_ADD || env.cmd == CNI_CMD_DEL || env.cmd == CNI_CMD_CHECK) {
		char *dump;

		args = cni_segd_args(&env, &c);
		if (!args) {
			/* jansson refuses non-UTF-8 names; seg-cni says "out of memory" */
			check(!env_utf8(&env), "segd args are built from UTF-8 names");
			goto out;
		}
		check(json_is_object(args), "segd args are an object");
		dump = json_dumps(args, JSON_COMPACT);
		check(dump != NULL, "segd args serialise");
		free(dump);
		json_decref(args);
	}
	/* An error after a good parse (segd refused) carries the conf's version. */
	cni_errorf(&e, CNI_ERR_OTHER, "details", "segd refused %s", env.command);
	fz_check_error(c.cni_version, &e);
out:
	json_decref(root);
	for (int i = 0; i < fe.n; i++) {
		free(fe.name[i]);
		free(fe.val[i]);
	}
	return 0;
}
