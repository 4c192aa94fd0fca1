// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/* sockmap probe: the kernel joins two TCP sockets. Every segment that lands
 * on a socket of smp_joined goes, by the stream verdict, to the egress of its
 * peer (smp_pairs), which lives in smp_targets. Two maps: a socket can be a
 * target (it has a psock) before its own receive path is taken over, so the
 * first socket joined never sees a peer that is not there yet. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "sockmap-probe.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, SMP_MAX_SOCKS);
	__type(key, __u64);
	__type(value, __u64);
} smp_targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, SMP_MAX_SOCKS);
	__type(key, __u64);
	__type(value, __u64);
} smp_joined SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SMP_MAX_SOCKS);
	__type(key, __u64);
	__type(value, struct smp_pair);
} smp_pairs SEC(".maps");

SEC("sk_skb/stream_verdict")
int smp_verdict(struct __sk_buff *skb)
{
	__u64 me = bpf_get_socket_cookie(skb);
	struct smp_pair *p = bpf_map_lookup_elem(&smp_pairs, &me);

	/* A FIN comes as an empty skb: TCP has taken note of it already, and
	 * an empty skb on the peer's backlog would stop its transmit. */
	if (!p || skb->len == 0)
		return SK_DROP;
	__sync_fetch_and_add(&p->bytes, skb->len);
	return bpf_sk_redirect_hash(skb, &smp_targets, &p->peer, 0);
}
