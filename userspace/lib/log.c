// SPDX-License-Identifier: MIT
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util.h"

static enum log_level level = LOG_LVL_INFO;
static const char *const names[] = { "error", "warn", "info", "debug" };

void log_set_level(enum log_level l)
{
	level = l;
}

enum log_level log_get_level(void)
{
	return level;
}

int log_parse_level(const char *s, enum log_level *ret)
{
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (streq(s, names[i])) {
			*ret = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

int log_emit(enum log_level l, int err, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	int e = err < 0 ? -err : err;

	if (l <= level) {
		/* Make %m print the error we were given, not whatever errno is now. */
		errno = e;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		for (char *p = msg; *p; p++)
			if (*p == '\n')
				*p = ' ';
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s\n", tm.tm_year + 1900,
			tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			ts.tv_nsec / 1000000, names[l], msg);
	}
	return -e;
}
