// SPDX-License-Identifier: GPL-2.0-only
/* lib/cli/out: table widths, JSON shape, YAML, errors, field kinds, streaming. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cli/out.h"

#include <errno.h>
#include <jansson.h>
#include <libfyaml.h>
#include <stdlib.h>
#include <string.h>

struct buf {
	char *data;
	size_t len;
	FILE *fp;
};

static struct out *out_mem(struct buf *b, enum out_mode mode)
{
	struct out *o;

	memset(b, 0, sizeof(*b));
	b->fp = open_memstream(&b->data, &b->len);
	assert_non_null(b->fp);
	o = out_new(mode, b->fp);
	assert_non_null(o);
	return o;
}

static void buf_close(struct buf *b)
{
	fclose(b->fp);
}

/* Two rows whose widest cells are in different rows. */
static void two_rows(struct out *o)
{
	out_list_begin(o, NULL);
	out_obj_begin(o, NULL);
	out_u64(o, OUT_ANY, "ifkey", NULL, 5);
	out_str(o, OUT_ANY, "name", NULL, "a");
	out_obj_begin(o, "ingress");
	out_u64(o, OUT_ANY, "port_mask", "%#llx", 0x20051);
	out_obj_end(o);
	out_obj_end(o);
	out_obj_begin(o, NULL);
	out_u64(o, OUT_ANY, "ifkey", NULL, 1234567);
	out_str(o, OUT_ANY, "name", NULL, "long-name");
	out_obj_begin(o, "ingress");
	out_u64(o, OUT_ANY, "port_mask", "%#llx", 0);
	out_obj_end(o);
	out_obj_end(o);
	out_list_end(o);
}

static void test_table_widths(void **state)
{
	struct buf b;
	struct out *o = out_mem(&b, OUT_MODE_TABLE);

	two_rows(o);
	assert_int_equal(out_flush(o), 0);
	buf_close(&b);
	assert_string_equal(b.data, "IFKEY    NAME       INGRESS_PORT_MASK\n"
				    "5        a          0x20051\n"
				    "1234567  long-name  0\n");
	out_free(o);
	free(b.data);
}

static void test_json_shape(void **state)
{
	struct buf b;
	struct out *o = out_mem(&b, OUT_MODE_JSON);
	json_error_t jerr;
	json_t *doc, *row;

	two_rows(o);
	assert_int_equal(out_flush(o), 0);
	buf_close(&b);
	doc = json_loads(b.data, 0, &jerr);
	assert_non_null(doc);
	assert_true(json_is_array(doc));
	assert_int_equal(json_array_size(doc), 2);
	row = json_array_get(doc, 1);
	assert_int_equal(json_integer_value(json_object_get(row, "ifkey")), 1234567);
	assert_string_equal(json_string_value(json_object_get(row, "name")), "long-name");
	/* Machine modes keep the typed value, not the human format. */
	row = json_array_get(doc, 0);
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(row, "ingress"), "port_mask")),
		0x20051);
	json_decref(doc);
	out_free(o);
	free(b.data);
}

static void test_yaml(void **state)
{
	struct buf b;
	struct out *o = out_mem(&b, OUT_MODE_YAML);

	two_rows(o);
	assert_int_equal(out_flush(o), 0);
	buf_close(&b);
	assert_string_equal(b.data, "- ifkey: 5\n"
				    "  name: a\n"
				    "  ingress:\n"
				    "    port_mask: 131153\n"
				    "- ifkey: 1234567\n"
				    "  name: long-name\n"
				    "  ingress:\n"
				    "    port_mask: 0\n");
	out_free(o);
	free(b.data);
}

/* Strings YAML would read as something else are quoted. */
static void test_yaml_quoting(void **state)
{
	struct buf b;
	struct out *o = out_mem(&b, OUT_MODE_YAML);

	out_str(o, OUT_ANY, "a", NULL, "on");
	out_str(o, OUT_ANY, "b", NULL, "123");
	out_str(o, OUT_ANY, "c", NULL, "x: y");
	out_str(o, OUT_ANY, "d", NULL, "");
	out_str(o, OUT_ANY, "e", NULL, "10.0.0.1");
	out_str(o, OUT_ANY, "f", NULL, "- dash");
	out_bool(o, OUT_ANY, "g", true);
	out_null(o, OUT_ANY, "h");
	out_list_begin(o, "i");
	out_list_end(o);
	out_str(o, OUT_ANY, "j", NULL, "2026-11-28T02:57:26.709Z");
	out_str(o, OUT_ANY, "k", NULL, "1:20");
	assert_int_equal(out_flush(o), 0);
	buf_close(&b);
	assert_string_equal(b.data, "a: \"on\"\n"
				    "b: \"123\"\n"
				    "c: \"x: y\"\n"
				    "d: \"\"\n"
				    "e: 10.0.0.1\n"
				    "f: \"- dash\"\n"
				    "g: true\n"
				    "h: null\n"
				    "i: []\n"
				    "j: \"2026-11-28T02:57:26.709Z\"\n"
				    "k: \"1:20\"\n");
	out_free(o);
	free(b.data);
}

