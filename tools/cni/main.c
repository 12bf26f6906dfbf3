// SPDX-License-Identifier: GPL-2.0-only
/*
 * seg-cni: registers a pod with segd and returns only when the pod's policy
 * is in the maps. Chained after the plugin that makes the interface; passes
 * its result on unchanged. See tools/cni/README.md.
 */
#include "cni.h"
#include "ctl.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CNI_STDIN_MAX (4u << 20)

static const char help_text[] =
	"Usage: seg-cni          (run by a container runtime: CNI_* env, config on stdin)\n"
	"       seg-cni --help | --version\n"
	"\n"
	"seg's chained CNI plugin (CNI spec 0.3.0 to 1.1.0). Put it after the plugin\n"
	"that creates the pod's interface (ptp, bridge, macvlan, ovs ...) in a conflist:\n"
	"\n"
	"  {\"type\": \"seg-cni\", \"socket\": \"/run/seg/segd.sock\", \"timeoutMs\": 10000}\n"
	"\n"
	"  socket     segd's control socket (default /run/seg/segd.sock)\n"
	"  timeoutMs  how long one call to segd may take (default 10000, 1-600000)\n"
	"\n"
	"COMMANDS (CNI_COMMAND)\n"
	"  ADD      hands segd the pod (CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME,\n"
	"           K8S_POD_NAMESPACE and K8S_POD_NAME from CNI_ARGS, prevResult's\n"
	"           interfaces and ips); returns once segd has the pod's endpoint and\n"
	"           policy in the maps, and prints prevResult unchanged\n"
	"  DEL      tells segd the pod is gone; succeeds if segd, the netns or the pod\n"
	"           is already gone\n"
	"  CHECK    asks segd whether the pod is enforced as it should be\n"
	"  STATUS   whether segd answers (error 50 if not)\n"
	"  VERSION  the spec versions this plugin speaks\n"
	"  GC       nothing to do: segd reconciles the endpoints itself\n"
	"\n"
	"ERRORS\n"
	"  A CNI error object on stdout, exit status 1: code 1 unsupported cniVersion,\n"
	"  4 bad CNI_* environment or CNI_ARGS, 6 stdin not JSON, 7 bad configuration or\n"
	"  prevResult, 11 segd not reachable or too slow (try again later), 50 STATUS:\n"
	"  segd not available, 999 segd refused the pod (its message in msg).\n";

static const char *env_get(const char *name, void *ctx)
{
	return getenv(name);
}

static int read_stdin(char **out, size_t *outlen, struct cni_err *e)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);

	while (buf) {
		size_t n;

		if (len == cap) {
			char *nb = cap >= CNI_STDIN_MAX ? NULL : realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				return cni_errorf(
					e, CNI_ERR_IO, NULL,
					"network configuration: more than %u bytes on stdin",
					CNI_STDIN_MAX);
			}
			buf = nb;
			cap *= 2;
		}
		n = fread(buf + len, 1, cap - len, stdin);
		len += n;
		if (n == 0) {
			if (ferror(stdin)) {
				free(buf);
				return cni_errorf(e, CNI_ERR_IO, strerror(errno), "read stdin");
			}
			*out = buf;
			*outlen = len;
			return 0;
		}
	}
	return cni_errorf(e, CNI_ERR_IO, NULL, "out of memory");
}

/* Prints j and drops the reference if owned. */
static void print_json(json_t *j, bool owned)
{
	if (j)
		json_dumpf(j, stdout, JSON_COMPACT);
	fputc('\n', stdout);
	fflush(stdout);
	if (owned)
		json_decref(j);
}

/*
 * One call to segd. Maps failures to CNI codes: not reachable or timed out
 * -> 11 (the runtime retries), the op refused -> 999 with segd's message.
 */
static int segd_call(const struct cni_conf *c, const char *op, json_t *args, int unreachable_code,
		     struct cni_err *e)
{
	char msg[512] = "";
	json_t *res = NULL;
	int fd = -1, err;

