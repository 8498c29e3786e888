#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int kiln_error_make(struct kiln_error **err, int status, const char *fmt, ...)
{
	if (err == NULL)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		oom();
	va_end(ap);
	if (status != 0) {
		char *full = xasprintf("%s: %s", msg, strerror(status));
		free(msg);
		msg = full;
	}
	kiln_error_release(err);
	struct kiln_error *e = xmalloc(sizeof *e);
	e->status = status;
	e->msg = msg;
	*err = e;
	return -1;
}

int kiln_error_wrap(struct kiln_error **err, const char *fmt, ...)
{
	if (err == NULL || *err == NULL)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	char *ctx = NULL;
	if (vasprintf(&ctx, fmt, ap) < 0)
		oom();
	va_end(ap);
	char *full = xasprintf("%s: %s", ctx, (*err)->msg);
	free(ctx);
	free((*err)->msg);
	(*err)->msg = full;
	return -1;
}

void kiln_error_release(struct kiln_error **err)
{
	if (err == NULL || *err == NULL)
		return;
	free((*err)->msg);
	free(*err);
	*err = NULL;
}
