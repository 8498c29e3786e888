/* libFuzzer target for ref_parse: no crash, no leak, and every accepted
 * reference's normal form parses back to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xstrndup((const char *)data, size);
	struct image_ref r;
	struct kiln_error *err = NULL;
	if (ref_parse(s, &r, &err) == 0) {
		char *n = ref_string(&r);
		struct image_ref r2;
		if (ref_parse(n, &r2, &err) != 0)
			abort();
		char *n2 = ref_string(&r2);
		if (strcmp(n, n2) != 0)
			abort();
		free(n2);
		free(n);
		ref_release(&r2);
		ref_release(&r);
	} else if (err == NULL || err->msg == NULL) {
		abort();
	}
	kiln_error_release(&err);
	free(s);
	return 0;
}
