/* SPDX-License-Identifier: MIT */
#pragma once

/* Typed accessors over the YAML tree that record "file:line:col: field: why"
 * and never hand an unchecked string to the model. Internal to config/. */

#include <stdbool.h>
#include <stdint.h>

#include "errors.h"
#include "yaml-dom.h"

struct dctx {
	const char *file;
	struct cfg_errors *errs;
};

#define DPATH_MAX 256

void d_err(struct dctx *d, const struct ynode *at, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The same as a warning (cfg_warn_add): what Kuma accepts but we doubt. */
void d_warn(struct dctx *d, const struct ynode *at, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* path + "." + key into buf (or key alone when path is empty). */
const char *d_join(char *buf, const char *path, const char *key);
const char *d_index(char *buf, const char *path, size_t i);

bool d_is_map(struct dctx *d, const struct ynode *n, const char *path);
bool d_is_seq(struct dctx *d, const struct ynode *n, const char *path);
/* Report each key of map not in allowed (NULL-terminated). */
void d_known(struct dctx *d, const struct ynode *map, const char *path,
	     const char *const *allowed);

/* Getters: absent → return 0 and leave *ret; wrong type → error, -EINVAL. */
int d_str(struct dctx *d, const struct ynode *map, const char *key, const char *path,
	  bool required, char **ret);
int d_bool(struct dctx *d, const struct ynode *map, const char *key, const char *path,
	   bool *ret);
int d_port(struct dctx *d, const struct ynode *map, const char *key, const char *path,
	   bool required, uint16_t *ret);
int d_scalar_str(struct dctx *d, const struct ynode *n, const char *path, char **ret);
/* A map of string → string (labels, tags, matchLabels). On error nothing is
 * returned (and nothing is left to free). */
int d_strmap(struct dctx *d, const struct ynode *map, const char *key, const char *path,
	     char ***ret_kv, size_t *ret_n);
/* Parse a port number from a scalar; -EINVAL if not 1..65535. */
int d_parse_port(const struct ynode *n, uint16_t *ret);
/* map[key] as an index into names (n_names of them); absent → 0 and *ret
 * left alone; another value → error naming the choices, -EINVAL. */
int d_pick(struct dctx *d, const struct ynode *map, const char *key, const char *path,
	   const char *const *names, size_t n_names, int *ret);
/* An unsigned number min..max (plain scalar, decimal). */
int d_uint(struct dctx *d, const struct ynode *map, const char *key, const char *path,
	   unsigned long min, unsigned long max, unsigned long *ret);
