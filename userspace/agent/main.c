// SPDX-License-Identifier: MIT
/* meshspliced: the node agent. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "bpf-engine.h"
#include "ctl.h"
#include "log.h"
#include "util.h"
#include "version.h"

/* Uninstalling under a running agent would detach its programs and its
 * pods would go direct: refuse when its engine holds the bpffs directory,
 * or when the agent on --control says it runs on that bpffs (the iptables
 * engine holds no bpffs). true when refused (and said why). */
static bool uninstall_refused(const struct agent_opts *o)
{
	json_object *req = ctl_request(CTL_STATUS), *resp = NULL, *v;
	int r = bpf_engine_in_use(o->bpffs);
	bool same = false;

	if (r > 0) {
		log_error("an agent is running on %s; stop it first, or pass --force to detach its programs anyway",
			  o->bpffs);
		return true;
	}
	if (r < 0)
		log_warn_errno(r, "cannot tell whether an agent uses %s: %m", o->bpffs);
	if (ctl_call(o->control, req, 2000, &resp) == 0 &&
	    json_object_object_get_ex(resp, "bpffs", &v))
		same = streq(json_object_get_string(v), o->bpffs);
	json_object_put(req);
	json_object_put(resp);
	if (same)
		log_error("the agent on %s runs on %s; stop it first, or pass --force", o->control, o->bpffs);
	return same;
}


/* A numeric option: its bounds and the field it sets (2 or 4 bytes). */
struct num_opt {
	int id;
	const char *name;
	unsigned long min, max;
	void *dst;
	size_t size;
	const char *help; /* "ARG  what it does"; its default is read from the field */
	bool hex;
};

enum { O_CONFIG = 256, O_CGROUP, O_ENGINE, O_CONTROL, O_STATE, O_BPFFS, O_PORT, O_MARK, O_MES,
       O_MS, O_ZONE, O_CTO, O_ITO, O_MAXC, O_PIPE, O_NO_NODELAY, O_SOCKBUF, O_PIPE_POOL, O_EPOLL_BATCH,
       O_ACCEPT_BATCH, O_DNS, O_LOG, O_UNINSTALL, O_HELP, O_VERSION, O_METRICS,
       O_NO_DNS, O_DNS_PORT, O_DNS_TTL, O_DNS_TIMEOUT, O_DRAIN, O_HCTO, O_DATAPATH, O_DNS_UPSTREAM, O_MAXC_POD, O_FORCE,
       O_GLOO_CIDR, O_GLOO_MESH, O_HEALTH_INT, O_HEALTH_TO, O_HEALTH_DOWN, O_HEALTH_UP, O_HEALTH_EJECT, O_KTLS, O_LOG_FORMAT,
       O_METRICS_REMOTE };

/* Every default, written once: usage() prints them from here. */
static void opts_default(struct agent_opts *o)
{
	*o = (struct agent_opts){
		.engine = "auto",
		.control = MS_DEFAULT_CONTROL,
		.state_dir = MS_DEFAULT_STATE_DIR,
		.bpffs = MS_DEFAULT_BPFFS,
		.mark = MS_DEFAULT_MARK,
		.listen_port = MS_DEFAULT_LISTEN_PORT,
		.pipe_size = 524288,
		.pipe_pool = 256,
		.epoll_batch = 256,
		.connect_timeout_ms = 5000,
		.idle_timeout_ms = 3600000,
		.max_conns = 65536,
		.dns_refresh_ms = 30000,
		.dns_port = MS_DEFAULT_DNS_PORT,
		.dns_ttl = 30,
		.dns_timeout_ms = 5000,
		.drain_timeout_ms = 30000,
		.halfclose_timeout_ms = 300000,
		.health_interval_ms = 5000,
		.health_timeout_ms = 1000,
		.health_unhealthy = 3,
		.health_healthy = 2,
		.health_eject_ms = 10000,
	};
	cfg_opts_init(&o->cfg);
}

#define NUM(id, name, min, max, field, help) { id, name, min, max, &o->field, sizeof(o->field), help, false }

