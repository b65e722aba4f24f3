/* Status names and the caller-owned error struct. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

const char *dsql_status_name(dsql_status status)
{
    switch (status) {
    case DSQL_OK: return "DSQL_OK";
    case DSQL_EINVAL: return "DSQL_EINVAL";
    case DSQL_ENOMEM: return "DSQL_ENOMEM";
    case DSQL_EBUFSIZE: return "DSQL_EBUFSIZE";
    case DSQL_ECREDENTIALS: return "DSQL_ECREDENTIALS";
    case DSQL_EEXPIRED: return "DSQL_EEXPIRED";
    case DSQL_ECONFIG: return "DSQL_ECONFIG";
    case DSQL_EIO: return "DSQL_EIO";
    case DSQL_ENETWORK: return "DSQL_ENETWORK";
    case DSQL_ETIMEOUT: return "DSQL_ETIMEOUT";
    case DSQL_EPARSE: return "DSQL_EPARSE";
    case DSQL_ETLS: return "DSQL_ETLS";
    case DSQL_EAUTH: return "DSQL_EAUTH";
    case DSQL_ESERVER: return "DSQL_ESERVER";
    case DSQL_ECONFLICT: return "DSQL_ECONFLICT";
    case DSQL_EUNKNOWN_COMMIT: return "DSQL_EUNKNOWN_COMMIT";
    case DSQL_EINTERNAL: return "DSQL_EINTERNAL";
    case DSQL_ECANCELLED: return "DSQL_ECANCELLED";
    }
    return "DSQL_E?";
}

const char *dsql_version(void) { return DSQL_VERSION_STRING; }

dsql_status dsql__error(dsql_error *err, dsql_status status, const char *fmt, ...)
{
    if (err) {
        err->status = status;
        err->sqlstate[0] = '\0';
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

void dsql__error_clear(dsql_error *err)
{
    if (err) {
        err->status = DSQL_OK;
        err->sqlstate[0] = '\0';
        err->message[0] = '\0';
    }
}
