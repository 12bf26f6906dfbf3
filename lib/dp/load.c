// SPDX-License-Identifier: GPL-2.0-only
/*
 * Open, load, pin and reuse the data path.
 *
 * Pin layout under pin_dir (bpffs):
 *   <pin_dir>/<map>             every shared map (not .rodata/.bss: those
 *                               belong to one program instance)
 *   <pin_dir>/progs/<prog>      the programs of the main instance
 *   <pin_dir>/links/<ifkey>-{from,to}   attachments (attach.c)
 *
 * seg_dp_open() loads a new program instance every time; its shared maps
 * reuse compatible pins (so state survives a restart) and are pinned when
 * new. open_existing only bpf_obj_get()s the pins and never loads.
 */
#include "dp_priv.h"
#include "log.h"
#include "seg_bpf.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

const char *const seg_dpm_names[DPM_MAX] = {
	[DPM_ENDPOINTS] = SEG_MAP_ENDPOINTS,
	[DPM_IPCACHE] = SEG_MAP_IPCACHE,
	[DPM_IPCACHE_LPM] = SEG_MAP_IPCACHE_LPM,
	[DPM_POLICY] = SEG_MAP_POLICY,
	[DPM_CT] = SEG_MAP_CT,
	[DPM_FRAG] = SEG_MAP_FRAG,
	[DPM_EVENTS] = SEG_MAP_EVENTS,
	[DPM_REASONS] = SEG_MAP_REASONS,
	[DPM_RULES] = SEG_MAP_RULES,
	[DPM_EVT_RL] = SEG_MAP_EVT_RL,
	[DPM_CONFIG] = SEG_MAP_CONFIG,
	[DPM_ENDPOINTS1] = SEG_MAP_ENDPOINTS1,
	[DPM_IPCACHE1] = SEG_MAP_IPCACHE1,
	[DPM_IPCACHE_LPM1] = SEG_MAP_IPCACHE_LPM1,
};

static const char *const seg_prog_names[SEG_PROG_MAX] = {
	[SEG_PROG_TC_TO_POD] = "seg_tc_to_pod",
	[SEG_PROG_TC_FROM_POD] = "seg_tc_from_pod",
	[SEG_PROG_XDP_FROM_POD] = "seg_xdp_from_pod",
};

const char *seg_dp_prog_name(enum seg_prog p)
{
	return p < SEG_PROG_MAX ? seg_prog_names[p] : "?";
}

int seg_dp_path(char *buf, const char *dir, const char *a, const char *b)
{
	int n = b ? snprintf(buf, PATH_MAX, "%s/%s/%s", dir, a, b) :
		    snprintf(buf, PATH_MAX, "%s/%s", dir, a);

	if (n < 0 || n >= PATH_MAX)
		return log_err(-ENAMETOOLONG, "path %s/%s too long", dir, a);
	return 0;
}

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return log_err(-EINVAL, "bad pin directory '%s'", path);
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) && errno != EEXIST)
			return log_err(-errno, "mkdir %s", buf);
		*p = '/';
	}
	if (mkdir(buf, 0700) && errno != EEXIST)
		return log_err(-errno, "mkdir %s", buf);
	return 0;
}

int seg_dp_bpffs_check(const char *dir)
{
	struct statfs st;

	if (statfs(dir, &st))
		return log_err(-errno, "statfs %s", dir);
	if ((unsigned long)st.f_type != BPF_FS_MAGIC) {
		log_error("%s is not on a bpf filesystem; mount it with "
			  "`mount -t bpf bpf /sys/fs/bpf` (note: `ip netns exec` hides it)",
			  dir);
		return -ENOTSUP;
	}
	return 0;
}

/* mkdir -p pin_dir, pin_dir/progs, pin_dir/links; all on bpffs. */
static int pin_dirs_create(const char *pin_dir)
{
	char path[PATH_MAX];
	int err;

	err = mkdir_p(pin_dir);
	if (err)
		return err;
	err = seg_dp_bpffs_check(pin_dir);
	if (err)
		return err;
	err = seg_dp_path(path, pin_dir, "progs", NULL) ?: mkdir_p(path);
	if (err)
		return err;
	return seg_dp_path(path, pin_dir, "links", NULL) ?: mkdir_p(path);
}

