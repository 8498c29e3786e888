/* build_execute (build.h): resolve the images, assemble the intermediate
 * tar into a private work directory inside the output directory, make
 * kernel + initrd there when a requested format needs them, then call each
 * format's writer, which installs its files atomically (temp name in the
 * output directory, rename).  The work directory is removed in every case,
 * so a failed build leaves nothing under a final name. */
#include "build.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "assemble.h"
#include "format.h"
#include "image.h"
#include "log.h"
#include "outputs.h"
#include "ref.h"
#include "registry.h"
#include "sbom.h"
#include "store.h"
#include "util.h"

struct resolved {
	char *ref;
	char digest[DIGEST_STRLEN];
};

struct loader {
	struct store *store;
	const struct registry_options *ro;
	struct registry_client *client;
	bool pull;
	const char *arch;
	size_t n;
	struct resolved *v;
};

static struct image *load_image(void *ctx, const char *ref, struct kiln_error **err)
{
	struct loader *l = ctx;
	const char *digest = NULL;
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].ref, ref) == 0)
			digest = l->v[i].digest;
	if (!digest) {
		char d[DIGEST_STRLEN];
		if (image_resolve_with(l->client, l->store, ref, l->ro, l->pull, d, err) < 0)
			return NULL;
		l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
		l->v[l->n].ref = xstrdup(ref);
		memcpy(l->v[l->n].digest, d, sizeof(d));
		digest = l->v[l->n++].digest;
	}
	struct image *img = image_load(l->store, digest, l->arch, err);
	if (img) {
		free(img->name);
		img->name = xstrdup(ref);
	}
	return img;
}

static enum initrd_compress compress_of(const struct build_options *o)
{
	switch (o->compress) {
	case BUILD_COMPRESS_ZSTD:
		return INITRD_ZSTD;
	case BUILD_COMPRESS_NONE:
		return INITRD_NONE;
	default:
		return INITRD_GZIP;
	}
}

static int run(const struct build_options *opts, struct manifest *m, const char *work,
	       struct loader *ld, struct kiln_error **err)
{
	const char *dir = opts->dir && *opts->dir ? opts->dir : ".";
	const char *name = opts->name && *opts->name ? opts->name : (m->name ? m->name : "kiln");
	const struct output_format *fmts[64];
	size_t nf = opts->nformats < 64 ? opts->nformats : 64;
	bool need_ki = false;
	for (size_t i = 0; i < nf; i++) {
		fmts[i] = format_find(opts->formats[i]);
		if (!fmts[i])
			return kiln_error_make(err, 0, "unknown output format `%s`",
					       opts->formats[i]);
		if (opts->output && !fmts[i]->streamable)
			return kiln_error_make(err, EINVAL, "format %s cannot be written with -o",
					       fmts[i]->name);
		need_ki |= fmts[i]->needs_kernel_initrd;
	}
	int64_t epoch = assemble_epoch();
	/* The rebuild cache lives beside the store's blobs (KILN_SECTION_CACHE=0
	 * turns it off). */
	const char *sc = getenv("KILN_SECTION_CACHE");
	cleanup_free char *cache_dir = (sc && strcmp(sc, "0") == 0)
					   ? NULL
					   : xasprintf("%s/kiln-sections", store_dir(ld->store));
	struct assemble_options ao = {.m = m,
				      .store = ld->store,
				      .load = load_image,
				      .load_ctx = ld,
				      .epoch = epoch,
				      .decompress_kernel = opts->decompress_kernel};
	struct assemble_result sections;
	if (assemble_sections(&ao, work, cache_dir, &sections, err) < 0)
		return -1;
	size_t reused = 0;
	for (size_t i = 0; i < sections.n; i++)
		reused += sections.v[i].reused;
	log_verbose("%zu sections, %zu reused from the cache", sections.n, reused);
	/* The SBOM is one more section, after `files` (as in LinuxKit). */
	struct sbom_section_options so = {.ao = &ao,
					  .name = name,
					  .file = opts->sbom_output,
					  .arch = ld->arch,
					  .created = opts->sbom_current_time ? (int64_t)time(NULL) : epoch,
					  .work_dir = work,
					  .cache_dir = cache_dir};
	if (!opts->no_sbom && sbom_append_section(&so, &sections, err) < 0) {
		assemble_result_release(&sections);
		return -1;
	}
	/* The whole intermediate tar is written only for formats that read it:
	 * a format takes either kernel + initrd (needs_kernel_initrd: the disk,
	 * ISO and UKI writers) or the root filesystem tar (tar, docker,
	 * kernel+squashfs, kernel+erofs), so only the latter get tar_path. */
	bool need_tar = false;
	for (size_t i = 0; i < nf; i++)
		need_tar |= !fmts[i]->needs_kernel_initrd;
	cleanup_free char *tar_path = xasprintf("%s/rootfs.tar", work);
	if (need_tar) {
		cleanup_close int fd = open(tar_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || assemble_concat(&sections, fd, err) < 0) {
			if (fd < 0)
				kiln_error_make(err, errno, "create `%s`", tar_path);
			assemble_result_release(&sections);
			return -1;
		}
	}
	cleanup_free char *kernel = xasprintf("%s/kernel", work);
	cleanup_free char *initrd = xasprintf("%s/initrd.img", work);
	struct initrd_result res = {0};
	if (need_ki) {
		struct initrd_section *secs = xcalloc(sections.n ? sections.n : 1, sizeof(*secs));
		for (size_t i = 0; i < sections.n; i++)
			secs[i] = (struct initrd_section){sections.v[i].tar_path, sections.v[i].key,
							  sections.v[i].cacheable};
		/* kernel+initrd's own files may be taken over by the rebuild. */
		bool ki = false;
		for (size_t i = 0; i < nf; i++)
			ki |= strcmp(fmts[i]->name, "kernel+initrd") == 0;
		cleanup_free char *prev_initrd =
		    ki && !opts->output ? xasprintf("%s/%s-initrd.img", dir, name) : NULL;
		cleanup_free char *prev_kernel =
		    ki && !opts->output ? xasprintf("%s/%s-kernel", dir, name) : NULL;
		struct initrd_options io = {.compress = compress_of(opts),
					    .work_dir = work,
					    .cache_dir = cache_dir,
					    .previous_initrd = prev_initrd,
					    .previous_kernel = prev_kernel};
		int r = initrd_from_sections(secs, sections.n, kernel, initrd, &io, &res, err);
		free(secs);
		if (r < 0) {
			assemble_result_release(&sections);
			return kiln_error_wrap(err, "kernel+initrd");
		}
		log_verbose("initrd: %llu bytes of cpio in %llu members (%llu sections reused, "
			    "%llu kept in place: %llu bytes)",
			    (unsigned long long)res.cpio_bytes, (unsigned long long)res.members,
			    (unsigned long long)res.reused, (unsigned long long)res.kept_sections,
			    (unsigned long long)res.kept_bytes);
	}
	if (cache_dir)
		assemble_cache_prune(cache_dir, &sections, 7 * 24 * 3600);
	assemble_result_release(&sections);
	struct format_ctx ctx = {.name = name,
				 .dir = dir,
				 .tar_path = need_tar ? tar_path : NULL,
				 .kernel_path = need_ki ? kernel : NULL,
				 .initrd_path = need_ki ? initrd : NULL,
				 .cmdline = res.cmdline,
				 .work_dir = work,
				 .size = opts->size,
				 .epoch = epoch,
				 .arch = opts->arch ? opts->arch : "amd64",
				 .output = opts->output};
	int rc = 0;
	for (size_t i = 0; i < nf && rc == 0; i++) {
		log_verbose("writing %s", fmts[i]->name);
		if (fmts[i]->write(&ctx, err) < 0)
			rc = kiln_error_wrap(err, "%s", fmts[i]->name);
	}
	initrd_result_release(&res);
	return rc;
}

