/* libyaml events → a small node tree with positions, under limits that make
 * hostile input harmless: size (before parsing), nesting depth (checked per
 * event, so libyaml never holds a deep stack), and the node count with every
 * alias expanded (billion laughs).  Aliases share nodes; an alias to an
 * anchor whose node is still open (a recursive structure) is refused. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "manifest_internal.h"
#include "util.h"

struct anchor {
	char *name;
	struct ynode *node;
};

struct ybuilder {
	struct ytree *tree;
	const char *filename;
	const char *text;
	size_t len;
	struct ynode *stack[MANIFEST_MAX_DEPTH + 1];
	char *stack_anchor[MANIFEST_MAX_DEPTH + 1];
	int depth;
	struct anchor *anchors;
	size_t nanchors, anchors_cap;
	struct kiln_error **err;
};

static int yfail(struct ybuilder *b, unsigned line, unsigned col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

int yaml_position_verror(struct kiln_error **err, const char *file, size_t line, size_t col,
			 const char *fmt, va_list ap)
{
	cleanup_free char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		oom();
	return kiln_error_make(err, 0, "%s:%zu:%zu: %s", file, line, col, msg);
}

static int yfail(struct ybuilder *b, unsigned line, unsigned col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = yaml_position_verror(b->err, b->filename, line, col, fmt, ap);
	va_end(ap);
	return r;
}

/* Line and column (1-based) of byte OFFSET, for reader errors, which libyaml
 * reports as an offset only. */
static void offset_position(const char *text, size_t len, size_t offset, unsigned *line,
			    unsigned *col)
{
	unsigned l = 1, c = 1;
	if (offset > len)
		offset = len;
	for (size_t i = 0; i < offset; i++) {
		if (text[i] == '\n') {
			l++;
			c = 1;
		} else if (((unsigned char)text[i] & 0xc0) != 0x80) {
			c++;
		}
	}
	*line = l;
	*col = c;
}

static int parser_error(struct ybuilder *b, yaml_parser_t *p)
{
	unsigned line, col;
	const char *problem = p->problem ? p->problem : "invalid YAML";
	if (p->error == YAML_READER_ERROR) {
		offset_position(b->text, b->len, p->problem_offset, &line, &col);
		if (p->problem_value != -1)
			return yfail(b, line, col, "%s: #%X", problem, (unsigned)p->problem_value);
		return yfail(b, line, col, "%s", problem);
	}
	if (p->error == YAML_MEMORY_ERROR)
		oom();
	line = (unsigned)p->problem_mark.line + 1;
	col = (unsigned)p->problem_mark.column + 1;
	/* libyaml's tab message is cryptic; say what it means. */
	if (p->problem_mark.index < b->len && b->text[p->problem_mark.index] == '\t')
		return yfail(b, line, col, "tab character where YAML allows only spaces (%s%s%s)",
			     problem, p->context ? " " : "", p->context ? p->context : "");
	if (p->context)
		return yfail(b, line, col, "%s %s", problem, p->context);
	return yfail(b, line, col, "%s", problem);
}

static struct ynode *node_new(struct ybuilder *b, enum ynode_kind kind, yaml_mark_t mark)
{
	struct ytree *t = b->tree;
	struct ynode *n = xcalloc(1, sizeof *n);
	n->kind = kind;
	n->line = (unsigned)mark.line + 1;
	n->col = (unsigned)mark.column + 1;
	n->weight = 1;
	if (t->nnodes == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->nodes = xrealloc(t->nodes, t->cap * sizeof *t->nodes);
	}
	t->nodes[t->nnodes++] = n;
	return n;
}

static bool all_digits(const char *s, const char *digits)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (strchr(digits, *s) == NULL || *s == '\0')
			return false;
	return true;
}

