// SPDX-License-Identifier: MIT
/* meshsplice: the command-line tool. */
#include <getopt.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ctl.h"
#include "util.h"
#include "version.h"


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

int cli_usage(struct cli *c, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cli_error(c, "%s", msg);
	return CLI_EXIT_USAGE;
}

static const struct cmd *cmd_find(struct cli *c, const struct cmd *table, const char *name,
				  const char *what, int *ret_r)
{
	const struct cmd *found = NULL;
	size_t len = strlen(name);

	for (const struct cmd *t = table; t->name; t++) {
		if (strcmp(t->name, name) == 0)
			return t;
		if (len && strncmp(t->name, name, len) == 0) {
			if (found) {
				*ret_r = cli_usage(c, "%s \"%s\" is ambiguous", what, name);
				return NULL;
			}
			found = t;
		}
	}
	if (!found)
		*ret_r = cli_usage(c, "unknown %s \"%s\"; see 'meshsplice help'", what, name);
	return found;
}

static void cmd_usage(const struct cmd *t)
{
	/* the one-line help is "GRAMMAR  what it does": the grammar alone here */
	const char *gap = strstr(t->help, "  ");
	int n = gap ? (int)(gap - t->help) : (int)strlen(t->help);

	printf("Usage: meshsplice [GLOBAL OPTIONS] %.*s\n\n%s", n, t->help, t->usage);
}

