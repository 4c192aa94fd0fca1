// SPDX-License-Identifier: MIT
#include "steer.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "bpf-engine.h"
#include "log.h"
#include "netns.h"
#include "tproxy.h"
#include "util.h"

int steer_open(const struct steer_opts *o, struct steer **ret)
{
	if (streq(o->engine, "bpf"))
		return steer_bpf_open(o, ret);
	if (streq(o->engine, "iptables"))
		return steer_iptables_open(o, ret);
	if (!bpf_engine_supported()) {
		log_info("engine auto: cgroup BPF unavailable; using iptables");
		return steer_iptables_open(o, ret);
	}
	return steer_bpf_open(o, ret);
}

int steer_uninstall(const char *bpffs_dir, const char *const *netns, size_t n_netns)
{
	/* iptables rules live in the pods' netns: remove them there */
	for (size_t i = 0; i < n_netns; i++) {
		enum tp_backend b;
		int fd = netns_open(netns[i]);
		char *err = NULL;
		if (fd < 0)
			continue;
		if (tp_detect_backend(fd, &b) == 0 && tp_uninstall(fd, b, &err) < 0)
			log_warn("uninstall iptables rules in %s: %s", netns[i], err ? err : "failed");
		free(err);
		close(fd);
	}
	return bpf_engine_uninstall(bpffs_dir);
}
