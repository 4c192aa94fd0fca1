/* SPDX-License-Identifier: MIT */
#pragma once

/* Internal to config/: what loading keeps while files are read (secrets,
 * references, Dataplanes, selectors) and the passes that share it. */

#include "config.h"
#include "decode.h"
#include "yaml-dom.h"

struct secret {
	char *name, *mesh;
	unsigned char *data;
	size_t len;
	char *file;
	unsigned line, col;
};

/* A secret: reference, resolved once every file is read. */
struct blobref {
	size_t svc;
	int which; /* 0 ca, 1 cert, 2 key */
	char *secret;
	char *file;
	unsigned line, col;
	char *field;
};

struct inbound {
	uint16_t port;
	char *name;
	struct ms_addr addr;
	struct ms_labels tags;
};

struct dataplane {
	char *name, *mesh, *ns;
	struct ms_labels labels; /* metadata labels: what dataplaneLabels selects */
	struct inbound *in;
	size_t n_in;
};

/* MeshService selector, kept aside until Dataplanes are known. */
struct ms_selector {
	size_t svc;
	enum { SEL_TAGS, SEL_REF, SEL_LABELS } by;
	struct ms_labels tags; /* SEL_TAGS: inbound tags; SEL_LABELS: Dataplane labels */
	char *dp_name;         /* SEL_REF: "name", or Kubernetes' "name.namespace" */
};

/* One MeshPassthrough, kept until every Mesh is known (link_passthrough). */
struct pass_doc {
	char *name, *mesh;
	enum ms_pass_mode mode;
	bool mode_set;
	struct ms_pass_match *matches;
	size_t n_matches;
	char *file;
	unsigned line, col;
};

struct loader {
	const struct cfg_opts *o;
	struct cfg_errors *errs;
	struct ms_config *c;
	struct secret *secrets;
	size_t n_secrets;
	struct blobref *refs;
	size_t n_refs;
	struct dataplane *dps;
	size_t n_dps;
	struct ms_selector *sels;
	size_t n_sels;
	struct pass_doc *passes;
	size_t n_passes;
	unsigned n_entries; /* YAML names met in directories (MS_CONFIG_MAX_FILES) */
	struct gloo_state *gloo; /* decode-gloo.c: ExternalEndpoints, selectors, matches */
};

/* What a document says about itself, in either style. */
struct meta {
	const char *kind;
	char *name, *mesh, *ns;
	struct ms_labels labels;
	const struct ynode *body; /* spec (k8s/new resources) or the document (legacy universal) */
	const struct ynode *doc;
	const struct ynode *status;
	bool k8s;
};

#define KEYS(...) ((const char *const[]){ __VA_ARGS__, NULL })

extern const char *const cfg_proto_names[5];
extern const char *const cfg_mode_names[4];
extern const char *const cfg_tlsver_names[5];

/* model.c */
void cfg_labels_free(struct ms_labels *l);
void cfg_labels_set(struct ms_labels *l, const char *k, const char *v);
/* Every pair of sel is in l. */
bool cfg_labels_match(const struct ms_labels *sel, const struct ms_labels *l);
void cfg_endpoint_free(struct ms_endpoint *e);
void cfg_blob_free(struct ms_blob *b); /* wiped: key material */
void cfg_config_free(struct ms_config *c);
void loader_free(struct loader *L);
void doc_meta_free(struct meta *m);

/* decode-doc.c */
struct ms_service *loader_svc_new(struct loader *L, enum ms_kind k, struct meta *m, struct dctx *d);
void decode_status_vip(struct dctx *d, const struct ynode *status, struct ms_service *s);
void load_one(struct loader *L, const char *buf, size_t len, const char *name);

/* decode-<kind>.c: one document's body (m->body) into the loader */
int decode_endpoint(struct dctx *d, const struct ynode *n, const char *path,
		    struct ms_endpoint *ret);
void decode_source(struct loader *L, struct dctx *d, const struct ynode *parent, const char *key,
		   const char *path, size_t svc_idx, int which, bool secure);
void decode_mes_tls(struct loader *L, struct dctx *d, const struct ynode *tls, const char *path,
		    size_t idx);
void decode_mes(struct loader *L, struct dctx *d, struct meta *m);
void decode_es(struct loader *L, struct dctx *d, struct meta *m);
void decode_ms(struct loader *L, struct dctx *d, struct meta *m);
void decode_hostgen(struct loader *L, struct dctx *d, struct meta *m);
void decode_mesh(struct loader *L, struct dctx *d, struct meta *m);
void decode_secret(struct loader *L, struct dctx *d, struct meta *m);
void decode_dataplane(struct loader *L, struct dctx *d, struct meta *m);
void decode_passthrough(struct loader *L, struct dctx *d, struct meta *m);
void pass_doc_free(struct pass_doc *pd);
void link_passthrough(struct loader *L);

