/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * lib/policy: Kubernetes manifests -> compiled data path state.
 *
 * Two halves with a clean cut between them:
 *
 *  1. Manifests (manifest.c, parse.c): Namespaces, Pods and NetworkPolicies
 *     read with libfyaml from YAML / JSON / `kind: List` files, validated the
 *     way the API server validates them. Every error names
 *     file:line:column and the field path.
 *
 *  2. The compiler (ident.c, compile.c) and the evaluator (eval.c): pure,
 *     no I/O, no globals. Parsed objects in, compiled state out: identities,
 *     ipcache (exact + LPM), endpoints, policy entries and a rule table, all
 *     in the ABI of include/seg/abi.h.
 *
 *   struct seg_manifests *m = seg_manifests_new();
 *   struct seg_diag d = {};
 *   if (seg_manifests_load_path(m, "dir/", &d))   // all files, or nothing
 *           log_error("%s", d.msg);
 *   struct seg_compiled *c;
 *   seg_compile(m, &opts, &c, &d);                 // -E2BIG: capacity report in d
 *   seg_eval_pods(c, src_pod, dst_pod, 80, IPPROTO_TCP, &verdict);
 *
 * Library functions do not log: they return 0 or -errno and describe the
 * failure in struct seg_diag; the caller prints it once.
 */
#ifndef SEG_POLICY_H
#define SEG_POLICY_H

#include <seg/abi.h>
#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>

struct seg_diag {
	char msg[512];
};

/* ---- parsed objects ------------------------------------------------------ */

struct seg_src_loc {
	const char *file; /* owned by the manifests (interned) */
	int line, col; /* 1-based */
};

struct seg_label {
	char *key;
	char *val;
};

/* Sorted by key, keys unique. */
struct seg_labels {
	struct seg_label *v;
	size_t n;
};

enum seg_sel_op { SEG_SEL_IN, SEG_SEL_NOT_IN, SEG_SEL_EXISTS, SEG_SEL_NOT_EXISTS };

struct seg_sel_expr {
	char *key;
	enum seg_sel_op op;
	char **values;
	size_t nvalues;
};

/* metav1.LabelSelector: all of match and exprs must hold; empty = all. */
struct seg_selector {
	struct seg_labels match;
	struct seg_sel_expr *exprs;
	size_t nexprs;
};

struct seg_namespace {
	char *name;
	struct seg_labels labels; /* includes kubernetes.io/metadata.name */
	int enforcement; /* SEG_ENF_* from the seg.io/enforcement annotation */
	bool implicit; /* not declared; made up for a pod's namespace */
	struct seg_src_loc loc;
};

#define SEG_ENF_DEFAULT 0 /* no annotation: the global default applies */
#define SEG_ENF_ENFORCE 1
#define SEG_ENF_AUDIT 2
#define SEG_ANNOT_ENFORCEMENT "seg.io/enforcement"
#define SEG_LABEL_NS_NAME "kubernetes.io/metadata.name"

struct seg_cport {
	char *name; /* NULL when unnamed */
	__u16 port;
	__u8 proto; /* IPPROTO_TCP/UDP/SCTP */
};

#define SEG_POD_MAX_ADDRS 4

struct seg_pod {
	char *ns;
	char *name;
	struct seg_labels labels;
	struct in6_addr addrs[SEG_POD_MAX_ADDRS]; /* v4-mapped for IPv4 */
	size_t naddrs;
	struct seg_cport *ports;
	size_t nports;
	struct seg_src_loc loc;
};

struct seg_ipblock {
	struct in6_addr cidr; /* host bits cleared */
	__u32 plen; /* v6 form: IPv4 /n = 96 + n */
	struct in6_addr *except;
	__u32 *except_plen;
	size_t nexcept;
	/* canonical text, "cidr" then "!except" sorted: the parser fills it
	 * (NULL: the compiler makes it when needed) */
	char *key;
};

enum seg_peer_kind { SEG_PEER_PODS, SEG_PEER_NAMESPACES, SEG_PEER_NS_PODS, SEG_PEER_IPBLOCK };

