/* Logging with verbosity.  The level is the one piece of process-wide state
 * (set once by main from -v/-q).  Messages go to stderr prefixed "kiln: ". */
#ifndef KILN_LOG_H
#define KILN_LOG_H

enum log_level {
	LOG_QUIET = -1, /* -q: errors only */
	LOG_NORMAL = 0, /* warnings and progress */
	LOG_VERBOSE = 1, /* -v */
	LOG_DEBUG = 2,  /* -vv */
};

extern int kiln_log_level;

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));    /* normal */
void log_verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* -v */
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));   /* -vv */

#endif
