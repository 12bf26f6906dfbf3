// SPDX-License-Identifier: GPL-2.0-only
/*
 * segd main: options (every flag is also a config file key), startup in
 * the node netns, the loop's sources and signals. Stopping (SIGTERM,
 * SIGINT) leaves programs, maps and links pinned and attached: enforcement
 * goes on while segd is down, and the next segd reconciles.
 */
#include "segd.h"

#include "cli/opts.h"
#include "ctl/ctl.h"
#include "ctl_server.h"
#include "export.h"
#include "dp/dp.h"
#include "log.h"
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SEG_VERSION
#define SEG_VERSION "unknown"
#endif

static const struct segd_opts segd_defaults = {
	.pin_dir = SEG_PIN_DIR_DEFAULT,
	.pod_netns_dir = "/run/netns",
	.event_rate = 100,
	.resync = 30,
	.debounce = 50,
	/* From the map capacities: every policy with a rule takes at least one
	 * of seg_rules' ids (0 is "no rule"), every pod an ipcache entry. */
	.max_policies = SEG_MAX_RULES - 1,
	.max_rules = SEG_MAX_RULES - 1,
	.max_pods = SEG_MAX_IPCACHE,
	.export_spool_max = 64u << 20,
	.ct_walk = 5,
	.flow_idle = 30,
	.foreground = true,
};

static const struct opt segd_optv[] = {
	OPT_STR('c', "config", struct segd_opts, config, "FILE",
		"YAML file of options: each key is a long option name (pin-dir: /x); flags given "
		"on the command line win"),
	OPT_STR(0, "pin-dir", struct segd_opts, pin_dir, "DIR",
		"bpffs directory for programs, maps and links; reused across restarts"),
	OPT_STR(0, "socket", struct segd_opts, socket, "PATH", "control socket (0600, root only)",
		.defstr = "$SEG_SOCKET or /run/seg/segd.sock"),
	OPT_STR(0, "state-file", struct segd_opts, state_file, "FILE",
		"keeps objects applied over the socket and CNI pods across restarts (an index; "
		"the applied texts in FILE.d)",
		.defstr = "segd-state.json next to the socket"),
	OPT_STR(0, "manifests", struct segd_opts, manifests, "DIR",
		"directory of Namespace, Pod and NetworkPolicy manifests (.yaml .yml .json), "
		"watched with inotify",
		.defstr = "none"),
	OPT_STR(0, "node-netns", struct segd_opts, node_netns, "PATH",
		"run in this network namespace (the node's); for labs where a node is a netns",
		.defstr = "segd's own"),
	OPT_STR(0, "ovsdb", struct segd_opts, ovsdb, "SOCK",
		"ovsdb-server unix socket, to recognise OVS userspace-datapath ports",
		.defstr = "none"),
	OPT_STR(0, "pod-netns-dir", struct segd_opts, pod_netns_dir, "DIR",
		"where pod network namespaces are bound"),
	OPT_BOOL(0, "audit-default", struct segd_opts, audit_default,
		 "namespaces without the seg.io/enforcement annotation are audited, not enforced"),
	OPT_BOOL(0, "allow-host", struct segd_opts, allow_host,
		 "the node may always reach its pods and back (kubelet probes)"),
	OPT_U32(0, "event-rate", struct segd_opts, event_rate, "N",
		"flow events per second per endpoint and CPU (0: no limit)"),
	OPT_U32(0, "resync", struct segd_opts, resync, "SECONDS",
		"rescan interfaces and reconcile the maps this often", .min = 1, .max = 86400),
	OPT_U32(0, "debounce", struct segd_opts, debounce, "MS",
		"wait this long after a burst of file or link events before acting", .max = 10000),
	OPT_U32(0, "max-policies", struct segd_opts, max_policies, "N",
		"refuse manifests holding more NetworkPolicies (all sources together), before "
		"parsing them; 0: no limit"),
	OPT_U32(0, "max-rules", struct segd_opts, max_rules, "N",
		"refuse manifests whose policies need more rule ids (one per peer of each rule) "
		"than this; 0: no limit"),
	OPT_U32(0, "max-pods", struct segd_opts, max_pods, "N",
		"refuse manifests holding more Pods, before parsing them; 0: no limit"),
	OPT_STR(0, "metrics", struct segd_opts, metrics, "ADDR:PORT",
		"serve /metrics (Prometheus text) and /healthz here", .defstr = "off"),
	OPT_STR(0, "export", struct segd_opts, export_addr, "ADDR",
		"stream flow records to the topology service's gRPC address (host:port or "
		"unix:PATH; resolved inside --node-netns)",
		.defstr = "off"),
	OPT_STR(0, "node-name", struct segd_opts, node_name, "NAME",
		"this node's name in flow records", .defstr = "the hostname"),
	OPT_STR(0, "export-tls-ca", struct segd_opts, export_tls_ca, "PEM",
		"TLS to the topology service: CA of its certificate", .defstr = "insecure"),
	OPT_STR(0, "export-tls-cert", struct segd_opts, export_tls_cert, "PEM",
		"TLS: client certificate, if the service asks for one"),
	OPT_STR(0, "export-tls-key", struct segd_opts, export_tls_key, "PEM", "TLS: client key"),
	OPT_STR(0, "export-spool", struct segd_opts, export_spool, "FILE",
		"unacknowledged batches go here (kept across restarts) while the service is "
		"unreachable",
		.defstr = "memory"),
	OPT_U32(0, "export-spool-max", struct segd_opts, export_spool_max, "BYTES",
		"bound of the spool; when full, new records are dropped and counted", .min = 4096),
	OPT_U32(0, "ct-walk", struct segd_opts, ct_walk, "SECONDS",
		"walk conntrack this often for flow counters and ends", .min = 1, .max = 3600),
	OPT_U32(0, "flow-idle", struct segd_opts, flow_idle, "SECONDS",
		"a flow idle this long is reported ended (final counters, once)", .min = 1,
		.max = 86400),
	OPT_BOOL('f', "foreground", struct segd_opts, foreground,
		 "stay in the foreground (the default; segd does not daemonize itself)"),
	OPT_BOOL('v', "verbose", struct segd_opts, verbose, "debug messages (libbpf included)"),
	OPT_END,
};

