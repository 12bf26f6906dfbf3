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
 * refs: an update that changes no policy shares the rule numbering.
 */
struct seg_id_alloc {
	struct hmap by_key; /* key text -> number */
	struct hmap by_num; /* number -> 1 */
	__u32 first, cursor;
	int refs;
};

struct seg_numbering {
	struct seg_id_alloc *ids, *policies, *rules;
};

struct seg_id_alloc *alloc_new(__u32 first);
struct seg_id_alloc *alloc_clone(const struct seg_id_alloc *a);
void alloc_free(struct seg_id_alloc *a); /* drops one reference */
/* prev may be NULL. 0 or -ENOMEM. */
int alloc_get(struct seg_id_alloc *a, const struct seg_id_alloc *prev, const char *key, __u32 *num);
void alloc_drop(struct seg_id_alloc *a, const char *key);
void alloc_drop_num(struct seg_id_alloc *a, __u32 num);

/* One prefix of the nested set formed by every ipBlock cidr and except. */
struct cpfx {
	struct in6_addr a;
	__u32 plen;
	size_t *set; /* blocks matching addresses whose longest prefix is this */
	size_t nset;
	__u32 id; /* identity of set, or SEG_ID_WORLD when empty */
};

/* A peer of a rule, by position: m->pols[pol].rules[dir][rule].peers[peer]. */
struct cslot {
	size_t pol;
	__u8 dir;
	__u32 rule, peer;
	size_t group; /* its identity list */
};

/* Peers that select the same way share one identity list (a group). */
struct cgroup {
	size_t slot; /* its first peer */
	size_t block; /* ipBlock groups: the block; else SIZE_MAX */
};

struct sizelist {
	size_t *v;
	size_t n, cap;
};

/*
 * What depends only on the policies, the namespaces and the options:
 * built by a full compile, shared (refcounted, read-only) by the updates
 * that change pods only. Positions, not pointers, where the manifests are
 * concerned, so an update may use another manifests object with equal
 * policies and namespaces.
 */
struct cstatic {
	int refs;
	bool audit_default;
	struct seg_caps caps;
	/* namespaces made up for undeclared names */
	struct seg_namespace *implicit;
	size_t nimplicit;
	/* ipBlocks: c->blocks[b] is the block of slot block_slot[b] */
	size_t *block_slot;
	char **block_keys; /* canonical texts (cidr/plen!except...), ascending */
	size_t nblocks;
	size_t *block_group; /* per block: its group */
	struct cpfx *pfx; /* sorted by plen descending; c->lpm[i] is pfx[i] */
	size_t npfx;
	struct hmap pfx_by_key; /* {plen, masked addr} -> index in pfx */
	__u32 *lens; /* prefix lengths in use, descending */
	size_t nlens;
	struct seg_lpm_entry *lpm;
	/* (name, proto) of named ports used by egress rules */
	char **enames;
	__u8 *eprotos;
	size_t nenames;
	/* peers and their groups */
	size_t *pol_slot; /* per policy: its first slot (npols + 1) */
	struct cslot *slots;
	size_t nslots;
	struct cgroup *groups;
	size_t ngroups;
	struct hmap group_by_key; /* peer key (selector text, namespace, block) -> group */
	/* groups a new pod identity may join: the pod selector groups of its
	 * namespace, and every namespace selector group */
	struct hmap ns_groups; /* namespace name -> index in nsg */
	struct sizelist *nsg;
	size_t nnsg;
	struct sizelist wide;
	/* per group: the policies with a peer in it (ascending); and the
	 * policies with an egress rule to a named port and no peers (they name
	 * every pod identity): where a new identity can gain entries */
	struct sizelist *group_pols;
	struct sizelist any_pols;
	/* policies by namespace (an endpoint looks only at its namespace's) */
	struct hmap ns_pols; /* namespace name -> index in byns */
	struct sizelist *byns;
	size_t nbyns;
	/* rule table (c->rules) */
	struct seg_rule_info *rules;
	size_t nrules;
	struct hmap rule_by_id;
	__u32 rules_used; /* max rule id + 1 */
};