struct seg_peer {
	enum seg_peer_kind kind;
	struct seg_selector pod_sel; /* PODS, NS_PODS */
	struct seg_selector ns_sel; /* NAMESPACES, NS_PODS */
	struct seg_ipblock block; /* IPBLOCK */
};

struct seg_port {
	__u8 proto; /* default TCP */
	bool has_port; /* false: every port of proto */
	char *name; /* named port (then end_port == port == 0) */
	__u16 port;
	__u16 end_port; /* == port unless endPort given */
};

struct seg_rule {
	struct seg_peer *peers;
	size_t npeers; /* 0: from/to missing or empty = every peer */
	struct seg_port *ports;
	size_t nports; /* 0: ports missing or empty = every port and protocol */
};

struct seg_netpol {
	char *ns;
	char *name;
	struct seg_selector pod_sel;
	bool types[SEG_DIR_MAX]; /* policyTypes, given or inferred */
	struct seg_rule *rules[SEG_DIR_MAX];
	size_t nrules[SEG_DIR_MAX];
	bool ingress_names; /* set by the load: an ingress rule names a port */
	bool has_blocks; /* set by the load: a peer is an ipBlock */
	struct seg_src_loc loc;
};

struct seg_manifests {
	struct seg_namespace *nss;
	size_t nnss;
	struct seg_pod *pods;
	size_t npods;
	struct seg_netpol *pols;
	size_t npols;
	/* private: interned file names, capacities */
	char **files;
	size_t nfiles;
	size_t cap_nss, cap_pods, cap_pols;
	/* private: a merged object (seg_manifests_append) shares the objects
	 * and file names of its parts, holds a reference on each and indexes
	 * its objects by name */
	struct seg_manifests **parts;
	size_t nparts, cap_parts, cap_files;
	struct seg_name_index *index;
	unsigned int refs; /* references beyond the first */
	bool merged;
};

struct seg_manifests *seg_manifests_new(void);
/* NULL-safe; drops a reference (seg_manifests_ref), the last one frees. */
void seg_manifests_free(struct seg_manifests *m);
struct seg_manifests *seg_manifests_ref(struct seg_manifests *m);

/*
 * Manifests put together from parts: objects loaded one source at a time,
 * each into its own object (limits.h: seg_manifests_load_*_part), so that
 * a caller keeping them (segd) parses again only the sources that changed.
 *
 *   struct seg_manifests *all = seg_manifests_new();
 *   seg_manifests_append(all, dir_parts, n, &d);     // as one load of all n
 *   seg_manifests_append(all, &doc_part, 1, &d);     // as a load after it
 *
 * all then holds what loading the parts' sources into one object in the
 * same order (and batches) gives: each kind's objects and the file names
 * in order, and the same duplicate check: the first object of the batch
 * (its namespaces, then pods, then policies) named like an earlier one is
 * refused, -EINVAL with file:line:col in d, and all is left as it was.
 * The objects are shared, not copied: all takes a reference on each part,
 * and a part must not change afterwards. all's arrays are its own (setting
 * a pod's addresses in all leaves the part's alone), seg_manifests_ns()
 * and seg_manifests_pod() are hash lookups on it, and it takes no loads
 * (seg_manifests_load_*) of its own: -EINVAL if m holds objects of its own.
 */
int seg_manifests_append(struct seg_manifests *all, struct seg_manifests *const *parts,
			 size_t nparts, struct seg_diag *d);

/*
 * Loads a file, or every .yaml, .yml and .json file of a directory (sorted by
 * name, not recursive). Atomic: on error m is left exactly as it was.
 * Duplicate objects (same kind, namespace, name) are errors, also across
 * calls. Objects of other kinds are ignored.
 */
int seg_manifests_load_path(struct seg_manifests *m, const char *path, struct seg_diag *d);
/* Same for a buffer; name is used in messages (and as "file"). */
int seg_manifests_load_buf(struct seg_manifests *m, const char *name, const char *buf, size_t len,
			   struct seg_diag *d);
