/* SPDX-License-Identifier: GPL-2.0-only */
/* lib/policy internals: the compiler's private state, shared by its stages. */
#ifndef SEG_POLICY_COMPILED_H
#define SEG_POLICY_COMPILED_H

#include "internal.h"
#include "util.h"

/*
 * Numbers for keys, kept across compiles: a key seen last time keeps its
 * number; a new key takes the lowest number no previous key holds, so
 * numbers freed by one compile are reused by the next and stay dense.
 */
struct seg_id_alloc {
	struct hmap by_key; /* key text -> number */
	struct hmap by_num; /* number -> 1 */
	__u32 first, cursor;
};

struct seg_numbering {
	struct seg_id_alloc *ids, *policies, *rules;
};

struct seg_id_alloc *alloc_new(__u32 first);
void alloc_free(struct seg_id_alloc *a);
/* prev may be NULL. 0 or -ENOMEM. */
int alloc_get(struct seg_id_alloc *a, const struct seg_id_alloc *prev, const char *key, __u32 *num);

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
	struct cpfx *pfx; /* sorted by plen descending; c->lpm[i] is pfx[i] */
	size_t npfx;
	struct hmap pfx_by_key; /* {plen, masked addr} -> index in pfx */
	__u32 *lens; /* prefix lengths in use, descending */
	size_t nlens;
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
	struct hmap rule_by_id; /* rule id -> index in c->rules */
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
/* Longest ipBlock prefix containing a (the LPM's answer), or NULL. */
const struct cpfx *ident_pfx_lookup(const struct seg_compiled *c, const struct in6_addr *a);
void ident_free(struct seg_compiled *c);

#endif
