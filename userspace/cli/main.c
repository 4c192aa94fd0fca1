// SPDX-License-Identifier: MIT
/* meshsplice: the command-line tool. */
#include <getopt.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ms-build.h"
#include "ctl.h"
#include "util.h"


int cli_error(struct cli *c, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, CTL_F_ERROR, json_object_new_string(msg));
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	} else {
		fprintf(stderr, "meshsplice: %s\n", msg);
	}
	return 1;
}

int cli_dispatch(struct cli *c, const struct cmd *table, int argc, char **argv, const char *what)
{
	const struct cmd *found = NULL;
	size_t len;

	if (argc < 1)
		return cli_error(c, "missing %s; see 'meshsplice help'", what);
	len = strlen(argv[0]);
	for (const struct cmd *t = table; t->name; t++) {
		if (strcmp(t->name, argv[0]) == 0) {
			found = t;
			break;
		}
		if (len && strncmp(t->name, argv[0], len) == 0) {
			if (found)
				return cli_error(c, "%s \"%s\" is ambiguous", what, argv[0]);
			found = t;
		}
	}
	if (!found)
		return cli_error(c, "unknown %s \"%s\"; see 'meshsplice help'", what, argv[0]);
	return found->fn(c, argc, argv);
}

static int do_help(struct cli *c, int argc, char **argv);

#define AGENT_CMD(verb)                                                 \
	static int cmd_##verb(struct cli *c, int argc, char **argv)     \
	{                                                               \
		return cmd_agent(c, argc, argv, #verb);                 \
	}
AGENT_CMD(status)
AGENT_CMD(pods)
AGENT_CMD(enable)
AGENT_CMD(disable)
AGENT_CMD(conns)
AGENT_CMD(stats)
AGENT_CMD(get)
AGENT_CMD(reload)

static int cmd_dns(struct cli *c, int argc, char **argv)
{
	if (argc < 2 || !streq(argv[1], "lookup"))
		return cli_error(c, "usage: dns lookup NAME [--mesh M] [--type A|AAAA]");
	return cmd_agent(c, argc - 1, argv + 1, "dns-lookup");
}

static const struct cmd commands[] = {
	{ "validate", cmd_validate, "validate [--strict] PATH... check config files; every problem as file:line:col (--strict: warnings too)" },
	{ "render", cmd_render, "render PATH...              meshes and services with VIPs, hostnames, endpoints" },
	{ "status", cmd_status, "status                      the agent: engine, config, pods, connections" },
	{ "pods", cmd_pods, "pods                        enabled pods" },
	{ "enable", cmd_enable, "enable --netns PATH [--name NS/POD] [--mesh M] [--exclude-port P] [--exclude-cidr C] [--no-exclusions] [--dns-server IP]... [--no-dns|--dns] | enable NS/POD" },
	{ "disable", cmd_disable, "disable NS/POD | --netns PATH" },
	{ "conns", cmd_conns, "conns                       proxied connections" },
	{ "stats", cmd_stats, "stats                       counters" },
	{ "get", cmd_get, "get                         the agent's config, rendered" },
	{ "dns", cmd_dns, "dns lookup NAME [--mesh M] [--type A|AAAA]  what a pod of mesh M is told for NAME" },
	{ "reload", cmd_reload, "reload                      re-read the config directory now" },
	{ "iptables", cmd_iptables, "iptables render|install|uninstall|verify [--netns PATH] [--port P] [--mark M] [--exclude-port P] [--exclude-cidr C] [--exclude-uid U] [--vip-cidr C] [--no-capture-all] [--dns-port P] [--ipv6]" },
	{ "help", do_help, "help                        this text" },
	{ NULL, NULL, NULL },
};

static int do_help(struct cli *c, int argc, char **argv)
{
	(void)c;
	(void)argc;
	(void)argv;
	printf("Usage: meshsplice [--control SOCK] [-o table|json] COMMAND [ARGS]\n\nCommands:\n");
	for (const struct cmd *t = commands; t->name; t++)
		printf("  %s\n", t->help);
	printf("\nCommands may be abbreviated to a unique prefix. The agent's socket defaults to %s.\n",
	       MS_DEFAULT_CONTROL);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "control", required_argument, NULL, 'c' },
		{ "output", required_argument, NULL, 'o' },
		{ "mes-cidr", required_argument, NULL, 'E' },
		{ "ms-cidr", required_argument, NULL, 'S' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli c = { .control = MS_DEFAULT_CONTROL };
	int o;

	/* Options before the command only; the command parses its own. */
	while ((o = getopt_long(argc, argv, "+c:o:hV", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			c.control = optarg;
			break;
		case 'o':
			if (streq(optarg, "json"))
				c.json = true;
			else if (!streq(optarg, "table"))
				return cli_error(&c, "-o takes table or json, not \"%s\"", optarg);
			break;
		case 'E':
			c.mes_cidr = optarg;
			break;
		case 'S':
			c.ms_cidr = optarg;
			break;
		case 'V':
			puts("meshsplice " MS_VERSION);
			return 0;
		case 'h':
			return do_help(&c, 0, NULL);
		default:
			return 2;
		}
	}
	if (optind >= argc)
		return do_help(&c, 0, NULL), 2;
	return cli_dispatch(&c, commands, argc - optind, argv + optind, "command");
}
