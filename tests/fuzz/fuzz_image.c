/* libFuzzer target for image_load: the input is the root blob (a manifest or
 * an index) of an image in a store that also holds a fixed config, layer and
 * platform manifest the input may refer to:
 *   config   {"architecture":"amd64","os":"linux"}
 *   layer    "layer"
 *   manifest the OCI manifest of those two (for indexes to point at)
 * Digests are printed on stderr at start-up to seed a corpus. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "oci.h"
#include "store.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct store *store;
static char fixed[3][DIGEST_STRLEN]; /* config, layer, manifest */

static void cleanup_dir_at_exit(void)
{
	if (store) {
		char *dir = xstrdup(store_dir(store));
		store_close(store);
		rm_rf(dir, NULL);
		free(dir);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char tmpl[] = "/dev/shm/kiln-fuzz-image-XXXXXX";
	char tmpl2[] = "/tmp/kiln-fuzz-image-XXXXXX";
	char *dir = mkdtemp(tmpl);
	if (dir == NULL)
		dir = mkdtemp(tmpl2);
	if (dir == NULL)
		abort();
	store = store_open(dir, NULL);
	if (store == NULL)
		abort();
	atexit(cleanup_dir_at_exit);
	const char *config = "{\"architecture\":\"amd64\",\"os\":\"linux\"}";
	store_put_blob(store, config, strlen(config), fixed[0], NULL);
	store_put_blob(store, "layer", 5, fixed[1], NULL);
	char *m = xasprintf("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":"
			    "\"%s\",\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":"
			    "\"%s\",\"digest\":\"%s\",\"size\":5}]}",
			    OCI_MEDIA_MANIFEST, OCI_MEDIA_CONFIG, fixed[0], strlen(config),
			    OCI_MEDIA_LAYER_GZIP, fixed[1]);
	store_put_blob(store, m, strlen(m), fixed[2], NULL);
	fprintf(stderr, "fuzz_image: config %s layer %s manifest %s (%zu bytes)\n", fixed[0],
		fixed[1], fixed[2], strlen(m));
	free(m);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char d[DIGEST_STRLEN];
	if (store_put_blob(store, data, size, d, NULL) < 0)
		abort();
	if (store_tag(store, "f", d, OCI_MEDIA_MANIFEST, (int64_t)size, NULL) < 0)
		abort();
	struct kiln_error *err = NULL;
	struct image *img = image_load(store, "f", "amd64", &err);
	if (img == NULL && (err == NULL || err->msg == NULL))
		abort();
	if (img && (img->config == NULL || img->manifest == NULL))
		abort();
	image_free(img);
	kiln_error_release(&err);
	if (strcmp(d, fixed[0]) && strcmp(d, fixed[1]) && strcmp(d, fixed[2]))
		store_blob_remove(store, d, NULL);
	return 0;
}
