// SPDX-License-Identifier: MIT
/* libFuzzer target: the CNI plugin's inputs (command, CNI_ARGS, stdin
 * config) must always give a result or an error JSON: no crash, no leak.
 * Input: [command byte][CNI_ARGS length byte][CNI_ARGS][config]. The control
 * socket and state dir are pinned to paths nobody listens on. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cni.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const cmds[] = { "ADD", "DEL", "CHECK", "VERSION", "BOGUS", "" };
	struct cni_env e = {
		.container = "fuzz-1",
		.netns = "/nonexistent/netns",
		.ifname = "eth0",
		.path = "/nonexistent/bin",
		.force_control = "/nonexistent/meshsplice-fuzz.sock",
		.force_state_dir = "/nonexistent/meshsplice-fuzz",
	};
	char *args, *conf, *out = NULL;
	size_t alen;

	if (size < 2)
		return 0;
	e.command = cmds[data[0] % ARRAY_SIZE(cmds)];
	alen = MS_MIN((size_t)data[1], size - 2);
	args = xstrndup((const char *)data + 2, alen);
	conf = xstrndup((const char *)data + 2 + alen, size - 2 - alen);
	e.args = args;
	cni_run(&e, conf, &out);
	free(out);
	free(args);
	free(conf);
	return 0;
}
