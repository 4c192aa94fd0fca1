// SPDX-License-Identifier: MIT
/* The control socket: one JSON request per line (ctlproto.c parses and
 * checks it), one answer; and the hand-over of a pod's sockets from this
 * agent to the next. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent-t.h"
#include "ctl.h"
#include "fdpass.h"
#include "log.h"
#include "ms-build.h"
#include "render.h"
#include "util.h"

json_object *reply_err(const char *fmt, ...)
{
	json_object *o = json_object_new_object();
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, CTL_F_OK, json_object_new_boolean(0));
	json_object_object_add(o, CTL_F_ERROR, json_object_new_string(msg));
	return o;
}

json_object *reply_ok(void)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, CTL_F_OK, json_object_new_boolean(1));
	return o;
}

const char *json_str(json_object *o, const char *k)
{
	json_object *v;
	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static json_object *reply_msg(char *err, const char *ok_message)
{
	json_object *o;

	if (err) {
		o = reply_err("%s", err);
		free(err);
		return o;
	}
	o = reply_ok();
	if (ok_message)
		json_object_object_add(o, "message", json_object_new_string(ok_message));
	return o;
}

static json_object *do_enable(struct agent *a, const struct ctl_req *rq)
{
	struct pod *p = NULL;
	char *err = pod_enable(a, rq, &p);
	json_object *o = reply_msg(err, NULL);

	if (!err) {
		json_object_object_add(o, "pod", pod_json(a, p, false));
		json_object_object_add(o, "message", json_object_new_string("enabled"));
	}
	return o;
}

static json_object *do_pods(struct agent *a)
{
	json_object *o = reply_ok(), *arr = json_object_new_array();

	for (struct pod *p = a->pods; p; p = p->next)
		json_object_array_add(arr, pod_json(a, p, false));
	json_object_object_add(o, CTL_F_PODS, arr);
	return o;
}

static void conn_json(const struct fwd_conn_info *c, void *ctx)
{
	json_object *arr = ctx, *x = json_object_new_object();

	json_object_object_add(x, "id", json_object_new_int64((int64_t)c->id));
	json_object_object_add(x, "path", json_object_new_string("proxy"));
	json_object_object_add(x, "pod", json_object_new_string(c->pod));
	json_object_object_add(x, "original", json_object_new_string(c->orig));
	json_object_object_add(x, "service", json_object_new_string(c->service));
	json_object_object_add(x, "upstream", json_object_new_string(c->upstream));
	json_object_object_add(x, "state", json_object_new_string(c->open ? "open" : "connecting"));
	json_object_object_add(x, "tx_bytes", json_object_new_int64((int64_t)c->tx_bytes));
	json_object_object_add(x, "rx_bytes", json_object_new_int64((int64_t)c->rx_bytes));
	json_object_object_add(x, "age_ms", json_object_new_int64((int64_t)c->age_ms));
	json_object_array_add(arr, x);
}

/* At most this many kernel-path connections in one answer; the rest are
 * counted (kernel_cut). */
#define CONNS_KERNEL_MAX 4096

struct kconns {
	struct agent *a;
	const struct pod *p;
	json_object *arr;
	size_t listed, cut;
};

/* A TCP state as `conns` names it: the forwarder's words for the two it
 * has, the kernel's for the rest. */
static const char *tcp_state_name(unsigned st)
{
	static const char *const names[] = { "?", "open", "connecting", "syn_recv", "fin_wait1", "fin_wait2",
					     "time_wait", "close", "close_wait", "last_ack", "listen", "closing" };
	return st < ARRAY_SIZE(names) ? names[st] : "?";
}

