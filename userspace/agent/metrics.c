// SPDX-License-Identifier: MIT
/* Counters: one table describes each (where it lives, its name in
 * `meshsplice stats`, its Prometheus metric, label and help), and both
 * renderings walk it, so the two cannot drift (HAProxy's stat_col). The
 * Prometheus endpoint listens on loopback only: metrics say which pods talk
 * to what. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent-t.h"
#include "log.h"
#include "strbuf.h"
#include "util.h"

/* Everything the table reads, taken at once. */
struct snap {
	struct fwd_stats fwd;
	struct agent_stats ag;
	struct dnsp_stats dns;
	uint64_t tls_full; /* handshakes that were not resumptions */
	uint64_t tls_verify_cached;
	uint64_t pods_enabled;
	uint64_t pods_no_listener, pods_no_dns;
	struct ms_kstat kern; /* the kernel path's, over every pod (the eBPF engine's sockops) */
	bool has_dns, has_kernel;
};

enum col_type { COUNTER, GAUGE };

struct col {
	const char *group;  /* the object of `meshsplice stats` it is in */
	const char *key;    /* its key there (NULL: not in stats); per index: name(i) */
	const char *metric; /* meshsplice_<metric> (NULL: not in Prometheus) */
	const char *label;  /* the label's name, or NULL */
	const char *value;  /* the label's value (per index: name(i)) */
	const char *help;
	enum col_type type;
	size_t off; /* of a uint64_t in struct snap */
	size_t n;   /* 1, or the length of an array indexed by name(i) */
	const char *(*name)(int i);
	const char *path; /* the path label's value (kernel | proxy), or NULL */
};

static const char *end_name(int i)
{
	return fwd_end_name((enum fwd_end)i);
}

static const char *refuse_name(int i)
{
	return route_refuse_name((enum refuse_reason)i);
}

static const char *tls_fail(int i)
{
	return tls_fail_name((enum tls_fail)i);
}

#define S(f) offsetof(struct snap, f)
#define IDX "" /* key and label value come from name(i) */

