/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "errors.h"
#include "util.h"

enum ms_kind {
	MS_KIND_MESH_EXTERNAL_SERVICE,
	MS_KIND_MESH_SERVICE,
	MS_KIND_EXTERNAL_SERVICE, /* legacy ExternalService */
	MS_KIND_GLOO_EXTERNAL_SERVICE, /* Gloo Mesh ExternalService, one per exact host */
};

enum ms_proto { MS_PROTO_TCP, MS_PROTO_HTTP, MS_PROTO_HTTP2, MS_PROTO_GRPC, MS_PROTO_KAFKA };

enum ms_ep_type { MS_EP_IP, MS_EP_DNS, MS_EP_UNIX };

struct ms_endpoint {
	enum ms_ep_type type;
	char *host; /* DNS name, unix socket path, or the IP as written */
	struct ms_addr ip;
	uint16_t port; /* 0 for unix sockets */
	uint8_t priority; /* MeshExternalService: 0 (first) .. 128; a level is used while no better one is healthy */
};

enum ms_tls_version { MS_TLS_AUTO, MS_TLS10, MS_TLS11, MS_TLS12, MS_TLS13 };

enum ms_verify_mode {
	MS_VERIFY_SECURED,  /* chain and name */
	MS_VERIFY_SKIP_SAN, /* chain only */
	MS_VERIFY_SKIP_CA,  /* name only */
	MS_VERIFY_SKIP_ALL,
};

struct ms_san {
	bool prefix; /* Prefix, else Exact */
	char *value;
};

/* Bytes from inline (base64), inlineString or a Secret; len 0 when unset.
 * Key material: never logged, never rendered. */
struct ms_blob {
	unsigned char *data;
	size_t len;
	char *origin; /* "inline", "inlineString", "secret:NAME", "file:PATH" */
	unsigned line, col; /* where the source is written */
	struct ms_file_id file; /* "file:": the file as it stood just before it was read */
};

struct ms_tls {
	bool enabled;
	enum ms_tls_version min, max;
	bool allow_renegotiation;
	enum ms_verify_mode mode;
	char *server_name;  /* NULL: default (the endpoint's DNS name) */
	bool sni_disabled;  /* legacy serverName: "" */
	struct ms_san *sans;
	size_t n_sans;
	struct ms_blob ca, cert, key;
	/* Why this TLS cannot work (a PEM that does not parse, a secret that is
	 * not there): Kuma takes such a config, so it loads with a warning, and
	 * the forwarder refuses the service's connections with this reason
	 * rather than fall back to anything (the system CAs, no client cert). */
	char *unusable;
};

struct ms_labels {
	char **kv; /* key0, value0, key1, value1 ... */
	size_t n;  /* pairs */
};

/* One port of a service and the endpoints that serve it. */
struct ms_port {
	char *name;
	uint16_t port;        /* the port on the VIP; 0 = every port */
	uint16_t target_port; /* MeshService: number, or 0 when target_name is used */
	char *target_name;
	enum ms_proto proto;
	struct ms_endpoint *eps;
	size_t n_eps;
};

struct ms_service {
	enum ms_kind kind;
	char *name;
	char *mesh;
	char *ns; /* Kubernetes namespace, or NULL */
	char *display_name;
	struct ms_labels labels;
	struct ms_addr vip;
	bool vip_explicit; /* from status, not allocated */
	struct ms_port *ports;
	size_t n_ports;
	struct ms_tls tls; /* external services only */
	char **hostnames;
	size_t n_hostnames;
	char *file;
	unsigned line, col;
	unsigned mesh_line, mesh_col; /* where its mesh is named (0: nowhere, default) */
	bool mesh_label;              /* by Kubernetes' kuma.io/mesh label */
};

/* Which non-mesh destinations a mesh lets through (Kuma's MeshPassthrough;
 * Gloo's ExternalService addresses and wildcard hosts add to it). */
enum ms_pass_mode {
	MS_PASS_UNSET,   /* no MeshPassthrough: the Mesh's passthrough flag decides */
	MS_PASS_NONE,    /* nothing outside the mesh */
	MS_PASS_MATCHED, /* only what a match allows */
	MS_PASS_ALL,     /* everything */
};

