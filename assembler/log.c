#include "log.h"

#include <stdarg.h>
#include <stdio.h>

int kiln_log_level = LOG_NORMAL;

static void log_v(int level, const char *prefix, const char *fmt, va_list ap)
{
	if (level > kiln_log_level)
		return;
	fputs("kiln: ", stderr);
	fputs(prefix, stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

#define LOG_FN(name, level, prefix)                                                                \
	void name(const char *fmt, ...)                                                            \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_v(level, prefix, fmt, ap);                                                     \
		va_end(ap);                                                                        \
	}

LOG_FN(log_error, LOG_QUIET, "")
LOG_FN(log_warn, LOG_NORMAL, "warning: ")
LOG_FN(log_info, LOG_NORMAL, "")
LOG_FN(log_verbose, LOG_VERBOSE, "")
LOG_FN(log_debug, LOG_DEBUG, "debug: ")
