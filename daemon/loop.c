// SPDX-License-Identifier: GPL-2.0-only
#include "loop.h"

#include "log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define LOOP_BATCH 64

enum loop_src_kind { SRC_FD, SRC_TIMER, SRC_SIGNAL };

struct loop_src {
	int fd;
	enum loop_src_kind kind;
	bool dead; /* deleted during this iteration; freed after it */
	char name[32];
	struct loop_src *next, *prev; /* every live source, for loop_free() */
	loop_cb cb;
	void *ctx;
	struct loop_src *next_dead;
};

struct loop {
	int epfd;
	bool stopping;
	loop_hook before_sleep;
	void *before_sleep_ctx;
	struct loop_src *dead; /* freed once no callback can still see them */
	struct loop_src *live; /* registered sources */
};

int loop_new(struct loop **out)
{
	struct loop *l = calloc(1, sizeof(*l));

	if (!l)
		return log_err(-ENOMEM, "event loop");
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int err = log_err(-errno, "epoll_create1");

		free(l);
		return err;
	}
	*out = l;
	return 0;
}

static void loop_reap(struct loop *l)
{
	while (l->dead) {
		struct loop_src *s = l->dead;

		l->dead = s->next_dead;
		if (s->kind != SRC_FD && s->fd >= 0)
			close(s->fd);
		free(s);
	}
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	while (l->live) /* sources still registered are the loop's to free */
		loop_del(l, l->live);
	loop_reap(l);
	if (l->epfd >= 0)
		close(l->epfd);
	free(l);
}

static int loop_register(struct loop *l, int fd, uint32_t events, enum loop_src_kind kind,
			 const char *name, loop_cb cb, void *ctx, struct loop_src **out)
{
	struct loop_src *s = calloc(1, sizeof(*s));
	struct epoll_event ev = { .events = events };

	if (!s)
		return log_err(-ENOMEM, "event source %s", name);
	s->fd = fd;
	s->kind = kind;
	s->cb = cb;
	s->ctx = ctx;
	snprintf(s->name, sizeof(s->name), "%s", name);
	ev.data.ptr = s;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		int err = log_err(-errno, "watch %s (fd %d)", name, fd);

		free(s);
		return err;
	}
	s->next = l->live;
	if (l->live)
		l->live->prev = s;
	l->live = s;
	if (out)
		*out = s;
	return 0;
}

int loop_add_fd(struct loop *l, int fd, uint32_t events, const char *name, loop_cb cb, void *ctx,
		struct loop_src **out)
{
	return loop_register(l, fd, events, SRC_FD, name, cb, ctx, out);
}

int loop_mod_fd(struct loop *l, struct loop_src *s, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = s };

	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, s->fd, &ev))
		return log_err(-errno, "re-watch %s", s->name);
	return 0;
}

void loop_del(struct loop *l, struct loop_src *s)
{
	if (!s || s->dead)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	if (s->prev)
		s->prev->next = s->next;
	else
		l->live = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->dead = true;
	s->next_dead = l->dead;
	l->dead = s;
}

int loop_timer_arm(struct loop *l, struct loop_src *s, uint64_t first_ms, uint64_t interval_ms)
{
	struct itimerspec its = {
		.it_value = { .tv_sec = first_ms / 1000, .tv_nsec = (first_ms % 1000) * 1000000 },
		.it_interval = { .tv_sec = interval_ms / 1000,
				 .tv_nsec = (interval_ms % 1000) * 1000000 },
	};

	(void)l;
	if (first_ms == 0)
		its.it_value.tv_nsec = 1; /* "now": a zero value would disarm */
	if (timerfd_settime(s->fd, 0, &its, NULL))
		return log_err(-errno, "arm timer %s", s->name);
	return 0;
}

int loop_timer_disarm(struct loop *l, struct loop_src *s)
{
	struct itimerspec its = { 0 };

	(void)l;
	if (timerfd_settime(s->fd, 0, &its, NULL))
		return log_err(-errno, "disarm timer %s", s->name);
	return 0;
}

int loop_add_timer(struct loop *l, uint64_t first_ms, uint64_t interval_ms, const char *name,
		   loop_cb cb, void *ctx, struct loop_src **out)
{
	struct loop_src *s = NULL;
	int fd, err;

	fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0)
		return log_err(-errno, "timerfd for %s", name);
	err = loop_register(l, fd, EPOLLIN, SRC_TIMER, name, cb, ctx, &s);
	if (err) {
		close(fd);
		return err;
	}
	err = loop_timer_arm(l, s, first_ms, interval_ms);
	if (err) {
		loop_del(l, s);
		return err;
	}
	if (out)
		*out = s;
	return 0;
}

int loop_add_signals(struct loop *l, const int *signals, int n, loop_cb cb, void *ctx)
{
	sigset_t set;
	int fd, err;

	sigemptyset(&set);
	for (int i = 0; i < n; i++)
		sigaddset(&set, signals[i]);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return log_err(-errno, "block signals");
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return log_err(-errno, "signalfd");
	err = loop_register(l, fd, EPOLLIN, SRC_SIGNAL, "signals", cb, ctx, NULL);
	if (err)
		close(fd);
	return err;
}

void loop_set_before_sleep(struct loop *l, loop_hook hook, void *ctx)
{
	l->before_sleep = hook;
	l->before_sleep_ctx = ctx;
}

/* Timers and signals are consumed here so callbacks see "it fired" (timer:
 * events = expirations, signal: events = signo). */
static int loop_dispatch(struct loop *l, struct loop_src *s, uint32_t events)
{
	uint64_t n;

	if (s->kind == SRC_TIMER) {
		if (read(s->fd, &n, sizeof(n)) != sizeof(n))
			return errno == EAGAIN ? 0 : -errno;
		return s->cb(l, s, (uint32_t)n, s->ctx);
	}
	if (s->kind == SRC_SIGNAL) {
		struct signalfd_siginfo si;
		int err = 0;

		while (!err && read(s->fd, &si, sizeof(si)) == sizeof(si))
			err = s->cb(l, s, si.ssi_signo, s->ctx);
		return err;
	}
	return s->cb(l, s, events, s->ctx);
}

int loop_run(struct loop *l)
{
	struct epoll_event evs[LOOP_BATCH];

	while (!l->stopping) {
		int n = epoll_wait(l->epfd, evs, LOOP_BATCH, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return log_err(-errno, "epoll_wait");
		}
		for (int i = 0; i < n; i++) {
			struct loop_src *s = evs[i].data.ptr;
			int err;

			if (s->dead)
				continue;
			err = loop_dispatch(l, s, evs[i].events);
			if (err < 0)
				log_warn_err(err, "%s: event dropped, state kept", s->name);
		}
		if (l->before_sleep)
			l->before_sleep(l, l->before_sleep_ctx);
		loop_reap(l);
	}
	return 0;
}

void loop_stop(struct loop *l)
{
	l->stopping = true;
}

bool loop_stopping(const struct loop *l)
{
	return l->stopping;
}

int loop_src_fd(const struct loop_src *s)
{
	return s->fd;
}

const char *loop_src_name(const struct loop_src *s)
{
	return s->name;
}
