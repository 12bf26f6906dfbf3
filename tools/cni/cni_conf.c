// SPDX-License-Identifier: GPL-2.0-only
/* seg-cni's pure half: environment, CNI_ARGS, configuration, prevResult, errors. */
#include "cni.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const cni_versions[] = { "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0" };
const size_t cni_nversions = sizeof(cni_versions) / sizeof(cni_versions[0]);

bool cni_version_supported(const char *v)
{
	for (size_t i = 0; v && i < cni_nversions; i++)
		if (!strcmp(v, cni_versions[i]))
			return true;
	return false;
}

int cni_errorf(struct cni_err *e, int code, const char *details, const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	snprintf(e->details, sizeof(e->details), "%s", details ? details : "");
	return code;
}

static const struct {
	const char *name;
	enum cni_cmd cmd;
} cni_cmds[] = {
	{ "ADD", CNI_CMD_ADD },		{ "DEL", CNI_CMD_DEL },	      { "CHECK", CNI_CMD_CHECK },
	{ "VERSION", CNI_CMD_VERSION }, { "STATUS", CNI_CMD_STATUS }, { "GC", CNI_CMD_GC },
};

int cni_cmd_parse(const char *s, enum cni_cmd *cmd)
{
	for (size_t i = 0; s && i < sizeof(cni_cmds) / sizeof(cni_cmds[0]); i++) {
		if (!strcmp(s, cni_cmds[i].name)) {
			*cmd = cni_cmds[i].cmd;
			return 0;
		}
	}
	return -EINVAL;
}

static bool is_true(const char *v)
{
	return !strcasecmp(v, "1") || !strcasecmp(v, "true");
}

static int copy_arg(char *dst, size_t size, const char *key, const char *v, size_t vlen,
		    struct cni_err *e)
{
	if (vlen >= size)
		return cni_errorf(e, CNI_ERR_ENV, NULL, "CNI_ARGS: %s is longer than %zu bytes",
				  key, size - 1);
	memcpy(dst, v, vlen);
	dst[vlen] = '\0';
	return 0;
}

/*
 * Two passes, as the reference plugins do: IgnoreUnknown may come anywhere
 * (kubelet puts it first), and an unknown key is an error only without it.
 */
int cni_args_parse(const char *s, struct cni_args *a, struct cni_err *e)
{
	char unknown[128] = "";
	bool ignore_unknown = false;

	memset(a, 0, sizeof(*a));
	for (const char *p = s; p && *p;) {
		const char *end = strchrnul(p, ';'), *eq = memchr(p, '=', (size_t)(end - p));
		size_t klen = eq ? (size_t)(eq - p) : 0, vlen = eq ? (size_t)(end - eq - 1) : 0;
		int err = 0;

		if (end == p) { /* empty pair: ";;" or a trailing ';' */
			p = end + 1;
			continue;
		}
		if (!eq || !klen)
			return cni_errorf(e, CNI_ERR_ENV, s, "CNI_ARGS: \"%.*s\" is not KEY=VALUE",
					  (int)(end - p), p);
		if (klen == 13 && !strncmp(p, "IgnoreUnknown", klen)) {
			char v[8] = "";

			snprintf(v, sizeof(v), "%.*s", (int)(vlen < 7 ? vlen : 7), eq + 1);
			ignore_unknown = is_true(v);
		} else if (klen == 17 && !strncmp(p, "K8S_POD_NAMESPACE", klen)) {
			err = copy_arg(a->pod_namespace, sizeof(a->pod_namespace),
				       "K8S_POD_NAMESPACE", eq + 1, vlen, e);
		} else if (klen == 12 && !strncmp(p, "K8S_POD_NAME", klen)) {
			err = copy_arg(a->pod_name, sizeof(a->pod_name), "K8S_POD_NAME", eq + 1,
				       vlen, e);
		} else if (klen == 11 && !strncmp(p, "K8S_POD_UID", klen)) {
			err = copy_arg(a->pod_uid, sizeof(a->pod_uid), "K8S_POD_UID", eq + 1, vlen,
				       e);
		} else if (klen == 26 && !strncmp(p, "K8S_POD_INFRA_CONTAINER_ID", klen)) {
			/* known, not needed: CNI_CONTAINERID carries it */
		} else if (!unknown[0]) {
			snprintf(unknown, sizeof(unknown), "%.*s", (int)klen, p);
		}
		if (err)
			return err;
		p = *end ? end + 1 : end;
	}
	if (unknown[0] && !ignore_unknown)
		return cni_errorf(
			e, CNI_ERR_ENV, s,
			"CNI_ARGS: unknown key %s (put IgnoreUnknown=1 first to allow it)",
			unknown);
	return 0;
}

static const char *need_env(cni_getenv_fn get, void *ctx, const char *name, struct cni_err *e)
{
	const char *v = get(name, ctx);

	if (!v || !*v) {
		cni_errorf(e, CNI_ERR_ENV, NULL, "%s is not set", name);
		return NULL;
	}
	return v;
}

