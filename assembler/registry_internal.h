/* Pieces of the registry client shared between its files and its unit tests:
 * credentials, auth challenges, base64, platform matching, small HTTP
 * header parsers.  Not for use outside assembler/registry*.c. */
#ifndef KILN_REGISTRY_INTERNAL_H
#define KILN_REGISTRY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "error.h"

struct registry_credentials {
	char *username; /* heap; NULL when none */
	char *password; /* heap; never printed */
};
void registry_credentials_release(struct registry_credentials *c);

/* Finds credentials for DOMAIN (a reference domain such as "docker.io" or
 * "127.0.0.1:5000") in AUTH_FILE when non-NULL, else in $REGISTRY_AUTH_FILE,
 * then $DOCKER_CONFIG/config.json or ~/.docker/config.json.  Keys of
 * "auths" match with or without a scheme and path ("https://host/v1/");
 * "docker.io" also matches "index.docker.io" and "registry-1.docker.io".
 * Returns 1 and fills OUT (caller releases), 0 when none, -1 on a broken
 * file. */
int registry_credentials_lookup(const char *auth_file, const char *domain,
				struct registry_credentials *out, struct kiln_error **err);

/* Looks DOMAIN up in one config file's JSON text. Same returns. */
int registry_credentials_from_json(const char *json, size_t len, const char *what,
				   const char *domain, struct registry_credentials *out,
				   struct kiln_error **err);

enum auth_scheme {
	AUTH_NONE = 0,
	AUTH_BASIC,
	AUTH_BEARER,
};

struct auth_challenge {
	enum auth_scheme scheme;
	char *realm, *service, *scope, *error; /* heap or NULL */
};
/* Parses a WWW-Authenticate value (Basic or Bearer with quoted or token
 * parameters).  Returns 0, or -1 for a scheme kiln does not speak. */
int auth_challenge_parse(const char *header, struct auth_challenge *c);
void auth_challenge_release(struct auth_challenge *c);

/* Standard base64 with padding.  Caller frees. */
char *base64_encode(const void *data, size_t len);
/* Decodes standard base64 (padding optional); NULL when invalid.  The
 * result is NUL-terminated; caller frees. */
char *base64_decode(const char *s, size_t *len);

/* "Basic base64(user:password)".  Caller frees. */
char *auth_basic_header(const struct registry_credentials *c);

/* Splits "amd64", "arm/v7", "linux/arm64/v8" into os/arch/variant (heap;
 * os and variant may come back NULL). */
void platform_split(const char *spec, char **os, char **arch, char **variant);
/* Does the descriptor platform OS/ARCH/VARIANT satisfy the wanted one?
 * A wanted variant NULL accepts any; arm64 "v8" equals no variant. */
bool platform_match(const char *want_os, const char *want_arch, const char *want_variant,
		    const char *os, const char *arch, const char *variant);

/* Seconds to wait for a Retry-After value (delta-seconds or an HTTP date)
 * relative to NOW; -1 when absent or unparsable. */
long retry_after_parse(const char *value, time_t now);

/* True for localhost, 127.0.0.0/8, ::1 (with or without a :port or [..]). */
bool host_is_loopback(const char *hostport);

/* Parses "bytes START-END/TOTAL"; -1 when malformed. */
int content_range_parse(const char *value, uint64_t *start, uint64_t *end);

#endif

/* ---- The HTTP layer (registry.c), used by registry_push.c ---- */
#include <curl/curl.h>

#include "registry.h"
#include "strbuf.h"

struct reg_host;

struct http_req {
	const char *method;	  /* GET HEAD PUT POST PATCH */
	const char *url;	  /* absolute */
	const char *accept;	  /* or NULL */
	const char *content_type; /* or NULL */
	const char *scope;	  /* auth scope ("repository:x:pull"); NULL = no auth */
	const void *body;	  /* request body from memory, or */
	int fd;			  /* from this file (when >= 0), at fd_off */
	uint64_t fd_off;
	uint64_t body_len;
	const char *content_range; /* for PATCH chunks */
	size_t max_body;	   /* response body cap; 0 = 64 KiB */
	bool retry;		   /* idempotent: retried on transport errors, 5xx, 429 */
	bool follow;		   /* follow redirects */
};

struct http_resp {
	long status;
	struct strbuf body;
	bool too_big;
	CURLcode code;
	char errbuf[CURL_ERROR_SIZE];
	char *location, *digest, *content_type, *www_auth, *retry_after, *content_range;
};

void http_resp_release(struct http_resp *r);

/* The host serving reference domain DOMAIN (after mirrors), pinged on first
 * use (scheme chosen, auth challenge read).  Owned by the client. */
struct reg_host *client_host(struct registry_client *c, const char *domain,
			     struct kiln_error **err);
/* "https://host:port" (or a mirror URL), no trailing slash.  Borrowed. */
const char *host_base(const struct reg_host *h);
const char *host_domain(const struct reg_host *h);
/* Performs RQ against H with auth for RQ->scope, retrying as RQ says and
 * re-authenticating once on 401.  Returns -1 only when no HTTP response
 * came (or auth failed); the caller judges RS->status. */
int host_request(struct registry_client *c, struct reg_host *h, const struct http_req *rq,
		 struct http_resp *rs, struct kiln_error **err);
/* "HTTP 404 (MANIFEST_UNKNOWN: manifest unknown)". Caller frees. */
char *http_error_text(const struct http_resp *rs);
/* Resolves a Location header against BASE_URL. Caller frees. */
char *url_resolve(const char *base_url, const char *location);
const struct registry_options *client_options(const struct registry_client *c);
/* Progress lines are allowed (not -q, not REGISTRY_PROGRESS_NONE). */
bool client_chatty(const struct registry_client *c);