/* Resolves a plain scalar the way YAML 1.2's core schema (and yaml.v3) does. */
static void resolve_plain(struct ynode *n)
{
	const char *v = n->value;
	if (n->len != strlen(v)) { /* embedded NUL: only a string */
		n->type = YS_STRING;
		return;
	}
	if (*v == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
	    strcmp(v, "NULL") == 0) {
		n->type = YS_NULL;
		return;
	}
	if (strcmp(v, "true") == 0 || strcmp(v, "True") == 0 || strcmp(v, "TRUE") == 0) {
		n->type = YS_BOOL;
		n->bool_value = true;
		return;
	}
	if (strcmp(v, "false") == 0 || strcmp(v, "False") == 0 || strcmp(v, "FALSE") == 0) {
		n->type = YS_BOOL;
		n->bool_value = false;
		return;
	}
	const char *s = v;
	bool neg = false;
	if (*s == '-' || *s == '+') {
		neg = *s == '-';
		s++;
	}
	int base = 0;
	const char *digits = NULL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16, digits = "0123456789abcdefABCDEF", s += 2;
	} else if (s[0] == '0' && s[1] == 'o') {
		base = 8, digits = "01234567", s += 2;
	} else if (s[0] == '0' && s[1] == 'b') {
		base = 2, digits = "01", s += 2;
	} else if (all_digits(s, "0123456789")) {
		/* yaml.v3 reads a leading-zero integer ("0644") as octal */
		base = (s[0] == '0' && s[1] != '\0') ? 8 : 10;
		digits = base == 8 ? "01234567" : "0123456789";
	}
	if (digits && all_digits(s, digits)) {
		n->type = YS_INT;
		errno = 0;
		unsigned long long u = strtoull(s, NULL, base);
		if (errno == ERANGE || u > (unsigned long long)INT64_MAX + (neg ? 1 : 0)) {
			n->int_overflow = true;
		} else if (neg) {
			n->int_value = u == (unsigned long long)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
		} else {
			n->int_value = (int64_t)u;
		}
		return;
	}
	/* floats: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? and .inf/.nan */
	s = v;
	if (*s == '-' || *s == '+')
		s++;
	if (strcmp(s, ".inf") == 0 || strcmp(s, ".Inf") == 0 || strcmp(s, ".INF") == 0 ||
	    ((strcmp(v, ".nan") == 0 || strcmp(v, ".NaN") == 0 || strcmp(v, ".NAN") == 0))) {
		n->type = YS_FLOAT;
		return;
	}
	size_t ndig = 0;
	while (*s >= '0' && *s <= '9')
		s++, ndig++;
	if (*s == '.') {
		s++;
		while (*s >= '0' && *s <= '9')
			s++, ndig++;
	}
	if (ndig > 0 && (*s == 'e' || *s == 'E')) {
		s++;
		if (*s == '-' || *s == '+')
			s++;
		if (!(*s >= '0' && *s <= '9'))
			goto string;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (ndig > 0 && *s == '\0') {
		n->type = YS_FLOAT;
		return;
	}
string:
	n->type = YS_STRING;
}

static const char *tag_short(const char *tag)
{
	if (tag && str_has_prefix(tag, "tag:yaml.org,2002:"))
		return tag + strlen("tag:yaml.org,2002:");
	return tag;
}

static int key_compare(const struct ynode *a, const struct ynode *b);

/* A pair of a mapping being rebuilt by apply_merge_keys(). */
struct merge_pair {
	struct ynode *key, *value;
	size_t order; /* explicit pairs first, then merged ones by priority */
	bool keep;
};

static int merge_pair_compare(const void *x, const void *y)
{
	const struct merge_pair *a = x, *b = y;
	int c = key_compare(a->key, b->key);
	if (c != 0)
		return c;
	return a->order < b->order ? -1 : a->order > b->order;
}

static int merge_pair_order(const void *x, const void *y)
{
	const struct merge_pair *a = x, *b = y;
	return a->order < b->order ? -1 : a->order > b->order;
}

/* YAML merge keys, as yaml.v3 (LinuxKit) applies them: `<<: *map` or
 * `<<: [*a, *b]` adds the pairs of those mappings whose keys M does not
 * have itself; with a list, earlier mappings win.  O(n log n). */
