// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/* Steering for enabled pods: connect4/6 save the original destination and
 * send the socket to the pod's listener (or refuse it), sockops re-keys the
 * saved destination by what the agent can see, getpeername4/6 give the app
 * its original peer back. DNS: connect4/6 and sendmsg4/6 send UDP and TCP
 * port 53 to the agent's responder, recvmsg4/6 make its answers come from
 * the resolver the app asked. A plaintext VIP whose endpoints are IP
 * addresses takes the kernel path: connect4/6 rewrite it to one of its
 * endpoints, record the socket by cookie (ms_kpath) for getpeername, sockops'
 * counters and `meshsplice conns`, and the agent never sees the connection; passthrough the mesh
 * allows is left alone. setsockopt refuses the options that would
 * send a pod's packets somewhere its connect did not say (routing headers,
 * source routes), and cgroup_skb/egress drops such packets however they were
 * set; bind4/6 keep the agent's ports on the pod's loopback free for the
 * agent, also while it restarts.
 * `meshsplice conns` lists the live kernel-path connections with an
 * iterator over TCP sockets (iter/tcp), run by the agent on each request.
 *
 * One object for all hooks: the programs share every map, and one skeleton
 * keeps the load, pin and attach logic in one place. */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "meshsplice.h"
#include "lib/addr.h"
#include "lib/ktypes.h"
#include "lib/reroute.h"

/* UAPI values; <sys/socket.h> is libc's and does not build for BPF. */
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

#define SOL_IP 0
#define SOL_IPV6 41
#define SOL_TCP 6
#define MS_IPPROTO_TCP 6
/* UAPI since 6.12: a program other than sockops sets a TCP socket's sockops
 * callback flags with bpf_setsockopt (older kernels refuse it). */
#define MS_TCP_BPF_SOCK_OPS_CB_FLAGS 1008

