// SPDX-License-Identifier: MIT
/* base64 (RFC 4648) for inline certificates and Secrets. */
#include <ctype.h>
#include <errno.h>

#include "config.h"
#include "util.h"

static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int cfg_base64_decode(const char *s, size_t len, unsigned char **ret, size_t *ret_len)
{
	unsigned char *out = xcalloc(len / 4 * 3 + 4, 1);
	unsigned quad[4];
	size_t o = 0, q = 0, pad = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int v;

		if (isspace(c))
			continue;
		if (c == '=') {
			pad++;
			if (q < 2 || q + pad > 4)
				goto bad;
			continue;
		}
		if (pad)
			goto bad; /* data after padding */
		v = b64_val(c);
		if (v < 0)
			goto bad;
		quad[q++] = (unsigned)v;
		if (q == 4) {
			out[o++] = (unsigned char)(quad[0] << 2 | quad[1] >> 4);
			out[o++] = (unsigned char)(quad[1] << 4 | quad[2] >> 2);
			out[o++] = (unsigned char)(quad[2] << 6 | quad[3]);
			q = 0;
		}
	}
	if (q == 1 || (q && q + pad != 4))
		goto bad;
	if (q >= 2)
		out[o++] = (unsigned char)(quad[0] << 2 | quad[1] >> 4);
	if (q == 3)
		out[o++] = (unsigned char)(quad[1] << 4 | quad[2] >> 2);
	*ret = out;
	*ret_len = o;
	return 0;
bad:
	free(out);
	return -EINVAL;
}