static int apply_merge_keys(struct ybuilder *b, struct ynode *m)
{
	size_t npairs = m->n / 2, total = 0;
	bool any = false;
	for (size_t i = 0; i < npairs; i++) {
		const struct ynode *k = m->items[2 * i], *v = m->items[2 * i + 1];
		if (!k->merge_key) {
			total++;
			continue;
		}
		any = true;
		if (v->kind == YNODE_MAPPING) {
			total += v->n / 2;
		} else if (v->kind == YNODE_SEQUENCE) {
			for (size_t j = 0; j < v->n; j++) {
				if (v->items[j]->kind != YNODE_MAPPING)
					return yfail(b, v->items[j]->line, v->items[j]->col,
						     "a merge key (<<) takes a mapping or a list of "
						     "mappings (got %s)",
						     ynode_type_name(v->items[j]));
				total += v->items[j]->n / 2;
			}
		} else {
			return yfail(b, v->line, v->col,
				     "a merge key (<<) takes a mapping or a list of mappings (got %s)",
				     ynode_type_name(v));
		}
	}
	if (!any)
		return 0;
	struct merge_pair *pairs = xcalloc(total + 1, sizeof *pairs);
	size_t n = 0;
	for (size_t i = 0; i < npairs; i++)
		if (!m->items[2 * i]->merge_key)
			pairs[n] = (struct merge_pair){m->items[2 * i], m->items[2 * i + 1], n, false},
			n++;
	for (size_t i = 0; i < npairs; i++) {
		const struct ynode *v = m->items[2 * i + 1];
		if (!m->items[2 * i]->merge_key)
			continue;
		size_t nsrc = v->kind == YNODE_MAPPING ? 1 : v->n;
		for (size_t s = 0; s < nsrc; s++) {
			const struct ynode *src = v->kind == YNODE_MAPPING ? v : v->items[s];
			for (size_t j = 0; j + 1 < src->n; j += 2)
				pairs[n] = (struct merge_pair){src->items[j], src->items[j + 1], n,
							      false},
				n++;
		}
	}
	/* keep the first pair (explicit, else highest priority) of every key */
	qsort(pairs, n, sizeof *pairs, merge_pair_compare);
	for (size_t i = 0; i < n; i++)
		pairs[i].keep = i == 0 || key_compare(pairs[i - 1].key, pairs[i].key) != 0;
	qsort(pairs, n, sizeof *pairs, merge_pair_order);
	size_t out = 0;
	for (size_t i = 0; i < n; i++)
		if (pairs[i].keep)
			out++;
	if (2 * out > m->cap) {
		m->cap = 2 * out;
		m->items = xrealloc(m->items, m->cap * sizeof *m->items);
	}
	m->n = 0;
	for (size_t i = 0; i < n; i++)
		if (pairs[i].keep) {
			m->items[m->n++] = pairs[i].key;
			m->items[m->n++] = pairs[i].value;
		}
	free(pairs);
	return 0;
}

static int register_anchor(struct ybuilder *b, char *name, struct ynode *n)
{
	if (name == NULL)
		return 0;
	/* A later anchor of the same name shadows the earlier one. */
	for (size_t i = 0; i < b->nanchors; i++) {
		if (strcmp(b->anchors[i].name, name) == 0) {
			free(b->anchors[i].name);
			b->anchors[i].name = name;
			b->anchors[i].node = n;
			return 0;
		}
	}
	if (b->nanchors == b->anchors_cap) {
		b->anchors_cap = b->anchors_cap ? b->anchors_cap * 2 : 16;
		b->anchors = xrealloc(b->anchors, b->anchors_cap * sizeof *b->anchors);
	}
	b->anchors[b->nanchors++] = (struct anchor){name, n};
	return 0;
}

static int key_compare(const struct ynode *a, const struct ynode *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->value, b->value, n);
	if (c != 0)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
}

/* Sorts key indexes by key, then by position in the mapping. */
static int key_index_compare(const void *x, const void *y, void *data)
{
	const struct ynode *m = data;
	size_t i = *(const size_t *)x, j = *(const size_t *)y;
	int c = key_compare(m->items[2 * i], m->items[2 * j]);
	if (c != 0)
		return c;
	return i < j ? -1 : i > j;
}

/* Refuses a mapping that repeats a key, naming the first repetition in
 * document order.  O(n log n): a hostile mapping may have 10^5 keys. */
static int check_unique_keys(struct ybuilder *b, const struct ynode *m)
{
	size_t n = m->n / 2, dup = SIZE_MAX, first = 0;
	if (n < 2)
		return 0;
	size_t *idx = xmalloc(n * sizeof *idx);
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	qsort_r(idx, n, sizeof *idx, key_index_compare, (void *)m);
	for (size_t i = 1; i < n; i++)
		if (key_compare(m->items[2 * idx[i - 1]], m->items[2 * idx[i]]) == 0 && idx[i] < dup) {
			dup = idx[i];
			/* the first occurrence of this key */
			size_t j = i - 1;
			while (j > 0 && key_compare(m->items[2 * idx[j - 1]], m->items[2 * idx[i]]) == 0)
				j--;
			first = idx[j];
		}
	free(idx);
	if (dup == SIZE_MAX)
		return 0;
	const struct ynode *k = m->items[2 * dup];
	return yfail(b, k->line, k->col, "mapping key \"%s\" already defined at line %u", k->value,
		     m->items[2 * first]->line);
}

/* Adds CHILD to the open collection on top of the stack (or makes it the
 * root), enforcing the expanded-size budget and unique scalar keys. */
