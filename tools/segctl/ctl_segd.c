// SPDX-License-Identifier: GPL-2.0-only
/*
 * segctl against segd: the call over the control socket, a printer for
 * segd's JSON answers, and status / apply -f / delete -f.
 */
#include "ctl_segd.h"

#include "ctl/ctl.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEGCTL_SEGD_TIMEOUT_MS 60000

int segctl_segd_call(struct segctl *c, const char *op, json_t *args, json_t **result)
{
	const char *path = seg_ctl_socket_path(c->g.socket);
	char msg[1024];
	int fd = -1, err;

	err = seg_ctl_connect(path, &fd);
	if (err) {
		/* lib/ctl said why on stderr; scripts also get the JSON error. */
		if (out_get_mode(c->out) != OUT_MODE_TABLE)
			out_error(c->out, err, "cannot reach segd at %s (--socket or $%s)", path,
				  SEG_CTL_SOCKET_ENV);
		return SEGCTL_EREPORTED;
	}
	err = seg_ctl_call(fd, op, args, SEGCTL_SEGD_TIMEOUT_MS, result, msg, sizeof(msg));
	close(fd);
	if (err && msg[0])
		out_error(c->out, 0, "segd: %s", msg);
	else if (err)
		out_error(c->out, err, "segd at %s: %s", path, op);
	return err ? SEGCTL_EREPORTED : 0;
}

/* ---- JSON -> printer ------------------------------------------------------------ */

static void emit(struct out *o, const char *key, json_t *v);

static void emit_scalar_text(struct out *o, const char *key, json_t *v)
{
	json_t *x;
	size_t i;
	char *s = NULL;
	size_t len = 0;
	FILE *f;

	if (!json_is_array(v)) {
		emit(o, key, v);
		return;
	}
	f = open_memstream(&s, &len); /* a list in a table cell: a, b, c */
	if (!f)
		return;
	json_array_foreach(v, i, x)
	{
		if (json_is_string(x))
			fprintf(f, "%s%s", i ? "," : "", json_string_value(x));
		else if (json_is_integer(x))
			fprintf(f, "%s%lld", i ? "," : "", (long long)json_integer_value(x));
	}
	fclose(f);
	out_str(o, OUT_ANY, key, NULL, s[0] ? s : "-");
	free(s);
}

static void emit(struct out *o, const char *key, json_t *v)
{
	const char *k;
	json_t *x;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		out_obj_begin(o, key);
		json_object_foreach(v, k, x) emit(o, k, x);
		out_obj_end(o);
		break;
	case JSON_ARRAY:
		if (out_get_mode(o) == OUT_MODE_TABLE && key) {
			emit_scalar_text(o, key, v);
			break;
		}
		out_list_begin(o, key);
		json_array_foreach(v, i, x) emit(o, NULL, x);
		out_list_end(o);
		break;
	case JSON_STRING:
		out_str(o, OUT_ANY, key, NULL, json_string_value(v));
		break;
	case JSON_INTEGER:
		out_s64(o, OUT_ANY, key, NULL, json_integer_value(v));
		break;
	case JSON_REAL: {
		char buf[64];

		snprintf(buf, sizeof(buf), "%g", json_real_value(v));
		out_str(o, OUT_ANY, key, NULL, buf);
		break;
	}
	case JSON_TRUE:
	case JSON_FALSE:
		out_bool(o, OUT_ANY, key, json_is_true(v));
		break;
	case JSON_NULL:
		out_null(o, OUT_ANY, key);
		break;
	}
}

static json_t *path_get(json_t *row, const char *path)
{
	char buf[128], *save = NULL, *tok;
	json_t *v = row;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok && v; tok = strtok_r(NULL, ".", &save))
		v = json_object_get(v, tok);
	return v;
}

void segctl_segd_print(struct segctl *c, json_t *v, const char *const *cols)
{
	struct out *o = c->out;
	json_t *row;
	size_t i;

	if (out_get_mode(o) != OUT_MODE_TABLE || !cols || !json_is_array(v)) {
		emit(o, NULL, v);
		return;
	}
	out_list_begin(o, NULL);
	json_array_foreach(v, i, row)
	{
		out_obj_begin(o, NULL);
		for (int k = 0; cols[k]; k++) {
			char key[128];
			json_t *x = path_get(row, cols[k]);

			snprintf(key, sizeof(key), "%s", cols[k]);
			for (char *p = key; *p; p++)
				if (*p == '.')
					*p = '_';
			if (x)
				emit_scalar_text(o, key, x);
			else
				out_null(o, OUT_ANY, key);
		}
		out_obj_end(o);
	}
	out_list_end(o);
}

int segctl_segd_policy_test(struct segctl *c, json_t *probes, json_t **result)
{
	json_t *args = json_pack("{s:O}", "probes", probes);
	int err;

	if (!args)
		return -ENOMEM;
	err = segctl_segd_call(c, "policy-test", args, result);
	json_decref(args);
	return err;
}

