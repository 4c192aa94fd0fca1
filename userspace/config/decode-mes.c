// SPDX-License-Identifier: MIT
/* MeshExternalService: match, endpoints; tls in decode-tls.c. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "loader.h"
#include "util.h"

/* endpoints[i]: IPv4, IPv6, DNS name or unix:///abs/path. */
int decode_endpoint(struct dctx *d, const struct ynode *n, const char *path,
			   struct ms_endpoint *ret)
{
	_cleanup_free_ char *addr = NULL;
	char p[DPATH_MAX];
	uint16_t port = 0;
	int r = 0;

	/* First of all: the caller frees *ret on every failure (fuzzing found a
	 * double free when an early return left it holding the last endpoint). */
	memset(ret, 0, sizeof(*ret));
	if (!d_is_map(d, n, path))
		return -EINVAL;
	d_known(d, n, path, KEYS("address", "port", "priority"));
	if (d_str(d, n, "address", path, true, &addr) < 0 || !addr)
		return -EINVAL;
	unsigned long prio = 0;
	if (d_uint(d, n, "priority", path, 0, MS_MAX_PRIORITY, &prio) < 0)
		r = -EINVAL;
	if (d_port(d, n, "port", path, false, &port) < 0)
		r = -EINVAL;
	memset(ret, 0, sizeof(*ret));
	d_join(p, path, "address");
	if (strncmp(addr, "unix://", 7) == 0) {
		const char *sp = addr + 7;
		if (sp[0] != '/' || strlen(sp) < 2 || strlen(sp) >= 108) {
			d_err(d, ynode_get(n, "address"), p,
			      "\"%s\" is not unix:///absolute/path (at most 107 bytes)", log_escape(addr));
			return -EINVAL;
		}
		if (port) {
			d_err(d, ynode_get(n, "port"), d_join(p, path, "port"),
			      "a unix socket endpoint has no port");
			return -EINVAL;
		}
		ret->type = MS_EP_UNIX;
		ret->host = xstrdup(sp);
		ret->priority = (uint8_t)prio;
		return r;
	}
	if (addr_parse(addr, &ret->ip) == 0) {
		ret->type = MS_EP_IP;
	} else if (dns_name_valid(addr)) {
		ret->type = MS_EP_DNS;
	} else {
		d_err(d, ynode_get(n, "address"), p,
		      "\"%s\" is not an IPv4 or IPv6 address, a DNS name or unix:///path",
		      log_escape(addr));
		return -EINVAL;
	}
	if (!port && r == 0) {
		d_err(d, n, d_join(p, path, "port"), "required field is missing (address is not a unix socket)");
		r = -EINVAL;
	}
	ret->host = TAKE_PTR(addr);
	ret->port = port;
	ret->priority = (uint8_t)prio;
	return r;
}

void decode_mes(struct loader *L, struct dctx *d, struct meta *m)
{
	const struct ynode *spec = m->body, *match, *eps, *ext;
	struct ms_service *s;
	size_t idx;
	char p[DPATH_MAX];
	int proto = MS_PROTO_TCP;

	if (!d_is_map(d, spec, "spec"))
		return;
	s = loader_svc_new(L, MS_KIND_MESH_EXTERNAL_SERVICE, m, d);
	idx = L->c->n_svcs - 1;
	decode_status_vip(d, m->status, s);
	s->ports = xcalloc(1, sizeof(*s->ports));
	s->n_ports = 1;
	d_known(d, spec, "spec", KEYS("match", "endpoints", "tls", "extension"));
	match = ynode_get(spec, "match");
	if (!match) {
		d_err(d, spec, "spec.match", "required field is missing");
	} else if (d_is_map(d, match, "spec.match")) {
		char *ty = NULL;
		d_known(d, match, "spec.match", KEYS("type", "port", "protocol"));
		if (d_str(d, match, "type", "spec.match", false, &ty) == 0 && ty &&
		    !streq(ty, "HostnameGenerator"))
			d_err(d, ynode_get(match, "type"), "spec.match.type",
			      "unknown value \"%s\" (the only type is HostnameGenerator)", log_escape(ty));
		free(ty);
		d_port(d, match, "port", "spec.match", true, &s->ports[0].port);
		d_pick(d, match, "protocol", "spec.match", cfg_proto_names, 4, &proto);
		s->ports[0].proto = (enum ms_proto)proto;
	}
	/* Kuma leaves endpoints and tls to an extension when there is one; so
	 * there is nothing here to connect to. */
	ext = ynode_get(spec, "extension");
	if (ext && !ynode_is_null(ext)) {
		char *ty = NULL;
		if (d_is_map(d, ext, "spec.extension") &&
		    d_str(d, ext, "type", "spec.extension", false, &ty) == 0 && (!ty || !*ty))
			d_err(d, ynode_get(ext, "type") ? ynode_get(ext, "type") : ext, "spec.extension.type",
			      "must not be empty");
		else if (ty)
			d_warn(d, ext, "spec.extension", "extension \"%s\" is Kuma's: endpoints and tls are not used",
			       log_escape(ty));
		free(ty);
		/* Kuma still validates tls's data sources; nothing connects with it */
		decode_mes_tls(L, d, ynode_get(spec, "tls"), "spec.tls", idx);
		return;
	}
	/* Optional, as in Kuma: a service without endpoints is valid, and its
	 * connections are refused. */
	eps = ynode_get(spec, "endpoints");
	if (eps && !ynode_is_null(eps) && d_is_seq(d, eps, "spec.endpoints")) {
		s->ports[0].eps = xcalloc(eps->n ? eps->n : 1, sizeof(struct ms_endpoint));
		for (size_t i = 0; i < eps->n; i++) {
			struct ms_endpoint e = { 0 };
			if (decode_endpoint(d, eps->v[i], d_index(p, "spec.endpoints", i), &e) == 0)
				L->c->svcs[idx].ports[0].eps[L->c->svcs[idx].ports[0].n_eps++] = e;
			else
				cfg_endpoint_free(&e);
		}
	}
	decode_mes_tls(L, d, ynode_get(spec, "tls"), "spec.tls", idx);
}
