// SPDX-License-Identifier: GPL-2.0-only
/* Stable, dense numbering of keys across compiles (see compiled.h). */
#include "compiled.h"

#include <errno.h>
#include <stdlib.h>

struct seg_id_alloc *alloc_new(__u32 first)
{
	struct seg_id_alloc *a = calloc(1, sizeof(*a));

	if (a)
		a->first = a->cursor = first;
	return a;
}

void alloc_free(struct seg_id_alloc *a)
{
	if (!a)
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
