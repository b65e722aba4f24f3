/* Conflict classification shared by every adapter (issue 13, item 9): the
 * SQLSTATE decides whether an error is a conflict, the primary message
 * only which kind. Adapters used to scan the whole message text, DETAIL
 * included, so a unique violation on a value 'OC000' was retried as a
 * conflict and lost its SQLSTATE. */
#include <string.h>

#include "dsqlauth/conflict.h"

dsql_conflict_kind dsql_conflict_classify(const char *sqlstate, const char *primary_message)
{
    if (!sqlstate || strcmp(sqlstate, "40001") != 0)
        return DSQL_CONFLICT_NONE;
    const char *data = primary_message ? strstr(primary_message, "OC000") : NULL;
    const char *schema = primary_message ? strstr(primary_message, "OC001") : NULL;
    if (data && (!schema || data < schema))
        return DSQL_CONFLICT_DATA;
    if (schema)
        return DSQL_CONFLICT_SCHEMA;
    return DSQL_CONFLICT_UNKNOWN;
}

const char *dsql_conflict_kind_name(dsql_conflict_kind kind)
{
    switch (kind) {
    case DSQL_CONFLICT_NONE:
        return "DSQL_CONFLICT_NONE";
    case DSQL_CONFLICT_DATA:
        return "DSQL_CONFLICT_DATA";
    case DSQL_CONFLICT_SCHEMA:
        return "DSQL_CONFLICT_SCHEMA";
    case DSQL_CONFLICT_UNKNOWN:
        return "DSQL_CONFLICT_UNKNOWN";
    }
    return "?";
}
