/* SPDX-License-Identifier: MIT */
#pragma once

#include "config-t.h"

#define MS_DEFAULT_MES_CIDR "242.0.0.0/8"
#define MS_DEFAULT_MS_CIDR "241.0.0.0/8"
#define MS_DEFAULT_GLOO_CIDR "240.240.0.0/16"
#define MS_DEFAULT_GLOO_MESH "default"
#define MS_CONFIG_MAX_FILE (16u << 20)
/* A config directory: at most this many *.yaml / *.yml entries in all, and
 * subdirectories (named *.yaml too) this deep. */
#define MS_CONFIG_MAX_FILES 4096u
#define MS_CONFIG_MAX_DEPTH 8u
/* MeshExternalService endpoints[].priority: Kuma's bound (Envoy priority levels) */
#define MS_MAX_PRIORITY 128

void cfg_opts_init(struct cfg_opts *o);

/* Load resources from files and directories (every *.yaml / *.yml of a
 * directory, sorted; only regular files, directory symlinks not followed).
 * Warnings (cfg_warn_add) may be in errs on success too. On success returns 0 and a config with one reference;
 * on failure returns -EINVAL with every problem in errs, or another negative
 * errno when a path cannot be read (also recorded in errs). */
int cfg_load_paths(const char *const *paths, size_t n, const struct cfg_opts *o,
		   struct cfg_errors *errs, struct ms_config **ret);

/* Load from memory (one "file"); used by tests, fuzzers and the embedded default. */
int cfg_load_buffer(const char *buf, size_t len, const char *name, const struct cfg_opts *o,
		    struct cfg_errors *errs, struct ms_config **ret);

/* The embedded default: one Mesh "default" with passthrough on. */
extern const char cfg_embedded_default[];

struct ms_config *cfg_ref(struct ms_config *c);
void cfg_unref(struct ms_config *c);

const struct ms_mesh *cfg_find_mesh(const struct ms_config *c, const char *name);
/* The service of mesh that owns vip:port (exact port first, then any port). */
const struct ms_service *cfg_find_vip(const struct ms_config *c, const char *mesh,
				      const struct ms_addr *vip, uint16_t port,
				      const struct ms_port **ret_port);

/* The service of mesh a generated hostname belongs to (case-insensitive, a
 * trailing dot allowed), or NULL. */
const struct ms_service *cfg_find_hostname(const struct ms_config *c, const char *mesh, const char *name);

/* The service of that kind, mesh and name, or NULL (binary search). */
const struct ms_service *cfg_find_service(const struct ms_config *c, enum ms_kind kind, const char *mesh,
					  const char *name);

const char *cfg_kind_name(enum ms_kind k);
const char *cfg_proto_name(enum ms_proto p);
const char *cfg_mode_name(enum ms_verify_mode m);
const char *cfg_tls_version_name(enum ms_tls_version v);

/* VIP table: what the agent persists in its state dir, keyed "kind/mesh/name"
 * (cfg_vip_key; the caller frees it). */
char *cfg_vip_key(const struct ms_service *s);
void cfg_vip_table_from_config(const struct ms_config *c, struct ms_vip_table *ret);
int cfg_vip_table_parse(const char *text, struct ms_vip_table *ret);
char *cfg_vip_table_format(const struct ms_vip_table *t);
void cfg_vip_table_clear(struct ms_vip_table *t);

/* Hostname templates: render tmpl for svc; NULL + error message on failure. */
char *cfg_template_render(const char *tmpl, const struct ms_service *svc, const char *zone,
			  char **ret_err);
/* Check a template without a service, as Kuma does: its syntax, and that it
 * renders with stub values to a DNS-1123 subdomain; 0 or -EINVAL with a message. */
int cfg_template_check(const char *tmpl, char **ret_err);

const char *cfg_label(const struct ms_labels *l, const char *key);

/* base64 (RFC 4648, padding required, whitespace ignored). 0 or -EINVAL. */
int cfg_base64_decode(const char *s, size_t len, unsigned char **ret, size_t *ret_len);