/* decode-gloo.c: Gloo Mesh's ExternalService and ExternalEndpoint */
bool gloo_api(const struct ynode *doc); /* apiVersion networking.gloo.solo.io/... */
void decode_gloo(struct loader *L, struct dctx *d, struct meta *m);
void gloo_link(struct loader *L); /* selectors → endpoints; matches onto their meshes */
void gloo_free(struct loader *L);

/* link.c: every pass over the whole set, then the config or -EINVAL (frees L). */
int loader_finish(struct loader *L, struct ms_config **ret);

/* index.c */
typedef int svc_cmp_fn(const struct ms_service *, const struct ms_service *);
/* The services' indexes sorted by cmp, ties by index; the caller frees it. */
uint32_t *svcs_sorted(const struct ms_config *c, svc_cmp_fn *cmp);
int svc_identity_cmp(const struct ms_service *a, const struct ms_service *b);
void index_check_dup_svcs(struct loader *L);
void index_check_hostname_clashes(struct loader *L);
void index_build_vips(struct ms_config *c);
void index_build_names(struct ms_config *c);

/* vip.c */
int vips_assign(struct loader *L);
void vips_check_clashes(struct loader *L);

/* template.c */
void hostnames_generate(struct loader *L);

/* names.c: NULL when valid, else why not (Kuma's words where it has them) */
const char *cfg_name_check(const char *name);           /* a resource's name */
const char *cfg_mesh_name_check(const char *mesh);      /* a mesh-scoped resource's mesh */
const char *cfg_label_key_check(const char *key);       /* Kubernetes qualified name */
const char *cfg_label_value_check(const char *value);

/* rules.c: Kuma's shared checks (validators.go), on the YAML as written */
/* An optional string field: "" when absent or null, NULL (reported, *bad
 * set) when it is not a string. Points into the tree. */
const char *r_text(struct dctx *d, const struct ynode *map, const char *key, const char *path,
		   bool *bad);
/* The same without a report: NULL when not a string. */
const char *r_peek(const struct ynode *map, const char *key);
int r_peek_uint(const struct ynode *map, const char *key, unsigned long *ret);
/* An optional uint32 field (absent or null: 0). */
int r_uint(struct dctx *d, const struct ynode *map, const char *key, const char *path,
	   unsigned long *ret);
bool r_port_ok(unsigned long port);
/* ValidatePort: map[key] in 1..65535 (absent is 0: refused). */
void r_port(struct dctx *d, const struct ynode *map, const char *key, const char *path);
bool r_is_ip(const char *s);           /* Go's net.ParseIP */
bool r_is_unspecified(const char *s);  /* 0.0.0.0 or :: in any spelling */
bool r_is_dns_name(const char *s);     /* govalidator.IsDNSName */
/* Go's net.SplitHostPort: 0 or -EINVAL; *port points into s. */
int r_split_host_port(const char *s, char *host, size_t hlen, const char **port);
bool r_request_uri(const char *s, char *port, size_t plen);
int r_pb_duration(const char *s, bool *positive);
bool r_protocol_known(const char *v);  /* core_meta.ParseProtocol knows it */
#define R_TAGS_ONE 0x1      /* RequireAtLeastOneTag */
#define R_TAGS_SERVICE 0x2  /* RequireService */
#define R_TAGS_SELECTOR 0x4 /* ValidateSelector: values may hold '/' or be "*" */
#define R_TAGS_PROTOCOL 0x8 /* kuma.io/protocol one Kuma knows */
#define R_TAGS_TCP_ONLY 0x10 /* kuma.io/protocol tcp only (a gateway) */
/* ValidateTags/ValidateSelector over owner[key]; returns the problems found. */
int r_tags(struct dctx *d, const struct ynode *owner, const char *key, const char *path,
	   unsigned flags);
void r_prometheus_conf(struct dctx *d, const struct ynode *conf, const char *path);
void r_unknown_backend(struct dctx *d, const struct ynode *be, const char *path, const char *known);
/* rules-mesh.c, rules-dataplane.c: what Kuma's Validate() refuses */
void rules_mesh(struct dctx *d, const struct ynode *b, const char *path);
void rules_dataplane(struct dctx *d, const struct ynode *b, const char *path);
