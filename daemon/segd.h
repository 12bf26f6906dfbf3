/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * segd: the node daemon. Everything it knows hangs off one struct segd;
 * one loop (loop.h) feeds it: the manifests directory (inotify), the
 * control socket, rtnetlink link events, a resync timer and signals.
 * Handlers only mark state dirty; the loop's before-sleep hook runs
 * segd_sync() once: labels -> manifests -> interfaces -> attach ->
 * compile -> apply.
 *
 *   main.c      options (flags = config keys), startup, signals, the loop
 *   config.c    the YAML config file, turned into flags
 *   sources.c   label sources (manifests dir, applied objects, CNI pods)
 *   state.c     the state file that keeps applied objects and CNI pods
 *   sync.c      discovery, attach/detach, compile, apply
 *   ops.c       control socket operations (JSON in, JSON out)
 *   metrics.c   /metrics and /healthz (libmicrohttpd), optional
 *   export.c    flow recorder (ring buffer, conntrack walk) and exporter
 */
#ifndef SEGD_H
#define SEGD_H

#include <jansson.h>
#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "apply/apply.h"
#include "discover.h"
#include "policy/policy.h"

struct loop;
struct loop_src;
struct ctl_server;
struct seg_dp;
struct disc_watch;
struct segd_metrics;
struct segd_export;
struct segd;

/* Options: every one is a flag and a config file key (same name). */
struct segd_opts {
	const char *config;
	const char *pin_dir;
	const char *socket;
	const char *state_file;
	const char *manifests;
	const char *node_netns;
	const char *ovsdb;
	const char *pod_netns_dir;
	const char *metrics;
	/* flows (export.c) */
	const char *export_addr;
	const char *node_name;
	const char *export_tls_ca, *export_tls_cert, *export_tls_key;
	const char *export_spool;
	uint32_t export_spool_max;
	uint32_t ct_walk;
	uint32_t flow_idle;
	uint32_t event_rate;
	uint32_t resync;
	uint32_t debounce;
	/* Manifest limits (policy/limits.h), checked before the expensive part. */
	uint32_t max_policies, max_pods, max_rules;
	bool audit_default;
	bool allow_host;
	bool foreground;
	bool verbose;
};

struct segd_cache; /* sources.c: what each source item parsed to */

/* Freed heap goes back to the system this long after the last sync. */
#define SEGD_TRIM_IDLE_MS 200

/* An object applied over the socket: its name (usually a file path) and
 * text. Set with segd_applied_set()/segd_applied_text(), which also fill in
 * what the parse cache compares. */
struct segd_applied {
	char *name;
	char *content;
	size_t len; /* strlen(content) */
	uint64_t hash[2]; /* of content (sources.c text_hash) */
	uint64_t item; /* its item file in the state directory; 0: not written yet */
};

/* A pod registered by the CNI plugin. */
struct segd_cni_pod {
	char *container_id;
	char *netns;
	char *ifname;
	char *ns, *name;
	struct in6_addr addrs[SEG_POD_MAX_ADDRS];
	size_t naddrs;
};

/* An interface seg is attached to. */
struct segd_att {
	char pod[320]; /* "ns/name" */
	enum disc_style style;
	int host_ifindex; /* 0 for MACVLAN */
	char ifname[IF_NAMESIZE]; /* host side, or the pod's device for MACVLAN */
	char netns[DISC_PATH_LEN]; /* MACVLAN: the pod netns */
	int pod_ifindex;
	__u32 ep_id;
	__u32 ifkey;
	bool seen; /* found by the current scan */
};

struct segd_stats {
	unsigned long syncs, applies, apply_errors, attaches, detaches;
	struct seg_apply_stats last; /* of the last apply that ran */
	bool have_last;
};

struct segd {
	struct segd_opts o;
	char **argv; /* as given, for SIGHUP reloads */
	int argc;
	/* argv built from the config file at start and at each SIGHUP: the
	 * option strings point into them, so they live until exit */
	struct segd_argv {
		char **v;
		int n;
	} * cfg_argv;
	size_t ncfg_argv;
	time_t started;
	char state_path[PATH_MAX];