struct idlist {
	__u32 *v;
	size_t n, cap;
};

/* A policy set: the endpoints (pod, direction) with the same selecting
 * policies (and ports, where ingress named ports resolve on the pod). */
struct cset {
	__u32 id;
	__u8 dir;
	size_t *sel; /* indexes into m->pols, ascending */
	size_t nsel;
	char *sig; /* its signature (set_select), which numbered it */
	size_t rep; /* a pod of the set: ingress named ports resolve on it */
	size_t users; /* endpoints */
	__u32 wcnt[18]; /* entries per port block width 0..16; [17] any protocol */
	bool fresh; /* not in the compile this one was updated from */
	/* a full compile: its entries' run in c->pol before the sort, and
	 * whether the run is sorted (copied from reuse) */
	size_t pstart, pn;
	bool psorted;
};

struct cpriv {
	struct cstatic *st;
	struct hmap ns_by_name; /* -> const struct seg_namespace * */
	/* identities */
	struct hmap id_by_num; /* __u32 -> index in c->ids */
	size_t *id_rep; /* representative pod per identity; SIZE_MAX: CIDR */
	size_t *id_users; /* pods whose endpoint or an address has it */
	size_t cap_ids;
	size_t *pod_id; /* per pod: index in c->ids of its endpoint identity */
	/* lookups */
	/* c->ipc is sorted by address (bsearch), except while being built:
	 * then ipc_by_addr (a full compile) or the sorted prefix of ipc_sorted
	 * entries plus the ones after it (an update) answer */
	struct hmap ipc_by_addr;
	size_t cap_ipc, ipc_sorted;
	bool ipc_hashed;
	/* per group: the identity numbers it matches */
	struct idlist *lists;
	/* policy sets */
	struct cset *sets;
	size_t nsets, cap_sets;
	struct hmap set_by_id; /* policy id -> index in sets */
	/* manifests sizes when compiled (an update of the same object in place
	 * must not have added or removed objects) */
	size_t npods, npols, nnss;
	bool updated; /* made by seg_compile_update() without a full compile */
	bool ids_reused; /* a full compile that took its pod identities from o->reuse */
	/* While such a compile builds its endpoints: per policy (index in
	 * m->pols), whether o->reuse has it unchanged (pol_eq); a set of only
	 * such policies copies reuse's entries (set_use). NULL otherwise. */
	const struct seg_compiled *reuse;
	unsigned char *pol_same;
	size_t *prev_pol; /* per policy: reuse's index of it, SIZE_MAX: none */
	size_t *prev_ep; /* per pod: index in reuse->eps, SIZE_MAX: none */
	/* per st->byns bucket: reuse's bucket of that namespace holds the same
	 * policies in the same order, each with the same pod selector, types
	 * and ingress named ports (pol_sel_eq: their rules may differ), so a
	 * pod there (unchanged: the identities were reused) is selected by
	 * what selected it in reuse, under the same signature (set_select,
	 * set_kept) */
	unsigned char *ns_same;
	size_t sets_copied; /* sets whose entries came from reuse */
	bool rules_taken; /* the rule table and numbering are reuse's (rules_take) */
	/* seg_compile_update(): what changed since the base compile */
	unsigned long long serial, base;
	struct seg_pol_entry *d_add;
	size_t nd_add;
	struct seg_policy_key *d_del;
	size_t nd_del;
	__u32 *d_fresh;
	size_t nd_fresh;
	__u32 *d_new, *d_dead; /* identity numbers */
	size_t nd_new, nd_dead;
};

static inline struct cpriv *cpriv(const struct seg_compiled *c)
{
	return c->priv;
}

static inline const struct seg_peer *slot_peer(const struct seg_manifests *m, const struct cslot *s)
{
	return &m->pols[s->pol].rules[s->dir][s->rule].peers[s->peer];
}

__attribute__((format(printf, 2, 3))) int cdiag(struct seg_diag *d, const char *fmt, ...);

