// SPDX-License-Identifier: GPL-2.0-only
/* lib/cli/opts: dispatch, prefixes, ranges, required options, positionals, help. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cli/opts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct add_opts {
	uint32_t policy;
	uint16_t port;
	int dir;
	bool deny;
	const char *name;
	struct opt_strv tags;
	int even;
	const char *addr;
};

static const char *const dirs[] = { "ingress", "egress", NULL };

static int parse_even(const char *arg, void *field)
{
	unsigned long long v;
	int err = opts_parse_ull(arg, 0, 100, &v);

	if (err)
		return err;
	if (v % 2)
		return -EINVAL;
	*(int *)field = (int)v;
	return 0;
}

static const struct add_opts add_defaults = { .port = 80, .dir = 1, .name = "default-name" };
static const struct opt add_optv[] = {
	OPT_U32('p', "policy", struct add_opts, policy, "ID", "policy id", .required = true,
		.min = 1),
	OPT_U16(0, "port", struct add_opts, port, "PORT", "server port", .min = 1),
	OPT_ENUM('d', "dir", struct add_opts, dir, dirs, "direction"),
	OPT_BOOL(0, "deny", struct add_opts, deny, "a deny rule"),
	OPT_STR(0, "name", struct add_opts, name, "NAME", "a name"),
	OPT_STRV('t', "tag", struct add_opts, tags, "TAG", "a tag"),
	OPT_CUSTOM(0, "even", struct add_opts, even, parse_even, "N", "an even number"),
	OPT_STR(0, "addr", struct add_opts, addr, "ADDR", "address", .positional = true),
	OPT_END,
};

struct glob {
	int output;
	const char *pin_dir;
};
static const char *const outputs[] = { "table", "json", "yaml", NULL };
static const struct opt glob_optv[] = {
	OPT_ENUM('o', "output", struct glob, output, outputs, "output format"),
	OPT_STR(0, "pin-dir", struct glob, pin_dir, "DIR", "pin dir"),
	OPT_END,
};

static int noop(void *ctx, void *opts)
{
	return 0;
}

static const struct cmd pol_cmds[] = {
	CMD_LEAF("add", noop, add_optv, add_defaults, "add an entry",
		 .description = "Adds one entry.", .examples = "tool policy add -p 7"),
	CMD_LEAF("delete", noop, add_optv, add_defaults, "delete an entry"),
	CMD_LEAF("list", noop, NULL, add_defaults, "list entries"),
	CMD_END,
};
static const struct cmd top_cmds[] = {
	CMD_GROUP("policy", pol_cmds, "policy entries"),
	CMD_GROUP("endpoint", pol_cmds, "endpoints", .alias = "ep"),
	CMD_GROUP("events", pol_cmds, "events"),
	CMD_END,
};
static const struct cmd root = { .name = "tool", .summary = "a tool", .sub = top_cmds };

struct run {
	struct glob g;
	struct opts_parsed res;
	char *out, *err;
	int rc;
};

/* Parses a NULL-terminated argument list; output captured. */
static void run_args(struct run *r, ...)
{
	struct opts_globals g = { glob_optv, &r->g };
	char *argv[32];
	size_t olen, elen;
	FILE *out, *err;
	va_list ap;
	int argc = 0;

	memset(r, 0, sizeof(*r));
	argv[argc++] = (char *)"/usr/bin/tool";
	va_start(ap, r);
	for (char *a; (a = va_arg(ap, char *));)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	out = open_memstream(&r->out, &olen);
	err = open_memstream(&r->err, &elen);
	r->rc = opts_parse(&root, &g, argc, argv, &r->res, out, err);
	fclose(out);
	fclose(err);
}

static void run_free(struct run *r)
{
	opts_parsed_free(&r->res);
	free(r->out);
	free(r->err);
}

static const struct add_opts *A(struct run *r)
{
	return r->res.opts;
}

static void test_defaults_and_values(void **state)
{
	struct run r;

	run_args(&r, "policy", "add", "--policy", "7", "--deny", "-t", "a", "--tag", "b",
		 "10.0.0.1", "--even", "4", NULL);
	assert_int_equal(r.rc, OPTS_RUN);
	assert_string_equal(r.res.path, "tool policy add");
	assert_int_equal(A(&r)->policy, 7);
	assert_int_equal(A(&r)->port, 80); /* default kept */
	assert_int_equal(A(&r)->dir, 1);
	assert_string_equal(A(&r)->name, "default-name");
	assert_true(A(&r)->deny);
	assert_int_equal(A(&r)->tags.n, 2);
	assert_string_equal(A(&r)->tags.v[1], "b");
	assert_string_equal(A(&r)->addr, "10.0.0.1");
	assert_int_equal(A(&r)->even, 4);
	assert_true(opts_given(&r.res, "deny"));
	assert_true(opts_given(&r.res, "addr"));
	assert_false(opts_given(&r.res, "port"));
	run_free(&r);
}

