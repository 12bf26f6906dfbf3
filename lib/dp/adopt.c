// SPDX-License-Identifier: GPL-2.0-only
/*
 * A shared map whose pin was lost (removed by hand, a stale bpffs) is made
 * anew by the next load, empty. The programs still attached keep using the
 * old map (the pin went, the map did not), so moving the links onto the new
 * programs would open a window in which the new, empty map decides: allowed
 * traffic dropped (policy, endpoints) or state forgotten (conntrack). Before
 * the new map is pinned and the links move, its content is copied from the
 * live twin, found through a pinned link's program.
 */
#include "dp_priv.h"
#include "log.h"
#include "seg_bpf.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ADOPT_MAX_MAPS 64

/* The program behind any pinned link under <pin_dir>/links; -ENOENT if
 * nothing is attached. A new fd. */
static int live_prog_fd(const char *pin_dir)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct dirent *de;
	int fd = -ENOENT;
	DIR *d;

	if (seg_dp_path(dir, pin_dir, "links", NULL))
		return -ENAMETOOLONG;
	d = opendir(dir);
	if (!d)
		return -ENOENT;
	while (fd < 0 && (de = readdir(d))) {
		struct bpf_link_info li;
		__u32 len = sizeof(li);
		int lfd;

		if (de->d_name[0] == '.' || seg_dp_path(path, dir, de->d_name, NULL))
			continue;
		lfd = bpf_obj_get(path);
		if (lfd < 0)
			continue;
		memset(&li, 0, sizeof(li));
		if (!bpf_obj_get_info_by_fd(lfd, &li, &len) && li.prog_id)
			fd = bpf_prog_get_fd_by_id(li.prog_id);
		close(lfd);
	}
	closedir(d);
	return fd;
}

/* The live map of this name used by prog_fd, compatible with m; a new fd. */
static int live_twin(int prog_fd, const struct bpf_map *m)
{
	__u32 ids[ADOPT_MAX_MAPS], len;
	struct bpf_prog_info pi;

	memset(&pi, 0, sizeof(pi));
	pi.nr_map_ids = ADOPT_MAX_MAPS;
	pi.map_ids = (__u64)(unsigned long)ids;
	len = sizeof(pi);
	if (bpf_obj_get_info_by_fd(prog_fd, &pi, &len))
		return -errno;
	for (__u32 i = 0; i < pi.nr_map_ids && i < ADOPT_MAX_MAPS; i++) {
		struct bpf_map_info mi;
		int fd = bpf_map_get_fd_by_id(ids[i]);

		if (fd < 0)
			continue;
		memset(&mi, 0, sizeof(mi));
		len = sizeof(mi);
		if (!bpf_obj_get_info_by_fd(fd, &mi, &len) && !strcmp(mi.name, bpf_map__name(m)) &&
		    mi.type == bpf_map__type(m) && mi.key_size == bpf_map__key_size(m) &&
		    mi.value_size == bpf_map__value_size(m))
			return fd;
		close(fd);
	}
	return -ENOENT;
}

static bool map_percpu(enum bpf_map_type t)
{
	return t == BPF_MAP_TYPE_PERCPU_ARRAY || t == BPF_MAP_TYPE_PERCPU_HASH ||
	       t == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

/* Copies every entry of from into to; returns the count or -errno. */
static long map_copy(int from, int to, const struct bpf_map *m, int ncpus)
{
	size_t vsz = bpf_map__value_size(m), ksz = bpf_map__key_size(m);
	void *key, *next, *val;
	long n = 0;
	int err = 0;

	if (map_percpu(bpf_map__type(m)))
		vsz = ((vsz + 7) & ~(size_t)7) * (size_t)ncpus;
	key = calloc(1, ksz);
	next = calloc(1, ksz);
	val = calloc(1, vsz);
	if (!key || !next || !val) {
		err = -ENOMEM;
		goto out;
	}
	for (void *prev = NULL; !bpf_map_get_next_key(from, prev, next); prev = key) {
		memcpy(key, next, ksz);
		if (bpf_map_lookup_elem(from, key, val))
			continue; /* gone meanwhile */
		if (bpf_map_update_elem(to, key, val, BPF_ANY)) {
			err = -errno;
			break;
		}
		n++;
	}
out:
	free(key);
	free(next);
	free(val);
	return err ? err : n;
}

int seg_dp_maps_adopt(struct seg_bpf *skel, const char *pin_dir, int ncpus)
{
	char path[PATH_MAX];
	struct bpf_map *map;
	int prog_fd = -1, err = 0;

	bpf_object__for_each_map(map, skel->obj)
	{
		long n;
		int twin;

		if (bpf_map__is_internal(map) || bpf_map__type(map) == BPF_MAP_TYPE_RINGBUF)
			continue;
		if (seg_dp_path(path, pin_dir, bpf_map__name(map), NULL) || !access(path, F_OK))
			continue; /* reused: nothing to adopt */
		if (prog_fd == -1)
			prog_fd = live_prog_fd(pin_dir);
		if (prog_fd < 0)
			break; /* nothing attached: nothing can see a window */
		twin = live_twin(prog_fd, map);
		if (twin < 0)
			continue;
		n = map_copy(twin, bpf_map__fd(map), map, ncpus);
		close(twin);
		if (n < 0) {
			err = log_err((int)n, "rebuild map %s from the live one", path);
			break;
		}
		log_warn("pin %s was missing: rebuilt with the %ld entries of the map in use", path,
			 n);
	}
	if (prog_fd >= 0)
		close(prog_fd);
	return err;
}
