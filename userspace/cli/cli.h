/* SPDX-License-Identifier: MIT */
#pragma once

#include <getopt.h>
#include <stdbool.h>

struct cli {
	bool json;
	const char *control; /* agent socket */
	const char *mes_cidr, *ms_cidr;
	const char *gloo_cidr, *gloo_mesh; /* validate, render: --gloo-vip-cidr, --gloo-mesh */
};

/* Exit status of every command: documented in `meshsplice help`. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_PROBLEMS = 1, CLI_EXIT_USAGE = 2 };

struct cmd {
	const char *name;
	int (*fn)(struct cli *c, int argc, char **argv);
	const char *help;  /* one line: the grammar and what it does */
	const char *usage; /* COMMAND --help: what it does, its options, its exit status */
	bool hidden;       /* not in `meshsplice help` (completion) */
};

/* The command table and the global options (main.c), read by completion. */
extern const struct cmd cli_commands[];

extern const struct option cli_global_opts[];

/* Run the command of table that argv[0] names (a unique prefix is enough);
 * --help or -h among its arguments prints its usage instead. */
int cli_dispatch(struct cli *c, const struct cmd *table, int argc, char **argv, const char *what);
/* Print an error: plain "meshsplice: msg" or {"error": msg} in JSON mode. Returns 1. */
int cli_error(struct cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for a usage error (bad arguments); returns CLI_EXIT_USAGE. */
int cli_usage(struct cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int cmd_validate(struct cli *c, int argc, char **argv);
int cmd_render(struct cli *c, int argc, char **argv);
int cmd_iptables(struct cli *c, int argc, char **argv);
int cmd_completion(struct cli *c, int argc, char **argv);
int cmd_agent(struct cli *c, int argc, char **argv, const char *verb);
