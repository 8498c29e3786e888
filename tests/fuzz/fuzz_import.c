/* libFuzzer target for store_import of tar archives (OCI layout tars and
 * `docker save` archives): the input is written to a file and imported into
 * a scratch store.  Whatever the bytes, the import either succeeds or fails
 * with a message, and the store stays consistent: every blob matches its
 * name and every name points at a complete image (checked every 256 inputs,
 * then the store is emptied).  Seeds: tests/fuzz/corpus_import/. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "store_archive.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct store *store;
static char *workdir, *input;
static unsigned runs;

static void cleanup_at_exit(void)
{
	store_close(store);
	if (workdir)
		rm_rf(workdir, NULL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char tmpl[] = "/dev/shm/kiln-fuzz-import-XXXXXX";
	char tmpl2[] = "/tmp/kiln-fuzz-import-XXXXXX";
	char *dir = mkdtemp(tmpl);
	if (dir == NULL)
		dir = mkdtemp(tmpl2);
	if (dir == NULL)
		abort();
	workdir = xstrdup(dir);
	input = path_join(workdir, "input.tar");
	char *sd = path_join(workdir, "store");
	store = store_open(sd, NULL);
	free(sd);
	if (store == NULL)
		abort();
	atexit(cleanup_at_exit);
	return 0;
}

static void problem(const char *what, const char *why, void *arg)
{
	(void)arg;
	fprintf(stderr, "fuzz_import: store problem: %s: %s\n", what, why);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = open(input, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, data, size, NULL) < 0)
		abort();
	close(fd);
	struct kiln_error *err = NULL;
	if (store_import(store, input, NULL, NULL, NULL, &err) < 0 &&
	    (err == NULL || err->msg == NULL))
		abort();
	kiln_error_release(&err);
	if (++runs % 256 == 0) {
		if (store_verify(store, problem, NULL, &err) != 0)
			abort();
		if (store_clear(store, NULL, NULL, &err) < 0)
			abort();
	}
	return 0;
}
