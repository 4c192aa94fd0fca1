/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

/* One problem found in a config file: "file:line:col: field: why". */
struct cfg_err {
	char *file;
	unsigned line, col; /* 1-based; 0 when the problem has no position */
	char *field;        /* dotted path, may be empty */
	char *msg;
};

struct cfg_errors {
	struct cfg_err *v;
	size_t n, cap;
};

void cfg_errors_add(struct cfg_errors *e, const char *file, unsigned line, unsigned col,
		    const char *field, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void cfg_errors_clear(struct cfg_errors *e);
/* Sort by file, line, column: the order a person reads them in. */
void cfg_errors_sort(struct cfg_errors *e);
/* Format one error into buf: "file:line:col: field: msg". */
const char *cfg_err_fmt(const struct cfg_err *e, char *buf, size_t len);