	err = seg_ctl_connect(c->socket, &fd);
	if (err) {
		cni_errorf(e, unreachable_code, strerror(-err),
			   "segd is not reachable at %s (is segd running on this node?)",
			   c->socket);
		return err;
	}
	err = seg_ctl_call(fd, op, args, c->timeout_ms, &res, msg, sizeof(msg));
	close(fd);
	json_decref(res);
	if (err == -ETIMEDOUT)
		cni_errorf(e, CNI_ERR_TRY_AGAIN, NULL, "segd did not answer %s within %d ms", op,
			   c->timeout_ms);
	else if (err && msg[0])
		cni_errorf(e, CNI_ERR_OTHER, msg, "segd refused %s", op);
	else if (err)
		cni_errorf(e, unreachable_code, strerror(-err), "talking to segd at %s (%s)",
			   c->socket, op);
	return err;
}

static int cmd_pod(const struct cni_env *env, const struct cni_conf *c, struct cni_err *e)
{
	static const char *const ops[] = {
		[CNI_CMD_ADD] = "cni-add", [CNI_CMD_DEL] = "cni-del", [CNI_CMD_CHECK] = "cni-check"
	};
	json_t *args = cni_segd_args(env, c);
	int err;

	if (!args) /* jansson refuses non-UTF-8 strings (or is out of memory) */
		return cni_errorf(
			e, CNI_ERR_ENV, NULL,
			"CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME and CNI_ARGS must be UTF-8");
	err = segd_call(c, ops[env->cmd], args, CNI_ERR_TRY_AGAIN, e);
	json_decref(args);
	if (env->cmd == CNI_CMD_DEL && err) {
		/* Idempotent: no segd, or segd no longer knows the pod, is done.
		 * (The endpoint dies with the interface; segd reconciles.) */
		if (e->code == CNI_ERR_TRY_AGAIN || err == -ENOENT) {
			log_warn("DEL %s: %s (%s); nothing left to remove", env->container_id,
				 e->msg, e->details);
			return 0;
		}
	}
	if (err)
		return e->code;
	if (env->cmd == CNI_CMD_ADD)
		print_json(c->prev_result, false);
	return 0;
}

static int run(struct cni_err *e, const char **version)
{
	struct cni_env env;
	struct cni_conf c;
	json_t *root = NULL;
	char *buf = NULL;
	size_t len = 0;
	int err;

	err = cni_env_parse(env_get, NULL, &env, e);
	if (err)
		return err;
	err = read_stdin(&buf, &len, e);
	if (err)
		return err;
	err = cni_conf_parse(buf, len, env.cmd, &root, &c, e);
	free(buf);
	if (err)
		return err;
	switch (env.cmd) {
	case CNI_CMD_VERSION:
		print_json(cni_version_json(c.cni_version), true);
		break;
	case CNI_CMD_STATUS:
		err = segd_call(&c, "status", NULL, CNI_ERR_NOT_AVAILABLE, e) ? e->code : 0;
		break;
	case CNI_CMD_GC:
		break;
	default:
		err = cmd_pod(&env, &c, e);
		break;
	}
	/* The error object is printed after root is gone: keep a static copy. */
	*version = NULL;
	for (size_t i = 0; i < cni_nversions; i++)
		if (!strcmp(c.cni_version, cni_versions[i]))
			*version = cni_versions[i];
	json_decref(root);
	return err;
}

int main(int argc, char **argv)
{
	struct cni_err e = { 0 };
	const char *version = NULL;
	int err;

	log_init("seg-cni", LOG_LVL_WARN);
	if (argc > 1) {
		if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
			printf("seg-cni %s\n", SEG_VERSION);
			return 0;
		}
		fputs(help_text,
		      !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ? stdout : stderr);
		return !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ? 0 : 2;
	}
	err = run(&e, &version);
	if (!err)
		return 0;
	print_json(cni_error_json(version, &e), true);
	return 1;
}
