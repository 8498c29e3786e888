/* A small JSON reader for the two files init reads (runtime.json and
 * config.json): a tree whose nodes remember their span in the source, so a
 * value can be replaced in place without re-serialising the document. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "init.h"

struct json_parser {
	const char *p, *end, *start;
	int depth;
	struct kiln_error **err;
};

static int json_fail(struct json_parser *ps, const char *what)
{
	return kiln_error_make(ps->err, 0, "JSON: %s at byte %zu", what,
			       (size_t)(ps->p - ps->start));
}

static void json_skip_ws(struct json_parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static void utf8_put(char *out, size_t *n, unsigned cp)
{
	if (cp < 0x80) {
		out[(*n)++] = (char)cp;
	} else if (cp < 0x800) {
		out[(*n)++] = (char)(0xc0 | (cp >> 6));
		out[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		out[(*n)++] = (char)(0xe0 | (cp >> 12));
		out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		out[(*n)++] = (char)(0xf0 | (cp >> 18));
		out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[(*n)++] = (char)(0x80 | (cp & 0x3f));
	}
}

static int json_hex4(struct json_parser *ps, unsigned *cp)
{
	if (ps->end - ps->p < 4)
		return json_fail(ps, "truncated \\u escape");
	*cp = 0;
	for (int i = 0; i < 4; i++) {
		char c = *ps->p++;
		*cp <<= 4;
		if (c >= '0' && c <= '9')
			*cp |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*cp |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*cp |= (unsigned)(c - 'A' + 10);
		else
			return json_fail(ps, "bad \\u escape");
	}
	return 0;
}

/* At the opening quote; returns a heap string. */
static char *json_string(struct json_parser *ps)
{
	ps->p++;
	const char *s = ps->p;
	/* The decoded text is never longer than the source. */
	while (ps->p < ps->end && *ps->p != '"') {
		if (*ps->p == '\\')
			ps->p++;
		ps->p++;
	}
	if (ps->p >= ps->end) {
		json_fail(ps, "unterminated string");
		return NULL;
	}
	size_t max = (size_t)(ps->p - s);
	const char *stop = ps->p;
	ps->p = s;
	cleanup_free char *out = xmalloc(max + 1);
	size_t n = 0;
	while (ps->p < stop) {
		char c = *ps->p++;
		if ((unsigned char)c < 0x20) {
			json_fail(ps, "control character in string");
			return NULL;
		}
		if (c != '\\') {
			out[n++] = c;
			continue;
		}
		c = *ps->p++;
		switch (c) {
		case '"':
			out[n++] = '"';
			break;
		case '\\':
			out[n++] = '\\';
			break;
		case '/':
			out[n++] = '/';
			break;
		case 'b':
			out[n++] = '\b';
			break;
		case 'f':
			out[n++] = '\f';
			break;
		case 'n':
			out[n++] = '\n';
			break;
		case 'r':
			out[n++] = '\r';
			break;
		case 't':
			out[n++] = '\t';
			break;
		case 'u': {
			unsigned cp;
			if (json_hex4(ps, &cp) < 0)
				return NULL;
			if (cp >= 0xd800 && cp < 0xdc00 && stop - ps->p >= 6 && ps->p[0] == '\\' &&
			    ps->p[1] == 'u') {
				const char *next = ps->p;
				ps->p += 2;
				unsigned lo;
				if (json_hex4(ps, &lo) < 0)
					return NULL;
				if (lo >= 0xdc00 && lo < 0xe000)
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				else
					ps->p = next; /* not a pair: that escape stands alone */
			}
			/* An unpaired surrogate is U+FFFD, as Go's encoding/json reads it. */
			if (cp >= 0xd800 && cp < 0xe000)
				cp = 0xfffd;
			if (cp == 0) {
				json_fail(ps, "NUL in string");
				return NULL;
			}
			utf8_put(out, &n, cp);
			break;
		}
		default:
			json_fail(ps, "bad escape");
			return NULL;
		}
	}
	out[n] = '\0';
	ps->p = stop + 1;
	return steal_pointer(&out);
}

static struct json *json_value(struct json_parser *ps);

static int json_push(struct json *j, char *key, struct json *item)
{
	j->items = xrealloc(j->items, (j->count + 1) * sizeof *j->items);
	if (j->type == JSON_OBJECT) {
		j->keys = xrealloc(j->keys, (j->count + 1) * sizeof *j->keys);
		j->keys[j->count] = key;
	}
	j->items[j->count++] = item;
	return 0;
}

