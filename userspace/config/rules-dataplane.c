// SPDX-License-Identifier: MIT
/* What Kuma's Dataplane validation refuses (pkg/core/resources/apis/mesh/
 * dataplane_validator.go): the address, inbounds, outbounds, the gateway,
 * listeners, probes, metrics, transparent proxying's reachable backends.
 * meshsplice reads only the inbounds (they serve MeshServices); the rest is
 * checked as Kuma checks it so that a Dataplane kuma-cp refuses is refused. */
#include <stdio.h>
#include <string.h>

#include "loader.h"
#include "util.h"

/* validateAddress: path names the mapping that holds "address". */
static void address(struct dctx *d, const struct ynode *map, const char *path)
{
	const struct ynode *n = ynode_get(map, "address");
	const char *a = r_text(d, map, "address", path, NULL);
	char p[DPATH_MAX];

	d_join(p, path, "address");
	if (!a)
		return;
	if (!*a) {
		d_err(d, n ? n : map, p, "address can't be empty");
		return;
	}
	if (r_is_unspecified(a) && (streq(a, "0.0.0.0") || streq(a, "::")))
		d_err(d, n, p, "must not be 0.0.0.0 or ::");
	if (!r_is_ip(a) && !r_is_dns_name(a))
		d_err(d, n, p, "address has to be valid IP address or domain name");
}

static void ip_field(struct dctx *d, const struct ynode *map, const char *key, const char *path,
		     const char *msg)
{
	const char *a = r_text(d, map, key, path, NULL);
	char p[DPATH_MAX];

	if (a && *a && !r_is_ip(a))
		d_err(d, ynode_get(map, key), d_join(p, path, key), "%s", msg);
}

/* A protobuf Duration field that must be positive (ValidateDuration). */
static void duration(struct dctx *d, const struct ynode *map, const char *key, const char *path)
{
	const struct ynode *n = ynode_get(map, key);
	const char *s;
	char p[DPATH_MAX];
	bool pos = false;

	if (!n || ynode_is_null(n) || !(s = r_text(d, map, key, path, NULL)))
		return;
	d_join(p, path, key);
	if (r_pb_duration(s, &pos) < 0)
		d_err(d, n, p, "\"%s\" is not a duration (protobuf's form: seconds with an s, \"10s\")", log_escape(s));
	else if (!pos)
		d_err(d, n, p, "must have a positive value");
}

static void threshold(struct dctx *d, const struct ynode *map, const char *key, const char *path)
{
	const struct ynode *n = ynode_get(map, key), *v;
	char p[DPATH_MAX];
	unsigned long x;

	if (!n || ynode_is_null(n))
		return;
	d_join(p, path, key);
	/* a UInt32Value: the number, or {value: n} */
	v = n->type == YNODE_MAP ? n : NULL;
	if (r_uint(d, v ? v : map, v ? "value" : key, v ? p : path, &x) == 0 && x == 0)
		d_err(d, n, p, "must have a positive value");
}

/* The port an inbound listens on and its workload's, as Kuma computes them. */
struct iface {
	const char *ip, *wip;
	unsigned long port, wport;
};

static struct iface inbound_iface(const struct ynode *in, const char *dp_addr)
{
	struct iface f = { 0 };
	const char *a = r_peek(in, "address");
	const char *sa = r_peek(in, "serviceAddress");

	r_peek_uint(in, "port", &f.port);
	r_peek_uint(in, "servicePort", &f.wport);
	f.ip = a && *a ? a : dp_addr;
	f.wip = sa && *sa ? sa : f.ip;
	if (!f.wport)
		f.wport = f.port;
	return f;
}

static bool overlap(const char *a, const char *b)
{
	if (!a || !b || !r_is_ip(a) || !r_is_ip(b))
		return false;
	if (r_is_unspecified(a) || r_is_unspecified(b))
		return true;
	struct ms_addr x, y;
	return addr_parse(a, &x) == 0 && addr_parse(b, &y) == 0 && addr_eq(&x, &y);
}

