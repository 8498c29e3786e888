/* libFuzzer target for the manifest parser: no crash, no leak, no
 * undefined behaviour on any input; every error is one line starting with
 * "fuzz.yml:LINE:COL: "; every accepted manifest dumps, parses back and
 * dumps to the same bytes (YAML and JSON), validates and merges with itself
 * (repeated service names must be refused).  The same bytes are also read as
 * an org.mobyproject.config label, merged with themselves and copied. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_error(struct kiln_error *err, const char *prefix)
{
	if (err == NULL || err->msg == NULL || strncmp(err->msg, prefix, strlen(prefix)) != 0 ||
	    strchr(err->msg, '\n') != NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kiln_error *err = NULL;
	struct manifest *m =
		manifest_parse((const char *)data, size, "fuzz.yml", "/nonexistent", NULL, &err);
	if (m == NULL) {
		check_error(err, "fuzz.yml:");
		kiln_error_release(&err);
	} else {
		char *y1 = manifest_dump_string(m, "yaml", &err);
		char *j1 = manifest_dump_string(m, "json", &err);
		if (y1 == NULL || j1 == NULL)
			abort();
		/* aliases may expand beyond what a manifest file may hold */
		if (strlen(y1) > MANIFEST_MAX_SIZE) {
			free(y1), free(j1);
			manifest_free(m);
			goto label;
		}
		struct manifest *m2 =
			manifest_parse(y1, strlen(y1), "fuzz.yml", "/nonexistent", NULL, &err);
		if (m2 == NULL)
			abort();
		char *y2 = manifest_dump_string(m2, "yaml", &err);
		char *j2 = manifest_dump_string(m2, "json", &err);
		if (y2 == NULL || j2 == NULL || strcmp(y1, y2) != 0 || strcmp(j1, j2) != 0)
			abort();
		/* the checks made after merging, and the merge itself */
		if (manifest_validate(m2, &err) < 0) {
			check_error(err, "fuzz.yml:");
			kiln_error_release(&err);
		}
		struct manifest *m3 =
			manifest_parse((const char *)data, size, "fuzz.yml", "/nonexistent", NULL, &err);
		if (m3 == NULL)
			abort();
		if (manifest_append(m2, m3, &err) < 0) {
			check_error(err, "fuzz.yml:");
			kiln_error_release(&err);
		} else if (m->services.n > 0) {
			abort(); /* appending a manifest to itself repeats its service names */
		}
		for (size_t i = 0; i < m->services.n; i++) {
			struct image_config *c = image_config_merge(&m->services.v[i].config,
								    &m->services.v[0].config);
			image_config_free(c);
		}
		free(y1), free(y2), free(j1), free(j2);
		manifest_free(m2);
		manifest_free(m);
	}

label:;
	char *text = xstrndup((const char *)data, size);
	struct image_config *label = image_config_parse_label(text, &err);
	if (label == NULL) {
		check_error(err, "org.mobyproject.config label:");
		kiln_error_release(&err);
	} else {
		struct image_config *merged = image_config_merge(label, label);
		struct image_config copy;
		image_config_copy(&copy, merged);
		image_config_release(&copy);
		image_config_free(merged);
		image_config_free(label);
	}
	free(text);
	return 0;
}
