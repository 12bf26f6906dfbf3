/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * lib/dp internals shared by its files (load.c, attach.c, maps.c, iter.c,
 * events.c). Not installed, not included outside lib/dp.
 *
 * A struct seg_dp owns one fd per shared map and per program (dup'ed from
 * the skeleton, or bpf_obj_get() from pins); the skeleton itself is
 * destroyed as soon as the fds are taken, so an open instance costs fds
 * only. Program instances loaded for in-netns attachments are transient:
 * their links hold them.
 */
#ifndef SEG_DP_PRIV_H
#define SEG_DP_PRIV_H

#include "dp/dp.h"

#include <linux/bpf.h>

#ifndef BPF_TCX_INGRESS /* libbpf 1.1 / linux-libc-dev 6.1 lack them */
#define BPF_TCX_INGRESS 46
#define BPF_TCX_EGRESS 47
#endif
#ifndef BPF_LINK_TYPE_TCX
#define BPF_LINK_TYPE_TCX 11
#endif

/* Typed access indexes the shared maps by these, in abi.h order. */
enum seg_dpm {
	DPM_ENDPOINTS,
	DPM_IPCACHE,
	DPM_IPCACHE_LPM,
	DPM_POLICY,
	DPM_CT,
	DPM_FRAG,
	DPM_EVENTS,
	DPM_REASONS,
	DPM_RULES,
	DPM_EVT_RL,
	DPM_CONFIG,
	DPM_ENDPOINTS1, /* epoch 1 twins */
	DPM_IPCACHE1,
	DPM_IPCACHE_LPM1,
	DPM_MAX,
};
extern const char *const seg_dpm_names[DPM_MAX];

#define SEG_DP_MAPS_MAX 32 /* shared (non-internal) maps in the object */

struct seg_dp_map {
	char name[BPF_OBJ_NAME_LEN];
	int fd;
	__u32 type, key_size, value_size, max_entries, flags, id;
};

/* A private instance keeps its links here (a pinned one pins them). */
struct seg_dp_att {
	__u32 ifkey;
	int link_fd[2]; /* SEG_LINK_FROM, SEG_LINK_TO; -1 = none */
};
enum { SEG_LINK_FROM, SEG_LINK_TO };

struct seg_dp_stale;
struct seg_dp {
	char *pin_dir; /* NULL: private instance */
	struct seg_dp_map maps[SEG_DP_MAPS_MAX];
	int nmaps;
	int dpm[DPM_MAX]; /* index into maps[] */
	int prog_fd[SEG_PROG_MAX]; /* -1 when not pinned (open_existing) */
	struct seg_dp_att *att;
	size_t natt;
	int ncpus;
	struct seg_dp_stale *stale; /* adopt.c: stale pins replaced by seg_dp_commit() */
};

static inline int seg_dp_fd(const struct seg_dp *dp, enum seg_dpm m)
{
	return dp->maps[dp->dpm[m]].fd;
}

static inline const struct seg_dp_map *seg_dp_mapi(const struct seg_dp *dp, enum seg_dpm m)
{
	return &dp->maps[dp->dpm[m]];
}

/* maps.c: the active epoch (seg_config.epoch & 1; 0 if unreadable), and
 * the epoch twin of an epoch-keyed map. */
int seg_dp_active_epoch(const struct seg_dp *dp);
static inline enum seg_dpm seg_dpm_epoch(enum seg_dpm m, __u32 epoch)
{
	if (!(epoch & 1))
		return m;
	switch (m) {
	case DPM_ENDPOINTS:
		return DPM_ENDPOINTS1;
	case DPM_IPCACHE:
		return DPM_IPCACHE1;
	case DPM_IPCACHE_LPM:
		return DPM_IPCACHE_LPM1;
	default:
		return m;
	}
}

/* load.c */
const char *seg_dp_prog_name(enum seg_prog p);
int seg_dp_bpffs_check(const char *dir);
/* "<dir>/<a>[/<b>]" into buf (PATH_MAX); -ENAMETOOLONG logged. */
int seg_dp_path(char *buf, const char *dir, const char *a, const char *b);
/* Opens (does not load) a fresh skeleton whose shared maps reuse dp's
 * fds, with seg_cfg_ifkey set; *out is a struct seg_bpf *. attach.c loads it. */
struct seg_bpf;
int seg_dp_instance_open(const struct seg_dp *dp, __u32 cfg_ifkey, struct seg_bpf **out);

/* adopt.c: fill the maps this load had to create (their pin was missing)
 * from the live maps of the attached programs, before anything switches
 * to them. */
int seg_dp_maps_adopt(struct seg_bpf *skel, const char *pin_dir, int ncpus,
		      struct seg_dp_stale *stale);
/* Stale pins (seg_dp_opts.rebuild_stale): a pin that is not reused; the
 * new map carries what it can (adopt) and replaces the pin once the links
 * moved (finish). pending: maps the caller must fill before that. */
struct bpf_map_info;
int seg_dp_stale_add(struct seg_dp_stale **s, const char *name, int pin_fd,
		     const struct bpf_map_info *info, bool forced);
bool seg_dp_stale_has(const struct seg_dp_stale *s, const char *name);
bool seg_dp_stale_pending(const struct seg_dp_stale *s);
bool seg_dp_map_refilled(const char *name);
int seg_dp_stale_finish(struct seg_dp *dp, struct seg_dp_stale *s);
void seg_dp_stale_free(struct seg_dp_stale *s);

/* attach.c */
void seg_dp_att_close_all(struct seg_dp *dp);
/* After a (re)load: move every pinned link under dp->pin_dir onto the
 * newly loaded programs (bpf_link_update), so a restart runs new code. */
int seg_dp_links_refresh(struct seg_dp *dp);

/* flock(LOCK_EX) on the pin directory: one loader, committer or seg_config
 * writer at a time across processes. The fd to close, or -errno (logged). */
int seg_dp_pin_dir_lock(const char *pin_dir);

#endif