static int map_info(int fd, struct bpf_map_info *info, const char *what)
{
	__u32 len = sizeof(*info);

	memset(info, 0, sizeof(*info));
	if (bpf_obj_get_info_by_fd(fd, info, &len))
		return log_err(-errno, "map info of %s", what);
	return 0;
}

static int map_take(struct seg_dp *dp, int fd, const char *name)
{
	struct seg_dp_map *m;
	struct bpf_map_info info;
	int err;

	if (dp->nmaps >= SEG_DP_MAPS_MAX)
		return log_err(-E2BIG, "too many maps (%s)", name);
	err = map_info(fd, &info, name);
	if (err)
		return err;
	m = &dp->maps[dp->nmaps];
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->type = info.type;
	m->key_size = info.key_size;
	m->value_size = info.value_size;
	m->max_entries = info.max_entries;
	m->flags = info.map_flags;
	m->id = info.id;
	m->fd = fd;
	dp->nmaps++;
	return 0;
}

static int maps_resolve(struct seg_dp *dp)
{
	for (int i = 0; i < DPM_MAX; i++) {
		dp->dpm[i] = -1;
		for (int j = 0; j < dp->nmaps; j++)
			if (!strcmp(dp->maps[j].name, seg_dpm_names[i]))
				dp->dpm[i] = j;
		if (dp->dpm[i] < 0)
			return log_err(-ENOENT, "data path has no map %s (ABI mismatch?)",
				       seg_dpm_names[i]);
	}
	return 0;
}

/* Capacity overrides from opts, 0 = keep the object's default. */
static int maps_size(struct seg_bpf *skel, const struct seg_dp_opts *o)
{
	const struct {
		struct bpf_map *map;
		__u32 n;
	} sz[] = {
		{ skel->maps.seg_endpoints, o->max_endpoints },
		{ skel->maps.seg_evt_rl, o->max_endpoints },
		{ skel->maps.seg_ipcache, o->max_ipcache },
		{ skel->maps.seg_ipc_lpm, o->max_ipcache_lpm },
		{ skel->maps.seg_policy, o->max_policy },
		{ skel->maps.seg_ct, o->max_ct },
		{ skel->maps.seg_rules, o->max_rules },
	};

	for (size_t i = 0; i < sizeof(sz) / sizeof(sz[0]); i++) {
		int err;

		if (!sz[i].n)
			continue;
		err = bpf_map__set_max_entries(sz[i].map, sz[i].n);
		if (err)
			return log_err(err, "set max_entries of %s to %u", bpf_map__name(sz[i].map),
				       sz[i].n);
	}
	return 0;
}

/* 0 when the pin fits the map the program declares; otherwise -EEXIST,
 * logged (as a refusal naming the fix, unless quiet). */
static int map_compat(const struct bpf_map *want, const struct bpf_map_info *have, const char *path,
		      bool quiet)
{
	const char *what = NULL;
	__u32 w = 0, h = 0;

	if (have->type != (__u32)bpf_map__type(want))
		what = "type", w = bpf_map__type(want), h = have->type;
	else if (have->key_size != bpf_map__key_size(want))
		what = "key size", w = bpf_map__key_size(want), h = have->key_size;
	else if (have->value_size != bpf_map__value_size(want))
		what = "value size", w = bpf_map__value_size(want), h = have->value_size;
	else if (have->max_entries != bpf_map__max_entries(want))
		what = "max_entries", w = bpf_map__max_entries(want), h = have->max_entries;
	else if (have->map_flags != bpf_map__map_flags(want))
		what = "flags", w = bpf_map__map_flags(want), h = have->map_flags;
	if (!what)
		return 0;
	if (quiet)
		return -EEXIST;
	log_error("pinned map %s is incompatible: its %s is %u, this seg needs %u; "
		  "remove the pin (`rm %s`; its entries are lost), start with the "
		  "sizes it was created with, or let segd rebuild it",
		  path, what, h, w, path);
	return -EEXIST;
}