/* The numeric options of o, in the order usage() lists them. */
static size_t num_table(struct agent_opts *o, struct num_opt *t)
{
	const struct num_opt v[] = {
		NUM(O_PORT, "--listen-port", 1, 65535, listen_port, "N  per-pod listener port"),
		{ O_MARK, "--mark", 1, 0xffffffffUL, &o->mark, sizeof(o->mark), "N  SO_MARK of the agent's own sockets", true },
		NUM(O_CTO, "--connect-timeout", 1, 600000, connect_timeout_ms, "MS  upstream connect timeout, all endpoints"),
		NUM(O_ITO, "--idle-timeout", 0, 86400000UL * 7, idle_timeout_ms, "MS  close idle connections (0: never)"),
		NUM(O_HCTO, "--halfclose-timeout", 0, 86400000UL, halfclose_timeout_ms,
		    "MS  close a half-closed connection silent this long (0: never)"),
		NUM(O_MAXC, "--max-conns", 0, 10000000, max_conns, "N  connection limit"),
		NUM(O_MAXC_POD, "--max-conns-per-pod", 0, 10000000, max_conns_per_pod,
		    "N  one pod's limit (0: max-conns split among enabled pods, at least 64)"),
		NUM(O_PIPE, "--pipe-size", 0, 1u << 30, pipe_size, "BYTES  splice pipe size"),
		NUM(O_SOCKBUF, "--sockbuf", 0, 1u << 30, sockbuf,
		    "BYTES  fixed SO_RCVBUF/SO_SNDBUF for proxied sockets (0: autotuning)"),
		NUM(O_PIPE_POOL, "--pipe-pool", 0, 65536, pipe_pool, "N  empty pipes kept for reuse (0: a pipe per transfer)"),
		NUM(O_EPOLL_BATCH, "--epoll-batch", 1, 4096, epoll_batch, "N  events taken per epoll_wait"),
		NUM(O_ACCEPT_BATCH, "--accept-batch", 0, 65536, accept_batch,
		    "N  connections accepted per wake-up (0: until the backlog is empty)"),
		NUM(O_DNS, "--dns-refresh", 100, 86400000UL, dns_refresh_ms, "MS  re-resolve endpoint names"),
		NUM(O_DNS_PORT, "--dns-port", 1, 65535, dns_port, "N  the DNS responder's port on each pod's loopback"),
		NUM(O_DNS_TTL, "--dns-ttl", 0, 86400, dns_ttl, "S  TTL of mesh hostname answers"),
		NUM(O_DNS_TIMEOUT, "--dns-timeout", 100, 60000, dns_timeout_ms, "MS  wait for the pod's resolver"),
		NUM(O_DRAIN, "--drain-timeout", 0, 3600000UL, drain_timeout_ms,
		    "MS  on SIGTERM or a hand-over, let connections finish"),
		NUM(O_HEALTH_INT, "--health-interval", 0, 3600000UL, health_interval_ms,
		    "MS  TCP connect probes of each endpoint, from a pod (0: none; passive checks only)"),
		NUM(O_HEALTH_TO, "--health-timeout", 1, 600000, health_timeout_ms, "MS  a probe's connect timeout"),
		NUM(O_HEALTH_DOWN, "--health-unhealthy", 1, 1000, health_unhealthy,
		    "N  consecutive failed connects or probes that make an endpoint unhealthy"),
		NUM(O_HEALTH_UP, "--health-healthy", 1, 1000, health_healthy,
		    "N  consecutive successes that make it healthy again"),
		NUM(O_HEALTH_EJECT, "--health-eject", 1, 3600000UL, health_eject_ms,
		    "MS  without probes: how long a passively failed endpoint stays out"),
	};
	memcpy(t, v, sizeof(v));
	return ARRAY_SIZE(v);
}

#define MAX_NUMS 32

static unsigned long num_get(const struct num_opt *n)
{
	if (n->size == sizeof(uint16_t)) {
		uint16_t u;
		memcpy(&u, n->dst, sizeof(u));
		return u;
	}
	uint32_t u;
	memcpy(&u, n->dst, sizeof(u));
	return u;
}

