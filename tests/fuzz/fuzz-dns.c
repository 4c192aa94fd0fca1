// SPDX-License-Identifier: MIT
/* libFuzzer target: any bytes as a DNS query. Parsing, answering and error
 * building must stay inside their buffers; no crash, no leak. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool any_local(void *ctx, void *pod, const char *name, struct ms_addr *ret)
{
	(void)ctx;
	(void)pod;
	if (name[0] && name[0] < 'n')
		return false;
	addr_parse("242.0.0.1", ret);
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_query q;
	struct ms_addr a[2];
	uint8_t out[2048];
	char name[DNS_MAX_NAME + 1];
	size_t off = size > 12 ? 12 : 0;

	dns_read_name(data, size, &off, name, sizeof(name));
	addr_parse("242.0.0.1", &a[0]);
	addr_parse("2001:2::1", &a[1]);
	size_t olen;
	/* the responder's whole decision, both transports */
	dns_respond(data, size, true, 30, any_local, NULL, NULL, out, sizeof(out), &olen, &q);
	dns_respond(data, size, false, 30, any_local, NULL, NULL, out, sizeof(out), &olen, NULL);
	int r = dns_parse_query(data, size, &q);
	if (r == 0) {
		dns_build_answer(&q, a, 2, 30, q.udp_size, out, sizeof(out));
		dns_build_answer(&q, a, 2, 30, 40, out, sizeof(out));
		dns_build_error(&q, 0, DNS_R_NXDOMAIN, out, sizeof(out));
	} else if (size >= 2) {
		dns_build_error(NULL, (uint16_t)(data[0] << 8 | data[1]), DNS_R_FORMERR, out, sizeof(out));
	}
	return 0;
}
