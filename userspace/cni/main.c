// SPDX-License-Identifier: MIT
/* meshsplice-cni: read the network config on stdin, CNI_* from the
 * environment, print the result (or the error JSON) on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cni.h"
#include "util.h"

int main(void)
{
	struct cni_env e = {
		.command = getenv("CNI_COMMAND"),
		.container = getenv("CNI_CONTAINERID"),
		.netns = getenv("CNI_NETNS"),
		.ifname = getenv("CNI_IFNAME"),
		.args = getenv("CNI_ARGS"),
		.path = getenv("CNI_PATH"),
	};
	char *in = xcalloc(1, 1), *out = NULL;
	size_t len = 0;
	int r;

	/* VERSION needs no stdin; the others read the whole config (bounded) */
	if (!e.command || !streq(e.command, "VERSION")) {
		size_t cap = 1;
		ssize_t n;
		for (;;) {
			if (len + 4096 + 1 > cap) {
				cap = cap * 2 + 4096;
				if (cap > (1u << 20) + 8192)
					break;
				in = xrealloc(in, cap, 1);
			}
			n = read(0, in + len, cap - len - 1);
			if (n <= 0)
				break;
			len += (size_t)n;
		}
		in[len] = '\0';
	}
	r = cni_run(&e, in, &out);
	if (out && *out)
		printf("%s\n", out);
	free(in);
	free(out);
	return r;
}