static void usage(void)
{
	struct agent_opts d;
	struct num_opt nums[MAX_NUMS];
	size_t n;
	char cidr_mes[64], cidr_ms[64], cidr_gloo[64];

	opts_default(&d);
	n = num_table(&d, nums);
	printf("Usage: meshspliced [OPTIONS]\n"
	       "  --config-dir DIR       YAML resources (default: the embedded default, one Mesh \"default\")\n"
	       "  --cgroup PATH          cgroup v2 to attach to (default: the unified hierarchy's root)\n"
	       "  --engine bpf|iptables|auto  steering engine (default: %s: bpf where the kernel can)\n"
	       "  --datapath auto|proxy  auto: plaintext VIPs with IP endpoints and allowed passthrough are\n"
	       "                         served in the kernel (eBPF engine); proxy: every connection through\n"
	       "                         the forwarder (default: %s)\n"
	       "  --control SOCK         control socket (default: %s)\n"
	       "  --state-dir DIR        pod registry and VIPs (default: %s)\n"
	       "  --bpffs DIR            pinned maps and links (default: %s)\n"
	       "  --mes-cidr CIDR        MeshExternalService VIPs (default: %s)\n"
	       "  --ms-cidr CIDR         MeshService VIPs (default: %s)\n"
	       "  --zone NAME            {{ .Zone }} in hostname templates (default: %s)\n"
	       "  --gloo-vip-cidr CIDR   Gloo ExternalService hosts' VIPs (default: %s)\n"
	       "  --gloo-mesh MESH       mesh of a Gloo resource without the kuma.io/mesh label (default: %s)\n",
	       d.engine, d.datapath_proxy ? "proxy" : "auto", d.control, d.state_dir, d.bpffs, cidr_fmt(&d.cfg.mes_cidr, cidr_mes, sizeof(cidr_mes)),
	       cidr_fmt(&d.cfg.ms_cidr, cidr_ms, sizeof(cidr_ms)), d.cfg.zone,
	       cidr_fmt(&d.cfg.gloo_cidr, cidr_gloo, sizeof(cidr_gloo)), d.cfg.gloo_mesh);
	for (size_t i = 0; i < n; i++) {
		const char *sp = strstr(nums[i].help, "  ");
		char arg[32];
		snprintf(arg, sizeof(arg), "%s %.*s", nums[i].name, (int)(sp - nums[i].help), nums[i].help);
		printf(nums[i].hex ? "  %-22s %s (default: 0x%lx)\n" : "  %-22s %s (default: %lu)\n", arg, sp + 2,
		       num_get(&nums[i]));
	}
	printf("  --no-nodelay           leave Nagle on for proxied sockets (default: TCP_NODELAY)\n"
	       "  --ktls auto|off        auto: TLS to endpoints goes to kernel TLS, bytes spliced, where\n"
	       "                         the kernel and the cipher allow (default: auto)\n"
	       "  --no-dns               capture no pod's DNS (mesh hostnames then do not resolve)\n"
	       "  --dns-upstream IP,...  resolvers any pod may query when its mesh has passthrough off, beside\n"
	       "                         its own (enable --dns-server) (default: the node's resolv.conf)\n"
	       "  --log-level LEVEL      error, warn, info, debug (default: info)\n"
	       "  --log-format text|json text, or one JSON object per line: ts, level, msg (default: text;\n"
	       "                         under journald no timestamp, a <priority> prefix)\n"
	       "  --metrics HOST:PORT    Prometheus metrics, /healthz and /readyz on a loopback address\n"
	       "                         (default: off)\n"
	       "  --metrics-allow-remote let --metrics take a non-loopback address (Kubernetes scraping)\n"
	       "  --uninstall            detach the programs, remove every pin, exit; refused\n"
	       "                         while an agent runs on the same --bpffs\n"
	       "  --force                with --uninstall: even then (its pods go direct)\n"
	       "  --version              version, commit and library versions\n"
	       "Exit status: 0 ok (a drained stop included), 1 failed or refused, 2 usage.\n");
}

