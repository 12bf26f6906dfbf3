// SPDX-License-Identifier: GPL-2.0-only
/*
 * Typed access to single map entries. Keys are built zeroed (padding
 * included) so userspace and BPF hash the same bytes. Per-CPU values are
 * summed over libbpf_num_possible_cpus() slots of round_up(size, 8) bytes.
 */
#include "dp_priv.h"
#include "log.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Update/lookup/delete with one log line naming the map on failure.
 * A missing key on lookup/delete is -ENOENT and is not logged: callers
 * treat it as an answer, not an error. */
static int map_update(struct seg_dp *dp, enum seg_dpm m, const void *k, const void *v)
{
	if (bpf_map_update_elem(seg_dp_fd(dp, m), k, v, BPF_ANY)) {
		int err = -errno;

		if (err == -E2BIG)
			return log_err(err, "update %s: map full (max_entries %u)",
				       seg_dpm_names[m], seg_dp_mapi(dp, m)->max_entries);
		return log_err(err, "update %s", seg_dpm_names[m]);
	}
	return 0;
}

static int map_lookup(struct seg_dp *dp, enum seg_dpm m, const void *k, void *v)
{
	if (bpf_map_lookup_elem(seg_dp_fd(dp, m), k, v))
		return errno == ENOENT ? -ENOENT : log_err(-errno, "lookup %s", seg_dpm_names[m]);
	return 0;
}

static int map_delete(struct seg_dp *dp, enum seg_dpm m, const void *k)
{
	if (bpf_map_delete_elem(seg_dp_fd(dp, m), k))
		return errno == ENOENT ? -ENOENT :
					 log_err(-errno, "delete from %s", seg_dpm_names[m]);
	return 0;
}

int seg_dp_config_get(struct seg_dp *dp, struct seg_config *cfg)
{
	__u32 k = 0;

	return map_lookup(dp, DPM_CONFIG, &k, cfg);
}

int seg_dp_config_set(struct seg_dp *dp, const struct seg_config *cfg)
{
	__u32 k = 0;

	return map_update(dp, DPM_CONFIG, &k, cfg);
}

int seg_dp_active_epoch(const struct seg_dp *dp)
{
	struct seg_config cfg;
	__u32 k = 0;

	if (bpf_map_lookup_elem(seg_dp_fd(dp, DPM_CONFIG), &k, &cfg))
		return 0;
	return cfg.epoch & 1;
}

int seg_dp_epoch_get(struct seg_dp *dp, __u32 *epoch, __u32 *generation)
{
	struct seg_config cfg;
	int err = seg_dp_config_get(dp, &cfg);

	if (err)
		return err;
	if (epoch)
		*epoch = cfg.epoch & 1;
	if (generation)
		*generation = cfg.generation;
	return 0;
}

int seg_dp_config_update(struct seg_dp *dp, seg_dp_config_fn fn, void *arg)
{
	struct seg_config cfg, old;
	int lock_fd = -1, err;

	if (dp->pin_dir) {
		lock_fd = seg_dp_pin_dir_lock(dp->pin_dir);
		if (lock_fd < 0)
			return lock_fd;
	}
	err = seg_dp_config_get(dp, &cfg);
	if (!err) {
		old = cfg;
		err = fn(&cfg, arg);
		if (!err && memcmp(&old, &cfg, sizeof(cfg)))
			err = seg_dp_config_set(dp, &cfg); /* one write */
	}
	if (lock_fd >= 0)
		close(lock_fd);
	return err;
}

static int cfg_flip(struct seg_config *cfg, void *arg)
{
	(void)arg;
	cfg->epoch = (cfg->epoch & 1) ^ 1;
	cfg->generation++;
	return 0;
}

int seg_dp_epoch_flip(struct seg_dp *dp)
{
	return seg_dp_config_update(dp, cfg_flip, NULL);
}

