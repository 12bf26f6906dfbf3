/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Packet builders for tests and benches: Ethernet + IPv4/IPv6 + TCP, UDP,
 * SCTP, ICMP, ICMPv6, written into a caller buffer from one table-friendly
 * description. Normal packets are well formed (IPv4 header checksum and L4
 * checksums of unfragmented packets filled); the hostile knobs (ihl, length
 * fields, truncation, fragments, extension headers, options) break exactly
 * one thing each.
 *
 *	struct tp_spec s = { .src = "10.0.0.1", .dst = "10.1.0.5",
 *			     .proto = IPPROTO_TCP, .sport = 40000, .dport = 80 };
 *	__u8 buf[TP_BUF_SIZE];
 *	int len = tp_build(buf, sizeof(buf), &s);     (length, or -errno)
 */
#ifndef SEG_TESTPKT_H
#define SEG_TESTPKT_H

#include <linux/types.h>
#include <stddef.h>

#define TP_BUF_SIZE 2048
#define TP_MAX_EXT 16 /* IPv6 extension headers a spec can carry */
#define TP_ETH_LEN 14
#define TP_IP4_LEN 20
#define TP_IP6_LEN 40

/* TCP flags (tcp_flags). */
#define TP_FIN 0x01
#define TP_SYN 0x02
#define TP_RST 0x04
#define TP_PSH 0x08
#define TP_ACK 0x10

struct tp_spec {
	/* Addresses as text; the family follows ("10.0.0.1" or "fd00::1"). */
	const char *src;
	const char *dst;
	/* 0 = IPv4/IPv6 from the family. Anything else (ETH_P_ARP, 0x88cc)
	 * writes an ARP body for ETH_P_ARP or `payload` zero bytes otherwise;
	 * addresses are then ignored. */
	__u16 ethertype;
	__u8 proto; /* IPPROTO_*; unknown numbers get `payload` bytes only */
	__u8 tcp_flags; /* 0 = SYN (a new connection) */
	__u16 sport; /* TCP, UDP, SCTP */
	__u16 dport;
	__u8 icmp_type; /* ICMP / ICMPv6 */
	__u8 icmp_code;
	__u16 icmp_id; /* echo id (echo types only) */
	__u16 payload; /* L4 payload bytes (zeros) */

	/* IPv4 */
	__u8 ip4_optlen; /* option bytes: multiple of 4, <= 40 */
	const __u8 *ip4_opts; /* their content; NULL = NOPs then EOL */
	__u8 ihl; /* override (words); 0 = from ip4_optlen */
	__u8 ttl; /* 0 = 64 */
	/* Both families */
	__u32 ip_len; /* override tot_len / payload_len; 0 = computed */
	__u32 frag_id; /* IPv4 id (low 16 bits) or IPv6 fragment id */
	__u16 frag_off; /* fragment offset, 8-byte units */
	__u8 mf; /* more fragments */
	__u8 frag; /* IPv6: add a fragment header even if mf = off = 0 */
	/* IPv6: extension headers in order (IPPROTO_HOPOPTS, _DSTOPTS,
	 * _ROUTING), each 8 bytes; the fragment header goes after them. */
	__u8 ext[TP_MAX_EXT];
	__u8 n_ext;

	/* ICMP/ICMPv6 error types: the quoted packet (from its L3 header). */
	const struct tp_spec *inner;
	/* Keep only this many bytes of the whole frame (0 = all). Length
	 * fields follow the cut frame (a truncated packet, not a bad length)
	 * unless ip_len is set. */
	__u16 cut;
};

/* Writes the frame into buf (cap bytes). Returns its length or -EINVAL
 * (bad spec) / -ENOSPC (buffer too small). */
int tp_build(void *buf, size_t cap, const struct tp_spec *s);

/* Same without the Ethernet header: starts at the L3 header. */
int tp_build_l3(void *buf, size_t cap, const struct tp_spec *s);

/* 4 or 6 for an address string, 0 if it is neither. */
int tp_family(const char *addr);

/* Text address to the ABI form (16 bytes, network order, IPv4 v4-mapped).
 * 0 or -EINVAL. */
int tp_addr(const char *addr, __u32 out[4]);

/* Internet checksum of len bytes, folded, starting from sum. */
__u16 tp_csum(const void *data, size_t len, __u32 sum);

#endif
