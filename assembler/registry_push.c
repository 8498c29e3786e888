/* Pushing an image from the store to a registry: blobs (HEAD first, then a
 * cross-repository mount, a monolithic PUT or PATCH chunks), then every
 * manifest by its exact bytes, the root last. */
#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "oci.h"
#include "ref.h"
#include "registry.h"
#include "registry_internal.h"
#include "util.h"

struct push {
	struct registry_client *c;
	struct reg_host *h;
	struct store *s;
	const char *path;      /* destination repository */
	const char *from_path; /* a repository of the same registry to mount from, or NULL */
	char *scope;
	size_t uploaded, mounted, present;
	uint64_t bytes;
	char (*done)[DIGEST_STRLEN]; /* blobs handled in this push */
	size_t ndone;
};

static bool push_seen(struct push *p, const char *digest)
{
	for (size_t i = 0; i < p->ndone; i++)
		if (strcmp(p->done[i], digest) == 0)
			return true;
	p->done = xrealloc(p->done, (p->ndone + 1) * sizeof *p->done);
	snprintf(p->done[p->ndone++], DIGEST_STRLEN, "%s", digest);
	return false;
}

/* Appends "digest=…" to an upload URL (which may carry a query already). */
static char *url_with_param(const char *url, const char *param)
{
	return xasprintf("%s%c%s", url, strchr(url, '?') ? '&' : '?', param);
}

/* A failed upload step: 5xx, 429 and transport errors are worth another go. */
static int step_fail(struct http_resp *rs, const char *what, bool *retryable,
		     struct kiln_error **err)
{
	cleanup_free char *why = http_error_text(rs);
	*retryable = rs->status >= 500 || rs->status == 429 || rs->status == 408;
	return kiln_error_make(err, 0, "%s: %s", what, why);
}

/* One try at uploading blob DIGEST (SIZE bytes in FD). */
static int blob_upload_once(struct push *p, const char *digest, int fd, uint64_t size,
			    bool *retryable, struct kiln_error **err)
{
	const struct registry_options *o = client_options(p->c);
	struct http_resp rs = {0};
	cleanup_free char *location = NULL;
	cleanup_free char *dparam = NULL;
	cleanup_free char *put = NULL;
	int r = -1;
	*retryable = false;
	/* Start an upload session, or mount the blob from the source repository. */
	cleanup_free char *post = NULL;
	if (p->from_path && !o->no_mount)
		post = xasprintf("%s/v2/%s/blobs/uploads/?mount=%s&from=%s", host_base(p->h),
				 p->path, digest, p->from_path);
	else
		post = xasprintf("%s/v2/%s/blobs/uploads/", host_base(p->h), p->path);
	struct http_req rq = {.method = "POST", .url = post, .scope = p->scope, .fd = -1};
	if (host_request(p->c, p->h, &rq, &rs, err) < 0) {
		*retryable = true;
		goto out;
	}
	if (rs.status == 201 && p->from_path) {
		p->mounted++;
		log_verbose("blob %s: mounted from %s", digest, p->from_path);
		r = 0;
		goto out;
	}
	if (rs.status != 202 || rs.location == NULL) {
		step_fail(&rs, "start upload", retryable, err);
		goto out;
	}
	location = url_resolve(post, rs.location);
	uint64_t off = 0;
	if (o->chunk_size > 0 && size > o->chunk_size) {
		while (off < size) {
			uint64_t n = size - off < o->chunk_size ? size - off : o->chunk_size;
			char range[64];
			snprintf(range, sizeof range, "%llu-%llu", (unsigned long long)off,
				 (unsigned long long)(off + n - 1));
			struct http_req pr = {.method = "PATCH",
					      .url = location,
					      .content_type = "application/octet-stream",
					      .content_range = range,
					      .scope = p->scope,
					      .fd = fd,
					      .fd_off = off,
					      .body_len = n};
			if (host_request(p->c, p->h, &pr, &rs, err) < 0) {
				*retryable = true;
				goto out;
			}
			if (rs.status != 202 || rs.location == NULL) {
				step_fail(&rs, "upload chunk", retryable, err);
				goto out;
			}
			char *next = url_resolve(location, rs.location);
			free(location);
			location = next;
			off += n;
		}
	}
	dparam = xasprintf("digest=%s", digest);
	put = url_with_param(location, dparam);
	struct http_req pu = {.method = "PUT",
			      .url = put,
			      .content_type = "application/octet-stream",
			      .scope = p->scope,
			      .fd = fd,
			      .fd_off = off,
			      .body_len = size - off};
	if (host_request(p->c, p->h, &pu, &rs, err) < 0) {
		*retryable = true;
		goto out;
	}
	if (rs.status != 201) {
		step_fail(&rs, "finish upload", retryable, err);
		goto out;
	}
	if (rs.digest && strcmp(rs.digest, digest) != 0) {
		kiln_error_make(err, 0, "the registry stored it as %s", rs.digest);
		goto out;
	}
	p->uploaded++;
	p->bytes += size;
	r = 0;
out:
	http_resp_release(&rs);
	return r;
}

