// SPDX-License-Identifier: GPL-2.0-only
/*
 * segctl policy test: "would this connection pass, and why?" over
 * Kubernetes manifests, without a cluster.
 *
 *   segctl policy test -f PATH [-f PATH ...]
 *          (--probe SPEC ... | --probes FILE | --matrix PORT/PROTO)
 *          [--datapath] [-o table|json]
 *   SPEC = NS/POD->NS/POD:PORT/PROTO   (either side may be an address;
 *          PORT may be a container port name, resolved on the destination)
 *
 * Manifests are loaded and compiled (lib/policy); each probe is decided by
 * the userspace evaluator, or with --datapath by the real BPF program
 * (policy_dp.c). Output: a table, the upstream netpol e2e truth table for
 * --matrix, or one JSON array of
 * {"from","to","port","protocol","verdict","reason"} (a stable shape).
 */
#include "segctl.h"
#include "policy_test.h"
#include "ctl_segd.h"
#include "addr.h"
#include "log.h"

#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct policy_test_opts {
	struct opt_strv files;
	struct opt_strv probe;
	const char *probes;
	const char *matrix;
	bool datapath;
	int family;
	bool audit_default;
};

static const char *const family_names[] = { "auto", "4", "6", NULL };

static const struct policy_test_opts policy_test_defaults;

static const struct opt policy_test_optv[] = {
	OPT_STRV('f', "filename", struct policy_test_opts, files, "PATH",
		 "manifest file or directory (Namespaces, Pods, NetworkPolicies); repeatable; "
		 "without it, segd answers for its live state"),
	OPT_STRV(0, "probe", struct policy_test_opts, probe, "SPEC",
		 "NS/POD->NS/POD:PORT/PROTO (a side may be an IP; PORT may be a port name)"),
	OPT_STR(0, "probes", struct policy_test_opts, probes, "FILE",
		"one SPEC a line; blank lines and # comments skipped"),
	OPT_STR(0, "matrix", struct policy_test_opts, matrix, "PORT/PROTO",
		"every pod to every pod: the netpol e2e truth table (. allowed, X denied)"),
	OPT_BOOL(0, "datapath", struct policy_test_opts, datapath,
		 "decide with the real BPF program (private maps, BPF_PROG_TEST_RUN; root)"),
	OPT_ENUM(0, "family", struct policy_test_opts, family, family_names,
		 "address family of pod-to-pod probes (auto: IPv4 when both have one)"),
	OPT_BOOL(0, "audit-default", struct policy_test_opts, audit_default,
		 "namespaces without seg.io/enforcement are audited (segd's global default)"),
	OPT_END,
};

struct pt {
	struct segctl *cli;
	const struct policy_test_opts *o;
	struct seg_manifests *m;
	struct seg_compiled *c;
	struct pt_probe *p;
	size_t n, cap;
};

/* ---- reasons, worded like lib/policy's evaluator ----------------------------------- */

/* snprintf that truncates quietly (texts are bounded by seg_verdict.reason). */
__attribute__((format(printf, 3, 4))) static void fmt(char *buf, size_t len, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(buf, len, f, ap);
	va_end(ap);
}

static const char *dir_name(int dir)
{
	return dir == SEG_DIR_INGRESS ? "ingress" : "egress";
}

