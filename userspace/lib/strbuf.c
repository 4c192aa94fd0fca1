// SPDX-License-Identifier: MIT
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>

#include "util.h"

void strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!b->s) { /* never pointer arithmetic on NULL */
		b->cap = 512;
		b->s = xcalloc(b->cap, 1);
	}
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < b->cap - b->len)
			break;
		b->cap = b->cap * 2 + (size_t)n + 64;
		b->s = xrealloc(b->s, b->cap, 1);
	}
	b->len += (size_t)n;
}