static void kconn_json(const struct ms_kconn *k, void *ctx)
{
	struct kconns *kc = ctx;
	json_object *x;
	struct ms_addr vip, ep, local;
	const struct ms_service *sv;
	const struct ms_port *sp;
	char buf[MS_ADDR_STRLEN + 8], label[160];

	if (kc->listed >= CONNS_KERNEL_MAX) {
		kc->cut++;
		return;
	}
	kc->listed++;
	memcpy(vip.b, k->vip, 16);
	memcpy(ep.b, k->ep, 16);
	memcpy(local.b, k->local, 16);
	x = json_object_new_object();
	json_object_object_add(x, "cookie", json_object_new_int64((int64_t)k->cookie));
	json_object_object_add(x, "path", json_object_new_string("kernel"));
	json_object_object_add(x, "pod", json_object_new_string(kc->p->name));
	json_object_object_add(x, "original", json_object_new_string(addr_port_fmt(&vip, k->vip_port, buf, sizeof(buf))));
	/* named as the proxy path names it; a service gone since the connect has no name */
	sv = cfg_find_vip(kc->a->cfg, kc->p->mesh, &vip, k->vip_port, &sp);
	if (sv)
		snprintf(label, sizeof(label), "%s/%s", cfg_kind_name(sv->kind), sv->name);
	json_object_object_add(x, "service", sv ? json_object_new_string(label) : NULL);
	json_object_object_add(x, "upstream", json_object_new_string(addr_port_fmt(&ep, k->ep_port, buf, sizeof(buf))));
	json_object_object_add(x, "local", json_object_new_string(addr_port_fmt(&local, k->local_port, buf, sizeof(buf))));
	json_object_object_add(x, "state", json_object_new_string(tcp_state_name(k->state)));
	json_object_object_add(x, "tx_bytes", json_object_new_int64((int64_t)k->bytes_acked));
	json_object_object_add(x, "rx_bytes", json_object_new_int64((int64_t)k->bytes_received));
	json_object_object_add(x, "age_ms", k->flags & MS_KCONN_AGE ? json_object_new_int64(k->age_ms) : NULL);
	json_object_array_add(kc->arr, x);
}

/* The forwarder's connections, then each enabled pod's kernel-path ones
 * (read live from the kernel: the agent never saw them). */
static json_object *do_conns(struct agent *a)
{
	json_object *o = reply_ok(), *arr = json_object_new_array();
	struct kconns kc = { .a = a, .arr = arr };
	const char *kernel_err = NULL;
	bool listed = a->steer->ops->kernel_conns != NULL;

	fwd_foreach(&a->fwd, conn_json, arr);
	for (struct pod *p = a->pods; p && listed; p = p->next) {
		if (!p->enabled)
			continue;
		struct steer_pod sp = pod_ident(p);
		int r;
		kc.p = p;
		r = a->steer->ops->kernel_conns(a->steer, &sp, kconn_json, &kc);
		if (r == -EOPNOTSUPP) {
			listed = false;
		} else if (r < 0) {
			log_warn("conns: the kernel-path connections of pod %s could not be read: %s", p->name,
				 strerror(-r));
			kernel_err = "some pods' kernel-path connections could not be read (logged)";
		}
	}
	json_object_object_add(o, "connections", arr);
	/* false: the engine or kernel cannot list them (iptables; eBPF without the socket iterator) */
	json_object_object_add(o, "kernel_listed", json_object_new_boolean(listed));
	json_object_object_add(o, "kernel_cut", json_object_new_int64((int64_t)kc.cut));
	if (kernel_err)
		json_object_object_add(o, "kernel_error", json_object_new_string(kernel_err));
	return o;
}

static json_object *do_status(struct agent *a)
{
	json_object *o = reply_ok();
	size_t enabled = 0, known = 0;

	for (struct pod *p = a->pods; p; p = p->next) {
		known++;
		enabled += p->enabled;
	}
	json_object_object_add(o, "version", json_object_new_string(MS_VERSION));
	json_object_object_add(o, "engine", json_object_new_string(a->steer->ops->name));
	json_object_object_add(o, "engine_detail", json_object_new_string(a->steer->ops->describe(a->steer)));
	json_object_object_add(o, "cgroup", json_object_new_string(a->o->cgroup));
	json_object_object_add(o, "bpffs", json_object_new_string(a->o->bpffs));
	json_object_object_add(o, "config", json_object_new_string(a->o->config_dir ? a->o->config_dir : "<embedded default>"));
	json_object_object_add(o, "meshes", json_object_new_int((int)a->cfg->n_meshes));
	json_object_object_add(o, "services", json_object_new_int((int)a->cfg->n_svcs));
	json_object_object_add(o, "reloads_ok", json_object_new_int64((int64_t)a->st.reloads_ok));
	json_object_object_add(o, "reloads_failed", json_object_new_int64((int64_t)a->st.reloads_failed));
	if (a->last_reload_error)
		json_object_object_add(o, "last_reload_error", json_object_new_string(a->last_reload_error));
	json_object_object_add(o, "pods_enabled", json_object_new_int((int)enabled));
	json_object_object_add(o, "pods_known", json_object_new_int((int)known));
	json_object_object_add(o, "connections", json_object_new_int64((int64_t)a->fwd.st.active));
	json_object_object_add(o, "uptime_s", json_object_new_int64((int64_t)(time(NULL) - a->started)));
	return o;
}

