// SPDX-License-Identifier: GPL-2.0-only
/*
 * Rebuilding a shared map without a window, when its pin is missing or
 * stale.
 *
 * Missing: the pin was lost (removed by hand, a stale bpffs). The next load
 * makes the map anew, empty. The programs still attached keep using the old
 * map (the pin went, the map did not), so moving the links onto the new
 * programs would open a window in which the new, empty map decides: allowed
 * traffic dropped (policy, endpoints) or state forgotten (conntrack). Before
 * the new map is pinned and the links move, its content is copied from the
 * live twin, found through a pinned link's program.
 *
 * Stale: a pin whose type, key or value size, max_entries or flags differ
 * from what the program being loaded declares (an upgrade changed a map's
 * layout or size). Only a loader that asks for it (seg_dp_opts.rebuild_stale)
 * rebuilds it; others refuse it, naming the map. The load makes the map
 * anew and:
 *   - a map whose content the caller recomputes (endpoints, ipcache, policy,
 *     config: SEG_DP_REFILL) is left empty, and so are all the others of
 *     that set, so the caller's view of them stays consistent. The caller
 *     fills them, then seg_dp_commit() moves the links. Until then the old
 *     programs go on enforcing with the old maps.
 *   - any other map (conntrack, fragments, counters) gets the entries of
 *     the live twin, else of the stale pinned map, when their type, key and
 *     value size are the same (max_entries or flags changed); entries that
 *     do not fit are counted and dropped. When the layout changed there is
 *     no way to convert them (the old layout is not known here): the map
 *     starts empty; for conntrack this means every established flow is
 *     checked by policy again on its next packet.
 * After the links moved, carried hash maps get a second pass (entries made
 * by the old programs meanwhile, without overwriting), and only then is the
 * stale pin replaced (pinned under a temporary name, renamed over it).
 */
#include "dp_priv.h"
#include "log.h"
#include "seg_bpf.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ADOPT_MAX_MAPS 64

struct stale_map {
	char name[BPF_OBJ_NAME_LEN];
	int pin_fd; /* the stale pinned map */
	int src_fd; /* entries were carried from this one; -1: none */
	struct bpf_map_info pin; /* its info */
	bool refill; /* the caller fills it before seg_dp_commit() */
	bool forced; /* the pin fits, but the rest of its set is refilled */
};

struct seg_dp_stale {
	struct stale_map m[SEG_DP_MAPS_MAX];
	int n;
	bool refill; /* some map waits for the caller */
};

/* The maps segd computes from its sources and writes whole on a restart. */
static const char *const refill_names[] = {
	SEG_MAP_ENDPOINTS,   SEG_MAP_ENDPOINTS1,   SEG_MAP_IPCACHE, SEG_MAP_IPCACHE1,
	SEG_MAP_IPCACHE_LPM, SEG_MAP_IPCACHE_LPM1, SEG_MAP_POLICY,  SEG_MAP_CONFIG,
};

static bool is_refill(const char *name)
{
	for (size_t i = 0; i < sizeof(refill_names) / sizeof(refill_names[0]); i++)
		if (!strcmp(name, refill_names[i]))
			return true;
	return false;
}

static struct stale_map *stale_find(const struct seg_dp_stale *s, const char *name)
{
	for (int i = 0; s && i < s->n; i++)
		if (!strcmp(s->m[i].name, name))
			return (struct stale_map *)&s->m[i];
	return NULL;
}

bool seg_dp_stale_has(const struct seg_dp_stale *s, const char *name)
{
	return stale_find(s, name) != NULL;
}

bool seg_dp_stale_pending(const struct seg_dp_stale *s)
{
	return s && s->refill;
}

int seg_dp_stale_add(struct seg_dp_stale **sp, const char *name, int pin_fd,
		     const struct bpf_map_info *info, bool forced)
{
	struct seg_dp_stale *s = *sp;
	struct stale_map *m;

	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return log_err(-ENOMEM, "stale pins");
		*sp = s;
	}
	if (stale_find(s, name))
		return 0;
	if (s->n >= SEG_DP_MAPS_MAX)
		return log_err(-E2BIG, "too many stale pins (%s)", name);
	m = &s->m[s->n++];
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->pin_fd = pin_fd;
	m->src_fd = -1;
	m->pin = *info;
	m->refill = is_refill(name);
	m->forced = forced;
	s->refill |= m->refill;
	return 0;
}