static const struct col cols[] = {
	{ "forwarder", "started", "connections_opened_total", NULL, NULL,
	  "Connections opened, by path (proxy: started by the forwarder; kernel: established to an endpoint).",
	  COUNTER, S(fwd.started), 1, NULL, "proxy" },
	{ "kernel", "opened", "connections_opened_total", NULL, NULL, NULL, COUNTER, S(kern.opened), 1, NULL, "kernel" },
	{ "kernel", "failed", "connect_failed_total", NULL, NULL,
	  "Kernel-path connects that never established (reset, SYN timeout, closed while connecting).", COUNTER,
	  S(kern.failed), 1, NULL, "kernel" },
	{ "kernel", "closed", "connections_closed_total", NULL, NULL, "Kernel-path connections closed.", COUNTER,
	  S(kern.closed), 1, NULL, "kernel" },
	{ "forwarder", "active", "connections_active", NULL, NULL, "Proxied connections open now.", GAUGE,
	  S(fwd.active), 1, NULL },
	{ "forwarder", IDX, "connections_ended_total", "how", IDX,
	  "Proxied connections ended, by how (each counted once).", COUNTER, S(fwd.ended), FWD_END__MAX, end_name },
	{ "forwarder", "connect_retries", "connect_retries_total", NULL, NULL,
	  "Endpoints tried after an earlier one failed.", COUNTER, S(fwd.connect_retries), 1, NULL },
	{ "forwarder", "bytes_up", "bytes_total", "direction", "up",
	  "Bytes carried (up: pod to upstream), by path (kernel: of closed connections, up acknowledged).", COUNTER,
	  S(fwd.bytes_up), 1, NULL, "proxy" },
	{ "forwarder", "bytes_down", "bytes_total", "direction", "down", NULL, COUNTER, S(fwd.bytes_down), 1, NULL, "proxy" },
	{ "kernel", "bytes_up", "bytes_total", "direction", "up", NULL, COUNTER, S(kern.bytes_acked), 1, NULL, "kernel" },
	{ "kernel", "bytes_down", "bytes_total", "direction", "down", NULL, COUNTER, S(kern.bytes_received), 1, NULL,
	  "kernel" },
	{ "forwarder", "pipes_created", "pipes_created_total", NULL, NULL, "Pipes made for splice.", COUNTER,
	  S(fwd.pipes_created), 1, NULL },
	{ "forwarder", "pipe_errors", "pipe_errors_total", NULL, NULL, "Pipes that could not be made.", COUNTER,
	  S(fwd.pipe_errors), 1, NULL },
	{ "forwarder", "pipes_pooled", "pipes_pooled", NULL, NULL, "Empty pipes kept for reuse.", GAUGE,
	  S(fwd.pipes_pooled), 1, NULL },
	{ "forwarder", "accepted", "connections_accepted_total", NULL, NULL, "Connections accepted on pod listeners.",
	  COUNTER, S(ag.accepted), 1, NULL },
	{ "forwarder", "reset_before_accept", "connections_reset_before_accept_total", NULL, NULL,
	  "Clients that reset their connection while it waited to be accepted.", COUNTER, S(ag.reset_before_accept),
	  1, NULL },
	{ "refused", IDX, "connections_refused_total", "reason", IDX, "Connections refused, by reason.", COUNTER,
	  S(ag.refused), REFUSE__MAX, refuse_name },
	{ "tls", "handshakes", NULL, NULL, NULL, NULL, COUNTER, S(fwd.tls_handshakes), 1, NULL },
	{ "tls", NULL, "tls_handshakes_total", "resumed", "false", "TLS handshakes to endpoints.", COUNTER,
	  S(tls_full), 1, NULL },
	{ "tls", "resumed", "tls_handshakes_total", "resumed", "true", NULL, COUNTER, S(fwd.tls_resumed), 1, NULL },
	{ "tls", "ktls_tx", "tls_ktls_total", "direction", "tx",
	  "TLS connections whose direction went to kernel TLS (tx: to the endpoint).", COUNTER, S(fwd.tls_ktls_tx), 1,
	  NULL },
	{ "tls", "ktls_rx", "tls_ktls_total", "direction", "rx", NULL, COUNTER, S(fwd.tls_ktls_rx), 1, NULL },
	{ "tls", "ktls_userspace", "tls_ktls_userspace_total", NULL, NULL,
	  "TLS connections kept in userspace both ways on a kernel with TLS (cipher or version).", COUNTER,
	  S(fwd.tls_ktls_userspace), 1, NULL },
	{ "tls", "verify_cached", "tls_verify_cached_total", NULL, NULL,
	  "Certificate chains accepted from the verification cache.", COUNTER, S(tls_verify_cached), 1, NULL },
	{ "tls.failures", IDX, "tls_failures_total", "reason", IDX, "TLS failures, by reason.", COUNTER,
	  S(fwd.tls_fail), TLS_FAIL__MAX, tls_fail },
	{ "dns", "local", "dns_queries_total", "result", "local", "DNS queries of enabled pods, by outcome.",
	  COUNTER, S(dns.local), 1, NULL },
	{ "dns", "forwarded", "dns_queries_total", "result", "forwarded", NULL, COUNTER, S(dns.forwarded), 1, NULL },
	{ "dns", "failed", "dns_queries_total", "result", "failed", NULL, COUNTER, S(dns.failed), 1, NULL },
	{ "dns", "malformed", "dns_queries_total", "result", "malformed", NULL, COUNTER, S(dns.malformed), 1, NULL },
	{ "dns", "refused", "dns_queries_total", "result", "refused", NULL, COUNTER, S(dns.refused), 1, NULL },
	{ NULL, NULL, "pods_enabled", NULL, NULL, "Pods whose traffic is steered.", GAUGE, S(pods_enabled), 1, NULL },
	{ "pods", "without_listener", "pods_degraded", "missing", "listener",
	  "Enforced pods whose listener or DNS responder could not be opened (their port is taken; retried each second).",
	  GAUGE, S(pods_no_listener), 1, NULL },
	{ "pods", "without_dns_responder", "pods_degraded", "missing", "dns_responder", NULL, GAUGE,
	  S(pods_no_dns), 1, NULL },
	{ NULL, NULL, "config_reloads_total", "result", "ok", "Config reloads, by result.", COUNTER,
	  S(ag.reloads_ok), 1, NULL },
	{ NULL, NULL, "config_reloads_total", "result", "failed", NULL, COUNTER, S(ag.reloads_failed), 1, NULL },
};