int segctl_segd_policy_test_run(struct segctl *c, const struct opt_strv *probe,
				const char *probes_file, const char *matrix, bool datapath)
{
	static const char *const cols[] = { "from",    "to",	 "port", "protocol",
					    "verdict", "reason", NULL };
	json_t *probes = json_array(), *args = NULL, *res = NULL;
	char *line = NULL;
	size_t cap = 0;
	FILE *f = NULL;
	int err;

	if (datapath) {
		err = segctl_usage(c, "--datapath needs -f (segd answers from its live state)");
		goto out;
	}
	for (size_t i = 0; i < probe->n; i++)
		json_array_append_new(probes, json_pack("{s:s}", "spec", probe->v[i]));
	if (probes_file) {
		f = fopen(probes_file, "r");
		if (!f) {
			err = log_err(-errno, "open %s", probes_file);
			goto out;
		}
		while (getline(&line, &cap, f) > 0) {
			char *s = line + strspn(line, " \t");

			s[strcspn(s, "#\r\n")] = '\0';
			for (size_t n = strlen(s); n && (s[n - 1] == ' ' || s[n - 1] == '\t'); n--)
				s[n - 1] = '\0';
			if (*s)
				json_array_append_new(probes, json_pack("{s:s}", "spec", s));
		}
	}
	if (!json_array_size(probes) && !matrix) {
		err = segctl_usage(c, "give --probe, --probes or --matrix (and -f to test files "
				      "instead of segd's live state)");
		goto out;
	}
	args = json_pack("{s:O}", "probes", probes);
	if (matrix)
		json_object_set_new(args, "matrix", json_string(matrix));
	err = segctl_segd_call(c, "policy-test", args, &res);
	if (!err)
		segctl_segd_print(c, res, cols);
out:
	if (f)
		fclose(f);
	free(line);
	json_decref(probes);
	json_decref(args);
	json_decref(res);
	return err;
}

/* ---- status ------------------------------------------------------------------------ */

int segctl_status_run(void *ctx, void *opts)
{
	struct segctl *c = ctx;
	json_t *res = NULL;
	int err = segctl_segd_call(c, "status", NULL, &res);

	if (err)
		return err;
	segctl_segd_print(c, res, NULL);
	json_decref(res);
	return 0;
}

/* ---- apply / delete -f ----------------------------------------------------------------- */

static int read_file(const char *path, char **out)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, n;
	char chunk[8192];
	FILE *m;

	if (!f)
		return log_err(-errno, "open %s", path);
	m = open_memstream(&buf, &len);
	if (!m) {
		fclose(f);
		return -ENOMEM;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(f);
	fclose(m);
	*out = buf;
	return 0;
}

static bool manifest_name(const char *n)
{
	const char *dot = strrchr(n, '.');

	return n[0] != '.' && dot &&
	       (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml") || !strcmp(dot, ".json"));
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* FILE or DIR (its .yaml/.yml/.json files, sorted, not recursive) -> paths. */
static int expand(const char *arg, char ***paths, size_t *n)
{
	struct stat st;
	struct dirent *e;
	DIR *d;
	char **v;

	if (stat(arg, &st))
		return log_err(-errno, "%s", arg);
	if (!S_ISDIR(st.st_mode)) {
		v = realloc(*paths, (*n + 1) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		*paths = v;
		v[(*n)++] = realpath(arg, NULL) ?: strdup(arg);
		return 0;
	}
	d = opendir(arg);
	if (!d)
		return log_err(-errno, "open directory %s", arg);
	size_t first = *n;

	while ((e = readdir(d))) {
		char p[PATH_MAX];

		if (!manifest_name(e->d_name))
			continue;
		v = realloc(*paths, (*n + 1) * sizeof(*v));
		if (!v) {
			closedir(d);
			return -ENOMEM;
		}
		*paths = v;
		snprintf(p, sizeof(p), "%s/%s", arg, e->d_name);
		v[(*n)++] = realpath(p, NULL) ?: strdup(p);
	}
	closedir(d);
	qsort(*paths + first, *n - first, sizeof(char *), name_cmp);
	return 0;
}

/* All files in one request: segd applies (or removes) them together, with
 * one sync, or refuses them all. */
static int apply_or_delete(struct segctl *c, struct segctl_apply_opts *o, bool del)
{
	static const char *const cols[] = { "name",
					    "stats.flipped",
					    "stats.policy_writes",
					    "stats.endpoint_writes",
					    "stats.ipcache_writes",
					    "stats.duration_us",
					    NULL };
	json_t *list = json_array(), *rows = json_array(), *res = NULL, *args = NULL, *nm;
	char **paths = NULL;
	size_t n = 0, i;
	int err = 0;

	if (!o->files.n) {
		err = segctl_usage(c, "-f FILE|DIR is required");
		goto out;
	}
	for (i = 0; i < o->files.n && !err; i++)
		err = expand(o->files.v[i], &paths, &n);
	for (i = 0; i < n && !err; i++) {
		char *content = NULL;

		if (del) {
			json_array_append_new(list, json_string(paths[i]));
			continue;
		}
		err = read_file(paths[i], &content);
		if (!err)
			json_array_append_new(list, json_pack("{s:s, s:s}", "name", paths[i],
							      "content", content));
		free(content);
	}
	if (err)
		goto out;
	if (!n) {
		err = segctl_usage(c, "no .yaml, .yml or .json files in the given directories");
		goto out;
	}
	args = json_pack("{s:O}", del ? "names" : "items", list);
	err = segctl_segd_call(c, del ? "delete" : "apply", args, &res);
	if (err)
		goto out;
	json_array_foreach(json_object_get(res, "names"), i, nm) json_array_append_new(
		rows, json_pack("{s:O, s:b, s:O}", "name", nm, del ? "deleted" : "applied", 1,
				"stats", json_object_get(res, "stats")));
	segctl_segd_print(c, rows, cols);
out:
	json_decref(list);
	json_decref(rows);
	json_decref(args);
	json_decref(res);
	for (i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	return err;
}

int segctl_apply_run(void *ctx, void *opts)
{
	return apply_or_delete(ctx, opts, false);
}

int segctl_delete_run(void *ctx, void *opts)
{
	return apply_or_delete(ctx, opts, true);
}

const struct segctl_apply_opts segctl_apply_defaults;
const struct opt segctl_apply_optv[] = {
	OPT_STRV('f', "filename", struct segctl_apply_opts, files, "FILE|DIR",
		 "manifest file, or a directory of .yaml/.yml/.json files (repeatable)"),
	OPT_END,
};
