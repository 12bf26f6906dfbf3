// SPDX-License-Identifier: GPL-2.0-only
/*
 * lib/policy's string builder: sb_printf() formats into the room left and
 * formats again after growing when the text does not fit; sb_puts() and
 * sb_putc() append. Every append, across every growth of the buffer, must
 * give the text snprintf() gives for the whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/util.h"

/* Appends of every length from 0 to 300 characters, through the three
 * functions in turn, against a reference built beside them. */
static void test_sbuf_appends(void **state)
{
	static char ref[1 << 17], word[301];
	struct sbuf sb = {};
	size_t n = 0;
	char *s;

	(void)state;
	for (int len = 0; len <= 300; len++) {
		memset(word, 'a' + len % 26, (size_t)len);
		word[len] = '\0';
		switch (len % 3) {
		case 0:
			sb_printf(&sb, "%d:%s|", len, word);
			n += (size_t)snprintf(ref + n, sizeof(ref) - n, "%d:%s|", len, word);
			break;
		case 1:
			sb_puts(&sb, word);
			n += (size_t)snprintf(ref + n, sizeof(ref) - n, "%s", word);
			break;
		default:
			sb_putc(&sb, (char)('A' + len % 26));
			ref[n++] = (char)('A' + len % 26);
			ref[n] = '\0';
			break;
		}
		/* the text so far is terminated at every step */
		assert_int_equal(sb.n, n);
		assert_int_equal(strlen(sb.p), n);
		assert_memory_equal(sb.p, ref, n);
		assert_true(sb.cap > sb.n);
	}
	s = sb_take(&sb);
	assert_non_null(s);
	assert_string_equal(s, ref);
	assert_null(sb.p);
	free(s);
}

/* Exactly filling the room (the terminator needs one more byte) grows. */
static void test_sbuf_exact_fit(void **state)
{
	struct sbuf sb = {};
	char *s;

	(void)state;
	sb_puts(&sb, "");
	assert_non_null(sb.p);
	for (size_t fill = sb.cap - 1; fill; fill--)
		sb_putc(&sb, 'x');
	assert_int_equal(sb.n, sb.cap - 1);
	sb_printf(&sb, "%s", "yz");
	assert_int_equal(sb.n, strlen(sb.p));
	assert_string_equal(sb.p + sb.n - 3, "xyz");
	s = sb_take(&sb);
	assert_non_null(s);
	free(s);
	/* an empty builder takes as "" */
	s = sb_take(&sb);
	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sbuf_appends),
		cmocka_unit_test(test_sbuf_exact_fit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