static void inbound(struct dctx *d, const struct ynode *in, const char *path, const char *dp_addr)
{
	const char *sa = r_text(d, in, "serviceAddress", path, NULL);
	const char *a = r_text(d, in, "address", path, NULL);
	const char *proto;
	const struct ynode *sp, *tags;
	unsigned long port = 0, sport = 0;
	char p[DPATH_MAX], q[DPATH_MAX];
	bool ports = r_uint(d, in, "port", path, &port) == 0 &&
		     r_uint(d, in, "servicePort", path, &sport) == 0;

	if (ports && !r_port_ok(port))
		d_err(d, ynode_get(in, "port") ? ynode_get(in, "port") : in, d_join(p, path, "port"),
		      "port must be in the range [1, 65535]");
	if (ports && sport && !r_port_ok(sport))
		d_err(d, ynode_get(in, "servicePort"), d_join(p, path, "servicePort"),
		      "port must be in the range [1, 65535]");
	d_join(p, path, "serviceAddress");
	if (sa && *sa) {
		if (!r_is_ip(sa))
			d_err(d, ynode_get(in, "serviceAddress"), p, "serviceAddress has to be valid IP address");
		if (dp_addr && streq(sa, dp_addr) && (sport == 0 || sport == port))
			d_err(d, ynode_get(in, "serviceAddress"), p,
			      "serviceAddress and servicePort has to differ from address and port");
	}
	if (a && *a) {
		if (!r_is_ip(a))
			d_err(d, ynode_get(in, "address"), d_join(q, path, "address"), "address has to be valid IP address");
		if (sa && streq(a, sa) && (sport == 0 || sport == port))
			d_err(d, ynode_get(in, "serviceAddress") ? ynode_get(in, "serviceAddress") : in, p,
			      "serviceAddress and servicePort has to differ from address and port");
	}
	r_tags(d, in, "tags", path, R_TAGS_PROTOCOL);
	/* inbound tags are the old setup: they name their service */
	tags = ynode_get(in, "tags");
	if (tags && tags->type == YNODE_MAP && tags->n > 0 && !ynode_get(tags, "kuma.io/service"))
		d_err(d, tags, d_join(q, d_join(p, path, "tags"), "kuma.io/service"), "tag has to exist");
	if ((proto = r_text(d, in, "protocol", path, NULL)) && *proto && !r_protocol_known(proto))
		d_err(d, ynode_get(in, "protocol"), d_join(p, path, "protocol"),
		      "has an invalid value \"%s\". Allowed values: grpc, http, http2, kafka, tcp", log_escape(proto));
	if ((sp = ynode_get(in, "serviceProbe")) && !ynode_is_null(sp) &&
	    d_is_map(d, sp, d_join(p, path, "serviceProbe"))) {
		duration(d, sp, "interval", p);
		duration(d, sp, "timeout", p);
		threshold(d, sp, "unhealthyThreshold", p);
		threshold(d, sp, "healthyThreshold", p);
	}
}

static const char *const backend_kinds = "MeshExternalService,MeshMultiZoneService,MeshService";

static bool backend_kind(const char *k)
{
	return streq(k, "MeshService") || streq(k, "MeshExternalService") || streq(k, "MeshMultiZoneService");
}

static void outbound(struct dctx *d, const struct ynode *out, const char *path)
{
	const struct ynode *br = ynode_get(out, "backendRef"), *tags = ynode_get(out, "tags");
	const char *svc = r_text(d, out, "service", path, NULL);
	bool has_tags = tags && tags->type == YNODE_MAP && tags->n > 0;
	char p[DPATH_MAX], q[DPATH_MAX];

	r_port(d, out, "port", path);
	ip_field(d, out, "address", path, "address has to be valid IP address");
	d_join(p, path, "backendRef");
	if (br && !ynode_is_null(br)) {
		const char *kind, *name;
		const struct ynode *labels;
		if (!d_is_map(d, br, p))
			return;
		kind = r_text(d, br, "kind", p, NULL);
		name = r_text(d, br, "name", p, NULL);
		labels = ynode_get(br, "labels");
		if (kind && !backend_kind(kind))
			d_err(d, ynode_get(br, "kind") ? ynode_get(br, "kind") : br, d_join(q, p, "kind"),
			      "invalid value. Available values are: %s", backend_kinds);
		if (name && !*name && !(labels && labels->type == YNODE_MAP && labels->n > 0))
			d_err(d, br, p, "either 'name' or 'labels' should be specified");
		if (kind && !streq(kind, "MeshExternalService"))
			r_port(d, br, "port", p);
		if (has_tags || (svc && *svc))
			d_err(d, br, p, "both backendRef and tags/service cannot be defined");
	} else if (!has_tags) {
		if (svc && !*svc)
			d_err(d, tags ? tags : out, d_join(q, path, "tags"), "mandatory tag \"kuma.io/service\" is missing");
	} else {
		r_tags(d, out, "tags", path, R_TAGS_SERVICE);
	}
}

