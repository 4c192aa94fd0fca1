// SPDX-License-Identifier: MIT
/* libFuzzer target: any bytes as a client's first bytes (TLS ClientHello,
 * HTTP/1, HTTP/2 with HPACK). The peeker reads only what it is given, says
 * a name only when it is a host name, and gives the same answer for a
 * prefix that it gave when it said "more". */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "peek.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct peek p;
	char out[256];

	if (size > PEEK_MAX + 64)
		return 0;
	enum peek_result r = peek_name(data, size, &p);
	if (r == PEEK_FOUND) {
		size_t l = strlen(p.name);
		if (!l || l >= sizeof(p.name))
			abort();
		for (size_t i = 0; i < l; i++)
			if (!((p.name[i] >= 'a' && p.name[i] <= 'z') || (p.name[i] >= '0' && p.name[i] <= '9') ||
			      p.name[i] == '-' || p.name[i] == '_' || p.name[i] == '.'))
				abort();
	}
	/* a prefix is never more certain than the whole: once FOUND, the
	 * same name for every longer input starting with it is not asked
	 * (clients may send anything after), but a prefix must not find a
	 * name the whole does not have */
	if (size > 1) {
		struct peek q;
		enum peek_result rp = peek_name(data, size / 2, &q);
		if (rp == PEEK_FOUND && size / 2 <= PEEK_MAX && (r != PEEK_FOUND || strcmp(p.name, q.name) != 0))
			abort();
	}
	peek_huffman_decode(data, size, out, sizeof(out));
	return 0;
}
