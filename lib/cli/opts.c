// SPDX-License-Identifier: GPL-2.0-only
/* Table-driven commands and options over getopt_long. */
#include "cli/opts.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define OPT_LONG_BASE 256 /* getopt val of long-only options: base + index */

/* One option of the merged (leaf + globals) list being parsed. */
struct opt_ref {
	const struct opt *o;
	void *dst; /* the struct the option's field lives in */
	int leaf_idx; /* index in the leaf table, -1 for globals */
};

/* ---- values -------------------------------------------------------------- */

int opts_parse_ull(const char *arg, unsigned long long min, unsigned long long max,
		   unsigned long long *out)
{
	const char *digits = arg;
	unsigned long long v;
	int base = 10;
	char *end;

	if (!arg)
		return -EINVAL;
	if (arg[0] == '0' && (arg[1] == 'x' || arg[1] == 'X')) {
		digits = arg + 2;
		base = 16;
	}
	/* strtoull would take signs and spaces; never octal ("080" is 80) */
	if (!(base == 16 ? isxdigit((unsigned char)*digits) : isdigit((unsigned char)*digits)))
		return -EINVAL;
	errno = 0;
	v = strtoull(digits, &end, base);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int opts_enum_index(const char *const *choices, const char *arg)
{
	size_t len = strlen(arg);
	int found = -EINVAL;

	for (int i = 0; len && choices[i]; i++) {
		if (!strcmp(choices[i], arg))
			return i;
		if (!strncmp(choices[i], arg, len))
			found = found == -EINVAL ? i : -EINVAL - 1000; /* ambiguous */
	}
	return found < 0 ? -EINVAL : found;
}

static unsigned long long opt_type_max(const struct opt *o)
{
	if (o->max)
		return o->max;
	return o->type == OPT_T_U16 ? UINT16_MAX : UINT32_MAX;
}

static void print_choices(FILE *fp, const char *const *choices, const char *sep)
{
	for (int i = 0; choices[i]; i++)
		fprintf(fp, "%s%s", i ? sep : "", choices[i]);
}

static const char *opt_metavar(const struct opt *o, char *buf, size_t len)
{
	if (o->type == OPT_T_ENUM) {
		FILE *m = fmemopen(buf, len, "w");

		if (!m)
			return "VALUE";
		print_choices(m, o->choices, "|");
		fclose(m);
		return buf;
	}
	return o->metavar ?: "VALUE";
}

/* "--name" or "NAME" (positional), for messages. */
static const char *opt_label(const struct opt *o, char *buf, size_t len)
{
	if (o->positional)
		snprintf(buf, len, "%s", o->metavar ?: o->name);
	else
		snprintf(buf, len, "--%s", o->name);
	return buf;
}

static int opt_apply(const struct opt *o, void *base, const char *arg, const char *path, FILE *err)
{
	void *field = (char *)base + o->off;
	char label[64], mv[256];
	unsigned long long v;
	int r = 0;

	opt_label(o, label, sizeof(label));
	switch (o->type) {
	case OPT_T_STR:
		*(const char **)field = arg;
		return 0;
	case OPT_T_BOOL:
		*(bool *)field = true;
		return 0;
	case OPT_T_U32:
	case OPT_T_U16:
		r = opts_parse_ull(arg, o->min, opt_type_max(o), &v);
		if (r == -ERANGE) {
			fprintf(err, "%s: %s: %s out of range %llu..%llu\n", path, label, arg,
				o->min, opt_type_max(o));
			return r;
		}
		if (r)
			break;
		if (o->type == OPT_T_U32)
			*(uint32_t *)field = (uint32_t)v;
		else
			*(uint16_t *)field = (uint16_t)v;
		return 0;
	case OPT_T_ENUM:
		r = opts_enum_index(o->choices, arg);
		if (r < 0)
			break;
		*(int *)field = r;
		return 0;
	case OPT_T_STRV: {
		struct opt_strv *sv = field;
		const char **nv = realloc(sv->v, (sv->n + 1) * sizeof(*nv));

		if (!nv) {
			fprintf(err, "%s: %s: out of memory\n", path, label);
			return -ENOMEM;
		}
		nv[sv->n++] = arg;
		sv->v = nv;
		return 0;
	}
	case OPT_T_CUSTOM:
		r = o->parse(arg, field);
		if (r == -ERANGE) {
			fprintf(err, "%s: %s: %s out of range (%s)\n", path, label, arg,
				opt_metavar(o, mv, sizeof(mv)));
			return r;
		}
		if (!r)
			return 0;
		break;
	}
	fprintf(err, "%s: %s: invalid value '%s', expected %s\n", path, label, arg,
		opt_metavar(o, mv, sizeof(mv)));
	return r ?: -EINVAL;
}

/* ---- commands ------------------------------------------------------------ */

const struct cmd *opts_find_cmd(const struct cmd *sub, const char *name, bool *ambiguous)
{
	const struct cmd *found = NULL;
	size_t len = strlen(name);

	*ambiguous = false;
	for (const struct cmd *c = sub; len && c->name; c++) {
		if (!strcmp(c->name, name) || (c->alias && !strcmp(c->alias, name))) {
			*ambiguous = false;
			return c;
		}
		if (!strncmp(c->name, name, len)) {
			if (found)
				*ambiguous = true;
			found = c;
		}
	}
	return *ambiguous ? NULL : found;
}

static void path_append(char *path, size_t len, const char *name)
{
	size_t used = strlen(path);

	snprintf(path + used, len - used, "%s%s", used ? " " : "", name);
}

/* ---- help ---------------------------------------------------------------- */

static void print_indented(FILE *fp, const char *text, int indent)
{
	const char *p = text;

	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		if (n)
			fprintf(fp, "%*s%.*s\n", indent, "", (int)n, p);
		else
			fputc('\n', fp);
		p += n + (nl ? 1 : 0);
	}
}