/* For every shared map with a pin: check it, and make the skeleton use it.
 * With rebuild, an incompatible pin is not refused but recorded in *stale
 * (adopt.c rebuilds it); if it is one the caller refills, so are all of
 * those (the caller recomputes them together, from nothing). */
static int maps_reuse(struct seg_bpf *skel, const char *pin_dir, bool rebuild,
		      struct seg_dp_stale **stale)
{
	struct bpf_map *map;
	char path[PATH_MAX];
	int fd = -1, err = 0;

	for (int pass = 0; pass < 3 && !err; pass++) {
		/* 0: find the stale pins; 1: the rest of a refilled set; 2: reuse */
		if (pass == 1 && !seg_dp_stale_pending(*stale))
			continue;
		bpf_object__for_each_map(map, skel->obj)
		{
			struct bpf_map_info info;
			const char *name = bpf_map__name(map);

			if (bpf_map__is_internal(map) || seg_dp_stale_has(*stale, name))
				continue;
			if (pass == 1 && !seg_dp_map_refilled(name))
				continue;
			err = seg_dp_path(path, pin_dir, name, NULL);
			if (err)
				break;
			fd = bpf_obj_get(path);
			if (fd < 0) {
				if (errno == ENOENT)
					continue;
				err = log_err(-errno, "open pinned map %s", path);
				break;
			}
			err = map_info(fd, &info, path);
			if (err)
				break;
			if (pass == 0) {
				if (map_compat(map, &info, path, rebuild)) {
					if (!rebuild) {
						err = -EEXIST;
						break;
					}
					err = seg_dp_stale_add(stale, name, fd, &info, false);
					if (err)
						break;
					fd = -1; /* kept by *stale */
				}
			} else if (pass == 1) {
				err = seg_dp_stale_add(stale, name, fd, &info, true);
				if (err)
					break;
				fd = -1;
			} else {
				err = bpf_map__reuse_fd(map, fd);
				if (err) {
					log_err(err, "reuse pinned map %s", path);
					break;
				}
				log_debug("reusing pinned map %s (id %u)", path, info.id);
			}
			if (fd >= 0)
				close(fd);
			fd = -1;
		}
	}
	if (fd >= 0)
		close(fd);
	return err;
}

/* Pins each shared map that is not pinned yet (i.e. was created by load). */
static int maps_pin(struct seg_bpf *skel, const char *pin_dir)
{
	struct bpf_map *map;
	char path[PATH_MAX];
	int err;

	bpf_object__for_each_map(map, skel->obj)
	{
		if (bpf_map__is_internal(map))
			continue;
		err = seg_dp_path(path, pin_dir, bpf_map__name(map), NULL);
		if (err)
			return err;
		if (!access(path, F_OK))
			continue; /* reused */
		if (bpf_obj_pin(bpf_map__fd(map), path))
			return log_err(-errno, "pin map %s", path);
	}
	return 0;
}

/* Pins (or atomically replaces the pin of) each program: pin under a
 * temporary name, then rename over the old one. */
static int progs_pin(struct seg_dp *dp)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];

	for (int p = 0; p < SEG_PROG_MAX; p++) {
		int err = seg_dp_path(path, dp->pin_dir, "progs", seg_prog_names[p]);

		if (err)
			return err;
		snprintf(tmp, sizeof(tmp), "%s_new", path);
		unlink(tmp);
		if (bpf_obj_pin(dp->prog_fd[p], tmp))
			return log_err(-errno, "pin program %s", tmp);
		if (rename(tmp, path)) {
			err = log_err(-errno, "rename %s to %s", tmp, path);
			unlink(tmp);
			return err;
		}
	}
	return 0;
}

