/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * lib/cli/opts: commands described by tables; getopt_long underneath.
 *
 * A command is an options struct, its defaults and a table of options.
 * Usage and --help text (synopsis, description, options with metavar,
 * default and range, examples) are generated from the same table that
 * drives parsing, so they cannot drift.
 *
 *   struct add_opts { __u32 policy; int dir; const char *port; bool deny; };
 *   static const struct add_opts add_defaults = { .dir = 0 };
 *   static const struct opt add_optv[] = {
 *           OPT_U32(0, "policy", struct add_opts, policy, "ID", "policy id",
 *                   .min = 1, .max = UINT32_MAX, .required = true),
 *           OPT_ENUM(0, "dir", struct add_opts, dir, dir_names, "direction"),
 *           OPT_BOOL(0, "deny", struct add_opts, deny, "a deny rule"),
 *           OPT_END,
 *   };
 *   CMD_LEAF("add", do_add, add_optv, add_defaults, "add an entry", ...)
 *
 * Exit codes: OPTS_EXIT_OK 0, OPTS_EXIT_FAIL 1, OPTS_EXIT_USAGE 2.
 * Subcommands match by exact name or unique prefix; an ambiguous prefix is
 * a usage error naming the candidates.
 */
#ifndef SEG_CLI_OPTS_H
#define SEG_CLI_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define OPTS_EXIT_OK 0
#define OPTS_EXIT_FAIL 1
#define OPTS_EXIT_USAGE 2
#define OPTS_RUN (-1) /* opts_parse: parsed, run res->cmd */
#define OPTS_MAX 64 /* options per command, globals included */

enum opt_type {
	OPT_T_STR, /* const char * */
	OPT_T_U32, /* uint32_t, range [min, max] */
	OPT_T_U16, /* uint16_t, range [min, max] */
	OPT_T_BOOL, /* bool, flag without argument */
	OPT_T_ENUM, /* int: index in choices[] (exact or unique prefix) */
	OPT_T_STRV, /* struct opt_strv: repeated string */
	OPT_T_CUSTOM, /* parse(arg, field): 0 or -EINVAL/-ERANGE */
};

struct opt_strv {
	const char **v;
	size_t n;
};

struct opt {
	const char *name; /* long name, without "--"; NULL ends the table */
	int short_name; /* 0: none */
	enum opt_type type;
	size_t off; /* of the field in the command's options struct */
	const char *metavar;
	const char *help;
	bool required;
	bool positional; /* taken from the arguments left after options, in order */
	unsigned long long min, max; /* OPT_T_U32/U16; max 0 = type's max */
	const char *const *choices; /* OPT_T_ENUM, NULL-terminated */
	int (*parse)(const char *arg, void *field); /* OPT_T_CUSTOM */
	const char *defstr; /* default as shown in help (else derived) */
};

/* clang-format off */
#define OPT_F(t, f) offsetof(t, f)
#define OPT_STR(s, n, t, f, mv, h, ...)                                                        \
	{ .name = n, .short_name = s, .type = OPT_T_STR, .off = OPT_F(t, f), .metavar = mv,      \
	  .help = h, __VA_ARGS__ }
#define OPT_U32(s, n, t, f, mv, h, ...)                                                        \
	{ .name = n, .short_name = s, .type = OPT_T_U32, .off = OPT_F(t, f), .metavar = mv,      \
	  .help = h, __VA_ARGS__ }
#define OPT_U16(s, n, t, f, mv, h, ...)                                                        \
	{ .name = n, .short_name = s, .type = OPT_T_U16, .off = OPT_F(t, f), .metavar = mv,      \
	  .help = h, __VA_ARGS__ }
#define OPT_BOOL(s, n, t, f, h, ...)                                                           \
	{ .name = n, .short_name = s, .type = OPT_T_BOOL, .off = OPT_F(t, f), .help = h,         \
	  __VA_ARGS__ }
#define OPT_ENUM(s, n, t, f, ch, h, ...)                                                       \
	{ .name = n, .short_name = s, .type = OPT_T_ENUM, .off = OPT_F(t, f), .choices = ch,     \
	  .help = h, __VA_ARGS__ }
