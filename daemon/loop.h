/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * segd's event loop: epoll over file descriptors, timers as timerfds,
 * signals as a signalfd. It knows nothing of policy: a source is an fd, a
 * name (for logs) and a callback. Callbacks never block; they drain a
 * bounded batch and mark work dirty; after each wake-up the loop runs the
 * before-sleep hook once (segd writes its maps there, once per iteration).
 */
#ifndef SEGD_LOOP_H
#define SEGD_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;
struct loop_src;

/* events: EPOLLIN/EPOLLOUT/... as received. Return 0 or -errno (logged by
 * the loop with the source's name; the source stays registered). */
typedef int (*loop_cb)(struct loop *l, struct loop_src *s, uint32_t events, void *ctx);
typedef void (*loop_hook)(struct loop *l, void *ctx);

int loop_new(struct loop **out);
/* Frees the loop and every source still registered (fds not owned by the
 * loop stay open). */
void loop_free(struct loop *l);

/* Watches fd for events (EPOLLIN...). The loop does not own fd. */
int loop_add_fd(struct loop *l, int fd, uint32_t events, const char *name, loop_cb cb, void *ctx,
		struct loop_src **out);
int loop_mod_fd(struct loop *l, struct loop_src *s, uint32_t events);
/* Unregisters and frees s (safe from inside its own callback). */
void loop_del(struct loop *l, struct loop_src *s);

/* A timer: first after first_ms (0 = at once), then every interval_ms
 * (0 = once). The loop owns the timerfd. */
int loop_add_timer(struct loop *l, uint64_t first_ms, uint64_t interval_ms, const char *name,
		   loop_cb cb, void *ctx, struct loop_src **out);
int loop_timer_arm(struct loop *l, struct loop_src *s, uint64_t first_ms, uint64_t interval_ms);
int loop_timer_disarm(struct loop *l, struct loop_src *s);

/* Blocks the given signals and delivers them through cb (events = signo). */
int loop_add_signals(struct loop *l, const int *signals, int n, loop_cb cb, void *ctx);

void loop_set_before_sleep(struct loop *l, loop_hook hook, void *ctx);

/* Runs until loop_stop(); returns 0, or -errno if epoll itself failed. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);
bool loop_stopping(const struct loop *l);

int loop_src_fd(const struct loop_src *s);
const char *loop_src_name(const struct loop_src *s);

#endif