static int push_blob(struct push *p, const char *digest, struct kiln_error **err)
{
	if (push_seen(p, digest))
		return 0;
	cleanup_free char *url = xasprintf("%s/v2/%s/blobs/%s", host_base(p->h), p->path, digest);
	struct http_req rq = {.method = "HEAD",
			      .url = url,
			      .scope = p->scope,
			      .fd = -1,
			      .retry = true,
			      .follow = true};
	struct http_resp rs = {0};
	if (host_request(p->c, p->h, &rq, &rs, err) < 0) {
		http_resp_release(&rs);
		return kiln_error_wrap(err, "blob %s", digest);
	}
	long st = rs.status;
	http_resp_release(&rs);
	if (st == 200) {
		p->present++;
		log_debug("blob %s: already there", digest);
		return 0;
	}
	cleanup_close int fd = store_blob_open(p->s, digest, err);
	if (fd < 0)
		return kiln_error_wrap(err, "blob %s", digest);
	struct stat sb;
	if (fstat(fd, &sb) < 0)
		return kiln_error_make(err, errno, "blob %s", digest);
	const struct registry_options *o = client_options(p->c);
	for (int attempt = 1;; attempt++) {
		bool retryable = false;
		if (blob_upload_once(p, digest, fd, (uint64_t)sb.st_size, &retryable, err) == 0)
			return 0;
		if (!retryable || attempt >= o->max_attempts) {
			if (attempt > 1) {
				cleanup_free char *msg = xstrdup((*err)->msg);
				kiln_error_make(err, 0, "%s (after %d attempts)", msg, attempt);
			}
			return kiln_error_wrap(err, "blob %s", digest);
		}
		log_verbose("blob %s: %s; uploading again", digest, (*err)->msg);
		kiln_error_release(err);
		long d = o->retry_base_ms << (attempt - 1 > 5 ? 5 : attempt - 1);
		struct timespec ts = {d / 1000, (d % 1000) * 1000000};
		nanosleep(&ts, NULL);
	}
}

/* PUTs a manifest's exact bytes under REFERENCE (tag or digest). */
static int push_manifest(struct push *p, const char *reference, const char *data, size_t len,
			 const char *media_type, const char *digest, struct kiln_error **err)
{
	cleanup_free char *url =
	    xasprintf("%s/v2/%s/manifests/%s", host_base(p->h), p->path, reference);
	struct http_req rq = {.method = "PUT",
			      .url = url,
			      .content_type = media_type,
			      .scope = p->scope,
			      .body = data,
			      .fd = -1,
			      .body_len = len,
			      .retry = true};
	struct http_resp rs = {0};
	int r = host_request(p->c, p->h, &rq, &rs, err);
	if (r == 0 && rs.status != 201 && rs.status != 200) {
		cleanup_free char *why = http_error_text(&rs);
		r = kiln_error_make(err, 0, "%s", why);
	} else if (r == 0 && rs.digest && strcmp(rs.digest, digest) != 0) {
		r = kiln_error_make(err, 0, "the registry stored it as %s", rs.digest);
	}
	http_resp_release(&rs);
	if (r < 0)
		return kiln_error_wrap(err, "manifest %s", digest);
	return 0;
}

/* Pushes one image manifest DIGEST (its blobs, then itself by digest
 * unless AS_ROOT, which the caller PUTs under the tag). */
static int push_image_manifest(struct push *p, const char *digest, json_t *m,
			       struct kiln_error **err)
{
	struct oci_descriptor d;
	json_t *cfg = json_object_get(m, "config");
	if (cfg == NULL || oci_descriptor_parse(cfg, &d, err) < 0)
		return kiln_error_make(err, 0, "manifest %s: no valid config", digest);
	if (push_blob(p, d.digest, err) < 0)
		return -1;
	json_t *layers = json_object_get(m, "layers");
	for (size_t i = 0; i < json_array_size(layers); i++) {
		if (oci_descriptor_parse(json_array_get(layers, i), &d, err) < 0)
			return kiln_error_wrap(err, "manifest %s layers[%zu]", digest, i);
		if (push_blob(p, d.digest, err) < 0)
			return -1;
	}
	return 0;
}

