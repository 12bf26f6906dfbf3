// SPDX-License-Identifier: GPL-2.0-only
/* Stable, dense numbering of keys across compiles (see compiled.h). */
#include "compiled.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct seg_id_alloc *alloc_new(__u32 first)
{
	struct seg_id_alloc *a = calloc(1, sizeof(*a));

	if (a) {
		a->first = a->cursor = first;
		a->refs = 1;
	}
	return a;
}

struct seg_id_alloc *alloc_clone(const struct seg_id_alloc *src)
{
	struct seg_id_alloc *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	*a = *src;
	a->refs = 1;
	a->cursor = a->first; /* lowest free number first, as a full compile */
	if (hmap_clone(&a->by_key, &src->by_key)) {
		free(a);
		return NULL;
	}
	if (hmap_clone(&a->by_num, &src->by_num)) {
		hmap_free(&a->by_key);
		free(a);
		return NULL;
	}
	return a;
}

void alloc_drop(struct seg_id_alloc *a, const char *key)
{
	size_t v;
	__u32 n;

	if (!hmap_get_str(&a->by_key, key, &v))
		return;
	n = (__u32)v;
	hmap_del_str(&a->by_key, key);
	hmap_del(&a->by_num, &n, sizeof(n));
	if (n < a->cursor)
		a->cursor = n;
}

struct drop_num {
	size_t num;
	const void *key;
	size_t klen;
};

static void find_num(const void *k, size_t klen, size_t val, void *ctx)
{
	struct drop_num *x = ctx;

	if (val == x->num) {
		x->key = k;
		x->klen = klen;
	}
}

void alloc_drop_num(struct seg_id_alloc *a, __u32 n)
{
	struct drop_num x = { .num = n };
	char *key;

	hmap_each(&a->by_key, find_num, &x);
	if (!x.key)
		return;
	key = strndup(x.key, x.klen);
	if (key)
		alloc_drop(a, key);
	free(key);
}

void alloc_free(struct seg_id_alloc *a)
{
	if (!a || --a->refs > 0)
		return;
	hmap_free(&a->by_key);
	hmap_free(&a->by_num);
	free(a);
}

static bool num_used(const struct seg_id_alloc *a, __u32 n)
{
	return a && hmap_get(&a->by_num, &n, sizeof(n), NULL);
}

int alloc_get(struct seg_id_alloc *a, const struct seg_id_alloc *prev, const char *key, __u32 *num)
{
	size_t v;

	if (hmap_get_str(&a->by_key, key, &v)) {
		*num = (__u32)v;
		return 0;
	}
	if (prev && hmap_get_str(&prev->by_key, key, &v)) {
		*num = (__u32)v;
	} else {
		/* numbers of previous keys stay reserved for them this round */
		while (num_used(prev, a->cursor) || num_used(a, a->cursor))
			a->cursor++;
		*num = a->cursor++;
	}
	if (hmap_put_str(&a->by_key, key, *num) || hmap_put(&a->by_num, num, sizeof(*num), 1))
		return -ENOMEM;
	return 0;
}
