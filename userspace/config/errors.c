// SPDX-License-Identifier: MIT
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* More than this many errors is noise; the rest are summarised. */
#define CFG_ERRORS_MAX 200

/* Warnings take at most half of the slots, so that an error is always kept:
 * a config is refused by the errors it records, never by their count. */
__attribute__((format(printf, 7, 0))) static void
errors_addv(struct cfg_errors *e, bool warning, const char *file, unsigned line, unsigned col,
	    const char *field, const char *fmt, va_list ap)
{
	struct cfg_err *x;
	char *msg;

	if (e->n >= (warning ? CFG_ERRORS_MAX / 2 : CFG_ERRORS_MAX))
		return;
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 8;
		e->v = xrealloc(e->v, e->cap, sizeof(*e->v));
	}
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	x = &e->v[e->n++];
	x->file = xstrdup(file ? file : "<input>");
	x->line = line;
	x->col = col;
	x->field = xstrdup(field ? field : "");
	x->msg = msg;
	x->warning = warning;
	e->n_warnings += warning;
}

void cfg_errors_add(struct cfg_errors *e, const char *file, unsigned line, unsigned col,
		    const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errors_addv(e, false, file, line, col, field, fmt, ap);
	va_end(ap);
}

void cfg_warn_add(struct cfg_errors *e, const char *file, unsigned line, unsigned col,
		  const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errors_addv(e, !e->strict, file, line, col, field, fmt, ap);
	va_end(ap);
}

void cfg_errors_clear(struct cfg_errors *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->v[i].file);
		free(e->v[i].field);
		free(e->v[i].msg);
	}
	bool strict = e->strict;

	free(e->v);
	memset(e, 0, sizeof(*e));
	e->strict = strict;
}

static int err_cmp(const void *a, const void *b)
{
	const struct cfg_err *x = a, *y = b;
	int r = strcmp(x->file, y->file);

	if (r)
		return r;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return strcmp(x->msg, y->msg);
}

void cfg_errors_sort(struct cfg_errors *e)
{
	if (e->n > 1)
		qsort(e->v, e->n, sizeof(*e->v), err_cmp);
}

const char *cfg_err_fmt(const struct cfg_err *e, char *buf, size_t len)
{
	const char *w = e->warning ? "warning: " : "";

	if (e->line)
		snprintf(buf, len, "%s:%u:%u: %s%s%s%s", e->file, e->line, e->col, e->field,
			 *e->field ? ": " : "", w, e->msg);
	else
		snprintf(buf, len, "%s: %s%s%s%s", e->file, e->field, *e->field ? ": " : "", w, e->msg);
	return buf;
}