static void reachable_backends(struct dctx *d, const struct ynode *tp, const char *path)
{
	const struct ynode *rb, *refs;
	char p[DPATH_MAX], q[DPATH_MAX];

	if (!tp || ynode_is_null(tp) || tp->type != YNODE_MAP)
		return;
	rb = ynode_get(tp, "reachableBackends");
	if (!rb || rb->type != YNODE_MAP || !(refs = ynode_get(rb, "refs")))
		return;
	/* Kuma names this path with a typo: networking.transparentProxing */
	snprintf(p, sizeof(p), "%s.reachableBackends.refs", path);
	if (!d_is_seq(d, refs, p))
		return;
	for (size_t i = 0; i < refs->n; i++) {
		const struct ynode *r = refs->v[i], *labels;
		const char *kind, *name, *ns, *why;
		bool has_labels;

		d_index(q, p, i);
		if (!d_is_map(d, r, q))
			continue;
		kind = r_text(d, r, "kind", q, NULL);
		name = r_text(d, r, "name", q, NULL);
		ns = r_text(d, r, "namespace", q, NULL);
		labels = ynode_get(r, "labels");
		has_labels = labels && labels->type == YNODE_MAP && labels->n > 0;
		if (!kind || !name || !ns)
			continue;
		char f[DPATH_MAX];
		if (!backend_kind(kind))
			d_err(d, ynode_get(r, "kind") ? ynode_get(r, "kind") : r, d_join(f, q, "kind"),
			      "invalid value. Available values are: %s", backend_kinds);
		d_join(f, q, "name");
		if (*name && (why = cfg_name_check(name)))
			d_err(d, ynode_get(r, "name"), f, "%s", why);
		if (!*name && !*ns && !has_labels)
			d_err(d, r, f, "name or labels are required");
		if (!*name && *ns)
			d_err(d, r, f, "name is required, when namespace is defined");
		if ((*name || *ns) && has_labels)
			d_err(d, labels, d_join(f, q, "labels"), "labels cannot be defined when name is specified");
	}
}

static void networking(struct dctx *d, const struct ynode *net, const char *path, const char *dp_addr)
{
	const struct ynode *s;
	char p[DPATH_MAX], q[DPATH_MAX];

	address(d, net, path);
	if ((s = ynode_get(net, "inbound")) && !ynode_is_null(s) && d_is_seq(d, s, d_join(p, path, "inbound")))
		for (size_t i = 0; i < s->n; i++)
			if (d_is_map(d, s->v[i], d_index(q, p, i)))
				inbound(d, s->v[i], q, dp_addr);
	if ((s = ynode_get(net, "outbound")) && !ynode_is_null(s) && d_is_seq(d, s, d_join(p, path, "outbound")))
		for (size_t i = 0; i < s->n; i++)
			if (d_is_map(d, s->v[i], d_index(q, p, i)))
				outbound(d, s->v[i], q);
	reachable_backends(d, ynode_get(net, "transparentProxying"), d_join(p, path, "transparentProxing"));
}

static void probes(struct dctx *d, const struct ynode *pr, const char *path)
{
	const struct ynode *eps;
	char p[DPATH_MAX], q[DPATH_MAX], r[DPATH_MAX], port[16];
	static const char *const paths[] = { "inboundPath", "path" };

	if (!pr || ynode_is_null(pr) || !d_is_map(d, pr, path))
		return;
	r_port(d, pr, "port", path);
	eps = ynode_get(pr, "endpoints");
	d_join(p, path, "endpoints");
	if (!eps || ynode_is_null(eps) || !d_is_seq(d, eps, p))
		return;
	for (size_t i = 0; i < eps->n; i++) {
		const struct ynode *e = eps->v[i];
		d_index(q, p, i);
		if (!d_is_map(d, e, q))
			continue;
		r_port(d, e, "inboundPort", q);
		for (size_t j = 0; j < ARRAY_SIZE(paths); j++) {
			const char *v = r_text(d, e, paths[j], q, NULL);
			const struct ynode *n = ynode_get(e, paths[j]);
			if (v && (!*v || !r_request_uri(v, port, sizeof(port))))
				d_err(d, n ? n : e, d_join(r, q, paths[j]), "should be a valid URL Path");
		}
	}
}