enum ms_match_type { MS_MATCH_IP, MS_MATCH_CIDR, MS_MATCH_DOMAIN };

enum ms_match_proto {
	MS_MATCH_TCP,
	MS_MATCH_TLS,
	MS_MATCH_HTTP,
	MS_MATCH_HTTP2,
	MS_MATCH_GRPC,
	MS_MATCH_MYSQL,
};

/* One destination a mesh allows (MeshPassthrough appendMatch[], or a Gloo
 * ExternalService's address or wildcard host). IP and CIDR are decided at
 * connect(); Domain by the forwarder peeking at the TLS SNI or HTTP Host. */
struct ms_pass_match {
	enum ms_match_type type;
	struct ms_cidr cidr;       /* IP (full-length prefix) and CIDR */
	char *domain;              /* Domain: "api.example.com" or "*.example.com", lower case */
	uint16_t port;             /* 0: every port */
	enum ms_match_proto proto;
	bool registry;             /* Gloo: allowed even where the mode is NONE (REGISTRY_ONLY) */
	char *origin;              /* "MeshPassthrough/NAME appendMatch[3]": what logs and counters name */
	char *file;
	unsigned line, col;
};

struct ms_mesh {
	char *name;
	uint32_t id; /* stable: hash of the name, shared with the BPF maps */
	bool passthrough;
	bool forbid_external;
	bool implicit; /* the "default" mesh, created when no file defines it */
	bool fail_open; /* label meshsplice.io/fail-mode: open — with the agent down, connections go direct */
	bool datapath_proxy; /* label meshsplice.io/datapath: proxy — every connection through the forwarder */
	enum ms_pass_mode pass_mode; /* MeshPassthrough's passthroughMode, MS_PASS_UNSET without one */
	struct ms_pass_match *matches; /* in Kuma's order: IP, CIDR (longest first), exact Domain, wildcard */
	size_t n_matches;
};

struct ms_hostgen {
	char *name;
	char *mesh; /* NULL: every mesh */
	bool for_mes, for_ms;
	struct ms_labels match; /* matchLabels */
	char *tmpl;
	char *file;
	unsigned line, col;
};

/* (mesh, VIP, port) → service port, sorted once per load: the lookup every
 * proxied connection makes. */
struct ms_vip_index {
	uint32_t mesh_id;
	uint16_t port; /* 0: every port */
	struct ms_addr vip;
	uint32_t svc, svc_port;
};

/* (mesh, hostname) → service, sorted once per load: what mesh DNS answers. */
struct ms_name_index {
	uint32_t mesh_id;
	const char *name; /* points into the service's hostnames */
	uint32_t svc;
};

/* A validated, immutable snapshot; shared by reference counting between
 * the agent's event loop and the connections that outlive a reload. */
struct ms_config {
	int refs;
	struct ms_mesh *meshes;
	size_t n_meshes;
	struct ms_service *svcs;
	size_t n_svcs;
	struct ms_hostgen *hostgens;
	size_t n_hostgens;
	size_t n_files;
	struct ms_vip_index *vidx;
	size_t n_vidx;
	struct ms_name_index *nidx;
	size_t n_nidx;
	uint32_t *sidx; /* services' indexes by kind, mesh, name */
};

/* A VIP that was handed out before, so it is kept. */
struct ms_vip_entry {
	char *key; /* "<kind>/<mesh>/<name>" */
	struct ms_addr vip;
};

struct ms_vip_table {
	struct ms_vip_entry *v;
	size_t n;
};

struct cfg_opts {
	struct ms_cidr mes_cidr; /* MeshExternalService and ExternalService VIPs */
	struct ms_cidr ms_cidr;  /* MeshService VIPs */
	const struct ms_vip_table *prev; /* may be NULL */
	const char *zone;        /* {{ .Zone }} */
	struct ms_cidr gloo_cidr; /* Gloo ExternalService hosts' VIPs (Istio's range) */
	const char *gloo_mesh;   /* mesh of a Gloo resource without the kuma.io/mesh label */
};