static const int segd_no_leaf_opts;

static const struct cmd segd_root = {
	.defaults = &segd_no_leaf_opts,
	.opts_size = sizeof(segd_no_leaf_opts),
	.name = "segd",
	.summary = "the seg node daemon: manifests to enforcement on live pods",
	.description =
		"segd turns Namespace, Pod and NetworkPolicy manifests into data path state and\n"
		"keeps it there. Sources: a manifests directory (inotify), objects applied with\n"
		"`segctl apply`, pods registered by seg's CNI plugin. It finds pod interfaces by\n"
		"link kind and master (Calico routed veth, Flannel bridge, OVS port, MacVlan in\n"
		"the pod netns), matches them to Pods by address and attaches to them.\n"
		"\n"
		"Programs, maps and links are pinned under --pin-dir: stopping or killing segd\n"
		"leaves enforcement in place; a restarted segd reconciles the maps with the\n"
		"desired state and rewrites nothing that is already right. A manifest that\n"
		"fails to parse, validate or compile is refused with file:line:col and the last\n"
		"good state stays enforced (see `segctl status`).\n"
		"\n"
		"Signals: SIGTERM/SIGINT stop (pins stay); SIGHUP rereads the config file and\n"
		"the manifests (pin-dir, socket, node-netns and metrics need a restart).",
	.examples = "segd --manifests /etc/seg/manifests\n"
		    "segd --config /etc/seg/segd.yaml -v\n"
		    "ip netns exec lab-node segd --pin-dir /sys/fs/bpf/lab --socket "
		    "/run/seg/lab/segd.sock --manifests lab/",
};

/* Parses argv (and the config file it names) into o. Returns OPTS_RUN, or
 * an exit code (help printed, usage error). *keep owns the strings o
 * points into. */
static int parse_opts(int argc, char **argv, struct segd_opts *o, int *kargc, char ***keep)
{
	/* segd has no subcommands: its options are the root's "globals". */
	struct opts_globals g = { .opts = segd_optv, .dst = o };
	struct opts_parsed res;
	int r, margc = 0;
	char **margv = NULL;

	*o = segd_defaults;
	r = opts_parse(&segd_root, &g, argc, argv, &res, stdout, stderr);
	if (r != OPTS_RUN)
		return r;
	opts_parsed_free(&res);
	if (!o->config)
		return OPTS_RUN;
	if (segd_config_argv(o->config, argc, argv, &margc, &margv))
		return OPTS_EXIT_USAGE;
	*o = segd_defaults;
	r = opts_parse(&segd_root, &g, margc, margv, &res, stdout, stderr);
	if (r != OPTS_RUN) {
		segd_config_argv_free(margc, margv, argc);
		return r;
	}
	opts_parsed_free(&res);
	*kargc = margc;
	*keep = margv;
	return OPTS_RUN;
}