static void test_prefix_match(void **state)
{
	struct run r;

	run_args(&r, "pol", "l", NULL); /* unique prefixes */
	assert_int_equal(r.rc, OPTS_RUN);
	assert_string_equal(r.res.path, "tool policy list");
	run_free(&r);

	run_args(&r, "ep", "list", NULL); /* alias */
	assert_int_equal(r.rc, OPTS_RUN);
	assert_string_equal(r.res.path, "tool endpoint list");
	run_free(&r);

	run_args(&r, "policy", "add", "-p", "1", "-d", "in", NULL); /* enum prefix */
	assert_int_equal(r.rc, OPTS_RUN);
	assert_int_equal(A(&r)->dir, 0);
	run_free(&r);
}

static void test_ambiguous(void **state)
{
	struct run r;

	run_args(&r, "e", "list", NULL);
	assert_int_equal(r.rc, OPTS_EXIT_USAGE);
	assert_null(r.res.cmd);
	assert_non_null(strstr(r.err, "ambiguous command 'e'"));
	assert_non_null(strstr(r.err, "endpoint events"));
	run_free(&r);

	run_args(&r, "nope", NULL);
	assert_int_equal(r.rc, OPTS_EXIT_USAGE);
	assert_non_null(strstr(r.err, "unknown command 'nope'"));
	run_free(&r);

	run_args(&r, "policy", NULL);
	assert_int_equal(r.rc, OPTS_EXIT_USAGE);
	assert_non_null(strstr(r.err, "missing command"));
	run_free(&r);
}

static void test_range_errors(void **state)
{
	struct run r;

	run_args(&r, "policy", "add", "-p", "1", "--port", "70000", NULL);
	assert_int_equal(r.rc, OPTS_EXIT_USAGE);
	assert_non_null(strstr(r.err, "--port: 70000 out of range 1..65535"));
	run_free(&r);

	run_args(&r, "policy", "add", "-p", "0", NULL);
	assert_int_equal(r.rc, OPTS_EXIT_USAGE);
	assert_non_null(strstr(r.err, "--policy: 0 out of range 1..4294967295"));
	run_free(&r);

	run_args(&r, "policy", "add", "-p", "-1", NULL);
	assert_int_equal(r.rc, OPTS_EXIT_USAGE);
	assert_non_null(strstr(r.err, "--policy: invalid value '-1'"));
	run_free(&r);

	run_args(&r, "policy", "add", "-p", "1", "--dir", "sideways", NULL);
	assert_int_equal(r.rc, OPTS_EXIT_USAGE);
	assert_non_null(strstr(r.err, "expected ingress|egress"));
	run_free(&r);

	run_args(&r, "policy", "add", "-p", "1", "--even", "3", NULL);
	assert_int_equal(r.rc, OPTS_EXIT_USAGE);
	assert_non_null(strstr(r.err, "--even: invalid value '3'"));
	run_free(&r);

	run_args(&r, "policy", "add", "-p", "1", "--bogus", NULL);
	assert_int_equal(r.rc, OPTS_EXIT_USAGE);
	assert_non_null(strstr(r.err, "unknown option '--bogus'"));
	run_free(&r);

	run_args(&r, "policy", "add", "-p", "1", "a", "b", NULL);
	assert_int_equal(r.rc, OPTS_EXIT_USAGE);
	assert_non_null(strstr(r.err, "unexpected argument 'b'"));
	run_free(&r);
}

static void test_required(void **state)
{
	struct run r;

	run_args(&r, "policy", "add", "--deny", NULL);
	assert_int_equal(r.rc, OPTS_EXIT_USAGE);
	assert_non_null(strstr(r.err, "missing required option --policy"));
	assert_non_null(strstr(r.err, "Try 'tool policy add --help'"));
	run_free(&r);
}

static void test_globals(void **state)
{
	struct run r;

	run_args(&r, "-o", "json", "policy", "list", NULL);
	assert_int_equal(r.rc, OPTS_RUN);
	assert_int_equal(r.g.output, 1);
	run_free(&r);

	run_args(&r, "policy", "list", "--output", "yaml", "--pin-dir", "/x", NULL);
	assert_int_equal(r.rc, OPTS_RUN);
	assert_int_equal(r.g.output, 2);
	assert_string_equal(r.g.pin_dir, "/x");
	run_free(&r);
}

