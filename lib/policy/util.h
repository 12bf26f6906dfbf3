/* SPDX-License-Identifier: GPL-2.0-only */
/* lib/policy internals: a byte-keyed hash map and a growable string. */
#ifndef SEG_POLICY_UTIL_H
#define SEG_POLICY_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Open addressing, keys copied, values are size_t (usually an index). */
struct hm_slot {
	void *key;
	size_t klen;
	uint64_t hash;
	size_t val;
};

struct hmap {
	struct hm_slot *s;
	size_t cap, n;
};

uint64_t hm_hash(const void *k, size_t klen);
/* Inserts or overwrites. 0 or -ENOMEM. */
int hmap_put(struct hmap *h, const void *k, size_t klen, size_t val);
bool hmap_get(const struct hmap *h, const void *k, size_t klen, size_t *val);
void hmap_free(struct hmap *h);

static inline int hmap_put_str(struct hmap *h, const char *k, size_t val)
{
	return hmap_put(h, k, __builtin_strlen(k), val);
}

static inline bool hmap_get_str(const struct hmap *h, const char *k, size_t *val)
{
	return hmap_get(h, k, __builtin_strlen(k), val);
}

struct sbuf {
	char *p;
	size_t n, cap;
	bool oom;
};

__attribute__((format(printf, 2, 3))) void sb_printf(struct sbuf *b, const char *fmt, ...);
void sb_putc(struct sbuf *b, char c);
/* Returns the string (caller frees) or NULL on allocation failure. */
char *sb_take(struct sbuf *b);
void sb_free(struct sbuf *b);

/* Grows *v (element size sz) to hold at least n + 1 elements. */
int vec_reserve(void *v, size_t *cap, size_t n, size_t sz);

#endif
