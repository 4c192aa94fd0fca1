// SPDX-License-Identifier: MIT
/* validate and render: offline, no agent needed. */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "render.h"
#include "util.h"

/* The paths, the global options given after the command too, and --strict
 * (warnings are errors). */
static int collect_paths(struct cli *c, int argc, char **argv, const char ***ret, size_t *ret_n,
			 bool *ret_strict)
{
	const char **paths = xcalloc((size_t)argc, sizeof(char *));
	size_t n = 0;

	for (int i = 1; i < argc; i++) {
		bool has_value = i + 1 < argc;
		if ((streq(argv[i], "-o") || streq(argv[i], "--output")) && has_value) {
			c->json = streq(argv[++i], "json");
			continue;
		}
		if (streq(argv[i], "--strict")) {
			*ret_strict = true;
			continue;
		}
		if (streq(argv[i], "--mes-cidr") && has_value) {
			c->mes_cidr = argv[++i];
			continue;
		}
		if (streq(argv[i], "--ms-cidr") && has_value) {
			c->ms_cidr = argv[++i];
			continue;
		}
		if (streq(argv[i], "--gloo-vip-cidr") && has_value) {
			c->gloo_cidr = argv[++i];
			continue;
		}
		if (streq(argv[i], "--gloo-mesh") && has_value) {
			c->gloo_mesh = argv[++i];
			continue;
		}
		paths[n++] = argv[i];
	}
	if (n == 0) {
		free(paths);
		return cli_usage(c, "%s needs at least one file or directory", argv[0]);
	}
	*ret = paths;
	*ret_n = n;
	return 0;
}

static int load(struct cli *c, int argc, char **argv, struct ms_config **ret,
		struct cfg_errors *errs)
{
	_cleanup_free_ const char **paths = NULL;
	struct cfg_opts o;
	size_t n = 0; /* gcc 12 cannot see that collect_paths sets it whenever it returns 0 */

	int r = collect_paths(c, argc, argv, &paths, &n, &errs->strict);
	if (r)
		return r;
	cfg_opts_init(&o);
	if (c->mes_cidr && cidr_parse(c->mes_cidr, &o.mes_cidr) < 0)
		return cli_usage(c, "--mes-cidr \"%s\" is not a CIDR", c->mes_cidr);
	if (c->ms_cidr && cidr_parse(c->ms_cidr, &o.ms_cidr) < 0)
		return cli_usage(c, "--ms-cidr \"%s\" is not a CIDR", c->ms_cidr);
	if (c->gloo_cidr && cidr_parse(c->gloo_cidr, &o.gloo_cidr) < 0)
		return cli_usage(c, "--gloo-vip-cidr \"%s\" is not a CIDR", c->gloo_cidr);
	if (c->gloo_mesh)
		o.gloo_mesh = c->gloo_mesh;
	if (cfg_load_paths(paths, n, &o, errs, ret) < 0) {
		if (c->json) {
			json_object *j = json_object_new_object();
			json_object_object_add(j, "valid", json_object_new_boolean(0));
			json_object_object_add(j, "errors", cfg_errors_json(errs));
			puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY));
			json_object_put(j);
		} else {
			char buf[2048];
			for (size_t i = 0; i < errs->n; i++)
				fprintf(stderr, "%s\n", cfg_err_fmt(&errs->v[i], buf, sizeof(buf)));
			fprintf(stderr, "meshsplice: %zu problem%s found\n", errs->n, errs->n == 1 ? "" : "s");
		}
		return 1;
	}
	if (!c->json) {
		char buf[2048];
		for (size_t i = 0; i < errs->n; i++)
			fprintf(stderr, "%s\n", cfg_err_fmt(&errs->v[i], buf, sizeof(buf)));
	}
	return 0;
}