static void dir_text(const struct seg_compiled *c, const struct seg_pod *pod, int dir,
		     const struct seg_dir_verdict *dv, char *buf, size_t len)
{
	const struct seg_ep_entry *ep = seg_compiled_endpoint(c, pod);
	char rule[256];
	int n = 0;

	switch (dv->reason) {
	case SEG_R_ALLOW_NOT_ISOLATED:
		snprintf(buf, len, "not isolated: no policy selects %s/%s for %s", pod->ns,
			 pod->name, dir_name(dir));
		return;
	case SEG_R_ALLOW_RULE:
	case SEG_DROP_DENY_RULE:
		seg_rule_describe(c, dv->rule_id, rule, sizeof(rule));
		fmt(buf, len, "%s by %s", dv->reason == SEG_R_ALLOW_RULE ? "allowed" : "denied",
		    rule);
		return;
	case SEG_R_AUDIT:
	case SEG_DROP_POLICY:
		n = snprintf(buf, len, "%sisolated by ",
			     dv->reason == SEG_R_AUDIT ? "audit: " : "");
		for (size_t i = 0; ep && i < ep->nsel[dir] && n >= 0 && (size_t)n < len; i++) {
			const struct seg_netpol *np = &c->m->pols[ep->sel[dir][i]];

			n += snprintf(buf + n, len - n, "%s%s/%s", i ? ", " : "", np->ns, np->name);
		}
		if (n >= 0 && (size_t)n < len)
			snprintf(buf + n, len - n, " (%s); no rule allows%s", dir_name(dir),
				 dv->reason == SEG_R_AUDIT ? "; passed" : "");
		return;
	default:
		snprintf(buf, len, "%s on %s/%s (%s)", seg_reason_str(dv->reason), pod->ns,
			 pod->name, dir_name(dir));
	}
}

void pt_reason_text(const struct seg_compiled *c, const struct pt_probe *p, struct seg_verdict *v)
{
	const struct seg_pod *pods[SEG_DIR_MAX] = {
		[SEG_DIR_INGRESS] = p->dst.pod, [SEG_DIR_EGRESS] = p->src.pod
	};
	char why[SEG_DIR_MAX][256] = { "", "" };

	v->verdict = SEG_VERDICT_ALLOW;
	if (p->src.pod && p->src.pod == p->dst.pod) {
		snprintf(v->reason, sizeof(v->reason),
			 "loopback: %s/%s reaching itself never leaves the pod", p->src.pod->ns,
			 p->src.pod->name);
		return;
	}
	for (int d = 0; d < SEG_DIR_MAX; d++) {
		if (v->dir[d].evaluated)
			dir_text(c, pods[d], d, &v->dir[d], why[d], sizeof(why[d]));
	}
	for (int d = SEG_DIR_EGRESS; d >= SEG_DIR_INGRESS; d--) {
		if (v->dir[d].evaluated && v->dir[d].verdict == SEG_VERDICT_DENY) {
			v->verdict = SEG_VERDICT_DENY;
			snprintf(v->reason, sizeof(v->reason), "%s", why[d]);
			return;
		}
		if (v->dir[d].evaluated && v->dir[d].verdict == SEG_VERDICT_AUDIT)
			v->verdict = SEG_VERDICT_AUDIT;
	}
	if (!v->dir[0].evaluated && !v->dir[1].evaluated)
		snprintf(v->reason, sizeof(v->reason), "no endpoint on this node for either side");
	else
		fmt(v->reason, sizeof(v->reason), "%s%s%s", why[SEG_DIR_EGRESS],
		    *why[SEG_DIR_EGRESS] && *why[SEG_DIR_INGRESS] ? "; " : "",
		    why[SEG_DIR_INGRESS]);
}

/* ---- probes -------------------------------------------------------------------------- */

static const struct in6_addr *pod_addr(const struct seg_pod *pod, bool v4)
{
	for (size_t i = 0; i < pod->naddrs; i++) {
		if (seg_addr_is_v4(&pod->addrs[i]) == v4)
			return &pod->addrs[i];
	}
	return NULL;
}