int ident_build(struct seg_compiled *c, const struct seg_compile_opts *o, struct seg_diag *d);
/* incr.c: equal as far as identities, ipcache entries and endpoints go */
bool ns_eq(const struct seg_namespace *a, const struct seg_namespace *b);
bool pod_eq(const struct seg_pod *a, const struct seg_pod *b);
bool pol_eq(const struct seg_netpol *a, const struct seg_netpol *b);
bool pol_sel_eq(const struct seg_netpol *a, const struct seg_netpol *b);
const struct seg_namespace *ident_ns(const struct seg_compiled *c, const char *name);
const struct seg_pod *ident_pod(const struct seg_compiled *c, size_t id_idx);
/* Longest ipBlock prefix containing a (the LPM's answer), or NULL. */
const struct cpfx *ident_pfx_lookup(const struct seg_compiled *c, const struct in6_addr *a);
void ident_free(struct seg_compiled *c);
void cstatic_put(struct cstatic *st);
/* The entry of address a, or NULL. */
const struct seg_ipc_entry *ipc_find(const struct seg_compiled *c, const struct in6_addr *a);
/* Sorts the entries added since ipc_sorted into place; drops the hash. */
int ipc_finish(struct seg_compiled *c);
int ns_index(struct seg_compiled *c);

/* Identity of a pod (and of one address of it): key text, the ipBlock
 * set of the address (NULL/0: the labels-only one). Caller frees. */
char *ident_pod_key(const struct seg_compiled *c, const struct seg_pod *pod, const size_t *set,
		    size_t nset);
/* Finds or adds the identity for key (taken over); *idx its index. */
int ident_get(struct seg_compiled *c, const struct seg_id_alloc *prev, char *key,
	      const struct seg_namespace *ns, size_t pod, const size_t *set, size_t nset,
	      size_t *idx, bool *added);

/* A pod's identities and ipcache entries; the indexes of identities it
 * created are appended to *added (when added is not NULL). */
int ident_add_pod(struct seg_compiled *c, const struct seg_id_alloc *prev, size_t i,
		  struct seg_diag *d, size_t **added, size_t *nadded, size_t *cap_added);

/* compile.c, for the update */
bool group_matches(const struct seg_compiled *c, size_t g, const struct seg_identity *id);
/* dst (empty) = a copy of src, room for nothing more. 0 or -ENOMEM. */
int idlist_copy(struct idlist *dst, const struct idlist *src);
int set_emit_full(struct seg_compiled *c, struct cset *s, struct seg_pol_entry **out, size_t *n,
		  size_t *cap);
/* The entries of identity id_idx in set s, from its policies pols
 * (ascending, a subset of s->sel: the others give it none). */
int set_emit_ident(struct seg_compiled *c, struct cset *s, size_t id_idx, const unsigned char *gm,
		   const size_t *pols, size_t npols, struct seg_pol_entry **out, size_t *n,
		   size_t *cap);
__u32 set_mask(const struct cset *s);
int set_select(struct seg_compiled *c, size_t pod, __u8 dir, size_t *sel, size_t *nsel, char **sig);
int pol_cmp(const void *a, const void *b);
bool is_audit(const struct seg_compiled *c, const char *ns);
int check_caps(struct seg_compiled *c, struct seg_diag *d);
void cpriv_free(struct seg_compiled *c);
unsigned long long compile_serial(void);
int set_use(struct seg_compiled *c, const struct seg_id_alloc *prev, size_t pi, __u8 dir,
	    const size_t *sel, size_t nsel, char *sig, struct seg_pol_entry **out, size_t *n,
	    size_t *cap, struct cset **res);
int endpoint_fill(struct seg_compiled *c, const struct seg_id_alloc *prev, size_t pi,
		  struct seg_ep_entry *ep, struct seg_pol_entry **out, size_t *n, size_t *cap);
void endpoint_masks(struct seg_compiled *c);
const struct seg_pol_entry *seg_compiled_pol(const struct seg_compiled *c,
					     const struct seg_policy_key *k);

#endif