static int cfg_bump(struct seg_config *cfg, void *arg)
{
	(void)arg;
	cfg->generation++;
	return 0;
}

int seg_dp_generation_bump(struct seg_dp *dp)
{
	return seg_dp_config_update(dp, cfg_bump, NULL);
}

/* Writes to one epoch, or to both (SEG_EPOCH_BOTH). Deleting from both
 * is -ENOENT only if neither had the key. */
static int map_update_in(struct seg_dp *dp, enum seg_dpm m, __u32 epoch, const void *k,
			 const void *v)
{
	int err;

	if (epoch != SEG_EPOCH_BOTH)
		return map_update(dp, seg_dpm_epoch(m, epoch), k, v);
	err = map_update(dp, seg_dpm_epoch(m, 0), k, v);
	return err ?: map_update(dp, seg_dpm_epoch(m, 1), k, v);
}

static int map_delete_in(struct seg_dp *dp, enum seg_dpm m, __u32 epoch, const void *k)
{
	int e0, e1;

	if (epoch != SEG_EPOCH_BOTH)
		return map_delete(dp, seg_dpm_epoch(m, epoch), k);
	e0 = map_delete(dp, seg_dpm_epoch(m, 0), k);
	e1 = map_delete(dp, seg_dpm_epoch(m, 1), k);
	if (e0 && e0 != -ENOENT)
		return e0;
	if (e1 && e1 != -ENOENT)
		return e1;
	return e0 && e1 ? -ENOENT : 0;
}

static int map_lookup_active(struct seg_dp *dp, enum seg_dpm m, const void *k, void *v)
{
	return map_lookup(dp, seg_dpm_epoch(m, (__u32)seg_dp_active_epoch(dp)), k, v);
}

int seg_dp_endpoint_set_in(struct seg_dp *dp, __u32 epoch, __u32 ifkey,
			   const struct seg_endpoint *ep)
{
	struct seg_endpoint v = *ep;

	memset(v._pad, 0, sizeof(v._pad));
	return map_update_in(dp, DPM_ENDPOINTS, epoch, &ifkey, &v);
}

int seg_dp_endpoint_del_in(struct seg_dp *dp, __u32 epoch, __u32 ifkey)
{
	return map_delete_in(dp, DPM_ENDPOINTS, epoch, &ifkey);
}

int seg_dp_endpoint_set(struct seg_dp *dp, __u32 ifkey, const struct seg_endpoint *ep)
{
	return seg_dp_endpoint_set_in(dp, SEG_EPOCH_BOTH, ifkey, ep);
}

int seg_dp_endpoint_get(struct seg_dp *dp, __u32 ifkey, struct seg_endpoint *ep)
{
	return map_lookup_active(dp, DPM_ENDPOINTS, &ifkey, ep);
}

int seg_dp_endpoint_del(struct seg_dp *dp, __u32 ifkey)
{
	return seg_dp_endpoint_del_in(dp, SEG_EPOCH_BOTH, ifkey);
}

static void ipc_key(struct seg_ipcache_key *k, const struct in6_addr *a)
{
	memcpy(k->addr, a, sizeof(k->addr));
}

int seg_dp_ipcache_set_in(struct seg_dp *dp, __u32 epoch, const struct in6_addr *addr,
			  const struct seg_ipcache_val *v)
{
	struct seg_ipcache_key k;

	ipc_key(&k, addr);
	return map_update_in(dp, DPM_IPCACHE, epoch, &k, v);
}

int seg_dp_ipcache_del_in(struct seg_dp *dp, __u32 epoch, const struct in6_addr *addr)
{
	struct seg_ipcache_key k;

	ipc_key(&k, addr);
	return map_delete_in(dp, DPM_IPCACHE, epoch, &k);
}

int seg_dp_ipcache_set(struct seg_dp *dp, const struct in6_addr *addr,
		       const struct seg_ipcache_val *v)
{
	return seg_dp_ipcache_set_in(dp, SEG_EPOCH_BOTH, addr, v);
}