int cni_env_parse(cni_getenv_fn get, void *ctx, struct cni_env *env, struct cni_err *e)
{
	memset(env, 0, sizeof(*env));
	env->command = need_env(get, ctx, "CNI_COMMAND", e);
	if (!env->command)
		return e->code;
	if (cni_cmd_parse(env->command, &env->cmd))
		return cni_errorf(e, CNI_ERR_ENV, NULL,
				  "CNI_COMMAND %s: not ADD, DEL, CHECK, VERSION, STATUS or GC",
				  env->command);
	if (env->cmd != CNI_CMD_ADD && env->cmd != CNI_CMD_DEL && env->cmd != CNI_CMD_CHECK)
		return 0;
	env->container_id = need_env(get, ctx, "CNI_CONTAINERID", e);
	env->ifname = env->container_id ? need_env(get, ctx, "CNI_IFNAME", e) : NULL;
	if (!env->container_id || !env->ifname)
		return e->code;
	/* DEL may come after the netns is gone: the spec lets CNI_NETNS be empty. */
	env->netns = get("CNI_NETNS", ctx);
	if (env->netns && !*env->netns)
		env->netns = NULL;
	if (!env->netns && env->cmd != CNI_CMD_DEL)
		return cni_errorf(e, CNI_ERR_ENV, NULL, "CNI_NETNS is not set");
	return cni_args_parse(get("CNI_ARGS", ctx), &env->args, e);
}

static int conf_str(json_t *root, const char *key, bool required, const char **out,
		    struct cni_err *e)
{
	json_t *v = json_object_get(root, key);

	*out = NULL;
	if (!v) {
		if (required)
			return cni_errorf(e, CNI_ERR_CONFIG, NULL,
					  "network configuration: no \"%s\"", key);
		return 0;
	}
	if (!json_is_string(v) || !json_string_length(v))
		return cni_errorf(e, CNI_ERR_CONFIG, NULL,
				  "network configuration: \"%s\" must be a non-empty string", key);
	*out = json_string_value(v);
	return 0;
}

static int conf_own_keys(json_t *root, struct cni_conf *c, struct cni_err *e)
{
	json_t *t = json_object_get(root, "timeoutMs");
	const char *sock;
	int err;

	err = conf_str(root, "socket", false, &sock, e);
	if (err)
		return err;
	if (!sock)
		sock = CNI_SOCKET_DEFAULT;
	if (sock[0] != '/' || strlen(sock) >= sizeof(c->socket))
		return cni_errorf(
			e, CNI_ERR_CONFIG, sock,
			"network configuration: \"socket\" must be an absolute path shorter "
			"than %zu bytes",
			sizeof(c->socket));
	strcpy(c->socket, sock);
	c->timeout_ms = CNI_TIMEOUT_MS_DEFAULT;
	if (t) {
		if (!json_is_integer(t) || json_integer_value(t) < 1 ||
		    json_integer_value(t) > CNI_TIMEOUT_MS_MAX)
			return cni_errorf(e, CNI_ERR_CONFIG, NULL,
					  "network configuration: \"timeoutMs\" must be an integer "
					  "from 1 to %d",
					  CNI_TIMEOUT_MS_MAX);
		c->timeout_ms = (int)json_integer_value(t);
	}
	return 0;
}

int cni_conf_parse(const char *buf, size_t len, enum cni_cmd cmd, json_t **rootp,
		   struct cni_conf *c, struct cni_err *e)
{
	json_error_t jerr;
	json_t *root;
	int err;

	memset(c, 0, sizeof(*c));
	*rootp = NULL;
	root = json_loadb(buf, len, 0, &jerr);
	if (!root)
		return cni_errorf(e, CNI_ERR_DECODE, jerr.text,
				  "network configuration on stdin is not JSON (line %d)",
				  jerr.line);
	if (!json_is_object(root)) {
		err = cni_errorf(e, CNI_ERR_DECODE, NULL,
				 "network configuration on stdin is not a JSON object");
		goto out;
	}
	err = conf_str(root, "cniVersion", true, &c->cni_version, e);
	if (err)
		goto out;
	if (cmd == CNI_CMD_VERSION)
		goto out; /* any version may ask which ones we speak */
	if (!cni_version_supported(c->cni_version)) {
		err = cni_errorf(e, CNI_ERR_VERSION, c->cni_version,
				 "cniVersion %s is not supported (see VERSION)", c->cni_version);
		goto out;
	}
	err = conf_str(root, "name", cmd != CNI_CMD_STATUS && cmd != CNI_CMD_GC, &c->name, e);
	if (!err)
		err = conf_str(root, "type", false, &c->type, e);
	if (!err)
		err = conf_own_keys(root, c, e);
	if (err)
		goto out;
	c->prev_result = json_object_get(root, "prevResult");
	if (c->prev_result && json_is_null(c->prev_result))
		c->prev_result = NULL;
	if (!c->prev_result && cmd == CNI_CMD_ADD) {
		err = cni_errorf(e, CNI_ERR_CONFIG, NULL,
				 "no prevResult: seg-cni is a chained plugin and must follow the "
				 "plugin that creates the interface");
		goto out;
	}
	err = cni_prev_result_check(c->prev_result, e);
out:
	if (err) {
		json_decref(root);
		memset(c, 0, sizeof(*c));
		return err;
	}
	*rootp = root;
	return 0;
}

