// SPDX-License-Identifier: MIT
/* VIP routes through libnl-route: under iptables the kernel routes a packet
 * before the nat OUTPUT hook sees it, so a VIP needs a route in the pod even
 * when the pod has no default route. Ours carry their own protocol number,
 * so uninstall removes exactly those. */
#include <errno.h>
#include <fcntl.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netns.h"
#include "tproxy.h"
#include "util.h"

static struct nl_sock *nl_in(int netns_fd)
{
	struct nl_sock *sk = nl_socket_alloc();
	int fd;

	if (!sk)
		return NULL;
	fd = netns_socket(netns_fd, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	if (fd < 0 || nl_socket_set_fd(sk, NETLINK_ROUTE, fd) < 0) {
		if (fd >= 0)
			close(fd);
		nl_socket_free(sk);
		return NULL;
	}
	/* libnl owns fd from here; blocking, for simple request/ack exchanges */
	int flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	return sk;
}

static int lo_index(struct nl_sock *sk)
{
	struct rtnl_link *link = NULL;
	int idx;

	if (rtnl_link_get_kernel(sk, 0, "lo", &link) < 0)
		return -ENODEV;
	idx = rtnl_link_get_ifindex(link);
	rtnl_link_put(link);
	return idx;
}

static struct rtnl_route *vip_route(const struct ms_cidr *c, int lo)
{
	struct rtnl_route *rt = rtnl_route_alloc();
	struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
	struct nl_addr *dst;
	char buf[80];

	cidr_fmt(c, buf, sizeof(buf));
	if (nl_addr_parse(buf, addr_is_v4(&c->addr) ? AF_INET : AF_INET6, &dst) < 0) {
		rtnl_route_put(rt);
		rtnl_route_nh_free(nh);
		return NULL;
	}
	rtnl_route_set_family(rt, addr_is_v4(&c->addr) ? AF_INET : AF_INET6);
	rtnl_route_set_dst(rt, dst);
	nl_addr_put(dst);
	rtnl_route_set_table(rt, RT_TABLE_MAIN);
	rtnl_route_set_protocol(rt, TP_ROUTE_PROTO);
	rtnl_route_set_scope(rt, RT_SCOPE_LINK);
	rtnl_route_set_type(rt, RTN_UNICAST);
	rtnl_route_nh_set_ifindex(nh, lo);
	rtnl_route_add_nexthop(rt, nh);
	return rt;
}

int tp_routes_install(int netns_fd, const struct ms_cidr *cidrs, size_t n, char **ret_err)
{
	struct nl_sock *sk = nl_in(netns_fd);
	int lo, r = 0;

	if (!sk) {
		*ret_err = xstrdup("netlink socket in the pod's netns failed");
		return -EIO;
	}
	lo = lo_index(sk);
	if (lo < 0) {
		*ret_err = xstrdup("the pod's netns has no lo");
		nl_socket_free(sk);
		return lo;
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		struct rtnl_route *rt = vip_route(&cidrs[i], lo);
		if (!rt)
			continue;
		/* NLM_F_REPLACE: installing twice is installing once */
		int e = rtnl_route_add(sk, rt, NLM_F_CREATE | NLM_F_REPLACE);
		if (e < 0) {
			char buf[80];
			*ret_err = xasprintf("route %s dev lo: %s", cidr_fmt(&cidrs[i], buf, sizeof(buf)), nl_geterror(e));
			r = -EIO;
		}
		rtnl_route_put(rt);
	}
	nl_socket_free(sk);
	return r;
}

struct del_ctx {
	struct nl_sock *sk;
	int errors;
};

static void del_ours(struct nl_object *o, void *arg)
{
	struct rtnl_route *rt = (struct rtnl_route *)o;
	struct del_ctx *d = arg;

	if (rtnl_route_get_protocol(rt) == TP_ROUTE_PROTO && rtnl_route_delete(d->sk, rt, 0) < 0)
		d->errors++;
}

int tp_routes_uninstall(int netns_fd, char **ret_err)
{
	struct nl_sock *sk = nl_in(netns_fd);
	struct nl_cache *cache = NULL;
	struct del_ctx d = { .sk = sk };

	if (!sk) {
		*ret_err = xstrdup("netlink socket in the pod's netns failed");
		return -EIO;
	}
	for (int fam = 0; fam < 2; fam++) {
		if (rtnl_route_alloc_cache(sk, fam ? AF_INET6 : AF_INET, 0, &cache) < 0)
			continue;
		nl_cache_foreach(cache, del_ours, &d);
		nl_cache_free(cache);
	}
	nl_socket_free(sk);
	if (d.errors) {
		*ret_err = xasprintf("%d route(s) could not be removed", d.errors);
		return -EIO;
	}
	return 0;
}

int tp_routes_count(int netns_fd)
{
	struct nl_sock *sk = nl_in(netns_fd);
	struct nl_cache *cache = NULL;
	int n = 0;

	if (!sk)
		return -EIO;
	for (int fam = 0; fam < 2; fam++) {
		if (rtnl_route_alloc_cache(sk, fam ? AF_INET6 : AF_INET, 0, &cache) < 0)
			continue;
		for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o))
			n += rtnl_route_get_protocol((struct rtnl_route *)o) == TP_ROUTE_PROTO;
		nl_cache_free(cache);
	}
	nl_socket_free(sk);
	return n;
}

int tp_lo_up(int netns_fd)
{
	struct nl_sock *sk = nl_in(netns_fd);
	struct rtnl_link *lo = NULL, *change = NULL;
	int r = 0;

	if (!sk)
		return -EIO;
	if (rtnl_link_get_kernel(sk, 0, "lo", &lo) < 0) {
		nl_socket_free(sk);
		return -ENODEV;
	}
	if (!(rtnl_link_get_flags(lo) & IFF_UP)) {
		change = rtnl_link_alloc();
		rtnl_link_set_flags(change, IFF_UP);
		if (rtnl_link_change(sk, lo, change, 0) < 0)
			r = -EIO;
		rtnl_link_put(change);
	} else {
		r = -EALREADY;
	}
	rtnl_link_put(lo);
	nl_socket_free(sk);
	return r;
}