/* dp takes its own fds (dup) of the skeleton's shared maps and programs. */
static int skel_take(struct seg_dp *dp, struct seg_bpf *skel)
{
	struct bpf_program *progs[SEG_PROG_MAX] = {
		[SEG_PROG_TC_TO_POD] = skel->progs.seg_tc_to_pod,
		[SEG_PROG_TC_FROM_POD] = skel->progs.seg_tc_from_pod,
		[SEG_PROG_XDP_FROM_POD] = skel->progs.seg_xdp_from_pod,
	};
	struct bpf_map *map;
	int err;

	bpf_object__for_each_map(map, skel->obj)
	{
		int fd;

		if (bpf_map__is_internal(map))
			continue;
		fd = dup(bpf_map__fd(map));
		if (fd < 0)
			return log_err(-errno, "dup fd of map %s", bpf_map__name(map));
		err = map_take(dp, fd, bpf_map__name(map));
		if (err) {
			close(fd);
			return err;
		}
	}
	for (int p = 0; p < SEG_PROG_MAX; p++) {
		dp->prog_fd[p] = dup(bpf_program__fd(progs[p]));
		if (dp->prog_fd[p] < 0)
			return log_err(-errno, "dup fd of program %s", seg_prog_names[p]);
	}
	return 0;
}

static int dp_load(struct seg_dp *dp, const struct seg_dp_opts *opts)
{
	struct seg_bpf *skel;
	int err;

	skel = seg_bpf__open();
	if (!skel)
		return log_err(-errno, "open BPF object seg_bpf");
	err = maps_size(skel, opts);
	if (err)
		goto out;
	if (dp->pin_dir) {
		err = maps_reuse(skel, dp->pin_dir, opts->rebuild_stale, &dp->stale);
		if (err)
			goto out;
	}
	err = seg_bpf__load(skel);
	if (err) {
		log_err(err, "load BPF object seg_bpf (verifier log above; -v for all)");
		goto out;
	}
	if (dp->pin_dir) {
		err = seg_dp_maps_adopt(skel, dp->pin_dir, dp->ncpus, dp->stale) ?:
			      maps_pin(skel, dp->pin_dir);
		if (err)
			goto out;
	}
	err = skel_take(dp, skel);
out:
	seg_bpf__destroy(skel);
	return err;
}

/* open_existing: pinned maps (all required) and programs (optional). */
static int dp_get_pins(struct seg_dp *dp)
{
	struct seg_bpf *skel;
	struct bpf_map *map;
	char path[PATH_MAX];
	int err = 0;

	/* Parsing the embedded object (no load) tells which maps to expect. */
	skel = seg_bpf__open();
	if (!skel)
		return log_err(-errno, "open BPF object seg_bpf");
	bpf_object__for_each_map(map, skel->obj)
	{
		int fd;

		if (bpf_map__is_internal(map))
			continue;
		err = seg_dp_path(path, dp->pin_dir, bpf_map__name(map), NULL);
		if (err)
			goto out;
		fd = bpf_obj_get(path);
		if (fd < 0) {
			err = -errno;
			if (err == -ENOENT)
				log_error("no pinned map %s: the data path under %s is not "
					  "loaded, or was loaded by an older seg (reload it)",
					  path, dp->pin_dir);
			else
				log_err(err, "open pinned map %s", path);
			goto out;
		}
		err = map_take(dp, fd, bpf_map__name(map));
		if (err) {
			close(fd);
			goto out;
		}
	}
	for (int p = 0; p < SEG_PROG_MAX; p++) {
		err = seg_dp_path(path, dp->pin_dir, "progs", seg_prog_names[p]);
		if (err)
			goto out;
		dp->prog_fd[p] = bpf_obj_get(path);
		if (dp->prog_fd[p] < 0)
			log_debug("no pinned program %s: %s", path, strerror(errno));
	}
out:
	seg_bpf__destroy(skel);
	return err;
}

static struct seg_dp *dp_alloc(const char *pin_dir)
{
	struct seg_dp *dp = calloc(1, sizeof(*dp));

	if (!dp)
		return NULL;
	for (int p = 0; p < SEG_PROG_MAX; p++)
		dp->prog_fd[p] = -1;
	if (pin_dir) {
		size_t len = strlen(pin_dir);

		while (len > 1 && pin_dir[len - 1] == '/')
			len--;
		dp->pin_dir = strndup(pin_dir, len);
		if (!dp->pin_dir) {
			free(dp);
			return NULL;
		}
	}
	return dp;
}

