/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/* The one contract between the BPF programs and the agent: map keys and
 * values, flags and counter indexes. Only <linux/types.h>; explicit padding. */
#pragma once

#include <linux/types.h>

#define MS_DEFAULT_LISTEN_PORT 15001
#define MS_DEFAULT_MARK 0x4d53 /* "MS" */
/* The agent's own sockets are the ones made by a task of the agent's cgroup
 * (its cgroup v2 id, which a pod cannot choose) and, for connects, carrying
 * its mark (which CAP_NET_RAW or CAP_NET_ADMIN can set on any socket). */
#define MS_MAX_EXCL_PORTS 8

#define MS_MAX_PODS 4096
#define MS_MAX_SVCS 65536
#define MS_MAX_CONNS 65536
#define MS_MAX_EXCL_CIDRS 4096
#define MS_MAX_DNS 16384
#define MS_DNS_PORT 53
#define MS_DEFAULT_DNS_PORT 15053
#define MS_IP_OPTS_MAX 40 /* the IPv4 header has room for 40 bytes of options */

/* ms_pods: netns cookie → pod */
enum ms_pod_flags {
	MS_POD_PASSTHROUGH = 1 << 0, /* the pod's mesh lets non-mesh destinations through */
	MS_POD_FORBID_EXT = 1 << 1,  /* the pod's mesh forbids external services */
	MS_POD_DNS = 1 << 2,         /* DNS (UDP and TCP port 53) goes to the agent's responder */
	MS_POD_FAIL_OPEN = 1 << 3,   /* no agent listening in the pod: leave connections alone */
	MS_POD_PROXY = 1 << 4,       /* the operator wants every connection through the forwarder (passthrough too) */
	/* The agent runs but could not open the pod's listener (its port taken,
	 * say): the pod stays enforced, and what needs the listener is refused. */
	MS_POD_NO_LISTENER = 1 << 5,
	MS_POD_NO_DNS = 1 << 6,      /* ... nor its DNS responder: port 53 as fail_open_dns says */
	MS_POD_PASS_MATCH = 1 << 7,  /* not MS_POD_PASSTHROUGH, and ms_pass may allow some (MeshPassthrough Matched, registry matches) */
};

struct ms_pod {
	__u32 mesh_id;
	__u32 flags;
	__u16 listen_port; /* host order */
	__u16 n_excl_ports;
	__u16 excl_ports[MS_MAX_EXCL_PORTS]; /* host order */
	__u16 dns_port; /* host order: the responder's port on the pod's loopback */
	__u16 pad;
};

/* ms_services: (mesh, VIP, port) → service; port 0 = every port of that VIP */
enum ms_svc_kind { MS_SVC_MESH = 1, MS_SVC_EXTERNAL = 2 };

/* The path a service's connections take, decided by the agent per service port. */
enum ms_svc_path {
	MS_PATH_PROXY = 0,  /* to the pod's listener: the forwarder does something to the bytes */
	MS_PATH_KERNEL = 1, /* rewritten at connect() to one of its endpoints; never reaches the agent */
};

struct ms_svc_key {
	__u32 mesh_id;
	__u16 port; /* host order */
	__u16 pad;
	__u8 vip[16]; /* IPv4 as ::ffff:a.b.c.d */
};

enum ms_svc_flags {
	MS_SVC_UNHEALTHY = 1 << 0, /* n_eps 0 because no endpoint is healthy (not because there is none) */
};

struct ms_svc {
	__u32 kind;
	__u16 path;   /* enum ms_svc_path */
	__u16 n_eps;  /* kernel path: endpoints in ms_endpoints under eps_id (0: refused, ECONNREFUSED) */
	__u32 eps_id; /* the endpoint set: ms_endpoints keys (eps_id, 0 .. n_eps-1) */
	__u32 flags;  /* enum ms_svc_flags */
};

/* ms_endpoints: one endpoint of a kernel-path service's set. A set is never
 * changed in place: the agent writes a new set under a new eps_id, then
 * swaps the one ms_services value that names it (a connect sees the old set
 * or the new one, never half of either), and deletes the old set one sync
 * later. */
struct ms_ep_key {
	__u32 eps_id;
	__u32 idx;
};

struct ms_ep {
	__u8 addr[16]; /* IPv4 as ::ffff:a.b.c.d */
	__u16 port;    /* host order */
	__u16 pad;
	__u32 pad2;
};

#define MS_MAX_ENDPOINTS (1u << 18)

/* Per-socket original destination (sk_storage, dies with the socket). */
enum ms_orig_flags {
	/* kernel path, as agents before ms_kpath recorded it: such a socket is
	 * left alone by sockops (its getpeername still reads the VIP here); bit
	 * 1 (their start_ms is set) is no longer read */
	MS_ORIG_KERNEL = 1 << 0,
};