/* `meshsplice dns lookup`: what a pod of mesh would be told. */
static json_object *do_dns_lookup(struct agent *a, const struct ctl_req *rq)
{
	struct pod fake = { .mesh = (char *)(rq->mesh ? rq->mesh : "default") };
	const char *name = rq->name;
	uint16_t qtype = rq->qtype;
	size_t qlen = rq->query_len, alen = 0;
	uint8_t abuf[512];
	struct dns_query q;

	if (!cfg_find_mesh(a->cfg, fake.mesh))
		return reply_err("mesh \"%s\" does not exist in the agent's config", log_escape(fake.mesh));
	json_object *o = reply_ok();
	json_object *addrs = json_object_new_array();
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "mesh", json_object_new_string(fake.mesh));
	json_object_object_add(o, "type", json_object_new_string(qtype == DNS_T_A ? "A" : "AAAA"));
	switch (dns_respond(rq->query, qlen, true, a->o->dns_ttl, agent_dns_local, a, &fake, abuf, sizeof(abuf), &alen,
			    &q)) {
	case DNS_ANSWER: {
		/* the answers are A or AAAA records at fixed offsets after the question */
		size_t ancount = (size_t)(abuf[6] << 8 | abuf[7]), off = qlen;
		for (size_t i = 0; i < ancount && off + 12 <= alen; i++) {
			uint16_t rdlen = (uint16_t)(abuf[off + 10] << 8 | abuf[off + 11]);
			struct ms_addr x = { 0 };
			char buf[MS_ADDR_STRLEN];
			if (off + 12 + rdlen > alen)
				break;
			if (rdlen == 4) {
				uint32_t v4;
				memcpy(&v4, abuf + off + 12, 4);
				addr_from_v4(&x, v4);
			} else {
				memcpy(x.b, abuf + off + 12, 16);
			}
			json_object_array_add(addrs, json_object_new_string(addr_fmt(&x, buf, sizeof(buf))));
			off += 12 + rdlen;
		}
		json_object_object_add(o, "answer", json_object_new_string("local"));
		json_object_object_add(o, "ttl", json_object_new_int64(a->o->dns_ttl));
		break;
	}
	case DNS_FORWARD:
		json_object_object_add(o, "answer", json_object_new_string("forwarded"));
		break;
	case DNS_DROP:
		json_object_object_add(o, "answer", json_object_new_string("dropped"));
		break;
	}
	json_object_object_add(o, "addresses", addrs);
	if (!a->dns)
		json_object_object_add(o, "note", json_object_new_string("DNS capture is off on this node"));
	return o;
}

/* ---------- hand-over ---------- */

/* A new agent asks for our sockets: send every enabled pod's listeners and
 * DNS sockets, stop taking anything new, and drain. Our copies stay open
 * (answers to DNS queries in flight leave through them) until we exit. */
static void do_handover(struct agent *a, struct line_client *c)
{
	json_object *o = reply_ok(), *arr = json_object_new_array();
	int *fds = NULL;
	size_t n = 0, pods = 0;

	for (struct pod *p = a->pods; p; p = p->next) {
		if (!p->enabled || p->l4.fd < 0)
			continue;
		int slot[POD_FDS] = { p->l4.fd, p->l6.fd };
		json_object *po = json_object_new_object(), *sl = json_object_new_array();
		dnsp_pod_fds(&p->dns, &slot[2]);
		for (int k = 0; k < POD_FDS; k++) {
			if (slot[k] >= 0) {
				fds = xrealloc(fds, n + 1, sizeof(int));
				fds[n] = slot[k];
				json_object_array_add(sl, json_object_new_int((int)n++));
			} else {
				json_object_array_add(sl, json_object_new_int(-1));
			}
		}
		json_object_object_add(po, "name", json_object_new_string(p->name));
		json_object_object_add(po, "fds", sl);
		json_object_array_add(arr, po);
		pods++;
	}
	json_object_object_add(o, CTL_F_PODS, arr);
	json_object_object_add(o, "nfds", json_object_new_int((int)n));
	json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
	/* Free the control socket path and the metrics port before the new
	 * agent holds the fds: it binds both as soon as it has them. */
	agent_close_fd_ev(a, &a->ctl_fd);
	agent_close_fd_ev(a, &a->metrics_fd);
	client_send_json(c->fd, o);
	json_object_put(o);
	int r = fdpass_send(c->fd, fds, n);
	free(fds);
	if (r < 0) {
		log_error_errno(r, "hand-over to a new agent failed: %m; this agent carries on");
		if (control_open(a) < 0 || (a->o->metrics && metrics_open(a) < 0))
			log_error("after the failed hand-over the control socket or metrics could not be reopened");
		return;
	}
	for (struct pod *p = a->pods; p; p = p->next) {
		if (p->l4.fd >= 0)
			ev_del(a->epfd, p->l4.fd);
		if (p->l6.fd >= 0)
			ev_del(a->epfd, p->l6.fd);
		if (a->dns)
			dnsp_pod_release(a->dns, &p->dns);
	}
	a->handed_over = true;
	log_info("handed %zu pods' sockets (%zu fds) to a new agent", pods, n);
	agent_drain_start(a, "hand-over");
}