/* "NS/POD" or an address. 0, -EINVAL (bad syntax) or -ENOENT (logged). */
static int parse_side(struct pt *t, const char *s, size_t len, struct seg_endpoint_ref *r,
		      char *show, size_t showlen)
{
	char buf[256], *slash;

	if (!len || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = 0;
	fmt(show, showlen, "%s", buf);
	memset(r, 0, sizeof(*r));
	if (!seg_addr_parse(buf, &r->addr))
		return 0;
	slash = strchr(buf, '/');
	if (!slash || slash == buf || !slash[1] || strchr(slash + 1, '/'))
		return -EINVAL;
	*slash = 0;
	r->pod = seg_manifests_pod(t->m, buf, slash + 1);
	if (!r->pod)
		return log_err(-ENOENT, "no pod %s/%s in the manifests", buf, slash + 1);
	return 0;
}

/* Addresses of pod sides: the family asked for, else IPv4 when both sides
 * have one, else IPv6; an address side fixes the family. */
static int pick_addrs(struct pt *t, struct pt_probe *p)
{
	struct seg_endpoint_ref *sides[2] = { &p->src, &p->dst };
	int fam = t->o->family == 1 ? 4 : t->o->family == 2 ? 6 : 0;

	for (int i = 0; i < 2; i++) {
		if (!sides[i]->pod)
			fam = seg_addr_is_v4(&sides[i]->addr) ? 4 : 6;
	}
	if (!fam)
		fam = (!p->src.pod || pod_addr(p->src.pod, true)) &&
				      (!p->dst.pod || pod_addr(p->dst.pod, true)) ?
			      4 :
			      6;
	for (int i = 0; i < 2; i++) {
		const struct seg_pod *pod = sides[i]->pod;
		const struct in6_addr *a;

		if (!pod) {
			if (seg_addr_is_v4(&sides[i]->addr) != (fam == 4))
				return log_err(-EINVAL, "%s->%s: addresses of two families",
					       p->from, p->to);
			continue;
		}
		a = pod_addr(pod, fam == 4);
		if (!a)
			return log_err(-ENOENT, "%s/%s has no IPv%d address", pod->ns, pod->name,
				       fam);
		sides[i]->addr = *a;
	}
	return 0;
}

static struct pt_probe *probe_new(struct pt *t)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct pt_probe *v = realloc(t->p, cap * sizeof(*v));

		if (!v)
			return NULL;
		t->p = v;
		t->cap = cap;
	}
	memset(&t->p[t->n], 0, sizeof(t->p[0]));
	return &t->p[t->n];
}

/* "PORT/PROTO"; the port may be a name when dst (resolving it) is given. */
static int parse_port(const char *s, const struct seg_pod *dst, bool names, __u16 *port,
		      __u8 *proto)
{
	char buf[64], *slash;
	unsigned long long v;
	int pr;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (!slash)
		return -EINVAL;
	*slash = 0;
	for (char *q = slash + 1; *q; q++)
		*q = (char)toupper((unsigned char)*q);
	pr = seg_proto_parse(slash + 1);
	if (pr < 0)
		return -EINVAL;
	*proto = (__u8)pr;
	if (!opts_parse_ull(buf, 1, 65535, &v)) {
		*port = (__u16)v;
		return 0;
	}
	if (!names || !*buf || strspn(buf, "0123456789") == strlen(buf))
		return -EINVAL; /* a number out of range, or no name allowed */
	if (!dst)
		return log_err(-ENOENT, "port name %s needs a pod as destination", buf);
	*port = seg_pod_named_port(dst, buf, *proto);
	if (!*port)
		return log_err(-ENOENT, "%s/%s has no %s port named %s", dst->ns, dst->name,
			       seg_proto_str(*proto), buf);
	return 0;
}

/* SPEC -> probe. -EINVAL: bad syntax (usage); -ENOENT: unknown object. */
static int add_spec(struct pt *t, const char *spec)
{
	const char *arrow = strstr(spec, "->"), *colon = strrchr(spec, ':');
	struct pt_probe *p = probe_new(t);
	int err;

	if (!p)
		return log_err(-ENOMEM, "probes");
	if (!arrow || !colon || colon < arrow)
		return -EINVAL;
	err = parse_side(t, spec, (size_t)(arrow - spec), &p->src, p->from, sizeof(p->from));
	if (!err)
		err = parse_side(t, arrow + 2, (size_t)(colon - arrow - 2), &p->dst, p->to,
				 sizeof(p->to));
	if (!err)
		err = parse_port(colon + 1, p->dst.pod, true, &p->port, &p->proto);
	if (!err)
		err = pick_addrs(t, p);
	if (!err)
		t->n++;
	return err;
}

static int spec_error(struct pt *t, int err, const char *where, const char *spec)
{
	if (err == -EINVAL)
		return segctl_usage(t->cli, "%sbad probe '%s' (want NS/POD->NS/POD:PORT/PROTO)",
				    where, spec);
	return err;
}

