/* SPDX-License-Identifier: GPL-2.0-only */
/* lib/policy internals: the compiler's private state, shared by its stages. */
#ifndef SEG_POLICY_COMPILED_H
#define SEG_POLICY_COMPILED_H

#include "internal.h"
#include "util.h"

struct seg_id_alloc {
	struct hmap by_key; /* key text -> id */
	__u32 next;
};

/* One prefix of the nested set formed by every ipBlock cidr and except. */
struct cpfx {
	struct in6_addr a;
	__u32 plen;
	size_t *set; /* blocks matching addresses whose longest prefix is this */
	size_t nset;
	__u32 id; /* identity of set, or SEG_ID_WORLD when empty */
};

struct cpriv {
	/* namespaces: declared ones and implicit ones for undeclared names */
	struct seg_namespace *implicit;
	size_t nimplicit;
	struct hmap ns_by_name; /* -> const struct seg_namespace * */
	/* ipBlocks */
	struct hmap block_by_key; /* canonical text -> index in c->blocks */
	struct hmap block_by_peer; /* struct seg_peer * -> index */
	struct cpfx *pfx;
	size_t npfx;
	/* (name, proto) of named ports used by egress rules */
	char **enames;
	__u8 *eprotos;
	size_t nenames;
	/* identities */
	struct hmap id_by_key; /* key -> index in c->ids */
	struct hmap id_by_num; /* __u32 -> index in c->ids */
	const struct seg_pod **id_pod; /* representative pod per identity */
	size_t cap_ids;
	size_t *pod_id; /* per pod: index in c->ids of its endpoint identity */
	/* lookups */
	struct hmap ipc_by_addr;
	struct hmap pol_by_key;
	struct hmap ep_by_pod; /* pod index -> ep index */
	/* per peer of every rule: matching identity numbers */
	struct hmap peer_ids; /* struct seg_peer * -> index in peer_lists */
	struct idlist {
		__u32 *v;
		size_t n;
	} * peer_lists;
	size_t npeer_lists;
};

static inline struct cpriv *cpriv(const struct seg_compiled *c)
{
	return c->priv;
}

__attribute__((format(printf, 2, 3))) int cdiag(struct seg_diag *d, const char *fmt, ...);

int ident_build(struct seg_compiled *c, const struct seg_compile_opts *o, struct seg_diag *d);
const struct seg_namespace *ident_ns(const struct seg_compiled *c, const char *name);
const struct seg_pod *ident_pod(const struct seg_compiled *c, size_t id_idx);
void ident_free(struct seg_compiled *c);

#endif
