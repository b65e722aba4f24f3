/* libdsqlauth: classify Aurora DSQL's optimistic-concurrency conflicts, for
 * driver adapters (the libpq and ODBC adapters use it; so can yours).
 * Library: libdsqlauth (pkg-config dsqlauth, CMake dsqlauth::dsqlauth).
 *
 * Aurora DSQL reports a conflict as SQLSTATE 40001 with an OCC code in the
 * primary message ("Concurrency control in Aurora DSQL"): OC000 when
 * another transaction changed the same rows (data), OC001 when a committed
 * DDL made the session's catalog stale (schema). The rule: an error is a
 * conflict if and only if its SQLSTATE is 40001; its kind comes from the
 * primary message only, never from DETAIL, HINT or anything else that can
 * hold user data (a unique violation on the value 'OC000' is not a
 * conflict). */
#ifndef DSQLAUTH_CONFLICT_H
#define DSQLAUTH_CONFLICT_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dsql_conflict_kind {
    DSQL_CONFLICT_NONE = 0,    /* not a conflict (SQLSTATE is not 40001) */
    DSQL_CONFLICT_DATA = 1,    /* 40001 with OC000: retry on a fresh snapshot */
    DSQL_CONFLICT_SCHEMA = 2,  /* 40001 with OC001: retry; the catalog is reloaded */
    DSQL_CONFLICT_UNKNOWN = 3  /* 40001 without an OCC code (PostgreSQL's own
                                  serialization failures, a newer code) */
} dsql_conflict_kind;

/* The kind of the error with this SQLSTATE (NULL: none) and primary
 * message (the server's message field alone, without DETAIL or HINT;
 * NULL allowed). A primary message naming both codes takes the first. */
DSQL_API dsql_conflict_kind dsql_conflict_classify(const char *sqlstate,
                                                   const char *primary_message);

/* "DSQL_CONFLICT_DATA" and so on; "?" for a value outside the enum. */
DSQL_API const char *dsql_conflict_kind_name(dsql_conflict_kind kind);

#ifdef __cplusplus
}
#endif
#endif