#define OPT_STRV(s, n, t, f, mv, h, ...)                                                       \
	{ .name = n, .short_name = s, .type = OPT_T_STRV, .off = OPT_F(t, f), .metavar = mv,     \
	  .help = h, __VA_ARGS__ }
#define OPT_CUSTOM(s, n, t, f, fn, mv, h, ...)                                                 \
	{ .name = n, .short_name = s, .type = OPT_T_CUSTOM, .off = OPT_F(t, f), .parse = fn,     \
	  .metavar = mv, .help = h, __VA_ARGS__ }
#define OPT_END { .name = NULL }
/* clang-format on */

struct cmd {
	const char *name; /* NULL ends a subcommand table */
	const char *alias; /* short name, matched exactly (e.g. "ep"); may be NULL */
	const char *summary; /* one line, lower case, no full stop */
	const char *description; /* paragraphs; may be NULL */
	const char *examples; /* one example per line; may be NULL */
	/* Leaf: */
	int (*run)(void *ctx, void *opts); /* 0 or -errno */
	const struct opt *opts;
	const void *defaults;
	size_t opts_size;
	/* Group: */
	const struct cmd *sub;
};

/* clang-format off */
#define CMD_LEAF(n, fn, optv, defs, sum, ...)                                                  \
	{ .name = n, .run = fn, .opts = optv, .defaults = &(defs), .opts_size = sizeof(defs),  \
	  .summary = sum, __VA_ARGS__ }
#define CMD_GROUP(n, subv, sum, ...) { .name = n, .sub = subv, .summary = sum, __VA_ARGS__ }
#define CMD_END { .name = NULL }
/* clang-format on */

/* Options shared by every command of a program (e.g. --output), parsed at
 * the top and again after any command, into their own struct. */
struct opts_globals {
	const struct opt *opts;
	void *dst; /* filled with defaults by the caller */
};

/* Result of parsing a command line down to one leaf. */
struct opts_parsed {
	const struct cmd *cmd;
	void *opts; /* malloc'd, cmd->opts_size, defaults + arguments */
	char path[128]; /* "segctl bpf endpoint set" */
	uint64_t given; /* bit i: the leaf's option i appeared */
};

/* Parses argv (argv[0] = program name) against root: global options, the
 * command path (exact or unique prefix), the leaf's options and
 * positionals. Returns OPTS_RUN with *res filled (free with
 * opts_parsed_free), or an exit code: OPTS_EXIT_OK after printing help on
 * `out` (--help, -h, "help"), OPTS_EXIT_USAGE after printing the problem
 * on err, OPTS_EXIT_FAIL (out of memory). */
int opts_parse(const struct cmd *root, const struct opts_globals *g, int argc, char **argv,
	       struct opts_parsed *res, FILE *out, FILE *err);
void opts_parsed_free(struct opts_parsed *res);
/* Whether the leaf option with this long name was given. */
bool opts_given(const struct opts_parsed *res, const char *name);

/* Finds a subcommand by exact name or unique prefix. Returns it, or NULL
 * with *ambiguous set when more than one matched. */
const struct cmd *opts_find_cmd(const struct cmd *sub, const char *name, bool *ambiguous);

/* Help text of the command reached by path (names, as matched). */
void opts_print_help(FILE *fp, const char *path, const struct cmd *c, const struct opts_globals *g);

/* A bash completion script for prog, generated from the command tables:
 * commands, options per command, enum values. */
void opts_print_completion_bash(FILE *fp, const char *prog, const struct cmd *root,
				const struct opts_globals *g);

/* Parses an enum value (exact or unique prefix); index or -EINVAL. */
int opts_enum_index(const char *const *choices, const char *arg);
/* Parses an unsigned integer (decimal, or hex with 0x; never octal) in [min, max]: 0, -EINVAL
 * (not a number) or -ERANGE. */
int opts_parse_ull(const char *arg, unsigned long long min, unsigned long long max,
		   unsigned long long *out);

#endif
