/* SPDX-License-Identifier: GPL-2.0-only */
/* lib/policy internals: a byte-keyed hash map and a growable string. */
#ifndef SEG_POLICY_UTIL_H
#define SEG_POLICY_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Open addressing (linear probing), keys copied, values are size_t
 * (usually an index). Keys of up to HM_INLINE bytes live in the slot, so
 * maps keyed by numbers, addresses and policy keys allocate nothing per
 * entry and are cloned with one copy. */
#define HM_INLINE 16

struct hm_slot {
	union {
		void *key; /* klen > HM_INLINE */
		unsigned char inl[HM_INLINE];
	};
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
/* Removes k if present (true). */
bool hmap_del(struct hmap *h, const void *k, size_t klen);
/* dst = a copy of src (dst's previous content is not freed). 0 or -ENOMEM. */
int hmap_clone(struct hmap *dst, const struct hmap *src);
void hmap_free(struct hmap *h);
/* Each entry: fn(key, klen, val, ctx). */
void hmap_each(const struct hmap *h, void (*fn)(const void *k, size_t klen, size_t val, void *ctx),
	       void *ctx);

static inline int hmap_put_str(struct hmap *h, const char *k, size_t val)
{
	return hmap_put(h, k, __builtin_strlen(k), val);
}

static inline bool hmap_get_str(const struct hmap *h, const char *k, size_t *val)
{
	return hmap_get(h, k, __builtin_strlen(k), val);
}

static inline bool hmap_del_str(struct hmap *h, const char *k)
{
	return hmap_del(h, k, __builtin_strlen(k));
}

struct sbuf {
	char *p;
	size_t n, cap;
	bool oom;
};

__attribute__((format(printf, 2, 3))) void sb_printf(struct sbuf *b, const char *fmt, ...);
void sb_putc(struct sbuf *b, char c);
void sb_puts(struct sbuf *b, const char *s);
void sb_putu(struct sbuf *b, unsigned long long v); /* as "%llu" */
/* v in decimal at dst (room for 20), no NUL: the length. */
size_t dec_put(char *dst, unsigned long long v);
/* Returns the string (caller frees) or NULL on allocation failure. */
char *sb_take(struct sbuf *b);
void sb_free(struct sbuf *b);

/* Grows *v (element size sz) to hold at least n + 1 elements. */
int vec_reserve(void *v, size_t *cap, size_t n, size_t sz);

#endif