static void print_default(FILE *fp, const struct opt *o, const void *defaults)
{
	const void *f = defaults ? (const char *)defaults + o->off : NULL;

	if (o->defstr) {
		fprintf(fp, " Default: %s.", o->defstr);
		return;
	}
	if (!f)
		return;
	switch (o->type) {
	case OPT_T_STR:
		if (*(const char *const *)f)
			fprintf(fp, " Default: %s.", *(const char *const *)f);
		break;
	case OPT_T_U32:
		if (*(const uint32_t *)f)
			fprintf(fp, " Default: %u.", *(const uint32_t *)f);
		break;
	case OPT_T_U16:
		if (*(const uint16_t *)f)
			fprintf(fp, " Default: %u.", *(const uint16_t *)f);
		break;
	case OPT_T_ENUM:
		fprintf(fp, " Default: %s.", o->choices[*(const int *)f]);
		break;
	default:
		break;
	}
}

static void print_opt_help(FILE *fp, const struct opt *o, const void *defaults)
{
	char mv[256];

	fprintf(fp, "    ");
	if (o->positional) {
		fprintf(fp, "%s\n", opt_metavar(o, mv, sizeof(mv)));
	} else {
		if (o->short_name)
			fprintf(fp, "-%c, ", o->short_name);
		fprintf(fp, "--%s", o->name);
		if (o->type != OPT_T_BOOL)
			fprintf(fp, " %s", opt_metavar(o, mv, sizeof(mv)));
		fputc('\n', fp);
	}
	fprintf(fp, "        %s.", o->help ?: "");
	if (o->required)
		fprintf(fp, " Required.");
	if ((o->type == OPT_T_U32 || o->type == OPT_T_U16) && (o->min || o->max))
		fprintf(fp, " Range: %llu..%llu.", o->min, opt_type_max(o));
	if (o->type == OPT_T_STRV)
		fprintf(fp, " Repeatable.");
	if (!o->required)
		print_default(fp, o, defaults);
	fputc('\n', fp);
}

