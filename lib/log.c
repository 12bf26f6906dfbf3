// SPDX-License-Identifier: GPL-2.0-only
#include "log.h"

#include <bpf/libbpf.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *log_prog = "seg";
static enum log_level log_level = LOG_LVL_INFO;

static const char *const log_prefix[] = {
	[LOG_LVL_ERR] = "error: ",
	[LOG_LVL_WARN] = "warning: ",
	[LOG_LVL_INFO] = "",
	[LOG_LVL_DEBUG] = "debug: ",
};

void log_init(const char *prog, enum log_level level)
{
	const char *slash = prog ? strrchr(prog, '/') : NULL;

	if (prog)
		log_prog = slash ? slash + 1 : prog;
	log_level = level;
}

void log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level log_get_level(void)
{
	return log_level;
}

static void log_vmsg(enum log_level lvl, const char *fmt, va_list ap, int err)
{
	if (lvl > log_level)
		return;
	fprintf(stderr, "%s: %s", log_prog, log_prefix[lvl]);
	vfprintf(stderr, fmt, ap);
	if (err)
		fprintf(stderr, ": %s", strerror(-err));
	fputc('\n', stderr);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, fmt, ap, 0);
	va_end(ap);
}

int log_err(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_ERR, fmt, ap, err);
	va_end(ap);
	return err;
}

int log_warn_err(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_WARN, fmt, ap, err);
	va_end(ap);
	return err;
}

static int log_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum log_level lvl = level == LIBBPF_WARN ? LOG_LVL_INFO : LOG_LVL_DEBUG;

	if (lvl > log_level)
		return 0;
	fprintf(stderr, "%s: libbpf: ", log_prog);
	return vfprintf(stderr, fmt, ap);
}

void log_hook_libbpf(void)
{
	libbpf_set_print(log_libbpf);
}