/* ---- sources on the loop --------------------------------------------------------- */

static int on_manifests_timer(struct loop *l, struct loop_src *s, uint32_t ev, void *ctx)
{
	struct segd *d = ctx;

	d->dirty_manifests = true;
	return 0;
}

/* SEGD_TRIM_IDLE_MS after the last sync that freed a compile (sync.c). */
static int on_trim_timer(struct loop *l, struct loop_src *s, uint32_t ev, void *ctx)
{
	malloc_trim(0);
	return 0;
}

static int on_links_timer(struct loop *l, struct loop_src *s, uint32_t ev, void *ctx)
{
	struct segd *d = ctx;

	d->dirty_links = true;
	return 0;
}

static int on_resync(struct loop *l, struct loop_src *s, uint32_t ev, void *ctx)
{
	struct segd *d = ctx;

	d->dirty_links = true;
	d->dirty_apply = true; /* reconcile with the maps (someone may have written them) */
	return 0;
}

static int watch_manifests(struct segd *d);

static int on_inotify(struct loop *l, struct loop_src *s, uint32_t ev, void *ctx)
{
	struct segd *d = ctx;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool lost = false;
	ssize_t n;

	for (int i = 0; i < 64; i++) { /* bounded; the rest comes on the next wake-up */
		n = read(d->inotify_fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *e = (const struct inotify_event *)p;

			lost |= !!(e->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF));
			p += sizeof(*e) + e->len;
		}
	}
	if (lost) { /* the directory went away or moved: watch (a new) one again */
		log_warn("manifests directory %s removed or moved; watching it anew",
			 d->o.manifests);
		watch_manifests(d); /* frees s: return at once */
		d->dirty_manifests = true;
		return 0;
	}
	return loop_timer_arm(l, d->manifests_timer, d->o.debounce ?: 1, 0);
}

static void on_link_event(void *ctx, enum disc_event ev, const struct disc_link *link)
{
	struct segd *d = ctx;

	loop_timer_arm(d->loop, d->links_timer, d->o.debounce ?: 1, 0);
}

static int on_links(struct loop *l, struct loop_src *s, uint32_t ev, void *ctx)
{
	struct segd *d = ctx;

	return discover_watch_process(d->watch);
}

static void before_sleep(struct loop *l, void *ctx)
{
	struct segd *d = ctx;

	if (d->dirty_manifests || d->dirty_links || d->dirty_apply)
		segd_sync(d);
	if (d->metrics)
		segd_metrics_refresh(d);
}

static int watch_manifests(struct segd *d)
{
	if (d->inotify_src) {
		loop_del(d->loop, d->inotify_src);
		d->inotify_src = NULL;
	}
	if (d->inotify_fd >= 0)
		close(d->inotify_fd);
	d->inotify_fd = -1;
	if (!d->o.manifests)
		return 0;
	if (mkdir(d->o.manifests, 0755) && errno != EEXIST)
		return log_err(-errno, "mkdir %s", d->o.manifests);
	d->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d->inotify_fd < 0)
		return log_err(-errno, "inotify_init1");
	if (inotify_add_watch(d->inotify_fd, d->o.manifests,
			      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE |
				      IN_DELETE_SELF | IN_MOVE_SELF) < 0)
		return log_err(-errno, "inotify watch %s", d->o.manifests);
	return loop_add_fd(d->loop, d->inotify_fd, EPOLLIN, "manifests", on_inotify, d,
			   &d->inotify_src);
}

/* seg_config: flags and the event rate from the options; written only
 * when they differ (a restart with the same options writes nothing). */
/* segd's options in seg_config (the rest as it is), under the pin dir's
 * lock like every seg_config writer (lib/dp). */
static int cfg_opts(struct seg_config *cfg, void *arg)
{
	const struct segd *d = arg;

	cfg->flags &= ~SEG_CFG_ALLOW_HOST;
	if (d->o.allow_host)
		cfg->flags |= SEG_CFG_ALLOW_HOST;
	cfg->evt_rate = d->o.event_rate;
	return 0;
}

static int dp_config(struct segd *d)
{
	return seg_dp_config_update(d->dp, cfg_opts, d);
}

