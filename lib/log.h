/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Logging for every seg program: levels, one line per message on stderr,
 * and the 0/-errno convention: log_err() logs once with the cause and
 * returns the error so callers can `return log_err(-errno, "open %s", p);`.
 */
#ifndef SEG_LOG_H
#define SEG_LOG_H

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_init(const char *prog, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Route libbpf's own messages through us, one level quieter. */
void log_hook_libbpf(void);

__attribute__((format(printf, 2, 3))) void log_msg(enum log_level lvl, const char *fmt, ...);

/* Logs "<msg>: <strerror(-err)>" at error level and returns err (< 0). */
__attribute__((format(printf, 2, 3))) int log_err(int err, const char *fmt, ...);
/* Same at warning level; returns err. */
__attribute__((format(printf, 2, 3))) int log_warn_err(int err, const char *fmt, ...);

#define log_error(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
