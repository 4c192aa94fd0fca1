// SPDX-License-Identifier: MIT
/* Commands answered by the running agent over its control socket. */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ctl.h"
#include "util.h"

#define CTL_TIMEOUT_MS 10000

static const char *jstr(json_object *o, const char *k)
{
	json_object *v;
	if (!json_object_object_get_ex(o, k, &v) || json_object_is_type(v, json_type_null))
		return "-";
	return json_object_get_string(v);
}

static long long jint(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

static json_object *jget(json_object *o, const char *k)
{
	json_object *v = NULL;
	json_object_object_get_ex(o, k, &v);
	return v;
}

static void print_pods(json_object *r)
{
	json_object *pods = jget(r, CTL_F_PODS);

	printf("%-28s %-10s %-9s %-8s %-20s %s\n", "POD", "MESH", "STATE", "ENGINE", "SINCE", "NETNS");
	for (size_t i = 0; pods && i < json_object_array_length(pods); i++) {
		json_object *p = json_object_array_get_idx(pods, i);
		printf("%-28s %-10s %-9s %-8s %-20s %s\n", jstr(p, "name"), jstr(p, "mesh"),
		       jstr(p, "state"), jstr(p, "engine"), jstr(p, "since"), jstr(p, "netns"));
	}
}

static void print_conns(json_object *r)
{
	json_object *cs = jget(r, "connections");

	printf("%-6s %-24s %-24s %-28s %-26s %-10s %12s %12s %8s\n", "PATH", "POD", "ORIGINAL", "SERVICE", "UPSTREAM",
	       "STATE", "TX", "RX", "AGE");
	for (size_t i = 0; cs && i < json_object_array_length(cs); i++) {
		json_object *c = json_object_array_get_idx(cs, i);
		char age[32] = "-";
		if (jget(c, "age_ms"))
			snprintf(age, sizeof(age), "%.1fs", (double)jint(c, "age_ms") / 1000.0);
		printf("%-6s %-24s %-24s %-28s %-26s %-10s %12lld %12lld %8s\n", jstr(c, "path"), jstr(c, "pod"),
		       jstr(c, "original"), jstr(c, "service"), jstr(c, "upstream"), jstr(c, "state"),
		       jint(c, "tx_bytes"), jint(c, "rx_bytes"), age);
	}
	if (jint(r, "kernel_cut"))
		printf("(%lld more kernel-path connections not listed)\n", jint(r, "kernel_cut"));
	if (jget(r, "kernel_listed") && !json_object_get_boolean(jget(r, "kernel_listed")))
		printf("(kernel-path connections are not listed by this engine or kernel)\n");
	if (jget(r, "kernel_error"))
		printf("(%s)\n", jstr(r, "kernel_error"));
}

static void print_endpoints(json_object *r)
{
	json_object *es = jget(r, "endpoints");

	printf("%-36s %-22s %-26s %5s %-6s %-9s %-16s %9s %8s %8s\n", "SERVICE", "VIP", "ADDRESS", "LEVEL", "PATH",
	       "HEALTH", "WHY", "SINCE", "OPENED", "FAILED");
	for (size_t i = 0; es && i < json_object_array_length(es); i++) {
		json_object *e = json_object_array_get_idx(es, i);
		printf("%-36s %-22s %-26s %5lld %-6s %-9s %-16s %8.1fs %8lld %8lld\n", jstr(e, "service"), jstr(e, "vip"),
		       jstr(e, "address"), jint(e, "level"), jstr(e, "path"), jstr(e, "health"), jstr(e, "why"),
		       (double)jint(e, "since_ms") / 1000.0, jint(e, "kernel_opened"), jint(e, "kernel_failed"));
	}
}

static void print_flat(json_object *o, const char *prefix)
{
	json_object_object_foreach(o, k, v)
	{
		if (streq(k, CTL_F_OK))
			continue;
		if (json_object_is_type(v, json_type_object)) {
			char p[256];
			snprintf(p, sizeof(p), "%s%s.", prefix, k);
			print_flat(v, p);
		} else {
			printf("%s%s: %s\n", prefix, k, json_object_get_string(v));
		}
	}
}

/* `dns lookup`: one line, as dig +short would put it, plus where it came from. */
static bool lookup_reply(json_object *r)
{
	json_object *addrs = jget(r, "addresses");

	if (!jget(r, "answer"))
		return false;
	if (streq(jstr(r, "answer"), "local")) {
		if (!addrs || json_object_array_length(addrs) == 0)
			printf("%s: a name of mesh %s, no %s record (NODATA)\n", jstr(r, "name"), jstr(r, "mesh"),
			       jstr(r, "type"));
		for (size_t i = 0; addrs && i < json_object_array_length(addrs); i++)
			printf("%s %s %s (mesh %s, TTL %s)\n", jstr(r, "name"), jstr(r, "type"),
			       json_object_get_string(json_object_array_get_idx(addrs, i)), jstr(r, "mesh"), jstr(r, "ttl"));
	} else {
		printf("%s: not a hostname of mesh %s; %s\n", jstr(r, "name"), jstr(r, "mesh"),
		       streq(jstr(r, "answer"), "forwarded") ? "forwarded to the pod's own resolver" : "dropped");
	}
	if (jget(r, "note"))
		printf("note: %s\n", jstr(r, "note"));
	return true;
}

/* Build the request for verb from argv; NULL after printing an error (every
 * error here is a usage error). */
static json_object *build(struct cli *c, int argc, char **argv, const char *verb)
{
	static const struct option opts[] = {
		{ "netns", required_argument, NULL, 'n' },
		{ "name", required_argument, NULL, 'N' },
		{ "mesh", required_argument, NULL, 'm' },
		{ "exclude-port", required_argument, NULL, 'p' },
		{ "exclude-cidr", required_argument, NULL, 'x' },
		{ "no-exclusions", no_argument, NULL, 'X' },
		{ "dns-server", required_argument, NULL, 'S' },
		{ "output", required_argument, NULL, 'o' },
		{ "no-dns", no_argument, NULL, 'D' },
		{ "dns", no_argument, NULL, 'd' },
		{ "type", required_argument, NULL, 't' },
		{ "control", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	json_object *req = json_object_new_object();
	json_object *ports = json_object_new_array(), *cidrs = json_object_new_array();
	json_object *servers = NULL;
	bool takes_pod = streq(verb, "enable") || streq(verb, "disable");
	bool lookup = streq(verb, "dns-lookup"), clear = false;
	int o;

	json_object_object_add(req, CTL_F_CMD, json_object_new_string(verb));
	optind = 0; /* 0: glibc re-initialises (and permutes options after operands) */
	while ((o = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		bool global = o == 'o' || o == 'c'; /* also accepted before the command */
		if (lookup && !global && o != 'm' && o != 't') {
			cli_error(c, "dns lookup takes --mesh, --type, --control and -o");
			goto fail;
		}
		if (!takes_pod && !lookup && !global) {
			cli_error(c, "%s takes no options but --control and -o", verb);
			goto fail;
		}
		switch (o) {
		case 'c':
			c->control = optarg;
			break;
		case 'n':
			json_object_object_add(req, CTL_F_NETNS, json_object_new_string(optarg));
			break;
		case 'N':
			json_object_object_add(req, CTL_F_NAME, json_object_new_string(optarg));
			break;
		case 'm':
			json_object_object_add(req, CTL_F_MESH, json_object_new_string(optarg));
			break;
		case 'p': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 65535) {
				cli_error(c, "--exclude-port \"%s\" is not a port (1-65535)", optarg);
				goto fail;
			}
			json_object_array_add(ports, json_object_new_int((int)v));
			break;
		}
		case 'x':
			json_object_array_add(cidrs, json_object_new_string(optarg));
			break;
		case 'X':
			clear = true;
			break;
		case 'S':
			if (!servers) {
				servers = json_object_new_array();
				json_object_object_add(req, CTL_F_DNS_SERVERS, servers);
			}
			json_object_array_add(servers, json_object_new_string(optarg));
			break;
		case 'D':
		case 'd':
			json_object_object_add(req, CTL_F_DNS, json_object_new_boolean(o == 'd'));
			break;
		case 't':
			json_object_object_add(req, CTL_F_TYPE, json_object_new_string(optarg));
			break;
		case 'o':
			c->json = streq(optarg, "json");
			break;
		default:
			goto fail;
		}
	}
	if ((takes_pod || lookup) && optind < argc)
		json_object_object_add(req, CTL_F_NAME, json_object_new_string(argv[optind++]));
	if (lookup && !jget(req, CTL_F_NAME)) {
		cli_error(c, "dns lookup needs a NAME");
		goto fail;
	}
	if (optind < argc) {
		cli_error(c, "unexpected argument \"%s\"", argv[optind]);
		goto fail;
	}
	if (takes_pod && !jget(req, CTL_F_NAME) && !jget(req, CTL_F_NETNS)) {
		cli_error(c, "%s needs NS/POD or --netns PATH", verb);
		goto fail;
	}
	/* A list sent replaces the pod's (an empty one clears it); one not
	 * sent leaves it as it is. */
	if (clear && (json_object_array_length(ports) || json_object_array_length(cidrs))) {
		cli_error(c, "--no-exclusions clears them: give it without --exclude-port or --exclude-cidr");
		goto fail;
	}
	if (clear || json_object_array_length(ports))
		json_object_object_add(req, CTL_F_EXCL_PORTS, json_object_get(ports));
	if (clear || json_object_array_length(cidrs))
		json_object_object_add(req, CTL_F_EXCL_CIDRS, json_object_get(cidrs));
	json_object_put(ports);
	json_object_put(cidrs);
	return req;
fail:
	json_object_put(ports);
	json_object_put(cidrs);
	json_object_put(req);
	return NULL;
}

int cmd_agent(struct cli *c, int argc, char **argv, const char *verb)
{
	json_object *req = build(c, argc, argv, verb), *resp = NULL;
	int r;

	if (!req)
		return CLI_EXIT_USAGE;
	r = ctl_call(c->control, req, CTL_TIMEOUT_MS, &resp);
	json_object_put(req);
	if (r < 0) {
		if (r == -ENOENT || r == -ECONNREFUSED)
			return cli_error(c, "no agent at %s (%s): is meshspliced running?", c->control,
					 strerror(-r));
		if (r == -EACCES || r == -EPERM)
			return cli_error(c, "agent socket %s: %s (run as root)", c->control, strerror(-r));
		return cli_error(c, "agent at %s: %s", c->control,
				 r == -EPROTO ? "malformed reply" : strerror(-r));
	}
	json_object *ok = jget(resp, CTL_F_OK);
	if (!ok || !json_object_get_boolean(ok)) {
		r = cli_error(c, "%s", jstr(resp, "error"));
		json_object_put(resp);
		return r;
	}
	if (c->json)
		puts(json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	else if (streq(verb, "pods"))
		print_pods(resp);
	else if (streq(verb, "conns"))
		print_conns(resp);
	else if (streq(verb, "endpoints"))
		print_endpoints(resp);
	else if (lookup_reply(resp))
		;
	else if (streq(verb, "get"))
		puts(json_object_to_json_string_ext(jget(resp, "config"), JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	else if (jget(resp, "message"))
		puts(jstr(resp, "message"));
	else
		print_flat(resp, "");
	json_object_put(resp);
	return 0;
}
