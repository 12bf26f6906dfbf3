// SPDX-License-Identifier: GPL-2.0-only
/* segd's config file -> flags placed before the command line's (config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "segd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *write_tmp(const char *text)
{
	char *path = strdup("/tmp/segd-config-test.XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void test_keys_become_flags_before_argv(void **state)
{
	char *path = write_tmp("pin-dir: /sys/fs/bpf/x\n"
			       "audit-default: true\n"
			       "allow-host: false\n"
			       "config: /ignored\n"
			       "event-rate: 7\n");
	char *argv[] = { "segd", "--config", path, "--event-rate", "9", NULL };
	char **out = NULL;
	int n = 0;

	assert_int_equal(segd_config_argv(path, 5, argv, &n, &out), 0);
	assert_int_equal(n, 8);
	assert_string_equal(out[0], "segd");
	assert_string_equal(out[1], "--pin-dir=/sys/fs/bpf/x");
	assert_string_equal(out[2], "--audit-default"); /* true: the flag */
	assert_string_equal(out[3], "--event-rate=7"); /* false and config: dropped */
	assert_string_equal(out[4], "--config"); /* the command line follows, so it wins */
	assert_string_equal(out[6], "--event-rate");
	assert_string_equal(out[7], "9");
	assert_null(out[8]);
	segd_config_argv_free(n, out, 5);
	unlink(path);
	free(path);
}

static void test_nested_values_are_refused(void **state)
{
	char *path = write_tmp("pin-dir: [a, b]\n");
	char *argv[] = { "segd", NULL };
	char **out = NULL;
	int n = 0;

	assert_int_equal(segd_config_argv(path, 1, argv, &n, &out), -EINVAL);
	assert_null(out);
	unlink(path);
	free(path);
}

static void test_top_level_must_be_a_mapping(void **state)
{
	char *path = write_tmp("- pin-dir\n");
	char *argv[] = { "segd", NULL };
	char **out = NULL;
	int n = 0;

	assert_int_equal(segd_config_argv(path, 1, argv, &n, &out), -EINVAL);
	unlink(path);
	free(path);
}

static void test_missing_file(void **state)
{
	char *argv[] = { "segd", NULL };
	char **out = NULL;
	int n = 0;

	assert_int_equal(segd_config_argv("/nonexistent/segd.yaml", 1, argv, &n, &out), -ENOENT);
	assert_null(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_become_flags_before_argv),
		cmocka_unit_test(test_nested_values_are_refused),
		cmocka_unit_test(test_top_level_must_be_a_mapping),
		cmocka_unit_test(test_missing_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