static void listeners(struct dctx *d, const struct ynode *net, const char *path, const char *dp_addr)
{
	const struct ynode *ls = ynode_get(net, "listeners"), *ins = ynode_get(net, "inbound");
	char q[DPATH_MAX], f[DPATH_MAX];

	if (!ls || ynode_is_null(ls) || !d_is_seq(d, ls, path))
		return;
	if (ins && ins->type != YNODE_SEQ)
		ins = NULL;
	for (size_t i = 0; i < ls->n; i++) {
		const struct ynode *l = ls->v[i];
		const char *type, *addr, *name;
		unsigned long port;

		d_index(q, path, i);
		if (!d_is_map(d, l, q))
			continue;
		type = r_text(d, l, "type", q, NULL);
		if (!type || !*type)
			type = ""; /* Unspecified */
		if (!streq(type, "ZoneIngress") && !streq(type, "ZoneEgress"))
			d_err(d, ynode_get(l, "type") ? ynode_get(l, "type") : l, d_join(f, q, "type"),
			      "type must be ZoneIngress or ZoneEgress");
		address(d, l, q);
		r_port(d, l, "port", q);
		addr = r_peek(l, "address");
		name = r_text(d, l, "name", q, NULL);
		if (!addr || !name || r_peek_uint(l, "port", &port) < 0)
			continue;
		/* names unique across inbounds (name, else port) and listeners */
		if (*name) {
			bool dup = false;
			for (size_t j = 0; ins && j < ins->n && !dup; j++) {
				char pn[16];
				unsigned long ip = 0;
				const char *in = ins->v[j]->type == YNODE_MAP ? r_peek(ins->v[j], "name") : NULL;
				if (in && !*in && r_peek_uint(ins->v[j], "port", &ip) == 0) {
					snprintf(pn, sizeof(pn), "%lu", ip);
					in = pn;
					dup = streq(in, name);
				} else {
					dup = in && streq(in, name);
				}
			}
			for (size_t j = 0; j < i && !dup; j++) {
				const char *on = ls->v[j]->type == YNODE_MAP ? r_peek(ls->v[j], "name") : NULL;
				dup = on && streq(on, name);
			}
			if (dup)
				d_err(d, ynode_get(l, "name"), d_join(f, q, "name"),
				      "name \"%s\" must be unique across inbounds and listeners", log_escape(name));
		}
		for (size_t j = 0; j < i; j++) {
			const struct ynode *o = ls->v[j];
			unsigned long op = 0;
			const char *oa, *ot;
			if (o->type != YNODE_MAP || !(oa = r_peek(o, "address")) ||
			    !(ot = r_peek(o, "type")) || r_peek_uint(o, "port", &op) < 0)
				continue;
			if (streq(oa, addr) && op == port) {
				d_err(d, l, q, "address:port %s:%lu is %s", log_escape(addr), port,
				      streq(ot, type) ? "already used by another listener"
							      : "used by listeners of different types");
				break;
			}
		}
		for (size_t j = 0; ins && j < ins->n; j++) {
			const char *ia;
			unsigned long ip = 0;
			if (ins->v[j]->type != YNODE_MAP || !(ia = r_peek(ins->v[j], "address")) ||
			    r_peek_uint(ins->v[j], "port", &ip) < 0)
				continue;
			if (!*ia)
				ia = dp_addr ? dp_addr : "";
			if (streq(ia, addr) && ip == port) {
				d_err(d, l, q, "address:port %s:%lu collides with an inbound listener",
				      log_escape(addr), port);
				break;
			}
		}
	}
}

static const struct ynode *nonempty(const struct ynode *net, const char *key)
{
	const struct ynode *n = ynode_get(net, key);

	return n && n->type == YNODE_SEQ && n->n > 0 ? n : NULL;
}

static void gateway(struct dctx *d, const struct ynode *gw, const char *path)
{
	const struct ynode *t = ynode_get(gw, "tags");
	bool any = t && t->type == YNODE_MAP && t->n > 0;

	r_tags(d, gw, "tags", path, R_TAGS_TCP_ONLY | (any ? R_TAGS_SERVICE : 0));
}