/* The directory entries a load reads: .yaml, .yml and .json, not hidden. */
bool seg_manifest_file_name(const char *name);

const struct seg_namespace *seg_manifests_ns(const struct seg_manifests *m, const char *name);
const struct seg_pod *seg_manifests_pod(const struct seg_manifests *m, const char *ns,
					const char *name);

/* Label selector semantics (exposed for tests and tools). */
bool seg_selector_empty(const struct seg_selector *s);
bool seg_selector_matches(const struct seg_selector *s, const struct seg_labels *l);
const char *seg_labels_get(const struct seg_labels *l, const char *key);
/* Named container port of a pod for a protocol; 0 when absent. */
__u16 seg_pod_named_port(const struct seg_pod *p, const char *name, __u8 proto);

/* "TCP" -> IPPROTO_TCP; -EINVAL for others. And back. */
int seg_proto_parse(const char *s);
const char *seg_proto_str(__u8 proto);

/* ---- numbering carried from one compile to the next ------------------------
 * Identities, policy ids and rule ids keep their numbers while what they
 * stand for is unchanged (label set; set of selecting policies; policy
 * ns/name + direction + rule + peer), so a recompile after a small change
 * yields a small seg_compiled_diff(). Owned by the seg_compiled.
 */
struct seg_numbering;

/* ---- compiled state -------------------------------------------------------- */

struct seg_caps {
	/* 0 = the default from abi.h */
	__u32 endpoints, ipcache, ipcache_lpm, policy, rules;
};

struct seg_compile_opts {
	bool audit_default; /* namespaces without the annotation are audited */
	/* Which pods get an endpoint (pods on this node). NULL: every pod. */
	bool (*is_local)(const struct seg_pod *pod, void *ctx);
	void *ctx;
	/* The previous compile's numbering (prev->numbering). NULL: fresh.
	 * Not modified. */
	const struct seg_numbering *prev;
	/* A compile of the same pods and namespaces (its manifests object
	 * alive, another one than the one compiled now): when the policies
	 * put the same things into identity keys (egress named ports,
	 * ipBlocks), its pod identities and ipcache entries are taken instead
	 * of built pod by pod. NULL: built. seg_compile_update() sets it on
	 * its full path. Not modified. */
	const struct seg_compiled *reuse;
	struct seg_caps caps;
};

/* What an identity stands for. */
struct seg_identity {
	__u32 id;
	char *key; /* canonical text, e.g. "ns=x;ls=app=a;b=<blocks>" */
	const struct seg_namespace *ns; /* NULL for CIDR identities */
	const struct seg_labels *labels; /* pod labels, NULL for CIDR ones */
	size_t *blocks; /* indexes into seg_compiled.blocks it is inside of */
	size_t nblocks;
};

struct seg_ipc_entry {
	struct in6_addr addr;
	struct seg_ipcache_val val; /* owner_ifkey 0: the caller fills it */
	size_t pod; /* index in manifests->pods */
};

struct seg_lpm_entry {
	struct seg_lpm_key key; /* addr in network order, v4-mapped */
	struct seg_ipcache_val val;
};

struct seg_ep_entry {
	size_t pod; /* index in manifests->pods */
	struct seg_endpoint ep; /* ep_id and revision: the caller's (0 here) */
	/* indexes into manifests->pols selecting it, per direction */
	size_t *sel[SEG_DIR_MAX];
	size_t nsel[SEG_DIR_MAX];
};

struct seg_pol_entry {
	struct seg_policy_key key;
	struct seg_policy_val val;
};

struct seg_rule_info {
	__u32 rule_id;
	size_t pol; /* index in manifests->pols */
	__u8 dir;
	int rule; /* index in the policy's ingress/egress list */
	int peer; /* index in from/to; -1: every peer */
};

struct seg_cap_report {
	size_t used[5], cap[5]; /* endpoints, ipcache, ipcache_lpm, policy, rules */
};

