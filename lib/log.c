/* The one place the library emits text: a user-installed callback. */
#include "internal.h"

#include <stdio.h>

static dsql_log_fn g_log_fn;
static dsql_log_level g_log_level = DSQL_LOG_WARN;
static void *g_log_userdata;

void dsql_set_log_handler(dsql_log_fn fn, dsql_log_level max_level, void *userdata)
{
    g_log_fn = fn;
    g_log_level = max_level;
    g_log_userdata = userdata;
}

int dsql__log_enabled(dsql_log_level level)
{
    return g_log_fn != NULL && level <= g_log_level;
}

void dsql__log(dsql_log_level level, const char *fmt, ...)
{
    if (!dsql__log_enabled(level))
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    g_log_fn(level, line, g_log_userdata);
}