/* At start: if an agent answers on our control socket, take its sockets
 * (it drains and exits); the pods are then re-enabled on them, so not one
 * connection queued in a listener is lost. No agent there: nothing to do. */
void control_takeover(struct agent *a)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	_cleanup_free_ char *req = NULL;
	_cleanup_close_ int fd = -1;
	json_object *resp = NULL, *pods = NULL, *v;
	int *fds = NULL, nfds = 0, r;
	size_t cap = CTL_MAX_MSG;
	char *line = NULL;

	if (strlen(a->o->control) >= sizeof(sa.sun_path))
		return;
	strcpy(sa.sun_path, a->o->control);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	json_object *rq = ctl_request(CTL_HANDOVER);
	req = xasprintf("%s\n", json_object_to_json_string_ext(rq, JSON_C_TO_STRING_PLAIN));
	json_object_put(rq);
	line = xcalloc(1, cap);
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0 || (r = (int)fdpass_read_line(fd, line, cap)) < 0) {
		log_warn("an agent answers at %s but the hand-over failed: %s", a->o->control, strerror(errno));
		goto out;
	}
	resp = json_tokener_parse(line);
	if (!resp || !json_object_object_get_ex(resp, CTL_F_OK, &v) || !json_object_get_boolean(v) ||
	    !json_object_object_get_ex(resp, CTL_F_PODS, &pods) || !json_object_is_type(pods, json_type_array) ||
	    !json_object_object_get_ex(resp, "nfds", &v) || (nfds = json_object_get_int(v)) < 0 || nfds > 65536) {
		log_warn("the agent at %s refused the hand-over: %s", a->o->control,
			 resp ? log_escape(json_str(resp, CTL_F_ERROR)) : "malformed answer");
		goto out;
	}
	fds = xcalloc((size_t)nfds + 1, sizeof(int));
	if ((r = fdpass_recv(fd, fds, (size_t)nfds)) < 0) {
		log_warn_errno(r, "hand-over: receiving the sockets failed: %m");
		goto out;
	}
	a->n_inh = json_object_array_length(pods);
	a->inh = xcalloc(a->n_inh + 1, sizeof(*a->inh));
	for (size_t i = 0; i < a->n_inh; i++) {
		json_object *po = json_object_array_get_idx(pods, i), *sl = NULL;
		const char *name = json_str(po, "name");
		a->inh[i].name = xstrdup(name ? name : "");
		json_object_object_get_ex(po, "fds", &sl);
		for (int k = 0; k < POD_FDS; k++) {
			int idx = sl ? json_object_get_int(json_object_array_get_idx(sl, (size_t)k)) : -1;
			a->inh[i].fds[k] = idx >= 0 && idx < nfds ? fds[idx] : -1;
			if (idx >= 0 && idx < nfds)
				fds[idx] = -1;
		}
	}
	for (int i = 0; i < nfds; i++) /* named by no pod: not ours to keep */
		if (fds[i] >= 0)
			close(fds[i]);
	json_object *pid = NULL;
	json_object_object_get_ex(resp, "pid", &pid);
	log_info("took over the sockets of %zu pods from the running agent (pid %d); it drains and exits", a->n_inh,
		 pid ? json_object_get_int(pid) : 0);
out:
	free(fds);
	free(line);
	json_object_put(resp);
}