struct ms_orig {
	__u8 addr[16]; /* IPv4 as ::ffff:a.b.c.d */
	__u16 port;    /* host order */
	__u16 flags;   /* enum ms_orig_flags */
	/* Kernel path: bpf_ktime_get_ns() at connect, in ms, modulo 2^32 (an
	 * age is right below 49 days; the layout of the pinned map stays). */
	__u32 start_ms;
};

/* One live kernel-path connection, as the TCP socket iterator (iter/tcp)
 * writes it for the agent: the iterator walks the sockets of the netns that
 * created it, so the pod is the netns the agent iterated. */
enum ms_kconn_flags {
	MS_KCONN_AGE = 1 << 0, /* age_ms is known (always, since ms_kpath) */
};

struct ms_kconn {
	__u64 cookie;         /* the socket's cookie */
	__u64 bytes_acked;    /* live from tcp_sock: sent and acknowledged */
	__u64 bytes_received; /* live from tcp_sock */
	__u8 local[16];       /* the pod's address, IPv4 as ::ffff:a.b.c.d */
	__u8 vip[16];         /* where the app connected */
	__u8 ep[16];          /* the endpoint connect4/6 sent it to */
	__u16 local_port;     /* host order, all three */
	__u16 vip_port;
	__u16 ep_port;
	__u8 state;           /* TCP state (1 established, 2 SYN_SENT, ...) */
	__u8 flags;           /* enum ms_kconn_flags */
	__u32 age_ms;
	__u32 pad;
};

/* A kernel-path socket, by socket cookie (ms_kpath): what connect4/6 knew
 * that the socket itself does not keep, for getpeername, sockops' counters and
 * `meshsplice conns`. An LRU hash, preallocated: no allocation at connect (a
 * socket's storage is a memcg-charged one), and an entry whose socket never
 * reached TCP (connect failed before the SYN) ages out instead of staying.
 * Deleted by sockops at close. */
struct ms_kpath {
	__u8 vip[16];  /* where the app connected, IPv4 as ::ffff:a.b.c.d */
	__u16 vip_port; /* host order */
	__u16 pad;
	__u32 mesh_id;  /* the pod's mesh at connect */
	__u32 start_ms; /* bpf_ktime_get_ns() at connect, in ms, modulo 2^32 */
	__u32 pad2;
};

#define MS_MAX_KPATH 65536

/* Kernel-path counters, kept by sockops without the agent, in one per-CPU
 * LRU hash (ms_kstats) keyed by service port and endpoint: one lookup a
 * counted event. The agent sums the CPUs and folds the entries into its
 * views (per endpoint for health, per service for metrics, a total); an
 * entry that ages out comes back from zero (the agent takes a smaller total
 * as a reset). */
struct ms_kstat_key {
	__u8 vip[16];  /* IPv4 as ::ffff:a.b.c.d */
	__u8 ep[16];   /* the address the socket connected to */
	__u32 mesh_id;
	__u16 vip_port; /* host order, both */
	__u16 ep_port;
};

struct ms_kstat {
	__u64 opened;         /* connections established */
	__u64 failed;         /* active opens that went SYN_SENT → CLOSE (reset, timeout, closed while connecting) */
	__u64 closed;         /* established connections closed */
	__u64 bytes_acked;    /* of closed connections: sent and acknowledged (RFC 4898 ThruOctetsAcked) */
	__u64 bytes_received; /* of closed connections: received (ThruOctetsReceived) */
};

#define MS_MAX_KSTATS 65536

/* ms_conns: what the agent sees of a redirected socket → its original destination */
struct ms_conn_key {
	__u64 netns_cookie;
	__u8 addr[16]; /* the client's local address, IPv4 as ::ffff:a.b.c.d */
	__u16 port;    /* the client's local port, host order */
	__u16 pad[3];
};

/* ms_dns: the resolver a pod's UDP DNS query was meant for, keyed by the
 * client socket's local port (known at sendmsg, after autobind); port 0
 * holds the pod's most recent one (a connect()ed socket has no port yet
 * when connect4 runs). LRU: entries age out, nobody deletes them. */
struct ms_dns_key {
	__u64 netns_cookie;
	__u16 port; /* host order */
	__u16 pad[3];
};

/* ms_excl: LPM trie, prefix over cookie (64 bits, always full) then address */
struct ms_excl_key {
	__u32 prefixlen; /* 64 + address prefix length over the 128-bit form */
	__u8 cookie[8];
	__u8 addr[16];
};

/* ms_pass: LPM trie of what a mesh lets through outside it (MeshPassthrough
 * IP and CIDR matches; a Domain match on a port puts a prefix over the fixed
 * part alone, so that any address on that port goes to the forwarder, which
 * reads the name). The fixed part is always matched whole; a port-0 entry
 * ("every port") needs a second lookup. The set in force is the generation
 * in ms_pass_gen[0]: the agent writes a new generation, then swaps that one
 * value, and deletes the one before the previous a sync later. */
enum ms_pass_verdict {
	MS_PASSV_ALLOW = 1,  /* an IP or CIDR match: leave it alone */
	MS_PASSV_DOMAIN = 2, /* a Domain match may apply on that port: to the forwarder */
};

