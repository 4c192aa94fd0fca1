// SPDX-License-Identifier: MIT
#include "bpf-engine.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "log.h"
#include "meshsplice.skel.h"
#include "netns.h"
#include "steer.h"
#include "util.h"

/* A service port on the kernel path, as last written: its endpoint set
 * stays while the endpoints do not change. */
struct eps_cur {
	struct ms_svc_key key;
	uint32_t eps_id;
	uint16_t n;
	uint64_t digest;
};

struct bpf_engine {
	struct meshsplice_bpf *skel;
	int ncpu;
	bool node_proxy;
	uint32_t next_eps_id;
	struct eps_cur *cur; /* sorted by key */
	size_t n_cur;
	uint32_t *retired; /* sets no service names since the last sync: deleted at the next */
	size_t n_retired;
	int lock_fd; /* the bpffs directory, flock()ed shared while we run */
	bpf_engine_health_fn up; /* endpoint health (NULL: every endpoint healthy) */
	void *up_ctx;
	/* the snapshot ms_pass was written from: health changes sync the
	 * services again with the same one, which has the same matches. A
	 * reference, so that no later snapshot can have its address. */
	struct ms_config *pass_cfg;
	struct bpf_link *iter; /* the TCP socket iterator (NULL: this kernel has none for us) */
};

struct hook {
	const char *name;
	enum bpf_attach_type type;
};

static const struct hook hooks[] = {
	{ "connect4", BPF_CGROUP_INET4_CONNECT },
	{ "connect6", BPF_CGROUP_INET6_CONNECT },
	{ "sockops", BPF_CGROUP_SOCK_OPS },
	{ "getpeername4", BPF_CGROUP_INET4_GETPEERNAME },
	{ "getpeername6", BPF_CGROUP_INET6_GETPEERNAME },
	{ "sendmsg4", BPF_CGROUP_UDP4_SENDMSG },
	{ "sendmsg6", BPF_CGROUP_UDP6_SENDMSG },
	{ "recvmsg4", BPF_CGROUP_UDP4_RECVMSG },
	{ "recvmsg6", BPF_CGROUP_UDP6_RECVMSG },
	{ "setsockopt", BPF_CGROUP_SETSOCKOPT },
	{ "bind4", BPF_CGROUP_INET4_BIND },
	{ "bind6", BPF_CGROUP_INET6_BIND },
	{ "egress", BPF_CGROUP_INET_EGRESS },
};

static struct bpf_program *hook_prog(struct meshsplice_bpf *s, size_t i)
{
	struct bpf_program *p[] = { s->progs.ms_connect4, s->progs.ms_connect6, s->progs.ms_sockops,
				    s->progs.ms_getpeername4, s->progs.ms_getpeername6, s->progs.ms_sendmsg4,
				    s->progs.ms_sendmsg6, s->progs.ms_recvmsg4, s->progs.ms_recvmsg6,
				    s->progs.ms_setsockopt, s->progs.ms_bind4, s->progs.ms_bind6, s->progs.ms_egress };
	_Static_assert(ARRAY_SIZE(p) == ARRAY_SIZE(hooks), "one program per hook");
	return p[i];
}

static const char *const counter_names[MS_CNT__MAX] = {
	[MS_CNT_REDIRECTED] = "redirected",
	[MS_CNT_SKIP_NOT_TCP] = "skip_not_tcp",
	[MS_CNT_SKIP_POD_OFF] = "skip_pod_not_enabled",
	[MS_CNT_SKIP_MARK] = "skip_agent_mark",
	[MS_CNT_SKIP_LOCAL] = "skip_loopback",
	[MS_CNT_SKIP_EXCL_PORT] = "skip_excluded_port",
	[MS_CNT_SKIP_EXCL_CIDR] = "skip_excluded_cidr",
	[MS_CNT_DENY_PASSTHROUGH] = "deny_passthrough_off",
	[MS_CNT_DENY_EXTERNAL] = "deny_external_forbidden",
	[MS_CNT_NO_STORAGE] = "no_socket_storage",
	[MS_CNT_REKEYED] = "rekeyed",
	[MS_CNT_REKEY_FAIL] = "rekey_failed",
	[MS_CNT_PEERNAME] = "getpeername_rewritten",
	[MS_CNT_DNS_REDIRECTED] = "dns_redirected",
	[MS_CNT_DNS_REPLY_REWRITTEN] = "dns_reply_source_rewritten",
	[MS_CNT_FAIL_OPEN] = "fail_open_direct",
	[MS_CNT_KERNEL] = "kernel_path",
	[MS_CNT_KERNEL_NO_EP] = "kernel_path_no_endpoint",
	[MS_CNT_KERNEL_FALLBACK] = "kernel_path_fallback",
	[MS_CNT_PASSTHROUGH] = "passthrough_direct",
	[MS_CNT_DENY_SOCKOPT] = "deny_sockopt_reroute",
	[MS_CNT_DENY_BIND] = "deny_bind_agent_port",
	[MS_CNT_DENY_NO_LISTENER] = "deny_no_listener",
	[MS_CNT_FORGED_MARK] = "forged_agent_mark",
	[MS_CNT_DNS_MAP_FAIL] = "deny_dns_map_full",
	[MS_CNT_DENY_PKT_REROUTE] = "deny_packet_rerouted",
	[MS_CNT_KERNEL_UNHEALTHY] = "kernel_path_unhealthy",
	[MS_CNT_KSTAT_FULL] = "kernel_path_stats_full",
	[MS_CNT_PASS_MATCH] = "passthrough_match",
	[MS_CNT_PASS_DOMAIN] = "passthrough_domain_to_proxy",
	[MS_CNT_DENY_PASS_MATCH] = "deny_passthrough_no_match",
};