static int set_num(const struct num_opt *n, const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || !*s || v < n->min || v > n->max || s[0] == '-') {
		fprintf(stderr, "meshspliced: %s \"%s\" is not a number in %lu..%lu\n", n->name, s, n->min, n->max);
		return -EINVAL;
	}
	if (n->size == sizeof(uint16_t)) {
		uint16_t u = (uint16_t)v;
		memcpy(n->dst, &u, sizeof(u));
	} else {
		uint32_t u = (uint32_t)v; /* unsigned, uint32_t or an int whose max fits */
		memcpy(n->dst, &u, sizeof(u));
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config-dir", required_argument, NULL, O_CONFIG },
		{ "cgroup", required_argument, NULL, O_CGROUP },
		{ "engine", required_argument, NULL, O_ENGINE },
		{ "datapath", required_argument, NULL, O_DATAPATH },
		{ "dns-upstream", required_argument, NULL, O_DNS_UPSTREAM },
		{ "control", required_argument, NULL, O_CONTROL },
		{ "state-dir", required_argument, NULL, O_STATE },
		{ "bpffs", required_argument, NULL, O_BPFFS },
		{ "listen-port", required_argument, NULL, O_PORT },
		{ "mark", required_argument, NULL, O_MARK },
		{ "mes-cidr", required_argument, NULL, O_MES },
		{ "ms-cidr", required_argument, NULL, O_MS },
		{ "zone", required_argument, NULL, O_ZONE },
		{ "gloo-vip-cidr", required_argument, NULL, O_GLOO_CIDR },
		{ "gloo-mesh", required_argument, NULL, O_GLOO_MESH },
		{ "connect-timeout", required_argument, NULL, O_CTO },
		{ "idle-timeout", required_argument, NULL, O_ITO },
		{ "max-conns", required_argument, NULL, O_MAXC },
		{ "max-conns-per-pod", required_argument, NULL, O_MAXC_POD },
		{ "pipe-size", required_argument, NULL, O_PIPE },
		{ "no-nodelay", no_argument, NULL, O_NO_NODELAY },
		{ "sockbuf", required_argument, NULL, O_SOCKBUF },
		{ "pipe-pool", required_argument, NULL, O_PIPE_POOL },
		{ "epoll-batch", required_argument, NULL, O_EPOLL_BATCH },
		{ "accept-batch", required_argument, NULL, O_ACCEPT_BATCH },
		{ "dns-refresh", required_argument, NULL, O_DNS },
		{ "no-dns", no_argument, NULL, O_NO_DNS },
		{ "drain-timeout", required_argument, NULL, O_DRAIN },
		{ "halfclose-timeout", required_argument, NULL, O_HCTO },
		{ "dns-port", required_argument, NULL, O_DNS_PORT },
		{ "dns-ttl", required_argument, NULL, O_DNS_TTL },
		{ "dns-timeout", required_argument, NULL, O_DNS_TIMEOUT },
		{ "health-interval", required_argument, NULL, O_HEALTH_INT },
		{ "health-timeout", required_argument, NULL, O_HEALTH_TO },
		{ "health-unhealthy", required_argument, NULL, O_HEALTH_DOWN },
		{ "health-healthy", required_argument, NULL, O_HEALTH_UP },
		{ "health-eject", required_argument, NULL, O_HEALTH_EJECT },
		{ "log-level", required_argument, NULL, O_LOG },
		{ "log-format", required_argument, NULL, O_LOG_FORMAT },
		{ "metrics", required_argument, NULL, O_METRICS },
		{ "metrics-allow-remote", no_argument, NULL, O_METRICS_REMOTE },
		{ "uninstall", no_argument, NULL, O_UNINSTALL },
		{ "force", no_argument, NULL, O_FORCE },
		{ "ktls", required_argument, NULL, O_KTLS },
		{ "help", no_argument, NULL, O_HELP },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct agent_opts o;
	_cleanup_free_ char *cgroup = NULL, *self_cgroup = NULL;
	bool uninstall = false, force = false;
	struct num_opt nums[MAX_NUMS];
	size_t n_nums;
	int c;

	opts_default(&o);
	n_nums = num_table(&o, nums);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_CONFIG: o.config_dir = optarg; break;
		case O_CGROUP: o.cgroup = optarg; break;
		case O_ENGINE:
			if (!streq(optarg, "bpf") && !streq(optarg, "auto") && !streq(optarg, "iptables")) {
				fprintf(stderr, "meshspliced: --engine takes bpf, iptables or auto\n");
				return 2;
			}
			o.engine = optarg;
			break;
		case O_DATAPATH:
			if (!streq(optarg, "auto") && !streq(optarg, "proxy")) {
				fprintf(stderr, "meshspliced: --datapath takes auto or proxy\n");
				return 2;
			}
			o.datapath_proxy = streq(optarg, "proxy");
			break;
		case O_DNS_UPSTREAM: {
			_cleanup_free_ char *list = xstrdup(optarg);
			struct ms_addr x;
			for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ","))
				if (addr_parse(tok, &x) < 0) {
					fprintf(stderr, "meshspliced: --dns-upstream \"%s\": \"%s\" is not an IP address\n", optarg, tok);
					return 2;
				}
			o.dns_upstream = optarg;
			break;
		}
		case O_CONTROL: o.control = optarg; break;
		case O_STATE: o.state_dir = optarg; break;
		case O_BPFFS: o.bpffs = optarg; break;
		case O_MES:
		case O_MS:
			if (cidr_parse(optarg, c == O_MES ? &o.cfg.mes_cidr : &o.cfg.ms_cidr) < 0) {
				fprintf(stderr, "meshspliced: %s \"%s\" is not a CIDR\n",
					c == O_MES ? "--mes-cidr" : "--ms-cidr", optarg);
				return 2;
			}
			break;
		case O_ZONE: o.cfg.zone = optarg; break;
		case O_GLOO_CIDR:
			if (cidr_parse(optarg, &o.cfg.gloo_cidr) < 0) {
				fprintf(stderr, "meshspliced: --gloo-vip-cidr \"%s\" is not a CIDR\n", optarg);
				return 2;
			}
			break;
		case O_GLOO_MESH:
			o.cfg.gloo_mesh = optarg; /* a mesh that does not exist is a config error */
			break;
		case O_NO_NODELAY:
			o.no_nodelay = true;
			break;
		case O_NO_DNS: o.no_dns = true; break;
		case O_KTLS:
			if (!streq(optarg, "auto") && !streq(optarg, "off")) {
				fprintf(stderr, "meshspliced: --ktls takes auto or off\n");
				return 2;
			}
			tls_ktls_set(streq(optarg, "auto"));
			break;
		case O_LOG: {
			enum log_level l;
			if (log_parse_level(optarg, &l) < 0) {
				fprintf(stderr, "meshspliced: --log-level takes error, warn, info or debug\n");
				return 2;
			}
			log_set_level(l);
			break;
		}
		case O_LOG_FORMAT: {
			enum log_format f;
			if (log_parse_format(optarg, &f) < 0) {
				fprintf(stderr, "meshspliced: --log-format takes text or json\n");
				return 2;
			}
			log_set_format(f);
			break;
		}
		case O_UNINSTALL: uninstall = true; break;
		case O_FORCE: force = true; break;
		case O_METRICS: o.metrics = optarg; break;
		case O_METRICS_REMOTE: o.metrics_allow_remote = true; break;
		case O_VERSION: ms_version_print(stdout, "meshspliced"); return 0;
		case 'h':
		case O_HELP: usage(); return 0;
		default: {
			size_t i = 0;
			while (i < n_nums && nums[i].id != c)
				i++;
			if (i == n_nums) {
				usage();
				return 2;
			}
			if (set_num(&nums[i], optarg) < 0)
				return 2;
			break;
		}
		}
	}
	if (optind < argc) {
		fprintf(stderr, "meshspliced: unexpected argument \"%s\"\n", argv[optind]);
		return 2;
	}
	if (!o.no_dns && o.dns_port == o.listen_port) {
		fprintf(stderr, "meshspliced: --dns-port and --listen-port are both %u; they must differ\n", o.dns_port);
		return 2;
	}
	if (force && !uninstall) {
		fprintf(stderr, "meshspliced: --force goes with --uninstall\n");
		return 2;
	}
	if (uninstall)
		return (!force && uninstall_refused(&o)) || agent_uninstall(&o) < 0 ? 1 : 0;
	if (o.metrics) {
		/* every option is checked before anything is attached or bound */
		struct sockaddr_storage ss;
		socklen_t len;
		char *err = NULL;
		if (agent_parse_metrics(o.metrics, o.metrics_allow_remote, &ss, &len, &err) < 0) {
			fprintf(stderr, "meshspliced: %s\n", err);
			free(err);
			return 2;
		}
	}
	if (!o.cgroup) {
		int r = agent_find_cgroup2(&cgroup);
		if (r < 0) {
			log_error_errno(r, "no cgroup v2 hierarchy in /proc/self/mountinfo: %m (pass --cgroup)");
			return 1;
		}
		o.cgroup = cgroup;
	}
	{
		/* Without it the bpf engine refuses to start, the iptables one
		 * exempts by the mark alone. */
		int r = agent_self_cgroup(&self_cgroup, &o.self_cgroup_id);
		if (r < 0)
			log_warn_errno(r, "the agent's own cgroup v2 (/proc/self/cgroup): %m");
		else if (!self_cgroup)
			log_warn("the agent's cgroup path has characters an iptables rule cannot take: "
				 "under the iptables engine its sockets are told by their mark alone");
		else if (streq(self_cgroup, "/"))
			log_warn("the agent runs in the root cgroup: every task there counts as the agent, "
				 "and under the iptables engine every cgroup does (xt_cgroup matches descendants); "
				 "run it in a cgroup of its own");
		o.self_cgroup = self_cgroup;
	}
	return agent_run(&o) < 0 ? 1 : 0;
}