static int add_child(struct ybuilder *b, struct ynode *child, yaml_mark_t mark)
{
	if (b->depth == 0) {
		if (b->tree->root != NULL)
			return yfail(b, (unsigned)mark.line + 1, (unsigned)mark.column + 1,
				     "more than one YAML node at the top level");
		b->tree->root = child;
		return 0;
	}
	struct ynode *p = b->stack[b->depth - 1];
	if (p->kind == YNODE_MAPPING && p->n % 2 == 0 && child->kind != YNODE_SCALAR)
		return yfail(b, child->line, child->col, "mapping keys must be scalars, not a %s",
			     ynode_type_name(child));
	if (p->weight + child->weight > MANIFEST_MAX_NODES)
		return yfail(b, (unsigned)mark.line + 1, (unsigned)mark.column + 1,
			     "document too large: more than %u YAML nodes counting alias "
			     "expansions (alias bomb?)",
			     MANIFEST_MAX_NODES);
	if (p->bytes + child->bytes > MANIFEST_MAX_EXPANDED_BYTES)
		return yfail(b, (unsigned)mark.line + 1, (unsigned)mark.column + 1,
			     "document too large: its strings, counting alias expansions, exceed "
			     "%u bytes (alias bomb?)",
			     MANIFEST_MAX_EXPANDED_BYTES);
	p->weight += child->weight;
	p->bytes += child->bytes;
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 8;
		p->items = xrealloc(p->items, p->cap * sizeof *p->items);
	}
	p->items[p->n++] = child;
	return 0;
}

static int handle_event(struct ybuilder *b, yaml_event_t *ev, int *documents, bool *done)
{
	switch (ev->type) {
	case YAML_STREAM_START_EVENT:
	case YAML_DOCUMENT_END_EVENT:
		return 0;
	case YAML_STREAM_END_EVENT:
		*done = true;
		return 0;
	case YAML_DOCUMENT_START_EVENT:
		if (++*documents > 1)
			return yfail(b, (unsigned)ev->start_mark.line + 1,
				     (unsigned)ev->start_mark.column + 1,
				     "more than one YAML document in a manifest");
		return 0;
	case YAML_ALIAS_EVENT: {
		const char *name = (const char *)ev->data.alias.anchor;
		for (size_t i = b->nanchors; i-- > 0;)
			if (strcmp(b->anchors[i].name, name) == 0)
				return add_child(b, b->anchors[i].node, ev->start_mark);
		return yfail(b, (unsigned)ev->start_mark.line + 1, (unsigned)ev->start_mark.column + 1,
			     "unknown or recursive alias *%s", name);
	}
	case YAML_SCALAR_EVENT: {
		struct ynode *n = node_new(b, YNODE_SCALAR, ev->start_mark);
		n->len = ev->data.scalar.length;
		n->value = xmalloc(n->len + 1);
		memcpy(n->value, ev->data.scalar.value, n->len);
		n->value[n->len] = '\0';
		n->bytes = n->len + 1;
		const char *tag = tag_short((const char *)ev->data.scalar.tag);
		if (tag && strcmp(tag, "!") != 0) {
			if (strcmp(tag, "str") == 0) {
				n->type = YS_STRING;
			} else if (strcmp(tag, "int") == 0 || strcmp(tag, "bool") == 0 ||
				   strcmp(tag, "null") == 0 || strcmp(tag, "float") == 0) {
				resolve_plain(n);
				const char *want = tag;
				const char *got = ynode_type_name(n);
				if (strcmp(want, "int") == 0 ? n->type != YS_INT
				    : strcmp(want, "bool") == 0 ? n->type != YS_BOOL
				    : strcmp(want, "null") == 0 ? n->type != YS_NULL
								: n->type != YS_FLOAT && n->type != YS_INT)
					return yfail(b, n->line, n->col, "cannot read %s as !!%s", got,
						     want);
			} else {
				return yfail(b, n->line, n->col, "unsupported YAML tag %s", tag);
			}
		} else if (ev->data.scalar.plain_implicit && !tag) {
			resolve_plain(n);
			n->merge_key = strcmp(n->value, "<<") == 0;
		} else {
			n->type = YS_STRING;
		}
		if (add_child(b, n, ev->start_mark) < 0)
			return -1;
		if (ev->data.scalar.anchor)
			register_anchor(b, xstrdup((const char *)ev->data.scalar.anchor), n);
		return 0;
	}
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
		if (b->depth >= MANIFEST_MAX_DEPTH)
			return yfail(b, (unsigned)ev->start_mark.line + 1,
				     (unsigned)ev->start_mark.column + 1,
				     "nesting deeper than %d levels", MANIFEST_MAX_DEPTH);
		const char *tag = tag_short(
			(const char *)(seq ? ev->data.sequence_start.tag : ev->data.mapping_start.tag));
		if (tag && strcmp(tag, seq ? "seq" : "map") != 0 && strcmp(tag, "!") != 0)
			return yfail(b, (unsigned)ev->start_mark.line + 1,
				     (unsigned)ev->start_mark.column + 1, "unsupported YAML tag %s",
				     tag);
		struct ynode *n = node_new(b, seq ? YNODE_SEQUENCE : YNODE_MAPPING, ev->start_mark);
		const yaml_char_t *anchor =
			seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;
		b->stack_anchor[b->depth] = anchor ? xstrdup((const char *)anchor) : NULL;
		b->stack[b->depth++] = n;
		return 0;
	}
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT: {
		struct ynode *n = b->stack[--b->depth];
		char *anchor = b->stack_anchor[b->depth];
		b->stack_anchor[b->depth] = NULL;
		if ((n->kind == YNODE_MAPPING &&
		     (check_unique_keys(b, n) < 0 || apply_merge_keys(b, n) < 0)) ||
		    add_child(b, n, ev->start_mark) < 0) {
			free(anchor);
			return -1;
		}
		/* registered only once complete, so an alias inside cannot refer to it */
		register_anchor(b, anchor, n);
		return 0;
	}
	case YAML_NO_EVENT:
		break;
	}
	return yfail(b, (unsigned)ev->start_mark.line + 1, (unsigned)ev->start_mark.column + 1,
		     "unexpected YAML event");
}