/* The new programs take over: pinned, every pinned link moved onto them,
 * then the stale pins replaced by the rebuilt maps. */
static int dp_switch(struct seg_dp *dp)
{
	int err = progs_pin(dp) ?: seg_dp_links_refresh(dp) ?: seg_dp_stale_finish(dp, dp->stale);

	seg_dp_stale_free(dp->stale);
	dp->stale = NULL;
	return err;
}

int seg_dp_pin_dir_lock(const char *pin_dir)
{
	int fd = open(pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || flock(fd, LOCK_EX)) {
		int err = log_err(-errno, "lock %s", pin_dir);

		if (fd >= 0)
			close(fd);
		return err;
	}
	return fd;
}

bool seg_dp_commit_pending(const struct seg_dp *dp)
{
	return dp && seg_dp_stale_pending(dp->stale);
}

int seg_dp_commit(struct seg_dp *dp)
{
	int lock_fd, err;

	if (!dp->stale)
		return 0;
	lock_fd = seg_dp_pin_dir_lock(dp->pin_dir);
	if (lock_fd < 0)
		return lock_fd;
	err = dp_switch(dp);
	close(lock_fd);
	return err;
}

int seg_dp_open(struct seg_dp **out, const struct seg_dp_opts *opts)
{
	static const struct seg_dp_opts defaults;
	struct seg_dp *dp;
	int lock_fd = -1, err;

	*out = NULL;
	if (!opts)
		opts = &defaults;
	if (opts->open_existing && !opts->pin_dir)
		return log_err(-EINVAL, "open_existing needs a pin directory");
	dp = dp_alloc(opts->pin_dir);
	if (!dp)
		return log_err(-ENOMEM, "allocate data path");
	err = libbpf_num_possible_cpus();
	if (err < 0) {
		log_err(err, "count possible CPUs");
		goto out;
	}
	dp->ncpus = err;
	if (opts->open_existing) {
		if (access(dp->pin_dir, F_OK) && errno == ENOENT) {
			log_error("no pin directory %s: is the data path loaded (segd running)?",
				  dp->pin_dir);
			err = -ENOENT;
			goto out;
		}
		err = seg_dp_bpffs_check(dp->pin_dir) ?: dp_get_pins(dp);
		if (err)
			goto out;
	} else {
		if (dp->pin_dir) {
			err = pin_dirs_create(dp->pin_dir);
			if (err)
				goto out;
			/* One loader at a time per pin dir. */
			lock_fd = seg_dp_pin_dir_lock(dp->pin_dir);
			if (lock_fd < 0) {
				err = lock_fd;
				goto out;
			}
		}
		err = dp_load(dp, opts) ?: maps_resolve(dp);
		/* Refilled maps wait for the caller: seg_dp_commit() switches. */
		if (!err && dp->pin_dir && !seg_dp_stale_pending(dp->stale))
			err = dp_switch(dp);
		if (err)
			goto out;
	}
	err = maps_resolve(dp);
	if (err)
		goto out;
	*out = dp;
	dp = NULL;
out:
	if (lock_fd >= 0)
		close(lock_fd);
	seg_dp_close(dp);
	return err;
}

void seg_dp_close(struct seg_dp *dp)
{
	if (!dp)
		return;
	seg_dp_att_close_all(dp);
	seg_dp_stale_free(dp->stale); /* never committed: the old pins stay */
	for (int i = 0; i < dp->nmaps; i++)
		close(dp->maps[i].fd);
	for (int p = 0; p < SEG_PROG_MAX; p++)
		if (dp->prog_fd[p] >= 0)
			close(dp->prog_fd[p]);
	free(dp->pin_dir);
	free(dp);
}

