/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/* The few kernel-internal types the TCP socket iterator reads, declared
 * here with only the fields it uses instead of a vmlinux.h of one kernel:
 * preserve_access_index makes clang record each access by name, and libbpf
 * relocates it to the running kernel's layout at load (CO-RE). Anonymous
 * unions of the kernel's own definitions (skc_daddr, skc_num) are matched
 * through by libbpf. The one place outside the UAPI context structs: no UAPI
 * struct gives a socket's live byte counts to a program that walks sockets. */
#pragma once

#include <linux/types.h>

#define MS_CORE __attribute__((preserve_access_index))

struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
} MS_CORE;

struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	volatile unsigned char skc_state;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} MS_CORE;

struct tcp_sock {
	__u64 bytes_received;
	__u64 bytes_acked;
} MS_CORE;

/* The context of an iter/tcp program (net/ipv4/tcp_ipv4.c); the last call
 * of an iteration has no socket. */
struct bpf_iter__tcp {
	struct bpf_iter_meta *meta;
	struct sock_common *sk_common;
	__u32 uid;
} MS_CORE;
