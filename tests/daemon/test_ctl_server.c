// SPDX-License-Identifier: GPL-2.0-only
/* segd's control socket on a real unix socket: a root client gets answers
 * (ok and error), the socket is 0600, a non-root peer is refused, garbage
 * and stalled clients are closed, and the server keeps serving. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"
#include "ctl_server.h"
#include "log.h"
#include "loop.h"

struct fix {
	char dir[64], path[96];
	struct loop *loop;
	struct ctl_server *srv;
	pthread_t thread;
};

static int handler(void *ctx, const char *op, json_t *args, json_t **result, char *err,
		   size_t errlen)
{
	if (!strcmp(op, "echo")) {
		*result = json_incref(args);
		return 0;
	}
	snprintf(err, errlen, "unknown op '%s'", op);
	return -EOPNOTSUPP;
}

static int on_stop(struct loop *l, struct loop_src *s, uint32_t ev, void *ctx)
{
	char c;

	if (read(loop_src_fd(s), &c, 1) == 1)
		loop_stop(l);
	return 0;
}

static int stop_pipe[2];

static void *run_loop(void *arg)
{
	loop_run(arg);
	return NULL;
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct ctl_server_opts o = { .handler = handler, .stall_ms = 200 };

	if (getuid() != 0) {
		fprintf(stderr, "test_ctl_server: needs root (peer credential checks)\n");
		exit(77);
	}
	snprintf(f->dir, sizeof(f->dir), "/tmp/seg-ctl-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/run/segd.sock", f->dir);
	o.path = f->path;
	assert_int_equal(loop_new(&f->loop), 0);
	assert_int_equal(pipe(stop_pipe), 0);
	assert_int_equal(loop_add_fd(f->loop, stop_pipe[0], 1 /* EPOLLIN */, "stop", on_stop, NULL,
				     NULL),
			 0);
	assert_int_equal(ctl_server_start(f->loop, &o, &f->srv), 0);
	assert_int_equal(pthread_create(&f->thread, NULL, run_loop, f->loop), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	char cmd[128];

	assert_int_equal(write(stop_pipe[1], "x", 1), 1);
	pthread_join(f->thread, NULL);
	ctl_server_stop(f->srv);
	loop_free(f->loop);
	close(stop_pipe[0]);
	close(stop_pipe[1]);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void test_socket_mode_and_calls(void **state)
{
	struct fix *f = *state;
	json_t *args = json_pack("{s:s}", "hello", "world"), *res = NULL;
	char err[256];
	struct stat st;
	int fd;

	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(seg_ctl_connect(f->path, &fd), 0);
	assert_int_equal(seg_ctl_call(fd, "echo", args, 2000, &res, err, sizeof(err)), 0);
	assert_true(json_equal(res, args));
	json_decref(res);
	assert_int_equal(seg_ctl_call(fd, "nope", NULL, 2000, &res, err, sizeof(err)),
			 -EOPNOTSUPP);
	assert_string_equal(err, "unknown op 'nope'");
	json_decref(args);
	close(fd);
}

static int child_as_nobody(const char *path)
{
	json_t *res = NULL;
	int fd, rc;

	if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
		return 11;
	rc = seg_ctl_connect(path, &fd);
	if (rc)
		return rc == -EACCES ? 1 : 12; /* 1: refused by the file mode */
	rc = seg_ctl_call(fd, "echo", NULL, 1000, &res, NULL, 0);
	return rc == 0 ? 13 : 2; /* 2: connected, then refused by the peer check */
}

static int run_as_nobody(const char *path)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_as_nobody(path));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_non_root_refused(void **state)
{
	struct fix *f = *state;
	struct ctl_server_stats st;
	char run_dir[96];

	/* layer 1: a 0600 socket in a 0700 directory */
	assert_int_equal(run_as_nobody(f->path), 1);
	/* layer 2: even if someone loosens the modes, SO_PEERCRED refuses */
	snprintf(run_dir, sizeof(run_dir), "%s/run", f->dir);
	assert_int_equal(chmod(f->dir, 0755), 0);
	assert_int_equal(chmod(run_dir, 0755), 0);
	assert_int_equal(chmod(f->path, 0666), 0);
	assert_int_equal(run_as_nobody(f->path), 2);
	ctl_server_stats(f->srv, &st);
	assert_int_equal(st.refused_cred, 1);
}

static void test_garbage_and_stall_closed(void **state)
{
	struct fix *f = *state;
	json_t *res = NULL;
	char buf[512];
	uint32_t be = htonl(7);
	int fd, fd2;
	ssize_t n;

	/* a frame that is not JSON: an error response, then EOF */
	assert_int_equal(seg_ctl_connect(f->path, &fd), 0);
	assert_int_equal(write(fd, &be, 4), 4);
	assert_int_equal(write(fd, "garbage", 7), 7);
	n = read(fd, buf, sizeof(buf) - 1);
	assert_true(n > 4);
	buf[n] = '\0';
	assert_non_null(strstr(buf + 4, "bad frame"));
	assert_int_equal(read(fd, buf, sizeof(buf)), 0);
	close(fd);

	/* half a header, then silence: closed after the stall limit (200 ms) */
	assert_int_equal(seg_ctl_connect(f->path, &fd), 0);
	assert_int_equal(write(fd, &be, 2), 2);
	assert_int_equal(read(fd, buf, sizeof(buf)), 0);
	close(fd);

	/* and the server still answers */
	assert_int_equal(seg_ctl_connect(f->path, &fd2), 0);
	assert_int_equal(seg_ctl_call(fd2, "echo", NULL, 2000, &res, NULL, 0), 0);
	json_decref(res);
	close(fd2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_socket_mode_and_calls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_non_root_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_and_stall_closed, setup, teardown),
	};

	log_init("test_ctl_server", LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
