/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "errors.h"

/* A small YAML tree with positions, built from libyaml events under hard
 * limits so that no input can exhaust memory or stack. */
enum ynode_type { YNODE_SCALAR, YNODE_MAP, YNODE_SEQ };

struct ynode {
	enum ynode_type type;
	unsigned line, col; /* 1-based */
	char *str;          /* scalar value (NUL-terminated; may contain NUL: see len) */
	size_t len;
	bool plain;      /* plain (unquoted) scalar: may be a bool, number or null */
	struct ynode **v; /* SEQ: items; MAP: key0, value0, key1, value1, ... */
	size_t n;        /* number of entries in v */
};

struct ydoc {
	struct ynode *root; /* NULL for an empty document */
	unsigned line;
};

#define YDOM_MAX_DEPTH 64
#define YDOM_MAX_NODES 100000 /* per document, aliases expanded */
/* per file: a many-document file (30,000 services, say) stays readable, while
 * aliases expanded document after document stay bounded (every document of a
 * file is in memory at once: 500,000 nodes peak at about 55 MB) */
#define YDOM_MAX_FILE_NODES 500000
#define YDOM_MAX_SCALAR (1u << 20)

/* Parse every document of buf. Returns the number of documents (>= 0) and
 * hands the array to the caller (free with ydom_free_docs), or -EINVAL after
 * recording the problem in errs (nothing is returned then). */
int ydom_parse(const char *buf, size_t len, const char *file, struct cfg_errors *errs,
	       struct ydoc **ret_docs);
void ydom_free_docs(struct ydoc *docs, size_t n);

/* Map lookup by key; NULL when absent or when node is not a map. */
struct ynode *ynode_get(const struct ynode *map, const char *key);
const char *ynode_type_name(const struct ynode *n);
bool ynode_is_null(const struct ynode *n);
/* A plain scalar YAML 1.1 reads as a boolean: true and its value in *ret. */
bool ynode_bool(const struct ynode *n, bool *ret);
/* A plain scalar YAML reads as a number (int or float). */
bool ynode_number(const struct ynode *n);
