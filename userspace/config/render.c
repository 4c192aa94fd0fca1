// SPDX-License-Identifier: MIT
/* The model as JSON: what `meshsplice render -o json` and the agent's
 * `get` print. TLS is summarised; key material never leaves the model. */
#include "render.h"

#include "util.h"

static json_object *endpoint_json(const struct ms_endpoint *e)
{
	json_object *o = json_object_new_object();
	static const char *const types[] = { "ip", "dns", "unix" };

	json_object_object_add(o, "type", json_object_new_string(types[e->type]));
	json_object_object_add(o, "address", json_object_new_string(e->host));
	if (e->port)
		json_object_object_add(o, "port", json_object_new_int(e->port));
	return o;
}

static json_object *blob_json(const struct ms_blob *b)
{
	if (!b->origin)
		return NULL;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "source", json_object_new_string(b->origin));
	json_object_object_add(o, "bytes", json_object_new_int64((int64_t)b->len));
	return o;
}

static json_object *tls_json(const struct ms_tls *t)
{
	json_object *o = json_object_new_object(), *sans = json_object_new_array();

	json_object_object_add(o, "enabled", json_object_new_boolean(t->enabled));
	json_object_object_add(o, "versionMin", json_object_new_string(cfg_tls_version_name(t->min)));
	json_object_object_add(o, "versionMax", json_object_new_string(cfg_tls_version_name(t->max)));
	json_object_object_add(o, "allowRenegotiation", json_object_new_boolean(t->allow_renegotiation));
	json_object_object_add(o, "mode", json_object_new_string(cfg_mode_name(t->mode)));
	if (t->server_name)
		json_object_object_add(o, "serverName", json_object_new_string(t->server_name));
	json_object_object_add(o, "sni", json_object_new_boolean(!t->sni_disabled));
	for (size_t i = 0; i < t->n_sans; i++) {
		json_object *s = json_object_new_object();
		json_object_object_add(s, "type", json_object_new_string(t->sans[i].prefix ? "Prefix" : "Exact"));
		json_object_object_add(s, "value", json_object_new_string(t->sans[i].value));
		json_object_array_add(sans, s);
	}
	json_object_object_add(o, "subjectAltNames", sans);
	if (t->ca.origin)
		json_object_object_add(o, "caCert", blob_json(&t->ca));
	else
		json_object_object_add(o, "caCert", json_object_new_string("system"));
	if (t->cert.origin)
		json_object_object_add(o, "clientCert", blob_json(&t->cert));
	if (t->key.origin)
		json_object_object_add(o, "clientKey", blob_json(&t->key));
	return o;
}

json_object *cfg_service_json(const struct ms_service *s)
{
	json_object *o = json_object_new_object(), *ports = json_object_new_array();
	json_object *hosts = json_object_new_array();
	char ip[MS_ADDR_STRLEN];

	json_object_object_add(o, "kind", json_object_new_string(cfg_kind_name(s->kind)));
	json_object_object_add(o, "name", json_object_new_string(s->name));
	json_object_object_add(o, "mesh", json_object_new_string(s->mesh));
	if (s->ns)
		json_object_object_add(o, "namespace", json_object_new_string(s->ns));
	json_object_object_add(o, "vip", json_object_new_string(addr_fmt(&s->vip, ip, sizeof(ip))));
	for (size_t i = 0; i < s->n_hostnames; i++)
		json_object_array_add(hosts, json_object_new_string(s->hostnames[i]));
	json_object_object_add(o, "hostnames", hosts);
	for (size_t i = 0; i < s->n_ports; i++) {
		const struct ms_port *p = &s->ports[i];
		json_object *po = json_object_new_object(), *eps = json_object_new_array();
		if (p->name)
			json_object_object_add(po, "name", json_object_new_string(p->name));
		json_object_object_add(po, "port", json_object_new_int(p->port));
		if (p->target_name)
			json_object_object_add(po, "targetPort", json_object_new_string(p->target_name));
		else if (s->kind == MS_KIND_MESH_SERVICE || s->kind == MS_KIND_GLOO_EXTERNAL_SERVICE)
			json_object_object_add(po, "targetPort", json_object_new_int(p->target_port));
		json_object_object_add(po, "protocol", json_object_new_string(cfg_proto_name(p->proto)));
		for (size_t j = 0; j < p->n_eps; j++)
			json_object_array_add(eps, endpoint_json(&p->eps[j]));
		json_object_object_add(po, "endpoints", eps);
		json_object_array_add(ports, po);
	}
	json_object_object_add(o, "ports", ports);
	if (s->kind != MS_KIND_MESH_SERVICE)
		json_object_object_add(o, "tls", tls_json(&s->tls));
	return o;
}

json_object *cfg_render_json(const struct ms_config *c)
{
	json_object *o = json_object_new_object(), *meshes = json_object_new_array();
	json_object *svcs = json_object_new_array();

	for (size_t i = 0; i < c->n_meshes; i++) {
		json_object *m = json_object_new_object();
		json_object_object_add(m, "name", json_object_new_string(c->meshes[i].name));
		json_object_object_add(m, "passthrough", json_object_new_boolean(c->meshes[i].passthrough));
		json_object_object_add(m, "forbidExternalServices",
				       json_object_new_boolean(c->meshes[i].forbid_external));
		json_object_object_add(m, "implicit", json_object_new_boolean(c->meshes[i].implicit));
		json_object_array_add(meshes, m);
	}
	for (size_t i = 0; i < c->n_svcs; i++)
		json_object_array_add(svcs, cfg_service_json(&c->svcs[i]));
	json_object_object_add(o, "meshes", meshes);
	json_object_object_add(o, "services", svcs);
	return o;
}

json_object *cfg_errors_json(const struct cfg_errors *e)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < e->n; i++) {
		json_object *x = json_object_new_object();
		json_object_object_add(x, "file", json_object_new_string(e->v[i].file));
		json_object_object_add(x, "line", json_object_new_int((int)e->v[i].line));
		json_object_object_add(x, "column", json_object_new_int((int)e->v[i].col));
		json_object_object_add(x, "field", json_object_new_string(e->v[i].field));
		json_object_object_add(x, "message", json_object_new_string(e->v[i].msg));
		if (e->v[i].warning)
			json_object_object_add(x, "warning", json_object_new_boolean(1));
		json_object_array_add(a, x);
	}
	return a;
}
