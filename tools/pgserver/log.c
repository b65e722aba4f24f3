/* pgserver: one log file, line-buffered, each line escaped as a whole. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "escape.h"
#include "log.h"

static FILE *log_fp;
static char log_ident[32] = "pgserver";

void pgs_log_open(const char *path, const char *ident)
{
    FILE *fp;

    if (ident)
        snprintf(log_ident, sizeof log_ident, "%s", ident);
    if (!path)
        return; /* only naming the program; standard error stays */
    fp = fopen(path, "ae");
    if (!fp)
        return;
    setvbuf(fp, NULL, _IOLBF, 0);
    if (log_fp && log_fp != stderr)
        fclose(log_fp);
    log_fp = fp;
}

static void write_line(const char *note, const char *fmt, va_list ap)
{
    FILE *fp = log_fp ? log_fp : stderr;
    char raw[PGS_LOG_LINE_MAX], line[PGS_LOG_LINE_MAX], stamp[32];
    time_t t = time(NULL);
    struct tm tm;
    int n = vsnprintf(raw, sizeof raw, fmt, ap);

    if (n < 0)
        return;
    if ((size_t)n >= sizeof raw)
        n = (int)sizeof raw - 1;
    pgs_escape(line, sizeof line, raw, (size_t)n, 0);
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(fp, "%s %s[%ld]: %s%s\n", stamp, log_ident, (long)getpid(), line, note);
}

void pgs_vlog(const char *fmt, va_list ap)
{
    write_line("", fmt, ap);
}

void pgs_log(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    write_line("", fmt, ap);
    va_end(ap);
}

void pgs_log_limited(pgs_ratelimit *rl, const char *fmt, ...)
{
    char note[96] = "";
    unsigned long held;
    va_list ap;

    if (!pgs_ratelimit_take(rl))
        return;
    held = pgs_ratelimit_take_refused(rl);
    if (held)
        snprintf(note, sizeof note, " (and %lu more like this, not logged)", held);
    va_start(ap, fmt);
    write_line(note, fmt, ap);
    va_end(ap);
}