static int push_ref(struct registry_client *c, struct store *s, const char *src_name,
		    const char *raw_name, const struct image_ref *src, const struct image_ref *dst,
		    char *root_out, struct kiln_error **err)
{
	char root[DIGEST_STRLEN];
	int found = store_lookup(s, src_name, root, err);
	if (found == 0 && strcmp(src_name, raw_name) != 0)
		found =
		    store_lookup(s, raw_name, root, err); /* "two" as umoci and skopeo name it */
	if (found < 0)
		return -1;
	if (found == 0) {
		if (src && src->digest && store_has_blob(s, src->digest))
			snprintf(root, sizeof root, "%s", src->digest);
		else
			return kiln_error_make(err, ENOENT, "%s is not in the store (%s)", src_name,
					       store_dir(s));
	}
	struct push p = {.c = c, .s = s, .path = dst->path};
	if (src && strcmp(src->domain, dst->domain) == 0 && strcmp(src->path, dst->path) != 0)
		p.from_path = src->path;
	p.scope = p.from_path ? xasprintf("repository:%s:pull,push repository:%s:pull", dst->path,
					  p.from_path)
			      : xasprintf("repository:%s:pull,push", dst->path);
	int r = -1;
	size_t len = 0;
	cleanup_free char *data = store_blob_read(s, root, OCI_MANIFEST_MAX, &len, err);
	cleanup_json json_t *doc = data ? oci_json_parse(data, len, root, err) : NULL;
	const char *mt = doc ? oci_document_media_type(doc) : NULL;
	if (doc == NULL)
		goto out;
	if (mt == NULL || !(oci_is_index(mt) || oci_is_manifest(mt))) {
		kiln_error_make(err, 0, "%s: not a manifest or index", root);
		goto out;
	}
	p.h = client_host(c, dst->domain, err);
	if (p.h == NULL)
		goto out;
	if (oci_is_index(mt)) {
		json_t *ms = json_object_get(doc, "manifests");
		size_t i;
		json_t *v;
		json_array_foreach(ms, i, v)
		{
			struct oci_descriptor d;
			if (oci_descriptor_parse(v, &d, err) < 0) {
				kiln_error_wrap(err, "index %s manifests[%zu]", root, i);
				goto out;
			}
			if (!store_has_blob(s, d.digest)) {
				kiln_error_make(
				    err, 0,
				    "index %s names manifest %s (%s/%s) which is not in "
				    "the store (pull it with --arch first)",
				    root, d.digest, d.os ? d.os : "?",
				    d.architecture ? d.architecture : "?");
				goto out;
			}
			size_t clen = 0;
			cleanup_free char *cdata =
			    store_blob_read(s, d.digest, OCI_MANIFEST_MAX, &clen, err);
			cleanup_json json_t *cdoc =
			    cdata ? oci_json_parse(cdata, clen, d.digest, err) : NULL;
			if (cdoc == NULL)
				goto out;
			const char *cmt = oci_document_media_type(cdoc);
			if (cmt == NULL || !oci_is_manifest(cmt)) {
				kiln_error_make(err, 0, "%s: nested indexes are not supported",
						d.digest);
				goto out;
			}
			if (push_image_manifest(&p, d.digest, cdoc, err) < 0 ||
			    push_manifest(&p, d.digest, cdata, clen, cmt, d.digest, err) < 0)
				goto out;
		}
	} else if (push_image_manifest(&p, root, doc, err) < 0) {
		goto out;
	}
	const char *reference = dst->tag ? dst->tag : dst->digest;
	if (dst->digest && strcmp(dst->digest, root) != 0) {
		kiln_error_make(err, 0, "destination digest %s is not the image's %s", dst->digest,
				root);
		goto out;
	}
	if (push_manifest(&p, reference, data, len, mt, root, err) < 0)
		goto out;
	if (root_out)
		snprintf(root_out, DIGEST_STRLEN, "%s", root);
	if (client_chatty(c)) {
		cleanup_free char *dname = ref_string(dst);
		log_info("pushed %s (%s): %zu blob%s uploaded (%.1f MB), %zu mounted, %zu already "
			 "there",
			 dname, root, p.uploaded, p.uploaded == 1 ? "" : "s", (double)p.bytes / 1e6,
			 p.mounted, p.present);
	}
	r = 0;
out:
	free(p.scope);
	free(p.done);
	return r;
}

int registry_client_push(struct registry_client *c, struct store *s, const char *src_name,
			 const char *dest_ref, char digest_out[DIGEST_STRLEN],
			 struct kiln_error **err)
{
	struct image_ref src = {0}, dst = {0};
	cleanup_error struct kiln_error *perr = NULL;
	bool src_ok = ref_parse(src_name, &src, &perr) == 0;
	cleanup_free char *name = src_ok ? ref_string(&src) : xstrdup(src_name);
	if (ref_parse(dest_ref ? dest_ref : src_name, &dst, err) < 0) {
		if (src_ok)
			ref_release(&src);
		return kiln_error_wrap(err, "push");
	}
	cleanup_free char *dname = ref_string(&dst);
	int r = push_ref(c, s, name, src_name, src_ok ? &src : NULL, &dst, digest_out, err);
	if (r < 0)
		kiln_error_wrap(err, "push %s", dname);
	if (src_ok)
		ref_release(&src);
	ref_release(&dst);
	return r;
}

int registry_push(struct store *s, const char *src_name, const char *dest_ref,
		  const struct registry_options *o, struct kiln_error **err)
{
	cleanup_registry_client struct registry_client *c = registry_client_new(o, err);
	if (c == NULL)
		return -1;
	return registry_client_push(c, s, src_name, dest_ref, NULL, err);
}
