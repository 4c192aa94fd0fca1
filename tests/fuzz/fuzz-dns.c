// SPDX-License-Identifier: MIT
/* libFuzzer target: any bytes as a DNS query. Parsing, answering and error
 * building must stay inside their buffers; no crash, no leak. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
