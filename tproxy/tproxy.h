/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

/* The iptables engine: one chain of ours in the pod's nat table (OUTPUT),
 * for IPv4 and IPv6, installed atomically with iptables-restore --noflush.
 * Uninstall removes exactly what install added. */

#define TP_CHAIN "MESHSPLICE_OUTPUT"
#define TP_REFUSE_CHAIN "MESHSPLICE_REFUSE" /* filter table: the kernel path's refusals */
#define TP_MAX_ITEMS 64
#define TP_ROUTE_PROTO 77 /* rtm_protocol of the VIP routes we add (not a registered number) */

/* The kernel path under iptables: connections to vip:port are DNATed in the
 * pod's chain to one of eps, picked at random (statistic), never reaching
 * the agent. With none of its endpoints healthy (unhealthy, no eps) the nat
 * chain leaves vip:port alone and a REJECT --reject-with tcp-reset in the
 * filter table's MESHSPLICE_REFUSE refuses its SYN: ECONNREFUSED at once, as
 * the eBPF engine does. That REJECT is there for every kernel-path vip:port,
 * healthy or not: a SYN still bound for the VIP after nat is one nat did
 * not DNAT, so health changes rewrite the nat table only (one table, one
 * commit) and the REJECT's packet counter counts exactly the refusals. */
struct tp_dnat_ep {
	struct ms_addr ip;
	uint16_t port;
};

struct tp_dnat {
	struct ms_addr vip;
	uint16_t port;
	const struct tp_dnat_ep *eps;
	size_t n_eps;
	bool unhealthy; /* n_eps is 0 because none is healthy: refused (else no DNAT at all) */
};

struct tp_opts {
	uint32_t mark;         /* the agent's own sockets: RETURN */
	const char *agent_cgroup; /* ... and made in this cgroup v2 (xt_cgroup --path); NULL: mark alone */
	uint16_t listen_port;  /* REDIRECT target */
	bool capture_all;      /* REDIRECT every other TCP connection too (passthrough capture) */
	bool keep_on_failure;  /* tp_install over rules in force: a failure leaves them be rather
				* than taking them out (each family's restore is all or nothing) */
	uint16_t dns_port;     /* 0: no DNS capture; else UDP and TCP 53 → this port */
	uint16_t excl_ports[TP_MAX_ITEMS];
	size_t n_excl_ports;
	struct ms_cidr excl_cidrs[TP_MAX_ITEMS];
	size_t n_excl_cidrs;
	uint32_t excl_uids[TP_MAX_ITEMS];
	size_t n_excl_uids;
	struct ms_cidr vip_cidrs[TP_MAX_ITEMS];
	size_t n_vip_cidrs;
	const struct tp_dnat *dnat; /* not owned */
	size_t n_dnat;
};

enum tp_backend { TP_BACKEND_NFT, TP_BACKEND_LEGACY };

void tp_opts_init(struct tp_opts *o);

/* The rule set for one family (AF_INET or AF_INET6) as iptables-restore
 * input, in iptables-save's canonical form. Caller frees. */
char *tp_rules_render(const struct tp_opts *o, int family);
/* Only the lines of our chain and our jump, canonical: what verify compares. */
char *tp_rules_expected(const struct tp_opts *o, int family);
/* The filter table's part (MESHSPLICE_REFUSE: the exemptions, then a REJECT
 * per kernel-path vip:port of the family) without its jump, as
 * iptables-restore input; NULL when the family has no kernel-path VIP (no
 * filter rule at all). The jump, canonical, is TP_REFUSE_JUMP (SYNs only:
 * the chain costs a connection what the nat chain does, not a packet). */
char *tp_refuse_render(const struct tp_opts *o, int family);
char *tp_refuse_expected(const struct tp_opts *o, int family);
#define TP_REFUSE_JUMP "-A OUTPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j " TP_REFUSE_CHAIN

/* Which back end the netns uses (the one holding more rules; nft on a tie,
 * as kube-proxy decides). netns_fd < 0: this netns. */
int tp_detect_backend(int netns_fd, enum tp_backend *ret);

/* Install (idempotent), uninstall (only ours; absent is fine), verify
 * (0 when exactly as rendered, -EEXIST with a description of the drift).
 * On error *ret_err (caller frees) says what failed, with iptables' words. */
int tp_install(int netns_fd, enum tp_backend b, const struct tp_opts *o, char **ret_err);
/* tp_install, adding to *refused the packets the REJECT rules it replaced
 * had counted (their counters restart with the rules; a filter part that
 * does not change is not rewritten, and keeps its counters). */
int tp_install_counted(int netns_fd, enum tp_backend b, const struct tp_opts *o, uint64_t *refused,
		       char **ret_err);
/* The packets the REJECT rules of MESHSPLICE_REFUSE counted, both families. */
int tp_refused(int netns_fd, enum tp_backend b, uint64_t *ret, char **ret_err);
int tp_uninstall(int netns_fd, enum tp_backend b, char **ret_err);
int tp_verify(int netns_fd, enum tp_backend b, const struct tp_opts *o, char **ret_err);

/* VIP routes (dev lo) in the pod's netns, through libnl-route. */
int tp_routes_install(int netns_fd, const struct ms_cidr *cidrs, size_t n, char **ret_err);
int tp_routes_uninstall(int netns_fd, char **ret_err);
int tp_routes_count(int netns_fd);
/* Bring the pod's loopback up (the listener lives on it). 0 when raised,
 * -EALREADY when it was up, else -errno. */
int tp_lo_up(int netns_fd);

/* The original destination of a REDIRECTed datagram (UDP: no
 * SO_ORIGINAL_DST), from conntrack in netns_fd: the entry whose reply goes
 * local:lport → client:cport. 0, -ENOENT or -errno. */
int tp_conntrack_orig_dst(int netns_fd, int l4proto, const struct ms_addr *client, uint16_t cport,
			  const struct ms_addr *local, uint16_t lport, struct ms_addr *ret, uint16_t *ret_port);

/* Run argv inside netns_fd with stdin_text on stdin; collect stdout and
 * stderr. Returns the exit status (>= 0) or -errno. Tools are looked up
 * in MESHSPLICE_IPTABLES_DIR first when set (tests inject fakes there). */
int tp_run(int netns_fd, const char *tool, const char *const *args, const char *stdin_text,
	   char **ret_out, char **ret_err);
