// SPDX-License-Identifier: MIT
/* meshspliced: start-up, restore, signals, the timer and the event loop.
 * Everything else lives in its own room (agent-t.h says which). */
#include "agent-t.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "log.h"
#include "ms-build.h"
#include "netns.h"
#include "notify.h"
#include "util.h"

#define TICK_MS 250
#define RELOAD_DEBOUNCE_MS 200

void agent_drain_start(struct agent *a, const char *why)
{
	a->draining = true;
	a->drain_deadline = now_ms() + a->o->drain_timeout_ms;
	(void)notify_stopping();
	log_info("%s: draining %llu connections (at most %u ms), taking no new ones", why,
		 (unsigned long long)a->fwd.st.active, a->o->drain_timeout_ms);
}

void agent_close_fd_ev(struct agent *a, int *fd)
{
	if (*fd < 0)
		return;
	ev_del(a->epfd, *fd);
	close(*fd);
	*fd = -1;
}

static void signals_block(sigset_t *ss)
{
	/* Before any thread exists: threads inherit the mask, and a process
	 * signal goes to any thread that does not block it. */
	sigemptyset(ss);
	sigaddset(ss, SIGTERM);
	sigaddset(ss, SIGINT);
	sigaddset(ss, SIGHUP);
	pthread_sigmask(SIG_BLOCK, ss, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void on_signal(struct ev *ev, uint32_t events)
{
	struct agent *a = container_of(ev, struct agent, sig_ev);
	struct signalfd_siginfo si;

	(void)events;
	while (read(a->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			reload(a, "SIGHUP");
		} else if (a->draining || a->fwd.st.active == 0) {
			log_info("%s: stopping; pods stay enabled in the pinned maps",
				 si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
			(void)notify_stopping();
			a->stop = true;
		} else {
			/* New connections are refused (fail-closed) or go direct
			 * (fail-open) from now on; the established ones finish. */
			for (struct pod *p = a->pods; p; p = p->next)
				pod_close_sockets(a, p);
			/* a new agent may start (and listen) while we drain */
			if (a->ctl_fd >= 0) {
				agent_close_fd_ev(a, &a->ctl_fd);
				unlink(a->o->control);
			}
			agent_close_fd_ev(a, &a->metrics_fd);
			agent_drain_start(a, si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
		}
	}
}

static void on_inotify(struct ev *ev, uint32_t events)
{
	struct agent *a = container_of(ev, struct agent, ino_ev);
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	(void)events;
	while (read(a->ino_fd, buf, sizeof(buf)) > 0)
		;
	a->reload_at = now_ms() + RELOAD_DEBOUNCE_MS;
}

static void on_timer(struct ev *ev, uint32_t events)
{
	struct agent *a = container_of(ev, struct agent, timer_ev);
	uint64_t n;

	(void)events;
	if (read(a->timer_fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: nothing expired */
	}
	fwd_tick(&a->fwd);
	clients_expire(a);
	if (a->draining && (a->fwd.st.active == 0 || now_ms() >= a->drain_deadline)) {
		if (a->fwd.st.active)
			log_warn("drain timeout: resetting %llu connections still open",
				 (unsigned long long)a->fwd.st.active);
		else
			log_info("drained: every connection ended");
		a->stop = true;
	}
	if (a->dns)
		dnsp_tick(a->dns);
	if (a->pending)
		route_pending_retry(a, true);
	if (++a->ticks % (1000 / TICK_MS) == 0)
		pods_retry(a);
	if (a->ticks % (2000 / TICK_MS) == 0)
		reload_watch_files(a);
	health_agent_tick(a);
	if (a->peeking)
		route_peek_tick(a);
	if (a->reload_at && now_ms() >= a->reload_at && !a->draining) {
		a->reload_at = 0;
		reload(a, "config directory changed");
	}
}

static void on_resolver(struct ev *ev, uint32_t events)
{
	struct agent *a = container_of(ev, struct agent, res_ev);

	(void)events;
	resolver_drain(a->res);
	route_pending_retry(a, false);
}

static int setup_fds(struct agent *a, const sigset_t *ss)
{
	struct itimerspec its = { .it_interval = { 0, TICK_MS * 1000000L }, .it_value = { 0, TICK_MS * 1000000L } };

	a->sig_fd = signalfd(-1, ss, SFD_CLOEXEC | SFD_NONBLOCK);
	a->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (a->sig_fd < 0 || a->timer_fd < 0)
		return -errno;
	timerfd_settime(a->timer_fd, 0, &its, NULL);
	ev_init(&a->sig_ev, on_signal);
	ev_init(&a->timer_ev, on_timer);
	ev_init(&a->res_ev, on_resolver);
	ev_add(a->epfd, a->sig_fd, &a->sig_ev, EPOLLIN);
	ev_add(a->epfd, a->timer_fd, &a->timer_ev, EPOLLIN);
	ev_add(a->epfd, resolver_fd(a->res), &a->res_ev, EPOLLIN);
	a->ino_fd = -1;
	if (a->o->config_dir) {
		a->ino_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
		if (a->ino_fd < 0 ||
		    inotify_add_watch(a->ino_fd, a->o->config_dir,
				      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE) < 0)
			log_warn_errno(errno, "watch %s: %m; reload with SIGHUP or 'meshsplice reload'", a->o->config_dir);
		else {
			ev_init(&a->ino_ev, on_inotify);
			ev_add(a->epfd, a->ino_fd, &a->ino_ev, EPOLLIN);
		}
	}
	return 0;
}

/* Each proxied connection holds two fds (three or four while a pipe is
 * lent to it): take the soft RLIMIT_NOFILE up to the hard one, as servers
 * do, and say when even that cannot carry --max-conns. */
static void raise_nofile(const struct agent_opts *o)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t was = rl.rlim_cur;
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			log_debug("RLIMIT_NOFILE raised from %llu to %llu", (unsigned long long)was,
				  (unsigned long long)rl.rlim_max);
		else
			rl.rlim_cur = was;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 2 * (rlim_t)o->max_conns + 256)
		log_warn("RLIMIT_NOFILE is %llu: room for about %llu connections, fewer than --max-conns %u; "
			 "past that new connections are reset (raise LimitNOFILE)",
			 (unsigned long long)rl.rlim_cur, (unsigned long long)(rl.rlim_cur > 256 ? (rl.rlim_cur - 256) / 2 : 0),
			 o->max_conns);
}

/* Resolvers every pod may use when its mesh has passthrough off: the
 * --dns-upstream list, else the nameservers of the node's resolv.conf. A
 * pod's own (given at enable) come on top. */
static void dns_upstream_init(struct agent *a)
{
	const char *from = a->o->dns_upstream ? "--dns-upstream" : "/etc/resolv.conf";
	char *text = NULL;
	size_t len;

	if (a->o->dns_upstream) {
		text = xstrdup(a->o->dns_upstream);
		for (char *tok = strtok(text, ","); tok && a->n_dns_upstream < CTL_MAX_DNS_SERVERS; tok = strtok(NULL, ","))
			if (addr_parse(tok, &a->dns_upstream[a->n_dns_upstream]) == 0)
				a->n_dns_upstream++;
	} else if (read_file("/etc/resolv.conf", 1 << 16, &text, &len) == 0) {
		for (char *line = strtok(text, "\n"); line && a->n_dns_upstream < CTL_MAX_DNS_SERVERS; line = strtok(NULL, "\n")) {
			char ip[64];
			if (sscanf(line, " nameserver %63s", ip) == 1 &&
			    addr_parse(ip, &a->dns_upstream[a->n_dns_upstream]) == 0)
				a->n_dns_upstream++;
		}
	}
	free(text);
	log_info("mesh DNS: with passthrough off, queries go only to each pod's own resolvers and %zu from %s",
		 a->n_dns_upstream, from);
}

static int agent_start(struct agent *a, const sigset_t *ss)
{
	const struct agent_opts *o = a->o;
	struct steer_opts so = { .engine = o->engine, .bpffs_dir = o->bpffs, .cgroup = o->cgroup, .mark = o->mark,
				 .agent_cgroup = o->self_cgroup, .agent_cgroup_id = o->self_cgroup_id,
				 .listen_port = o->listen_port, .vip_cidrs = { o->cfg.mes_cidr, o->cfg.ms_cidr, o->cfg.gloo_cidr },
				 .n_vip_cidrs = 3, .node_proxy = o->datapath_proxy };
	struct fwd_opts fo = { .mark = o->mark, .pipe_size = o->pipe_size, .no_nodelay = o->no_nodelay,
			       .sockbuf = o->sockbuf, .pipe_pool = o->pipe_pool,
			       .connect_timeout_ms = o->connect_timeout_ms, .idle_timeout_ms = o->idle_timeout_ms,
			       .halfclose_timeout_ms = o->halfclose_timeout_ms, .max_conns = o->max_conns,
			       .ended = pod_conn_ended, .ended_ctx = a, .connected = health_agent_connected };
	struct ms_config *c = NULL;
	int r;

	if ((r = netns_init()) < 0)
		return log_error_errno(r, "open own netns: %m");
	if (mkdir(o->state_dir, 0700) < 0 && errno != EEXIST)
		return log_error_errno(errno, "state dir %s: %m", o->state_dir);
	vips_load(a);
	if (reload_load(a, &c) < 0) {
		log_error("no valid config: not starting (fix the files above)");
		return -EINVAL;
	}
	log_info("config: %s: %zu files, %zu meshes, %zu services", o->config_dir ? o->config_dir : "<embedded default>",
		 c->n_files, c->n_meshes, c->n_svcs);
	if ((r = steer_open(&so, &a->steer)) < 0) {
		cfg_unref(c);
		return r;
	}
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	health_agent_init(a);
	fwd_init(&a->fwd, a->epfd, &fo);
	if ((r = resolver_new(o->dns_refresh_ms, &a->res)) < 0) {
		cfg_unref(c);
		return log_error_errno(r, "start the resolver thread: %m");
	}
	if (!o->no_dns) {
		struct dnsp_opts dno = { .mark = o->mark, .port = o->dns_port, .ttl = o->dns_ttl,
					 .timeout_ms = o->dns_timeout_ms, .max_pending = 4096, .max_tcp = 256 };
		struct dnsp_hooks h = { .ctx = a, .local = agent_dns_local, .origin = agent_dns_origin,
					.strict = agent_dns_strict, .allowed = agent_dns_allowed };
		dns_upstream_init(a);
		dnsp_new(a->epfd, &dno, &h, &a->dns);
		log_info("mesh DNS: UDP and TCP port 53 of enabled pods answered on port %u of their loopback (TTL %u s)",
			 o->dns_port, o->dns_ttl);
	}
	reload_apply(a, c);
	control_takeover(a);
	if ((r = setup_fds(a, ss)) < 0 || (r = control_open(a)) < 0 || (o->metrics && (r = metrics_open(a)) < 0))
		return r;
	pods_restore(a);
	inherited_clear(a);
	return 0;
}

static void agent_stop(struct agent *a)
{
	route_pending_clear(a);
	/* the engine's sets stay as they are: health frozen at its last state
	 * for the kernel path until an agent is back */
	if (a->epfd > 0)
		health_agent_fini(a);
	pods_close_all(a);
	clients_close_all(a);
	dnsp_free(a->dns);
	if (a->epfd > 0)
		fwd_fini(&a->fwd);
	resolver_free(a->res);
	steer_close(a->steer);
	if (a->ctl_fd >= 0) {
		close(a->ctl_fd);
		unlink(a->o->control);
	}
	inherited_clear(a);
	int *fds[] = { &a->ino_fd, &a->metrics_fd, &a->sig_fd, &a->timer_fd };
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (*fds[i] >= 0)
			close(*fds[i]);
	if (a->epfd > 0)
		close(a->epfd);
	reload_fini(a);
	ev_fini();
}

int agent_run(const struct agent_opts *o)
{
	struct agent a = { .o = o, .ctl_fd = -1, .ino_fd = -1, .sig_fd = -1, .timer_fd = -1, .metrics_fd = -1 };
	void *evs = NULL;
	sigset_t ss;
	int r;

	signals_block(&ss);
	a.started = time(NULL);
	raise_nofile(o);
	if ((r = agent_start(&a, &ss)) < 0)
		goto out;
	log_info("meshspliced %s ready: control socket %s", MS_VERSION, o->control);
	/* the control socket listens, the programs are attached: READY=1 */
	if ((r = notify_ready()) < 0)
		log_warn_errno(r, "NOTIFY_SOCKET: %m; the service manager is not told the agent is ready");

	int batch = o->epoll_batch ? (int)o->epoll_batch : 256;
	evs = ev_buf_new(batch);
	while (!a.stop) {
		int n = ev_run_once(a.epfd, evs, batch, -1);
		if (n == -EINTR)
			continue;
		if (n < 0) {
			r = log_error_errno(-n, "epoll_wait: %m");
			goto out;
		}
	}
	r = 0;
out:
	free(evs);
	agent_stop(&a);
	return r;
}

int agent_uninstall(const struct agent_opts *o)
{
	_cleanup_free_ char *path = xasprintf("%s/pods.json", o->state_dir);
	const char **netns = NULL;
	json_object *arr = NULL;
	char *text = NULL;
	size_t len, n = 0;

	if (read_file(path, 16u << 20, &text, &len) == 0) {
		arr = json_tokener_parse(text);
		free(text);
	}
	for (size_t i = 0; arr && json_object_is_type(arr, json_type_array) && i < json_object_array_length(arr); i++) {
		const char *ns = json_str(json_object_array_get_idx(arr, i), "netns");
		if (!ns)
			continue;
		netns = xrealloc(netns, n + 1, sizeof(*netns));
		netns[n++] = ns;
	}
	int r = steer_uninstall(o->bpffs, netns, n);
	free(netns);
	json_object_put(arr);
	if (r < 0)
		return log_error_errno(r, "uninstall %s: %m", o->bpffs);
	log_info("uninstalled: programs detached, maps and links unpinned from %s", o->bpffs);
	return 0;
}

int agent_find_cgroup2(char **ret)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		/* id parent major:minor root mountpoint opts ... - fstype source superopts */
		char root[PATH_MAX], mnt[PATH_MAX];
		const char *dash = strstr(line, " - ");
		if (!dash || strncmp(dash + 3, "cgroup2 ", 8) != 0)
			continue;
		if (sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) == 2 && streq(root, "/")) {
			fclose(f);
			*ret = xstrdup(mnt);
			return 0;
		}
	}
	fclose(f);
	return -ENOENT;
}

int agent_self_cgroup(char **ret_path, uint64_t *ret_id)
{
	_cleanup_free_ char *root = NULL, *full = NULL;
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[4096], *path = NULL;
	struct stat st;
	int r;

	if (!f)
		return -errno;
	while (!path && fgets(line, sizeof(line), f))
		if (strncmp(line, "0::/", 4) == 0) /* the unified hierarchy's line */
			path = line + 3;
	fclose(f);
	if (!path)
		return -ENOENT;
	path[strcspn(path, "\n")] = '\0';
	if ((r = agent_find_cgroup2(&root)) < 0)
		return r;
	full = xasprintf("%s%s", root, path);
	if (stat(full, &st) < 0)
		return -errno;
	bool plain = strlen(path) < 512 && !path[strspn(path, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
							   "0123456789_.:@/+=,-")];
	*ret_path = plain ? xstrdup(path) : NULL;
	*ret_id = (uint64_t)st.st_ino; /* on cgroup2 the directory's inode number is the cgroup id */
	return 0;
}
