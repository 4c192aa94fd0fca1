/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/* What sends a packet somewhere other than its connect said: IPv4 source
 * routes in the options, IPv6 routing headers among the extension headers. */
#pragma once

#include <linux/types.h>
#include <linux/ip.h>

#include "meshsplice.h"

#define MS_NEXTHDR_HOP 0
#define MS_NEXTHDR_ROUTING 43
#define MS_NEXTHDR_DEST 60
#define MS_V6_EXT_MAX 4 /* hop-by-hop, destination options, routing: more is refused */

/* An IPv4 option list of len bytes at p (readable up to end) holds a loose
 * or strict source route. 1 also when the list cannot be walked to its end:
 * an option running past it (the kernel refuses those; we do not guess).
 * One byte per step as a state machine (skip: bytes left of the current
 * option): constant offsets and few states for the verifier, where a
 * jumping offset made it give up. Every option takes at least one byte, so
 * 40 steps walk any list. */
static __always_inline int ms_ipopts_srr(const __u8 *p, const __u8 *end, int len)
{
	int skip = 0;

	for (int i = 0; i < MS_IP_OPTS_MAX; i++) {
		__u8 type;

		if (i >= len || p + i + 1 > end)
			return skip ? 1 : 0;
		if (skip) {
			skip--;
			continue;
		}
		type = p[i];
		if (type == IPOPT_END)
			return 0; /* the kernel clears what follows */
		if (type == IPOPT_NOOP)
			continue;
		if (type == IPOPT_LSRR || type == IPOPT_SSRR)
			return 1;
		if (i + 1 >= len || p + i + 2 > end || p[i + 1] < 2)
			return 1;
		skip = p[i + 1] - 1;
	}
	return skip ? 1 : 0;
}

/* The packet in skb (at its network header) carries a source route or a
 * routing header; 1 also when its headers cannot be read. */
static __always_inline int ms_skb_rerouted(struct __sk_buff *skb)
{
	__u8 b[MS_IP_OPTS_MAX] = {}, h[2];
	__u32 off = 40;
	int len;

	if (skb->protocol == bpf_htons(0x0800)) { /* ETH_P_IP */
		if (bpf_skb_load_bytes(skb, 0, b, 1) < 0)
			return 1;
		len = (b[0] & 0xf) * 4 - 20;
		if (len <= 0)
			return 0; /* no options: nearly every packet */
		if (len > MS_IP_OPTS_MAX || bpf_skb_load_bytes(skb, 20, b, len) < 0)
			return 1;
		return ms_ipopts_srr(b, b + MS_IP_OPTS_MAX, len);
	}
	if (skb->protocol != bpf_htons(0x86dd)) /* ETH_P_IPV6 */
		return 0;
	if (bpf_skb_load_bytes(skb, 6, h, 1) < 0)
		return 1;
	for (int i = 0; i < MS_V6_EXT_MAX; i++) {
		if (h[0] == MS_NEXTHDR_ROUTING)
			return 1;
		if (h[0] != MS_NEXTHDR_HOP && h[0] != MS_NEXTHDR_DEST)
			return 0; /* the upper layer: no routing header before it */
		if (bpf_skb_load_bytes(skb, off, h, 2) < 0)
			return 1;
		off += ((__u32)h[1] + 1) * 8;
	}
	return 1;
}
