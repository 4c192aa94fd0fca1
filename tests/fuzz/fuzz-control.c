// SPDX-License-Identifier: MIT
/* libFuzzer target: any bytes as one control-protocol request line. The
 * parser and every check that needs no agent state must hold: an error
 * string or a typed request, never a crash, a leak or a read past a
 * buffer; a dns-lookup request yields a query the responder accepts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctlproto.h"
#include "dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool no_local(void *ctx, void *pod, const char *name, struct ms_addr *ret)
{
	(void)ctx;
	(void)pod;
	(void)ret;
	return name[0] == 'm';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1);
	struct ctl_req r;
	char *err = NULL;

	if (!line)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0'; /* the agent cuts requests at the newline and NUL-terminates them */
	if (ctl_parse(line, &r, &err) == 0) {
		if (r.cmd == CTL_DNS_LOOKUP) {
			uint8_t out[512];
			size_t olen;
			struct dns_query q;
			/* our own query must parse and be decided, never dropped */
			if (dns_respond(r.query, r.query_len, true, 30, no_local, NULL, NULL, out, sizeof(out), &olen, &q) ==
			    DNS_DROP)
				abort();
		}
		if (r.n_excl_ports > MS_MAX_EXCL_PORTS || r.n_excl_cidrs > CTL_MAX_EXCL_CIDRS)
			abort();
	} else if (!err) {
		abort(); /* every refusal says why */
	}
	free(err);
	ctl_req_free(&r);
	free(line);
	return 0;
}