/* networking.admin.port against the inbounds' and outbounds' 127.0.0.1 ports */
static void admin(struct dctx *d, const struct ynode *net, const char *path, const char *dp_addr)
{
	const struct ynode *adm = ynode_get(net, "admin"), *ins, *outs;
	char p[DPATH_MAX], q[DPATH_MAX];
	unsigned long port;

	d_join(p, path, "admin");
	if (!adm || ynode_is_null(adm) || !d_is_map(d, adm, p) || r_uint(d, adm, "port", p, &port) < 0)
		return;
	d_join(q, p, "port");
	if ((ins = ynode_get(net, "inbound")) && ins->type == YNODE_SEQ)
		for (size_t i = 0; i < ins->n; i++) {
			if (ins->v[i]->type != YNODE_MAP)
				continue;
			struct iface f = inbound_iface(ins->v[i], dp_addr);
			if ((port == f.port && overlap("127.0.0.1", f.ip)) ||
			    (port == f.wport && overlap("127.0.0.1", f.wip))) {
				d_err(d, ynode_get(adm, "port") ? ynode_get(adm, "port") : adm, q, "must differ from inbound");
				break;
			}
		}
	if ((outs = ynode_get(net, "outbound")) && outs->type == YNODE_SEQ)
		for (size_t i = 0; i < outs->n; i++) {
			unsigned long op = 0;
			const char *oa;
			if (outs->v[i]->type != YNODE_MAP || r_peek_uint(outs->v[i], "port", &op) < 0 ||
			    !(oa = r_peek(outs->v[i], "address")))
				continue;
			if (port == op && overlap("127.0.0.1", *oa ? oa : "127.0.0.1")) {
				d_err(d, ynode_get(adm, "port") ? ynode_get(adm, "port") : adm, q, "must differ from outbound");
				break;
			}
		}
}

void rules_dataplane(struct dctx *d, const struct ynode *b, const char *path)
{
	const struct ynode *net = ynode_get(b, "networking"), *gw, *pr, *m;
	char p[DPATH_MAX], q[DPATH_MAX];
	const char *dp_addr, *gtype = NULL;
	enum { SIDECAR, DELEGATED, BUILTIN } kind = SIDECAR;

	d_join(p, path, "networking");
	if (!net || net->type != YNODE_MAP)
		return; /* the decoder says so */
	dp_addr = r_peek(net, "address");
	admin(d, net, p, dp_addr);
	gw = ynode_get(net, "gateway");
	if (gw && !ynode_is_null(gw)) {
		if (!d_is_map(d, gw, d_join(q, p, "gateway")))
			return;
		gtype = r_text(d, gw, "type", q, NULL);
		if (!gtype)
			return;
		if (!*gtype || streq(gtype, "DELEGATED"))
			kind = DELEGATED;
		else if (streq(gtype, "BUILTIN"))
			kind = BUILTIN;
		else {
			char f[DPATH_MAX];
			d_err(d, ynode_get(gw, "type"), d_join(f, q, "type"),
			      "unknown value \"%s\" (expected DELEGATED or BUILTIN)", log_escape(gtype));
			return;
		}
	}
	pr = ynode_get(b, "probes");
	if (pr && ynode_is_null(pr))
		pr = NULL;
	if (kind != SIDECAR) {
		const char *what = kind == BUILTIN ? "builtin" : "delegated";
		const struct ynode *n;
		if ((n = nonempty(net, "inbound")))
			d_err(d, n, d_join(q, p, "inbound"), "inbound cannot be defined for %s gateways", what);
		if (kind == BUILTIN && (n = nonempty(net, "outbound")))
			d_err(d, n, d_join(q, p, "outbound"), "outbound cannot be defined for builtin gateways");
		if ((n = nonempty(net, "listeners")))
			d_err(d, n, d_join(q, p, "listeners"), "listeners cannot be defined for %s gateways", what);
		/* Kuma names the field networking.probes though it sits beside networking */
		if (kind == BUILTIN && pr)
			d_err(d, pr, d_join(q, p, "probes"), "probes cannot be defined for builtin gateways");
		gateway(d, gw, d_join(q, p, "gateway"));
	}
	networking(d, net, p, dp_addr);
	if (kind != BUILTIN)
		probes(d, pr, d_join(q, path, "probes"));
	if (kind == SIDECAR) {
		if ((m = ynode_get(b, "metrics")) && !ynode_is_null(m) && d_is_map(d, m, d_join(q, path, "metrics"))) {
			const char *type = r_text(d, m, "type", q, NULL);
			char f[DPATH_MAX];
			if (type && !streq(type, "prometheus"))
				r_unknown_backend(d, m, q, "\"prometheus\"");
			else if (type)
				r_prometheus_conf(d, ynode_get(m, "conf"), d_join(f, q, "conf"));
		}
		listeners(d, net, d_join(q, p, "listeners"), dp_addr);
	}
}
