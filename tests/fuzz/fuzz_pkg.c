/* libFuzzer target for build.yml (pkg_parse) and archive path cleaning:
 * any input gives a package or one error with a position, never a crash;
 * a cleaned path never holds a ".." component or a leading '/'. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deb.h"
#include "pkg.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kiln_error *err = NULL;
	struct pkg *p = pkg_parse("/nonexistent/pkg", "build.yml", (const char *)data, size, &err);
	if (p == NULL && (err == NULL || err->msg == NULL || strchr(err->msg, '\n')))
		abort();
	pkg_free(p);
	kiln_error_release(&err);
	char *s = xstrndup((const char *)data, size < 4096 ? size : 4096);
	char *c = deb_path_clean(s);
	if (c && (c[0] == '/' || !strcmp(c, "..") || strstr(c, "/../") || !strncmp(c, "../", 3) ||
		  str_has_suffix(c, "/..")))
		abort();
	free(c);
	free(s);
	return 0;
}
