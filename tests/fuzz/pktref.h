/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The packet fuzzer's reference classifier: an independent, plain-C reading
 * of an Ethernet frame (written from docs/architecture.md's tables, not
 * from bpf/), and the state a correct data path may have built: the flows
 * it was right to allow and the first fragments it has seen. The fuzzer
 * asks it whether a pass the BPF program reported is justified.
 */
#ifndef SEG_FUZZ_PKTREF_H
#define SEG_FUZZ_PKTREF_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>

/* Addresses are 16 bytes, IPv4 v4-mapped. */
struct ref_tuple {
	__u8 saddr[16], daddr[16];
	__u16 sport, dport; /* host order; 0 for protocols without ports */
	__u8 proto;
	__u8 family; /* 4 or 6 */
};

enum ref_class {
	REF_BAD, /* must be dropped: truncated, bad length, unknown L3, too many ext headers */
	REF_L2, /* ARP, or ICMPv6 133-137 with hop limit 255 */
	REF_FLOW, /* t is the packet's 5-tuple */
	REF_LATER_FRAG, /* t without ports: they come from the first fragment */
	REF_ICMP_ERR, /* t: the error's addresses; q: the packet it quotes */
};

struct ref_pkt {
	enum ref_class cls;
	struct ref_tuple t;
	struct ref_tuple q;
	bool q_ok; /* the quote has addresses and ports we could read */
	bool first_frag;
	__u32 frag_id;
	__u8 frag_proto; /* the fragment header's next header (IPv6), else proto */
	const char *why; /* REF_BAD: which check */
};

void ref_parse(const __u8 *pkt, size_t len, struct ref_pkt *out);

/* The fixed policy and world (tests/bpf/fixture.h's base world). */
__u32 ref_identity(const __u8 addr[16]);
/* May a new flow leave the pod from this source under anti-spoofing? (its
 * own addresses; link-local and unspecified are exempt) */
bool ref_src_owned(const __u8 addr[16]);
/* Would a new flow with this 5-tuple be allowed in dir (SEG_DIR_*)? */
bool ref_policy_allows(const struct ref_tuple *t, __u8 dir);

/* Endpoint view of a tuple seen in dir: {laddr, raddr, lport, rport, proto}. */
struct ref_key {
	__u8 laddr[16], raddr[16];
	__u16 lport, rport;
	__u8 proto;
};
void ref_key_of(const struct ref_tuple *t, __u8 dir, struct ref_key *k);

/* Flows a correct data path may hold (a superset: never forgets). */
struct ref_state;
struct ref_state *ref_state_new(void);
void ref_state_free(struct ref_state *s);
void ref_state_clear(struct ref_state *s);
int ref_ct_add(struct ref_state *s, const struct ref_key *k);
bool ref_ct_has(const struct ref_state *s, const struct ref_key *k);
/* First fragments: every (ports) ever seen for (saddr, daddr, id, proto). */
int ref_frag_add(struct ref_state *s, const struct ref_tuple *t, __u32 id);
/* Calls fn for each port pair recorded for a later fragment; stops and
 * returns true when fn does. */
bool ref_frag_any(const struct ref_state *s, const struct ref_tuple *t, __u32 id,
		  bool (*fn)(const struct ref_tuple *full, void *ctx), void *ctx);

#endif