static void awkward_doc(struct out *o)
{
	static const char *const strs[] = { "on",    "no",	  "123", "0x10",     "1e5",
					    "x: y",  "",	  " sp", "a #b",     "- dash",
					    "[x]",   "{y}",	  "'q'", "\"d\"",    "tab\t",
					    "nl\nx", "~",	  "ünï", "10.0.0.1", "fd00::1",
					    "1:20",  "2026-01-01" };

	out_str(o, OUT_ANY, "name", NULL, "seg");
	out_list_begin(o, "strings");
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		out_str(o, OUT_ANY, NULL, NULL, strs[i]);
	out_list_end(o);
	out_list_begin(o, "rows");
	out_obj_begin(o, NULL);
	out_u64(o, OUT_ANY, "big", NULL, 1ull << 40);
	out_s64(o, OUT_ANY, "neg", NULL, -3);
	out_bool(o, OUT_ANY, "yes", false);
	out_null(o, OUT_ANY, "none");
	out_obj_begin(o, "empty");
	out_obj_end(o);
	out_list_begin(o, "nested");
	out_list_begin(o, NULL);
	out_u64(o, OUT_ANY, NULL, NULL, 1);
	out_list_end(o);
	out_list_end(o);
	out_obj_end(o);
	out_list_end(o);
}

static char *render(enum out_mode mode)
{
	struct buf b;
	struct out *o = out_mem(&b, mode);

	awkward_doc(o);
	assert_int_equal(out_flush(o), 0);
	buf_close(&b);
	out_free(o);
	return b.data;
}

/* YAML read back by another parser (libfyaml) equals the JSON document. */
static void test_yaml_roundtrip(void **state)
{
	char *yaml = render(OUT_MODE_YAML), *json = render(OUT_MODE_JSON), *back;
	struct fy_document *fyd = fy_document_build_from_string(NULL, yaml, strlen(yaml));
	json_t *a, *b;

	assert_non_null(fyd);
	back = fy_emit_document_to_string(fyd, FYECF_MODE_JSON_ONELINE);
	assert_non_null(back);
	a = json_loads(json, 0, NULL);
	b = json_loads(back, 0, NULL);
	assert_non_null(a);
	assert_non_null(b);
	if (!json_equal(a, b))
		fail_msg("YAML:\n%s\nread back as:\n%s\nJSON:\n%s", yaml, back, json);
	json_decref(a);
	json_decref(b);
	free(back);
	fy_document_destroy(fyd);
	free(yaml);
	free(json);
}

/* OUT_JSON fields only in machine modes, OUT_TEXT only in tables. */
static void test_kinds(void **state)
{
	struct buf b;
	struct out *o = out_mem(&b, OUT_MODE_TABLE);

	out_str(o, OUT_TEXT, "peer", NULL, "any");
	out_u64(o, OUT_JSON, "peer", NULL, 0);
	out_bool_as(o, OUT_ANY, "allow_host", true, "on", "off");
	assert_int_equal(out_flush(o), 0);
	buf_close(&b);
	assert_string_equal(b.data, "peer:       any\nallow_host: on\n");
	out_free(o);
	free(b.data);

	o = out_mem(&b, OUT_MODE_JSON);
	out_str(o, OUT_TEXT, "peer", NULL, "any");
	out_u64(o, OUT_JSON, "peer", NULL, 0);
	out_bool_as(o, OUT_ANY, "allow_host", true, "on", "off");
	assert_int_equal(out_flush(o), 0);
	buf_close(&b);
	assert_string_equal(b.data, "{\n  \"peer\": 0,\n  \"allow_host\": true\n}\n");
	out_free(o);
	free(b.data);
}

