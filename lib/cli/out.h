/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * lib/cli/out: one printer for tables, JSON and YAML.
 *
 * A caller describes each field once, with its snake_case key and the
 * format a person should see; the mode decides what is printed:
 *
 *   struct out *o = out_new(OUT_MODE_TABLE, stdout);
 *   out_list_begin(o, NULL);
 *   for (...) {
 *           out_obj_begin(o, NULL);
 *           out_u64(o, OUT_ANY, "ifkey", "%llu", ifkey);
 *           out_str(o, OUT_ANY, "mode", NULL, "isolated");
 *           out_u64(o, OUT_JSON, "port_mask", NULL, mask);    (scripts only)
 *           out_str(o, OUT_TEXT, "port_mask", NULL, "80/tcp"); (people only)
 *           out_obj_end(o);
 *   }
 *   out_list_end(o);
 *   return out_flush(o);     (or out_error(o, err, "..."): nothing else printed)
 *
 * Everything is collected (a jansson tree) and printed by out_flush(), so an
 * error never leaves a half-printed document. Tables: a list of objects is
 * one table (columns = keys upper-cased, nested objects flattened as
 * PARENT_KEY, widths computed over all rows); an object is "key: value"
 * lines. JSON: one document (a list is one array). YAML: the same tree.
 * Errors: in JSON/YAML mode {"error": "..."} on stdout, in table mode a
 * line on stderr. Streaming (out_stream) prints each row of the top-level
 * list as it is ended: table rows without alignment, JSON one object per
 * line, YAML one "- " item.
 */
#ifndef SEG_CLI_OUT_H
#define SEG_CLI_OUT_H

#include <stdbool.h>
#include <stdio.h>

enum out_mode { OUT_MODE_TABLE, OUT_MODE_JSON, OUT_MODE_YAML };

/* Which outputs a field goes to (iproute2's PRINT_ANY/PRINT_JSON/PRINT_FP). */
enum out_kind {
	OUT_ANY, /* every mode */
	OUT_JSON, /* machine modes only (JSON and YAML) */
	OUT_TEXT, /* table only */
};

struct out;

/* NULL on allocation failure. fp receives data; errors in table mode go to stderr. */
struct out *out_new(enum out_mode mode, FILE *fp);
void out_free(struct out *o); /* NULL-safe; discards anything not flushed */
/* "table", "json", "yaml" (unique prefixes too); 0 or -EINVAL. */
int out_mode_parse(const char *s, enum out_mode *mode);
const char *out_mode_name(enum out_mode mode);
enum out_mode out_get_mode(const struct out *o);

/* Containers. key is the member name inside an object, ignored inside a
 * list; at the top level a key opens an implicit top-level object. */
void out_obj_begin(struct out *o, const char *key);
void out_obj_end(struct out *o);
void out_list_begin(struct out *o, const char *key);
void out_list_end(struct out *o);

/* Fields. fmt is the human format of the value (printf, one conversion of
 * the value's type: %s, %llu, %lld); NULL = plain. In machine modes the
 * typed value is stored (string, integer, boolean), fmt is not used. */
void out_str(struct out *o, enum out_kind k, const char *key, const char *fmt, const char *v);
void out_u64(struct out *o, enum out_kind k, const char *key, const char *fmt,
	     unsigned long long v);
void out_s64(struct out *o, enum out_kind k, const char *key, const char *fmt, long long v);
/* Human form: fmt applied to "yes"/"no" (or to t/f when given). */
void out_bool(struct out *o, enum out_kind k, const char *key, bool v);
/* Human form t or f, machine form a boolean (e.g. "on"/"off"). */
void out_bool_as(struct out *o, enum out_kind k, const char *key, bool v, const char *t,
		 const char *f);
/* null in machine modes, "-" in tables. */
void out_null(struct out *o, enum out_kind k, const char *key);

/* Rows of the top-level list are printed as soon as each is ended. */
void out_stream(struct out *o, bool on);

/* Prints the document (once); 0 or -errno (-ENOMEM if building failed). */
int out_flush(struct out *o);
/* Discards the document and reports the error: {"error": "<msg>: <strerror>"}
 * on the output in machine modes, "<msg>: <strerror>" on stderr in table
 * mode (err 0: message only). Returns err. */
__attribute__((format(printf, 3, 4))) int out_error(struct out *o, int err, const char *fmt, ...);

#endif