	struct loop *loop;
	struct ctl_server *ctl;
	struct seg_dp *dp;
	struct seg_apply *apply;
	struct disc_watch *watch;
	struct loop_src *links_timer, *manifests_timer, *resync_timer;
	struct loop_src *trim_timer; /* gives freed heap back once segd is idle (sync.c) */
	int inotify_fd;
	struct loop_src *inotify_src;
	struct segd_metrics *metrics;
	struct segd_export *exp; /* flow recorder/exporter (export.h) */

	/* desired state */
	struct segd_applied *applied;
	size_t napplied;
	struct segd_cni_pod *cni;
	size_t ncni;
	uint64_t state_next; /* the next state item number (state.c) */
	uint64_t *state_retired; /* items to remove once the index no longer names them */
	size_t nretired;
	struct segd_cache *cache; /* their parses, reused while unchanged */

	/* live state: what the maps hold (last good) */
	struct seg_manifests *m;
	struct seg_compiled *c;
	struct segd_att *att;
	size_t natt;
	struct disc_result scan; /* the last interface scan */
	bool have_scan;

	/* dirty flags, consumed by segd_sync() */
	bool dirty_manifests, dirty_links, dirty_apply;
	char last_error[768]; /* "" when the last sync was fine */
	struct segd_stats st;
};

/* sources.c. Label sources, in this order: the manifests directory (or
 * file), the objects applied over the socket, the pods the CNI plugin
 * registered (a Kubernetes API watch would be one more). */
/* Builds manifests from every source, parsing only the items that changed
 * since the last build (d->cache); 0, or -errno with diag set (file:line). */
int segd_manifests_build(struct segd *d, struct seg_manifests **out, struct seg_diag *diag);
/* The same, every source parsed into one object: the reference the above
 * must equal (tests). */
int segd_manifests_build_full(struct segd *d, struct seg_manifests **out, struct seg_diag *diag);
/* Source items parsed and reused by the last build. */
void segd_cache_stats(const struct segd *d, size_t *parsed, size_t *reused);
/* Sets a to a copy of name and content (len bytes, no NUL among them) with
 * its hash, item 0; 0 or -ENOMEM (a unchanged). segd_applied_text() sets
 * the content only and leaves a->name as it is; neither frees what a held. */
int segd_applied_set(struct segd_applied *a, const char *name, const char *content, size_t len);
int segd_applied_text(struct segd_applied *a, const char *content, size_t len);
void segd_state_free(struct segd *d);

/* state.c: the state file (an index) and its item files. */
int segd_state_load(struct segd *d);
/* Writes the items not written yet and the index, then removes the retired
 * items; 0 or -errno (logged; the previous index stays). */
int segd_state_save(struct segd *d);
/* Item no longer named once the next index is in place (0: none). */
void segd_state_retire(struct segd *d, uint64_t item);
json_t *segd_cni_pod_json(const struct segd_cni_pod *p);
/* Fills p from {container_id, netns, ifname, pod_namespace, pod_name, ips}. */
int segd_cni_pod_parse(json_t *j, struct segd_cni_pod *p, char *err, size_t errlen);
void segd_cni_pod_free(struct segd_cni_pod *p);
int segd_parse_addr(const char *s, struct in6_addr *a); /* "10.0.0.1", "fd00::1", "/24" cut */

/* sync.c: one pass; 0 or -errno (also recorded in d->last_error). */
int segd_sync(struct segd *d);
/* Makes manifests/compiled state from the sources now (used by the ops that
 * change them), rescanning interfaces first if asked (else the last scan is
 * matched): on error, nothing changes and err holds the message. */
int segd_sync_now(struct segd *d, bool rescan_links, char *err, size_t errlen);
const struct segd_att *segd_att_find(const struct segd *d, const char *pod);
__u32 segd_pod_ep_id(const char *ns, const char *name);

/* ops.c */
int segd_ctl_handler(void *ctx, const char *op, json_t *args, json_t **result, char *err,
		     size_t errlen);
json_t *segd_status_json(struct segd *d);

/* config.c: argv with the config file's keys as flags before the real ones. */
int segd_config_argv(const char *path, int argc, char **argv, int *out_argc, char ***out_argv);
void segd_config_argv_free(int argc, char **argv, int orig_argc);

/* metrics.c */
int segd_metrics_start(struct segd *d, const char *addr);
void segd_metrics_refresh(struct segd *d);
void segd_metrics_stop(struct segd_metrics *m);

#endif
