// SPDX-License-Identifier: GPL-2.0-only
/*
 * lib/policy's helpers. The string builder: sb_printf() formats into the
 * room left and formats again after growing when the text does not fit;
 * sb_puts(), sb_putc() and sb_putu() append; every append, across every growth of the
 * buffer, must give the text snprintf() gives for the whole. The hash map:
 * keys of every length (inline and allocated) found, overwritten, deleted
 * (backward shift: the others stay found), cloned; its hash spreads keys
 * that differ in one byte anywhere over the slots.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "addr.h"
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
		switch (len % 4) {
		case 3: { /* numbers: each digit count, 0 and the largest */
			unsigned long long v = len == 299 ? ~0ull : len == 3 ? 0 : 7ull << len % 60;

			sb_putu(&sb, v);
			n += (size_t)snprintf(ref + n, sizeof(ref) - n, "%llu", v);
			break;
		}
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

/* seg_addr_str() writes IPv4 itself: every octet value in every
 * position, against inet_ntop(). */
static void test_addr_v4_text(void **state)
{
	char got[INET6_ADDRSTRLEN], want[INET_ADDRSTRLEN];
	struct in6_addr a;

	(void)state;
	for (int pos = 0; pos < 4; pos++) {
		for (unsigned int v = 0; v < 256; v++) {
			unsigned char b[4] = { 10, 255, 0, 7 };
			__u32 be;

			b[pos] = (unsigned char)v;
			memcpy(&be, b, sizeof(be));
			seg_addr_from_v4(&a, be);
			assert_non_null(inet_ntop(AF_INET, b, want, sizeof(want)));
			assert_ptr_equal(seg_addr_str(&a, got, sizeof(got)), got);
			assert_string_equal(got, want);
		}
	}
	/* a buffer too small for every address: inet_ntop's answer */
	assert_null(seg_addr_str(&a, got, 8));
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

#define NKEYS 3000

/* Key i: a fixed text of len bytes with i written at byte offset at. */
static size_t key_make(unsigned char *k, size_t len, size_t at, unsigned int i)
{
	memset(k, 'k', len);
	for (size_t b = 0; b < sizeof(i) && at + b < len; b++)
		k[at + b] = (unsigned char)(i >> (8 * b));
	return len;
}

static void test_hmap_put_get_del(void **state)
{
	static const size_t lens[] = { 4, 8, 15, 16, 17, 24, 37, 100 };
	unsigned char k[128];

	(void)state;
	for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
		size_t len = lens[l], v;
		struct hmap h = {}, c = {};

		for (unsigned int i = 0; i < NKEYS; i++)
			assert_int_equal(hmap_put(&h, k, key_make(k, len, 0, i), i), 0);
		assert_int_equal(h.n, NKEYS);
		/* overwrite: same count, new value */
		assert_int_equal(hmap_put(&h, k, key_make(k, len, 0, 7), 70007), 0);
		assert_int_equal(h.n, NKEYS);
		assert_true(hmap_get(&h, k, key_make(k, len, 0, 7), &v));
		assert_int_equal(v, 70007);
		/* delete the odd keys: the even ones are all still found */
		for (unsigned int i = 1; i < NKEYS; i += 2)
			assert_true(hmap_del(&h, k, key_make(k, len, 0, i)));
		assert_int_equal(h.n, NKEYS / 2);
		assert_int_equal(hmap_clone(&c, &h), 0);
		for (unsigned int i = 0; i < NKEYS; i++) {
			bool want = !(i & 1);

			assert_int_equal(hmap_get(&h, k, key_make(k, len, 0, i), &v), want);
			if (want)
				assert_int_equal(v, i == 7 ? 70007 : i);
			assert_int_equal(hmap_get(&c, k, key_make(k, len, 0, i), &v), want);
		}
		/* a prefix of a key is another key */
		assert_false(hmap_get(&h, k, len - 1, &v));
		hmap_free(&h);
		hmap_free(&c);
	}
}

/* Keys that differ only at one offset (the first word, a middle one, the
 * partial last word of a 100-byte key) must spread over the slots: NKEYS
 * random values over 4096 slots hit 1 - e^(-3000/4096) = 52 % of them,
 * ~2130 distinct low 12-bit values, 71 % of the keys; at least 60 %. */
static void test_hmap_hash_spread(void **state)
{
	static const size_t at[] = { 0, 8, 40, 96 };
	unsigned char k[100], seen[4096];

	(void)state;
	for (size_t a = 0; a < sizeof(at) / sizeof(at[0]); a++) {
		unsigned int distinct = 0;

		memset(seen, 0, sizeof(seen));
		for (unsigned int i = 0; i < NKEYS; i++) {
			uint64_t x = hm_hash(k, key_make(k, sizeof(k), at[a], i)) & 4095;

			assert_true(hm_hash(k, sizeof(k)) != 0);
			distinct += !seen[x];
			seen[x] = 1;
		}
		assert_true(distinct * 10 >= NKEYS * 6);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sbuf_appends),
		cmocka_unit_test(test_sbuf_exact_fit),
		cmocka_unit_test(test_addr_v4_text),
		cmocka_unit_test(test_hmap_put_get_del),
		cmocka_unit_test(test_hmap_hash_spread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