static void print_synopsis(FILE *fp, const char *path, const struct cmd *c)
{
	char mv[256];

	fprintf(fp, "    %s", path);
	if (c->sub) {
		fprintf(fp, " COMMAND [OPTIONS]\n");
		return;
	}
	for (const struct opt *o = c->opts; o && o->name; o++) {
		if (o->positional)
			continue;
		fprintf(fp, " %s--%s", o->required ? "" : "[", o->name);
		if (o->type != OPT_T_BOOL)
			fprintf(fp, " %s", opt_metavar(o, mv, sizeof(mv)));
		fprintf(fp, "%s%s", o->required ? "" : "]", o->type == OPT_T_STRV ? "..." : "");
	}
	for (const struct opt *o = c->opts; o && o->name; o++)
		if (o->positional)
			fprintf(fp, o->required ? " %s" : " [%s]", opt_metavar(o, mv, sizeof(mv)));
	fputc('\n', fp);
}

void opts_print_help(FILE *fp, const char *path, const struct cmd *c, const struct opts_globals *g)
{
	fprintf(fp, "NAME\n    %s - %s\n\nSYNOPSIS\n", path, c->summary ?: "");
	print_synopsis(fp, path, c);
	if (c->description) {
		fprintf(fp, "\nDESCRIPTION\n");
		print_indented(fp, c->description, 4);
	}
	if (c->sub) {
		size_t w = 0;

		fprintf(fp, "\nCOMMANDS\n");
		for (const struct cmd *s = c->sub; s->name; s++)
			w = strlen(s->name) > w ? strlen(s->name) : w;
		for (const struct cmd *s = c->sub; s->name; s++) {
			fprintf(fp, "    %-*s  %s", (int)w, s->name, s->summary ?: "");
			fprintf(fp, s->alias ? " (alias: %s)\n" : "\n", s->alias);
		}
		fprintf(fp,
			"\n    Commands may be abbreviated to a unique prefix.\n"
			"    Run '%s COMMAND --help' for a command's options.\n",
			path);
	} else if (c->opts && c->opts->name) {
		fprintf(fp, "\nOPTIONS\n");
		for (const struct opt *o = c->opts; o->name; o++)
			print_opt_help(fp, o, c->defaults);
	}
	if (g && g->opts && g->opts->name) {
		fprintf(fp, "\nGLOBAL OPTIONS\n");
		for (const struct opt *o = g->opts; o->name; o++)
			print_opt_help(fp, o, g->dst);
	}
	fprintf(fp, "    -h, --help\n        Show this help and exit.\n");
	if (c->examples) {
		fprintf(fp, "\nEXAMPLES\n");
		print_indented(fp, c->examples, 4);
	}
	fprintf(fp, "\nEXIT STATUS\n    0 success, 1 failure, 2 usage error.\n");
}

/* ---- parsing ------------------------------------------------------------- */

static int add_refs(struct opt_ref *refs, int n, const struct opt *opts, void *dst, bool leaf)
{
	for (int i = 0; opts && opts[i].name; i++) {
		if (n == OPTS_MAX)
			return -E2BIG;
		refs[n++] =
			(struct opt_ref){ .o = &opts[i], .dst = dst, .leaf_idx = leaf ? i : -1 };
	}
	return n;
}

static void usage_hint(FILE *err, const char *path)
{
	fprintf(err, "Try '%s --help' for more information.\n", path);
}

static uint64_t ref_bit(const struct opt_ref *r)
{
	return r->leaf_idx >= 0 ? 1ull << r->leaf_idx : 0;
}

/* Assigns arg to the first positional not given yet; 0 or -1 (reported). */
static int apply_positional(struct opt_ref *refs, int n, const char *arg, uint64_t *given,
			    const char *path, FILE *err)
{
	for (int i = 0; i < n; i++) {
		if (!refs[i].o->positional || (*given & ref_bit(&refs[i])))
			continue;
		if (opt_apply(refs[i].o, refs[i].dst, arg, path, err))
			return -1;
		*given |= ref_bit(&refs[i]);
		return 0;
	}
	fprintf(err, "%s: unexpected argument '%s'\n", path, arg);
	return -1;
}

