// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/* Steering for enabled pods: connect4/6 save the original destination and
 * send the socket to the pod's listener (or refuse it), sockops re-keys the
 * saved destination by what the agent can see, getpeername4/6 give the app
 * its original peer back. DNS: connect4/6 and sendmsg4/6 send UDP and TCP
 * port 53 to the agent's responder, recvmsg4/6 make its answers come from
 * the resolver the app asked. A plaintext VIP whose endpoints are IP
 * addresses takes the kernel path: connect4/6 rewrite it to one of its
 * endpoints and the agent never sees the connection; passthrough the mesh
 * allows is left alone.
 *
 * One object for all hooks: the programs share every map, and one skeleton
 * keeps the load, pin and attach logic in one place. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "meshsplice.h"
#include "lib/addr.h"

/* UAPI values; <sys/socket.h> is libc's and does not build for BPF. */
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

#define VERDICT_ALLOW 1
#define VERDICT_DENY 0 /* connect() fails with EPERM (or bpf_set_retval's error) */
#define MS_ECONNREFUSED 111

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Set by the agent before load: sockets carrying this mark are its own. */
const volatile __u32 ms_agent_mark = MS_DEFAULT_MARK;
/* The VIP ranges (MeshExternalService, MeshService), as 16 bytes and a
 * prefix over them: a VIP without a service goes to the agent, which says
 * why it refuses it, instead of out as passthrough. */
const volatile __u8 ms_vip_net[2][16];
const volatile __u8 ms_vip_plen[2];

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MS_MAX_PODS);
	__type(key, __u64);
	__type(value, struct ms_pod);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ms_pods SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MS_MAX_SVCS);
	__type(key, struct ms_svc_key);
	__type(value, struct ms_svc);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ms_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MS_MAX_ENDPOINTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ms_ep_key);
	__type(value, struct ms_ep);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ms_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ms_orig);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ms_orig SEC(".maps");

/* LRU: an entry the agent never claims (agent down, client gone before the
 * close callback could run) ages out instead of filling the map. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MS_MAX_CONNS);
	__type(key, struct ms_conn_key);
	__type(value, struct ms_orig);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ms_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MS_MAX_DNS);
	__type(key, struct ms_dns_key);
	__type(value, struct ms_orig);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ms_dns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MS_MAX_EXCL_CIDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ms_excl_key);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ms_excl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MS_CNT_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ms_counters SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&ms_counters, &idx);

	if (v)
		*v += 1;
}

static __always_inline int port_excluded(const struct ms_pod *pod, __u16 port)
{
	/* Bounded loop over a fixed array: the verifier can see the bound. */
	for (int i = 0; i < MS_MAX_EXCL_PORTS; i++) {
		if (i >= pod->n_excl_ports)
			break;
		if (pod->excl_ports[i] == port)
			return 1;
	}
	return 0;
}

static __always_inline int cidr_excluded(__u64 cookie, const __u8 *addr)
{
	struct ms_excl_key k = { .prefixlen = 64 + 128 };

	__builtin_memcpy(k.cookie, &cookie, 8);
	__builtin_memcpy(k.addr, addr, 16);
	return bpf_map_lookup_elem(&ms_excl, &k) != NULL;
}

/* A fail-open pod with no agent listening in its netns (agent down, or
 * between two agents): its connections go where they were going. The
 * IPv4 socket stands for the agent: it always opens it. */
