// SPDX-License-Identifier: MIT
/* meshsplice iptables render|install|uninstall|verify: the iptables engine
 * by hand, for review (render), repair and golden tests. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "netns.h"
#include "tproxy.h"
#include "util.h"

static int num(struct cli *c, const char *opt, const char *s, unsigned long max, unsigned long *ret)
{
	char *end;
	unsigned long v = strtoul(s, &end, 0);

	if (*end || !*s || v > max || s[0] == '-')
		return cli_usage(c, "%s \"%s\" is not a number in 0..%lu", opt, s, max);
	*ret = v;
	return 0;
}

int cmd_iptables(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "netns", required_argument, NULL, 'n' },
		{ "mark", required_argument, NULL, 'm' },
		{ "port", required_argument, NULL, 'p' },
		{ "exclude-port", required_argument, NULL, 'P' },
		{ "exclude-cidr", required_argument, NULL, 'C' },
		{ "exclude-uid", required_argument, NULL, 'U' },
		{ "vip-cidr", required_argument, NULL, 'V' },
		{ "no-capture-all", no_argument, NULL, 'N' },
		{ "dns-port", required_argument, NULL, 'D' },
		{ "ipv6", no_argument, NULL, '6' },
		{ "backend", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 },
	};
	struct tp_opts o;
	const char *verb, *netns = NULL, *backend = NULL;
	bool v6 = false, vip_given = false;
	unsigned long v = 0; /* gcc -O3 cannot see that num() sets it before each read */
	int opt;

	if (argc < 2)
		return cli_usage(c, "iptables needs render, install, uninstall or verify");
	verb = argv[1];
	tp_opts_init(&o);
	optind = 2;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'n': netns = optarg; break;
		case 'm':
			if (num(c, "--mark", optarg, 0xffffffffUL, &v))
				return CLI_EXIT_USAGE;
			o.mark = (uint32_t)v;
			break;
		case 'p':
			if (num(c, "--port", optarg, 65535, &v))
				return CLI_EXIT_USAGE; /* v untouched: num() said why */
			if (v == 0)
				return cli_usage(c, "--port 0 is not a port");
			o.listen_port = (uint16_t)v;
			break;
		case 'P':
			if (o.n_excl_ports >= TP_MAX_ITEMS || num(c, "--exclude-port", optarg, 65535, &v) || v == 0)
				return cli_usage(c, "--exclude-port \"%s\": a port 1-65535, at most %d", optarg, TP_MAX_ITEMS);
			o.excl_ports[o.n_excl_ports++] = (uint16_t)v;
			break;
		case 'U':
			if (o.n_excl_uids >= TP_MAX_ITEMS || num(c, "--exclude-uid", optarg, 0xfffffffeUL, &v))
				return cli_usage(c, "--exclude-uid \"%s\": a uid, at most %d", optarg, TP_MAX_ITEMS);
			o.excl_uids[o.n_excl_uids++] = (uint32_t)v;
			break;
		case 'C':
		case 'V': {
			struct ms_cidr *arr = opt == 'C' ? o.excl_cidrs : o.vip_cidrs;
			size_t *n = opt == 'C' ? &o.n_excl_cidrs : &o.n_vip_cidrs;
			if (opt == 'V' && !vip_given) {
				o.n_vip_cidrs = 0;
				vip_given = true;
			}
			if (*n >= TP_MAX_ITEMS || cidr_parse(optarg, &arr[*n]) < 0)
				return cli_usage(c, "%s \"%s\" is not address/prefix", opt == 'C' ? "--exclude-cidr" : "--vip-cidr", optarg);
			(*n)++;
			break;
		}
		case 'N': o.capture_all = false; break;
		case 'D':
			if (num(c, "--dns-port", optarg, 65535, &v) || v == 0)
				return cli_usage(c, "--dns-port \"%s\" is not a port", optarg);
			o.dns_port = (uint16_t)v;
			break;
		case '6': v6 = true; break;
		case 'b': backend = optarg; break;
		default: return CLI_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage(c, "unexpected argument \"%s\"", argv[optind]);
	if (!vip_given) {
		cidr_parse("242.0.0.0/8", &o.vip_cidrs[0]);
		cidr_parse("241.0.0.0/8", &o.vip_cidrs[1]);
		o.n_vip_cidrs = 2;
	}
	if (streq(verb, "render")) {
		char *r = tp_rules_render(&o, v6 ? AF_INET6 : AF_INET);
		fputs(r, stdout);
		free(r);
		return 0;
	}
	if (!streq(verb, "install") && !streq(verb, "uninstall") && !streq(verb, "verify"))
		return cli_usage(c, "unknown iptables command \"%s\" (render, install, uninstall, verify)", verb);
	if (!netns)
		return cli_usage(c, "iptables %s needs --netns PATH", verb);
	_cleanup_close_ int fd = netns_open(netns);
	if (fd < 0)
		return cli_error(c, "netns %s: %s", netns, strerror(-fd));
	enum tp_backend b;
	if (backend) {
		if (streq(backend, "nft"))
			b = TP_BACKEND_NFT;
		else if (streq(backend, "legacy"))
			b = TP_BACKEND_LEGACY;
		else
			return cli_usage(c, "--backend takes nft or legacy");
	} else if (tp_detect_backend(fd, &b) < 0) {
		return cli_error(c, "no iptables tools found (iptables-nft-save, iptables-legacy-save)");
	}
	char *err = NULL;
	int r = streq(verb, "install") ? tp_install(fd, b, &o, &err) :
		streq(verb, "uninstall") ? tp_uninstall(fd, b, &err) : tp_verify(fd, b, &o, &err);
	if (r < 0) {
		r = cli_error(c, "iptables %s in %s (%s): %s", verb, netns, b == TP_BACKEND_NFT ? "nft" : "legacy",
			      err ? err : strerror(-r));
		free(err);
		return r;
	}
	if (!c->json)
		printf("%s: ok (%s back end)\n", verb, b == TP_BACKEND_NFT ? "nft" : "legacy");
	else
		printf("{\"ok\": true, \"backend\": \"%s\"}\n", b == TP_BACKEND_NFT ? "nft" : "legacy");
	return 0;
}
