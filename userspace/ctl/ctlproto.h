/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "ctl.h"
#include "dns.h"
#include "meshsplice.h"

/* The control protocol: one JSON object per line, {"cmd": ..., fields}.
 * Parsing and every check that needs no agent state live here, apart from
 * the event loop, so that a fuzzer can reach all of it. */

#define CTL_MAX_EXCL_CIDRS 64
#define CTL_MAX_STR 4096 /* any string field */
#define CTL_MAX_DNS_SERVERS 8 /* resolv.conf's MAXNS is 3 */


struct ctl_req {
	enum ctl_cmd cmd;
	/* NULL when absent; they point into json, alive until ctl_req_free */
	const char *name, *netns, *mesh, *container;
	bool has_excl_ports, has_excl_cidrs; /* given (even empty: clears the pod's) */
	uint16_t excl_ports[MS_MAX_EXCL_PORTS];
	size_t n_excl_ports;
	struct ms_cidr excl_cidrs[CTL_MAX_EXCL_CIDRS];
	size_t n_excl_cidrs;
	int dns; /* -1: not given; 0 or 1 */
	struct ms_addr dns_servers[CTL_MAX_DNS_SERVERS];
	size_t n_dns_servers;
	bool has_dns_servers;
	/* dns-lookup: the query a pod would send */
	uint16_t qtype;
	uint8_t query[DNS_HEADER + DNS_MAX_NAME + 2 + 4];
	size_t query_len;
	json_object *json;
};

/* Parse and check one request. 0, or -EINVAL with *ret_err (the caller
 * frees it). Either way call ctl_req_free. */
int ctl_parse(const char *line, struct ctl_req *r, char **ret_err);
void ctl_req_free(struct ctl_req *r);
