// SPDX-License-Identifier: MIT
/* What Kuma's Mesh validation refuses (pkg/core/resources/apis/mesh/
 * mesh_validator.go) in the fields meshsplice does not act on: mtls,
 * logging, tracing and metrics backends, constraints, zoneEgress. The data
 * plane ignores them; a Mesh kuma-cp refuses is refused here too. */
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "util.h"

typedef void backend_fn(struct dctx *d, const struct ynode *be, const char *path);

/* section.backends: each one checked by fn, names unique (Kuma: "%q name is
 * already used for another backend"); section[ref] must name one of them
 * when set. At most max backends (0: no limit). */
static void backends(struct dctx *d, const struct ynode *sec, const char *path, backend_fn *fn,
		     size_t max, const char *ref, const char *ref_msg)
{
	const struct ynode *bs = ynode_get(sec, "backends");
	const char **names = NULL;
	char p[DPATH_MAX], q[DPATH_MAX], r[DPATH_MAX];
	const char *want;
	bool found = false;
	size_t n = 0;

	d_join(p, path, "backends");
	if (bs && !ynode_is_null(bs) && d_is_seq(d, bs, p)) {
		if (max && bs->n > max)
			d_err(d, bs, p, "cannot have more than %zu backends", max);
		names = xcalloc(bs->n + 1, sizeof(*names));
		for (size_t i = 0; i < bs->n; i++) {
			const struct ynode *be = bs->v[i];
			const char *name;

			d_index(q, p, i);
			if (!d_is_map(d, be, q))
				continue;
			if (fn)
				fn(d, be, q);
			if (!(name = r_text(d, be, "name", q, NULL)))
				continue;
			for (size_t j = 0; j < n; j++)
				if (streq(names[j], name)) {
					const struct ynode *nn = ynode_get(be, "name");
					d_err(d, nn ? nn : be, d_join(r, q, "name"),
					      "\"%s\" name is already used for another backend", log_escape(name));
					break;
				}
			names[n++] = name;
		}
	}
	want = r_text(d, sec, ref, path, NULL);
	if (want && *want) {
		for (size_t j = 0; j < n; j++)
			found |= streq(names[j], want);
		if (!found)
			d_err(d, ynode_get(sec, ref), d_join(r, path, ref), "%s", ref_msg);
	}
	free(names);
}

static void name_required(struct dctx *d, const struct ynode *be, const char *path)
{
	const char *name = r_text(d, be, "name", path, NULL);
	char p[DPATH_MAX];

	if (name && !*name) {
		const struct ynode *nn = ynode_get(be, "name");
		d_err(d, nn ? nn : be, d_join(p, path, "name"), "cannot be empty");
	}
}

/* A backend's conf as a mapping: NULL when absent or null (Kuma decodes an
 * empty config then), or when not a mapping (reported). */
static const struct ynode *conf_of(struct dctx *d, const struct ynode *be, const char *path,
				   bool *bad)
{
	const struct ynode *c = ynode_get(be, "conf");
	char p[DPATH_MAX];

	*bad = false;
	if (!c || ynode_is_null(c))
		return NULL;
	if (!d_is_map(d, c, d_join(p, path, "conf")))
		*bad = true;
	return *bad ? NULL : c;
}

/* A missing field of conf is reported on conf, or on the backend without one. */
static void conf_missing(struct dctx *d, const struct ynode *be, const struct ynode *c,
			 const char *path, const char *key, const char *msg)
{
	char p[DPATH_MAX], q[DPATH_MAX];
	const struct ynode *at = c ? ynode_get(c, key) : NULL;

	d_join(q, d_join(p, path, "conf"), key);
	d_err(d, at ? at : c ? c : be, q, "%s", msg);
}

