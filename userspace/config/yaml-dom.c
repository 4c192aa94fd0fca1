// SPDX-License-Identifier: MIT
#include "yaml-dom.h"

#include <ctype.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "util.h"

struct anchor {
	char *name;
	struct ynode *node; /* owned by the tree; NULL while the node is still open */
};

struct builder {
	const char *file;
	struct cfg_errors *errs;
	size_t nodes;      /* nodes of this document, aliases expanded included */
	size_t file_nodes; /* and of the whole file */
	struct ynode *stack[YDOM_MAX_DEPTH + 1];
	char *stack_anchor[YDOM_MAX_DEPTH + 1];
	size_t depth;
	struct anchor *anchors;
	size_t n_anchors;
	bool failed;
};

static void node_free(struct ynode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		node_free(n->v[i]);
	free(n->v);
	free(n->str);
	free(n);
}

void ydom_free_docs(struct ydoc *docs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		node_free(docs[i].root);
	free(docs);
}

static void fail(struct builder *b, const yaml_mark_t *m, const char *fmt, const char *arg)
{
	if (b->failed)
		return;
	b->failed = true;
	cfg_errors_add(b->errs, b->file, m ? (unsigned)m->line + 1 : 0,
		       m ? (unsigned)m->column + 1 : 0, "", fmt, arg ? arg : "");
}

static struct ynode *node_new(struct builder *b, enum ynode_type t, const yaml_mark_t *m)
{
	struct ynode *n;

	char limit[24];

	if (++b->nodes > YDOM_MAX_NODES) {
		snprintf(limit, sizeof(limit), "%d", YDOM_MAX_NODES);
		fail(b, m, "document has more than %s nodes (after expanding aliases)", limit);
		return NULL;
	}
	if (++b->file_nodes > YDOM_MAX_FILE_NODES) {
		snprintf(limit, sizeof(limit), "%d", YDOM_MAX_FILE_NODES);
		fail(b, m, "file has more than %s nodes (after expanding aliases); split it", limit);
		return NULL;
	}
	n = xcalloc(1, sizeof(*n));
	n->type = t;
	n->line = (unsigned)m->line + 1;
	n->col = (unsigned)m->column + 1;
	return n;
}

static void node_append(struct ynode *parent, struct ynode *child)
{
	/* Grow in powers of two: n is the count, capacity is implied. */
	if ((parent->n & (parent->n - 1)) == 0)
		parent->v = xrealloc(parent->v, parent->n ? parent->n * 2 : 1, sizeof(*parent->v));
	parent->v[parent->n++] = child;
}

/* Deep copy for an alias, charged to the node budget so that "billion laughs"
 * documents fail on the budget instead of exhausting memory. */
static struct ynode *node_copy(struct builder *b, const struct ynode *src, const yaml_mark_t *m)
{
	struct ynode *n = node_new(b, src->type, m);

	if (!n)
		return NULL;
	n->line = src->line;
	n->col = src->col;
	n->plain = src->plain;
	if (src->str) {
		n->str = xcalloc(src->len + 1, 1);
		memcpy(n->str, src->str, src->len);
		n->len = src->len;
	}
	for (size_t i = 0; i < src->n; i++) {
		struct ynode *c = node_copy(b, src->v[i], m);
		if (!c) {
			node_free(n);
			return NULL;
		}
		node_append(n, c);
	}
	return n;
}

static void anchor_done(struct builder *b, const char *name, struct ynode *node)
{
	if (!name)
		return;
	/* A later anchor of the same name shadows the earlier one (YAML 1.2). */
	b->anchors = xrealloc(b->anchors, b->n_anchors + 1, sizeof(*b->anchors));
	b->anchors[b->n_anchors].name = xstrdup(name);
	b->anchors[b->n_anchors].node = node;
	b->n_anchors++;
}

static struct ynode *anchor_find(struct builder *b, const char *name)
{
	for (size_t i = b->n_anchors; i > 0; i--)
		if (streq(b->anchors[i - 1].name, name))
			return b->anchors[i - 1].node;
	return NULL;
}