/* Keeps a config-built argv (option strings point into it) until exit. */
static int keep_argv(struct segd *d, char **v, int n)
{
	struct segd_argv *nv;

	if (!v)
		return 0;
	nv = realloc(d->cfg_argv, (d->ncfg_argv + 1) * sizeof(*nv));
	if (!nv) {
		segd_config_argv_free(n, v, 0);
		return -ENOMEM;
	}
	d->cfg_argv = nv;
	nv[d->ncfg_argv++] = (struct segd_argv){ .v = v, .n = n };
	return 0;
}

static int reload(struct segd *d)
{
	struct segd_opts o;
	char **keep = NULL;
	int kargc = 0, r;

	r = parse_opts(d->argc, d->argv, &o, &kargc, &keep);
	if (r != OPTS_RUN) {
		log_error("SIGHUP: config %s refused, running on", d->o.config ?: "(none)");
		return -EINVAL;
	}
	if (keep_argv(d, keep, kargc))
		return log_err(-ENOMEM, "SIGHUP: options");
	if (strcmp(o.pin_dir, d->o.pin_dir) || (o.metrics && !d->o.metrics))
		log_warn("SIGHUP: pin-dir, socket, node-netns and metrics need a restart");
	/* The safe subset changes now; the rest keeps the running values. */
	o.pin_dir = d->o.pin_dir;
	o.socket = d->o.socket;
	o.node_netns = d->o.node_netns;
	o.metrics = d->o.metrics;
	o.state_file = d->o.state_file;
	o.export_addr = d->o.export_addr;
	o.node_name = d->o.node_name;
	o.export_tls_ca = d->o.export_tls_ca;
	o.export_tls_cert = d->o.export_tls_cert;
	o.export_tls_key = d->o.export_tls_key;
	o.export_spool = d->o.export_spool;
	o.export_spool_max = d->o.export_spool_max;
	o.ct_walk = d->o.ct_walk;
	o.flow_idle = d->o.flow_idle;
	d->o = o;
	log_set_level(o.verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	watch_manifests(d);
	dp_config(d);
	loop_timer_arm(d->loop, d->resync_timer, (uint64_t)o.resync * 1000,
		       (uint64_t)o.resync * 1000);
	d->dirty_manifests = d->dirty_links = d->dirty_apply = true;
	log_info("SIGHUP: options and manifests reloaded");
	return 0;
}

static int on_signal(struct loop *l, struct loop_src *s, uint32_t signo, void *ctx)
{
	struct segd *d = ctx;

	if (signo == SIGHUP)
		return reload(d);
	log_info("signal %u: stopping; programs and maps stay pinned and enforcing", signo);
	loop_stop(l);
	return 0;
}

static int enter_netns(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return log_err(-errno, "open node netns %s", path);
	if (setns(fd, CLONE_NEWNET))
		err = log_err(-errno, "setns %s", path);
	close(fd);
	return err;
}

static int setup(struct segd *d)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	struct seg_dp_opts dpo = { .pin_dir = d->o.pin_dir, .rebuild_stale = true };
	struct ctl_server_opts co = { .path = d->o.socket, .handler = segd_ctl_handler, .ctx = d };
	int err;

	if (d->o.node_netns && (err = enter_netns(d->o.node_netns)))
		return err;
	err = seg_dp_open(&d->dp, &dpo);
	if (err)
		return err;
	err = seg_apply_new(d->dp, &d->apply);
	if (err)
		return log_err(err, "read the maps under %s", d->o.pin_dir);
	err = dp_config(d);
	if (err)
		return err;
	err = segd_state_load(d);
	if (err)
		return err;
	if ((err = loop_new(&d->loop)))
		return log_err(err, "event loop");
	loop_set_before_sleep(d->loop, before_sleep, d);
	err = loop_add_signals(d->loop, sigs, 3, on_signal, d);
	if (err)
		return err;
	err = loop_add_timer(d->loop, d->o.debounce ?: 1, 0, "manifests-debounce",
			     on_manifests_timer, d, &d->manifests_timer);
	if (!err)
		err = loop_add_timer(d->loop, d->o.debounce ?: 1, 0, "links-debounce",
				     on_links_timer, d, &d->links_timer);
	if (!err)
		err = loop_add_timer(d->loop, SEGD_TRIM_IDLE_MS, 0, "trim", on_trim_timer, d,
				     &d->trim_timer);
	if (!err)
		err = loop_add_timer(d->loop, (uint64_t)d->o.resync * 1000,
				     (uint64_t)d->o.resync * 1000, "resync", on_resync, d,
				     &d->resync_timer);
	if (err)
		return err;
	/* The debounce timers wait for their first burst. */
	loop_timer_disarm(d->loop, d->manifests_timer);
	loop_timer_disarm(d->loop, d->links_timer);
	loop_timer_disarm(d->loop, d->trim_timer);
	err = discover_watch_new(NULL, on_link_event, d, &d->watch);
	if (err)
		return err;
	err = loop_add_fd(d->loop, discover_watch_fd(d->watch), EPOLLIN, "rtnetlink", on_links, d,
			  NULL);
	if (err)
		return err;
	err = watch_manifests(d);
	if (err)
		return err;
	/* The first reconcile, before anyone can talk to us. */
	d->dirty_manifests = d->dirty_links = d->dirty_apply = true;
	err = segd_sync(d);
	if (seg_dp_commit_pending(d->dp)) {
		/* Stale pins: the maps segd computes were made anew and the
		 * programs attached before still use the old ones. Switch only
		 * onto maps that hold the whole state. */
		if (err)
			return log_err(
				err,
				"the maps rebuilt for stale pins under %s could not be filled "
				"(%s): nothing switched, the programs in place go on "
				"enforcing with the old maps",
				d->o.pin_dir, d->last_error[0] ? d->last_error : "sync failed");
		err = seg_dp_commit(d->dp);
		if (err)
			return log_err(err, "switch to the rebuilt maps under %s", d->o.pin_dir);
		log_info("stale pins under %s rebuilt and filled; the programs switched to them",
			 d->o.pin_dir);
	}
	err = ctl_server_start(d->loop, &co, &d->ctl);
	if (err)
		return err;
	err = segd_export_start(d, &d->exp);
	if (err)
		return err;
	if (d->o.metrics && (err = segd_metrics_start(d, d->o.metrics)))
		return err;
	log_info("ready: pin dir %s, socket %s, %zu endpoints attached%s%s", d->o.pin_dir,
		 d->o.socket, d->natt, d->last_error[0] ? "; error: " : "", d->last_error);
	return 0;
}

