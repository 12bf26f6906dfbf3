// SPDX-License-Identifier: GPL-2.0-only
/* tsh(): see sh.h. */
#include "sh.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int tsh(const char *fmt, ...)
{
	char *cmd = NULL;
	va_list ap;
	int n, st;

	va_start(ap, fmt);
	n = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	st = system(cmd);
	free(cmd);
	return st;
}