const char *bpf_counter_name(int idx)
{
	return idx >= 0 && idx < MS_CNT__MAX ? counter_names[idx] : "?";
}

static bool on_bpffs(const char *path)
{
	struct statfs sf;
	return statfs(path, &sf) == 0 && sf.f_type == BPF_FS_MAGIC;
}

/* dir must live on a BPF filesystem; the conventional /sys/fs/bpf is mounted
 * when a node has not done it (as systemd normally does). */
static int ensure_dir(const char *dir)
{
	_cleanup_free_ char *parent = xstrdup(dir);
	char *slash = strrchr(parent, '/');

	if (slash && slash != parent)
		*slash = '\0';
	if (!on_bpffs(parent)) {
		if (streq(parent, "/sys/fs/bpf")) {
			if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") < 0)
				return log_error_errno(errno, "mount bpffs at /sys/fs/bpf: %m");
			log_info("mounted a BPF filesystem at /sys/fs/bpf");
		} else {
			log_error("%s is not on a BPF filesystem (mount -t bpf bpf %s)", parent, parent);
			return -ENOTSUP;
		}
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return log_error_errno(errno, "mkdir %s: %m", dir);
	return 0;
}

static uint64_t cgroup_id(int cg_fd)
{
	struct stat st;
	/* On cgroup2 the directory's inode number is the cgroup id. */
	return fstat(cg_fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* The egress check needs bpf_get_netns_cookie() in cgroup_skb programs,
 * which not every kernel has: without it the program is not loaded, and the
 * setsockopt hook alone stands (the compat syscall path stays open; logged). */
static void egress_probe(struct meshsplice_bpf *s)
{
	if (libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SKB, BPF_FUNC_get_netns_cookie, NULL) == 1)
		return;
	bpf_program__set_autoload(s->progs.ms_egress, false);
	log_warn("this kernel has no netns cookie in cgroup_skb programs: packets of enabled pods are not "
		 "checked for source routes and routing headers on the way out, only their setsockopt calls");
}

static int attach_one(struct bpf_engine *e, const char *dir, int cg_fd, size_t i)
{
	struct bpf_program *prog = hook_prog(e->skel, i);
	_cleanup_free_ char *pin = xasprintf("%s/link_%s", dir, hooks[i].name);
	int fd;

	if (!bpf_program__autoload(prog)) {
		unlink(pin); /* an older agent's link for a program this kernel cannot load */
		return 0;
	}
	fd = bpf_obj_get(pin);

	if (fd >= 0) {
		struct bpf_link_info info = { 0 };
		uint32_t len = sizeof(info);

		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
		    info.cgroup.cgroup_id == cgroup_id(cg_fd)) {
			int r = bpf_link_update(fd, bpf_program__fd(prog), NULL);
			close(fd);
			if (r < 0)
				return log_error_errno(errno, "update pinned link %s: %m", pin);
			log_debug("reused pinned link %s with the new program", pin);
			return 0;
		}
		/* Pinned for another cgroup (or unreadable): replace it. */
		close(fd);
		unlink(pin);
		log_info("pinned link %s belonged to another cgroup; re-attaching", pin);
	}
	struct bpf_link *link = bpf_program__attach_cgroup(prog, cg_fd);
	if (!link)
		return log_error_errno(errno, "attach %s to the cgroup: %m", hooks[i].name);
	if (bpf_link__pin(link, pin) < 0) {
		int r = -errno;
		bpf_link__destroy(link);
		return log_error_errno(r, "pin %s: %m", pin);
	}
	bpf_link__destroy(link); /* the pin holds it */
	return 0;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	static char buf[65536]; /* verifier logs are long; the loop is single-threaded */

	if (level == LIBBPF_DEBUG && log_get_level() < LOG_LVL_DEBUG)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	/* The verifier log comes as one multi-line message: one log line each. */
	for (char *line = buf, *nl; line && *line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		if (*line)
			log_emit(level == LIBBPF_WARN ? LOG_LVL_WARN : LOG_LVL_DEBUG, 0, "libbpf: %s", line);
	}
	return 0;
}

/* iter/tcp programs are relocated against the kernel's own BTF (CO-RE). */
static bool iter_supported(void)
{
	if (access("/sys/kernel/btf/vmlinux", R_OK) == 0)
		return true;
	log_warn("this kernel has no BTF (/sys/kernel/btf/vmlinux): `conns` will not list kernel-path connections");
	return false;
}

/* Open the object, set what the programs read, load it (maps reused from
 * their pins). */
static int skel_load(struct bpf_engine *e, const struct bpf_engine_opts *o, const struct bpf_object_open_opts *oo,
		     bool with_iter)
{
	e->skel = meshsplice_bpf__open_opts(oo);
	if (!e->skel)
		return log_error_errno(errno, "open BPF object: %m");
	e->skel->rodata->ms_agent_mark = o->mark;
	for (size_t i = 0; i < 3 && i < o->n_vip_cidrs; i++) {
		memcpy((void *)e->skel->rodata->ms_vip_net[i], o->vip_cidrs[i].addr.b, 16);
		e->skel->rodata->ms_vip_plen[i] = o->vip_cidrs[i].plen;
	}
	e->skel->rodata->ms_agent_cgroup = o->agent_cgroup_id;
	egress_probe(e->skel);
	if (!with_iter)
		bpf_program__set_autoload(e->skel->progs.ms_iter_tcp, false);
	if (meshsplice_bpf__load(e->skel) < 0)
		return log_error_errno(errno, "load BPF programs (pinned maps in %s): %m", o->bpffs_dir);
	return 0;
}

int bpf_engine_open(const struct bpf_engine_opts *o, struct bpf_engine **ret)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = o->bpffs_dir);
	struct bpf_engine *e;
	_cleanup_close_ int cg_fd = -1;
	int r;

	libbpf_set_print(libbpf_print);
	if ((r = ensure_dir(o->bpffs_dir)) < 0)
		return r;
	cg_fd = open(o->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0)
		return log_error_errno(errno, "open cgroup %s: %m", o->cgroup);
	e = xcalloc(1, sizeof(*e));
	e->ncpu = libbpf_num_possible_cpus();
	/* Shared for the agent's life (two agents during a hand-over hold it
	 * both); `meshspliced --uninstall` asks for it exclusive, so it can tell
	 * a live agent's pins from those a stopped one left. */
	e->lock_fd = open(o->bpffs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (e->lock_fd < 0 || flock(e->lock_fd, LOCK_SH) < 0) {
		r = log_error_errno(errno, "lock %s: %m", o->bpffs_dir);
		goto fail;
	}
	e->node_proxy = o->node_proxy;
	/* earlier layouts' maps: the services (now ms_services) and the kernel
	 * path's counters per endpoint, pod and service (now ms_kstats) */
	static const char *const stale_maps[] = { "ms_svcs", "ms_ep_stats", "ms_pod_stats", "ms_svc_stats" };
	for (size_t i = 0; i < ARRAY_SIZE(stale_maps); i++) {
		char *stale = xasprintf("%s/%s", o->bpffs_dir, stale_maps[i]);
		unlink(stale);
		free(stale);
	}
	if (!o->agent_cgroup_id) {
		r = log_error_errno(ENOENT, "the agent's own cgroup v2 id is unknown: its sockets could not be told from a pod's");
		goto fail;
	}
	/* The socket iterator is only for `conns`: a kernel that cannot load it
	 * (no BTF of its own, older than 5.11) gets the rest without it. A
	 * failed load cannot be tried again on the same object: open it anew. */
	for (bool with_iter = iter_supported();; with_iter = false) {
		if ((r = skel_load(e, o, &oo, with_iter)) == 0)
			break;
		if (!with_iter)
			goto fail;
		log_warn("loading the BPF programs again without the TCP socket iterator: `conns` will not list "
			 "kernel-path connections");
		meshsplice_bpf__destroy(e->skel);
		e->skel = NULL;
	}
	if (bpf_program__autoload(e->skel->progs.ms_iter_tcp)) {
		e->iter = bpf_program__attach_iter(e->skel->progs.ms_iter_tcp, NULL);
		if (!e->iter)
			log_warn("attach the TCP socket iterator: %m; `conns` will not list kernel-path connections");
	}
	for (size_t i = 0; i < ARRAY_SIZE(hooks); i++)
		if ((r = attach_one(e, o->bpffs_dir, cg_fd, i)) < 0)
			goto fail;
	*ret = e;
	return 0;
fail:
	bpf_engine_close(e);
	return r;
}