int cmd_validate(struct cli *c, int argc, char **argv)
{
	struct cfg_errors errs = { 0 };
	struct ms_config *cfg = NULL;
	int r = load(c, argc, argv, &cfg, &errs);

	if (r) {
		cfg_errors_clear(&errs);
		return r;
	}
	if (c->json) {
		json_object *w = cfg_errors_json(&errs);
		printf("{\"valid\": true, \"files\": %zu, \"meshes\": %zu, \"services\": %zu, \"warnings\": %s}\n",
		       cfg->n_files, cfg->n_meshes, cfg->n_svcs, json_object_to_json_string(w));
		json_object_put(w);
	} else {
		printf("valid: %zu file%s, %zu mesh%s, %zu service%s\n", cfg->n_files,
		       cfg->n_files == 1 ? "" : "s", cfg->n_meshes, cfg->n_meshes == 1 ? "" : "es",
		       cfg->n_svcs, cfg->n_svcs == 1 ? "" : "s");
	}
	cfg_errors_clear(&errs);
	cfg_unref(cfg);
	return 0;
}

static void print_table(const struct ms_config *cfg)
{
	printf("%-10s %-12s %s\n", "MESH", "PASSTHROUGH", "EXTERNAL SERVICES");
	for (size_t i = 0; i < cfg->n_meshes; i++)
		printf("%-10s %-12s %s\n", cfg->meshes[i].name,
		       cfg->meshes[i].passthrough ? "on" : "off",
		       cfg->meshes[i].forbid_external ? "forbidden" : "allowed");
	printf("\n%-20s %-24s %-10s %-16s %-10s %-36s %s\n", "KIND", "NAME", "MESH", "VIP", "PORT",
	       "ENDPOINTS", "TLS / HOSTNAMES");
	for (size_t i = 0; i < cfg->n_svcs; i++) {
		const struct ms_service *s = &cfg->svcs[i];
		char ip[MS_ADDR_STRLEN];

		for (size_t p = 0; p < s->n_ports; p++) {
			char eps[512] = "", port[32], tls[256] = "-";
			for (size_t e = 0; e < s->ports[p].n_eps; e++) {
				const struct ms_endpoint *ep = &s->ports[p].eps[e];
				size_t l = strlen(eps);
				if (ep->type == MS_EP_UNIX)
					snprintf(eps + l, sizeof(eps) - l, "%sunix://%s", e ? "," : "", ep->host);
				else
					snprintf(eps + l, sizeof(eps) - l, "%s%s:%u", e ? "," : "", ep->host, ep->port);
			}
			if (!*eps)
				snprintf(eps, sizeof(eps), "(none)");
			if (s->ports[p].port)
				snprintf(port, sizeof(port), "%u/%s", s->ports[p].port, cfg_proto_name(s->ports[p].proto));
			else
				snprintf(port, sizeof(port), "*/%s", cfg_proto_name(s->ports[p].proto));
			if (s->tls.enabled)
				snprintf(tls, sizeof(tls), "tls %s %s-%s%s%s", cfg_mode_name(s->tls.mode),
					 cfg_tls_version_name(s->tls.min), cfg_tls_version_name(s->tls.max),
					 s->tls.cert.origin ? " mtls" : "", s->tls.ca.origin ? "" : " system-ca");
			printf("%-20s %-24s %-10s %-16s %-10s %-36s %s", p ? "" : cfg_kind_name(s->kind),
			       p ? "" : s->name, p ? "" : s->mesh, p ? "" : addr_fmt(&s->vip, ip, sizeof(ip)),
			       port, eps, tls);
			for (size_t h = 0; p == 0 && h < s->n_hostnames; h++)
				printf(" %s", s->hostnames[h]);
			printf("\n");
		}
	}
}

int cmd_render(struct cli *c, int argc, char **argv)
{
	struct cfg_errors errs = { 0 };
	struct ms_config *cfg = NULL;
	int r = load(c, argc, argv, &cfg, &errs);

	cfg_errors_clear(&errs);
	if (r)
		return r;
	if (c->json) {
		json_object *j = cfg_render_json(cfg);
		puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(j);
	} else {
		print_table(cfg);
	}
	cfg_unref(cfg);
	return 0;
}
