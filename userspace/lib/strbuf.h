/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

/* A growing string: rule sets, metrics pages. s is always NUL-terminated
 * after the first append; the caller frees s. */
struct strbuf {
	char *s;
	size_t len, cap;
};

void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