#define VERDICT_ALLOW 1
#define VERDICT_DENY 0 /* connect() fails with EPERM (or bpf_set_retval's error) */
#define MS_ECONNREFUSED 111

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Set by the agent before load: its cgroup v2 id and its mark (see
 * meshsplice.h: the agent's own sockets need both). */
const volatile __u32 ms_agent_mark = MS_DEFAULT_MARK;
/* The VIP ranges (MeshExternalService, MeshService), as 16 bytes and a
 * prefix over them: a VIP without a service goes to the agent, which says
 * why it refuses it, instead of out as passthrough. */
const volatile __u8 ms_vip_net[3][16];
const volatile __u8 ms_vip_plen[3];
const volatile __u64 ms_agent_cgroup = 0;

/* Set (to 1) by connect4/6 the first time the kernel refuses them the
 * sockops callback flags of a kernel-path socket (before 6.12): sockops
 * then looks every connecting socket up to set them itself. */
__u32 ms_cb_flags_late = 0;

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
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MS_MAX_PASS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ms_pass_key);
	__type(value, struct ms_pass_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ms_pass SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ms_pass_gen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MS_CNT_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ms_counters SEC(".maps");

/* Preallocated: connect4/6 record a kernel-path socket without allocating.
 * One LRU list for all CPUs (BPF_F_NO_COMMON_LRU would give each CPU
 * max_entries / possible CPUs of it: a node whose connects come from few
 * CPUs would evict live records long before the map is full). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MS_MAX_KPATH);
	__type(key, __u64);
	__type(value, struct ms_kpath);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ms_kpath SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, MS_MAX_KSTATS);
	__type(key, struct ms_kstat_key);
	__type(value, struct ms_kstat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ms_kstats SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&ms_counters, &idx);

	if (v)
		*v += 1;
}

/* The calling task is the agent: its cgroup, which a pod's process cannot
 * join (cgroup.procs of another cgroup is not the pod's to write). 0 (never
 * set) matches nobody: the agent refuses to load without its id. */
static __always_inline int agent_task(void)
{
	return ms_agent_cgroup && bpf_get_current_cgroup_id() == ms_agent_cgroup;
}

/* The agent's own connecting socket: made and marked by the agent. The mark
 * alone is not enough (CAP_NET_RAW sets SO_MARK): a marked socket of any
 * other task is counted and steered as the pod's. */
static __always_inline int agent_socket(struct bpf_sock_addr *ctx)
{
	if (ctx->sk->mark != ms_agent_mark)
		return 0;
	if (agent_task())
		return 1;
	count(MS_CNT_FORGED_MARK);
	return 0;
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

/* DNS of a fail-open pod while no agent answers: direct only where the
 * mesh lets anything out. With passthrough off port 53 is no way out
 * either (fail-open never opens what the policy closes). */
static __always_inline int fail_open_dns(const struct ms_pod *pod)
{
	if (pod->flags & MS_POD_PASSTHROUGH)
		return VERDICT_ALLOW;
	count(MS_CNT_DENY_PASSTHROUGH);
	return VERDICT_DENY;
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
	if (agent_socket(ctx)) {
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
	for (int r = 0; r < 3; r++) {
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
 * recvmsg, and sockops for TCP read it back). NULL when there is no room;
 * the caller must then refuse: a socket the policy could not steer never
 * goes where it was going instead (an app can fill its own socket's option
 * memory, sk_omem_alloc up to optmem_max, which this storage is charged to). */
static __always_inline struct ms_orig *save_orig(struct bpf_sock_addr *ctx, const __u8 *dst, __u16 port)
{
	struct ms_orig *orig = bpf_sk_storage_get(&ms_orig, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);

	if (!orig) {
		count(MS_CNT_NO_STORAGE);
		return 0;
	}
	__builtin_memcpy(orig->addr, dst, 16);
	orig->port = port;
	orig->flags = 0;
	return orig;
}

/* MeshPassthrough's IP and CIDR matches for a destination outside the mesh:
 * the longest prefix on that port, then on every port; an IP or CIDR match
 * on either allows it. 0 (nothing allows it), MS_PASSV_ALLOW or
 * MS_PASSV_DOMAIN (only a Domain match may: the forwarder decides). */
static __always_inline int pass_lookup(const struct ms_pod *pod, const __u8 *dst, __u16 port)
{
	struct ms_pass_key k = { .prefixlen = MS_PASS_FIXED_BITS + 128 };
	const struct ms_pass_val *v;
	__u32 zero = 0, *gen;
	int verdict = 0;

	gen = bpf_map_lookup_elem(&ms_pass_gen, &zero);
	if (!gen || !*gen)
		return 0;
	k.gen = *gen;
	k.mesh_id = pod->mesh_id;
	k.family = ms_is_mapped((const __u32 *)dst) ? 4 : 6;
	__builtin_memcpy(k.addr, dst, 16);
	for (int i = 0; i < 2; i++) {
		k.port = i ? 0 : port;
		v = bpf_map_lookup_elem(&ms_pass, &k);
		if (v && v->verdict == MS_PASSV_ALLOW)
			return MS_PASSV_ALLOW;
		if (v && v->verdict == MS_PASSV_DOMAIN)
			verdict = MS_PASSV_DOMAIN;
	}
	return verdict;
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
static __always_inline int kernel_path(struct bpf_sock_addr *ctx, const struct ms_pod *pod, const struct ms_svc *svc,
				       const __u8 *dst, __u16 port, struct steer_to *to)
{
	struct ms_ep_key k = { .eps_id = svc->eps_id };
	struct ms_kpath kp = { .vip_port = port, .mesh_id = pod->mesh_id };
	const struct ms_ep *ep;
	__u64 sock;

	if (!svc->n_eps) {
		count(svc->flags & MS_SVC_UNHEALTHY ? MS_CNT_KERNEL_UNHEALTHY : MS_CNT_KERNEL_NO_EP);
		bpf_set_retval(-MS_ECONNREFUSED);
		return 0;
	}
	k.idx = bpf_get_prandom_u32() % svc->n_eps;
	ep = bpf_map_lookup_elem(&ms_endpoints, &k);
	if (!ep) {
		count(MS_CNT_KERNEL_FALLBACK);
		return -1;
	}
	/* the VIP for getpeername, sockops' counters and `conns` */
	__builtin_memcpy(kp.vip, dst, 16);
	kp.start_ms = (__u32)(bpf_ktime_get_ns() / 1000000);
	sock = bpf_get_socket_cookie(ctx);
	if (bpf_map_update_elem(&ms_kpath, &sock, &kp, BPF_ANY) < 0) {
		count(MS_CNT_NO_STORAGE);
		return -1;
	}
	/* sockops hears of this socket's state changes (a failed connect, the
	 * close) and of no other socket's: it needs no lookup to tell them apart */
	int cb = BPF_SOCK_OPS_STATE_CB_FLAG;
	if (!ms_cb_flags_late && bpf_setsockopt(ctx, SOL_TCP, MS_TCP_BPF_SOCK_OPS_CB_FLAGS, &cb, sizeof(cb)) < 0 &&
	    ctx->protocol == MS_IPPROTO_TCP)
		ms_cb_flags_late = 1; /* and no kernel-path connect asks again */
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
		if ((pod->flags & MS_POD_NO_DNS) || agent_absent(ctx, pod, pod->dns_port, 0))
			return fail_open_dns(pod);
		if (!save_orig(ctx, dst, port))
			return VERDICT_DENY;
		to->port = pod->dns_port;
		count(MS_CNT_DNS_REDIRECTED);
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
	int pass = 0;
	if (!svc && !(pod->flags & MS_POD_PASSTHROUGH)) {
		if (!(pod->flags & MS_POD_PASS_MATCH)) {
			count(MS_CNT_DENY_PASSTHROUGH);
			return VERDICT_DENY;
		}
		pass = pass_lookup(pod, dst, port);
		if (!pass) {
			count(MS_CNT_DENY_PASS_MATCH);
			return VERDICT_DENY;
		}
		count(pass == MS_PASSV_ALLOW ? MS_CNT_PASS_MATCH : MS_CNT_PASS_DOMAIN);
	}
	if (svc && svc->path == MS_PATH_KERNEL && !(pod->flags & MS_POD_PROXY)) {
		int k = kernel_path(ctx, pod, svc, dst, port, to);
		if (k >= 0)
			return k ? VERDICT_ALLOW : VERDICT_DENY;
	}
	if (!svc && pass != MS_PASSV_DOMAIN && !(pod->flags & MS_POD_PROXY) && !in_vip_range(dst)) {
		/* passthrough the mesh allows needs nothing from the agent */
		count(MS_CNT_PASSTHROUGH);
		return VERDICT_ALLOW;
	}
	if (pod->flags & MS_POD_NO_LISTENER) {
		count(MS_CNT_DENY_NO_LISTENER);
		return VERDICT_DENY;
	}
	if (agent_absent(ctx, pod, pod->listen_port, 0))
		return VERDICT_ALLOW;
	if (!save_orig(ctx, dst, port))
		return VERDICT_DENY;
	to->port = pod->listen_port;
	count(MS_CNT_REDIRECTED);
	return VERDICT_ALLOW;
}

/* UDP DNS of an enabled pod: remember the resolver (socket storage for the
 * reply's source, ms_dns for the agent) and set *to to the responder's port,
 * or 0 to leave the datagram alone. VERDICT_DENY when the resolver could not
 * be recorded (the query would reach nobody, or the agent would not know
 * where it was going). key_port: the socket's local port when known
 * (sendmsg), 0 at connect. */
static __always_inline int dns_udp(struct bpf_sock_addr *ctx, const __u8 *dst, int local, __u16 key_port,
				   __u16 *to)
{
	__u16 port = bpf_ntohs((__u16)ctx->user_port);
	struct ms_dns_key k = {};
	const struct ms_pod *pod;
	struct ms_orig *orig;
	__u64 cookie;

	*to = 0;
	if (port != MS_DNS_PORT)
		return VERDICT_ALLOW;
	cookie = bpf_get_netns_cookie(ctx);
	pod = bpf_map_lookup_elem(&ms_pods, &cookie);
	if (!pod || !dns_captured(pod, port))
		return VERDICT_ALLOW;
	if (left_alone(ctx, pod, cookie, dst, port, local))
		return VERDICT_ALLOW;
	if ((pod->flags & MS_POD_NO_DNS) || agent_absent(ctx, pod, pod->dns_port, 1))
		return fail_open_dns(pod);
	orig = save_orig(ctx, dst, port);
	if (!orig)
		return VERDICT_DENY;
	k.netns_cookie = cookie;
	if (bpf_map_update_elem(&ms_dns, &k, orig, BPF_ANY) < 0) {
		count(MS_CNT_DNS_MAP_FAIL);
		return VERDICT_DENY;
	}
	if (key_port) {
		k.port = key_port;
		if (bpf_map_update_elem(&ms_dns, &k, orig, BPF_ANY) < 0) {
			count(MS_CNT_DNS_MAP_FAIL);
			return VERDICT_DENY;
		}
	}
	count(MS_CNT_DNS_REDIRECTED);
	*to = pod->dns_port;
	return VERDICT_ALLOW;
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
		__u16 dns;
		v = dns_udp(ctx, dst, ms_local4(ip), 0, &dns);
		if (dns)
			to_lo4(ctx, dns);
		return v;
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
		__u16 dns;
		v = dns_udp(ctx, dst, local, 0, &dns);
		if (dns)
			to_lo6(ctx, dns, mapped);
		return v;
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
	int v;

	if (ctx->type != SOCK_DGRAM)
		return VERDICT_ALLOW;
	ms_addr_from4(dst, ip);
	v = dns_udp(ctx, dst, ms_local4(ip), (__u16)ctx->sk->src_port, &to);
	if (to)
		to_lo4(ctx, to);
	return v;
}

SEC("cgroup/sendmsg6")
int ms_sendmsg6(struct bpf_sock_addr *ctx)
{
	__u32 w[4];
	__u8 dst[16];
	int mapped, v;
	__u16 to;

	if (ctx->type != SOCK_DGRAM)
		return VERDICT_ALLOW;
	read6(ctx, w);
	ms_addr_from6(dst, w);
	mapped = ms_is_mapped(w);
	v = dns_udp(ctx, dst, mapped ? ms_local4(w[3]) : ms_local6(w), (__u16)ctx->sk->src_port, &to);
	if (to)
		to_lo6(ctx, to, mapped);
	return v;
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

/* Verifier: sockops allows only 4-byte reads of the IPv6 addresses, and
 * clang would merge neighbours into one 8-byte load; volatile keeps them apart. */
static __always_inline void sockops_addr(__u8 *out, __u32 family, __u32 ip4, const __u32 *ip6)
{
	__u32 w[4];

	if (family == AF_INET) {
		ms_addr_from4(out, ip4);
		return;
	}
	w[0] = *(volatile const __u32 *)&ip6[0];
	w[1] = *(volatile const __u32 *)&ip6[1];
	w[2] = *(volatile const __u32 *)&ip6[2];
	w[3] = *(volatile const __u32 *)&ip6[3];
	ms_addr_from6(out, w);
}

/* This CPU's counters under key, made when missing; NULL (counted) when
 * the entry cannot be made. */
static __always_inline struct ms_kstat *kstat_get(void *map, const void *key)
{
	struct ms_kstat zero = {}, *v = bpf_map_lookup_elem(map, key);

	if (v)
		return v;
	bpf_map_update_elem(map, key, &zero, BPF_NOEXIST);
	v = bpf_map_lookup_elem(map, key);
	if (!v)
		count(MS_CNT_KSTAT_FULL);
	return v;
}

enum kstat_what { KS_OPENED, KS_FAILED, KS_CLOSED };

/* Atomic adds: a softirq's callback may interrupt a task's on this CPU. */
static __always_inline void kstat_add(struct ms_kstat *v, enum kstat_what what, __u64 acked, __u64 received)
{
	if (!v)
		return;
	if (what == KS_OPENED) {
		__sync_fetch_and_add(&v->opened, 1);
	} else if (what == KS_FAILED) {
		__sync_fetch_and_add(&v->failed, 1);
	} else {
		__sync_fetch_and_add(&v->closed, 1);
		__sync_fetch_and_add(&v->bytes_acked, acked);
		__sync_fetch_and_add(&v->bytes_received, received);
	}
}

/* A kernel-path socket (connect4/6 rewrote it to an endpoint and recorded
 * it in ms_kpath): counted per service port and endpoint, with nobody in
 * userspace. The connect callback asks for state changes, so that an active
 * open that never establishes (SYN_SENT → CLOSE: reset, SYN timeout, closed
 * while connecting) counts as a failed connect of its endpoint, which the
 * agent's health checks read; an established one counts its bytes at close,
 * where its ms_kpath entry goes. */
static __always_inline void kernel_sockops(struct bpf_sock_ops *ctx, const struct ms_kpath *kp, __u64 sock)
{
	struct ms_kstat_key k = {};
	enum kstat_what what;
	__u64 acked = 0, received = 0;

	switch (ctx->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		bpf_sock_ops_cb_flags_set(ctx, BPF_SOCK_OPS_STATE_CB_FLAG);
		return;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		what = KS_OPENED;
		break;
	default: /* STATE_CB, to CLOSE (the caller saw to that) */
		if (ctx->args[0] == BPF_TCP_SYN_SENT) {
			what = KS_FAILED;
		} else {
			what = KS_CLOSED;
			acked = ctx->bytes_acked;
			received = ctx->bytes_received;
		}
		break;
	}
	__builtin_memcpy(k.vip, kp->vip, 16);
	k.vip_port = kp->vip_port;
	k.mesh_id = kp->mesh_id;
	sockops_addr(k.ep, ctx->family, ctx->remote_ip4, ctx->remote_ip6);
	k.ep_port = (__u16)bpf_ntohl(ctx->remote_port);
	if (what != KS_OPENED)
		bpf_map_delete_elem(&ms_kpath, &sock); /* kp is not read after this */
	kstat_add(kstat_get(&ms_kstats, &k), what, acked, received);
}

/* Only three callbacks matter, and of the state changes only the one to
 * CLOSE: everything else returns before a map is looked at (a connection
 * runs this program five to eight times). */
SEC("sockops")
int ms_sockops(struct bpf_sock_ops *ctx)
{
	struct ms_conn_key k = {};
	const struct ms_kpath *kp;
	struct bpf_sock *sk;
	struct ms_orig *orig;
	__u64 sock;

	switch (ctx->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (ctx->args[1] == BPF_TCP_CLOSE)
			break;
		return 1;
	default:
		return 1;
	}
	sk = ctx->sk;
	if (!sk)
		return 1;
	orig = bpf_sk_storage_get(&ms_orig, sk, 0, 0);
	if (!orig) {
		/* A kernel-path socket hears of its state changes from connect4/6
		 * on (or from here, at its connect, where the kernel would not let
		 * them): one that does not is not one (passthrough), at the cost
		 * of no lookup. */
		if (ctx->op == BPF_SOCK_OPS_TCP_CONNECT_CB ? !ms_cb_flags_late
							   : !(ctx->bpf_sock_ops_cb_flags & BPF_SOCK_OPS_STATE_CB_FLAG))
			return 1;
		sock = bpf_get_socket_cookie(ctx);
		kp = bpf_map_lookup_elem(&ms_kpath, &sock);
		if (kp)
			kernel_sockops(ctx, kp, sock);
		return 1; /* else not ours */
	}
	if (ctx->op == BPF_SOCK_OPS_TCP_CONNECT_CB || (orig->flags & MS_ORIG_KERNEL))
		return 1;
	k.netns_cookie = bpf_get_netns_cookie(ctx);
	sockops_addr(k.addr, ctx->family, ctx->local_ip4, ctx->local_ip6);
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
	/* STATE_CB to CLOSE: the entry goes with the socket. */
	bpf_map_delete_elem(&ms_conns, &k);
	return 1;
}

/* The app's peer as it dialled it: a proxy-path socket's storage, else a
 * kernel-path socket's record; NULL for a socket left alone. */
static __always_inline int peer_of(struct bpf_sock_addr *ctx, __u8 *addr, __u16 *port)
{
	const struct ms_orig *orig = bpf_sk_storage_get(&ms_orig, ctx->sk, 0, 0);
	const struct ms_kpath *kp;
	__u64 sock;

	if (orig) {
		__builtin_memcpy(addr, orig->addr, 16);
		*port = orig->port;
		return 1;
	}
	sock = bpf_get_socket_cookie(ctx);
	kp = bpf_map_lookup_elem(&ms_kpath, &sock);
	if (!kp)
		return 0;
	__builtin_memcpy(addr, kp->vip, 16);
	*port = kp->vip_port;
	return 1;
}

SEC("cgroup/getpeername4")
int ms_getpeername4(struct bpf_sock_addr *ctx)
{
	struct ms_orig peer = {};
	__u32 ip;

	if (!peer_of(ctx, peer.addr, &peer.port))
		return 1;
	__builtin_memcpy(&ip, peer.addr + 12, 4);
	ctx->user_ip4 = ip;
	ctx->user_port = bpf_htons(peer.port);
	count(MS_CNT_PEERNAME);
	return 1;
}

SEC("cgroup/getpeername6")
int ms_getpeername6(struct bpf_sock_addr *ctx)
{
	struct ms_orig peer = {};

	if (!peer_of(ctx, peer.addr, &peer.port))
		return 1;
	write_orig6(ctx, &peer);
	count(MS_CNT_PEERNAME);
	return 1;
}

/* The agent's ports on an enabled pod's loopback are the agent's, also while
 * no agent runs: a pod that bound one first (127.0.0.1, 0.0.0.0, ::1, ::)
 * would keep the next agent from listening. Any other address and port, and
 * the agent's own binds, go through. */
static __always_inline int bind_verdict(struct bpf_sock_addr *ctx, int local)
{
	__u16 port = bpf_ntohs((__u16)ctx->user_port);
	const struct ms_pod *pod;
	__u64 cookie;

	if (!port || !local)
		return VERDICT_ALLOW;
	cookie = bpf_get_netns_cookie(ctx);
	pod = bpf_map_lookup_elem(&ms_pods, &cookie);
	if (!pod || (port != pod->listen_port && (!pod->dns_port || port != pod->dns_port)))
		return VERDICT_ALLOW;
	if (agent_task())
		return VERDICT_ALLOW;
	count(MS_CNT_DENY_BIND);
	return VERDICT_DENY;
}

SEC("cgroup/bind4")
int ms_bind4(struct bpf_sock_addr *ctx)
{
	return bind_verdict(ctx, ms_local4(ctx->user_ip4));
}

SEC("cgroup/bind6")
int ms_bind6(struct bpf_sock_addr *ctx)
{
	__u32 w[4];

	read6(ctx, w);
	/* :: takes the IPv4 port too on a dual-stack socket: local either way */
	return bind_verdict(ctx, ms_is_mapped(w) ? ms_local4(w[3]) : ms_local6(w));
}

/* IP_OPTIONS (and IP_RETOPTS) hold a loose or strict source route: the
 * kernel sends the connection to the route's first hop, not to the address
 * that connect4 checked. The program sees exactly optlen bytes. */
static __always_inline int ip_opts_route(struct bpf_sockopt *ctx)
{
	int len = ctx->optlen;

	if (len <= 0 || len > MS_IP_OPTS_MAX)
		return 0; /* clears the options / refused by the kernel (more than 40 bytes) */
	return ms_ipopts_srr(ctx->optval, ctx->optval_end, len);
}

/* Options that change where an enabled pod's packets go, whatever connect
 * was told: IPv6 routing headers (a type 4 segment list needs no capability;
 * the first segment becomes the packet's destination, so a connect to ::1 or
 * to the listener leaves for any host), the RFC 2292 forms and PKTOPTIONS
 * (ancillary data that may hold one), destination options (the ones before
 * a routing header, and the Home Address option that rewrites the source),
 * IPv4 source routes, and transparent sockets (any source address). 1 to
 * refuse. SO_BINDTODEVICE stays allowed: the device changes the route lookup,
 * not the destination, and the loopback destinations the hooks rewrite to
 * never leave through another device (the kernel drops 127/8 and ::1 off
 * lo), so it can only break the app's own connection. */
static __always_inline int sockopt_reroutes(struct bpf_sockopt *ctx)
{
	if (ctx->level == SOL_IPV6) {
		switch (ctx->optname) {
		case IPV6_RTHDR:
		case IPV6_2292RTHDR:
		case IPV6_2292PKTOPTIONS:
		case IPV6_RTHDRDSTOPTS:
		case IPV6_DSTOPTS:
		case IPV6_2292DSTOPTS:
		case IPV6_TRANSPARENT:
			return 1;
		}
		return 0;
	}
	if (ctx->level == SOL_IP) {
		switch (ctx->optname) {
		case IP_TRANSPARENT:
			return 1;
		case IP_OPTIONS:
		case IP_RETOPTS:
			return ip_opts_route(ctx);
		}
	}
	return 0;
}

SEC("cgroup/setsockopt")
int ms_setsockopt(struct bpf_sockopt *ctx)
{
	int inspected = ctx->level == SOL_IP && (ctx->optname == IP_OPTIONS || ctx->optname == IP_RETOPTS);
	__u64 cookie;

	if (sockopt_reroutes(ctx)) {
		cookie = bpf_get_netns_cookie(ctx);
		if (bpf_map_lookup_elem(&ms_pods, &cookie) && !agent_task()) {
			count(MS_CNT_DENY_SOCKOPT);
			return 0; /* EPERM */
		}
	}
	/* The kernel takes the option from our copy when optlen is left as it
	 * is: an option we read and allowed (IP_OPTIONS, at most 40 bytes) is
	 * set as read, never re-read from the app's memory. Any other option is
	 * taken from the caller's buffer again (optlen 0), which is also how an
	 * option longer than the page this program sees passes (older kernels
	 * fail it with EFAULT otherwise). */
	if (!inspected)
		ctx->optlen = 0;
	return 1;
}

/* The same options set where setsockopt cannot see it: the compat syscall
 * entry (int $0x80 and 32-bit processes) skips the cgroup setsockopt hook,
 * and ancillary data (IP_RETOPTS, IPV6_RTHDR on sendmsg) never passes it.
 * So the packets themselves are checked on the way out: a source-routed or
 * routing-headed packet of an enabled pod's socket is dropped (the sender
 * gets EPERM) and counted. Nearly every packet costs one byte read. */
SEC("cgroup_skb/egress")
int ms_egress(struct __sk_buff *skb)
{
	__u64 cookie;

	if (!ms_skb_rerouted(skb))
		return 1;
	cookie = bpf_get_netns_cookie(skb);
	/* No agent exemption here: the agent sends no such packet, and a packet
	 * may leave in another task's context (retransmits, softirq). */
	if (!bpf_map_lookup_elem(&ms_pods, &cookie))
		return 1;
	count(MS_CNT_DENY_PKT_REROUTE);
	return 0;
}

/* A socket's address in the 16-byte form; CO-RE reads through the kernel's
 * own layout of sock_common. */
static __always_inline void skc_addr(__u8 *out, const struct sock_common *skc, int family, int remote)
{
	__u32 ip4 = 0;

	if (family == AF_INET) {
		ip4 = remote ? skc->skc_daddr : skc->skc_rcv_saddr;
		ms_addr_from4(out, ip4);
		return;
	}
	if (bpf_probe_read_kernel(out, 16, remote ? &skc->skc_v6_daddr : &skc->skc_v6_rcv_saddr) < 0)
		__builtin_memset(out, 0, 16);
}

/* `meshsplice conns`: each TCP socket of the iterated netns that connect4/6
 * sent down the kernel path, one struct ms_kconn each, with its byte counts
 * as they are now. The agent creates the iterator in a pod's netns (the
 * iterator walks that of its creator) and reads the records. */
SEC("iter/tcp")
int ms_iter_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	const struct ms_kpath *kp;
	struct ms_kconn r = {};
	struct tcp_sock *tp;
	int family;

	if (!skc)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc); /* NULL for TIME_WAIT and request sockets */
	if (!tp)
		return 0;
	r.cookie = bpf_get_socket_cookie(tp);
	kp = bpf_map_lookup_elem(&ms_kpath, &r.cookie);
	if (!kp)
		return 0;
	family = skc->skc_family;
	r.bytes_acked = tp->bytes_acked;
	r.bytes_received = tp->bytes_received;
	skc_addr(r.local, skc, family, 0);
	skc_addr(r.ep, skc, family, 1);
	r.local_port = skc->skc_num;
	r.ep_port = bpf_ntohs(skc->skc_dport);
	__builtin_memcpy(r.vip, kp->vip, 16);
	r.vip_port = kp->vip_port;
	r.state = skc->skc_state;
	r.age_ms = (__u32)(bpf_ktime_get_ns() / 1000000) - kp->start_ms;
	r.flags = MS_KCONN_AGE;
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}
