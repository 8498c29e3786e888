/* Console lines stamped with the guest's uptime, the way a person debugging a
 * boot on a serial console reads them next to the kernel's own lines. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "init.h"

int init_log_fd = 2;
bool init_debug;

double init_uptime(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void log_v(const char *prefix, const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof msg, fmt, ap);
	char line[1200];
	int n =
	    snprintf(line, sizeof line, "[%12.6f] kiln-init: %s%s\n", init_uptime(), prefix, msg);
	if (n > (int)sizeof line)
		n = sizeof line;
	if (n > 0 && write(init_log_fd, line, (size_t)n) < 0) {
		/* nowhere else to say it */
	}
}

void init_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_v("", fmt, ap);
	va_end(ap);
}

void init_debug_log(const char *fmt, ...)
{
	if (!init_debug)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_v("debug: ", fmt, ap);
	va_end(ap);
}

void init_log_error(struct kiln_error **err, const char *context)
{
	init_log("warning: %s: %s", context, err && *err ? (*err)->msg : "unknown error");
	kiln_error_release(err);
}