bool seg_dp_map_refilled(const char *name)
{
	return is_refill(name);
}

void seg_dp_stale_free(struct seg_dp_stale *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->n; i++) {
		if (s->m[i].pin_fd >= 0)
			close(s->m[i].pin_fd);
		if (s->m[i].src_fd >= 0 && s->m[i].src_fd != s->m[i].pin_fd)
			close(s->m[i].src_fd);
	}
	free(s);
}

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

/* Same type, key and value size: entries can be copied as they are. */
static bool layout_same(const struct bpf_map_info *mi, const struct bpf_map *m)
{
	return mi->type == bpf_map__type(m) && mi->key_size == bpf_map__key_size(m) &&
	       mi->value_size == bpf_map__value_size(m);
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
		    layout_same(&mi, m))
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

static bool map_hash(enum bpf_map_type t)
{
	return t == BPF_MAP_TYPE_HASH || t == BPF_MAP_TYPE_LRU_HASH ||
	       t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
	       t == BPF_MAP_TYPE_LPM_TRIE;
}

struct copy_res {
	long copied, dropped; /* dropped: did not fit (E2BIG, ENOSPC) or already there */
};

/* Copies every entry of from into to (flags: BPF_ANY or BPF_NOEXIST), maps
 * of type t with these key and value sizes. With lossy, an entry that does
 * not fit (or exists, for BPF_NOEXIST) is counted in dropped; otherwise it is
 * an error. 0 or -errno. */
static int map_copy(int from, int to, enum bpf_map_type t, size_t ksz, size_t vsz, int ncpus,
		    __u64 flags, bool lossy, struct copy_res *r)
{
	void *key, *next, *val;
	int err = 0;

	*r = (struct copy_res){ 0 };
	if (map_percpu(t))
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
		if (!bpf_map_update_elem(to, key, val, flags)) {
			r->copied++;
			continue;
		}
		if (lossy && (errno == E2BIG || errno == ENOSPC || errno == EEXIST)) {
			r->dropped++;
			continue;
		}
		err = -errno;
		break;
	}
out:
	free(key);
	free(next);
	free(val);
	return err;
}

static int map_copy_m(int from, int to, const struct bpf_map *m, int ncpus, bool lossy,
		      struct copy_res *r)
{
	return map_copy(from, to, bpf_map__type(m), bpf_map__key_size(m), bpf_map__value_size(m),
			ncpus, BPF_ANY, lossy, r);
}

/* A stale pin: say why, and carry what can be carried. */
static int adopt_stale(struct stale_map *sm, struct bpf_map *map, const char *path, int *prog_fd,
		       const char *pin_dir, int ncpus)
{
	const struct bpf_map_info *h = &sm->pin;
	struct copy_res r;
	int src = -1, err;

	if (sm->forced) {
		log_info("%s: made anew with the other maps segd computes; it fills them before "
			 "the programs switch",
			 path);
		return 0;
	}
	log_warn("pin %s is stale (type %u, key %u, value %u, max_entries %u, flags %#x; this seg "
		 "needs %u, %u, %u, %u, %#x): rebuilding it",
		 path, h->type, h->key_size, h->value_size, h->max_entries, h->map_flags,
		 bpf_map__type(map), bpf_map__key_size(map), bpf_map__value_size(map),
		 bpf_map__max_entries(map), bpf_map__map_flags(map));
	if (sm->refill) {
		log_info("%s: made anew, empty; the daemon fills it before the programs switch",
			 path);
		return 0;
	}
	if (bpf_map__type(map) == BPF_MAP_TYPE_RINGBUF)
		return 0;
	if (*prog_fd == -1)
		*prog_fd = live_prog_fd(pin_dir);
	if (*prog_fd >= 0)
		src = live_twin(*prog_fd, map);
	if (src < 0 && layout_same(h, map))
		src = sm->pin_fd;
	if (src < 0) {
		log_warn(
			"%s: its layout changed, the entries cannot be carried: it starts empty%s",
			path,
			strcmp(bpf_map__name(map), SEG_MAP_CT) ?
				"" :
				" (established flows are checked by policy again on their next packet)");
		return 0;
	}
	err = map_copy_m(src, bpf_map__fd(map), map, ncpus, true, &r);
	if (err) {
		if (src != sm->pin_fd)
			close(src);
		return log_err(err, "carry the entries of %s", path);
	}
	sm->src_fd = src;
	log_warn("%s: carried %ld entries from the map %s", path, r.copied,
		 src == sm->pin_fd ? "pinned there" : "in use");
	if (r.dropped)
		log_warn("%s: %ld entries did not fit in the new size and are lost", path,
			 r.dropped);
	return 0;
}

