/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

/* DNS names of endpoints, resolved off the event loop by a worker thread
 * (getaddrinfo: hosts file, then the node's resolvers). Answers are cached
 * for refresh_ms; an expired answer is still served while it is refreshed,
 * and a failure is remembered for a few seconds. */
struct resolver;

int resolver_new(unsigned refresh_ms, struct resolver **ret);
void resolver_free(struct resolver *r);
/* eventfd that becomes readable when lookups finish. */
int resolver_fd(const struct resolver *r);
/* 0 and the addresses (owned by the resolver, valid until the next
 * resolver_drain), -EAGAIN when a lookup is under way (retry after the fd
 * fires), or -EHOSTUNREACH when the name did not resolve. */
int resolver_lookup(struct resolver *r, const char *name, const struct ms_addr **ret,
		    size_t *ret_n);
/* Apply finished lookups; call when resolver_fd is readable. */
void resolver_drain(struct resolver *r);
/* Changes whenever resolver_drain applied an answer that differs from the
 * name's last one (addresses or error): what was built from earlier answers
 * may be stale. */
uint64_t resolver_gen(const struct resolver *r);