/* getopt_long value c (short name or OPT_LONG_BASE + index); 0 or -1. */
static int apply_option(struct opt_ref *refs, int n, int c, const char *arg, uint64_t *given,
			const char *path, FILE *err)
{
	for (int i = 0; i < n; i++) {
		const struct opt *o = refs[i].o;

		if (c != OPT_LONG_BASE + i &&
		    (c >= OPT_LONG_BASE || c != o->short_name || o->positional))
			continue;
		if (opt_apply(o, refs[i].dst, arg, path, err))
			return -1;
		*given |= ref_bit(&refs[i]);
		return 0;
	}
	return -1;
}

/* stop_at_arg: '+' (stop at the first non-option), else '-' (non-options
 * come back in order as 1). */
static void build_getopt(const struct opt_ref *refs, int n, bool stop_at_arg, struct option *lopts,
			 char *sopts)
{
	char *sp = sopts;
	int l = 0;

	*sp++ = stop_at_arg ? '+' : '-';
	*sp++ = ':';
	*sp++ = 'h';
	for (int i = 0; i < n; i++) {
		const struct opt *o = refs[i].o;

		if (o->positional)
			continue;
		lopts[l++] =
			(struct option){ o->name,
					 o->type == OPT_T_BOOL ? no_argument : required_argument,
					 NULL, OPT_LONG_BASE + i };
		if (o->short_name) {
			*sp++ = (char)o->short_name;
			if (o->type != OPT_T_BOOL)
				*sp++ = ':';
		}
	}
	lopts[l++] = (struct option){ "help", no_argument, NULL, 'h' };
	lopts[l] = (struct option){ 0 };
	*sp = '\0';
}

/*
 * getopt_long over argv[0..argc) (argv[0] ignored) for refs. stop_at_arg:
 * stop at the first non-option (global options before the command); else
 * every argument is consumed, positionals included. Returns the index of
 * the first unparsed argument, -1 on a usage error (reported), -2 when
 * --help was asked.
 */
static int parse_refs(struct opt_ref *refs, int n, int argc, char **argv, bool stop_at_arg,
		      uint64_t *given, const char *path, FILE *err)
{
	struct option lopts[OPTS_MAX + 2];
	char sopts[2 * OPTS_MAX + 8];
	int c, idx = 0;

	build_getopt(refs, n, stop_at_arg, lopts, sopts);
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, sopts, lopts, &idx)) != -1) {
		if (c == 'h')
			return -2;
		if (c == '?' || c == ':') {
			const char *what = c == ':' ? "missing value for option" : "unknown option";

			if (optopt && optopt < OPT_LONG_BASE)
				fprintf(err, "%s: %s '-%c'\n", path, what, optopt);
			else
				fprintf(err, "%s: %s '%s'\n", path, what, argv[optind - 1]);
			goto usage;
		}
		if (c == 1 ? apply_positional(refs, n, optarg, given, path, err) :
			     apply_option(refs, n, c, optarg, given, path, err))
			goto usage;
	}
	/* After "--": the rest are positionals. */
	for (; !stop_at_arg && optind < argc; optind++)
		if (apply_positional(refs, n, argv[optind], given, path, err))
			goto usage;
	return optind;
usage:
	usage_hint(err, path);
	return -1;
}

static int print_group_usage(FILE *err, const char *path, const struct cmd *c, const char *what,
			     const char *name)
{
	if (name)
		fprintf(err, "%s: %s '%s'; commands:", path, what, name);
	else
		fprintf(err, "%s: %s; commands:", path, what);
	for (const struct cmd *s = c->sub; s->name; s++)
		fprintf(err, " %s", s->name);
	fputc('\n', err);
	usage_hint(err, path);
	return OPTS_EXIT_USAGE;
}

