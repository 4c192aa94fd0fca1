// SPDX-License-Identifier: MIT
#include "ctlproto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static int fail(char **ret_err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char **ret_err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(ret_err, fmt, ap) < 0)
		*ret_err = NULL;
	va_end(ap);
	return -EINVAL;
}

/* A string field: absent → NULL; present, it must be a string of sane length. */
static int field_str(json_object *o, const char *k, const char **ret, char **ret_err)
{
	json_object *v;

	*ret = NULL;
	if (!json_object_object_get_ex(o, k, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return fail(ret_err, "\"%s\" must be a string", k);
	if (json_object_get_string_len(v) == 0 || json_object_get_string_len(v) > CTL_MAX_STR)
		return fail(ret_err, "\"%s\" must be 1-%d characters", k, CTL_MAX_STR);
	if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
		return fail(ret_err, "\"%s\" contains a NUL byte", k);
	*ret = json_object_get_string(v);
	return 0;
}

static int parse_exclusions(json_object *o, struct ctl_req *r, char **ret_err)
{
	json_object *ports = NULL, *cidrs = NULL;

	json_object_object_get_ex(o, CTL_F_EXCL_PORTS, &ports);
	json_object_object_get_ex(o, CTL_F_EXCL_CIDRS, &cidrs);
	if (ports && !json_object_is_type(ports, json_type_array))
		return fail(ret_err, "\"exclude_ports\" must be a list of ports");
	if (cidrs && !json_object_is_type(cidrs, json_type_array))
		return fail(ret_err, "\"exclude_cidrs\" must be a list of CIDRs");
	if (ports) {
		if (json_object_array_length(ports) > MS_MAX_EXCL_PORTS)
			return fail(ret_err, "at most %d excluded ports", MS_MAX_EXCL_PORTS);
		for (size_t i = 0; i < json_object_array_length(ports); i++) {
			json_object *p = json_object_array_get_idx(ports, i);
			int64_t v = json_object_is_type(p, json_type_int) ? json_object_get_int64(p) : -1;
			if (v < 1 || v > 65535)
				return fail(ret_err, "excluded port %s is not 1-65535", log_escape(json_object_to_json_string(p)));
			r->excl_ports[r->n_excl_ports++] = (uint16_t)v;
		}
	}
	if (cidrs) {
		if (json_object_array_length(cidrs) > CTL_MAX_EXCL_CIDRS)
			return fail(ret_err, "at most %d excluded CIDRs", CTL_MAX_EXCL_CIDRS);
		for (size_t i = 0; i < json_object_array_length(cidrs); i++) {
			json_object *c = json_object_array_get_idx(cidrs, i);
			const char *s = json_object_is_type(c, json_type_string) ? json_object_get_string(c) : NULL;
			if (!s || cidr_parse(s, &r->excl_cidrs[r->n_excl_cidrs]) < 0)
				return fail(ret_err, "excluded CIDR %s is not address/prefix",
					    log_escape(json_object_to_json_string(c)));
			r->n_excl_cidrs++;
		}
	}
	r->has_excl_ports = ports != NULL;
	r->has_excl_cidrs = cidrs != NULL;
	return 0;
}

static int parse_dns_servers(json_object *o, struct ctl_req *r, char **ret_err)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, CTL_F_DNS_SERVERS, &v))
		return 0;
	if (!json_object_is_type(v, json_type_array))
		return fail(ret_err, "\"%s\" must be a list of IP addresses", CTL_F_DNS_SERVERS);
	if (json_object_array_length(v) > CTL_MAX_DNS_SERVERS)
		return fail(ret_err, "at most %d DNS servers", CTL_MAX_DNS_SERVERS);
	for (size_t i = 0; i < json_object_array_length(v); i++) {
		json_object *a = json_object_array_get_idx(v, i);
		const char *s = json_object_is_type(a, json_type_string) ? json_object_get_string(a) : NULL;
		if (!s || addr_parse(s, &r->dns_servers[r->n_dns_servers]) < 0)
			return fail(ret_err, "DNS server %s is not an IP address", log_escape(json_object_to_json_string(a)));
		r->n_dns_servers++;
	}
	r->has_dns_servers = true;
	return 0;
}

/* dns-lookup: name and type → the wire query a pod would send. */
static int parse_lookup(json_object *o, struct ctl_req *r, char **ret_err)
{
	const char *type;
	ssize_t n;

	if (field_str(o, CTL_F_TYPE, &type, ret_err) < 0)
		return -EINVAL;
	if (!type || streq(type, "A"))
		r->qtype = DNS_T_A;
	else if (streq(type, "AAAA"))
		r->qtype = DNS_T_AAAA;
	else
		return fail(ret_err, "type \"%s\": A or AAAA", log_escape(type));
	if (!r->name)
		return fail(ret_err, "dns lookup needs a name");
	n = dns_build_query(r->name, r->qtype, 0, r->query, sizeof(r->query));
	if (n < 0)
		return fail(ret_err, "\"%s\" is not a DNS name", log_escape(r->name));
	r->query_len = (size_t)n;
	return 0;
}

int ctl_parse(const char *line, struct ctl_req *r, char **ret_err)
{
	const char *cmd = NULL;
	json_object *v;
	int c;

	memset(r, 0, sizeof(*r));
	r->dns = -1;
	*ret_err = NULL;
	r->json = json_tokener_parse(line);
	if (!r->json || !json_object_is_type(r->json, json_type_object))
		return fail(ret_err, "malformed request: expected one JSON object per line");
	if (field_str(r->json, CTL_F_CMD, &cmd, ret_err) < 0)
		return -EINVAL;
	if (!cmd)
		return fail(ret_err, "request has no \"cmd\"");
	if ((c = ctl_cmd_parse(cmd)) < 0)
		return fail(ret_err, "unknown command \"%s\"", log_escape(cmd));
	r->cmd = (enum ctl_cmd)c;
	if (field_str(r->json, CTL_F_NAME, &r->name, ret_err) < 0 || field_str(r->json, CTL_F_NETNS, &r->netns, ret_err) < 0 ||
	    field_str(r->json, CTL_F_MESH, &r->mesh, ret_err) < 0 ||
	    field_str(r->json, CTL_F_CONTAINER, &r->container, ret_err) < 0)
		return -EINVAL;
	if (json_object_object_get_ex(r->json, CTL_F_DNS, &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return fail(ret_err, "\"dns\" must be true or false");
		r->dns = json_object_get_boolean(v);
	}
	switch (r->cmd) {
	case CTL_ENABLE:
		if (r->name && (strlen(r->name) > 253 || !strchr(r->name, '/') || strpbrk(r->name, " \t\n\"")))
			return fail(ret_err, "pod name \"%s\" is not NAMESPACE/POD", log_escape(r->name));
		if (!r->name && !r->netns)
			return fail(ret_err, "enable needs a pod name or --netns");
		if (parse_dns_servers(r->json, r, ret_err) < 0)
			return -EINVAL;
		return parse_exclusions(r->json, r, ret_err);
	case CTL_DISABLE:
		if (!r->name && !r->netns)
			return fail(ret_err, "disable needs a pod name or --netns");
		return 0;
	case CTL_DNS_LOOKUP:
		return parse_lookup(r->json, r, ret_err);
	default:
		return 0;
	}
}

void ctl_req_free(struct ctl_req *r)
{
	json_object_put(r->json);
	r->json = NULL;
}
