// SPDX-License-Identifier: MIT
/* --version of every binary: one place for what a bug report needs. */
#include "version.h"

#include <bpf/libbpf.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <yaml.h>

#include "ms-build.h"
#include "ms-commit.h"

void ms_version_print(FILE *f, const char *prog)
{
	fprintf(f, "%s %s (commit %s)\n", prog, MS_VERSION, MS_COMMIT);
	/* the runtime versions, not the headers': a distro may update a library under us */
	fprintf(f, "libbpf %s, %s, libyaml %s, json-c %s\n", libbpf_version_string(),
		OpenSSL_version(OPENSSL_VERSION), yaml_get_version_string(), json_c_version());
}