static void teardown(struct segd *d)
{
	segd_export_stop(d->exp); /* delivers what it can (bounded), before the loop goes */
	if (d->metrics)
		segd_metrics_stop(d->metrics);
	if (d->ctl)
		ctl_server_stop(d->ctl);
	if (d->watch)
		discover_watch_free(d->watch);
	loop_free(d->loop);
	if (d->inotify_fd >= 0)
		close(d->inotify_fd);
	discover_result_free(&d->scan);
	seg_compiled_free(d->c);
	seg_manifests_free(d->m);
	seg_apply_free(d->apply);
	seg_dp_close(d->dp); /* pins stay: enforcement continues */
	segd_state_free(d);
	free(d->att);
}

int main(int argc, char **argv)
{
	struct segd d = { .inotify_fd = -1, .argc = argc, .argv = argv };
	char **keep = NULL, *sockdir = NULL;
	int kargc = 0, r, err;

	log_init("segd", LOG_LVL_INFO);
	signal(SIGPIPE, SIG_IGN); /* a client or scraper gone mid-answer is an error, not a kill */
	r = parse_opts(argc, argv, &d.o, &kargc, &keep);
	if (r != OPTS_RUN)
		return r;
	if (keep_argv(&d, keep, kargc))
		return OPTS_EXIT_FAIL;
	if (d.o.verbose)
		log_set_level(LOG_LVL_DEBUG);
	log_hook_libbpf();
	d.o.socket = seg_ctl_socket_path(d.o.socket);
	if (d.o.state_file) {
		snprintf(d.state_path, sizeof(d.state_path), "%s", d.o.state_file);
	} else {
		sockdir = strdup(d.o.socket);
		if (!sockdir)
			return OPTS_EXIT_FAIL;
		snprintf(d.state_path, sizeof(d.state_path), "%s/segd-state.json",
			 dirname(sockdir));
		free(sockdir);
	}
	d.started = time(NULL);
	log_info("segd %s starting", SEG_VERSION);
	err = setup(&d);
	if (!err)
		err = loop_run(d.loop);
	teardown(&d);
	for (size_t i = 0; i < d.ncfg_argv; i++)
		segd_config_argv_free(d.cfg_argv[i].n, d.cfg_argv[i].v, 0);
	free(d.cfg_argv);
	return err ? OPTS_EXIT_FAIL : OPTS_EXIT_OK;
}