int seg_dp_ipcache_get(struct seg_dp *dp, const struct in6_addr *addr, struct seg_ipcache_val *v)
{
	struct seg_ipcache_key k;

	ipc_key(&k, addr);
	return map_lookup_active(dp, DPM_IPCACHE, &k, v);
}

int seg_dp_ipcache_del(struct seg_dp *dp, const struct in6_addr *addr)
{
	return seg_dp_ipcache_del_in(dp, SEG_EPOCH_BOTH, addr);
}

/* LPM key with the host bits beyond prefixlen cleared (the trie ignores
 * them, but a clean key makes entries compare equal when listed). */
static int lpm_key(struct seg_lpm_key *k, const struct in6_addr *a, __u32 prefixlen)
{
	__u8 *b = (__u8 *)k->addr;

	if (prefixlen > 128)
		return log_err(-EINVAL, "prefix length %u > 128", prefixlen);
	memset(k, 0, sizeof(*k));
	k->prefixlen = prefixlen;
	memcpy(k->addr, a, sizeof(k->addr));
	for (__u32 i = 0; i < 16; i++) {
		__u32 bits = prefixlen > i * 8 ? prefixlen - i * 8 : 0;

		if (bits < 8)
			b[i] &= (__u8)(0xff00 >> bits);
	}
	return 0;
}

int seg_dp_ipcache_lpm_set_in(struct seg_dp *dp, __u32 epoch, const struct in6_addr *addr,
			      __u32 prefixlen, const struct seg_ipcache_val *v)
{
	struct seg_lpm_key k;

	return lpm_key(&k, addr, prefixlen) ?: map_update_in(dp, DPM_IPCACHE_LPM, epoch, &k, v);
}

int seg_dp_ipcache_lpm_del_in(struct seg_dp *dp, __u32 epoch, const struct in6_addr *addr,
			      __u32 prefixlen)
{
	struct seg_lpm_key k;

	return lpm_key(&k, addr, prefixlen) ?: map_delete_in(dp, DPM_IPCACHE_LPM, epoch, &k);
}

int seg_dp_ipcache_lpm_set(struct seg_dp *dp, const struct in6_addr *addr, __u32 prefixlen,
			   const struct seg_ipcache_val *v)
{
	return seg_dp_ipcache_lpm_set_in(dp, SEG_EPOCH_BOTH, addr, prefixlen, v);
}

int seg_dp_ipcache_lpm_del(struct seg_dp *dp, const struct in6_addr *addr, __u32 prefixlen)
{
	return seg_dp_ipcache_lpm_del_in(dp, SEG_EPOCH_BOTH, addr, prefixlen);
}

static void pol_key_clean(struct seg_policy_key *dst, const struct seg_policy_key *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->policy_id = src->policy_id;
	dst->remote_id = src->remote_id;
	dst->port = src->port;
	dst->proto = src->proto;
	dst->dir = src->dir;
	dst->port_wild = src->port_wild;
}

int seg_dp_policy_set(struct seg_dp *dp, const struct seg_policy_key *k,
		      const struct seg_policy_val *v)
{
	struct seg_policy_key ck;
	struct seg_policy_val cv = *v;

	pol_key_clean(&ck, k);
	memset(cv._pad, 0, sizeof(cv._pad));
	return map_update(dp, DPM_POLICY, &ck, &cv);
}

int seg_dp_policy_get(struct seg_dp *dp, const struct seg_policy_key *k, struct seg_policy_val *v)
{
	struct seg_policy_key ck;

	pol_key_clean(&ck, k);
	return map_lookup(dp, DPM_POLICY, &ck, v);
}

int seg_dp_policy_del(struct seg_dp *dp, const struct seg_policy_key *k)
{
	struct seg_policy_key ck;

	pol_key_clean(&ck, k);
	return map_delete(dp, DPM_POLICY, &ck);
}