static bool anchor_open(struct builder *b, const char *name)
{
	for (size_t i = 0; i < b->depth; i++)
		if (streq(b->stack_anchor[i], name))
			return true;
	return false;
}

/* Attach a finished node to the open collection (or make it the root). */
static void attach(struct builder *b, struct ydoc *doc, struct ynode *n, const yaml_mark_t *m)
{
	if (b->depth == 0) {
		doc->root = n;
		return;
	}
	struct ynode *parent = b->stack[b->depth - 1];
	if (parent->type == YNODE_MAP && (parent->n % 2) == 0) {
		if (n->type != YNODE_SCALAR) {
			fail(b, m, "mapping keys must be plain strings%s", "");
			node_free(n);
			return;
		}
		for (size_t i = 0; i < parent->n; i += 2) {
			if (parent->v[i]->len == n->len && memcmp(parent->v[i]->str, n->str, n->len) == 0) {
				fail(b, m, "duplicate key \"%s\"", log_escape(n->str));
				node_free(n);
				return;
			}
		}
	}
	node_append(parent, n);
}

static void anchors_free(struct builder *b)
{
	for (size_t i = 0; i < b->n_anchors; i++)
		free(b->anchors[i].name);
	free(b->anchors);
	b->anchors = NULL;
	b->n_anchors = 0;
}

static void stack_free(struct builder *b)
{
	/* Open collections are attached to their parent only when they end, so
	 * each stack entry is owned by the stack. */
	for (size_t i = b->depth; i > 0; i--) {
		node_free(b->stack[i - 1]);
		free(b->stack_anchor[i - 1]);
	}
	b->depth = 0;
}

int ydom_parse(const char *buf, size_t len, const char *file, struct cfg_errors *errs,
	       struct ydoc **ret_docs)
{
	struct builder b = { .file = file, .errs = errs };
	struct ydoc *docs = NULL, *cur = NULL;
	size_t n_docs = 0;
	yaml_parser_t parser;
	bool done = false;

	if (!yaml_parser_initialize(&parser))
		abort();
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);

	while (!done && !b.failed) {
		yaml_event_t ev;
		struct ynode *n;

		if (!yaml_parser_parse(&parser, &ev)) {
			char msg[512];
			snprintf(msg, sizeof(msg), "invalid YAML: %s%s%s",
				 parser.problem ? parser.problem : "syntax error",
				 parser.context ? " " : "", parser.context ? parser.context : "");
			fail(&b, &parser.problem_mark, "%s", msg);
			break;
		}
		const yaml_mark_t *m = &ev.start_mark;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			docs = xrealloc(docs, n_docs + 1, sizeof(*docs));
			cur = &docs[n_docs++];
			memset(cur, 0, sizeof(*cur));
			cur->line = (unsigned)m->line + 1;
			b.nodes = 0;
			break;
		case YAML_DOCUMENT_END_EVENT:
			anchors_free(&b); /* anchors do not cross documents */
			cur = NULL;
			break;
		case YAML_SCALAR_EVENT:
			if (ev.data.scalar.length > YDOM_MAX_SCALAR) {
				fail(&b, m, "string longer than 1 MiB%s", "");
				break;
			}
			n = node_new(&b, YNODE_SCALAR, m);
			if (!n)
				break;
			n->str = xcalloc(ev.data.scalar.length + 1, 1);
			memcpy(n->str, ev.data.scalar.value, ev.data.scalar.length);
			n->len = ev.data.scalar.length;
			n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
			anchor_done(&b, (const char *)ev.data.scalar.anchor, n);
			attach(&b, cur, n, m);
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (b.depth >= YDOM_MAX_DEPTH) {
				fail(&b, m, "nesting deeper than 64 levels%s", "");
				break;
			}
			n = node_new(&b, ev.type == YAML_MAPPING_START_EVENT ? YNODE_MAP : YNODE_SEQ, m);
			if (!n)
				break;
			{
				const yaml_char_t *a = ev.type == YAML_MAPPING_START_EVENT ?
							       ev.data.mapping_start.anchor :
							       ev.data.sequence_start.anchor;
				b.stack_anchor[b.depth] = a ? xstrdup((const char *)a) : NULL;
			}
			b.stack[b.depth++] = n;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT: {
			n = b.stack[--b.depth];
			char *anchor = b.stack_anchor[b.depth];
			anchor_done(&b, anchor, n);
			free(anchor);
			attach(&b, cur, n, m);
			break;
		}
		case YAML_ALIAS_EVENT: {
			const char *name = (const char *)ev.data.alias.anchor;
			struct ynode *target = anchor_find(&b, name);
			if (!target) {
				if (anchor_open(&b, name))
					fail(&b, m, "alias *%s refers to the collection that contains it (a cycle)",
					     log_escape(name));
				else
					fail(&b, m, "alias *%s has no anchor", log_escape(name));
				break;
			}
			n = node_copy(&b, target, m);
			if (n)
				attach(&b, cur, n, m);
			break;
		}
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	stack_free(&b);
	anchors_free(&b);
	if (b.failed) {
		ydom_free_docs(docs, n_docs);
		return -EINVAL;
	}
	*ret_docs = docs;
	return (int)n_docs;
}

