// SPDX-License-Identifier: MIT
/* libFuzzer target: the config loader must turn any bytes into a config or
 * an error list, with no crash and no leak. */
#include <stddef.h>
#include <stdint.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_errors errs = { 0 };
	struct ms_config *c = NULL;
	struct cfg_opts o;

	cfg_opts_init(&o);
	if (cfg_load_buffer((const char *)data, size, "fuzz.yaml", &o, &errs, &c) == 0)
		cfg_unref(c);
	cfg_errors_clear(&errs);
	return 0;
}