/* Blocks of [lo, hi] as policy keys; proto 0 = any protocol (full range only). */
static int range_keys(__u32 policy_id, __u32 remote_id, __u8 proto, __u8 dir, __u16 lo, __u16 hi,
		      struct seg_policy_key *keys, int *n)
{
	struct seg_port_block b[SEG_PORT_BLOCKS_MAX];
	int cnt;

	if (dir >= SEG_DIR_MAX)
		return log_err(-EINVAL, "bad direction %u", dir);
	if (!proto) {
		if (lo != 0 || hi != 65535)
			return log_err(-EINVAL, "any-protocol rule with ports %u-%u", lo, hi);
		b[0] = (struct seg_port_block){ .port = 0, .wild = 16 };
		cnt = 1;
	} else {
		cnt = seg_port_range_blocks(lo, hi, b, SEG_PORT_BLOCKS_MAX);
		if (cnt < 0)
			return log_err(cnt, "port range %u-%u", lo, hi);
	}
	for (int i = 0; i < cnt; i++) {
		memset(&keys[i], 0, sizeof(keys[i]));
		keys[i] = (struct seg_policy_key){ .policy_id = policy_id,
						   .remote_id = remote_id,
						   .port = b[i].port,
						   .proto = proto,
						   .dir = dir,
						   .port_wild = b[i].wild };
	}
	*n = cnt;
	return 0;
}

int seg_dp_policy_set_range(struct seg_dp *dp, __u32 policy_id, __u32 remote_id, __u8 proto,
			    __u8 dir, __u16 lo, __u16 hi, const struct seg_policy_val *v)
{
	struct seg_policy_key keys[SEG_PORT_BLOCKS_MAX];
	__u32 mask = 0;
	int n, err;

	err = range_keys(policy_id, remote_id, proto, dir, lo, hi, keys, &n);
	if (err)
		return err;
	for (int i = 0; i < n; i++) {
		err = seg_dp_policy_set(dp, &keys[i], v);
		if (err) {
			/* All or nothing: drop the blocks already written. */
			while (i--)
				seg_dp_policy_del(dp, &keys[i]);
			return err;
		}
		mask |= proto ? 1u << keys[i].port_wild : SEG_PMASK_ANYPROTO;
	}
	return (int)mask;
}

int seg_dp_policy_del_range(struct seg_dp *dp, __u32 policy_id, __u32 remote_id, __u8 proto,
			    __u8 dir, __u16 lo, __u16 hi)
{
	struct seg_policy_key keys[SEG_PORT_BLOCKS_MAX];
	int n, err, first = 0;

	err = range_keys(policy_id, remote_id, proto, dir, lo, hi, keys, &n);
	if (err)
		return err;
	/* Delete every block; report the first real error, ignore absent ones. */
	for (int i = 0; i < n; i++) {
		err = seg_dp_policy_del(dp, &keys[i]);
		if (err && err != -ENOENT && !first)
			first = err;
	}
	return first;
}

/* ---- per-CPU sums -------------------------------------------------------- */

/* Looks up a per-CPU value and adds each CPU's __u64 fields into sum
 * (nfields __u64 each). */
static int percpu_sum(struct seg_dp *dp, enum seg_dpm m, const void *key, __u64 *sum,
		      size_t nfields)
{
	const struct seg_dp_map *mi = seg_dp_mapi(dp, m);
	size_t stride = ((size_t)mi->value_size + 7) / 8 * 8;
	__u64 *buf;
	int err;

	if (nfields * 8 > mi->value_size)
		return log_err(-EINVAL, "%s: value is %u bytes", mi->name, mi->value_size);
	buf = calloc(dp->ncpus, stride);
	if (!buf)
		return log_err(-ENOMEM, "per-CPU buffer for %s", mi->name);
	memset(sum, 0, nfields * sizeof(*sum));
	err = map_lookup(dp, m, key, buf);
	if (!err)
		for (int c = 0; c < dp->ncpus; c++)
			for (size_t f = 0; f < nfields; f++)
				sum[f] += buf[c * stride / 8 + f];
	free(buf);
	return err;
}