void bpf_engine_close(struct bpf_engine *e)
{
	if (!e)
		return;
	bpf_link__destroy(e->iter);
	meshsplice_bpf__destroy(e->skel);
	cfg_unref(e->pass_cfg);
	free(e->cur);
	free(e->retired);
	if (e->lock_fd >= 0)
		close(e->lock_fd);
	free(e);
}

int bpf_engine_in_use(const char *dir)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return 0; /* released when fd closes */
	return errno == EWOULDBLOCK ? 1 : -errno;
}

int bpf_engine_uninstall(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int r = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	/* Links first: unpinning them detaches the programs. */
	for (int pass = 0; pass < 2; pass++) {
		rewinddir(d);
		while ((de = readdir(d))) {
			bool link = strncmp(de->d_name, "link_", 5) == 0;
			bool map = strncmp(de->d_name, "ms_", 3) == 0;
			if ((pass == 0 && !link) || (pass == 1 && !map))
				continue;
			if (unlinkat(dirfd(d), de->d_name, 0) < 0)
				r = -errno;
		}
	}
	closedir(d);
	if (rmdir(dir) < 0 && errno != ENOENT)
		r = -errno;
	return r;
}

bool bpf_engine_supported(void)
{
	struct bpf_insn insns[] = {
		{ .code = 0xb7, .dst_reg = 0, .imm = 1 }, /* r0 = 1 */
		{ .code = 0x95 },                          /* exit */
	};
	LIBBPF_OPTS(bpf_prog_load_opts, po, .expected_attach_type = BPF_CGROUP_INET4_CONNECT);
	int fd = bpf_prog_load(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "ms_probe", "GPL", insns, 2, &po);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

int bpf_engine_pod_put(struct bpf_engine *e, uint64_t cookie, const struct ms_pod *pod)
{
	if (bpf_map__update_elem(e->skel->maps.ms_pods, &cookie, sizeof(cookie), pod, sizeof(*pod),
				 BPF_ANY) < 0)
		return -errno;
	return 0;
}

int bpf_engine_pod_del(struct bpf_engine *e, uint64_t cookie)
{
	if (bpf_map__delete_elem(e->skel->maps.ms_pods, &cookie, sizeof(cookie), 0) < 0 &&
	    errno != ENOENT)
		return -errno;
	bpf_engine_excl_set(e, cookie, NULL, 0);
	return 0;
}

int bpf_engine_pod_list(struct bpf_engine *e, uint64_t **ret, size_t *ret_n)
{
	uint64_t key, *prev = NULL, *v = NULL;
	size_t n = 0;

	while (bpf_map__get_next_key(e->skel->maps.ms_pods, prev, &key, sizeof(key)) == 0) {
		v = xrealloc(v, n + 1, sizeof(*v));
		v[n++] = key;
		prev = &v[n - 1];
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int bpf_engine_excl_set(struct bpf_engine *e, uint64_t cookie, const struct ms_cidr *cidrs,
			size_t n)
{
	struct bpf_map *m = e->skel->maps.ms_excl;
	struct ms_excl_key k, next, *prev = NULL;
	struct ms_excl_key *del = NULL;
	size_t n_del = 0;
	uint8_t one = 1;

	/* Drop this pod's entries, then add the new ones. */
	while (bpf_map__get_next_key(m, prev, &next, sizeof(next)) == 0) {
		if (memcmp(next.cookie, &cookie, 8) == 0) {
			del = xrealloc(del, n_del + 1, sizeof(*del));
			del[n_del++] = next;
		}
		k = next;
		prev = &k;
	}
	for (size_t i = 0; i < n_del; i++)
		bpf_map__delete_elem(m, &del[i], sizeof(del[i]), 0);
	free(del);
	for (size_t i = 0; i < n; i++) {
		memset(&k, 0, sizeof(k));
		k.prefixlen = 64u + cidrs[i].plen;
		memcpy(k.cookie, &cookie, 8);
		memcpy(k.addr, cidrs[i].addr.b, 16);
		if (bpf_map__update_elem(m, &k, sizeof(k), &one, 1, BPF_ANY) < 0)
			return -errno;
	}
	return 0;
}

static int svc_key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct ms_svc_key));
}