static void test_help(void **state)
{
	struct run r;

	run_args(&r, "policy", "add", "--help", NULL);
	assert_int_equal(r.rc, OPTS_EXIT_OK);
	assert_null(r.res.cmd);
	assert_non_null(strstr(r.out, "NAME\n    tool policy add - add an entry\n"));
	assert_non_null(strstr(r.out,
			       "SYNOPSIS\n    tool policy add --policy ID [--port PORT] "
			       "[--dir ingress|egress] [--deny] [--name NAME] [--tag TAG]... "
			       "[--even N] [ADDR]\n"));
	assert_non_null(strstr(r.out, "DESCRIPTION\n    Adds one entry.\n"));
	assert_non_null(strstr(r.out, "    -p, --policy ID\n        policy id. Required. Range: "
				      "1..4294967295.\n"));
	assert_non_null(strstr(r.out, "    --port PORT\n        server port. Range: 1..65535. "
				      "Default: 80.\n"));
	assert_non_null(strstr(r.out, "    -d, --dir ingress|egress\n        direction. Default: "
				      "egress.\n"));
	assert_non_null(strstr(r.out, "    -t, --tag TAG\n        a tag. Repeatable.\n"));
	assert_non_null(strstr(r.out, "GLOBAL OPTIONS\n    -o, --output table|json|yaml\n"));
	assert_non_null(strstr(r.out, "EXAMPLES\n    tool policy add -p 7\n"));
	assert_non_null(strstr(r.out, "EXIT STATUS\n"));
	assert_string_equal(r.err, "");
	run_free(&r);

	run_args(&r, "policy", "--help", NULL);
	assert_int_equal(r.rc, OPTS_EXIT_OK);
	assert_non_null(strstr(r.out, "COMMANDS\n    add     add an entry\n"));
	run_free(&r);

	run_args(&r, "help", NULL);
	assert_int_equal(r.rc, OPTS_EXIT_OK);
	assert_non_null(strstr(r.out, "    endpoint  endpoints (alias: ep)\n"));
	run_free(&r);
}

static void test_completion(void **state)
{
	struct opts_globals g = { glob_optv, NULL };
	char *text = NULL, *vals;
	size_t len;
	FILE *fp = open_memstream(&text, &len);

	assert_non_null(fp);
	opts_print_completion_bash(fp, "tool", &root, &g);
	fclose(fp);
	assert_non_null(strstr(text, "\"tool\") words=\" policy endpoint events --output --pin-dir "
				     "--help\" ;;\n"));
	assert_non_null(strstr(text, "\"tool policy add\") words=\" --policy --port --dir --deny "
				     "--name --tag --even --output --pin-dir --help\" ;;\n"));
	assert_non_null(strstr(text, "\t--dir|-d) COMPREPLY=($(compgen -W \"ingress egress\""));
	/* Options taking a value are skipped when finding the command path. */
	vals = strstr(text, "valopts=\"");
	assert_non_null(vals);
	*strchr(vals, '\n') = '\0';
	assert_non_null(strstr(vals, " --policy -p "));
	assert_null(strstr(vals, "--deny")); /* a flag takes none */
	vals[strlen(vals)] = '\n';
	assert_non_null(strstr(text, "complete -o default -F _tool tool\n"));
	free(text);
}

static void test_find_cmd(void **state)
{
	bool amb;

	assert_ptr_equal(opts_find_cmd(top_cmds, "policy", &amb), &top_cmds[0]);
	assert_ptr_equal(opts_find_cmd(top_cmds, "ev", &amb), &top_cmds[2]);
	assert_null(opts_find_cmd(top_cmds, "e", &amb));
	assert_true(amb);
	assert_null(opts_find_cmd(top_cmds, "", &amb));
	assert_false(amb);
}

static void test_parse_ull(void **state)
{
	unsigned long long v;

	assert_int_equal(opts_parse_ull("0x10", 0, 100, &v), 0);
	assert_int_equal(v, 16);
	assert_int_equal(opts_parse_ull("080", 0, 100, &v), 0);
	assert_int_equal(v, 80);
	assert_int_equal(opts_parse_ull("0x", 0, 100, &v), -EINVAL);
	assert_int_equal(opts_parse_ull("0x-1", 0, 100, &v), -EINVAL);
	assert_int_equal(opts_parse_ull("101", 0, 100, &v), -ERANGE);
	assert_int_equal(opts_parse_ull("12abc", 0, 100, &v), -EINVAL);
	assert_int_equal(opts_parse_ull("", 0, 100, &v), -EINVAL);
	assert_int_equal(opts_parse_ull("99999999999999999999999", 0, UINT32_MAX, &v), -ERANGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_values),
		cmocka_unit_test(test_prefix_match),
		cmocka_unit_test(test_ambiguous),
		cmocka_unit_test(test_range_errors),
		cmocka_unit_test(test_required),
		cmocka_unit_test(test_globals),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_find_cmd),
		cmocka_unit_test(test_completion),
		cmocka_unit_test(test_parse_ull),
	};

	return cmocka_run_group_tests_name("cli_opts", tests, NULL, NULL);
}
