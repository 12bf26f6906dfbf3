// SPDX-License-Identifier: GPL-2.0-only
/*
 * segctl map dump MAP: every entry of one pinned map as raw bytes (hex),
 * like `bpftool map dump`, for maps the typed `bpf ...` commands do not
 * decode or to see exactly what is stored. Per-CPU maps show one value per
 * possible CPU. Reads only.
 */
#include "ctl_segd.h"

#include "log.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const map_names[] = {
	SEG_MAP_ENDPOINTS, SEG_MAP_IPCACHE, SEG_MAP_IPCACHE_LPM, SEG_MAP_POLICY,
	SEG_MAP_CT,	   SEG_MAP_FRAG,    SEG_MAP_REASONS,	 SEG_MAP_RULES,
	SEG_MAP_EVT_RL,	   SEG_MAP_CONFIG,  NULL,
};

struct map_dump_opts {
	int map;
	bool nonzero;
};
static const struct map_dump_opts map_dump_defaults;
static const struct opt map_dump_optv[] = {
	OPT_ENUM(0, "map", struct map_dump_opts, map, map_names, "the map (abi.h name)",
		 .positional = true, .required = true),
	OPT_BOOL(0, "nonzero", struct map_dump_opts, nonzero,
		 "skip entries whose value is all zero (arrays)"),
	OPT_END,
};

static void hex(char *out, const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

static bool all_zero(const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static int do_map_dump(void *ctx, void *opts)
{
	struct segctl *c = ctx;
	struct map_dump_opts *o = opts;
	const char *name = map_names[o->map];
	struct bpf_map_info info = {};
	__u32 ilen = sizeof(info);
	unsigned char *key = NULL, *prev = NULL, *val = NULL;
	char *kx = NULL, *vx = NULL;
	size_t vsz, stride;
	struct seg_dp *dp;
	int fd, err, ncpu = 1;
	bool percpu;

	err = segctl_dp(c, &dp);
	if (err)
		return err;
	fd = seg_dp_map_fd(dp, name);
	if (fd < 0)
		return fd;
	if (bpf_obj_get_info_by_fd(fd, &info, &ilen))
		return log_err(-errno, "map info of %s", name);
	percpu = info.type == BPF_MAP_TYPE_PERCPU_ARRAY || info.type == BPF_MAP_TYPE_PERCPU_HASH ||
		 info.type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
	if (percpu) {
		ncpu = libbpf_num_possible_cpus();
		if (ncpu < 1)
			return log_err(ncpu, "number of possible CPUs");
	}
	stride = percpu ? (info.value_size + 7) / 8 * 8 : info.value_size;
	vsz = stride * ncpu;
	key = calloc(1, info.key_size);
	prev = calloc(1, info.key_size);
	val = calloc(1, vsz);
	kx = malloc(2 * info.key_size + 1);
	vx = malloc(2 * info.value_size + 1);
	if (!key || !prev || !val || !kx || !vx) {
		err = -ENOMEM;
		goto out;
	}
	out_list_begin(c->out, NULL);
	for (bool first = true; !bpf_map_get_next_key(fd, first ? NULL : prev, key); first = false) {
		memcpy(prev, key, info.key_size);
		if (bpf_map_lookup_elem(fd, key, val))
			continue; /* deleted meanwhile */
		if (o->nonzero && all_zero(val, vsz))
			continue;
		out_obj_begin(c->out, NULL);
		hex(kx, key, info.key_size);
		out_str(c->out, OUT_ANY, "key", NULL, kx);
		if (!percpu) {
			hex(vx, val, info.value_size);
			out_str(c->out, OUT_ANY, "value", NULL, vx);
		} else {
			out_list_begin(c->out, "values");
			for (int i = 0; i < ncpu; i++) {
				hex(vx, val + i * stride, info.value_size);
				out_str(c->out, OUT_ANY, NULL, NULL, vx);
			}
			out_list_end(c->out);
		}
		out_obj_end(c->out);
	}
	out_list_end(c->out);
out:
	free(key);
	free(prev);
	free(val);
	free(kx);
	free(vx);
	return err;
}

const struct cmd segctl_map_cmds[] = {
	CMD_LEAF("dump", do_map_dump, map_dump_optv, map_dump_defaults,
		 "every entry of one pinned map, as hex bytes (reads the pins, not segd)",
		 .examples = "segctl map dump seg_policy\nsegctl -o json map dump seg_reasons --nonzero"),
	CMD_END,
};
