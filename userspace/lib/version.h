/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdio.h>

/* What this binary is: "PROG VERSION (commit C)" and, on a second line, the
 * versions of the libraries it runs with (libbpf, OpenSSL, libyaml, json-c),
 * as the loaded libraries report them. For --version and `version`. */
void ms_version_print(FILE *f, const char *prog);