static __always_inline int agent_absent(struct bpf_sock_addr *ctx, const struct ms_pod *pod, __u16 port, int udp)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;

	if (!(pod->flags & MS_POD_FAIL_OPEN))
		return 0;
	t.ipv4.daddr = bpf_htonl(0x7f000001);
	t.ipv4.dport = bpf_htons(port);
	if (udp)
		sk = bpf_sk_lookup_udp(ctx, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	else
		sk = bpf_sk_lookup_tcp(ctx, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (sk) {
		bpf_sk_release(sk);
		return 0;
	}
	count(MS_CNT_FAIL_OPEN);
	return 1;
}

static __always_inline int dns_captured(const struct ms_pod *pod, __u16 port)
{
	return port == MS_DNS_PORT && (pod->flags & MS_POD_DNS) && pod->dns_port;
}

/* What an enabled pod's socket is never steered for, TCP or DNS alike: the
 * agent's own sockets, the pod's loopback, excluded ports and CIDRs. 1 (and
 * the reason counted) to leave it alone. */
static __always_inline int left_alone(struct bpf_sock_addr *ctx, const struct ms_pod *pod, __u64 cookie,
				      const __u8 *dst, __u16 port, int local)
{
	if (ctx->sk->mark == ms_agent_mark) {
		count(MS_CNT_SKIP_MARK);
		return 1;
	}
	if (local) {
		count(MS_CNT_SKIP_LOCAL);
		return 1;
	}
	if (port_excluded(pod, port)) {
		count(MS_CNT_SKIP_EXCL_PORT);
		return 1;
	}
	if (cidr_excluded(cookie, dst)) {
		count(MS_CNT_SKIP_EXCL_CIDR);
		return 1;
	}
	return 0;
}

static __always_inline int in_vip_range(const __u8 *dst)
{
	for (int r = 0; r < 2; r++) {
		__u8 plen = ms_vip_plen[r];
		int match = plen > 0;
		for (int i = 0; i < 16 && match; i++) {
			int bits = (int)plen - i * 8;
			__u8 mask = bits >= 8 ? 0xff : bits <= 0 ? 0 : (__u8)(0xff << (8 - bits));
			if ((dst[i] & mask) != (ms_vip_net[r][i] & mask))
				match = 0;
		}
		if (match)
			return 1;
	}
	return 0;
}

/* Save where the socket was going: in its own storage (getpeername,
 * recvmsg, and sockops for TCP read it back). NULL when there is no room. */
static __always_inline struct ms_orig *save_orig(struct bpf_sock_addr *ctx, const __u8 *dst, __u16 port)
{
	struct ms_orig *orig = bpf_sk_storage_get(&ms_orig, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);

	if (!orig) {
		/* Without a saved destination the agent could not forward: leave the
		 * socket alone rather than break it, and say so in a counter. */
		count(MS_CNT_NO_STORAGE);
		return 0;
	}
	__builtin_memcpy(orig->addr, dst, 16);
	orig->port = port;
	orig->flags = 0;
	return orig;
}

/* Where decide() sends a socket. */
struct steer_to {
	__u16 port;     /* the pod's loopback port (proxy path, DNS), or 0 */
	int kernel;     /* kernel path: to ep */
	struct ms_ep ep;
};

/* The kernel path: an endpoint of the set at random (the agent put only the
 * healthy ones of the best level in it). 1: to->ep is set; 0: refused with
 * ECONNREFUSED (no endpoint); -1: the set changed under us, take the proxy
 * path instead (the agent routes it the same way). */
static __always_inline int kernel_path(struct bpf_sock_addr *ctx, const struct ms_svc *svc, const __u8 *dst,
				       __u16 port, struct steer_to *to)
{
	struct ms_ep_key k = { .eps_id = svc->eps_id };
	const struct ms_ep *ep;
	struct ms_orig *orig;

	if (!svc->n_eps) {
		count(MS_CNT_KERNEL_NO_EP);
		bpf_set_retval(-MS_ECONNREFUSED);
		return 0;
	}
	k.idx = bpf_get_prandom_u32() % svc->n_eps;
	ep = bpf_map_lookup_elem(&ms_endpoints, &k);
	if (!ep) {
		count(MS_CNT_KERNEL_FALLBACK);
		return -1;
	}
	/* the VIP for getpeername; sockops leaves the socket alone */
	orig = save_orig(ctx, dst, port);
	if (!orig)
		return -1;
	orig->flags = MS_ORIG_KERNEL;
	to->ep = *ep;
	to->kernel = 1;
	count(MS_CNT_KERNEL);
	return 1;
}

/* The decision shared by both families, for TCP. Returns VERDICT_DENY to
 * refuse, or VERDICT_ALLOW with *to saying where the caller must send the
 * socket (nowhere: leave it alone). */
static __always_inline int decide(struct bpf_sock_addr *ctx, const __u8 *dst, __u16 port,
				  int local, struct steer_to *to)
{
	struct ms_svc_key sk = {};
	const struct ms_pod *pod;
	const struct ms_svc *svc;
	__u64 cookie;

	if (ctx->type != SOCK_STREAM) {
		count(MS_CNT_SKIP_NOT_TCP);
		return VERDICT_ALLOW;
	}
	cookie = bpf_get_netns_cookie(ctx);
	pod = bpf_map_lookup_elem(&ms_pods, &cookie);
	if (!pod) {
		count(MS_CNT_SKIP_POD_OFF);
		return VERDICT_ALLOW;
	}
	if (left_alone(ctx, pod, cookie, dst, port, local))
		return VERDICT_ALLOW;
	if (dns_captured(pod, port)) {
		/* DNS over TCP: to the responder, whatever the resolver. */
		if (!agent_absent(ctx, pod, pod->dns_port, 0) && save_orig(ctx, dst, port)) {
			to->port = pod->dns_port;
			count(MS_CNT_DNS_REDIRECTED);
		}
		return VERDICT_ALLOW;
	}
	sk.mesh_id = pod->mesh_id;
	sk.port = port;
	__builtin_memcpy(sk.vip, dst, 16);
	svc = bpf_map_lookup_elem(&ms_services, &sk);
	if (!svc) {
		sk.port = 0;
		svc = bpf_map_lookup_elem(&ms_services, &sk);
	}
	if (svc && svc->kind == MS_SVC_EXTERNAL && (pod->flags & MS_POD_FORBID_EXT)) {
		count(MS_CNT_DENY_EXTERNAL);
		return VERDICT_DENY;
	}
	if (!svc && !(pod->flags & MS_POD_PASSTHROUGH)) {
		count(MS_CNT_DENY_PASSTHROUGH);
		return VERDICT_DENY;
	}
	if (svc && svc->path == MS_PATH_KERNEL && !(pod->flags & MS_POD_PROXY)) {
		int k = kernel_path(ctx, svc, dst, port, to);
		if (k >= 0)
			return k ? VERDICT_ALLOW : VERDICT_DENY;
	}
	if (!svc && !(pod->flags & MS_POD_PROXY) && !in_vip_range(dst)) {
		/* passthrough the mesh allows needs nothing from the agent */
		count(MS_CNT_PASSTHROUGH);
		return VERDICT_ALLOW;
	}
	if (agent_absent(ctx, pod, pod->listen_port, 0) || !save_orig(ctx, dst, port))
		return VERDICT_ALLOW;
	to->port = pod->listen_port;
	count(MS_CNT_REDIRECTED);
	return VERDICT_ALLOW;
}

/* UDP DNS of an enabled pod: remember the resolver (socket storage for the
 * reply's source, ms_dns for the agent) and return the responder's port, or
 * 0 to leave the datagram alone. key_port: the socket's local port when
 * known (sendmsg), 0 at connect. */
static __always_inline __u16 dns_udp(struct bpf_sock_addr *ctx, const __u8 *dst, int local, __u16 key_port)
{
	__u16 port = bpf_ntohs((__u16)ctx->user_port);
	struct ms_dns_key k = {};
	const struct ms_pod *pod;
	struct ms_orig *orig;
	__u64 cookie;

	if (port != MS_DNS_PORT)
		return 0;
	cookie = bpf_get_netns_cookie(ctx);
	pod = bpf_map_lookup_elem(&ms_pods, &cookie);
	if (!pod || !dns_captured(pod, port))
		return 0;
	if (left_alone(ctx, pod, cookie, dst, port, local) || agent_absent(ctx, pod, pod->dns_port, 1))
		return 0;
	orig = save_orig(ctx, dst, port);
	if (!orig)
		return 0;
	k.netns_cookie = cookie;
	bpf_map_update_elem(&ms_dns, &k, orig, BPF_ANY);
	if (key_port) {
		k.port = key_port;
		bpf_map_update_elem(&ms_dns, &k, orig, BPF_ANY);
	}
	count(MS_CNT_DNS_REDIRECTED);
	return pod->dns_port;
}

static __always_inline void to_lo4(struct bpf_sock_addr *ctx, __u16 port)
{
	ctx->user_ip4 = bpf_htonl(0x7f000001);
	ctx->user_port = bpf_htons(port);
}

/* A dual-stack socket dialling an IPv4-mapped address stays IPv4 on the
 * wire: send it to the IPv4 loopback, still as a mapped address. */
static __always_inline void to_lo6(struct bpf_sock_addr *ctx, __u16 port, int mapped)
{
	ctx->user_ip6[0] = 0;
	ctx->user_ip6[1] = 0;
	ctx->user_ip6[2] = mapped ? bpf_htonl(0x0000ffff) : 0;
	ctx->user_ip6[3] = mapped ? bpf_htonl(0x7f000001) : bpf_htonl(1);
	ctx->user_port = bpf_htons(port);
}

/* Show the app orig as its peer (getpeername, a DNS answer's source). */
static __always_inline void write_orig6(struct bpf_sock_addr *ctx, const struct ms_orig *orig)
{
	__u32 w[4];

	__builtin_memcpy(w, orig->addr, 16);
	ctx->user_ip6[0] = w[0];
	ctx->user_ip6[1] = w[1];
	ctx->user_ip6[2] = w[2];
	ctx->user_ip6[3] = w[3];
	ctx->user_port = bpf_htons(orig->port);
}

static __always_inline void read6(struct bpf_sock_addr *ctx, __u32 *w)
{
	w[0] = ctx->user_ip6[0];
	w[1] = ctx->user_ip6[1];
	w[2] = ctx->user_ip6[2];
	w[3] = ctx->user_ip6[3];
}

SEC("cgroup/connect4")
int ms_connect4(struct bpf_sock_addr *ctx)
{
	__u32 ip = ctx->user_ip4;
	struct steer_to to = {};
	__u8 dst[16];
	int v;

	ms_addr_from4(dst, ip);
	if (ctx->type == SOCK_DGRAM) {
		__u16 to = dns_udp(ctx, dst, ms_local4(ip), 0);
		if (to)
			to_lo4(ctx, to);
		return VERDICT_ALLOW;
	}
	v = decide(ctx, dst, bpf_ntohs((__u16)ctx->user_port), ms_local4(ip), &to);
	if (to.kernel) {
		__u32 w[4];
		__builtin_memcpy(w, to.ep.addr, 16);
		if (ms_is_mapped(w)) { /* the agent puts only same-family endpoints on the kernel path */
			ctx->user_ip4 = w[3];
			ctx->user_port = bpf_htons(to.ep.port);
		}
	} else if (to.port) {
		to_lo4(ctx, to.port);
	}
	return v;
}

SEC("cgroup/connect6")
int ms_connect6(struct bpf_sock_addr *ctx)
{
	__u32 w[4];
	struct steer_to to = {};
	__u8 dst[16];
	int v, mapped, local;

	read6(ctx, w);
	ms_addr_from6(dst, w);
	mapped = ms_is_mapped(w);
	local = mapped ? ms_local4(w[3]) : ms_local6(w);
	if (ctx->type == SOCK_DGRAM) {
		__u16 to = dns_udp(ctx, dst, local, 0);
		if (to)
			to_lo6(ctx, to, mapped);
		return VERDICT_ALLOW;
	}
	v = decide(ctx, dst, bpf_ntohs((__u16)ctx->user_port), local, &to);
	if (to.kernel) {
		struct ms_orig ep = {};
		__builtin_memcpy(ep.addr, to.ep.addr, 16);
		ep.port = to.ep.port;
		write_orig6(ctx, &ep); /* a mapped VIP gets a mapped endpoint: the same family */
	} else if (to.port) {
		to_lo6(ctx, to.port, mapped);
	}
	return v;
}

/* Unconnected UDP: the socket is bound by now (inet_send_prepare), so its
 * port keys the resolver for the agent. */
SEC("cgroup/sendmsg4")
int ms_sendmsg4(struct bpf_sock_addr *ctx)
{
	__u32 ip = ctx->user_ip4;
	__u8 dst[16];
	__u16 to;

	if (ctx->type != SOCK_DGRAM)
		return VERDICT_ALLOW;
	ms_addr_from4(dst, ip);
	to = dns_udp(ctx, dst, ms_local4(ip), (__u16)ctx->sk->src_port);
	if (to)
		to_lo4(ctx, to);
	return VERDICT_ALLOW;
}

SEC("cgroup/sendmsg6")
int ms_sendmsg6(struct bpf_sock_addr *ctx)
{
	__u32 w[4];
	__u8 dst[16];
	int mapped;
	__u16 to;

	if (ctx->type != SOCK_DGRAM)
		return VERDICT_ALLOW;
	read6(ctx, w);
	ms_addr_from6(dst, w);
	mapped = ms_is_mapped(w);
	to = dns_udp(ctx, dst, mapped ? ms_local4(w[3]) : ms_local6(w), (__u16)ctx->sk->src_port);
	if (to)
		to_lo6(ctx, to, mapped);
	return VERDICT_ALLOW;
}

/* A reply from the responder: the app sees it come from the resolver it asked. */
static __always_inline const struct ms_orig *dns_reply_orig(struct bpf_sock_addr *ctx)
{
	const struct ms_pod *pod;
	__u64 cookie;

	if (ctx->type != SOCK_DGRAM)
		return 0;
	cookie = bpf_get_netns_cookie(ctx);
	pod = bpf_map_lookup_elem(&ms_pods, &cookie);
	if (!pod || !pod->dns_port || ctx->user_port != bpf_htons(pod->dns_port))
		return 0;
	return bpf_sk_storage_get(&ms_orig, ctx->sk, 0, 0);
}

SEC("cgroup/recvmsg4")
int ms_recvmsg4(struct bpf_sock_addr *ctx)
{
	const struct ms_orig *orig;
	__u32 w[4];

	if (ctx->user_ip4 != bpf_htonl(0x7f000001))
		return 1;
	orig = dns_reply_orig(ctx);
	if (!orig)
		return 1;
	__builtin_memcpy(w, orig->addr, 16);
	if (!ms_is_mapped(w))
		return 1;
	ctx->user_ip4 = w[3];
	ctx->user_port = bpf_htons(orig->port);
	count(MS_CNT_DNS_REPLY_REWRITTEN);
	return 1;
}

SEC("cgroup/recvmsg6")
int ms_recvmsg6(struct bpf_sock_addr *ctx)
{
	const struct ms_orig *orig;
	__u32 w[4];

	read6(ctx, w);
	if (!(ms_is_mapped(w) ? w[3] == bpf_htonl(0x7f000001) : ms_local6(w)))
		return 1;
	orig = dns_reply_orig(ctx);
	if (!orig)
		return 1;
	write_orig6(ctx, orig);
	count(MS_CNT_DNS_REPLY_REWRITTEN);
	return 1;
}

SEC("sockops")
int ms_sockops(struct bpf_sock_ops *ctx)
{
	struct ms_conn_key k = {};
	struct bpf_sock *sk;
	struct ms_orig *orig;

	if (ctx->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB && ctx->op != BPF_SOCK_OPS_STATE_CB)
		return 1;
	sk = ctx->sk;
	if (!sk)
		return 1;
	orig = bpf_sk_storage_get(&ms_orig, sk, 0, 0);
	if (!orig || (orig->flags & MS_ORIG_KERNEL))
		return 1; /* not ours, or connected to its endpoint: nobody will accept it */
	k.netns_cookie = bpf_get_netns_cookie(ctx);
	if (ctx->family == AF_INET) {
		ms_addr_from4(k.addr, ctx->local_ip4);
	} else {
		/* Verifier: sockops allows only 4-byte reads of local_ip6, and clang
		 * would merge neighbours into one 8-byte load; volatile keeps them apart. */
		__u32 w[4];
		w[0] = *(volatile __u32 *)&ctx->local_ip6[0];
		w[1] = *(volatile __u32 *)&ctx->local_ip6[1];
		w[2] = *(volatile __u32 *)&ctx->local_ip6[2];
		w[3] = *(volatile __u32 *)&ctx->local_ip6[3];
		ms_addr_from6(k.addr, w);
	}
	k.port = (__u16)ctx->local_port;
	if (ctx->op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB) {
		/* Runs on the client's SYN-ACK, before the agent can accept. */
		if (bpf_map_update_elem(&ms_conns, &k, orig, BPF_ANY) == 0) {
			count(MS_CNT_REKEYED);
			bpf_sock_ops_cb_flags_set(ctx, BPF_SOCK_OPS_STATE_CB_FLAG);
		} else {
			count(MS_CNT_REKEY_FAIL);
		}
		return 1;
	}
	/* STATE_CB: args[1] is the new state; the entry goes with the socket. */
	if (ctx->args[1] == BPF_TCP_CLOSE)
		bpf_map_delete_elem(&ms_conns, &k);
	return 1;
}

SEC("cgroup/getpeername4")
int ms_getpeername4(struct bpf_sock_addr *ctx)
{
	struct ms_orig *orig = bpf_sk_storage_get(&ms_orig, ctx->sk, 0, 0);
	__u32 ip;

	if (!orig)
		return 1;
	__builtin_memcpy(&ip, orig->addr + 12, 4);
	ctx->user_ip4 = ip;
	ctx->user_port = bpf_htons(orig->port);
	count(MS_CNT_PEERNAME);
	return 1;
}

SEC("cgroup/getpeername6")
int ms_getpeername6(struct bpf_sock_addr *ctx)
{
	struct ms_orig *orig = bpf_sk_storage_get(&ms_orig, ctx->sk, 0, 0);

	if (!orig)
		return 1;
	write_orig6(ctx, orig);
	count(MS_CNT_PEERNAME);
	return 1;
}
