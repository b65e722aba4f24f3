/* pgserver: the server log. Every line is escaped as a whole (see
 * escape.h), so nothing a client sent can end a line early, forge the next
 * one or reach a terminal as a control sequence; lines a flood repeats go
 * through a rate limit. */
#ifndef PGSERVER_LOG_H
#define PGSERVER_LOG_H

#include <stdarg.h>

#include "ratelimit.h"

#if defined(__GNUC__)
#define PGS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define PGS_PRINTF(a, b)
#endif

#define PGS_LOG_LINE_MAX 2048 /* longer lines are cut, marked "..." */

/* Appends to path from now on (standard error until then); ident names the
 * program in each line. A path that cannot be opened keeps the old log;
 * path NULL only sets ident. */
void pgs_log_open(const char *path, const char *ident);
void pgs_log(const char *fmt, ...) PGS_PRINTF(1, 2);
void pgs_vlog(const char *fmt, va_list ap);
/* Logs when rl has a token, with a note of how many lines it held back
 * since the last one it let through; else only counts the line. */
void pgs_log_limited(pgs_ratelimit *rl, const char *fmt, ...) PGS_PRINTF(2, 3);

/* A limit for one kind of line: a burst of 20, then 2 a second. */
#define PGS_LOG_BURST 20
#define PGS_LOG_PER_SECOND 2

#endif
