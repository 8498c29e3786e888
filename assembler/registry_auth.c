/* Registry credentials (docker/podman auth files), WWW-Authenticate
 * challenges, base64, platform matching and small header parsers. */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "oci.h"
#include "registry_internal.h"
#include "util.h"

#define AUTH_FILE_MAX ((size_t)4 << 20)

void registry_credentials_release(struct registry_credentials *c)
{
	if (c == NULL)
		return;
	free(c->username);
	if (c->password) {
		/* Do not leave the secret in freed heap. */
		volatile char *p = c->password;
		while (*p)
			*p++ = 0;
		free(c->password);
	}
	c->username = c->password = NULL;
}

char *base64_encode(const void *data, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

char *base64_decode(const char *s, size_t *len)
{
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	cleanup_free char *padded = xmalloc(n + 4);
	memcpy(padded, s, n);
	size_t pad = 0;
	while ((n + pad) % 4 != 0)
		padded[n + pad++] = '=';
	if (pad == 3)
		return NULL;
	n += pad;
	padded[n] = 0;
	size_t eq = 0;
	if (n >= 1 && padded[n - 1] == '=')
		eq++;
	if (n >= 2 && padded[n - 2] == '=')
		eq++;
	char *out = xmalloc(n / 4 * 3 + 1);
	int r = EVP_DecodeBlock((unsigned char *)out, (unsigned char *)padded, (int)n);
	if (r < 0 || (size_t)r < eq) {
		free(out);
		return NULL;
	}
	size_t m = (size_t)r - eq;
	out[m] = 0;
	if (len)
		*len = m;
	return out;
}

char *auth_basic_header(const struct registry_credentials *c)
{
	cleanup_free char *pair =
	    xasprintf("%s:%s", c->username ? c->username : "", c->password ? c->password : "");
	cleanup_free char *b64 = base64_encode(pair, strlen(pair));
	size_t n = strlen(pair);
	memset(pair, 0, n);
	char *h = xasprintf("Basic %s", b64);
	memset(b64, 0, strlen(b64));
	return h;
}

/* "https://host:5000/v1/" -> "host:5000". Caller frees. */
static char *auth_key_host(const char *key)
{
	const char *p = strstr(key, "://");
	p = p ? p + 3 : key;
	size_t n = strcspn(p, "/");
	return xstrndup(p, n);
}

static bool auth_key_matches(const char *key, const char *domain)
{
	cleanup_free char *h = auth_key_host(key);
	if (strcasecmp(h, domain) == 0)
		return true;
	if (strcmp(domain, "docker.io") == 0)
		return strcasecmp(h, "index.docker.io") == 0 ||
		       strcasecmp(h, "registry-1.docker.io") == 0;
	return false;
}

int registry_credentials_from_json(const char *json, size_t len, const char *what,
				   const char *domain, struct registry_credentials *out,
				   struct kiln_error **err)
{
	json_error_t jerr;
	cleanup_json json_t *root = json_loadb(json, len, 0, &jerr);
	if (root == NULL)
		return kiln_error_make(err, 0, "%s: line %d: %s", what, jerr.line, jerr.text);
	if (json_object_get(root, "credsStore") || json_object_get(root, "credHelpers"))
		log_verbose("%s: credential helpers (credsStore, credHelpers) are not used; kiln "
			    "reads \"auths\" only",
			    what);
	json_t *auths = json_object_get(root, "auths");
	if (auths == NULL || !json_is_object(auths))
		return 0;
	/* An exact key first, then the looser forms. */
	json_t *entry = json_object_get(auths, domain);
	if (entry == NULL) {
		const char *key;
		json_t *v;
		json_object_foreach(auths, key, v)
		{
			if (auth_key_matches(key, domain)) {
				entry = v;
				break;
			}
		}
	}
	if (entry == NULL || !json_is_object(entry))
		return 0;
	const char *auth = json_string_value(json_object_get(entry, "auth"));
	const char *user = json_string_value(json_object_get(entry, "username"));
	const char *pass = json_string_value(json_object_get(entry, "password"));
	if (auth && *auth) {
		size_t n;
		cleanup_free char *dec = base64_decode(auth, &n);
		if (dec == NULL || memchr(dec, 0, n) != NULL)
			return kiln_error_make(err, 0, "%s: auths \"%s\": auth is not valid base64",
					       what, domain);
		char *colon = strchr(dec, ':');
		if (colon == NULL) {
			memset(dec, 0, n);
			return kiln_error_make(
			    err, 0, "%s: auths \"%s\": auth is not base64 of user:password", what,
			    domain);
		}
		*colon = 0;
		out->username = xstrdup(dec);
		out->password = xstrdup(colon + 1);
		memset(dec, 0, n);
		return 1;
	}
	if (user && pass) {
		out->username = xstrdup(user);
		out->password = xstrdup(pass);
		return 1;
	}
	return 0;
}

static int credentials_from_file(const char *path, const char *domain,
				 struct registry_credentials *out, bool must_exist,
				 struct kiln_error **err)
{
	size_t len;
	cleanup_error struct kiln_error *rerr = NULL;
	cleanup_free char *data = read_file(path, AUTH_FILE_MAX, &len, &rerr);
	if (data == NULL) {
		if (!must_exist && rerr->status == ENOENT)
			return 0;
		int st = rerr->status;
		return kiln_error_make(err, 0, "credentials %s (%s)", rerr->msg,
				       strerror(st ? st : EIO));
	}
	int r = registry_credentials_from_json(data, len, path, domain, out, err);
	memset(data, 0, len);
	return r;
}

int registry_credentials_lookup(const char *auth_file, const char *domain,
				struct registry_credentials *out, struct kiln_error **err)
{
	memset(out, 0, sizeof *out);
	if (auth_file)
		return credentials_from_file(auth_file, domain, out, true, err);
	const char *env = getenv("REGISTRY_AUTH_FILE");
	if (env && *env) {
		int r = credentials_from_file(env, domain, out, false, err);
		if (r != 0)
			return r;
	}
	cleanup_free char *path = NULL;
	const char *dc = getenv("DOCKER_CONFIG");
	if (dc && *dc) {
		path = path_join(dc, "config.json");
	} else {
		const char *home = getenv("HOME");
		if (home == NULL || *home == 0)
			return 0;
		path = xasprintf("%s/.docker/config.json", home);
	}
	return credentials_from_file(path, domain, out, false, err);
}

/* ---- WWW-Authenticate ---- */

void auth_challenge_release(struct auth_challenge *c)
{
	free(c->realm);
	free(c->service);
	free(c->scope);
	free(c->error);
	memset(c, 0, sizeof *c);
}

/* Reads one auth-param value at *P (quoted-string or token).  Caller frees. */
static char *challenge_value(const char **p)
{
	const char *s = *p;
	struct {
		char *buf;
		size_t n;
	} v = {xmalloc(strlen(s) + 1), 0};
	if (*s == '"') {
		s++;
		while (*s && *s != '"') {
			if (*s == '\\' && s[1])
				s++;
			v.buf[v.n++] = *s++;
		}
		if (*s == '"')
			s++;
	} else {
		while (*s && *s != ',' && !isspace((unsigned char)*s))
			v.buf[v.n++] = *s++;
	}
	v.buf[v.n] = 0;
	*p = s;
	return v.buf;
}

int auth_challenge_parse(const char *header, struct auth_challenge *c)
{
	memset(c, 0, sizeof *c);
	const char *p = header;
	while (isspace((unsigned char)*p))
		p++;
	size_t n = strcspn(p, " \t");
	if (n == 5 && strncasecmp(p, "Basic", 5) == 0)
		c->scheme = AUTH_BASIC;
	else if (n == 6 && strncasecmp(p, "Bearer", 6) == 0)
		c->scheme = AUTH_BEARER;
	else
		return -1;
	p += n;
	for (;;) {
		while (isspace((unsigned char)*p) || *p == ',')
			p++;
		if (*p == 0)
			break;
		const char *k = p;
		while (*p && *p != '=' && *p != ',' && !isspace((unsigned char)*p))
			p++;
		size_t klen = (size_t)(p - k);
		while (isspace((unsigned char)*p))
			p++;
		if (*p != '=')
			continue;
		p++;
		while (isspace((unsigned char)*p))
			p++;
		char *v = challenge_value(&p);
		char **slot = NULL;
		if (klen == 5 && strncasecmp(k, "realm", 5) == 0)
			slot = &c->realm;
		else if (klen == 7 && strncasecmp(k, "service", 7) == 0)
			slot = &c->service;
		else if (klen == 5 && strncasecmp(k, "scope", 5) == 0)
			slot = &c->scope;
		else if (klen == 5 && strncasecmp(k, "error", 5) == 0)
			slot = &c->error;
		if (slot) {
			free(*slot);
			*slot = v;
		} else {
			free(v);
		}
	}
	return 0;
}

/* ---- platforms ---- */

void platform_split(const char *spec, char **os, char **arch, char **variant)
{
	*os = *arch = *variant = NULL;
	char *parts[3] = {NULL, NULL, NULL};
	int n = 0;
	const char *p = spec;
	while (n < 3) {
		size_t len = strcspn(p, "/");
		parts[n++] = xstrndup(p, len);
		if (p[len] == 0)
			break;
		p += len + 1;
	}
	bool has_os =
	    n == 3 ||
	    (n >= 2 && (strcmp(parts[0], "linux") == 0 || strcmp(parts[0], "windows") == 0 ||
			strcmp(parts[0], "freebsd") == 0 || strcmp(parts[0], "darwin") == 0));
	int i = 0;
	if (has_os)
		*os = parts[i++];
	*arch = parts[i++];
	if (i < n)
		*variant = parts[i++];
	for (; i < n; i++)
		free(parts[i]);
	/* Normalise the names Go, uname and Debian use for the same thing. */
	if (*arch && (strcmp(*arch, "x86_64") == 0 || strcmp(*arch, "x86-64") == 0)) {
		free(*arch);
		*arch = xstrdup("amd64");
	} else if (*arch && strcmp(*arch, "aarch64") == 0) {
		free(*arch);
		*arch = xstrdup("arm64");
	}
}

bool platform_match(const char *want_os, const char *want_arch, const char *want_variant,
		    const char *os, const char *arch, const char *variant)
{
	if (os == NULL || arch == NULL)
		return false;
	if (strcmp(os, want_os ? want_os : "linux") != 0)
		return false;
	if (strcmp(arch, want_arch) != 0)
		return false;
	if (want_variant == NULL)
		return true;
	const char *v = variant ? variant : "";
	if (strcmp(want_arch, "arm64") == 0 && strcmp(want_variant, "v8") == 0)
		return *v == 0 || strcmp(v, "v8") == 0;
	return strcmp(v, want_variant) == 0;
}

/* ---- headers ---- */

long retry_after_parse(const char *value, time_t now)
{
	if (value == NULL)
		return -1;
	while (isspace((unsigned char)*value))
		value++;
	if (*value == 0)
		return -1;
	if (isdigit((unsigned char)*value)) {
		char *end;
		errno = 0;
		long v = strtol(value, &end, 10);
		while (isspace((unsigned char)*end))
			end++;
		if (errno || *end || v < 0)
			return -1;
		return v;
	}
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *end = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (end == NULL)
		return -1;
	time_t t = timegm(&tm);
	return t > now ? (long)(t - now) : 0;
}

bool host_is_loopback(const char *hostport)
{
	char host[256];
	const char *p = hostport;
	size_t n;
	if (*p == '[') {
		p++;
		n = strcspn(p, "]");
	} else {
		n = strcspn(p, ":");
		/* A bare IPv6 address has several colons. */
		const char *c = strchr(p, ':');
		if (c && strchr(c + 1, ':'))
			n = strlen(p);
	}
	if (n == 0 || n >= sizeof host)
		return false;
	memcpy(host, p, n);
	host[n] = 0;
	if (strcasecmp(host, "localhost") == 0 || strcmp(host, "::1") == 0)
		return true;
	if (strncmp(host, "127.", 4) != 0)
		return false;
	int parts = 0;
	for (const char *q = host; *q;) {
		if (!isdigit((unsigned char)*q))
			return false;
		long v = strtol(q, (char **)&q, 10);
		if (v > 255)
			return false;
		parts++;
		if (*q == '.')
			q++;
		else if (*q)
			return false;
	}
	return parts == 4;
}

int content_range_parse(const char *value, uint64_t *start, uint64_t *end)
{
	if (value == NULL)
		return -1;
	while (isspace((unsigned char)*value))
		value++;
	if (strncasecmp(value, "bytes", 5) != 0)
		return -1;
	value += 5;
	while (isspace((unsigned char)*value))
		value++;
	char *e;
	errno = 0;
	unsigned long long a = strtoull(value, &e, 10);
	if (errno || e == value || *e != '-')
		return -1;
	const char *b = e + 1;
	unsigned long long z = strtoull(b, &e, 10);
	if (errno || e == b || z < a)
		return -1;
	*start = a;
	*end = z;
	return 0;
}
