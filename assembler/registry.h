/* The OCI distribution (registry API v2) client on libcurl: pull images into
 * the store and push them out of it.
 *
 * Pull fetches the root index or manifest of a reference, picks the manifest
 * of the wanted platform, and streams its config and layers straight into
 * the store's blob writers, each sha256-checked before it gets its final
 * name; only then is the root tagged in index.json under the normalised
 * reference, as LinuxKit's cache does (only the root plus the chosen
 * platform's manifest, config and layers are fetched).  Layers are kept as
 * the registry serves them (gzip, zstd or uncompressed).
 *
 * Auth: the WWW-Authenticate challenge of GET /v2/ (Bearer token flow with
 * realm/service/scope, anonymous or with credentials, tokens cached per
 * scope; or Basic).  Credentials come from $REGISTRY_AUTH_FILE, then
 * $DOCKER_CONFIG/config.json or ~/.docker/config.json ("auths": base64
 * "auth", or "username"/"password").  They are never printed.
 *
 * Transport: HTTPS with certificate checks; plain HTTP only for loopback
 * hosts (127.0.0.0/8, ::1, localhost) and --insecure-registry hosts, after
 * HTTPS failed to handshake; insecure hosts also get unverified TLS.
 * Blobs download in parallel (curl multi), transfers are retried with
 * exponential backoff and jitter on connection errors, 5xx and 429
 * (honouring Retry-After), and a broken transfer resumes with Range. */
#ifndef KILN_REGISTRY_H
#define KILN_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "sha256.h"
#include "store.h"

enum registry_progress {
	REGISTRY_PROGRESS_AUTO = 0, /* bars per layer on a TTY, one line per image otherwise */
	REGISTRY_PROGRESS_LINES,    /* one line per image */
	REGISTRY_PROGRESS_NONE,	    /* nothing (also when kiln_log_level is LOG_QUIET) */
};

struct registry_mirror {
	char *domain; /* "docker.io" */
	char *url;    /* "http://127.0.0.1:5000" or "https://mirror.example/prefix" */
};

/* Everything the client can be told.  Initialise with registry_options_init,
 * fill, release with registry_options_release (which frees every string and
 * array: set them with xstrdup or the add functions). */
struct registry_options {
	char *os;	 /* platform wanted from an index; NULL = "linux" */
	char *arch;	 /* "amd64", "arm64", "arm/v7", "arm64/v8"; NULL = the host's */
	char *cert_file; /* CA bundle (PEM) trusted besides the system's CAs */
	char **insecure; /* HOST[:PORT] names allowed plain HTTP / unverified TLS */
	size_t ninsecure;
	struct registry_mirror *mirrors;
	size_t nmirrors;
	char *auth_file;     /* overrides $REGISTRY_AUTH_FILE and the docker config */
	int jobs;	     /* parallel blob downloads; default 4 */
	int max_attempts;    /* per request or blob; default 6 */
	long retry_base_ms;  /* first backoff; default 500 ($KILN_RETRY_BASE_MS) */
	long stall_seconds;  /* a body with no bytes for this long is retried; default 30
				($KILN_STALL_TIMEOUT) */
	uint64_t chunk_size; /* push: blobs larger than this go in PATCH chunks of this size;
				0 = always one monolithic PUT (default 0) */
	bool no_mount;	     /* push: never try a cross-repository mount */
	enum registry_progress progress;
};

void registry_options_init(struct registry_options *o);
void registry_options_release(struct registry_options *o);
/* Adds a mirror from "DOMAIN=URL" (LinuxKit's --mirror syntax); a URL
 * without a scheme gets https:// (http:// for a loopback host). */
int registry_options_add_mirror(struct registry_options *o, const char *spec,
				struct kiln_error **err);
void registry_options_add_insecure(struct registry_options *o, const char *host);

/* A client: connection pool, per-host auth state and token cache.  It
 * borrows O, which must outlive it. */
struct registry_client;
struct registry_client *registry_client_new(const struct registry_options *o,
					    struct kiln_error **err);
void registry_client_free(struct registry_client *c);
#define cleanup_registry_client __attribute__((cleanup(registry_client_freep)))
void registry_client_freep(struct registry_client **c);

/* Pulls REF (any reference string; it is normalised) into S and tags its
 * root under the normalised reference (ref_string).  Blobs already in the
 * store are not fetched again.  ROOT_DIGEST_OUT (may be NULL) gets the digest
 * of the root index or manifest. */
int registry_pull(struct registry_client *c, struct store *s, const char *ref,
		  char root_digest_out[DIGEST_STRLEN], struct kiln_error **err);

/* Pulls N references at once: the manifests one image after another, then
 * the blobs of all of them together (JOBS at a time), then each root is
 * tagged.  An image that fails does not stop the others: ON_ERROR (may be
 * NULL) gets each failure (it may take *ERR, else it is released).
 * DIGESTS_OUT (may be NULL) has N slots; failed ones are left alone.
 * Returns the number of images that failed. */
int registry_pull_many(struct registry_client *c, struct store *s, char *const *refs, size_t n,
		       char (*digests_out)[DIGEST_STRLEN],
		       void (*on_error)(const char *ref, struct kiln_error **err, void *arg),
		       void *arg);

/* The digest a registry currently gives for REF (HEAD on its manifest,
 * falling back to GET). */
int registry_head_manifest(struct registry_client *c, const char *ref,
			   char digest_out[DIGEST_STRLEN], struct kiln_error **err);

/* Pushes the image the store names SRC_NAME (a reference as tagged in
 * index.json; normalised first) to DEST_REF (NULL = SRC_NAME): every blob
 * (HEAD first; a cross-repository mount when the source is another
 * repository of the same registry; monolithic PUT or PATCH chunks), every
 * manifest of an index present in the store, then the root, all by their
 * exact bytes so digests are preserved.  DIGEST_OUT (may be NULL) gets the
 * root digest. */
int registry_client_push(struct registry_client *c, struct store *s, const char *src_name,
			 const char *dest_ref, char digest_out[DIGEST_STRLEN],
			 struct kiln_error **err);
/* The same with a client made for the call (for `kiln pkg build --push`). */
int registry_push(struct store *s, const char *src_name, const char *dest_ref,
		  const struct registry_options *o, struct kiln_error **err);

/* For builds: the root digest of REF, from the store first and the registry
 * second.  When FORCE_PULL (`--pull`), a tag is checked against the registry
 * and re-pulled when it moved.  An image found in the store counts only
 * when the manifest, config and layers of the wanted platform are all
 * present.  Tags the store under the normalised reference. */
int image_resolve(struct store *s, const char *ref, const struct registry_options *o,
		  bool force_pull, char digest_out[DIGEST_STRLEN], struct kiln_error **err);

/* The same through an existing client (NULL: made on demand), so a build
 * resolving many images shares connections and tokens. */
int image_resolve_with(struct registry_client *c, struct store *s, const char *ref,
		       const struct registry_options *o, bool force_pull,
		       char digest_out[DIGEST_STRLEN], struct kiln_error **err);

/* The architecture of this machine in OCI terms ("amd64", "arm64", …). */
const char *registry_host_arch(void);

#endif