static void logging_backend(struct dctx *d, const struct ynode *be, const char *path)
{
	char p[DPATH_MAX], host[256];
	const char *type, *v, *port;
	const struct ynode *c;
	bool bad;

	name_required(d, be, path);
	if (!(type = r_text(d, be, "type", path, NULL)))
		return;
	c = conf_of(d, be, path, &bad);
	d_join(p, path, "conf");
	if (streq(type, "file")) {
		if (!bad && (v = r_text(d, c, "path", p, NULL)) && !*v)
			conf_missing(d, be, c, path, "path", "cannot be empty");
	} else if (streq(type, "tcp")) {
		if (bad || !(v = r_text(d, c, "address", p, NULL)))
			return;
		if (!*v)
			conf_missing(d, be, c, path, "address", "cannot be empty");
		else if (r_split_host_port(v, host, sizeof(host), &port) < 0 || !*host || !*port)
			conf_missing(d, be, c, path, "address", "has to be in format of HOST:PORT");
	} else {
		r_unknown_backend(d, be, path, "\"tcp\", \"file\"");
	}
}

static void tracing_backend(struct dctx *d, const struct ynode *be, const char *path)
{
	const struct ynode *c, *s = ynode_get(be, "sampling");
	char p[DPATH_MAX], q[DPATH_MAX], port[16];
	const char *type, *v;
	bool bad;

	name_required(d, be, path);
	if (s && !ynode_is_null(s)) {
		/* a number, or protobuf's {value: n} wrapper in YAML written by hand */
		const struct ynode *sv = s->type == YNODE_MAP ? ynode_get(s, "value") : s;
		char *end = NULL;
		double x = sv && sv->type == YNODE_SCALAR ? strtod(sv->str, &end) : -1;
		if (!end || *end || x < 0.0 || x > 100.0)
			d_err(d, s, d_join(p, path, "sampling"), "has to be in [0.0 - 100.0] range");
	}
	if (!(type = r_text(d, be, "type", path, NULL)))
		return;
	c = conf_of(d, be, path, &bad);
	d_join(p, path, "conf");
	if (streq(type, "zipkin")) {
		if (bad)
			return;
		if ((v = r_text(d, c, "apiVersion", p, NULL)) && *v && !streq(v, "httpJsonV1") &&
		    !streq(v, "httpJson") && !streq(v, "httpProto"))
			d_err(d, ynode_get(c, "apiVersion"), d_join(q, p, "apiVersion"),
			      "has invalid value. Allowed values: httpJsonV1, httpJson, httpProto");
		if (!(v = r_text(d, c, "url", p, NULL)))
			return;
		if (!*v)
			conf_missing(d, be, c, path, "url", "cannot be empty");
		else if (!r_request_uri(v, port, sizeof(port)))
			conf_missing(d, be, c, path, "url", "invalid URL");
		else if (!*port)
			conf_missing(d, be, c, path, "url", "port has to be explicitly specified");
	} else if (streq(type, "datadog")) {
		unsigned long pn;
		if (bad)
			return;
		if ((v = r_text(d, c, "address", p, NULL)) && !*v)
			conf_missing(d, be, c, path, "address", "cannot be empty");
		if (r_uint(d, c, "port", p, &pn) == 0 && !r_port_ok(pn))
			conf_missing(d, be, c, path, "port", "port must be in the range [1, 65535]");
	} else {
		r_unknown_backend(d, be, path, "\"zipkin\", \"datadog\"");
	}
}

static void metrics_backend(struct dctx *d, const struct ynode *be, const char *path)
{
	const char *type = r_text(d, be, "type", path, NULL);
	char p[DPATH_MAX];

	if (!type)
		return;
	if (!streq(type, "prometheus")) {
		r_unknown_backend(d, be, path, "\"prometheus\"");
		return;
	}
	r_prometheus_conf(d, ynode_get(be, "conf"), d_join(p, path, "conf"));
}

/* Kuma's ParseDuration: "0", or digits and one of y w d h m s ms. */
static bool kuma_duration(const char *s)
{
	size_t n = 0;

	if (streq(s, "0"))
		return true;
	while (s[n] >= '0' && s[n] <= '9')
		n++;
	if (!n)
		return false;
	s += n;
	return streq(s, "y") || streq(s, "w") || streq(s, "d") || streq(s, "h") || streq(s, "m") ||
	       streq(s, "s") || streq(s, "ms");
}

