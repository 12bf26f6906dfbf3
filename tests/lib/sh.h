/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * tsh(): run a shell command built from a printf format, for tests that
 * set up network namespaces or call the CLI. Returns system()'s status
 * (check it with WIFEXITED/WEXITSTATUS), or -1 when the command could not
 * be built or started. No length limit: the command is allocated.
 */
#ifndef SEG_TEST_SH_H
#define SEG_TEST_SH_H

__attribute__((format(printf, 1, 2))) int tsh(const char *fmt, ...);

#endif
