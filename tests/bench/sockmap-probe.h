/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/* The probe's BPF ↔ userspace contract: per joined socket, its peer. */
#ifndef SOCKMAP_PROBE_H
#define SOCKMAP_PROBE_H
#include <linux/types.h>

#define SMP_MAX_SOCKS 4096

struct smp_pair {
	__u64 peer;  /* socket cookie of the socket this one's bytes go to */
	__u64 bytes; /* bytes redirected to it so far */
};
_Static_assert(sizeof(struct smp_pair) == 16, "smp_pair layout");

#endif
