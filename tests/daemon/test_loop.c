// SPDX-License-Identifier: GPL-2.0-only
/* segd's event loop: fd readiness, timers, signals, deletion from inside a
 * callback, and the before-sleep hook running once per wake-up. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"

struct probe {
	int reads, timer_fires, signals, hooks, stop_after;
	int fd;
	struct loop_src *self;
};

static int on_readable(struct loop *l, struct loop_src *s, uint32_t events, void *ctx)
{
	struct probe *p = ctx;
	char c;

	assert_true(events & EPOLLIN);
	assert_int_equal(read(p->fd, &c, 1), 1);
	p->reads++;
	loop_del(l, s); /* deleting ourselves must be safe */
	return 0;
}

static int on_timer(struct loop *l, struct loop_src *s, uint32_t n, void *ctx)
{
	struct probe *p = ctx;

	assert_true(n >= 1);
	p->timer_fires += (int)n;
	if (p->timer_fires >= p->stop_after)
		loop_stop(l);
	return 0;
}

static int on_signal(struct loop *l, struct loop_src *s, uint32_t signo, void *ctx)
{
	struct probe *p = ctx;

	assert_int_equal(signo, SIGUSR1);
	p->signals++;
	return 0;
}

static void before_sleep(struct loop *l, void *ctx)
{
	((struct probe *)ctx)->hooks++;
}

static void test_loop_sources(void **state)
{
	struct probe p = { .stop_after = 3 };
	struct loop *l = NULL;
	int sig = SIGUSR1;
	int pfd[2];

	assert_int_equal(pipe(pfd), 0);
	p.fd = pfd[0];
	assert_int_equal(loop_new(&l), 0);
	assert_int_equal(loop_add_fd(l, pfd[0], EPOLLIN, "pipe", on_readable, &p, NULL), 0);
	assert_int_equal(loop_add_timer(l, 5, 5, "tick", on_timer, &p, NULL), 0);
	assert_int_equal(loop_add_signals(l, &sig, 1, on_signal, &p), 0);
	loop_set_before_sleep(l, before_sleep, &p);
	assert_int_equal(write(pfd[1], "xy", 2), 2);
	raise(SIGUSR1);

	assert_int_equal(loop_run(l), 0);
	assert_int_equal(p.reads, 1); /* deleted after the first byte: no second read */
	assert_true(p.timer_fires >= 3);
	assert_int_equal(p.signals, 1);
	assert_true(p.hooks >= 1);
	assert_true(loop_stopping(l));
	loop_free(l);
	close(pfd[0]);
	close(pfd[1]);
}

static int one_shot_hits;
static int on_once(struct loop *l, struct loop_src *s, uint32_t n, void *ctx)
{
	one_shot_hits++;
	loop_stop(l);
	return 0;
}

static void test_timer_now_fires(void **state)
{
	struct loop *l = NULL;

	assert_int_equal(loop_new(&l), 0);
	assert_int_equal(loop_add_timer(l, 0, 0, "now", on_once, NULL, NULL), 0);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(one_shot_hits, 1);
	loop_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loop_sources),
		cmocka_unit_test(test_timer_now_fires),
	};

	log_init("test_loop", LOG_LVL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
