// SPDX-License-Identifier: GPL-2.0-only
/*
 * segctl: the seg command line. main() parses the command line against the
 * command tables (lib/cli/opts), sets up the printer (lib/cli/out) and runs
 * one command; the exit code is 0 ok, 1 failed, 2 usage error.
 */
#include "segctl.h"
#include "ctl_segd.h"
#include "flow_cmds.h"

#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#ifndef SEG_VERSION
#define SEG_VERSION "unknown"
#endif

static const char *const output_names[] = {
	[OUT_MODE_TABLE] = "table",
	[OUT_MODE_JSON] = "json",
	[OUT_MODE_YAML] = "yaml",
	[SEGCTL_OUTPUT_DOT] = "dot",
	NULL,
};

static const struct cmd root;

static const struct opt global_optv[] = {
	OPT_STR(0, "pin-dir", struct segctl_globals, pin_dir, "DIR",
		"bpffs directory of the pinned data path"),
	OPT_STR(0, "socket", struct segctl_globals, socket, "PATH", "segd's control socket",
		.defstr = "$SEG_SOCKET or /run/seg/segd.sock"),
	OPT_ENUM('o', "output", struct segctl_globals, output, output_names,
		 "output format (dot: Graphviz, segctl topology only)"),
	OPT_BOOL('v', "verbose", struct segctl_globals, verbose,
		 "debug messages (libbpf included) on stderr"),
	OPT_END,
};

int segctl_dp(struct segctl *c, struct seg_dp **dp)
{
	struct seg_dp_opts o = { .pin_dir = c->g.pin_dir, .open_existing = true };
	int err;

	if (!c->dp) {
		err = seg_dp_open(&c->dp, &o);
		if (err) {
			c->dp = NULL; /* lib/dp said what is missing */
			return err;
		}
	}
	*dp = c->dp;
	return 0;
}

/* Usage errors: on stderr with a hint; in JSON/YAML mode also as the
 * {"error": ...} document, so scripts always get JSON on stdout. */
static void usage_report(struct out *o, const char *path, const char *msg)
{
	fprintf(stderr, "%s\nTry '%s --help' for more information.\n", msg, path);
	if (o && out_get_mode(o) != OUT_MODE_TABLE)
		out_error(o, 0, "%s", msg);
}

int segctl_usage(struct segctl *c, const char *fmt, ...)
{
	char *msg = NULL, *full = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (asprintf(&full, "%s: %s", c->parsed->path, msg ?: "usage error") < 0)
		full = NULL;
	usage_report(c->out, c->parsed->path, full ?: "usage error");
	free(full);
	free(msg);
	return SEGCTL_EUSAGE;
}

/* opts_parse's own messages, buffered: echoed to stderr and, for -o json or
 * yaml, the first line becomes the error document. */
static int parse_args(int argc, char **argv, const struct opts_globals *g, struct opts_parsed *res)
{
	char *msg = NULL;
	size_t len = 0;
	FILE *ef = open_memstream(&msg, &len);
	struct segctl_globals *gl = g->dst;
	int r = opts_parse(&root, g, argc, argv, res, stdout, ef ?: stderr);

	if (!ef)
		return r;
	fclose(ef);
	if (msg && *msg) {
		fputs(msg, stderr);
		if (r == OPTS_EXIT_USAGE &&
		    (gl->output == OUT_MODE_JSON || gl->output == OUT_MODE_YAML)) {
			struct out *o = out_new((enum out_mode)gl->output, stdout);

			if (o)
				out_error(o, 0, "%.*s", (int)strcspn(msg, "\n"), msg);
			out_free(o);
		}
	}
	free(msg);
	return r;
}

bool segctl_given(const struct segctl *c, const char *name)
{
	return opts_given(c->parsed, name);
}

/* ---- version ------------------------------------------------------------- */

struct version_opts {
	int unused;
};
static const struct version_opts version_defaults;

static int do_version(void *ctx, void *opts)
{
	struct segctl *c = ctx;

	out_str(c->out, OUT_ANY, "version", NULL, SEG_VERSION);
	out_u64(c->out, OUT_ANY, "abi_version", NULL, SEG_ABI_VERSION);
	return 0;
}

static const char *const shell_names[] = { "bash", NULL };

struct completion_opts {
	int shell;
};
static const struct completion_opts completion_defaults;
static const struct opt completion_optv[] = {
	OPT_ENUM(0, "shell", struct completion_opts, shell, shell_names, "shell",
		 .positional = true),
	OPT_END,
};

static int do_completion(void *ctx, void *opts)
{
	struct opts_globals g = { .opts = global_optv };

	opts_print_completion_bash(stdout, "segctl", &root, &g);
	return 0;
}

extern const struct cmd segctl_policy_cmds[]; /* policy_test.c */