static bool cidr_valid(const char *s)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	unsigned char bin[16];
	char *end;
	long plen;
	size_t n;

	if (!slash)
		return false;
	n = (size_t)(slash - s);
	if (n == 0 || n >= sizeof(addr))
		return false;
	memcpy(addr, s, n);
	addr[n] = '\0';
	errno = 0;
	plen = strtol(slash + 1, &end, 10);
	if (errno || end == slash + 1 || *end)
		return false;
	if (inet_pton(AF_INET, addr, bin) == 1)
		return plen >= 0 && plen <= 32;
	return inet_pton(AF_INET6, addr, bin) == 1 && plen >= 0 && plen <= 128;
}

int cni_prev_result_check(const json_t *prev, struct cni_err *e)
{
	json_t *ifs, *ips, *v;
	size_t i, nifs = 0;

	if (!prev)
		return 0;
	if (!json_is_object(prev))
		return cni_errorf(e, CNI_ERR_CONFIG, NULL, "prevResult is not an object");
	ifs = json_object_get(prev, "interfaces");
	if (ifs && !json_is_array(ifs))
		return cni_errorf(e, CNI_ERR_CONFIG, NULL, "prevResult.interfaces is not a list");
	json_array_foreach(ifs, i, v)
	{
		if (!json_is_object(v) || !json_is_string(json_object_get(v, "name")))
			return cni_errorf(e, CNI_ERR_CONFIG, NULL,
					  "prevResult.interfaces[%zu] has no \"name\"", i);
	}
	nifs = ifs ? json_array_size(ifs) : 0;
	ips = json_object_get(prev, "ips");
	if (ips && !json_is_array(ips))
		return cni_errorf(e, CNI_ERR_CONFIG, NULL, "prevResult.ips is not a list");
	json_array_foreach(ips, i, v)
	{
		json_t *a = json_object_get(v, "address"), *ix = json_object_get(v, "interface");

		if (!json_is_string(a) || !cidr_valid(json_string_value(a)))
			return cni_errorf(e, CNI_ERR_CONFIG, NULL,
					  "prevResult.ips[%zu].address is not an address/prefix",
					  i);
		if (ix && (!json_is_integer(ix) || json_integer_value(ix) < 0 ||
			   (size_t)json_integer_value(ix) >= nifs))
			return cni_errorf(e, CNI_ERR_CONFIG, NULL,
					  "prevResult.ips[%zu].interface is not an index into "
					  "prevResult.interfaces",
					  i);
	}
	return 0;
}

static json_t *prev_list(const json_t *prev, const char *key)
{
	json_t *v = json_object_get(prev, key);

	return v ? json_deep_copy(v) : json_array();
}

json_t *cni_segd_args(const struct cni_env *env, const struct cni_conf *c)
{
	json_t *a = json_pack("{s:s, s:s, s:s?, s:s, s:s, s:s?}", "container_id", env->container_id,
			      "ifname", env->ifname, "netns", env->netns, "pod_namespace",
			      env->args.pod_namespace, "pod_name", env->args.pod_name, "network",
			      c->name);

	if (!a)
		return NULL;
	if (env->cmd != CNI_CMD_DEL || c->prev_result) {
		json_object_set_new(a, "interfaces", prev_list(c->prev_result, "interfaces"));
		json_object_set_new(a, "ips", prev_list(c->prev_result, "ips"));
	}
	return a;
}

/* jansson takes UTF-8 only, but a message may quote bytes from the
 * environment or end in a character cut by its buffer's size: such a
 * string keeps its ASCII and gets '?' for every other byte. */
static json_t *json_string_lossy(const char *s)
{
	char buf[sizeof(((struct cni_err *)0)->details)];
	json_t *j = json_string(s);
	size_t i;

	for (i = 0; !j && s[i] && i < sizeof(buf) - 1; i++)
		buf[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
	if (!j) {
		buf[i] = 0;
		j = json_string(buf);
	}
	return j;
}

json_t *cni_error_json(const char *version, const struct cni_err *e)
{
	if (!cni_version_supported(version))
		version = cni_versions[cni_nversions - 1];
	return json_pack("{s:s, s:i, s:o, s:o}", "cniVersion", version, "code",
			 e->code ? e->code : CNI_ERR_OTHER, "msg", json_string_lossy(e->msg),
			 "details", json_string_lossy(e->details));
}

json_t *cni_version_json(const char *version)
{
	json_t *list = json_array();

	for (size_t i = 0; list && i < cni_nversions; i++)
		json_array_append_new(list, json_string(cni_versions[i]));
	if (!cni_version_supported(version))
		version = cni_versions[cni_nversions - 1];
	return json_pack("{s:s, s:o}", "cniVersion", version, "supportedVersions", list);
}