static void snap_take(struct agent *a, struct snap *s)
{
	memset(s, 0, sizeof(*s));
	s->fwd = a->fwd.st;
	s->ag = a->st;
	s->tls_full = s->fwd.tls_handshakes - s->fwd.tls_resumed;
	s->tls_verify_cached = tls_verify_cached();
	for (struct pod *p = a->pods; p; p = p->next) {
		s->pods_enabled += p->enabled;
		s->pods_no_listener += p->enabled && p->listen_err;
		s->pods_no_dns += p->enabled && p->dns_err;
	}
	if (a->dns) {
		s->dns = dnsp_get_stats(a->dns);
		s->has_dns = true;
	}
	if (a->steer->ops->kernel_total) {
		a->steer->ops->kernel_total(a->steer, &s->kern);
		s->has_kernel = true;
	}
}

static uint64_t col_value(const struct snap *s, const struct col *c, size_t i)
{
	uint64_t v;

	memcpy(&v, (const char *)s + c->off + i * sizeof(uint64_t), sizeof(v));
	return v;
}

static bool col_present(const struct snap *s, const struct col *c)
{
	if (c->group && !strcmp(c->group, "kernel"))
		return s->has_kernel;
	return s->has_dns || !c->group || strcmp(c->group, "dns") != 0;
}

/* The object at a dotted path under root ("tls.failures"), made as needed. */
static json_object *group_of(json_object *root, const char *path)
{
	char part[32];
	json_object *o = root, *v;

	while (*path) {
		size_t n = strcspn(path, ".");
		snprintf(part, sizeof(part), "%.*s", (int)n, path);
		if (!json_object_object_get_ex(o, part, &v)) {
			v = json_object_new_object();
			json_object_object_add(o, part, v);
		}
		o = v;
		path += n + (path[n] == '.');
	}
	return o;
}

json_object *metrics_stats_json(struct agent *a)
{
	json_object *o = reply_ok(), *eng = json_object_new_object();
	struct steer_counter sc[STEER_MAX_COUNTERS];
	struct snap s;

	snap_take(a, &s);
	for (size_t k = 0; k < ARRAY_SIZE(cols); k++) {
		const struct col *c = &cols[k];
		if (!c->group || !c->key || !col_present(&s, c))
			continue;
		json_object *g = group_of(o, c->group);
		for (size_t i = 0; i < c->n; i++)
			json_object_object_add(g, c->name ? c->name((int)i) : c->key,
					       json_object_new_int64((int64_t)col_value(&s, c, i)));
	}
	size_t n = a->steer->ops->counters(a->steer, sc, ARRAY_SIZE(sc));
	for (size_t i = 0; i < n; i++)
		json_object_object_add(eng, sc[i].name, json_object_new_int64((int64_t)sc[i].value));
	json_object_object_add(o, "bpf", eng); /* the engine's counters (the eBPF engine has them) */
	return o;
}

/* Label values are ours (pod names checked at enable, fixed reason names),
 * still escaped as the exposition format requires. */