static int eps_cur_cmp(const void *a, const void *b)
{
	return svc_key_cmp(&((const struct eps_cur *)a)->key, &((const struct eps_cur *)b)->key);
}

static uint64_t eps_digest(const struct ms_ep *v, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	const uint8_t *p = (const uint8_t *)v;

	for (size_t i = 0; i < n * sizeof(*v); i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

/* The endpoints of a kernel-path port, as the programs read them: the
 * healthy ones of the best priority level that has a healthy endpoint (the
 * lower levels serve only while no better endpoint is healthy). None
 * healthy: an empty set, *unhealthy said (connect() is refused at once with
 * ECONNREFUSED, counted apart from a service without endpoints). */
static size_t eps_of(const struct bpf_engine *e, const struct ms_port *p, struct ms_ep **ret, bool *unhealthy)
{
	struct ms_ep *v = xcalloc(p->n_eps ? p->n_eps : 1, sizeof(*v));
	unsigned best = 256;
	size_t n = 0;

	for (size_t i = 0; i < p->n_eps; i++)
		if (p->eps[i].priority < best && (!e->up || e->up(e->up_ctx, &p->eps[i].ip, p->eps[i].port)))
			best = p->eps[i].priority;
	for (size_t i = 0; i < p->n_eps; i++) {
		if (p->eps[i].priority != best || (e->up && !e->up(e->up_ctx, &p->eps[i].ip, p->eps[i].port)))
			continue;
		memcpy(v[n].addr, p->eps[i].ip.b, 16);
		v[n++].port = p->eps[i].port;
	}
	*unhealthy = p->n_eps && !n;
	*ret = v;
	return n;
}

void bpf_engine_health_set(struct bpf_engine *e, bpf_engine_health_fn up, void *ctx)
{
	e->up = up;
	e->up_ctx = ctx;
}

static int ep_cmp(const void *x, const void *y)
{
	const struct ms_ep *a = x, *b = y;
	int d = memcmp(a->addr, b->addr, 16);

	return d ? d : (int)a->port - (int)b->port;
}

/* The members of the pinned set of v, sorted (v->n_eps lookups); NULL when
 * it has none. */
static struct ms_ep *set_read(struct bpf_engine *e, const struct ms_svc *v, size_t *ret_n)
{
	struct ms_ep *set = v->n_eps ? xcalloc(v->n_eps, sizeof(*set)) : NULL;
	size_t n = 0;

	for (uint32_t i = 0; i < v->n_eps; i++) {
		struct ms_ep_key k = { .eps_id = v->eps_id, .idx = i };
		if (bpf_map__lookup_elem(e->skel->maps.ms_endpoints, &k, sizeof(k), &set[n], sizeof(set[n]), 0) == 0)
			n++;
	}
	if (n > 1)
		qsort(set, n, sizeof(*set), ep_cmp);
	*ret_n = n;
	return set;
}

static bool in_set(const struct ms_ep *set, size_t n, const struct ms_endpoint *x)
{
	struct ms_ep key = { .port = x->port };

	memcpy(key.addr, x->ip.b, 16);
	return n && bsearch(&key, set, n, sizeof(*set), ep_cmp);
}

/* A new agent takes the previous one's view of health from the pinned sets:
 * of a kernel-path port's endpoints at or above the set's level, those not
 * in its set were judged down. */
void bpf_engine_health_adopt(struct bpf_engine *e, const struct ms_config *c,
			     void (*down)(void *ctx, const struct ms_addr *addr, uint16_t port), void *ctx)
{
	for (size_t i = 0; i < c->n_svcs; i++) {
		const struct ms_service *s = &c->svcs[i];
		const struct ms_mesh *mesh = cfg_find_mesh(c, s->mesh);
		for (size_t p = 0; mesh && p < s->n_ports; p++) {
			const struct ms_port *sp = &s->ports[p];
			struct ms_svc_key k = { .mesh_id = mesh->id, .port = sp->port };
			struct ms_svc v;
			struct ms_ep *set;
			unsigned level = 256;
			size_t n;
			memcpy(k.vip, s->vip.b, 16);
			if (steer_port_path(c, s, p, e->node_proxy, NULL) != MS_PATH_KERNEL ||
			    bpf_map__lookup_elem(e->skel->maps.ms_services, &k, sizeof(k), &v, sizeof(v), 0) < 0 ||
			    v.path != MS_PATH_KERNEL || (!v.n_eps && !(v.flags & MS_SVC_UNHEALTHY)))
				continue;
			set = set_read(e, &v, &n);
			/* the set's level: that of the best endpoint in it */
			for (size_t j = 0; j < sp->n_eps; j++)
				if (sp->eps[j].priority < level && in_set(set, n, &sp->eps[j]))
					level = sp->eps[j].priority;
			for (size_t j = 0; j < sp->n_eps; j++)
				if (sp->eps[j].priority <= level && !in_set(set, n, &sp->eps[j]))
					down(ctx, &sp->eps[j].ip, sp->eps[j].port);
			free(set);
		}
	}
}

static void del_sets(struct bpf_engine *e, const uint32_t *ids, size_t n)
{
	struct bpf_map *m = e->skel->maps.ms_endpoints;
	struct ms_ep_key k, next, *prev = NULL, *del = NULL;
	size_t n_del = 0;

	if (!n)
		return;
	while (bpf_map__get_next_key(m, prev, &next, sizeof(next)) == 0) {
		for (size_t i = 0; i < n; i++)
			if (ids[i] == next.eps_id) {
				del = xrealloc(del, n_del + 1, sizeof(*del));
				del[n_del++] = next;
				break;
			}
		k = next;
		prev = &k;
	}
	for (size_t i = 0; i < n_del; i++)
		bpf_map__delete_elem(m, &del[i], sizeof(del[i]), 0);
	free(del);
}

/* Ids of the sets already in the map (an earlier agent's): no later set may
 * reuse one, and those no service names go at the next sync. */
static void eps_adopt(struct bpf_engine *e)
{
	struct bpf_map *m = e->skel->maps.ms_endpoints;
	struct ms_ep_key k, next, *prev = NULL;

	while (bpf_map__get_next_key(m, prev, &next, sizeof(next)) == 0) {
		if (next.eps_id >= e->next_eps_id)
			e->next_eps_id = next.eps_id + 1;
		bool seen = false;
		for (size_t i = 0; i < e->n_retired && !seen; i++)
			seen = e->retired[i] == next.eps_id;
		if (!seen) {
			e->retired = xrealloc(e->retired, e->n_retired + 1, sizeof(*e->retired));
			e->retired[e->n_retired++] = next.eps_id;
		}
		k = next;
		prev = &k;
	}
	if (!e->next_eps_id)
		e->next_eps_id = 1;
}

/* Make ms_services hold exactly the VIPs of c, and ms_endpoints the
 * endpoint sets of those on the kernel path. Order, so that a connect never
 * sees a gap nor a half-written set: new sets first, then every service
 * value (one map update each: the old value or the new, whole), then the
 * services that are gone, then the sets retired by the previous sync (a
 * connect that read a service value before this sync's swap has long
 * finished with its set). */
int bpf_engine_svcs_sync(struct bpf_engine *e, const struct ms_config *c)
{
	struct bpf_map *m = e->skel->maps.ms_services, *em = e->skel->maps.ms_endpoints;
	struct ms_svc_key *want = NULL, k, next, *prev = NULL;
	struct ms_svc *vals = NULL;
	struct eps_cur *cur = NULL;
	size_t n = 0, n_cur = 0, removed = 0, kernel = 0, written = 0;
	int r = 0;

	if (!e->cur && !e->n_retired)
		eps_adopt(e);
	for (size_t i = 0; i < c->n_svcs; i++) {
		const struct ms_service *s = &c->svcs[i];
		const struct ms_mesh *mesh = cfg_find_mesh(c, s->mesh);
		for (size_t p = 0; mesh && p < s->n_ports; p++) {
			want = xrealloc(want, n + 1, sizeof(*want));
			vals = xrealloc(vals, n + 1, sizeof(*vals));
			memset(&want[n], 0, sizeof(want[n]));
			want[n].mesh_id = mesh->id;
			want[n].port = s->ports[p].port;
			memcpy(want[n].vip, s->vip.b, 16);
			vals[n] = (struct ms_svc){ .kind = s->kind == MS_KIND_MESH_SERVICE ? MS_SVC_MESH : MS_SVC_EXTERNAL };
			if (steer_port_path(c, s, p, e->node_proxy, NULL) == MS_PATH_KERNEL) {
				struct ms_ep *eps;
				bool unhealthy;
				size_t ne = eps_of(e, &s->ports[p], &eps, &unhealthy);
				struct eps_cur want_cur = { .key = want[n], .n = (uint16_t)ne, .digest = eps_digest(eps, ne) };
				const struct eps_cur *was = e->cur ? bsearch(&want_cur, e->cur, e->n_cur, sizeof(*e->cur), eps_cur_cmp) : NULL;
				if (was && was->n == want_cur.n && was->digest == want_cur.digest) {
					want_cur.eps_id = was->eps_id;
				} else {
					want_cur.eps_id = e->next_eps_id++;
					for (size_t j = 0; j < ne; j++) {
						struct ms_ep_key ek = { .eps_id = want_cur.eps_id, .idx = (uint32_t)j };
						if (bpf_map__update_elem(em, &ek, sizeof(ek), &eps[j], sizeof(eps[j]), BPF_ANY) < 0)
							r = -errno;
						written++;
					}
				}
				free(eps);
				vals[n].path = MS_PATH_KERNEL;
				vals[n].flags = unhealthy ? MS_SVC_UNHEALTHY : 0;
				vals[n].n_eps = want_cur.n;
				vals[n].eps_id = want_cur.eps_id;
				cur = xrealloc(cur, n_cur + 1, sizeof(*cur));
				cur[n_cur++] = want_cur;
				kernel++;
			}
			n++;
		}
	}
	if (r < 0) {
		/* a set could not be written whole: keep every service as it was */
		log_error_errno(r, "BPF endpoints map: %m; services keep their previous endpoints");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (bpf_map__update_elem(m, &want[i], sizeof(want[i]), &vals[i], sizeof(vals[i]), BPF_ANY) < 0)
			r = -errno;
	struct ms_svc_key *sorted = xcalloc(n ? n : 1, sizeof(*sorted));
	if (n) /* want is NULL for a config without services */
		memcpy(sorted, want, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), svc_key_cmp);
	struct ms_svc_key *gone = NULL;
	size_t n_gone = 0;
	while (bpf_map__get_next_key(m, prev, &next, sizeof(next)) == 0) {
		if (!bsearch(&next, sorted, n, sizeof(*sorted), svc_key_cmp)) {
			gone = xrealloc(gone, n_gone + 1, sizeof(*gone));
			gone[n_gone++] = next;
		}
		k = next;
		prev = &k;
	}
	for (size_t i = 0; i < n_gone; i++)
		if (bpf_map__delete_elem(m, &gone[i], sizeof(gone[i]), 0) == 0)
			removed++;
	free(gone);
	free(sorted);
	/* the previous sync's retired sets go now; this sync retires the sets
	 * that were in force and are not any more */
	del_sets(e, e->retired, e->n_retired);
	e->n_retired = 0;
	for (size_t i = 0; i < e->n_cur; i++) {
		bool kept = false;
		for (size_t j = 0; j < n_cur && !kept; j++)
			kept = cur[j].eps_id == e->cur[i].eps_id;
		if (!kept) {
			e->retired = xrealloc(e->retired, e->n_retired + 1, sizeof(*e->retired));
			e->retired[e->n_retired++] = e->cur[i].eps_id;
		}
	}
	if (n_cur > 1)
		qsort(cur, n_cur, sizeof(*cur), eps_cur_cmp);
	free(e->cur);
	e->cur = cur ? cur : xcalloc(1, sizeof(*cur));
	cur = NULL;
	e->n_cur = n_cur;
	log_debug("BPF services map: %zu entries (%zu on the kernel path, %zu endpoints written), %zu removed", n,
		  kernel, written, removed);
out:
	free(cur);
	free(want);
	free(vals);
	return r;
}

static void pass_put(struct ms_pass_key **v, struct ms_pass_val **vals, size_t *n, const struct ms_pass_key *k,
		     const struct ms_pass_val *val)
{
	*v = xrealloc(*v, *n + 1, sizeof(**v));
	*vals = xrealloc(*vals, *n + 1, sizeof(**vals));
	(*v)[*n] = *k;
	(*vals)[(*n)++] = *val;
}

/* Make ms_pass hold the IP and CIDR matches of every mesh that looks (see
 * cfg_pass_matching), and a port-wide Domain entry where a Domain match may
 * apply. The whole set is written under a new generation, then the one
 * ms_pass_gen value is swapped: a connect reads the old set or the new one
 * whole. The set before the previous one is deleted now (a connect that
 * read the previous generation may still be looking in it). */
int bpf_engine_pass_sync(struct bpf_engine *e, const struct ms_config *c)
{
	struct bpf_map *m = e->skel->maps.ms_pass, *gm = e->skel->maps.ms_pass_gen;
	struct ms_pass_key *keys = NULL, k, next, *prev = NULL, *gone = NULL;
	struct ms_pass_val *vals = NULL;
	size_t n = 0, n_gone = 0, written = 0;
	uint32_t zero = 0, cur = 0, gen;
	int r = 0;

	if (c == e->pass_cfg)
		return 0;
	if (bpf_map__lookup_elem(gm, &zero, sizeof(zero), &cur, sizeof(cur), 0) < 0)
		cur = 0;
	gen = cur + 1 ? cur + 1 : 1;
	for (size_t i = 0; i < c->n_meshes; i++) {
		const struct ms_mesh *mesh = &c->meshes[i];
		if (!cfg_pass_matching(mesh))
			continue;
		/* Domain entries first: an IP or CIDR entry on the same key wins */
		for (int pass = 0; pass < 2; pass++)
			for (size_t j = 0; j < mesh->n_matches; j++) {
				const struct ms_pass_match *pm = &mesh->matches[j];
				struct ms_pass_val val = { .idx = (uint16_t)j };
				if ((pass == 0) != (pm->type == MS_MATCH_DOMAIN))
					continue;
				if (!cfg_match_live(mesh, pm))
					continue;
				memset(&k, 0, sizeof(k));
				k.gen = gen;
				k.mesh_id = mesh->id;
				k.port = pm->port;
				if (pm->type == MS_MATCH_DOMAIN) {
					val.verdict = MS_PASSV_DOMAIN;
					k.prefixlen = MS_PASS_FIXED_BITS;
					for (int fam = 0; fam < 2; fam++) {
						k.family = fam ? 6 : 4;
						pass_put(&keys, &vals, &n, &k, &val);
					}
					continue;
				}
				val.verdict = MS_PASSV_ALLOW;
				k.family = cfg_match_is_v4(pm) ? 4 : 6;
				k.prefixlen = MS_PASS_FIXED_BITS + pm->cidr.plen;
				memcpy(k.addr, pm->cidr.addr.b, 16);
				pass_put(&keys, &vals, &n, &k, &val);
			}
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		if (bpf_map__update_elem(m, &keys[i], sizeof(keys[i]), &vals[i], sizeof(vals[i]), BPF_ANY) < 0)
			r = -errno;
		else
			written++;
	}
	if (r < 0) {
		/* not whole: the set in force stays, the partial one goes */
		log_error_errno(r, "BPF passthrough map: %m; the previous passthrough matches stay in force");
		for (size_t i = 0; i < written; i++)
			bpf_map__delete_elem(m, &keys[i], sizeof(keys[i]), 0);
		goto out;
	}
	if (bpf_map__update_elem(gm, &zero, sizeof(zero), &gen, sizeof(gen), BPF_ANY) < 0) {
		r = log_error_errno(errno, "BPF passthrough generation: %m");
		goto out;
	}
	while (bpf_map__get_next_key(m, prev, &next, sizeof(next)) == 0) {
		if (next.gen != gen && next.gen != cur) {
			gone = xrealloc(gone, n_gone + 1, sizeof(*gone));
			gone[n_gone++] = next;
		}
		k = next;
		prev = &k;
	}
	for (size_t i = 0; i < n_gone; i++)
		bpf_map__delete_elem(m, &gone[i], sizeof(gone[i]), 0);
	log_debug("BPF passthrough map: generation %u, %zu entries, %zu of older generations removed", gen, n, n_gone);
	cfg_unref(e->pass_cfg);
	e->pass_cfg = cfg_ref((struct ms_config *)c); /* immutable: the count is all that changes */
out:
	free(gone);
	free(keys);
	free(vals);
	return r;
}

int bpf_engine_conn_take(struct bpf_engine *e, uint64_t cookie, const struct ms_addr *client,
			 uint16_t client_port, struct ms_addr *ret_addr, uint16_t *ret_port)
{
	struct ms_conn_key k = { .netns_cookie = cookie, .port = client_port };
	struct ms_orig o;

	memcpy(k.addr, client->b, 16);
	/* one syscall: the entry is the agent's from here on */
	if (bpf_map__lookup_and_delete_elem(e->skel->maps.ms_conns, &k, sizeof(k), &o, sizeof(o), 0) < 0)
		return -errno;
	memcpy(ret_addr->b, o.addr, 16);
	*ret_port = o.port;
	return 0;
}

int bpf_engine_dns_origin(struct bpf_engine *e, uint64_t cookie, uint16_t client_port,
			  struct ms_addr *ret_addr, uint16_t *ret_port)
{
	struct ms_dns_key k = { .netns_cookie = cookie, .port = client_port };
	struct ms_orig o;

	/* the socket's own entry, else the pod's most recent resolver */
	if (bpf_map__lookup_elem(e->skel->maps.ms_dns, &k, sizeof(k), &o, sizeof(o), 0) < 0) {
		k.port = 0;
		if (bpf_map__lookup_elem(e->skel->maps.ms_dns, &k, sizeof(k), &o, sizeof(o), 0) < 0)
			return -errno;
	}
	memcpy(ret_addr->b, o.addr, 16);
	*ret_port = o.port;
	return 0;
}

static size_t map_entries(struct bpf_map *m, size_t key_size)
{
	uint8_t k[64], next[64];
	void *prev = NULL;
	size_t n = 0;

	while (key_size <= sizeof(k) && bpf_map__get_next_key(m, prev, next, key_size) == 0 && n < 1u << 20) {
		memcpy(k, next, key_size);
		prev = k;
		n++;
	}
	return n;
}

void bpf_engine_map_sizes(struct bpf_engine *e, size_t *ret_conns, size_t *ret_dns, size_t *ret_kpath)
{
	*ret_conns = map_entries(e->skel->maps.ms_conns, sizeof(struct ms_conn_key));
	*ret_dns = map_entries(e->skel->maps.ms_dns, sizeof(struct ms_dns_key));
	*ret_kpath = map_entries(e->skel->maps.ms_kpath, sizeof(uint64_t));
}

int bpf_engine_counters(struct bpf_engine *e, uint64_t ret[MS_CNT__MAX])
{
	uint64_t *vals = xcalloc((size_t)e->ncpu, sizeof(uint64_t));

	for (uint32_t i = 0; i < MS_CNT__MAX; i++) {
		ret[i] = 0;
		if (bpf_map__lookup_elem(e->skel->maps.ms_counters, &i, sizeof(i), vals,
					 sizeof(uint64_t) * (size_t)e->ncpu, 0) < 0)
			continue;
		for (int c = 0; c < e->ncpu; c++)
			ret[i] += vals[c];
	}
	free(vals);
	return 0;
}

/* The CPUs' values of one per-CPU ms_kstat, summed. */
static void kstat_sum(const struct ms_kstat *v, int ncpu, struct ms_kstat *ret)
{
	memset(ret, 0, sizeof(*ret));
	for (int c = 0; c < ncpu; c++)
		steer_kstat_add(ret, &v[c]);
}

/* Every entry of a kernel-path stats map (key_size bytes of key), summed
 * over the CPUs. In batches of KSTATS_BATCH entries (BPF_MAP_LOOKUP_BATCH, a
 * syscall a batch); one entry at a time, two syscalls each, where the kernel
 * has no batch lookup for the map. The health checks walk the endpoints' map
 * every tick: 65,536 entries are 16 syscalls rather than 131,072. */
#define KSTATS_BATCH 4096u

static int kstats_walk_each(struct bpf_engine *e, struct bpf_map *m, size_t key_size,
			    void (*fn)(const void *key, const struct ms_kstat *v, void *ctx), void *ctx)
{
	uint8_t k[64], next[64];
	struct ms_kstat *vals = xcalloc((size_t)e->ncpu, sizeof(*vals)), sum;
	void *prev = NULL;
	size_t n = 0;

	while (key_size <= sizeof(k) && bpf_map__get_next_key(m, prev, next, key_size) == 0 && n++ < 1u << 20) {
		memcpy(k, next, key_size);
		prev = k;
		if (bpf_map__lookup_elem(m, k, key_size, vals, sizeof(*vals) * (size_t)e->ncpu, 0) < 0)
			continue; /* gone meanwhile */
		kstat_sum(vals, e->ncpu, &sum);
		fn(k, &sum, ctx);
	}
	free(vals);
	return 0;
}

static int kstats_walk(struct bpf_engine *e, struct bpf_map *m, size_t key_size,
		       void (*fn)(const void *key, const struct ms_kstat *v, void *ctx), void *ctx)
{
	size_t vsize = sizeof(struct ms_kstat) * (size_t)e->ncpu;
	uint8_t *keys = xcalloc(KSTATS_BATCH, key_size), *vals = xcalloc(KSTATS_BATCH, vsize);
	uint64_t in = 0, out = 0; /* the hash map's batch token: a bucket index */
	bool first = true, done = false;
	struct ms_kstat sum;
	int r = 0;

	while (!done) {
		__u32 count = KSTATS_BATCH;
		LIBBPF_OPTS(bpf_map_batch_opts, opts);
		if (bpf_map_lookup_batch(bpf_map__fd(m), first ? NULL : &in, &out, keys, vals, &count, &opts) < 0) {
			r = -errno;
			if (r != -ENOENT)
				break; /* ENOENT: this batch is the last */
			done = true;
			r = 0;
		}
		first = false;
		in = out;
		for (__u32 i = 0; i < count; i++) {
			kstat_sum((const struct ms_kstat *)(vals + i * vsize), e->ncpu, &sum);
			fn(keys + i * key_size, &sum, ctx);
		}
	}
	free(keys);
	free(vals);
	/* no batch lookup for this map here: refused before any entry came */
	if (first && (r == -EINVAL || r == -ENOTSUP || r == -EOPNOTSUPP))
		return kstats_walk_each(e, m, key_size, fn, ctx);
	return r;
}

int bpf_engine_kstats(struct bpf_engine *e, void (*fn)(const void *key, const struct ms_kstat *v, void *ctx),
		      void *ctx)
{
	return kstats_walk(e, e->skel->maps.ms_kstats, sizeof(struct ms_kstat_key), fn, ctx);
}

static int iter_create(void *ctx)
{
	int fd = bpf_iter_create(*(int *)ctx);

	return fd < 0 ? -errno : fd;
}

int bpf_engine_kconns(struct bpf_engine *e, int netns_fd, void (*fn)(const struct ms_kconn *k, void *ctx), void *ctx)
{
	_cleanup_close_ int fd = -1;
	int link_fd, n = 0;
	uint8_t buf[sizeof(struct ms_kconn) * 256];
	size_t have = 0;

	if (!e->iter)
		return -EOPNOTSUPP;
	/* the iterator walks the sockets of the netns it is created in */
	link_fd = bpf_link__fd(e->iter);
	fd = netns_call(netns_fd, iter_create, &link_fd);
	if (fd < 0)
		return fd;
	for (;;) {
		ssize_t got = read(fd, buf + have, sizeof(buf) - have);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			break;
		have += (size_t)got;
		/* a read may end inside a record: the rest comes with the next */
		size_t off = 0;
		for (; have - off >= sizeof(struct ms_kconn); off += sizeof(struct ms_kconn)) {
			struct ms_kconn k;
			memcpy(&k, buf + off, sizeof(k));
			fn(&k, ctx);
			n++;
		}
		memmove(buf, buf + off, have - off);
		have -= off;
	}
	return n;
}