int cli_dispatch(struct cli *c, const struct cmd *table, int argc, char **argv, const char *what)
{
	const struct cmd *found;
	int r = CLI_EXIT_USAGE;

	if (argc < 1)
		return cli_usage(c, "missing %s; see 'meshsplice help'", what);
	if (!(found = cmd_find(c, table, argv[0], what, &r)))
		return r;
	/* --help or -h anywhere before "--": the command's own help, nothing run */
	for (int i = 1; i < argc && !streq(argv[i], "--"); i++)
		if (streq(argv[i], "--help") || streq(argv[i], "-h")) {
			cmd_usage(found);
			return CLI_EXIT_OK;
		}
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
AGENT_CMD(endpoints)
AGENT_CMD(stats)
AGENT_CMD(get)
AGENT_CMD(reload)

static int cmd_dns(struct cli *c, int argc, char **argv)
{
	if (argc < 2 || !streq(argv[1], "lookup"))
		return cli_usage(c, "usage: dns lookup NAME [--mesh M] [--type A|AAAA]");
	return cmd_agent(c, argc - 1, argv + 1, "dns-lookup");
}

static int cmd_version(struct cli *c, int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return cli_usage(c, "version takes no arguments");
	ms_version_print(stdout, "meshsplice");
	return CLI_EXIT_OK;
}

#define AGENT_OPTS \
	"Global options, before or after the command: --control SOCK (default\n" \
	"  " MS_DEFAULT_CONTROL "), -o table|json.\n\n"
#define LOAD_OPTS \
	"  PATH       a YAML file, or a directory: its *.yaml and *.yml files, sorted\n" \
	"  --mes-cidr CIDR, --ms-cidr CIDR (global options, before or after the\n" \
	"             command): the VIP ranges, as the agent's options of the same names\n" \
	"  --gloo-vip-cidr CIDR, --gloo-mesh MESH (after the command): Gloo's VIPs and\n" \
	"             the mesh of a Gloo resource without the kuma.io/mesh label\n"

const struct cmd cli_commands[] = {
	{ "validate", cmd_validate, "validate [--strict] PATH... check config files; every problem as file:line:col",
	  "Load the files and directories as the agent would and report every problem,\n"
	  "one per line as file:line:col: field: why; warnings (what Kuma accepts and\n"
	  "meshsplice ignores) too. No agent needed.\n\n" LOAD_OPTS
	  "  --strict   warnings are problems too\n"
	  "  -o json    {\"valid\": ..., \"errors\": [...]} (also after the command)\n\n"
	  "Exit status: 0 valid, 1 problems found, 2 usage.\n" },
	{ "render", cmd_render, "render PATH...              meshes and services with VIPs, hostnames, endpoints",
	  "Load like validate and print the resulting model: each mesh's flags; each\n"
	  "service's VIP, ports, endpoints, TLS summary and generated hostnames. Key\n"
	  "material is never printed.\n\n" LOAD_OPTS "  -o json    the model as JSON\n\n"
	  "Exit status: 0 rendered, 1 problems found, 2 usage.\n" },
	{ "status", cmd_status, "status                      the agent: engine, config, pods, connections",
	  "The running agent's engine, config, pods and connection counts.\n\n" AGENT_OPTS
	  "Exit status: 0, 1 when no agent answers or it reports an error, 2 usage.\n" },
	{ "pods", cmd_pods, "pods                        enabled pods",
	  "Each enabled pod: name, mesh, state, engine, since, netns.\n\n" AGENT_OPTS
	  "Exit status: 0, 1 when no agent answers, 2 usage.\n" },
	{ "enable", cmd_enable,
	  "enable --netns PATH [--name NS/POD] [--mesh M] [--exclude-port P] [--exclude-cidr C] [--no-exclusions] [--dns-server IP]... [--no-dns|--dns] | enable NS/POD",
	  "Steer a pod's outbound TCP (and DNS) through the agent. A pod is its network\n"
	  "namespace; NS/POD alone enables again a pod the agent knows.\n\n"
	  "  --netns PATH        /var/run/netns/NAME or /proc/PID/ns/net\n"
	  "  --name NS/POD       the pod's name in listings (default: from the path)\n"
	  "  --mesh M            the pod's mesh (default: default)\n"
	  "  --exclude-port P    never steer connections to port P (repeatable)\n"
	  "  --exclude-cidr C    never steer connections to C (repeatable); each list given\n"
	  "                      replaces the pod's, one not given is kept\n"
	  "  --no-exclusions     clear the pod's excluded ports and CIDRs\n"
	  "  --dns-server IP     the pod's own resolver (repeatable): with passthrough off,\n"
	  "                      its DNS may go there (and to the agent's --dns-upstream) only\n"
	  "  --no-dns, --dns     the pod's DNS through the agent's responder or not\n\n" AGENT_OPTS
	  "Exit status: 0 enabled, 1 the agent refused or is not running, 2 usage.\n" },
	{ "disable", cmd_disable, "disable NS/POD | --netns PATH",
	  "Stop steering a pod; the agent keeps it known (enable NS/POD brings it back).\n\n" AGENT_OPTS
	  "Exit status: 0 disabled, 1 the agent refused or is not running, 2 usage.\n" },
	{ "conns", cmd_conns, "conns                       live connections, proxied and kernel-path",
	  "Each live connection: path (proxy: through the forwarder; kernel: rewritten\n"
	  "at connect, read from the kernel's TCP sockets, eBPF engine only), pod,\n"
	  "original destination, service, upstream, state, bytes each way, age.\n\n" AGENT_OPTS "Exit status: 0, 1 when no agent answers, 2 usage.\n" },
	{ "endpoints", cmd_endpoints, "endpoints                   each endpoint: service, address, level, path, health and why",
	  "Each endpoint of each service port: its service and VIP, address, priority\n"
	  "level, path (kernel or proxy), health (healthy, unhealthy, or untracked for\n"
	  "DNS names and unix sockets), why and for how long, and the kernel path's\n"
	  "connections opened and connects failed to it.\n\n" AGENT_OPTS
	  "Exit status: 0, 1 when no agent answers, 2 usage.\n" },
	{ "stats", cmd_stats, "stats                       counters",
	  "The agent's counters: connections, refusals by reason, bytes, TLS, DNS,\n"
	  "and the BPF programs' counters.\n\n" AGENT_OPTS
	  "Exit status: 0, 1 when no agent answers, 2 usage.\n" },
	{ "get", cmd_get, "get                         the agent's config, rendered",
	  "The config the agent runs on, as render -o json prints it.\n\n" AGENT_OPTS
	  "Exit status: 0, 1 when no agent answers, 2 usage.\n" },
	{ "dns", cmd_dns, "dns lookup NAME [--mesh M] [--type A|AAAA]  what a pod of mesh M is told for NAME",
	  "Ask the agent's DNS responder what it answers a pod of mesh M for NAME: a VIP\n"
	  "for a generated hostname of the mesh, else that the query goes to the pod's\n"
	  "own resolver.\n\n"
	  "  --mesh M           default: default\n"
	  "  --type A|AAAA      default: A\n\n" AGENT_OPTS
	  "Exit status: 0, 1 when no agent answers, 2 usage.\n" },
	{ "reload", cmd_reload, "reload                      re-read the config directory now",
	  "Re-read the agent's --config-dir now (it also does on change and on SIGHUP);\n"
	  "a broken config is reported and the last good one stays in force.\n\n" AGENT_OPTS
	  "Exit status: 0 reloaded, 1 the config has problems or no agent answers, 2 usage.\n" },
	{ "iptables", cmd_iptables,
	  "iptables render|install|uninstall|verify [--netns PATH] [--port P] [--mark M] [--exclude-port P] [--exclude-cidr C] [--exclude-uid U] [--vip-cidr C] [--no-capture-all] [--dns-port P] [--ipv6]",
	  "The iptables engine by hand. render prints the rule set (no root needed);\n"
	  "install, uninstall and verify act in the pod's netns (root).\n\n"
	  "  --netns PATH        the pod's network namespace (install, uninstall, verify)\n"
	  "  --port P            the listener's port (default 15001)\n"
	  "  --mark M            the agent's SO_MARK: its sockets are left alone\n"
	  "  --exclude-port P, --exclude-cidr C, --exclude-uid U   left alone (repeatable)\n"
	  "  --vip-cidr C        VIP ranges (default 242.0.0.0/8 and 241.0.0.0/8; repeatable)\n"
	  "  --no-capture-all    capture only the VIP ranges, not every TCP connection\n"
	  "  --dns-port P        send UDP and TCP port 53 to P\n"
	  "  --ipv6              the IPv6 rule set (render)\n"
	  "  --backend nft|legacy  default: the one the netns uses\n\n"
	  "Exit status: 0 done (verify: no drift), 1 failed or drift found, 2 usage.\n" },
	{ "version", cmd_version, "version                     this build: version, commit, library versions",
	  "The version and git commit of this build, and the versions of libbpf,\n"
	  "OpenSSL, libyaml and json-c it runs with. Same as --version.\n" },
	{ "help", do_help, "help [COMMAND]              this text, or a command's",
	  "The list of commands, or one command's help (as COMMAND --help).\n" },
	{ "completion", cmd_completion, "completion bash|zsh         the shell completion script",
	  "Print the bash or zsh completion script, generated from these commands'\n"
	  "options; install.sh installs both.\n\n"
	  "Exit status: 0, 2 usage.\n", true },
	{ NULL, NULL, NULL, NULL },
};

static int do_help(struct cli *c, int argc, char **argv)
{
	if (argc > 1) {
		int r = CLI_EXIT_USAGE;
		const struct cmd *t = cmd_find(c, cli_commands, argv[1], "command", &r);
		if (!t)
			return r;
		cmd_usage(t);
		return CLI_EXIT_OK;
	}
	printf("Usage: meshsplice [--control SOCK] [-o table|json] [--mes-cidr C] [--ms-cidr C] COMMAND [ARGS]\n"
	       "       meshsplice COMMAND --help | --version | --help\n\nCommands:\n");
	for (const struct cmd *t = cli_commands; t->name; t++)
		if (!t->hidden)
			printf("  %s\n", t->help);
	printf("\nCommands may be abbreviated to a unique prefix. The agent's socket defaults to %s.\n"
	       "Exit status: 0 ok, 1 problems found (invalid config, agent error or absent), 2 usage.\n",
	       MS_DEFAULT_CONTROL);
	return CLI_EXIT_OK;
}

const struct option cli_global_opts[] = {
	{ "control", required_argument, NULL, 'c' },
	{ "output", required_argument, NULL, 'o' },
	{ "mes-cidr", required_argument, NULL, 'E' },
	{ "ms-cidr", required_argument, NULL, 'S' },
	{ "version", no_argument, NULL, 'V' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
	struct cli c = { .control = MS_DEFAULT_CONTROL };
	int o;

	/* Options before the command only; the command parses its own. */
	while ((o = getopt_long(argc, argv, "+c:o:hV", cli_global_opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			c.control = optarg;
			break;
		case 'o':
			if (streq(optarg, "json"))
				c.json = true;
			else if (!streq(optarg, "table"))
				return cli_usage(&c, "-o takes table or json, not \"%s\"", optarg);
			break;
		case 'E':
			c.mes_cidr = optarg;
			break;
		case 'S':
			c.ms_cidr = optarg;
			break;
		case 'V':
			ms_version_print(stdout, "meshsplice");
			return CLI_EXIT_OK;
		case 'h':
			return do_help(&c, 0, NULL);
		default:
			return CLI_EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return do_help(&c, 0, NULL), CLI_EXIT_USAGE;
	return cli_dispatch(&c, cli_commands, argc - optind, argv + optind, "command");
}