/* An error after some rows: only the error object is printed. */
static void test_error_json(void **state)
{
	struct buf b;
	struct out *o = out_mem(&b, OUT_MODE_JSON);
	json_error_t jerr;
	json_t *doc;

	out_list_begin(o, NULL);
	out_obj_begin(o, NULL);
	out_u64(o, OUT_ANY, "ifkey", NULL, 5);
	out_obj_end(o);
	assert_int_equal(out_error(o, -ENOENT, "segctl bpf endpoint list"), -ENOENT);
	assert_int_equal(out_flush(o), 0); /* nothing more */
	buf_close(&b);
	doc = json_loads(b.data, 0, &jerr);
	assert_non_null(doc);
	assert_true(json_is_object(doc));
	assert_int_equal(json_object_size(doc), 1);
	assert_string_equal(json_string_value(json_object_get(doc, "error")),
			    "segctl bpf endpoint list: No such file or directory");
	json_decref(doc);
	out_free(o);
	free(b.data);
}

/* Table mode: errors go to stderr, nothing on the data stream. */
static void test_error_table(void **state)
{
	struct buf b;
	struct out *o = out_mem(&b, OUT_MODE_TABLE);

	out_list_begin(o, NULL);
	out_obj_begin(o, NULL);
	out_u64(o, OUT_ANY, "ifkey", NULL, 5);
	out_obj_end(o);
	out_error(o, -EIO, "reading");
	buf_close(&b);
	assert_int_equal(b.len, 0);
	out_free(o);
	free(b.data);
}

static void test_unbalanced(void **state)
{
	struct buf b;
	struct out *o = out_mem(&b, OUT_MODE_JSON);

	out_list_begin(o, NULL);
	out_obj_begin(o, NULL);
	out_obj_end(o);
	assert_int_equal(out_flush(o), -EINVAL); /* list not closed */
	buf_close(&b);
	assert_non_null(strstr(b.data, "\"error\""));
	out_free(o);
	free(b.data);
}

static void stream_two(struct out *o, struct buf *b, size_t *after_first)
{
	out_stream(o, true);
	out_list_begin(o, NULL);
	out_obj_begin(o, NULL);
	out_str(o, OUT_ANY, "type", NULL, "deny");
	out_u64(o, OUT_ANY, "rule", "rule=%llu", 3);
	out_obj_end(o);
	fflush(b->fp);
	*after_first = b->len;
	out_obj_begin(o, NULL);
	out_str(o, OUT_ANY, "type", NULL, "new");
	out_u64(o, OUT_ANY, "rule", "rule=%llu", 4);
	out_obj_end(o);
	out_list_end(o);
	assert_int_equal(out_flush(o), 0);
}

static void test_stream(void **state)
{
	struct buf b;
	struct out *o = out_mem(&b, OUT_MODE_JSON);
	size_t first;

	stream_two(o, &b, &first);
	buf_close(&b);
	assert_int_equal(first, strlen("{\"type\":\"deny\",\"rule\":3}\n"));
	assert_string_equal(b.data,
			    "{\"type\":\"deny\",\"rule\":3}\n{\"type\":\"new\",\"rule\":4}\n");
	out_free(o);
	free(b.data);

	o = out_mem(&b, OUT_MODE_TABLE);
	stream_two(o, &b, &first);
	buf_close(&b);
	assert_string_equal(b.data, "deny rule=3\nnew rule=4\n");
	out_free(o);
	free(b.data);
}

static void test_mode_parse(void **state)
{
	enum out_mode m;

	assert_int_equal(out_mode_parse("json", &m), 0);
	assert_int_equal(m, OUT_MODE_JSON);
	assert_int_equal(out_mode_parse("y", &m), 0);
	assert_int_equal(m, OUT_MODE_YAML);
	assert_int_equal(out_mode_parse("xml", &m), -EINVAL);
	assert_int_equal(out_mode_parse("", &m), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_widths),   cmocka_unit_test(test_json_shape),
		cmocka_unit_test(test_yaml),	       cmocka_unit_test(test_yaml_quoting),
		cmocka_unit_test(test_kinds),	       cmocka_unit_test(test_error_json),
		cmocka_unit_test(test_error_table),    cmocka_unit_test(test_unbalanced),
		cmocka_unit_test(test_stream),	       cmocka_unit_test(test_mode_parse),
		cmocka_unit_test(test_yaml_roundtrip),
	};

	return cmocka_run_group_tests_name("cli_out", tests, NULL, NULL);
}
