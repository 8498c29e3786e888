/* Image references: the grammar of distribution/reference, normalised as
 * Docker and LinuxKit normalise them.
 *
 *   reference        := name [ ":" tag ] [ "@" digest ]
 *   name             := [ domain "/" ] path-component [ "/" path-component ]*
 *   domain           := host [ ":" port ]
 *   host             := domain-component [ "." domain-component ]* | "[" ipv6 "]"
 *   domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
 *   path-component   := [a-z0-9]+ ( separator [a-z0-9]+ )*
 *   separator        := "." | "_" | "__" | "-"+
 *   tag              := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *   digest           := "sha256:" [0-9a-f]{64}
 *
 * The first component of a name is a domain when the name has more than one
 * component and the first contains "." or ":", is "localhost", or has an
 * uppercase letter (which a path component never has). */
#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"
#include "sha256.h"
#include "util.h"

#define REF_NAME_MAX 255
#define REF_TAG_MAX  128
/* Longer input cannot be a valid reference (name + tag + digest). */
#define REF_INPUT_MAX (REF_NAME_MAX + 1 + REF_TAG_MAX + 1 + DIGEST_STRLEN)

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_word(char c)
{
	return is_alnum(c) || c == '_';
}

static bool is_hex_lower(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* A printable rendering of S for error messages: control and non-ASCII
 * bytes are escaped, and very long input is cut. Caller frees. */
static char *ref_quote(const char *s)
{
	size_t n = strlen(s);
	bool cut = n > 300;
	if (cut)
		n = 300;
	char *out = xmalloc(n * 4 + 8);
	char *p = out;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f)
			p += sprintf(p, "\\x%02x", c);
		else
			*p++ = (char)c;
	}
	if (cut)
		p = stpcpy(p, "...");
	*p = '\0';
	return out;
}

__attribute__((format(printf, 3, 4))) static int ref_fail(struct kiln_error **err, const char *s,
							  const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	cleanup_free char *q = ref_quote(s);
	return kiln_error_make(err, 0, "invalid reference `%s`: %s", q, msg);
}

/* Explains what is wrong with one path component C (length N), or returns
 * NULL when it is valid. */
static const char *path_component_problem(const char *c, size_t n, char *buf, size_t bufsz)
{
	if (n == 0)
		return "empty path component (`//`, or `/` at the start or end of the name)";
	for (size_t i = 0; i < n; i++) {
		if (c[i] >= 'A' && c[i] <= 'Z')
			return "repository name must be lowercase";
	}
	for (size_t i = 0; i < n; i++) {
		char ch = c[i];
		if (!is_lower_alnum(ch) && ch != '.' && ch != '_' && ch != '-') {
			unsigned char u = (unsigned char)ch;
			if (u < 0x20 || u >= 0x7f)
				snprintf(buf, bufsz, "invalid byte 0x%02x in repository name", u);
			else
				snprintf(buf, bufsz, "invalid character `%c` in repository name",
					 ch);
			return buf;
		}
	}
	if (!is_lower_alnum(c[0]))
		return "a path component must start with a lowercase letter or digit";
	if (!is_lower_alnum(c[n - 1]))
		return "a path component must end with a lowercase letter or digit";
	size_t i = 0;
	while (i < n) {
		if (is_lower_alnum(c[i])) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < n && !is_lower_alnum(c[j]))
			j++;
		size_t len = j - i;
		bool valid = (len == 1 && (c[i] == '.' || c[i] == '_')) ||
			     (len == 2 && c[i] == '_' && c[i + 1] == '_');
		if (!valid) {
			valid = true;
			for (size_t k = i; k < j; k++)
				if (c[k] != '-')
					valid = false;
		}
		if (!valid) {
			snprintf(
			    buf, bufsz,
			    "invalid separator `%.*s` in repository name (use `.`, `_`, `__` or "
			    "dashes)",
			    (int)len, c + i);
			return buf;
		}
		i = j;
	}
	return NULL;
}

