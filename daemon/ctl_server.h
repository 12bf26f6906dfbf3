/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * segd's control socket: a unix stream socket, mode 0600 in a 0700
 * directory, every peer's credentials checked (root only), requests framed
 * as in lib/ctl. Bounded: at most CTL_MAX_CLIENTS at once, a request must
 * arrive whole within CTL_STALL_MS, frames over the limit close the client.
 * Handlers run on the loop and must not block.
 */
#ifndef SEGD_CTL_SERVER_H
#define SEGD_CTL_SERVER_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "loop.h"

#define CTL_MAX_CLIENTS 64
#define CTL_STALL_MS 10000

struct ctl_server;

/* Returns 0 with *result set (new ref, may stay NULL), or -errno with a
 * message in err. */
typedef int (*ctl_handler)(void *ctx, const char *op, json_t *args, json_t **result, char *err,
			   size_t errlen);

struct ctl_server_opts {
	const char *path;
	uid_t allowed_uid; /* 0: root only */
	ctl_handler handler;
	void *ctx;
	unsigned int stall_ms; /* 0: CTL_STALL_MS */
};

int ctl_server_start(struct loop *l, const struct ctl_server_opts *o, struct ctl_server **out);
void ctl_server_stop(struct ctl_server *s);

struct ctl_server_stats {
	unsigned long accepted, refused_cred, refused_busy, requests, bad_frames, stalled;
};
void ctl_server_stats(const struct ctl_server *s, struct ctl_server_stats *st);

#endif
