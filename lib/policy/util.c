// SPDX-License-Identifier: GPL-2.0-only
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Eight bytes per step (the compiler's keys are identity and label texts
 * of ~100 bytes, hashed for every pod), then a final avalanche so that the
 * low bits, which pick the slot, depend on every byte. 0 is kept for
 * "empty slot". */
uint64_t hm_hash(const void *k, size_t klen)
{
	const unsigned char *p = k;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ klen, w;
	size_t n = klen;

	for (; n >= sizeof(w); p += sizeof(w), n -= sizeof(w)) {
		memcpy(&w, p, sizeof(w));
		h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
		h ^= h >> 29;
	}
	if (n) { /* byte by byte: a memcpy() of a variable length is a call */
		w = 0;
		for (size_t i = 0; i < n; i++)
			w |= (uint64_t)p[i] << (8 * i);
		h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
		h ^= h >> 29;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h ? h : 1;
}

static const void *hm_key(const struct hm_slot *s)
{
	return s->klen > HM_INLINE ? s->key : s->inl;
}

static struct hm_slot *hm_find(const struct hmap *h, const void *k, size_t klen, uint64_t hash)
{
	size_t i = hash & (h->cap - 1);

	for (;;) {
		struct hm_slot *s = &h->s[i];

		if (!s->hash)
			return s;
		if (s->hash == hash && s->klen == klen && !memcmp(hm_key(s), k, klen))
			return s;
		i = (i + 1) & (h->cap - 1);
	}
}

static int hm_grow(struct hmap *h)
{
	size_t ncap = h->cap ? h->cap * 2 : 16;
	struct hm_slot *old = h->s;
	size_t ocap = h->cap;

	h->s = calloc(ncap, sizeof(*h->s));
	if (!h->s) {
		h->s = old;
		return -ENOMEM;
	}
	h->cap = ncap;
	for (size_t i = 0; i < ocap; i++) {
		if (old[i].hash)
			*hm_find(h, hm_key(&old[i]), old[i].klen, old[i].hash) = old[i];
	}
	free(old);
	return 0;
}

int hmap_put(struct hmap *h, const void *k, size_t klen, size_t val)
{
	uint64_t hash = hm_hash(k, klen);
	struct hm_slot *s;

	if ((h->n + 1) * 4 > h->cap * 3 && hm_grow(h))
		return -ENOMEM;
	s = hm_find(h, k, klen, hash);
	if (!s->hash) {
		if (klen > HM_INLINE) {
			s->key = malloc(klen);
			if (!s->key)
				return -ENOMEM;
			memcpy(s->key, k, klen);
		} else {
			memcpy(s->inl, k, klen);
		}
		s->klen = klen;
		s->hash = hash;
		h->n++;
	}
	s->val = val;
	return 0;
}

bool hmap_get(const struct hmap *h, const void *k, size_t klen, size_t *val)
{
	struct hm_slot *s;

	if (!h->cap)
		return false;
	s = hm_find(h, k, klen, hm_hash(k, klen));
	if (!s->hash)
		return false;
	if (val)
		*val = s->val;
	return true;
}

/* Backward-shift deletion: later slots of the probe run move up, so no
 * tombstones are needed. */
bool hmap_del(struct hmap *h, const void *k, size_t klen)
{
	struct hm_slot *s;
	size_t i, j;

	if (!h->cap)
		return false;
	s = hm_find(h, k, klen, hm_hash(k, klen));
	if (!s->hash)
		return false;
	if (s->klen > HM_INLINE)
		free(s->key);
	i = (size_t)(s - h->s);
	j = i;
	for (;;) {
		size_t home;

		j = (j + 1) & (h->cap - 1);
		if (!h->s[j].hash)
			break;
		home = h->s[j].hash & (h->cap - 1);
		/* j may fill the hole at i unless its home lies in (i, j] */
		if (i <= j ? (home > i && home <= j) : (home > i || home <= j))
			continue;
		h->s[i] = h->s[j];
		i = j;
	}
	memset(&h->s[i], 0, sizeof(h->s[i]));
	h->n--;
	return true;
}

int hmap_clone(struct hmap *dst, const struct hmap *src)
{
	memset(dst, 0, sizeof(*dst));
	if (!src->cap)
		return 0;
	dst->s = malloc(src->cap * sizeof(*dst->s));
	if (!dst->s)
		return -ENOMEM;
	memcpy(dst->s, src->s, src->cap * sizeof(*dst->s));
	dst->cap = src->cap;
	dst->n = src->n;
	for (size_t i = 0; i < dst->cap; i++) {
		struct hm_slot *s = &dst->s[i];

		if (!s->hash || s->klen <= HM_INLINE)
			continue;
		s->key = malloc(s->klen);
		if (!s->key) {
			/* the rest still point at src's keys: drop them */
			for (size_t j = i; j < dst->cap; j++) {
				if (dst->s[j].klen > HM_INLINE)
					dst->s[j].hash = 0, dst->s[j].klen = 0;
			}
			hmap_free(dst);
			return -ENOMEM;
		}
		memcpy(s->key, src->s[i].key, s->klen);
	}
	return 0;
}

void hmap_each(const struct hmap *h, void (*fn)(const void *k, size_t klen, size_t val, void *ctx),
	       void *ctx)
{
	for (size_t i = 0; i < h->cap; i++) {
		if (h->s[i].hash)
			fn(hm_key(&h->s[i]), h->s[i].klen, h->s[i].val, ctx);
	}
}

void hmap_free(struct hmap *h)
{
	for (size_t i = 0; i < h->cap; i++) {
		if (h->s[i].hash && h->s[i].klen > HM_INLINE)
			free(h->s[i].key);
	}
	free(h->s);
	memset(h, 0, sizeof(*h));
}

static bool sb_grow(struct sbuf *b, size_t need)
{
	size_t ncap;
	char *p;

	if (b->oom)
		return false;
	if (b->n + need + 1 <= b->cap)
		return true;
	ncap = b->cap ? b->cap : 64;
	while (ncap < b->n + need + 1)
		ncap *= 2;
	p = realloc(b->p, ncap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = ncap;
	return true;
}

/* One vsnprintf into the room left when it fits (the usual case: the
 * buffer only grows), a second one after growing when it does not. */
void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	size_t room;
	int n;

	if (!sb_grow(b, 0))
		return;
	room = b->cap - b->n;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->n, room, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->p[b->n] = '\0';
		return;
	}
	if ((size_t)n >= room) {
		if (!sb_grow(b, (size_t)n)) {
			b->p[b->n] = '\0';
			return;
		}
		va_start(ap, fmt);
		vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	b->n += (size_t)n;
}

void sb_puts(struct sbuf *b, const char *s)
{
	size_t n = strlen(s);

	if (!sb_grow(b, n))
		return;
	memcpy(b->p + b->n, s, n + 1);
	b->n += n;
}

size_t dec_put(char *dst, unsigned long long v)
{
	char digits[20];
	size_t k = 0, n = 0;

	do
		digits[k++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (k)
		dst[n++] = digits[--k];
	return n;
}

/* Keys are built for every rule, peer and block of every compile: no
 * printf where a number is all there is to format. */
void sb_putu(struct sbuf *b, unsigned long long v)
{
	if (!sb_grow(b, 20))
		return;
	b->n += dec_put(b->p + b->n, v);
	b->p[b->n] = 0;
}

void sb_putc(struct sbuf *b, char c)
{
	if (!sb_grow(b, 1))
		return;
	b->p[b->n++] = c;
	b->p[b->n] = '\0';
}

char *sb_take(struct sbuf *b)
{
	char *p;

	if (b->oom || !sb_grow(b, 0)) {
		sb_free(b);
		return NULL;
	}
	b->p[b->n] = '\0';
	p = b->p;
	memset(b, 0, sizeof(*b));
	return p;
}

void sb_free(struct sbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

int vec_reserve(void *v, size_t *cap, size_t n, size_t sz)
{
	void **pp = v;
	size_t ncap;
	void *p;

	if (n + 1 <= *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 8;
	while (ncap < n + 1)
		ncap *= 2;
	p = realloc(*pp, ncap * sz);
	if (!p)
		return -ENOMEM;
	*pp = p;
	*cap = ncap;
	return 0;
}