static int add_probes_file(struct pt *t, const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, where[300];
	size_t cap = 0;
	int err = 0, ln = 0;

	if (!f)
		return log_err(-errno, "open %s", path);
	while (!err && getline(&line, &cap, f) >= 0) {
		char *s = line, *e;

		ln++;
		while (isspace((unsigned char)*s))
			s++;
		for (e = s + strlen(s); e > s && isspace((unsigned char)e[-1]); e--)
			;
		*e = 0;
		if (!*s || *s == '#')
			continue;
		snprintf(where, sizeof(where), "%s:%d: ", path, ln);
		err = add_spec(t, s);
		if (err)
			err = spec_error(t, err, where, s);
	}
	free(line);
	fclose(f);
	return err;
}

static int pod_cmp(const void *a, const void *b)
{
	const struct seg_pod *x = *(const struct seg_pod *const *)a;
	const struct seg_pod *y = *(const struct seg_pod *const *)b;
	int r = strcmp(x->ns, y->ns);

	return r ? r : strcmp(x->name, y->name);
}

/* Pods sorted by namespace/name (the matrix order); caller frees. */
static const struct seg_pod **sorted_pods(const struct seg_manifests *m)
{
	const struct seg_pod **v = calloc(m->npods + 1, sizeof(*v));

	for (size_t i = 0; v && i < m->npods; i++)
		v[i] = &m->pods[i];
	if (v)
		qsort(v, m->npods, sizeof(*v), pod_cmp);
	return v;
}

static int add_matrix(struct pt *t, const char *arg)
{
	const struct seg_pod **pods = sorted_pods(t->m);
	__u16 port;
	__u8 proto;
	int err;

	if (!pods)
		return log_err(-ENOMEM, "probes");
	err = parse_port(arg, NULL, false, &port, &proto);
	if (err)
		err = segctl_usage(t->cli, "bad --matrix '%s' (want PORT/PROTO, e.g. 80/TCP)", arg);
	for (size_t i = 0; !err && i < t->m->npods; i++) {
		for (size_t j = 0; !err && j < t->m->npods; j++) {
			struct pt_probe *p = probe_new(t);

			if (!p) {
				err = log_err(-ENOMEM, "probes");
				break;
			}
			p->src.pod = pods[i];
			p->dst.pod = pods[j];
			snprintf(p->from, sizeof(p->from), "%s/%s", pods[i]->ns, pods[i]->name);
			snprintf(p->to, sizeof(p->to), "%s/%s", pods[j]->ns, pods[j]->name);
			p->port = port;
			p->proto = proto;
			err = pick_addrs(t, p);
			if (!err)
				t->n++;
		}
	}
	free(pods);
	return err;
}

static int gather(struct pt *t)
{
	const struct policy_test_opts *o = t->o;
	int modes = (o->probe.n > 0) + !!o->probes + !!o->matrix, err = 0;

	if (modes != 1)
		return segctl_usage(t->cli, "give exactly one of --probe, --probes, --matrix");
	for (size_t i = 0; i < o->probe.n && !err; i++) {
		err = add_spec(t, o->probe.v[i]);
		if (err)
			err = spec_error(t, err, "", o->probe.v[i]);
	}
	if (!err && o->probes)
		err = add_probes_file(t, o->probes);
	if (!err && o->matrix)
		err = add_matrix(t, o->matrix);
	return err;
}

/* ---- loading, deciding, printing ------------------------------------------------------ */

static int load(struct pt *t)
{
	struct seg_compile_opts co = { .audit_default = t->o->audit_default };
	struct seg_diag d = {};
	int err;

	t->m = seg_manifests_new();
	if (!t->m)
		return log_err(-ENOMEM, "manifests");
	for (size_t i = 0; i < t->o->files.n; i++) {
		err = seg_manifests_load_path(t->m, t->o->files.v[i], &d);
		if (err) {
			log_error("%s", d.msg);
			return err;
		}
	}
	err = seg_compile(t->m, &co, &t->c, &d);
	if (err)
		log_error("compile: %s", d.msg);
	return err;
}

