// SPDX-License-Identifier: MIT
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util.h"

static enum log_level level = LOG_LVL_INFO;
static enum log_format format = LOG_FMT_TEXT;
static const char *const names[] = { "error", "warn", "info", "debug" };
static const char *const format_names[] = { "text", "json" };
/* syslog(3) priorities of the levels: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */
static const int priorities[] = { 3, 4, 6, 7 };
static int journal = -1; /* unknown until the first line */

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

void log_set_format(enum log_format f)
{
	format = f;
}

int log_parse_format(const char *s, enum log_format *ret)
{
	for (size_t i = 0; i < ARRAY_SIZE(format_names); i++) {
		if (streq(s, format_names[i])) {
			*ret = (enum log_format)i;
			return 0;
		}
	}
	return -EINVAL;
}

bool log_to_journal(void)
{
	if (journal < 0) {
		const char *e = getenv("JOURNAL_STREAM");
		unsigned long long dev, ino;
		struct stat st;
		char tail;

		journal = e && sscanf(e, "%llu:%llu%c", &dev, &ino, &tail) == 2 && fstat(2, &st) == 0 &&
			  (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
	}
	return journal > 0;
}

/* s as the contents of a JSON string: quotes, backslashes and control
 * characters escaped, bytes that are not UTF-8 replaced by U+FFFD. */
static void json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
		bool valid = n > 0 && !(n == 2 && *p < 0xc2);
		for (size_t i = 1; valid && i < n; i++)
			valid = (p[i] & 0xc0) == 0x80;
		if (!valid) {
			fputs("\\ufffd", f);
			p++;
		} else if (n > 1) {
			fwrite(p, 1, n, f);
			p += n;
		} else {
			if (*p == '"' || *p == '\\')
				fprintf(f, "\\%c", *p);
			else if (*p < 0x20 || *p == 0x7f)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
			p++;
		}
	}
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
		char stamp[64]; /* room for any int the format could take (gcc -Wformat-truncation) */
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
		/* one write per line (stderr is unbuffered): composed in line[] */
		char line[sizeof(msg) * 6 + 128];
		FILE *f = fmemopen(line, sizeof(line), "w");
		FILE *out = f ? f : stderr;
		if (log_to_journal())
			fprintf(out, "<%d>", priorities[l]);
		if (format == LOG_FMT_JSON) {
			fprintf(out, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", stamp, names[l]);
			json_str(out, msg);
			fputs("\"}\n", out);
		} else if (log_to_journal()) {
			fprintf(out, "%s\n", msg);
		} else {
			fprintf(out, "%s %-5s %s\n", stamp, names[l], msg);
		}
		if (f) {
			long n = ftell(f);
			fclose(f);
			if (n > 0) {
				/* cut at the buffer: still one line */
				if ((size_t)n >= sizeof(line) - 1)
					line[sizeof(line) - 2] = '\n', n = (long)sizeof(line) - 1;
				fwrite(line, 1, (size_t)n, stderr);
			}
		}
	}
	return -e;
}