struct ms_pass_key {
	__u32 prefixlen; /* MS_PASS_FIXED_BITS + address prefix over the 128-bit form */
	__u32 gen;
	__u32 mesh_id;
	__u16 port;   /* host order; 0: every port */
	__u8 family;  /* 4 or 6: an IPv6 prefix never takes an IPv4-mapped address */
	__u8 addr[16];
	__u8 pad;
};

#define MS_PASS_FIXED_BITS ((4 + 4 + 2 + 1) * 8)
#define MS_MAX_PASS 16384

struct ms_pass_val {
	__u16 verdict; /* enum ms_pass_verdict */
	__u16 idx;     /* the match's index on the mesh (Kuma's order), for the agent's logs */
};

/* Counter indexes (ms_counters, per-CPU array): why a connect was or was not steered. */
enum ms_counter {
	MS_CNT_REDIRECTED,
	MS_CNT_SKIP_NOT_TCP,
	MS_CNT_SKIP_POD_OFF,
	MS_CNT_SKIP_MARK,
	MS_CNT_SKIP_LOCAL,
	MS_CNT_SKIP_EXCL_PORT,
	MS_CNT_SKIP_EXCL_CIDR,
	MS_CNT_DENY_PASSTHROUGH,
	MS_CNT_DENY_EXTERNAL,
	MS_CNT_NO_STORAGE,
	MS_CNT_REKEYED,
	MS_CNT_REKEY_FAIL,
	MS_CNT_PEERNAME,
	MS_CNT_DNS_REDIRECTED,
	MS_CNT_DNS_REPLY_REWRITTEN,
	MS_CNT_FAIL_OPEN,
	MS_CNT_KERNEL,          /* a VIP rewritten to an endpoint at connect (kernel path) */
	MS_CNT_KERNEL_NO_EP,    /* a kernel-path VIP with no endpoint: ECONNREFUSED */
	MS_CNT_KERNEL_FALLBACK, /* an endpoint set changed under the connect: sent to the proxy instead */
	MS_CNT_PASSTHROUGH,     /* passthrough the mesh allows: left alone */
	MS_CNT_DENY_SOCKOPT, /* setsockopt of an option that changes where packets go */
	MS_CNT_DENY_BIND,    /* bind to the agent's listener or DNS port on the pod's loopback */
	MS_CNT_FORGED_MARK,  /* the agent's mark on a socket that is not the agent's: treated as the pod's */
	MS_CNT_DNS_MAP_FAIL, /* the resolver of a UDP query could not be recorded: refused */
	MS_CNT_DENY_PKT_REROUTE, /* an enabled pod's packet with a source route or routing header: dropped */
	MS_CNT_DENY_NO_LISTENER, /* the pod's listener is not open (the agent retries): refused, never direct */
	MS_CNT_KERNEL_UNHEALTHY, /* a kernel-path VIP whose endpoints are all unhealthy: ECONNREFUSED */
	MS_CNT_KSTAT_FULL,       /* a kernel-path connection not counted (a stats entry could not be made) */
	MS_CNT_PASS_MATCH,      /* a MeshPassthrough IP or CIDR match allowed it: left alone */
	MS_CNT_PASS_DOMAIN,     /* a MeshPassthrough Domain match may apply: to the forwarder */
	MS_CNT_DENY_PASS_MATCH, /* MeshPassthrough: no match allows it (EPERM) */
	MS_CNT__MAX,
};

/* ms_counters' size: room to add counters without breaking the pinned map. */
#define MS_CNT_SLOTS 32
_Static_assert(MS_CNT__MAX <= MS_CNT_SLOTS, "counter slots");

_Static_assert(sizeof(struct ms_pod) == 32, "ms_pod layout");
_Static_assert(sizeof(struct ms_svc_key) == 24, "ms_svc_key layout");
_Static_assert(sizeof(struct ms_svc) == 16, "ms_svc layout");
_Static_assert(sizeof(struct ms_ep_key) == 8, "ms_ep_key layout");
_Static_assert(sizeof(struct ms_ep) == 24, "ms_ep layout");
_Static_assert(sizeof(struct ms_kstat_key) == 40, "ms_kstat_key layout");
_Static_assert(sizeof(struct ms_kpath) == 32, "ms_kpath layout");
_Static_assert(sizeof(struct ms_kstat) == 40, "ms_kstat layout");
_Static_assert(sizeof(struct ms_orig) == 24, "ms_orig layout");
_Static_assert(sizeof(struct ms_kconn) == 88, "ms_kconn layout");
_Static_assert(sizeof(struct ms_conn_key) == 32, "ms_conn_key layout");
_Static_assert(sizeof(struct ms_dns_key) == 16, "ms_dns_key layout");
_Static_assert(sizeof(struct ms_excl_key) == 28, "ms_excl_key layout");
_Static_assert(sizeof(struct ms_pass_key) == 32, "ms_pass_key layout");
_Static_assert(sizeof(struct ms_pass_val) == 4, "ms_pass_val layout");