static int decide_offline(struct pt *t)
{
	for (size_t i = 0; i < t->n; i++) {
		struct pt_probe *p = &t->p[i];
		int err = seg_eval(t->c, &p->src, &p->dst, p->port, p->proto, &p->v);

		if (err)
			return log_err(err, "evaluate %s->%s", p->from, p->to);
	}
	return 0;
}

static const char *verdict_word(const struct seg_verdict *v)
{
	return v->verdict == SEG_VERDICT_DENY ? "deny" : "allow";
}

static void print_list(struct pt *t)
{
	struct out *o = t->cli->out;

	out_list_begin(o, NULL);
	for (size_t i = 0; i < t->n; i++) {
		const struct pt_probe *p = &t->p[i];

		out_obj_begin(o, NULL);
		out_str(o, OUT_ANY, "from", NULL, p->from);
		out_str(o, OUT_ANY, "to", NULL, p->to);
		out_u64(o, OUT_ANY, "port", NULL, p->port);
		out_str(o, OUT_ANY, "protocol", NULL, seg_proto_str(p->proto));
		out_str(o, OUT_ANY, "verdict", NULL, verdict_word(&p->v));
		out_str(o, OUT_ANY, "reason", NULL, p->v.reason);
		out_obj_end(o);
	}
	out_list_end(o);
}

/* The upstream netpol e2e reachability table: rows from, columns to. */
static void print_matrix(struct pt *t)
{
	size_t n = t->m->npods;

	fputs("-", stdout);
	for (size_t j = 0; j < n; j++)
		printf("\t%s", t->p[j].to);
	fputc('\n', stdout);
	for (size_t i = 0; i < n; i++) {
		fputs(t->p[i * n].from, stdout);
		for (size_t j = 0; j < n; j++)
			printf("\t%c", t->p[i * n + j].v.verdict == SEG_VERDICT_DENY ? 'X' : '.');
		fputc('\n', stdout);
	}
}

static int do_policy_test(void *ctx, void *opts)
{
	struct pt t = { .cli = ctx, .o = opts };
	int err;

	if (!t.o->files.n) /* no files: segd decides on its live state (ctl_segd.c) */
		return segctl_segd_policy_test_run(ctx, &t.o->probe, t.o->probes, t.o->matrix,
						   t.o->datapath);
	err = load(&t);
	if (!err)
		err = gather(&t);
	if (!err)
		err = t.o->datapath ? pt_datapath_run(t.c, t.p, t.n) : decide_offline(&t);
	if (err)
		goto out;
	if (t.o->matrix && out_get_mode(t.cli->out) == OUT_MODE_TABLE)
		print_matrix(&t);
	else
		print_list(&t);
out:
	free(t.p);
	seg_compiled_free(t.c);
	seg_manifests_free(t.m);
	return err;
}

const struct cmd segctl_policy_cmds[] = {
	CMD_LEAF(
		"test", do_policy_test, policy_test_optv, policy_test_defaults,
		"would a connection pass, and why (offline, or through the BPF program)",
		.description =
			"Loads Namespaces, Pods and NetworkPolicies from files, compiles them and\n"
			"decides each probe: allow or deny, and the policy rule or isolation that\n"
			"decided it. Without --datapath the compiled entries are evaluated in\n"
			"userspace; with --datapath (root) the real BPF program decides, on\n"
			"private unpinned maps, egress on the source then ingress on the\n"
			"destination. --matrix prints the upstream netpol e2e truth table\n"
			"(rows from, columns to); -o json prints one array of\n"
			"{from, to, port, protocol, verdict, reason}.",
		.examples = "segctl policy test -f cluster/ --probe x/a->y/b:80/TCP\n"
			    "segctl policy test -f cluster/ --probe x/a->y/b:serve-81-udp/UDP\n"
			    "segctl policy test -f cluster/ --matrix 80/TCP --datapath\n"
			    "segctl -o json policy test -f cluster/ --probes probes.txt"),
	SEGCTL_POLICY_SEGD_CMDS, /* list, get: ctl_objects.c */
	CMD_END,
};