struct seg_compiled {
	const struct seg_manifests *m; /* borrowed: must outlive this */
	struct seg_identity *ids;
	size_t nids;
	struct seg_ipblock **blocks; /* distinct ipBlocks (borrowed) */
	size_t nblocks;
	struct seg_ipc_entry *ipc;
	size_t nipc;
	struct seg_lpm_entry *lpm; /* sorted by prefixlen descending */
	size_t nlpm;
	struct seg_ep_entry *eps;
	size_t neps;
	struct seg_pol_entry *pol; /* sorted by key */
	size_t npol;
	struct seg_rule_info *rules; /* ordered by (pol, dir, rule, peer) */
	size_t nrules;
	struct seg_cap_report caps;
	struct seg_numbering *numbering; /* pass as opts.prev next time */
	void *priv; /* lookup indexes */
};

/*
 * Compiles everything. -E2BIG when a map would overflow (d names the map,
 * the need and the capacity; *out is still set so callers can print the
 * report), -EINVAL/-ENOMEM otherwise.
 */
int seg_compile(const struct seg_manifests *m, const struct seg_compile_opts *o,
		struct seg_compiled **out, struct seg_diag *d);
void seg_compiled_free(struct seg_compiled *c); /* NULL-safe */

/*
 * Incremental compile: the state seg_compile(m, o with prev's numbering)
 * would give (up to the numbers of new identities and policy sets), from
 * prev and what changed, with work that scales with the change.
 *
 * Handled incrementally: pods changed (labels, addresses, ports), added
 * and deleted, with namespaces, policies and options as prev had them.
 * Anything else (a namespace or a policy added, deleted or changed, other
 * options, a pod in a namespace nobody declared before) is a full
 * compile; seg_compiled_updated() tells which one ran.
 *
 * m is either a new manifests object (prev->m must still be alive; the
 * changes are found by comparing the two; chg is ignored), or prev->m
 * itself with pods changed in place (not added or removed): chg names them,
 * and prev may then only be freed. o->is_local must answer as it did for
 * prev for every pod not changed; o->prev is ignored.
 */
struct seg_change {
	const char *const *pods; /* "ns/name" of pods changed in place */
	size_t npods;
};

int seg_compile_update(const struct seg_compiled *prev, const struct seg_manifests *m,
		       const struct seg_change *chg, const struct seg_compile_opts *o,
		       struct seg_compiled **out, struct seg_diag *d);
bool seg_compiled_updated(const struct seg_compiled *c);
/* A full compile that took its pod identities from seg_compile_opts.reuse. */
bool seg_compiled_ids_reused(const struct seg_compiled *c);
/* ... and how many of its policy sets copied their entries from it (a set
 * whose policies are all unchanged). */
size_t seg_compiled_sets_copied(const struct seg_compiled *c);
/* A full compile that took reuse's rule table and numbering (its policies
 * have reuse's rule keys: names, rules and peers per rule by position). */
bool seg_compiled_rules_taken(const struct seg_compiled *c);

/*
 * For lib/apply: each compile has a serial; an update records the serial
 * of the compile it started from (base, 0 after a full compile) and how
 * its policy entries differ from it: entries added to and removed from
 * sets the base had (their remote identity is new, or gone: no address
 * has it on one of the two sides), and the sets the base did not have.
 */
struct seg_compiled_delta {
	unsigned long long serial, base;
	const struct seg_pol_entry *add; /* sorted by key */
	size_t nadd;
	const struct seg_policy_key *del; /* sorted */
	size_t ndel;
	const __u32 *fresh; /* policy ids */
	size_t nfresh;
	const __u32 *new_ids, *dead_ids; /* identities added and gone */
	size_t nnew_ids, ndead_ids;
};

void seg_compiled_delta(const struct seg_compiled *c, struct seg_compiled_delta *out);
/* The first of policy set id's entries in c->pol (sorted by policy id
 * first): its index, or where they would start (c->npol when after all). */
size_t seg_compiled_pol_first(const struct seg_compiled *c, __u32 policy_id);

