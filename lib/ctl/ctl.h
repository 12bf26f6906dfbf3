/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The segd control protocol, shared by segd, segctl and the CNI plugin.
 *
 * A unix stream socket (0600, root only; segd checks SO_PEERCRED). Each
 * message is a frame: a 4-byte big-endian length, then that many bytes of
 * one JSON object. Requests:  {"v": 1, "op": "status", "args": {...}}
 * Responses:                  {"v": 1, "ok": true,  "result": ...}
 *                             {"v": 1, "ok": false, "error": {"code": -errno,
 *                              "message": "file.yaml:3:7: spec.podSelector: ..."}}
 * A peer speaking a newer "v" gets an error naming both versions.
 */
#ifndef SEG_CTL_H
#define SEG_CTL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SEG_CTL_VERSION 1
#define SEG_CTL_SOCKET_DEFAULT "/run/seg/segd.sock"
#define SEG_CTL_SOCKET_ENV "SEG_SOCKET"
#define SEG_CTL_MAX_FRAME (64u << 20) /* a frame larger than this is refused */

/* The socket a client should use: explicit path, else $SEG_SOCKET, else the default. */
const char *seg_ctl_socket_path(const char *explicit_path);

/* Client side (blocking, with a timeout per call in ms; 0 = none). */
int seg_ctl_connect(const char *path, int *fd);
/* Sends {"v","op","args"} and waits for the response. On success *result
 * holds the "result" (new reference, may be JSON null). On a protocol or
 * server error returns -errno and, if errbuf, the server's message. */
int seg_ctl_call(int fd, const char *op, json_t *args, int timeout_ms, json_t **result,
		 char *errbuf, size_t errlen);

/* Framing, for both sides. */
int seg_ctl_frame_encode(const json_t *msg, char **buf, size_t *len);
/* Incremental decoder: feed bytes as they come. */
struct seg_ctl_decoder {
	uint8_t hdr[4];
	size_t hdr_have;
	uint32_t want; /* payload length once hdr is complete */
	char *payload;
	size_t have;
	uint32_t max_frame;
};
void seg_ctl_decoder_init(struct seg_ctl_decoder *d, uint32_t max_frame);
void seg_ctl_decoder_reset(struct seg_ctl_decoder *d);
/* Consumes up to len bytes; returns bytes consumed (>= 0) or -EMSGSIZE /
 * -EBADMSG. When a whole frame is in, *msg is the parsed object (new ref)
 * and the decoder is ready for the next one. */
ssize_t seg_ctl_decoder_feed(struct seg_ctl_decoder *d, const char *data, size_t len,
			     json_t **msg, char *errbuf, size_t errlen);

/* Response builders for the server. */
json_t *seg_ctl_ok(json_t *result /* stolen, may be NULL */);
json_t *seg_ctl_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
