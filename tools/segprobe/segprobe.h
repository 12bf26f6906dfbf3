/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * segprobe: a TCP/UDP/SCTP server and prober for tests, seglab and the demo.
 *
 *   serve:   TCP accept + echo, UDP echo, SCTP INIT -> INIT-ACK over a raw
 *            IPPROTO_SCTP socket (the kernel has no SCTP stack here).
 *   connect: TCP handshake + echo, UDP echo, SCTP INIT -> INIT-ACK; the
 *            exit status says whether the peer answered.
 */
#ifndef SEGPROBE_H
#define SEGPROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* Exit codes: the contract with every script that calls segprobe. */
#define PROBE_EXIT_OK 0 /* answered */
#define PROBE_EXIT_FAIL 1 /* blocked, timed out, refused, cut, error */
#define PROBE_EXIT_USAGE 2

#define PROBE_MAX_PORTS 64 /* per protocol, for serve */

/* ---- SCTP (sctp.c): just enough for INIT -> INIT-ACK ------------------- */
#define SCTP_CHUNK_INIT 1
#define SCTP_CHUNK_INIT_ACK 2
#define SCTP_CHUNK_ABORT 6
#define SCTP_PARAM_STATE_COOKIE 7
#define SCTP_COMMON_LEN 12
#define SCTP_INIT_LEN 20 /* chunk header + fixed INIT/INIT-ACK fields */
#define SCTP_COOKIE_LEN 16 /* our state cookie's value */
#define SCTP_PKT_MAX 128 /* what we build never exceeds this */

/* The first chunk of a packet, with the fields INIT/INIT-ACK carry. */
struct sctp_info {
	uint16_t sport, dport;
	uint32_t vtag; /* common header verification tag */
	uint8_t type; /* first chunk's type */
	uint8_t flags;
	uint32_t init_tag; /* INIT/INIT-ACK: initiate tag */
	uint32_t a_rwnd;
	uint16_t os, mis; /* outbound streams, max inbound streams */
	uint32_t tsn; /* initial TSN */
	uint16_t cookie_len; /* INIT-ACK: state cookie value length, 0 = none */
};

/* CRC32c (Castagnoli), as SCTP uses it: crc32c(0, buf, len) is the final
 * value, to be stored little-endian in the common header. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);
/* Builds an INIT (vtag 0); returns its length or 0 if buf is too small. */
size_t sctp_build_init(uint8_t *buf, size_t len, uint16_t sport, uint16_t dport,
		       uint32_t init_tag, uint32_t tsn);
/* Builds the INIT-ACK answering init: ports swapped, vtag = init's
 * initiate tag, our own tag/TSN, a state cookie binding both tags. */
size_t sctp_build_init_ack(uint8_t *buf, size_t len, const struct sctp_info *init, uint32_t tag,
			   uint32_t tsn);
/* Checks length, chunk bounds and checksum, fills *out from the first
 * chunk. 0, -EMSGSIZE (truncated/bad lengths) or -EBADMSG (checksum). */
int sctp_parse(const uint8_t *pkt, size_t len, struct sctp_info *out);

/* ---- addresses and ports (util.c) ----------------------------------------- */
enum probe_proto { PROTO_TCP, PROTO_UDP, PROTO_SCTP, PROTO_MAX };
const char *proto_name(enum probe_proto p);
int proto_parse(const char *s, enum probe_proto *p);

/* "10.0.0.1", "fd00::1", "[fd00::1]" or "fe80::1%eth0" -> sockaddr with
 * port; 0/-EINVAL. */
int sockaddr_parse(const char *s, uint16_t port, struct sockaddr_storage *ss, socklen_t *len);
/* "addr:port" or "[addr]:port" (v4-mapped addresses printed as IPv4). */
const char *sockaddr_str(const struct sockaddr_storage *ss, char *buf, size_t len);
/* Address only. */
const char *sockaddr_addr_str(const struct sockaddr_storage *ss, char *buf, size_t len);
uint16_t sockaddr_port(const struct sockaddr_storage *ss);
int port_parse(const char *s, uint16_t *port, bool allow_zero);
/* "80,443,8000-8003" appended to ports[*n]; 0 or -EINVAL / -E2BIG. */
int port_list_parse(const char *s, uint16_t *ports, int *n, int max);
/* Monotonic milliseconds. */
int64_t now_ms(void);
/* Random 32-bit value, never 0 (tags must not be 0). */
uint32_t rand_u32(void);

/* ---- serve (serve.c) ------------------------------------------------------ */
struct serve_opts {
	uint16_t ports[PROTO_MAX][PROBE_MAX_PORTS];
	int nports[PROTO_MAX];
	const char *bind; /* NULL: every address, IPv4 and IPv6 */
	bool verbose;
};
int serve_run(const struct serve_opts *o);

/* ---- connect (connect.c) -------------------------------------------------- */
struct connect_opts {
	const char *addr;
	uint16_t port;
	enum probe_proto proto;
	int timeout_ms; /* per attempt: handshake, each echo */
	int count; /* request/answer rounds */
	int interval_ms; /* between rounds */
	const char *bind; /* source address */
	uint16_t sport; /* source port, 0 = any */
	bool json;
	bool quiet;
};
/* Returns PROBE_EXIT_*; prints one result line (or JSON object). */
int connect_run(const struct connect_opts *o);

#endif
