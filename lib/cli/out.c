// SPDX-License-Identifier: GPL-2.0-only
/* Table/JSON/YAML printer: builds a jansson tree, renders it once. */
#include "cli/out.h"

#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define OUT_MAX_DEPTH 16

struct out {
	enum out_mode mode;
	FILE *fp;
	json_t *root;
	json_t *stack[OUT_MAX_DEPTH];
	int depth;
	bool stream;
	bool done;
	int err;
};

static const char *const out_mode_names[] = {
	[OUT_MODE_TABLE] = "table",
	[OUT_MODE_JSON] = "json",
	[OUT_MODE_YAML] = "yaml",
};

struct out *out_new(enum out_mode mode, FILE *fp)
{
	struct out *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->mode = mode;
	o->fp = fp;
	return o;
}

void out_free(struct out *o)
{
	if (!o)
		return;
	json_decref(o->root);
	free(o);
}

int out_mode_parse(const char *s, enum out_mode *mode)
{
	size_t len = strlen(s);

	for (size_t i = 0; len && i < sizeof(out_mode_names) / sizeof(out_mode_names[0]); i++) {
		if (!strncmp(s, out_mode_names[i], len)) {
			*mode = (enum out_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *out_mode_name(enum out_mode mode)
{
	return mode <= OUT_MODE_YAML ? out_mode_names[mode] : "?";
}

enum out_mode out_get_mode(const struct out *o)
{
	return o->mode;
}

/* ---- building ------------------------------------------------------------ */

static bool out_wants(const struct out *o, enum out_kind k)
{
	if (k == OUT_ANY)
		return true;
	return (k == OUT_TEXT) == (o->mode == OUT_MODE_TABLE);
}

static json_t *out_parent(struct out *o, const char *key)
{
	if (o->depth)
		return o->stack[o->depth - 1];
	if (!key) {
		o->err = o->err ?: -EINVAL; /* a bare value needs a container */
		return NULL;
	}
	if (!o->root) {
		o->root = json_object();
		if (!o->root) {
			o->err = -ENOMEM;
			return NULL;
		}
	}
	if (!json_is_object(o->root)) {
		o->err = o->err ?: -EINVAL;
		return NULL;
	}
	return o->root;
}

/* Takes the reference of v. */
static void out_add(struct out *o, const char *key, json_t *v)
{
	json_t *parent;
	int r;

	if (!v) {
		o->err = -ENOMEM;
		return;
	}
	parent = out_parent(o, key);
	if (!parent) {
		json_decref(v);
		return;
	}
	if (json_is_array(parent))
		r = json_array_append_new(parent, v);
	else if (key)
		r = json_object_set_new(parent, key, v);
	else {
		json_decref(v);
		r = -1;
	}
	if (r)
		o->err = o->err ?: -EINVAL;
}

static void out_push(struct out *o, const char *key, json_t *c)
{
	if (!c) {
		o->err = -ENOMEM;
		return;
	}
	if (o->depth == OUT_MAX_DEPTH) {
		json_decref(c);
		o->err = o->err ?: -E2BIG;
		return;
	}
	if (!o->depth && !key && !o->root) {
		o->root = c;
	} else {
		json_incref(c);
		out_add(o, key, c);
		if (o->err) {
			json_decref(c);
			return;
		}
		json_decref(c); /* the parent holds it */
	}
	o->stack[o->depth++] = c;
}

void out_obj_begin(struct out *o, const char *key)
{
	out_push(o, key, json_object());
}

void out_list_begin(struct out *o, const char *key)
{
	out_push(o, key, json_array());
}

static void out_stream_row(struct out *o, json_t *row);

static void out_pop(struct out *o, bool want_obj)
{
	json_t *c;

	if (!o->depth || json_is_object(o->stack[o->depth - 1]) != want_obj) {
		o->err = o->err ?: -EINVAL;
		return;
	}
	c = o->stack[--o->depth];
	if (o->stream && want_obj && o->depth == 1 && !o->err && json_is_array(o->root) &&
	    o->stack[0] == o->root) {
		out_stream_row(o, c);
		json_array_clear(o->root);
	}
}

void out_obj_end(struct out *o)
{
	out_pop(o, true);
}

void out_list_end(struct out *o)
{
	out_pop(o, false);
}

static char *out_fmt(const char *fmt, const char *deflt, ...)
{
	char *s = NULL;
	va_list ap;

	va_start(ap, deflt);
	if (vasprintf(&s, fmt ?: deflt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

static void out_add_text(struct out *o, const char *key, char *text)
{
	if (!text) {
		o->err = -ENOMEM;
		return;
	}
	out_add(o, key, json_string(text));
	free(text);
}

void out_str(struct out *o, enum out_kind k, const char *key, const char *fmt, const char *v)
{
	if (!out_wants(o, k))
		return;
	if (o->mode != OUT_MODE_TABLE)
		out_add(o, key, v ? json_string(v) : json_null());
	else
		out_add_text(o, key, out_fmt(fmt, "%s", v ?: "-"));
}

void out_u64(struct out *o, enum out_kind k, const char *key, const char *fmt, unsigned long long v)
{
	if (!out_wants(o, k))
		return;
	if (o->mode != OUT_MODE_TABLE)
		out_add(o, key, json_integer((json_int_t)v));
	else
		out_add_text(o, key, out_fmt(fmt, "%llu", v));
}

void out_s64(struct out *o, enum out_kind k, const char *key, const char *fmt, long long v)
{
	if (!out_wants(o, k))
		return;
	if (o->mode != OUT_MODE_TABLE)
		out_add(o, key, json_integer((json_int_t)v));
	else
		out_add_text(o, key, out_fmt(fmt, "%lld", v));
}

void out_bool_as(struct out *o, enum out_kind k, const char *key, bool v, const char *t,
		 const char *f)
{
	if (!out_wants(o, k))
		return;
	if (o->mode != OUT_MODE_TABLE)
		out_add(o, key, json_boolean(v));
	else
		out_add_text(o, key, strdup(v ? t : f));
}

void out_bool(struct out *o, enum out_kind k, const char *key, bool v)
{
	out_bool_as(o, k, key, v, "yes", "no");
}

void out_null(struct out *o, enum out_kind k, const char *key)
{
	if (!out_wants(o, k))
		return;
	out_add(o, key, o->mode == OUT_MODE_TABLE ? json_string("-") : json_null());
}

void out_stream(struct out *o, bool on)
{
	o->stream = on;
}

/* ---- tables -------------------------------------------------------------- */

static char *text_of(const json_t *v)
{
	char *s = NULL;

	switch (json_typeof(v)) {
	case JSON_STRING:
		return strdup(json_string_value(v));
	case JSON_INTEGER:
		return out_fmt("%lld", NULL, (long long)json_integer_value(v));
	case JSON_REAL:
		return out_fmt("%g", NULL, json_real_value(v));
	case JSON_TRUE:
		return strdup("yes");
	case JSON_FALSE:
		return strdup("no");
	case JSON_NULL:
		return strdup("-");
	case JSON_ARRAY: {
		size_t len = 0, i;
		json_t *e;
		FILE *m;

		if (!json_array_size(v))
			return strdup("(none)");
		m = open_memstream(&s, &len);
		if (!m)
			return NULL;
		json_array_foreach(v, i, e)
		{
			char *t = json_is_object(e) ? json_dumps(e, JSON_COMPACT) : text_of(e);

			fprintf(m, "%s%s", i ? "," : "", t ?: "");
			free(t);
		}
		fclose(m);
		return s;
	}
	case JSON_OBJECT:
		return json_dumps(v, JSON_COMPACT);
	}
	return NULL;
}

/* {"a":1,"b":{"c":2}} -> {"A":"1","B_C":"2"} */
static int flatten(const json_t *obj, const char *prefix, json_t *flat)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v)
	{
		char *name = prefix ? out_fmt("%s_%s", NULL, prefix, key) : strdup(key);
		int err = 0;

		if (!name)
			return -ENOMEM;
		for (char *p = name; *p; p++)
			*p = (char)toupper((unsigned char)*p);
		if (json_is_object(v)) {
			err = flatten(v, name, flat);
		} else {
			char *t = text_of(v);

			if (!t || json_object_set_new(flat, name, json_string(t)))
				err = -ENOMEM;
			free(t);
		}
		free(name);
		if (err)
			return err;
	}
	return 0;
}

static void put_cell(FILE *fp, const char *s, size_t width, bool last)
{
	if (last)
		fprintf(fp, "%s\n", s);
	else
		fprintf(fp, "%-*s  ", (int)width, s);
}

static int render_table(FILE *fp, const json_t *arr, int indent)
{
	json_t *cols = json_object(), *rows = json_array(), *row, *w;
	const char *name;
	size_t i, n = 0;
	int err = -ENOMEM;

	if (!cols || !rows)
		goto out;
	/* Pass 1: flatten rows; columns in order of first appearance, widths. */
	json_array_foreach((json_t *)arr, i, row)
	{
		json_t *flat = json_object(), *cell;

		if (!flat || json_array_append_new(rows, flat))
			goto out;
		if (json_is_object(row)) {
			err = flatten(row, NULL, flat);
		} else {
			char *t = text_of(row);

			err = t && !json_object_set_new(flat, "VALUE", json_string(t)) ? 0 :
											 -ENOMEM;
			free(t);
		}
		if (err)
			goto out;
		err = -ENOMEM;
		json_object_foreach(flat, name, cell)
		{
			size_t len = strlen(json_string_value(cell));
			json_int_t cur;

			w = json_object_get(cols, name);
			cur = w ? json_integer_value(w) : (json_int_t)strlen(name);
			if ((json_int_t)len > cur)
				cur = (json_int_t)len;
			if (json_object_set_new(cols, name, json_integer(cur)))
				goto out;
		}
	}
	n = json_object_size(cols);
	/* Pass 2: header, then rows. */
	if (n) {
		size_t c = 0;

		fprintf(fp, "%*s", indent, "");
		json_object_foreach(cols, name, w)
			put_cell(fp, name, (size_t)json_integer_value(w), ++c == n);
	}
	json_array_foreach(rows, i, row)
	{
		size_t c = 0;

		fprintf(fp, "%*s", indent, "");
		json_object_foreach(cols, name, w)
		{
			json_t *cell = json_object_get(row, name);

			put_cell(fp, cell ? json_string_value(cell) : "-",
				 (size_t)json_integer_value(w), ++c == n);
		}
	}
	err = 0;
out:
	json_decref(cols);
	json_decref(rows);
	return err;
}

static bool is_table(const json_t *v)
{
	return json_is_array(v) && json_array_size(v) && json_is_object(json_array_get(v, 0));
}

static int render_obj(FILE *fp, const json_t *obj, int indent)
{
	size_t width = 0;
	const char *key;
	json_t *v;
	int err;

	json_object_foreach((json_t *)obj, key,
			    v) if (!json_is_object(v) && !is_table(v) && strlen(key) + 1 > width)
		width = strlen(key) + 1;
	json_object_foreach((json_t *)obj, key, v)
	{
		if (json_is_object(v) || is_table(v)) {
			fprintf(fp, "%*s%s:\n", indent, "", key);
			err = json_is_object(v) ? render_obj(fp, v, indent + 2) :
						  render_table(fp, v, indent + 2);
			if (err)
				return err;
			continue;
		}
		char *t = text_of(v);

		if (!t)
			return -ENOMEM;
		fprintf(fp, "%*s%s:%*s %s\n", indent, "", key, (int)(width - strlen(key) - 1), "",
			t);
		free(t);
	}
	return 0;
}

static int render_text(FILE *fp, const json_t *root)
{
	if (json_is_object(root))
		return render_obj(fp, root, 0);
	return render_table(fp, root, 0);
}

/* ---- YAML ---------------------------------------------------------------- */

static bool yaml_plain_ok(const char *s)
{
	static const char *const words[] = { "true", "false", "yes", "no", "on",
					     "off",  "null",  "y",   "n",  "~" };
	char *end;

	if (!*s || strchr("-?:,[]{}#&*!|>'\"%@` ", *s) || s[strlen(s) - 1] == ' ')
		return false;
	if (strstr(s, ": ") || strstr(s, " #") || s[strlen(s) - 1] == ':')
		return false;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (!strcasecmp(s, words[i]))
			return false;
	strtod(s, &end);
	if (*end == '\0')
		return false; /* would read back as a number */
	if (strspn(s, "0123456789") == 4 && s[4] == '-')
		return false; /* a YAML 1.1 date or timestamp */
	if (strchr(s, ':') && strspn(s, "0123456789:_.") == strlen(s))
		return false; /* a YAML 1.1 base-60 number (1:20) */
	return true;
}

static void yaml_scalar(FILE *fp, const json_t *v)
{
	char *s;

	if (json_is_string(v) && yaml_plain_ok(json_string_value(v))) {
		fputs(json_string_value(v), fp);
		return;
	}
	/* JSON scalars are valid YAML flow scalars (double-quoted strings). */
	s = json_dumps(v, JSON_ENCODE_ANY);
	fputs(s ?: "null", fp);
	free(s);
}

static void yaml_map(FILE *fp, const json_t *obj, int indent, bool first_inline);
static void yaml_seq(FILE *fp, const json_t *arr, int indent);

/* After "key:" or "-": the rest of the line and any block below. */
static void yaml_value(FILE *fp, const json_t *v, int indent)
{
	if (json_is_object(v) && json_object_size(v)) {
		fputc('\n', fp);
		yaml_map(fp, v, indent + 2, false);
	} else if (json_is_array(v) && json_array_size(v)) {
		fputc('\n', fp);
		yaml_seq(fp, v, indent + 2);
	} else {
		fputc(' ', fp);
		if (json_is_object(v))
			fputs("{}", fp);
		else if (json_is_array(v))
			fputs("[]", fp);
		else
			yaml_scalar(fp, v);
		fputc('\n', fp);
	}
}

static void yaml_map(FILE *fp, const json_t *obj, int indent, bool first_inline)
{
	bool first = true;
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v)
	{
		json_t *k = json_string(key);

		if (!first || !first_inline)
			fprintf(fp, "%*s", indent, "");
		first = false;
		yaml_scalar(fp, k);
		json_decref(k);
		fputc(':', fp);
		yaml_value(fp, v, indent);
	}
}

static void yaml_item(FILE *fp, const json_t *v, int indent)
{
	fprintf(fp, "%*s-", indent, "");
	if (json_is_object(v) && json_object_size(v)) {
		fputc(' ', fp);
		yaml_map(fp, v, indent + 2, true);
	} else {
		yaml_value(fp, v, indent);
	}
}

static void yaml_seq(FILE *fp, const json_t *arr, int indent)
{
	size_t i;
	json_t *v;

	json_array_foreach((json_t *)arr, i, v) yaml_item(fp, v, indent);
}

static void render_yaml(FILE *fp, const json_t *root)
{
	if (json_is_object(root) && json_object_size(root))
		yaml_map(fp, root, 0, false);
	else if (json_is_array(root) && json_array_size(root))
		yaml_seq(fp, root, 0);
	else
		fputs(json_is_array(root) ? "[]\n" : "{}\n", fp);
}

/* ---- printing ------------------------------------------------------------ */

static void out_stream_row(struct out *o, json_t *row)
{
	switch (o->mode) {
	case OUT_MODE_JSON:
		json_dumpf(row, o->fp, JSON_COMPACT);
		fputc('\n', o->fp);
		break;
	case OUT_MODE_YAML:
		yaml_item(o->fp, row, 0);
		break;
	case OUT_MODE_TABLE: {
		json_t *flat = json_object(), *cell;
		const char *name;
		bool first = true;

		if (!flat || flatten(row, NULL, flat)) {
			o->err = -ENOMEM;
		} else {
			json_object_foreach(flat, name, cell)
			{
				fprintf(o->fp, "%s%s", first ? "" : " ", json_string_value(cell));
				first = false;
			}
			fputc('\n', o->fp);
		}
		json_decref(flat);
		break;
	}
	}
	fflush(o->fp);
}

int out_flush(struct out *o)
{
	int err = 0;

	if (o->done)
		return 0;
	if (o->err)
		return out_error(o, o->err, "building output");
	if (o->depth)
		return out_error(o, -EINVAL, "output: %d container(s) not closed", o->depth);
	o->done = true;
	if (o->stream || !o->root)
		goto out;
	switch (o->mode) {
	case OUT_MODE_TABLE:
		err = render_text(o->fp, o->root);
		break;
	case OUT_MODE_JSON:
		if (json_dumpf(o->root, o->fp, JSON_INDENT(2)) || fputc('\n', o->fp) == EOF)
			err = -EIO;
		break;
	case OUT_MODE_YAML:
		render_yaml(o->fp, o->root);
		break;
	}
out:
	if (fflush(o->fp) && !err)
		err = -errno;
	json_decref(o->root);
	o->root = NULL;
	return err;
}

int out_error(struct out *o, int err, const char *fmt, ...)
{
	char *msg = NULL, *full = NULL;
	json_t *doc;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	json_decref(o->root);
	o->root = NULL;
	o->depth = 0;
	o->done = true;
	if (o->mode == OUT_MODE_TABLE) {
		if (err)
			log_err(err, "%s", msg ?: "error");
		else
			log_error("%s", msg ?: "error");
		goto out;
	}
	if (err && asprintf(&full, "%s: %s", msg ?: "error", strerror(-err)) < 0)
		full = NULL;
	doc = json_pack("{s:s}", "error", full ?: msg ?: "error");
	if (doc) {
		if (o->mode == OUT_MODE_JSON)
			json_dumpf(doc, o->fp, JSON_INDENT(2));
		else
			render_yaml(o->fp, doc);
		if (o->mode == OUT_MODE_JSON)
			fputc('\n', o->fp);
		json_decref(doc);
	}
	fflush(o->fp);
out:
	free(full);
	free(msg);
	return err;
}