static const struct cmd root_cmds[] = {
	CMD_GROUP("bpf", segctl_bpf_cmds, "low-level access to the pinned data path",
		  .description =
			  "Reads and writes the pinned BPF maps directly, like cilium-dbg bpf.\n"
			  "Meant for debugging and tests: on a node run by segd, segd owns\n"
			  "these maps and will overwrite what is changed here."),
	CMD_GROUP("policy", segctl_policy_cmds, "Kubernetes NetworkPolicy tools"),
	CMD_LEAF("status", segctl_status_run, NULL, segctl_noopts_defaults,
		 "segd's status: counts, map fill, last error, last apply (asks segd)"),
	CMD_LEAF(
		"apply", segctl_apply_run, segctl_apply_optv, segctl_apply_defaults,
		"hand Namespaces, Pods and NetworkPolicies to segd (kubectl apply -f)",
		.description =
			"Each file is sent whole, under its absolute path; applying the same\n"
			"path again replaces what it held. segd refuses a file that does not\n"
			"parse, validate or compile (file:line:col) and keeps its last good state.",
		.examples = "segctl apply -f policies/\nsegctl apply -f np.yaml -f pods.yaml"),
	CMD_LEAF("delete", segctl_delete_run, segctl_apply_optv, segctl_apply_defaults,
		 "remove what was applied from these files (kubectl delete -f)"),
	CMD_GROUP("endpoint", segctl_endpoint_cmds, "pod endpoints on this node (asks segd)",
		  .alias = "ep"),
	CMD_GROUP("identity", segctl_identity_cmds, "identities (asks segd)"),
	CMD_GROUP("map", segctl_map_cmds, "raw pinned maps"),
	CMD_LEAF(
		"observe", segctl_observe_run, segctl_observe_optv, segctl_observe_defaults,
		"flows as they are decided, from segd or the topology service (like hubble observe)",
		.examples = "segctl observe --follow --namespace shop\n"
			    "segctl observe --server 127.0.0.1:4245 --verdict deny --since 5m\n"
			    "segctl observe --server 127.0.0.1:4245 -f --namespace shop"),
	CMD_LEAF("topology", segctl_topology_run, segctl_topology_optv, segctl_topology_defaults,
		 "the service graph from the topology service: edges by verdict",
		 .description =
			 "One row per (source, destination, port, protocol) edge with its\n"
			 "allowed, denied and audited flow counts; -o dot prints the same\n"
			 "graph as Graphviz DOT, edges coloured by verdict (--dot is an alias).",
		 .examples = "segctl topology -o json\n"
			     "segctl topology --server 10.0.0.5:4245 -o dot | dot -Tsvg > map.svg"),
	CMD_LEAF("version", do_version, NULL, version_defaults, "print the version"),
	CMD_LEAF("completion", do_completion, completion_optv, completion_defaults,
		 "print a shell completion script generated from the command tables",
		 .examples = "source <(segctl completion bash)"),
	CMD_END,
};

static const struct cmd root = {
	.name = "segctl",
	.summary = "inspect and control the seg network policy data plane",
	.description = "Every command prints a table for people; -o json or -o yaml prints the\n"
		       "same data for scripts (one document; errors as {\"error\": ...}).\n"
		       "segctl topology also prints -o dot (Graphviz). Diagnostics go to stderr.",
	.examples = "segctl bpf load\n"
		    "segctl -o json bpf endpoint list\n"
		    "segctl bpf policy add --policy 7 --dir ingress --peer 300 --proto tcp "
		    "--port 8000-8080",
	.sub = root_cmds,
};

int main(int argc, char **argv)
{
	struct segctl c = { .g = { .pin_dir = SEG_PIN_DIR_DEFAULT, .output = OUT_MODE_TABLE } };
	struct opts_globals g = { .opts = global_optv, .dst = &c.g };
	struct opts_parsed res;
	enum out_mode mode;
	int r, err;

	log_init(argv[0], LOG_LVL_INFO);
	r = parse_args(argc, argv, &g, &res);
	if (r != OPTS_RUN)
		return r;
	if (c.g.verbose)
		log_set_level(LOG_LVL_DEBUG);
	log_hook_libbpf();
	c.parsed = &res;
	/* topology prints DOT itself; its errors and everyone else's go as text */
	mode = c.g.output == SEGCTL_OUTPUT_DOT ? OUT_MODE_TABLE : (enum out_mode)c.g.output;
	c.out = out_new(mode, stdout);
	if (!c.out) {
		log_error("out of memory");
		r = OPTS_EXIT_FAIL;
		goto out;
	}
	if (c.g.output == SEGCTL_OUTPUT_DOT && res.cmd->run != segctl_topology_run) {
		segctl_usage(&c, "-o dot is for 'segctl topology' only; "
				 "this command prints -o table, json or yaml");
		r = OPTS_EXIT_USAGE;
		goto out;
	}
	err = res.cmd->run(&c, res.opts);
	if (err == SEGCTL_EUSAGE) {
		r = OPTS_EXIT_USAGE; /* segctl_usage() reported it */
	} else if (err == SEGCTL_EREPORTED) {
		r = OPTS_EXIT_FAIL;
	} else if (err) {
		out_error(c.out, err, "%s failed", res.path);
		r = OPTS_EXIT_FAIL;
	} else {
		r = out_flush(c.out) ? OPTS_EXIT_FAIL : OPTS_EXIT_OK;
	}
out:
	out_free(c.out);
	seg_dp_close(c.dp);
	opts_parsed_free(&res);
	return r;
}