int seg_dp_maps_adopt(struct seg_bpf *skel, const char *pin_dir, int ncpus,
		      struct seg_dp_stale *stale)
{
	char path[PATH_MAX];
	struct bpf_map *map;
	int prog_fd = -1, err = 0;

	bpf_object__for_each_map(map, skel->obj)
	{
		struct stale_map *sm;
		struct copy_res r;
		int twin;

		if (bpf_map__is_internal(map) || bpf_map__type(map) == BPF_MAP_TYPE_RINGBUF)
			continue;
		if (seg_dp_path(path, pin_dir, bpf_map__name(map), NULL)) {
			err = -ENAMETOOLONG;
			break;
		}
		sm = stale_find(stale, bpf_map__name(map));
		if (sm) {
			err = adopt_stale(sm, map, path, &prog_fd, pin_dir, ncpus);
			if (err)
				break;
			continue;
		}
		if (!access(path, F_OK))
			continue; /* reused: nothing to adopt */
		if (prog_fd == -1)
			prog_fd = live_prog_fd(pin_dir);
		if (prog_fd < 0)
			continue; /* nothing attached: nothing can see a window */
		twin = live_twin(prog_fd, map);
		if (twin < 0)
			continue;
		err = map_copy_m(twin, bpf_map__fd(map), map, ncpus, false, &r);
		close(twin);
		if (err) {
			err = log_err(err, "rebuild map %s from the live one", path);
			break;
		}
		log_warn("pin %s was missing: rebuilt with the %ld entries of the map in use", path,
			 r.copied);
	}
	if (prog_fd >= 0)
		close(prog_fd);
	return err;
}

int seg_dp_stale_finish(struct seg_dp *dp, struct seg_dp_stale *s)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	int err = 0;

	for (int i = 0; s && i < s->n && !err; i++) {
		struct stale_map *sm = &s->m[i];
		int fd = seg_dp_map_fd_in(dp, sm->name);

		if (fd < 0)
			return fd;
		/* Entries the old programs made after the first copy. */
		if (sm->src_fd >= 0) {
			const struct seg_dp_map *m = NULL;
			struct copy_res r;

			for (int j = 0; j < dp->nmaps; j++)
				if (dp->maps[j].fd == fd)
					m = &dp->maps[j];
			if (m && map_hash(m->type) &&
			    !map_copy(sm->src_fd, fd, m->type, m->key_size, m->value_size,
				      dp->ncpus, BPF_NOEXIST, true, &r) &&
			    r.copied)
				log_info("%s: %ld entries made during the switch carried too",
					 sm->name, r.copied);
		}
		err = seg_dp_path(path, dp->pin_dir, sm->name, NULL);
		if (err)
			break;
		snprintf(tmp, sizeof(tmp), "%s_new", path);
		unlink(tmp);
		if (bpf_obj_pin(fd, tmp)) {
			err = log_err(-errno, "pin map %s", tmp);
			break;
		}
		if (rename(tmp, path)) {
			err = log_err(-errno, "rename %s to %s", tmp, path);
			unlink(tmp);
			break;
		}
		log_info("pin %s replaced by the rebuilt map", path);
	}
	return err;
}