static const char *domain_problem(const char *d, size_t n, char *buf, size_t bufsz)
{
	size_t i = 0;
	if (n == 0)
		return "empty domain";
	if (d[0] == '[') {
		const char *close = memchr(d, ']', n);
		if (close == NULL)
			return "unterminated `[` in domain";
		size_t hl = (size_t)(close - d) - 1;
		if (hl == 0)
			return "empty IPv6 address in domain";
		for (size_t k = 1; k <= hl; k++)
			if (!isxdigit((unsigned char)d[k]) && d[k] != ':')
				return "invalid IPv6 address in domain";
		i = hl + 2;
	} else {
		size_t start = 0;
		for (;;) {
			size_t j = start;
			while (j < n && (is_alnum(d[j]) || d[j] == '-'))
				j++;
			if (j == start) {
				if (j < n && d[j] != '.' && d[j] != ':') {
					unsigned char u = (unsigned char)d[j];
					if (u < 0x20 || u >= 0x7f)
						snprintf(buf, bufsz,
							 "invalid byte 0x%02x in domain", u);
					else
						snprintf(buf, bufsz,
							 "invalid character `%c` in domain", d[j]);
					return buf;
				}
				return "empty domain component";
			}
			if (d[start] == '-' || d[j - 1] == '-')
				return "a domain component must not start or end with `-`";
			if (j < n && d[j] == '.') {
				start = j + 1;
				continue;
			}
			i = j;
			break;
		}
	}
	if (i == n)
		return NULL;
	if (d[i] != ':') {
		unsigned char u = (unsigned char)d[i];
		if (u < 0x20 || u >= 0x7f)
			snprintf(buf, bufsz, "invalid byte 0x%02x in domain", u);
		else
			snprintf(buf, bufsz, "invalid character `%c` in domain", d[i]);
		return buf;
	}
	i++;
	if (i == n)
		return "empty port number";
	for (size_t k = i; k < n; k++)
		if (d[k] < '0' || d[k] > '9')
			return "port must be a number";
	if (n - i > 5)
		return "port number too large";
	return NULL;
}

static const char *tag_problem(const char *t, char *buf, size_t bufsz)
{
	size_t n = strlen(t);
	if (n == 0)
		return "empty tag";
	if (n > REF_TAG_MAX) {
		snprintf(buf, bufsz, "tag longer than %d characters", REF_TAG_MAX);
		return buf;
	}
	if (!is_word(t[0]))
		return "a tag must start with a letter, digit or `_`";
	for (size_t i = 0; i < n; i++) {
		if (!is_word(t[i]) && t[i] != '.' && t[i] != '-') {
			unsigned char u = (unsigned char)t[i];
			if (u < 0x20 || u >= 0x7f)
				snprintf(buf, bufsz, "invalid byte 0x%02x in tag", u);
			else
				snprintf(buf, bufsz, "invalid character `%c` in tag", t[i]);
			return buf;
		}
	}
	return NULL;
}

static const char *digest_problem(const char *d)
{
	if (*d == '\0')
		return "empty digest after `@`";
	const char *colon = strchr(d, ':');
	if (colon == NULL)
		return "digest must be `sha256:` followed by 64 hex digits";
	if ((size_t)(colon - d) != 6 || strncmp(d, "sha256", 6) != 0)
		return "unsupported digest algorithm (only sha256)";
	const char *hex = colon + 1;
	size_t n = strlen(hex);
	for (size_t i = 0; i < n; i++) {
		if (hex[i] >= 'A' && hex[i] <= 'F')
			return "digest hex must be lowercase";
		if (!is_hex_lower(hex[i]))
			return "digest must be `sha256:` followed by 64 hex digits";
	}
	if (n != SHA256_HEXLEN)
		return "digest must be `sha256:` followed by 64 hex digits";
	return NULL;
}