/* ---------- requests ---------- */

/* One request line; NULL when the answer was sent already (a hand-over). */
static json_object *handle_request(struct agent *a, const char *line, struct line_client *c)
{
	struct ctl_req rq;
	json_object *resp = NULL;
	char *err = NULL;

	if (ctl_parse(line, &rq, &err) < 0) {
		resp = reply_err("%s", err ? err : "malformed request");
		free(err);
		ctl_req_free(&rq);
		return resp;
	}
	switch (rq.cmd) {
	case CTL_ENABLE: resp = do_enable(a, &rq); break;
	case CTL_DISABLE: resp = reply_msg(pod_disable(a, &rq), "disabled"); break;
	case CTL_FORGET:
		pod_forget(a, &rq);
		resp = reply_ok();
		break;
	case CTL_PODS: resp = do_pods(a); break;
	case CTL_CONNS: resp = do_conns(a); break;
	case CTL_ENDPOINTS: resp = health_agent_json(a); break;
	case CTL_STATS: resp = metrics_stats_json(a); break;
	case CTL_STATUS: resp = do_status(a); break;
	case CTL_DNS_LOOKUP: resp = do_dns_lookup(a, &rq); break;
	case CTL_GET:
		resp = reply_ok();
		json_object_object_add(resp, "config", cfg_render_json(a->cfg));
		break;
	case CTL_RELOAD:
		/* answered when the load is done (reload.c), off this loop */
		if (c && a->draining)
			resp = reply_err("the agent is draining: no reload");
		else if (c)
			reload_request(a, "requested", c->fd);
		else
			resp = reply_err("reload needs a client to answer");
		break;
	case CTL_HANDOVER:
		if (!c || a->draining)
			resp = reply_err("this agent is draining already");
		else
			do_handover(a, c);
		break;
	case CTL__MAX:
		break;
	}
	ctl_req_free(&rq);
	return resp;
}

static bool control_done(const struct line_client *c)
{
	return memchr(c->buf, '\n', c->len) != NULL;
}

static void control_serve(struct line_client *c)
{
	char *nl = memchr(c->buf, '\n', c->len);
	json_object *resp;

	if (!nl) {
		resp = reply_err("request longer than %d bytes", CLIENT_BUF - 1);
	} else {
		*nl = '\0';
		resp = handle_request(c->a, c->buf, c);
	}
	if (resp)
		client_send_json(c->fd, resp);
	json_object_put(resp);
}

static void control_accept(struct ev *ev, uint32_t events)
{
	struct agent *a = container_of(ev, struct agent, ctl_ev);

	(void)events;
	for (;;) {
		int fd = accept_shed(a->ctl_fd, NULL, NULL);
		struct ucred cred;
		socklen_t len = sizeof(cred);

		if (fd == -EMFILE)
			continue;
		if (fd < 0)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
		    (cred.uid != 0 && cred.uid != geteuid())) {
			log_warn("control: refused a client with uid %u (root only)", (unsigned)cred.uid);
			json_object *e = reply_err("permission denied: the control socket is for root");
			client_send_json(fd, e);
			json_object_put(e);
			close(fd);
			continue;
		}
		client_add(a, fd, CLIENT_CONTROL, control_done, control_serve);
	}
}

int control_open(struct agent *a)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_free_ char *dir = xstrdup(a->o->control);
	char *slash = strrchr(dir, '/');
	mode_t old;
	int fd;

	if (strlen(a->o->control) >= sizeof(sa.sun_path))
		return log_error_errno(ENAMETOOLONG, "control socket path %s: %m", a->o->control);
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return log_error_errno(errno, "mkdir %s: %m", dir);
	}
	strcpy(sa.sun_path, a->o->control);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A socket file left by a dead agent: remove it only if nobody answers. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		return log_error_errno(EADDRINUSE, "another agent is running at %s", a->o->control);
	}
	close(fd);
	unlink(a->o->control);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	old = umask(0077);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		umask(old);
		close(fd);
		return log_error_errno(errno, "bind %s: %m", a->o->control);
	}
	umask(old);
	if (listen(fd, 512) < 0) { /* room for a burst: past MAX_CLIENTS the oldest is shed */
		close(fd);
		return -errno;
	}
	a->ctl_fd = fd;
	ev_init(&a->ctl_ev, control_accept);
	return ev_add(a->epfd, fd, &a->ctl_ev, EPOLLIN);
}