struct ynode *ynode_get(const struct ynode *map, const char *key)
{
	if (!map || map->type != YNODE_MAP)
		return NULL;
	for (size_t i = 0; i + 1 < map->n; i += 2)
		if (streq(map->v[i]->str, key))
			return map->v[i + 1];
	return NULL;
}

const char *ynode_type_name(const struct ynode *n)
{
	if (!n)
		return "nothing";
	switch (n->type) {
	case YNODE_MAP:
		return "a mapping";
	case YNODE_SEQ:
		return "a list";
	default:
		return ynode_is_null(n) ? "null" : "a scalar";
	}
}

bool ynode_is_null(const struct ynode *n)
{
	return !n || (n->type == YNODE_SCALAR && n->plain &&
		      (n->len == 0 || streq(n->str, "~") || streq(n->str, "null") ||
		       streq(n->str, "Null") || streq(n->str, "NULL")));
}

/* go-yaml v2's table (resolve.go), which sigs.k8s.io/yaml, and so Kuma and
 * kubectl, read resources with: YAML 1.1's y/yes/on and n/no/off beside
 * true/false, in three cases each. */
bool ynode_bool(const struct ynode *n, bool *ret)
{
	static const char *const yes[] = { "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE",
					   "on", "On", "ON" };
	static const char *const no[] = { "n", "N", "no", "No", "NO", "false", "False", "FALSE",
					  "off", "Off", "OFF" };

	if (!n || n->type != YNODE_SCALAR || !n->plain)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++)
		if (streq(n->str, yes[i])) {
			*ret = true;
			return true;
		}
	for (size_t i = 0; i < ARRAY_SIZE(no); i++)
		if (streq(n->str, no[i])) {
			*ret = false;
			return true;
		}
	return false;
}

/* [-+]? then digits ('_' allowed) with an optional fraction and exponent,
 * 0x / 0b integers, .inf, .nan: what go-yaml v2 resolves to int or float */
bool ynode_number(const struct ynode *n)
{
	const char *p;
	bool digits = false;

	if (!n || n->type != YNODE_SCALAR || !n->plain || n->len == 0)
		return false;
	p = n->str;
	if (streq(p, ".nan") || streq(p, ".NaN") || streq(p, ".NAN"))
		return true;
	if (*p == '-' || *p == '+')
		p++;
	if (streq(p, ".inf") || streq(p, ".Inf") || streq(p, ".INF"))
		return true;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'b')) {
		const char *set = p[1] == 'x' ? "0123456789abcdefABCDEF_" : "01_";
		return p[2] && strspn(p + 2, set) == strlen(p + 2);
	}
	for (; isdigit((unsigned char)*p) || *p == '_'; p++)
		digits |= *p != '_';
	if (*p == '.')
		for (p++; isdigit((unsigned char)*p); p++)
			digits = true;
	if (digits && (*p == 'e' || *p == 'E')) {
		p++;
		if (*p == '-' || *p == '+')
			p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	return digits && !*p;
}
