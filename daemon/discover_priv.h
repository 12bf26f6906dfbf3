/* SPDX-License-Identifier: GPL-2.0-only */
/* Shared by discover.c (scan) and discover_watch.c; not for other users. */
#ifndef SEGD_DISCOVER_PRIV_H
#define SEGD_DISCOVER_PRIV_H

struct nl_sock;

/* Runs fn(arg) inside the netns at path (NULL: right here) and always comes
 * back to the calling thread's netns. Returns fn's result, or -errno (not
 * logged: the caller knows whether a missing netns matters). */
int disc_in_netns(const char *path, int (*fn)(void *), void *arg);

/* A connected NETLINK_ROUTE socket in the calling thread's netns. */
int disc_nl_open(struct nl_sock **out);

#endif
