/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

/* The agent stays in its own network namespace; it enters a pod's only
 * long enough to create a socket there (a socket belongs to the netns it
 * was created in for life). Single-threaded callers only: setns() acts on
 * the calling thread. */

/* Open the agent's own netns once at start; 0 or -errno. */
int netns_init(void);
/* Open a netns file (/var/run/netns/x, /proc/PID/ns/net); O_CLOEXEC fd or -errno. */
int netns_open(const char *path);
/* socket(2) inside netns_fd (or here when netns_fd < 0); fd or -errno.
 * SOCK_CLOEXEC|SOCK_NONBLOCK are added. */
int netns_socket(int netns_fd, int domain, int type, int protocol);
/* Like netns_socket for AF_INET/AF_INET6 TCP sockets, from a batch made in
 * one visit to the netns (a setns pair per batch instead of per socket).
 * The batch of a netns_fd is tied to it: close it with netns_close. */
int netns_socket_pooled(int netns_fd, int domain);
/* fn(ctx) run inside netns_fd, for what takes its netns from the caller
 * at creation (a BPF socket iterator); fn's result, or -errno of setns. */
int netns_call(int netns_fd, int (*fn)(void *ctx), void *ctx);
/* A socket of type bound to 127.0.0.1:port (AF_INET) or [::1]:port
 * (AF_INET6, v6-only) inside netns_fd, SO_REUSEADDR, listening with backlog
 * when SOCK_STREAM. fd or -errno. */
int netns_loopback_socket(int netns_fd, int family, int type, uint16_t port, int backlog);
/* Drop netns_fd's pooled sockets, then close it. */
void netns_close(int netns_fd);

/* The netns cookie of a netns (SO_NETNS_COOKIE of a socket made there). */
int netns_cookie(int netns_fd, uint64_t *ret);
/* 1 if two netns fds name the same namespace, 0 if not, -errno. */
int netns_same(int a, int b);
