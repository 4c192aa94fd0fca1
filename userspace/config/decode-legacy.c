// SPDX-License-Identifier: MIT
/* The legacy ExternalService. */
#include <string.h>
#include <strings.h>

#include "loader.h"
#include "util.h"

/* Legacy ExternalService: networking.address host:port + networking.tls. */
void decode_es(struct loader *L, struct dctx *d, struct meta *m)
{
	const struct ynode *body = m->body, *net, *tls;
	struct ms_service *s;
	_cleanup_free_ char *address = NULL;
	char **tags = NULL;
	size_t n_tags = 0, idx;
	const char *path = m->k8s ? "spec" : "";
	char p[DPATH_MAX], q[DPATH_MAX];
	int proto = MS_PROTO_TCP;

	if (!d_is_map(d, body, m->k8s ? "spec" : "document"))
		return;
	s = loader_svc_new(L, MS_KIND_EXTERNAL_SERVICE, m, d);
	idx = L->c->n_svcs - 1;
	if (m->k8s)
		d_known(d, body, path, KEYS("tags", "networking"));
	s->ports = xcalloc(1, sizeof(*s->ports));
	s->n_ports = 1;
	/* Kuma's ValidateTags: kuma.io/service required, charsets, a protocol it knows */
	r_tags(d, body, "tags", path, R_TAGS_SERVICE | R_TAGS_PROTOCOL);
	if (d_strmap(d, body, "tags", path, &tags, &n_tags) == 0) {
		struct ms_labels t = { .kv = tags, .n = n_tags };
		const char *pr = cfg_label(&t, "kuma.io/protocol");
		for (size_t i = 0; pr && i < ARRAY_SIZE(cfg_proto_names); i++)
			if (!strcasecmp(pr, cfg_proto_names[i]))
				proto = (int)i;
		for (size_t i = 0; i < n_tags; i++)
			cfg_labels_set(&L->c->svcs[idx].labels, tags[2 * i], tags[2 * i + 1]);
		cfg_labels_free(&t);
	}
	L->c->svcs[idx].ports[0].proto = (enum ms_proto)proto;
	net = ynode_get(body, "networking");
	d_join(p, path, "networking");
	if (!net) {
		d_err(d, body, p, "required field is missing");
		return;
	}
	if (!d_is_map(d, net, p))
		return;
	d_known(d, net, p, KEYS("address", "tls", "disableHostDNSEntry"));
	if (d_str(d, net, "address", p, true, &address) == 0 && address) {
		/* host:port, [v6]:port */
		char *colon = strrchr(address, ':');
		struct ms_endpoint e = { 0 };
		struct ynode fake = { .type = YNODE_SCALAR, .plain = true };
		const struct ynode *an = ynode_get(net, "address");
		if (!colon || colon == address) {
			d_err(d, an, d_join(q, p, "address"), "\"%s\" is not host:port", log_escape(address));
		} else {
			*colon = '\0';
			char *host = address;
			if (host[0] == '[' && colon[-1] == ']') {
				host++;
				colon[-1] = '\0';
			}
			fake.str = colon + 1;
			fake.len = strlen(colon + 1);
			if (d_parse_port(&fake, &e.port) < 0)
				d_err(d, an, d_join(q, p, "address"), "port \"%s\" is not 1-65535",
				      log_escape(colon + 1));
			else if (addr_parse(host, &e.ip) == 0)
				e.type = MS_EP_IP;
			else if (dns_name_valid(host))
				e.type = MS_EP_DNS;
			else
				d_err(d, an, d_join(q, p, "address"),
				      "\"%s\" is not an IP address or a DNS name", log_escape(host));
			if (e.port && (e.type == MS_EP_IP || dns_name_valid(host))) {
				e.host = xstrdup(host);
				L->c->svcs[idx].ports[0].eps = xcalloc(1, sizeof(e));
				L->c->svcs[idx].ports[0].eps[0] = e;
				L->c->svcs[idx].ports[0].n_eps = 1;
				/* Kuma serves a legacy ExternalService on its own port. */
				L->c->svcs[idx].ports[0].port = e.port;
			}
		}
	}
	/* Kuma: the service may not be named as its own address's host */
	const struct ynode *svn = ynode_get(ynode_get(body, "tags"), "kuma.io/service");
	const char *an = r_peek(net, "address");
	char host[256];
	const char *hport;
	if (svn && svn->type == YNODE_SCALAR && an && r_split_host_port(an, host, sizeof(host), &hport) == 0 &&
	    streq(host, svn->str))
		d_err(d, svn, d_join(q, path, "tags.kuma.io/service"), "cannot be the same as networking.address");
	tls = ynode_get(net, "tls");
	d_join(q, p, "tls");
	if (tls && !ynode_is_null(tls) && d_is_map(d, tls, q)) {
		struct ms_tls *t = &L->c->svcs[idx].tls;
		const struct ynode *sn;
		d_known(d, tls, q,
			KEYS("enabled", "allowRenegotiation", "serverName", "caCert", "clientCert",
			     "clientKey"));
		d_bool(d, tls, "enabled", q, &t->enabled);
		d_bool(d, tls, "allowRenegotiation", q, &t->allow_renegotiation);
		if ((sn = ynode_get(tls, "serverName")) && sn->type == YNODE_SCALAR && sn->len == 0 &&
		    !sn->plain) {
			t->sni_disabled = true; /* serverName: "" */
		} else if (d_str(d, tls, "serverName", q, false, &t->server_name) == 0 &&
			   t->server_name && !dns_name_valid(t->server_name)) {
			char r[DPATH_MAX];
			d_err(d, sn, d_join(r, q, "serverName"), "\"%s\" is not a valid DNS name",
			      log_escape(t->server_name));
		}
		decode_source(L, d, tls, "caCert", q, idx, 0, false);
		decode_source(L, d, tls, "clientCert", q, idx, 1, false);
		decode_source(L, d, tls, "clientKey", q, idx, 2, false);
	}
}