static int check_required(const struct cmd *c, uint64_t given, const char *path, FILE *err)
{
	char label[64];

	for (int i = 0; c->opts && c->opts[i].name; i++) {
		if (c->opts[i].required && !(given & (1ull << i))) {
			fprintf(err, "%s: missing %s%s\n", path,
				c->opts[i].positional ? "argument " : "required option ",
				opt_label(&c->opts[i], label, sizeof(label)));
			usage_hint(err, path);
			return OPTS_EXIT_USAGE;
		}
	}
	return OPTS_RUN;
}

static int parse_leaf(const struct cmd *c, const struct opts_globals *g, int argc, char **argv,
		      struct opts_parsed *res, FILE *out, FILE *err)
{
	struct opt_ref refs[OPTS_MAX];
	int n, r;

	res->opts = calloc(1, c->opts_size ?: 1);
	if (!res->opts) {
		fprintf(err, "%s: out of memory\n", res->path);
		return OPTS_EXIT_FAIL;
	}
	if (c->defaults)
		memcpy(res->opts, c->defaults, c->opts_size);
	n = add_refs(refs, 0, c->opts, res->opts, true);
	if (n >= 0 && g)
		n = add_refs(refs, n, g->opts, g->dst, false);
	if (n < 0) {
		fprintf(err, "%s: too many options\n", res->path);
		return OPTS_EXIT_FAIL;
	}
	r = parse_refs(refs, n, argc, argv, false, &res->given, res->path, err);
	if (r == -2) {
		opts_print_help(out, res->path, c, g);
		return OPTS_EXIT_OK;
	}
	if (r < 0)
		return OPTS_EXIT_USAGE;
	return check_required(c, res->given, res->path, err);
}

int opts_parse(const struct cmd *root, const struct opts_globals *g, int argc, char **argv,
	       struct opts_parsed *res, FILE *out, FILE *err)
{
	const struct cmd *c = root;
	const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	struct opt_ref refs[OPTS_MAX];
	uint64_t dummy = 0;
	int i, n, r;

	memset(res, 0, sizeof(*res));
	path_append(res->path, sizeof(res->path), root->name ?: prog);
	n = g ? add_refs(refs, 0, g->opts, g->dst, false) : 0;
	if (n < 0)
		return OPTS_EXIT_FAIL;
	i = parse_refs(refs, n, argc, argv, true, &dummy, res->path, err);
	if (i == -2) {
		opts_print_help(out, res->path, root, g);
		return OPTS_EXIT_OK;
	}
	if (i < 0)
		return OPTS_EXIT_USAGE;
	while (c->sub) {
		const struct cmd *next;
		bool amb;

		if (i >= argc)
			return print_group_usage(err, res->path, c, "missing command", NULL);
		if (!strcmp(argv[i], "help")) {
			opts_print_help(out, res->path, c, g);
			return OPTS_EXIT_OK;
		}
		next = opts_find_cmd(c->sub, argv[i], &amb);
		if (!next && !amb)
			return print_group_usage(err, res->path, c, "unknown command", argv[i]);
		if (!next) {
			fprintf(err, "%s: ambiguous command '%s', could be:", res->path, argv[i]);
			for (const struct cmd *s = c->sub; s->name; s++)
				if (!strncmp(s->name, argv[i], strlen(argv[i])))
					fprintf(err, " %s", s->name);
			fputc('\n', err);
			usage_hint(err, res->path);
			return OPTS_EXIT_USAGE;
		}
		c = next;
		path_append(res->path, sizeof(res->path), c->name);
		i++;
		if (c->sub && i < argc && (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))) {
			opts_print_help(out, res->path, c, g);
			return OPTS_EXIT_OK;
		}
	}
	res->cmd = c;
	/* argv[i - 1] plays argv[0] for getopt. */
	r = parse_leaf(c, g, argc - i + 1, argv + i - 1, res, out, err);
	if (r != OPTS_RUN)
		opts_parsed_free(res);
	return r;
}

void opts_parsed_free(struct opts_parsed *res)
{
	if (res->cmd && res->opts) {
		for (const struct opt *o = res->cmd->opts; o && o->name; o++)
			if (o->type == OPT_T_STRV)
				free(((struct opt_strv *)((char *)res->opts + o->off))->v);
	}
	free(res->opts);
	res->opts = NULL;
	res->cmd = NULL;
}