const char *seg_cap_name(int i);

/*
 * Map operations turning old's state into new's (old NULL: everything is
 * new), called in a safe order: ipcache_set, lpm_set, policy_set,
 * endpoint_set, then endpoint_del, policy_del, lpm_del, ipcache_del. Only
 * what differs is reported; endpoints are matched by pod ns/name. NULL
 * callbacks are skipped; the first error stops and is returned. old's
 * manifests must still be alive. Endpoints come with ep_id and revision 0:
 * the caller sets them (bump every endpoint's revision when anything
 * changed, so established flows are re-checked).
 */
struct seg_diff_ops {
	int (*ipcache_set)(void *ctx, const struct seg_compiled *c, const struct seg_ipc_entry *e);
	int (*ipcache_del)(void *ctx, const struct in6_addr *addr);
	int (*lpm_set)(void *ctx, const struct seg_lpm_entry *e);
	int (*lpm_del)(void *ctx, const struct seg_lpm_key *key);
	int (*policy_set)(void *ctx, const struct seg_pol_entry *e);
	int (*policy_del)(void *ctx, const struct seg_policy_key *key);
	int (*endpoint_set)(void *ctx, const struct seg_compiled *c, const struct seg_ep_entry *e);
	int (*endpoint_del)(void *ctx, const struct seg_compiled *old,
			    const struct seg_ep_entry *e);
};

int seg_compiled_diff(const struct seg_compiled *old, const struct seg_compiled *new,
		      const struct seg_diff_ops *ops, void *ctx);

/* Lookups with exactly the data path's semantics. */
__u32 seg_ipcache_lookup(const struct seg_compiled *c, const struct in6_addr *a);
const struct seg_ep_entry *seg_compiled_endpoint(const struct seg_compiled *c,
						 const struct seg_pod *pod);
const struct seg_pol_entry *seg_policy_lookup(const struct seg_compiled *c,
					      const struct seg_endpoint *ep, __u8 dir, __u32 remote,
					      __u16 port, __u8 proto);
const struct seg_identity *seg_identity_get(const struct seg_compiled *c, __u32 id);
const struct seg_rule_info *seg_rule_get(const struct seg_compiled *c, __u32 rule_id);
/* "x/allow-80 ingress rule 0 peer 1" */
void seg_rule_describe(const struct seg_compiled *c, __u32 rule_id, char *buf, size_t len);

/* ---- evaluator --------------------------------------------------------------
 * One probe: egress on the source's endpoint (if the source is a local pod),
 * then ingress on the destination's endpoint (if local), each decided the
 * way the data path decides a new flow: ipcache (exact, LPM, WORLD) for the
 * remote identity, isolated flag, policy probes in the data path's order,
 * audit flag. A pod reaching itself never leaves its netns: allowed.
 */
struct seg_dir_verdict {
	bool evaluated; /* false: no local endpoint on that side */
	__u8 verdict; /* SEG_VERDICT_* */
	__u8 reason; /* enum seg_reason */
	__u32 remote_id;
	__u32 rule_id; /* 0 = none */
};

struct seg_verdict {
	__u8 verdict; /* SEG_VERDICT_*: AUDIT passes */
	struct seg_dir_verdict dir[SEG_DIR_MAX];
	char reason[512];
};

struct seg_endpoint_ref {
	const struct seg_pod *pod; /* NULL: an address outside the cluster */
	struct in6_addr addr;
};

int seg_eval(const struct seg_compiled *c, const struct seg_endpoint_ref *src,
	     const struct seg_endpoint_ref *dst, __u16 port, __u8 proto, struct seg_verdict *v);
/* Pods, using the first address of family (4 or 6; 0 = IPv4 when both have
 * one, else IPv6). -ENOENT if they have no common family. */
int seg_eval_pods(const struct seg_compiled *c, const struct seg_pod *src,
		  const struct seg_pod *dst, int family, __u16 port, __u8 proto,
		  struct seg_verdict *v);

#endif