static const char *mlabel(const char *s)
{
	/* a ring: several labels go into one line */
	static char ring[4][600];
	static unsigned next;
	char *buf = ring[next++ % 4];
	size_t o = 0;

	for (; s && *s && o + 3 < sizeof(ring[0]); s++) {
		if (*s == '\\' || *s == '"') {
			buf[o++] = '\\';
			buf[o++] = *s;
		} else if (*s == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else {
			buf[o++] = *s;
		}
	}
	buf[o] = '\0';
	return buf;
}

static void prom_head(struct strbuf *b, const char *metric, const char *help, enum col_type t)
{
	strbuf_printf(b, "# HELP meshsplice_%s %s\n# TYPE meshsplice_%s %s\n", metric, help, metric,
		      t == GAUGE ? "gauge" : "counter");
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* How many of the sorted strings v equal key (two binary searches). */
static size_t count_sorted(const char **v, size_t n, const char *key)
{
	size_t lo = 0, hi = n, first;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(v[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	first = lo;
	hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(v[mid], key) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - first;
}

struct conn_labels {
	const char **pods, **svcs;
	size_t n;
};

static void conn_count(const struct fwd_conn_info *c, void *ctx)
{
	(void)c;
	((struct conn_labels *)ctx)->n++;
}

static void conn_label(const struct fwd_conn_info *c, void *ctx)
{
	struct conn_labels *l = ctx;

	l->pods[l->n] = c->pod;
	l->svcs[l->n++] = c->service;
}

/* Open connections per pod and per service: one pass, sorted labels, a
 * count per label; per service bounded by the config, not by traffic. */
static void prom_conns(struct agent *a, struct strbuf *b)
{
	struct conn_labels l = { 0 };
	size_t n;

	fwd_foreach(&a->fwd, conn_count, &l);
	n = l.n;
	l.pods = xcalloc(n ? n : 1, sizeof(char *));
	l.svcs = xcalloc(n ? n : 1, sizeof(char *));
	l.n = 0;
	fwd_foreach(&a->fwd, conn_label, &l);
	if (n > 1) {
		qsort(l.pods, n, sizeof(char *), str_cmp);
		qsort(l.svcs, n, sizeof(char *), str_cmp);
	}
	prom_head(b, "pod_connections_active", "Open connections per enabled pod.", GAUGE);
	for (struct pod *p = a->pods; p; p = p->next)
		if (p->enabled)
			strbuf_printf(b, "meshsplice_pod_connections_active{pod=\"%s\",mesh=\"%s\"} %zu\n", mlabel(p->name),
				      mlabel(p->mesh), count_sorted(l.pods, n, p->name));
	prom_head(b, "service_connections_active", "Open connections per service.", GAUGE);
	for (size_t i = 0; i < a->cfg->n_svcs; i++) {
		const struct ms_service *sv = &a->cfg->svcs[i];
		char label[160];
		snprintf(label, sizeof(label), "%s/%s", cfg_kind_name(sv->kind), sv->name);
		strbuf_printf(b, "meshsplice_service_connections_active{service=\"%s\",mesh=\"%s\"} %zu\n", mlabel(label),
			      mlabel(sv->mesh), count_sorted(l.svcs, n, label));
	}
	free(l.pods);
	free(l.svcs);
}

/* The kernel path's counts per service port (sockops' ms_kstats, folded by service port),
 * labelled as the proxy path's per-service gauge is. */
static void prom_kernel_svcs(struct agent *a, struct strbuf *b)
{
	static const char *const what[] = { "opened", "failed", "closed" };
	struct steer_svc_stat *v = NULL;
	size_t n;

	if (!a->steer->ops->kernel_svcs)
		return;
	n = a->steer->ops->kernel_svcs(a->steer, &v);
	prom_head(b, "service_connections_total",
		  "Kernel-path connections per service port: opened, failed (never established), closed.", COUNTER);
	for (size_t i = 0; i < n; i++) {
		const struct ms_mesh *m = NULL;
		for (size_t k = 0; k < a->cfg->n_meshes && !m; k++)
			if (a->cfg->meshes[k].id == v[i].mesh_id)
				m = &a->cfg->meshes[k];
		const struct ms_port *sp;
		const struct ms_service *sv = m ? cfg_find_vip(a->cfg, m->name, &v[i].vip, v[i].port, &sp) : NULL;
		if (!sv)
			continue; /* a service gone since: its counts go with it */
		char label[160];
		snprintf(label, sizeof(label), "%s/%s", cfg_kind_name(sv->kind), sv->name);
		const uint64_t val[] = { v[i].k.opened, v[i].k.failed, v[i].k.closed };
		for (size_t w = 0; w < ARRAY_SIZE(what); w++)
			strbuf_printf(b, "meshsplice_service_connections_total{service=\"%s\",mesh=\"%s\",port=\"%u\",path=\"kernel\",what=\"%s\"} %llu\n",
				      mlabel(label), mlabel(sv->mesh), v[i].port, what[w], (unsigned long long)val[w]);
	}
	free(v);
}

char *metrics_text(struct agent *a)
{
	struct steer_counter sc[STEER_MAX_COUNTERS];
	struct strbuf b = { 0 };
	const char *last = NULL;
	struct snap s;

	snap_take(a, &s);
	for (size_t k = 0; k < ARRAY_SIZE(cols); k++) {
		const struct col *c = &cols[k];
		if (!c->metric || !col_present(&s, c))
			continue;
		if (!last || strcmp(last, c->metric) != 0)
			prom_head(&b, c->metric, c->help, c->type);
		last = c->metric;
		for (size_t i = 0; i < c->n; i++) {
			const char *v = c->name ? c->name((int)i) : c->value;
			if (c->label && c->path)
				strbuf_printf(&b, "meshsplice_%s{%s=\"%s\",path=\"%s\"} %llu\n", c->metric, c->label, mlabel(v),
					      c->path, (unsigned long long)col_value(&s, c, i));
			else if (c->path)
				strbuf_printf(&b, "meshsplice_%s{path=\"%s\"} %llu\n", c->metric, c->path,
					      (unsigned long long)col_value(&s, c, i));
			else if (c->label)
				strbuf_printf(&b, "meshsplice_%s{%s=\"%s\"} %llu\n", c->metric, c->label, mlabel(v),
					      (unsigned long long)col_value(&s, c, i));
			else
				strbuf_printf(&b, "meshsplice_%s %llu\n", c->metric, (unsigned long long)col_value(&s, c, i));
		}
	}
	prom_conns(a, &b);
	prom_kernel_svcs(a, &b);
	prom_head(&b, "endpoint_healthy", "Endpoint health (1 healthy, 0 unhealthy), per endpoint address.", GAUGE);
	for (size_t i = 0; i < a->health.n; i++) {
		char ep[MS_ADDR_STRLEN + 8];
		const struct health_ep *e = &a->health.v[i];
		addr_port_fmt(&e->addr, e->port, ep, sizeof(ep));
		strbuf_printf(&b, "meshsplice_endpoint_healthy{endpoint=\"%s\",why=\"%s\"} %d\n", mlabel(ep),
			      health_why_name(e->why), e->healthy ? 1 : 0);
	}
	size_t n = a->steer->ops->counters(a->steer, sc, ARRAY_SIZE(sc)), heads = 0;
	for (size_t i = 0; i < n; i++) {
		if (!sc[i].verdict) {
			strbuf_printf(&b, "# HELP meshsplice_steer_%s The steering engine's %s.\n"
					  "# TYPE meshsplice_steer_%s gauge\nmeshsplice_steer_%s %llu\n",
				      sc[i].name, sc[i].name, sc[i].name, sc[i].name, (unsigned long long)sc[i].value);
			continue;
		}
		if (!heads++)
			prom_head(&b, "bpf_connect_total", "connect() calls seen by the BPF hooks, by verdict.", COUNTER);
		strbuf_printf(&b, "meshsplice_bpf_connect_total{verdict=\"%s\"} %llu\n", sc[i].name,
			      (unsigned long long)sc[i].value);
	}
	return b.s;
}

/* The request's head is in (or 8 KiB of it, which is all we read). */
static bool metrics_done(const struct line_client *c)
{
	return strstr(c->buf, "\r\n\r\n") || strstr(c->buf, "\n\n") || c->len >= 8192;
}

/* GET /metrics (or /): the counters; /healthz: the event loop answers;
 * /readyz: 200 while the agent takes connections (its control socket
 * listens, no drain), else 503 (liveness and readiness probes). */
static void metrics_serve(struct line_client *c)
{
	bool get = strncmp(c->buf, "GET /metrics ", 13) == 0 || strncmp(c->buf, "GET / ", 6) == 0;
	bool healthz = strncmp(c->buf, "GET /healthz ", 13) == 0, readyz = strncmp(c->buf, "GET /readyz ", 12) == 0;
	bool ready = c->a->ctl_fd >= 0 && !c->a->draining;
	const char *status = get || healthz || (readyz && ready) ? "200 OK" :
			     readyz ? "503 Service Unavailable" : "404 Not Found";
	_cleanup_free_ char *body = get ? metrics_text(c->a) :
				    healthz ? xstrdup("ok\n") :
				    readyz ? xstrdup(ready ? "ready\n" : "not ready\n") : xstrdup("not found\n");
	_cleanup_free_ char *head = xasprintf("HTTP/1.1 %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
					      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
					      status, strlen(body));

	client_send(c->fd, head, strlen(head));
	client_send(c->fd, body, strlen(body));
}

static void metrics_accept(struct ev *ev, uint32_t events)
{
	struct agent *a = container_of(ev, struct agent, metrics_ev);

	(void)events;
	client_accept(a, a->metrics_fd, CLIENT_METRICS, metrics_done, metrics_serve);
}

/* host:port on loopback only (metrics say which pods talk to what), any
 * address with --metrics-allow-remote (Kubernetes scraping). */
int agent_parse_metrics(const char *spec, bool allow_remote, struct sockaddr_storage *ss, socklen_t *ret_len,
			char **ret_err)
{
	char host[128];
	const char *colon = strrchr(spec, ':');
	struct ms_addr ad;
	unsigned long port;
	char *end;

	if (!colon || (size_t)(colon - spec) >= sizeof(host)) {
		*ret_err = xasprintf("--metrics %s: expected HOST:PORT", spec);
		return -EINVAL;
	}
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	if (host[0] == '[' && strlen(host) > 2 && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	port = strtoul(colon + 1, &end, 10);
	if (addr_parse(host, &ad) < 0 || *end || !colon[1] || port == 0 || port > 65535) {
		*ret_err = xasprintf("--metrics %s: expected an IP literal and a port", spec);
		return -EINVAL;
	}
	if (!allow_remote && (!addr_is_local(&ad) || (addr_is_v4(&ad) ? addr_to_v4(&ad) == 0 : ad.b[15] == 0))) {
		*ret_err = xasprintf("--metrics %s: binds loopback only (127.0.0.0/8 or ::1) unless "
				     "--metrics-allow-remote", spec);
		return -EINVAL;
	}
	*ret_len = addr_to_sockaddr(&ad, (uint16_t)port, false, ss);
	return 0;
}

int metrics_open(struct agent *a)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char *err = NULL;
	int fd, one = 1;

	if (agent_parse_metrics(a->o->metrics, a->o->metrics_allow_remote, &ss, &len, &err) < 0) {
		log_error("%s", err);
		free(err);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return log_error_errno(errno, "--metrics %s: %m", a->o->metrics);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0) {
		int r = log_error_errno(errno, "--metrics %s: %m", a->o->metrics);
		close(fd);
		return r;
	}
	a->metrics_fd = fd;
	ev_init(&a->metrics_ev, metrics_accept);
	log_info("metrics on http://%s/metrics", a->o->metrics);
	return ev_add(a->epfd, fd, &a->metrics_ev, EPOLLIN);
}
