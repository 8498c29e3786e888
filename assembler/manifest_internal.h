/* Internals shared by the manifest_*.c files: the YAML node tree built from
 * libyaml events, and the schema walker's context.  Not for other modules. */
#ifndef KILN_MANIFEST_INTERNAL_H
#define KILN_MANIFEST_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "manifest.h"

enum ynode_kind { YNODE_SCALAR, YNODE_SEQUENCE, YNODE_MAPPING };

/* What a scalar resolves to under YAML 1.2's core schema (as yaml.v3 reads
 * it): quoted and !!str-tagged scalars are strings. */
enum yscalar_type { YS_STRING, YS_NULL, YS_BOOL, YS_INT, YS_FLOAT };

struct ynode {
	enum ynode_kind kind;
	unsigned line, col; /* 1-based */
	/* scalar */
	char *value;
	size_t len;
	enum yscalar_type type;
	bool bool_value;
	int64_t int_value;
	bool int_overflow;
	bool merge_key; /* a plain "<<" (YAML merge key) */
	/* sequence: items[i]; mapping: items[2i] key, items[2i+1] value */
	size_t n, cap;
	struct ynode **items;
	uint64_t weight; /* nodes in the subtree, counting alias expansions */
	uint64_t bytes;  /* scalar bytes (+1 per scalar) in the subtree, likewise */
};

/* All nodes of one document (aliases share nodes, so they are freed from
 * this list, not by walking the tree). */
struct ytree {
	struct ynode *root; /* NULL for an empty document */
	size_t nnodes, cap;
	struct ynode **nodes;
};

/* Parses TEXT with libyaml into TREE, enforcing MANIFEST_MAX_SIZE,
 * MANIFEST_MAX_DEPTH and MANIFEST_MAX_NODES, one document only, unique
 * mapping keys (scalar keys only).  Errors: "FILENAME:LINE:COL: message". */
int ytree_parse(struct ytree *tree, const char *text, size_t len, const char *filename,
		struct kiln_error **err);
void ytree_release(struct ytree *tree);

const char *ynode_type_name(const struct ynode *n);

/* Every YAML error's form, "FILE:LINE:COL: message" (LINE and COL 1-based),
 * into *ERR; returns -1.  Also used by pkg.c's build.yml reader. */
int yaml_position_verror(struct kiln_error **err, const char *file, size_t line, size_t col,
			 const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

/* true when S written as a plain YAML scalar would be read back as a string
 * (not null, a boolean or a number). */
bool yscalar_plain_is_string(const char *s);

/* Escapes control characters (\n, \t, \xHH) in (*ERR)->msg so that every
 * manifest error is exactly one line even when it quotes a multi-line value. */
void manifest_error_one_line(struct kiln_error **err);

/* The schema walker's context. */
struct mctx {
	const char *file;     /* for messages */
	const char *base_dir; /* for @pkg:; NULL = no templates (labels) */
	const struct manifest_parse_options *opts;
	struct kiln_error **err;
	const char *entry; /* "services[2]" while reading an image entry, for messages */
};

int mctx_fail(struct mctx *c, const struct ynode *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Fills CFG from the image-entry mapping N.  NAME/IMAGE (may be NULL)
 * receive the name and image keys; when they are NULL those keys are errors
 * (labels). */
int image_config_from_node(struct mctx *c, const struct ynode *n, struct image_config *cfg,
			   char **name, char **image, struct manifest_pos *image_pos);

/* Scalar accessors: check the type, resolve @pkg: templates (strings). */
int mctx_string(struct mctx *c, const struct ynode *n, const char *what, char **out);
int mctx_bool(struct mctx *c, const struct ynode *n, const char *what, struct manifest_opt_bool *out);
int mctx_int(struct mctx *c, const struct ynode *n, const char *what, struct manifest_opt_int *out);
int mctx_strlist(struct mctx *c, const struct ynode *n, const char *what,
		 struct manifest_strlist *out);
int mctx_id(struct mctx *c, const struct ynode *n, const char *what, struct manifest_id *out);
int mctx_mode(struct mctx *c, const struct ynode *n, const char *what, struct manifest_opt_int *out);
int mctx_expect(struct mctx *c, const struct ynode *n, enum ynode_kind kind, const char *what);

void manifest_strlist_release(struct manifest_strlist *l);
void manifest_strlist_copy(struct manifest_strlist *dst, const struct manifest_strlist *src);

#endif
