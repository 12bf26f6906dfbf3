/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * seg-cni: seg's chained CNI plugin (CNI spec 1.0, STATUS and GC from 1.1).
 *
 * The pure half (cni_conf.c): the runtime's environment, CNI_ARGS, the
 * network configuration on stdin, its prevResult, and the CNI error object.
 * No I/O, no globals, no logging: functions return 0 or a CNI error code and
 * describe the failure in struct cni_err. main.c talks to segd.
 */
#ifndef SEG_CNI_H
#define SEG_CNI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Error codes of the CNI spec ("Error" section). */
enum cni_code {
	CNI_OK = 0,
	CNI_ERR_VERSION = 1, /* incompatible CNI version */
	CNI_ERR_FIELD = 2, /* unsupported field in network configuration */
	CNI_ERR_UNKNOWN_CONTAINER = 3,
	CNI_ERR_ENV = 4, /* invalid necessary environment variables */
	CNI_ERR_IO = 5,
	CNI_ERR_DECODE = 6, /* failed to decode content */
	CNI_ERR_CONFIG = 7, /* invalid network config */
	CNI_ERR_TRY_AGAIN = 11, /* try again later */
	CNI_ERR_NOT_AVAILABLE = 50, /* STATUS: plugin not available (1.1) */
	CNI_ERR_OTHER = 999,
};

struct cni_err {
	int code; /* enum cni_code */
	char msg[256];
	char details[512];
};

enum cni_cmd {
	CNI_CMD_ADD,
	CNI_CMD_DEL,
	CNI_CMD_CHECK,
	CNI_CMD_VERSION,
	CNI_CMD_STATUS,
	CNI_CMD_GC
};

#define CNI_SOCKET_DEFAULT "/run/seg/segd.sock"
#define CNI_TIMEOUT_MS_DEFAULT 10000
#define CNI_TIMEOUT_MS_MAX 600000

/* The versions this plugin speaks (VERSION's supportedVersions), oldest first. */
extern const char *const cni_versions[];
extern const size_t cni_nversions;
bool cni_version_supported(const char *v);

/* CNI_ARGS: "K=V;K=V". Keys seg knows; the others need IgnoreUnknown. */
struct cni_args {
	char pod_namespace[254]; /* K8S_POD_NAMESPACE */
	char pod_name[254]; /* K8S_POD_NAME */
	char pod_uid[64]; /* K8S_POD_UID (informational) */
};

/* The environment the runtime set, for one invocation. */
struct cni_env {
	enum cni_cmd cmd;
	const char *command; /* CNI_COMMAND as given */
	const char *container_id; /* CNI_CONTAINERID */
	const char *netns; /* CNI_NETNS, may be NULL for DEL */
	const char *ifname; /* CNI_IFNAME */
	struct cni_args args;
};

/* Values of the plugin's own keys and the ones every plugin reads. */
struct cni_conf {
	const char *cni_version; /* "cniVersion" */
	const char *name; /* network name */
	const char *type;
	char socket[108]; /* "socket": segd's control socket */
	int timeout_ms; /* "timeoutMs": per segd call */
	json_t *prev_result; /* borrowed from the config object; NULL if absent */
};

/* getenv-like lookup, so tests can feed a table. */
typedef const char *(*cni_getenv_fn)(const char *name, void *ctx);

int cni_cmd_parse(const char *s, enum cni_cmd *cmd);
int cni_args_parse(const char *s, struct cni_args *a, struct cni_err *e);
int cni_env_parse(cni_getenv_fn get, void *ctx, struct cni_env *env, struct cni_err *e);

/* Parses stdin's JSON. *root is a new reference on success (c borrows from
 * it); on failure *root is NULL. VERSION needs only cniVersion. */
int cni_conf_parse(const char *buf, size_t len, enum cni_cmd cmd, json_t **root, struct cni_conf *c,
		   struct cni_err *e);

/* Checks prevResult's shape (interfaces[].name, ips[].address as CIDR,
 * ips[].interface indexing interfaces). NULL prev is valid (nothing to
 * check). */
int cni_prev_result_check(const json_t *prev, struct cni_err *e);

/* The args of segd's cni-add/cni-del/cni-check ops (new reference). */
json_t *cni_segd_args(const struct cni_env *env, const struct cni_conf *c);

/* {"cniVersion", "code", "msg", "details"} (new reference); version NULL or
 * unsupported -> the newest version. */
json_t *cni_error_json(const char *version, const struct cni_err *e);
/* Fills e and returns code. */
int cni_errorf(struct cni_err *e, int code, const char *details, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* VERSION's answer (new reference). */
json_t *cni_version_json(const char *version);

#endif