int seg_dp_reason_get(struct seg_dp *dp, __u32 reason, struct seg_counter *c)
{
	__u64 s[2] = { 0 };
	int err = percpu_sum(dp, DPM_REASONS, &reason, s, 2);

	if (!err)
		*c = (struct seg_counter){ .packets = s[0], .bytes = s[1] };
	return err;
}

int seg_dp_rule_get(struct seg_dp *dp, __u32 rule_id, struct seg_rule_counter *c)
{
	const struct seg_dp_map *mi = seg_dp_mapi(dp, DPM_RULES);
	size_t stride = ((size_t)mi->value_size + 7) / 8 * 8;
	struct seg_rule_counter *buf;
	int err;

	/* last_hit_ns is the latest over CPUs, not a sum. */
	if (mi->value_size != sizeof(*buf))
		return log_err(-EINVAL, "%s: value is %u bytes", mi->name, mi->value_size);
	buf = calloc(dp->ncpus, stride);
	if (!buf)
		return log_err(-ENOMEM, "per-CPU buffer for %s", mi->name);
	memset(c, 0, sizeof(*c));
	err = map_lookup(dp, DPM_RULES, &rule_id, buf);
	for (int i = 0; !err && i < dp->ncpus; i++) {
		c->packets += buf[i].packets;
		c->bytes += buf[i].bytes;
		if (buf[i].last_hit_ns > c->last_hit_ns)
			c->last_hit_ns = buf[i].last_hit_ns;
	}
	free(buf);
	return err;
}

int seg_dp_evt_rl_get(struct seg_dp *dp, __u32 ifkey, struct seg_evt_rl *sum)
{
	const struct seg_dp_map *mi = seg_dp_mapi(dp, DPM_EVT_RL);
	struct seg_evt_rl *buf;
	int err;

	/* suppressed counts are summed; last_ns is the latest; tokens summed. */
	if (mi->value_size != sizeof(*buf))
		return log_err(-EINVAL, "%s: value is %u bytes", mi->name, mi->value_size);
	buf = calloc(dp->ncpus, sizeof(*buf));
	if (!buf)
		return log_err(-ENOMEM, "per-CPU buffer for %s", mi->name);
	memset(sum, 0, sizeof(*sum));
	err = map_lookup(dp, DPM_EVT_RL, &ifkey, buf);
	for (int i = 0; !err && i < dp->ncpus; i++) {
		if (buf[i].last_ns > sum->last_ns)
			sum->last_ns = buf[i].last_ns;
		sum->tokens_milli += buf[i].tokens_milli;
		sum->suppressed += buf[i].suppressed;
		sum->suppressed_total += buf[i].suppressed_total;
	}
	free(buf);
	return err;
}

/* ---- conntrack single entries ---------------------------------------------- */

static void ct_key_clean(struct seg_ct_key *dst, const struct seg_ct_key *src)
{
	memset(dst, 0, sizeof(*dst));
	memcpy(dst->laddr, src->laddr, sizeof(dst->laddr));
	memcpy(dst->raddr, src->raddr, sizeof(dst->raddr));
	dst->lport = src->lport;
	dst->rport = src->rport;
	dst->proto = src->proto;
}

int seg_dp_ct_lookup(struct seg_dp *dp, const struct seg_ct_key *k, struct seg_ct_entry *e)
{
	struct seg_ct_key ck;

	ct_key_clean(&ck, k);
	return map_lookup(dp, DPM_CT, &ck, e);
}

int seg_dp_ct_del(struct seg_dp *dp, const struct seg_ct_key *k)
{
	struct seg_ct_key ck;

	ct_key_clean(&ck, k);
	return map_delete(dp, DPM_CT, &ck);
}