/* The CA kinds are Kuma's business; a data-plane certificate's rotation is
 * a duration (Kuma names the path mtls.dpcert.rotation.expiration). */
static void mtls_backend(struct dctx *d, const struct ynode *be, const char *path)
{
	const struct ynode *dc = ynode_get(be, "dpCert"), *rot, *exp;
	const char *v = "";

	(void)path;
	if (!dc || ynode_is_null(dc))
		return;
	rot = dc->type == YNODE_MAP ? ynode_get(dc, "rotation") : NULL;
	exp = rot && rot->type == YNODE_MAP ? ynode_get(rot, "expiration") : NULL;
	if (exp && exp->type == YNODE_SCALAR && !ynode_is_null(exp))
		v = exp->str;
	if (!kuma_duration(v))
		d_err(d, exp ? exp : rot ? rot : dc, "mtls.dpcert.rotation.expiration", "has to be a valid format");
}

/* constraints.dataplaneProxy.{requirements,restrictions}[i].tags */
static void constraints(struct dctx *d, const struct ynode *c, const char *path)
{
	static const char *const lists[] = { "requirements", "restrictions" };
	char p[DPATH_MAX], q[DPATH_MAX], r[DPATH_MAX];
	const struct ynode *dp;

	if (!d_is_map(d, c, path))
		return;
	dp = ynode_get(c, "dataplaneProxy");
	d_join(p, path, "dataplaneProxy");
	if (!dp || ynode_is_null(dp) || !d_is_map(d, dp, p))
		return;
	for (size_t l = 0; l < ARRAY_SIZE(lists); l++) {
		const struct ynode *s = ynode_get(dp, lists[l]);
		d_join(q, p, lists[l]);
		if (!s || ynode_is_null(s) || !d_is_seq(d, s, q))
			continue;
		for (size_t i = 0; i < s->n; i++) {
			d_index(r, q, i);
			if (d_is_map(d, s->v[i], r))
				r_tags(d, s->v[i], "tags", r, R_TAGS_ONE | R_TAGS_SELECTOR);
		}
	}
}

void rules_mesh(struct dctx *d, const struct ynode *b, const char *path)
{
	const struct ynode *mtls = ynode_get(b, "mtls"), *s, *routing;
	const char *enabled = "";
	char p[DPATH_MAX];

	if (mtls && !ynode_is_null(mtls) && d_is_map(d, mtls, d_join(p, path, "mtls"))) {
		backends(d, mtls, p, mtls_backend, 1, "enabledBackend",
			 "has to be set to one of the backends in the mesh");
		enabled = r_text(d, mtls, "enabledBackend", p, NULL);
	} else {
		mtls = NULL;
	}
	if ((s = ynode_get(b, "logging")) && !ynode_is_null(s) && d_is_map(d, s, d_join(p, path, "logging")))
		backends(d, s, p, logging_backend, 0, "defaultBackend",
			 "has to be set to one of the logging backend in mesh");
	if ((s = ynode_get(b, "tracing")) && !ynode_is_null(s) && d_is_map(d, s, d_join(p, path, "tracing")))
		backends(d, s, p, tracing_backend, 0, "defaultBackend",
			 "has to be set to one of the tracing backend in mesh");
	if ((s = ynode_get(b, "metrics")) && !ynode_is_null(s) && d_is_map(d, s, d_join(p, path, "metrics")))
		backends(d, s, p, metrics_backend, 0, "enabledBackend",
			 "has to be set to one of the backends in the mesh");
	if ((s = ynode_get(b, "constraints")) && !ynode_is_null(s))
		constraints(d, s, d_join(p, path, "constraints"));
	routing = ynode_get(b, "routing");
	if (routing && routing->type == YNODE_MAP) {
		bool ze = false;
		const struct ynode *z = ynode_get(routing, "zoneEgress");
		if (z && ynode_bool(z, &ze) && ze && (!enabled || !*enabled))
			d_err(d, mtls ? mtls : z, d_join(p, path, "mtls"), "has to be set when zoneEgress enabled");
	}
}
