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

/* What a mesh lets through outside it (decode-passthrough.c). The mode in
 * effect: MeshPassthrough's, else the Mesh's passthrough flag (ALL/NONE). */
enum ms_pass_mode cfg_pass_mode(const struct ms_mesh *m);
/* Not ALL, and some match may allow a destination (mode MATCHED, or a
 * registry match): the data plane must look. */
bool cfg_pass_matching(const struct ms_mesh *m);
/* The first IP or CIDR match (Kuma's order) that allows a:port under the
 * mesh's mode (every match with MATCHED, registry ones always), or NULL. */
const struct ms_pass_match *cfg_pass_ip(const struct ms_mesh *mesh, const struct ms_addr *a, uint16_t port);
/* The Domain match for a name seen on port (TLS SNI: MS_MATCH_TLS, HTTP/1
 * Host: MS_MATCH_HTTP, HTTP/2 :authority: MS_MATCH_HTTP2): exact names
 * before wildcards, the port's own before any-port ones; or NULL. */
const struct ms_pass_match *cfg_pass_domain(const struct ms_mesh *mesh, const char *name, uint16_t port,
					    enum ms_match_proto seen);
/* Some Domain match could apply to a connection to that port. */
bool cfg_pass_has_domain(const struct ms_mesh *mesh, uint16_t port);
/* "api.example.com" exactly, or "*.example.com": any deeper name (Envoy's
 * wildcard: a.example.com and a.b.example.com, not example.com), or "*". */
bool cfg_domain_match(const char *pattern, const char *name);
/* A match applies under the mesh's mode: every one with MATCHED, only the
 * registry ones (Gloo's) otherwise. */
bool cfg_match_live(const struct ms_mesh *mesh, const struct ms_pass_match *m);
/* An IP or CIDR match of IPv4 addresses (kept IPv4-mapped). */
bool cfg_match_is_v4(const struct ms_pass_match *m);
bool cfg_match_contains(const struct ms_pass_match *m, const struct ms_addr *a);
/* Kuma's order: IP, CIDR longest first, exact Domain (longer first), wildcard. */
void cfg_sort_matches(struct ms_pass_match *v, size_t n);
const char *cfg_match_proto_name(enum ms_match_proto p);
const char *cfg_match_type_name(enum ms_match_type t);

/* base64 (RFC 4648, padding required, whitespace ignored). 0 or -EINVAL. */
int cfg_base64_decode(const char *s, size_t len, unsigned char **ret, size_t *ret_len);
