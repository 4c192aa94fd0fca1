/* SPDX-License-Identifier: MIT */
#pragma once

#include <errno.h>
#include <stdbool.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };
enum log_format { LOG_FMT_TEXT, LOG_FMT_JSON };

void log_set_level(enum log_level l);
int log_parse_level(const char *s, enum log_level *ret);
enum log_level log_get_level(void);
/* text (default): "TIMESTAMP LEVEL message"; json: one object per line,
 * {"ts": ..., "level": ..., "msg": ...}, for log shippers. */
void log_set_format(enum log_format f);
int log_parse_format(const char *s, enum log_format *ret);
/* Whether stderr is the journal's stream: $JOURNAL_STREAM ("DEV:INO", set by
 * systemd) names stderr's device and inode. Then text lines carry the syslog
 * priority prefix "<N>" and no timestamp (the journal stamps them), and
 * JSON lines the prefix too. Decided at the first line logged. */
bool log_to_journal(void);

/* One line per event on stderr, in the format above. %m expands to strerror of
 * the errno given to the _errno variants. Returns -|err| so callers can
 * `return log_error_errno(r, ...)`. */
int log_emit(enum log_level l, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_error(...) log_emit(LOG_LVL_ERROR, 0, __VA_ARGS__)
#define log_warn(...) log_emit(LOG_LVL_WARN, 0, __VA_ARGS__)
#define log_info(...) log_emit(LOG_LVL_INFO, 0, __VA_ARGS__)
#define log_debug(...) log_emit(LOG_LVL_DEBUG, 0, __VA_ARGS__)
#define log_error_errno(e, ...) log_emit(LOG_LVL_ERROR, (e), __VA_ARGS__)
#define log_warn_errno(e, ...) log_emit(LOG_LVL_WARN, (e), __VA_ARGS__)
#define log_info_errno(e, ...) log_emit(LOG_LVL_INFO, (e), __VA_ARGS__)