int ytree_parse(struct ytree *tree, const char *text, size_t len, const char *filename,
		struct kiln_error **err)
{
	memset(tree, 0, sizeof *tree);
	if (len > MANIFEST_MAX_SIZE)
		return kiln_error_make(err, 0, "%s:1:1: input is %zu bytes, more than the %u allowed",
				       filename, len, MANIFEST_MAX_SIZE);
	struct ybuilder b = {.tree = tree, .filename = filename, .text = text, .len = len, .err = err};
	yaml_parser_t parser;
	if (!yaml_parser_initialize(&parser))
		oom();
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
	int documents = 0;
	bool done = false;
	int r = 0;
	while (!done) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&parser, &ev)) {
			r = parser_error(&b, &parser);
			break;
		}
		r = handle_event(&b, &ev, &documents, &done);
		yaml_event_delete(&ev);
		if (r < 0)
			break;
	}
	yaml_parser_delete(&parser);
	for (int i = 0; i < b.depth; i++)
		free(b.stack_anchor[i]);
	for (size_t i = 0; i < b.nanchors; i++)
		free(b.anchors[i].name);
	free(b.anchors);
	if (r < 0) {
		manifest_error_one_line(err);
		ytree_release(tree);
		return -1;
	}
	return 0;
}

void ytree_release(struct ytree *tree)
{
	for (size_t i = 0; i < tree->nnodes; i++) {
		free(tree->nodes[i]->value);
		free(tree->nodes[i]->items);
		free(tree->nodes[i]);
	}
	free(tree->nodes);
	memset(tree, 0, sizeof *tree);
}

const char *ynode_type_name(const struct ynode *n)
{
	if (n->kind == YNODE_SEQUENCE)
		return "list";
	if (n->kind == YNODE_MAPPING)
		return "mapping";
	switch (n->type) {
	case YS_STRING:
		return "string";
	case YS_NULL:
		return "null";
	case YS_BOOL:
		return "boolean";
	case YS_INT:
		return "integer";
	case YS_FLOAT:
		return "number";
	}
	return "scalar";
}

bool yscalar_plain_is_string(const char *s)
{
	struct ynode n = {.kind = YNODE_SCALAR, .value = (char *)s, .len = strlen(s)};
	resolve_plain(&n);
	return n.type == YS_STRING;
}

void manifest_error_one_line(struct kiln_error **err)
{
	if (err == NULL || *err == NULL || (*err)->msg == NULL)
		return;
	const char *s = (*err)->msg;
	size_t extra = 0;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			extra += 3;
	if (extra == 0)
		return;
	char *out = xmalloc(strlen(s) + extra + 1), *o = out;
	for (const char *p = s; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch == '\n')
			o += sprintf(o, "\\n");
		else if (ch == '\t')
			o += sprintf(o, "\\t");
		else if (ch < 0x20 || ch == 0x7f)
			o += sprintf(o, "\\x%02x", ch);
		else
			*o++ = (char)ch;
	}
	*o = '\0';
	free((*err)->msg);
	(*err)->msg = out;
}