bool opts_given(const struct opts_parsed *res, const char *name)
{
	for (int i = 0; res->cmd && res->cmd->opts && res->cmd->opts[i].name; i++)
		if (!strcmp(res->cmd->opts[i].name, name))
			return res->given & (1ull << i);
	return false;
}

/* ---- bash completion ------------------------------------------------------ */

static void comp_opts(FILE *fp, const struct opt *opts)
{
	for (const struct opt *o = opts; o && o->name; o++)
		if (!o->positional)
			fprintf(fp, " --%s", o->name);
}

/* One case arm per command path: what may follow it. */
static void comp_words(FILE *fp, const struct cmd *c, const char *path,
		       const struct opts_globals *g)
{
	fprintf(fp, "\t\"%s\") words=\"", path);
	if (c->sub) {
		for (const struct cmd *s = c->sub; s->name; s++)
			fprintf(fp, " %s", s->name);
	} else {
		comp_opts(fp, c->opts);
	}
	comp_opts(fp, g ? g->opts : NULL);
	fprintf(fp, " --help\" ;;\n");
	for (const struct cmd *s = c->sub; s && s->name; s++) {
		char sub[256];

		snprintf(sub, sizeof(sub), "%s %s", path, s->name);
		comp_words(fp, s, sub, g);
	}
}

/* Options taking a value: enums complete their choices, others files. */
static void comp_values(FILE *fp, const struct opt *opts, bool list_only)
{
	for (const struct opt *o = opts; o && o->name; o++) {
		if (o->positional || o->type == OPT_T_BOOL)
			continue;
		if (list_only) {
			fprintf(fp, " --%s", o->name);
			if (o->short_name)
				fprintf(fp, " -%c", o->short_name);
			continue;
		}
		if (o->type != OPT_T_ENUM)
			continue;
		fprintf(fp, "\t--%s", o->name);
		if (o->short_name)
			fprintf(fp, "|-%c", o->short_name);
		fprintf(fp, ") COMPREPLY=($(compgen -W \"");
		print_choices(fp, o->choices, " ");
		fprintf(fp, "\" -- \"$cur\")); return ;;\n");
	}
}

static void comp_all_values(FILE *fp, const struct cmd *c, bool list_only)
{
	comp_values(fp, c->opts, list_only);
	for (const struct cmd *s = c->sub; s && s->name; s++)
		comp_all_values(fp, s, list_only);
}

void opts_print_completion_bash(FILE *fp, const char *prog, const struct cmd *root,
				const struct opts_globals *g)
{
	fprintf(fp, "# bash completion for %s, generated by '%s completion bash'\n", prog, prog);
	fprintf(fp,
		"_%s() {\n"
		"\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
		"\tlocal path=%s words i w valopts=\" ",
		prog, prog);
	comp_values(fp, g ? g->opts : NULL, true);
	comp_all_values(fp, root, true);
	fprintf(fp, " \"\n\tcase $prev in\n");
	comp_values(fp, g ? g->opts : NULL, false);
	comp_all_values(fp, root, false);
	fprintf(fp, "\tesac\n"
		    "\tif [[ $valopts == *\" $prev \"* ]]; then return; fi\n"
		    "\tfor ((i = 1; i < COMP_CWORD; i++)); do\n"
		    "\t\tw=${COMP_WORDS[i]}\n"
		    "\t\tif [[ $valopts == *\" $w \"* ]]; then ((i++)); continue; fi\n"
		    "\t\t[[ $w == -* ]] || path=\"$path $w\"\n"
		    "\tdone\n"
		    "\tcase $path in\n");
	comp_words(fp, root, prog, g);
	fprintf(fp,
		"\t*) words=\"\" ;;\n"
		"\tesac\n"
		"\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
		"}\n"
		"complete -o default -F _%s %s\n",
		prog, prog);
}