int ref_parse(const char *s, struct image_ref *ref, struct kiln_error **err)
{
	char buf[160];
	const char *why;
	memset(ref, 0, sizeof *ref);
	if (s == NULL || *s == '\0')
		return kiln_error_make(err, 0, "invalid reference ``: empty reference");
	size_t len = strlen(s);
	if (len > REF_INPUT_MAX)
		return ref_fail(err, s, "reference longer than %d characters", REF_INPUT_MAX);
	if (len == SHA256_HEXLEN) {
		size_t k = 0;
		while (k < len && is_hex_lower(s[k]))
			k++;
		if (k == len)
			return ref_fail(err, s,
					"a 64-character hexadecimal string is an image ID, not a "
					"repository name (write `sha256:…` after `name@`)");
	}

	cleanup_free char *work = xstrdup(s);
	cleanup_free char *digest = NULL, *tag = NULL, *domain = NULL, *path = NULL;
	char *at = strchr(work, '@');
	if (at != NULL) {
		*at = '\0';
		if ((why = digest_problem(at + 1)) != NULL)
			return ref_fail(err, s, "%s", why);
		digest = xstrdup(at + 1);
	}
	char *last_slash = strrchr(work, '/');
	char *colon = strrchr(last_slash ? last_slash : work, ':');
	if (colon != NULL) {
		*colon = '\0';
		if ((why = tag_problem(colon + 1, buf, sizeof buf)) != NULL)
			return ref_fail(err, s, "%s", why);
		tag = xstrdup(colon + 1);
	}
	if (*work == '\0')
		return ref_fail(err, s, "missing repository name");

	char *rest = work;
	char *slash = strchr(work, '/');
	if (slash != NULL) {
		size_t fl = (size_t)(slash - work);
		bool is_domain = memchr(work, '.', fl) || memchr(work, ':', fl) ||
				 (fl == 9 && strncmp(work, "localhost", 9) == 0);
		for (size_t k = 0; k < fl && !is_domain; k++)
			if (work[k] >= 'A' && work[k] <= 'Z')
				is_domain = true;
		if (is_domain) {
			if ((why = domain_problem(work, fl, buf, sizeof buf)) != NULL)
				return ref_fail(err, s, "%s", why);
			domain = xstrndup(work, fl);
			rest = slash + 1;
		}
	}
	if (*rest == '\0')
		return ref_fail(err, s, "missing repository path after the domain");
	for (const char *c = rest;;) {
		const char *e = strchr(c, '/');
		size_t n = e ? (size_t)(e - c) : strlen(c);
		if ((why = path_component_problem(c, n, buf, sizeof buf)) != NULL)
			return ref_fail(err, s, "%s", why);
		if (e == NULL)
			break;
		c = e + 1;
	}

	if (domain == NULL || strcmp(domain, "index.docker.io") == 0) {
		free(domain);
		domain = xstrdup("docker.io");
	}
	if (strcmp(domain, "docker.io") == 0 && strchr(rest, '/') == NULL)
		path = xasprintf("library/%s", rest);
	else
		path = xstrdup(rest);
	/* The limit applies to the normal form, so that every accepted name
	 * still parses once "docker.io/library/" is added. */
	if (strlen(domain) + 1 + strlen(path) > REF_NAME_MAX)
		return ref_fail(err, s,
				"repository name longer than %d characters (%zu once normalised)",
				REF_NAME_MAX, strlen(domain) + 1 + strlen(path));
	if (tag == NULL && digest == NULL)
		tag = xstrdup("latest");

	ref->domain = steal_pointer(&domain);
	ref->path = steal_pointer(&path);
	ref->tag = steal_pointer(&tag);
	ref->digest = steal_pointer(&digest);
	return 0;
}

char *ref_string(const struct image_ref *ref)
{
	return xasprintf("%s/%s%s%s%s%s", ref->domain, ref->path, ref->tag ? ":" : "",
			 ref->tag ? ref->tag : "", ref->digest ? "@" : "",
			 ref->digest ? ref->digest : "");
}

char *ref_repository(const struct image_ref *ref)
{
	return xasprintf("%s/%s", ref->domain, ref->path);
}

const char *ref_registry_host(const struct image_ref *ref)
{
	if (strcmp(ref->domain, "docker.io") == 0)
		return "registry-1.docker.io";
	return ref->domain;
}

void ref_release(struct image_ref *ref)
{
	if (ref == NULL)
		return;
	free(ref->domain);
	free(ref->path);
	free(ref->tag);
	free(ref->digest);
	memset(ref, 0, sizeof *ref);
}