static struct json *json_value(struct json_parser *ps)
{
	json_skip_ws(ps);
	if (ps->p >= ps->end) {
		json_fail(ps, "unexpected end");
		return NULL;
	}
	if (++ps->depth > 64) {
		json_fail(ps, "nested too deep");
		return NULL;
	}
	struct json *j = xcalloc(1, sizeof *j);
	j->raw = ps->p;
	char c = *ps->p;
	if (c == '{' || c == '[') {
		j->type = c == '{' ? JSON_OBJECT : JSON_ARRAY;
		char close = c == '{' ? '}' : ']';
		ps->p++;
		json_skip_ws(ps);
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			goto done;
		}
		for (;;) {
			char *key = NULL;
			json_skip_ws(ps);
			if (j->type == JSON_OBJECT) {
				if (ps->p >= ps->end || *ps->p != '"') {
					json_fail(ps, "expected a key");
					goto fail;
				}
				key = json_string(ps);
				if (key == NULL)
					goto fail;
				json_skip_ws(ps);
				if (ps->p >= ps->end || *ps->p != ':') {
					free(key);
					json_fail(ps, "expected ':'");
					goto fail;
				}
				ps->p++;
			}
			struct json *item = json_value(ps);
			if (item == NULL) {
				free(key);
				goto fail;
			}
			json_push(j, key, item);
			json_skip_ws(ps);
			if (ps->p < ps->end && *ps->p == ',') {
				ps->p++;
				continue;
			}
			if (ps->p < ps->end && *ps->p == close) {
				ps->p++;
				break;
			}
			json_fail(ps, "expected ',' or a closing bracket");
			goto fail;
		}
	} else if (c == '"') {
		j->type = JSON_STRING;
		j->str = json_string(ps);
		if (j->str == NULL)
			goto fail;
	} else if (ps->end - ps->p >= 4 && memcmp(ps->p, "true", 4) == 0) {
		j->type = JSON_BOOL;
		j->boolean = true;
		ps->p += 4;
	} else if (ps->end - ps->p >= 5 && memcmp(ps->p, "false", 5) == 0) {
		j->type = JSON_BOOL;
		ps->p += 5;
	} else if (ps->end - ps->p >= 4 && memcmp(ps->p, "null", 4) == 0) {
		j->type = JSON_NULL;
		ps->p += 4;
	} else if (c == '-' || (c >= '0' && c <= '9')) {
		j->type = JSON_NUMBER;
		char tmp[64];
		size_t n = 0;
		while (ps->p < ps->end && n < sizeof tmp - 1 &&
		       strchr("+-0123456789.eE", *ps->p) != NULL)
			tmp[n++] = *ps->p++;
		tmp[n] = '\0';
		char *endp;
		j->number = strtod(tmp, &endp);
		if (*endp != '\0') {
			json_fail(ps, "bad number");
			goto fail;
		}
	} else {
		json_fail(ps, "unexpected character");
		goto fail;
	}
done:
	j->raw_len = (size_t)(ps->p - j->raw);
	ps->depth--;
	return j;
fail:
	json_free(j);
	return NULL;
}

struct json *json_parse(const char *text, size_t len, struct kiln_error **err)
{
	struct json_parser ps = {text, text + len, text, 0, err};
	struct json *j = json_value(&ps);
	if (j == NULL)
		return NULL;
	json_skip_ws(&ps);
	if (ps.p != ps.end) {
		json_fail(&ps, "trailing data");
		json_free(j);
		return NULL;
	}
	return j;
}

void json_free(struct json *j)
{
	if (j == NULL)
		return;
	for (size_t i = 0; i < j->count; i++) {
		if (j->keys)
			free(j->keys[i]);
		json_free(j->items[i]);
	}
	free(j->keys);
	free(j->items);
	free(j->str);
	free(j);
}

struct json *json_get(const struct json *j, const char *key)
{
	if (j == NULL || j->type != JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < j->count; i++)
		if (strcmp(j->keys[i], key) == 0)
			return j->items[i];
	return NULL;
}

const char *json_get_str(const struct json *j, const char *key)
{
	struct json *v = json_get(j, key);
	return v && v->type == JSON_STRING ? v->str : NULL;
}

void json_append_string(char **buf, size_t *len, const char *s)
{
	size_t need = *len + strlen(s) * 6 + 3;
	*buf = xrealloc(*buf, need);
	char *o = *buf + *len;
	*o++ = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			*o++ = '\\';
			*o++ = (char)*p;
		} else if (*p < 0x20) {
			o += sprintf(o, "\\u%04x", *p);
		} else {
			*o++ = (char)*p;
		}
	}
	*o++ = '"';
	*o = '\0';
	*len = (size_t)(o - *buf);
}
