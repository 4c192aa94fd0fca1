/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/* Address helpers for the programs: everything as 16 bytes, IPv4 mapped. */
#pragma once

#include <linux/types.h>
#include <bpf/bpf_endian.h>

static __always_inline void ms_addr_from4(__u8 *out, __u32 be_ip)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(out + 12, &be_ip, 4);
}

static __always_inline void ms_addr_from6(__u8 *out, const __u32 *w)
{
	__builtin_memcpy(out, w, 16);
}

static __always_inline int ms_is_mapped(const __u32 *w)
{
	return w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0x0000ffff);
}

/* 127/8 and 0.0.0.0: the pod's own loopback in policy */
static __always_inline int ms_local4(__u32 be_ip)
{
	return (bpf_ntohl(be_ip) >> 24) == 127 || be_ip == 0;
}

/* ::1 and :: */
static __always_inline int ms_local6(const __u32 *w)
{
	return w[0] == 0 && w[1] == 0 && w[2] == 0 && (w[3] == 0 || w[3] == bpf_htonl(1));
}
