/* libpq adapter: what a result says, as a dsql_status and a dsql_error
 * (the SQLSTATE, the server's primary message), and the kind of a conflict
 * (dsql_conflict_classify: the SQLSTATE decides, the primary message only
 * names the kind). */
#include "dsqlauth/adapter.h"
#include "result_status.h"

#include <stdio.h>
#include <string.h>

#define fail dsql_error_set /* the adapter kit's */

static void set_sqlstate(dsql_error *err, const char *sqlstate)
{
    if (!err)
        return;
    if (sqlstate && strlen(sqlstate) == 5)
        memcpy(err->sqlstate, sqlstate, 6);
    else
        err->sqlstate[0] = '\0';
}

void dsql__pq_copy_message(dsql_error *err, const char *prefix, const char *msg)
{
    if (!err)
        return;
    snprintf(err->message, sizeof err->message, "%s%s", prefix, msg ? msg : "");
    size_t n = strlen(err->message);
    while (n > 0 && (err->message[n - 1] == '\n' || err->message[n - 1] == ' '))
        err->message[--n] = '\0';
}

static int connection_class(const char *sqlstate)
{
    return sqlstate && (strncmp(sqlstate, "08", 2) == 0 || strcmp(sqlstate, "57P01") == 0 ||
                        strcmp(sqlstate, "57P02") == 0 || strcmp(sqlstate, "57P03") == 0);
}

dsql_status dsql_pq_result_status(PGconn *conn, const PGresult *res, dsql_error *err)
{
    if (!res) {
        if (!conn)
            return fail(err, DSQL_EINVAL, "connection and result are NULL");
        dsql_status st = PQstatus(conn) == CONNECTION_BAD ? DSQL_ENETWORK : DSQL_ENOMEM;
        fail(err, st, "no result");
        dsql__pq_copy_message(err, "", PQerrorMessage(conn));
        if (err && !err->message[0])
            snprintf(err->message, sizeof err->message, "no result (out of memory?)");
        return st;
    }
    switch (PQresultStatus(res)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_EMPTY_QUERY:
    case PGRES_COPY_OUT:
    case PGRES_COPY_IN:
    case PGRES_COPY_BOTH:
    case PGRES_SINGLE_TUPLE:
        if (err) {
            err->status = DSQL_OK;
            err->sqlstate[0] = '\0';
            err->message[0] = '\0';
        }
        return DSQL_OK;
    default:
        break;
    }
    const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *full = PQresultErrorMessage(res);
    dsql_status st;
    if (dsql_conflict_classify(sqlstate, primary) != DSQL_CONFLICT_NONE)
        st = DSQL_ECONFLICT;
    else if (connection_class(sqlstate) || (conn && PQstatus(conn) == CONNECTION_BAD))
        st = DSQL_ENETWORK;
    else
        st = DSQL_ESERVER;
    if (err) {
        err->status = st;
        set_sqlstate(err, sqlstate);
        dsql__pq_copy_message(err, "", primary && *primary ? primary : full && *full ? full
                              : PQresStatus(PQresultStatus(res)));
    }
    return st;
}

dsql_conflict_kind dsql__pq_conflict_kind(const dsql_error *err)
{
    dsql_conflict_kind k = dsql_conflict_classify("40001", err->message);
    return k == DSQL_CONFLICT_NONE ? DSQL_CONFLICT_UNKNOWN : k;
}
