/* A small TAP harness: one test program per module, one function per case,
 * each case run in a fresh temporary directory (its cwd), one TAP test point
 * per case.  Exit status: 0 all passed, 1 any failed, 77 all skipped.
 *
 *   TEST(parses_empty) { ok(f() == 0, "f succeeds"); is_str(a, "x", "a"); }
 *
 * Include this in exactly one .c file (it defines main). */
#ifndef KILN_TAP_H
#define KILN_TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

typedef void (*tap_fn)(void);
struct tap_case {
	const char *name;
	tap_fn fn;
};
static struct tap_case tap_cases[512];
static int tap_ncases;
static int tap_case_failed;
static const char *tap_skip_reason;
static char tap_tmpdir[4096];

static inline void tap_register(const char *name, tap_fn fn)
{
	if (tap_ncases < (int)ARRAY_SIZE(tap_cases))
		tap_cases[tap_ncases++] = (struct tap_case){name, fn};
}

#define TEST(name)                                                                                 \
	static void name(void);                                                                    \
	__attribute__((constructor)) static void tap_reg_##name(void)                              \
	{                                                                                          \
		tap_register(#name, name);                                                         \
	}                                                                                          \
	static void name(void)

__attribute__((format(printf, 4, 5))) static inline bool tap_check(bool cond, const char *file,
								   int line, const char *fmt, ...)
{
	if (cond)
		return true;
	tap_case_failed++;
	va_list ap;
	va_start(ap, fmt);
	printf("# FAIL %s:%d: ", file, line);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	return false;
}

#define ok(cond, ...) tap_check((cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, what)                                                                    \
	do {                                                                                       \
		long long g_ = (long long)(got), w_ = (long long)(want);                           \
		tap_check(g_ == w_, __FILE__, __LINE__, "%s: got %lld, want %lld", (what), g_, w_); \
	} while (0)
#define is_str(got, want, what)                                                                    \
	do {                                                                                       \
		const char *g_ = (got), *w_ = (want);                                              \
		tap_check((g_ == NULL && w_ == NULL) || (g_ && w_ && strcmp(g_, w_) == 0),         \
			  __FILE__, __LINE__, "%s: got \"%s\", want \"%s\"", (what),               \
			  g_ ? g_ : "(null)", w_ ? w_ : "(null)");                                 \
	} while (0)
/* Marks the current case skipped and returns from it. */
#define skip(reason)                                                                               \
	do {                                                                                       \
		tap_skip_reason = (reason);                                                        \
		return;                                                                            \
	} while (0)

/* The directory the current case runs in (fresh, removed afterwards). */
static inline const char *tap_dir(void)
{
	return tap_tmpdir;
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	char cwd[4096];
	if (getcwd(cwd, sizeof cwd) == NULL)
		return 1;
	printf("1..%d\n", tap_ncases);
	int failed = 0, skipped = 0;
	for (int i = 0; i < tap_ncases; i++) {
		if (only && strcmp(only, tap_cases[i].name) != 0) {
			printf("ok %d - %s # SKIP not selected\n", i + 1, tap_cases[i].name);
			skipped++;
			continue;
		}
		const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
		snprintf(tap_tmpdir, sizeof tap_tmpdir, "%s/kiln-unit-XXXXXX", base);
		if (mkdtemp(tap_tmpdir) == NULL || chdir(tap_tmpdir) < 0) {
			perror("mkdtemp");
			return 1;
		}
		tap_case_failed = 0;
		tap_skip_reason = NULL;
		fflush(stdout);
		tap_cases[i].fn();
		if (chdir(cwd) < 0)
			return 1;
		rm_rf(tap_tmpdir, NULL);
		if (tap_skip_reason) {
			printf("ok %d - %s # SKIP %s\n", i + 1, tap_cases[i].name, tap_skip_reason);
			skipped++;
		} else if (tap_case_failed) {
			printf("not ok %d - %s\n", i + 1, tap_cases[i].name);
			failed++;
		} else {
			printf("ok %d - %s\n", i + 1, tap_cases[i].name);
		}
		fflush(stdout);
	}
	if (tap_ncases > 0 && skipped == tap_ncases)
		return 77;
	return failed ? 1 : 0;
}

#endif