int build_execute(const struct build_options *opts, struct manifest *m, struct kiln_error **err)
{
	const char *dir = opts->dir && *opts->dir ? opts->dir : ".";
	if (mkdir_p(dir, 0755, err) < 0)
		return -1;
	cleanup_free char *work = xasprintf("%s/.kiln-build-XXXXXX", dir);
	if (!mkdtemp(work))
		return kiln_error_make(err, errno, "create a work directory in `%s`", dir);
	struct registry_options ro;
	registry_options_init(&ro);
	ro.arch = xstrdup(opts->arch ? opts->arch : "amd64");
	if (opts->cert_file)
		ro.cert_file = xstrdup(opts->cert_file);
	for (size_t i = 0; i < opts->ninsecure; i++)
		registry_options_add_insecure(&ro, opts->insecure_registries[i]);
	int rc = 0;
	for (size_t i = 0; i < opts->nmirrors && rc == 0; i++) {
		cleanup_free char *spec =
		    xasprintf("%s=%s", opts->mirrors[i].registry, opts->mirrors[i].url);
		rc = registry_options_add_mirror(&ro, spec, err);
	}
	struct store *s = rc == 0 ? store_open(opts->cache, err) : NULL;
	struct loader ld = {.store = s, .ro = &ro, .pull = opts->pull, .arch = ro.arch};
	if (s) {
		ld.client = registry_client_new(&ro, err);
		if (ld.client)
			rc = run(opts, m, work, &ld, err);
		else
			rc = -1;
	} else {
		rc = -1;
	}
	if (ld.client)
		registry_client_free(ld.client);
	for (size_t i = 0; i < ld.n; i++)
		free(ld.v[i].ref);
	free(ld.v);
	if (s)
		store_close(s);
	registry_options_release(&ro);
	struct kiln_error *e2 = NULL;
	rm_rf(work, &e2);
	kiln_error_release(&e2);
	if (rc < 0)
		return kiln_error_wrap(err, "build %s", m->name ? m->name : "");
	return 0;
}