int seg_dp_prog_fd(const struct seg_dp *dp, enum seg_prog p)
{
	if (p >= SEG_PROG_MAX)
		return log_err(-EINVAL, "no program #%d", (int)p);
	if (dp->prog_fd[p] < 0)
		return log_err(-ENOENT, "program %s is not pinned under %s", seg_prog_names[p],
			       dp->pin_dir);
	return dp->prog_fd[p];
}

int seg_dp_map_fd_in(const struct seg_dp *dp, const char *name)
{
	for (int i = 0; i < dp->nmaps; i++)
		if (!strcmp(dp->maps[i].name, name))
			return dp->maps[i].fd;
	return log_err(-ENOENT, "no map %s in the data path", name);
}

int seg_dp_map_fd(const struct seg_dp *dp, const char *name)
{
	static const char *const epoch_maps[][2] = {
		{ SEG_MAP_ENDPOINTS, SEG_MAP_ENDPOINTS1 },
		{ SEG_MAP_IPCACHE, SEG_MAP_IPCACHE1 },
		{ SEG_MAP_IPCACHE_LPM, SEG_MAP_IPCACHE_LPM1 },
	};

	/* the epoch-0 names stand for "the active epoch's map" */
	for (size_t e = 0; e < sizeof(epoch_maps) / sizeof(epoch_maps[0]); e++)
		if (!strcmp(name, epoch_maps[e][0]))
			name = epoch_maps[e][seg_dp_active_epoch(dp)];
	for (int i = 0; i < dp->nmaps; i++)
		if (!strcmp(dp->maps[i].name, name))
			return dp->maps[i].fd;
	return log_err(-ENOENT, "no map %s in the data path", name);
}

const char *seg_dp_pin_dir(const struct seg_dp *dp)
{
	return dp->pin_dir;
}

int seg_dp_instance_open(const struct seg_dp *dp, __u32 cfg_ifkey, struct seg_bpf **out)
{
	struct seg_bpf *skel;
	struct bpf_map *map;
	int err = 0;

	*out = NULL;
	skel = seg_bpf__open();
	if (!skel)
		return log_err(-errno, "open BPF object seg_bpf");
	bpf_object__for_each_map(map, skel->obj)
	{
		const char *name = bpf_map__name(map);
		int fd;

		if (bpf_map__is_internal(map))
			continue;
		fd = seg_dp_map_fd(dp, name);
		if (fd < 0) {
			err = fd;
			goto out;
		}
		err = bpf_map__reuse_fd(map, fd);
		if (err) {
			log_err(err, "reuse map %s for instance ifkey %#x", name, cfg_ifkey);
			goto out;
		}
	}
	skel->rodata->seg_cfg_ifkey = cfg_ifkey;
	*out = skel;
	skel = NULL;
out:
	seg_bpf__destroy(skel);
	return err;
}

/* Removes every entry of <dir> (files only: pins), then <dir>. */
static int pin_dir_clear(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int err = 0;

	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : log_err(-errno, "open %s", dir);
	while ((de = readdir(d))) {
		if (de->d_type == DT_DIR)
			continue;
		if (seg_dp_path(path, dir, de->d_name, NULL))
			continue;
		if (unlink(path) && errno != ENOENT && !err)
			err = log_err(-errno, "unlink %s", path);
	}
	closedir(d);
	if (!err && rmdir(dir) && errno != ENOENT)
		err = log_err(-errno, "rmdir %s (something else is pinned there?)", dir);
	return err;
}

int seg_dp_unpin_all(const char *pin_dir)
{
	char path[PATH_MAX];
	int err;

	if (!pin_dir)
		return log_err(-EINVAL, "unpin: no pin directory");
	if (access(pin_dir, F_OK) && errno == ENOENT)
		return 0;
	/* Only ever unlink on bpffs. */
	err = seg_dp_bpffs_check(pin_dir);
	if (err)
		return err;
	/* Links first: unpinning them detaches the programs. */
	err = seg_dp_path(path, pin_dir, "links", NULL) ?: pin_dir_clear(path);
	if (err)
		return err;
	err = seg_dp_path(path, pin_dir, "progs", NULL) ?: pin_dir_clear(path);
	if (err)
		return err;
	return pin_dir_clear(pin_dir);
}
