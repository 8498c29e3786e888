/* kiln's one error contract (STYLE.md §1).
 *
 * Every fallible function returns int (< 0 on failure) or a pointer (NULL on
 * failure) and takes `struct kiln_error **err` as its last parameter.  It
 * fills *err only on failure.  Callers add context on the way up with
 * kiln_error_wrap() so the user reads one line: what, where, why.  Only
 * main()-level code prints errors and exits. */
#ifndef KILN_ERROR_H
#define KILN_ERROR_H

struct kiln_error {
	int status; /* an errno value, or 0 when the error is not a system error */
	char *msg;  /* heap, owned by the error */
};

/* Sets *err to a new error with STATUS (an errno value or 0) and the message;
 * when STATUS is non-zero, ": strerror(STATUS)" is appended.  Returns -1 so the
 * idiom is `return kiln_error_make(err, errno, "open `%s`", path);`.  ERR may be
 * NULL (the error is dropped).  If *err is already set it is replaced. */
int kiln_error_make(struct kiln_error **err, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes the message of *err with "CONTEXT: ".  Returns -1.  A no-op on
 * the message when *err is NULL (still returns -1). */
int kiln_error_wrap(struct kiln_error **err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Frees *err and sets it to NULL. */
void kiln_error_release(struct kiln_error **err);

#define cleanup_error __attribute__((cleanup(kiln_error_release)))

#endif
