/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* One problem found in a config file: "file:line:col: field: why". */
struct cfg_err {
	char *file;
	unsigned line, col; /* 1-based; 0 when the problem has no position */
	char *field;        /* dotted path, may be empty */
	char *msg;
	bool warning;       /* reported, but the config is still loaded */
};

struct cfg_errors {
	struct cfg_err *v;
	size_t n, cap;
	size_t n_warnings; /* of n */
	bool strict;       /* set by the caller: warnings count as errors */
};

void cfg_errors_add(struct cfg_errors *e, const char *file, unsigned line, unsigned col,
		    const char *field, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* A problem Kuma would accept (an unknown key, a kind we do not act on):
 * kept with warning set, or an error when e->strict. */
void cfg_warn_add(struct cfg_errors *e, const char *file, unsigned line, unsigned col,
		  const char *field, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* The problems that refuse a config: every entry but the warnings. */
static inline size_t cfg_errors_count(const struct cfg_errors *e)
{
	return e->n - e->n_warnings;
}
void cfg_errors_clear(struct cfg_errors *e);
/* Sort by file, line, column: the order a person reads them in. */
void cfg_errors_sort(struct cfg_errors *e);
/* Format one error into buf: "file:line:col: field: msg" (a warning: "...: warning: msg"). */
const char *cfg_err_fmt(const struct cfg_err *e, char *buf, size_t len);
