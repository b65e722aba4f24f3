/* libpq adapter: one statement in autocommit, retried on optimistic-
 * concurrency conflicts (DDL meets OC001 when the catalog changed under
 * the session), bounded by the caller's deadline and cancel callback,
 * which also cancel a statement still running (PQcancel). */
#include "dsqlauth/adapter.h"
#include "poll_wait.h"
#include "pool_internal.h"
#include "result_status.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#define fail dsql_error_set /* the adapter kit's */

/* Ask the server to cancel what conn runs. Best effort: the answer (57014
 * or the statement's own end) arrives on conn as usual. */
static void cancel_running(PGconn *conn)
{
    PGcancel *c = PQgetCancel(conn);
    if (!c)
        return;
    char buf[256];
    PQcancel(c, buf, sizeof buf);
    PQfreeCancel(c);
}

/* Wait for conn's result, cancelling it when until says stop (*stop gets
 * that status and why its reason). 0 when the result can be read. */
static int await_result(PGconn *conn, const dsql_retry_options *until, dsql_status *stop,
                        dsql_error *why)
{
    int sock = PQsocket(conn);
    while (PQisBusy(conn)) {
        if (*stop == DSQL_OK && (*stop = dsql_retry_check(until, why)) != DSQL_OK)
            cancel_running(conn);
        struct pollfd p = {sock, POLLIN, 0};
        int wait = *stop != DSQL_OK ? -1 : dsql__pq_wait_ms(until, -1), r;
        do
            r = poll(&p, 1, wait);
        while (r < 0 && errno == EINTR);
        if (r < 0 || (r > 0 && !PQconsumeInput(conn)))
            return -1;
    }
    return 0;
}

/* One run of the statement: its result (*st DSQL_OK), or NULL with *st and
 * err saying why. */
static PGresult *exec_once(PGconn *conn, const char *sql, int nparams, const char *const *values,
                           const dsql_retry_options *o, dsql_status *st, dsql_error *err)
{
    if (!PQsendQueryParams(conn, sql, nparams, NULL, values, NULL, NULL, 0)) {
        *st = PQstatus(conn) == CONNECTION_BAD ? DSQL_ENETWORK : DSQL_ESERVER;
        fail(err, *st, "cannot send the statement: %.400s", PQerrorMessage(conn));
        return NULL;
    }
    dsql_status stop = DSQL_OK;
    dsql_error why;
    await_result(conn, o, &stop, &why);
    PGresult *r, *keep = NULL;
    while ((r = PQgetResult(conn)) != NULL) { /* the first error, else the last */
        if (keep && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
            PQclear(r);
            continue;
        }
        PQclear(keep);
        keep = r;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        PQclear(keep);
        *st = DSQL_EUNKNOWN_COMMIT;
        fail(err, *st, "outcome unknown: the connection was lost after the statement was "
             "sent (it may have taken effect): %.350s", PQerrorMessage(conn));
        return NULL;
    }
    *st = dsql_pq_result_status(conn, keep, err);
    if (stop != DSQL_OK && *st != DSQL_OK) {
        /* cancelled on our request (57014) or failed meanwhile: the stop wins */
        PQclear(keep);
        /* err says why, the statement's error after it (a passed deadline
           stays passed; a caller that cancelled stays cancelled) */
        if ((*st = dsql_retry_before_attempt(o, 1, err)) == DSQL_OK) {
            *err = why;
            *st = stop;
        }
        return NULL;
    }
    if (*st != DSQL_OK) {
        PQclear(keep);
        return NULL;
    }
    return keep;
}

static dsql_status check_args(PGconn *conn, const char *sql, int nparams,
                              const char *const *values, const dsql_retry_options *o,
                              dsql_error *err)
{
    if (!sql)
        return fail(err, DSQL_EINVAL, "sql is NULL");
    if (nparams < 0 || (nparams > 0 && !values))
        return fail(err, DSQL_EINVAL, "nparams %d without values", nparams);
    dsql_status st = dsql_retry_options_check(o, "retry options", err);
    if (st != DSQL_OK || !conn)
        return st;
    if (PQstatus(conn) != CONNECTION_OK)
        return fail(err, DSQL_ENETWORK, "the connection is broken");
    if (PQisBusy(conn) || PQtransactionStatus(conn) != PQTRANS_IDLE)
        return fail(err, DSQL_EINVAL, "the connection is not idle (inside a transaction, or "
                    "a command is running): a statement with retry runs in autocommit");
    return DSQL_OK;
}

static PGresult *exec_retry(PGconn *conn, const char *sql, int nparams,
                            const char *const *values, const dsql_retry_options *o,
                            dsql_pq_txn_result *result, dsql_error *err)
{
    for (unsigned n = 1;; n++) {
        dsql_status st = dsql_retry_before_attempt(o, n - 1, err);
        if (st != DSQL_OK)
            return NULL;
        result->attempts = n;
        PGresult *r = exec_once(conn, sql, nparams, values, o, &st, err);
        if (st == DSQL_OK)
            return r;
        if (st != DSQL_ECONFLICT)
            return NULL;
        if (dsql_retry_after_conflict(o, n, dsql__pq_conflict_kind(err), result, err) != DSQL_OK)
            return NULL;
    }
}

PGresult *dsql_pq_exec_with_retry(PGconn *conn, const char *sql, int nparams,
                                  const char *const *values, const dsql_retry_options *opts,
                                  dsql_pq_txn_result *result, dsql_error *err)
{
    dsql_pq_txn_result local;
    if (!result)
        result = &local;
    memset(result, 0, sizeof *result);
    dsql_error scratch;
    if (!err)
        err = &scratch;
    if (!conn) {
        fail(err, DSQL_EINVAL, "connection is NULL");
        return NULL;
    }
    if (check_args(conn, sql, nparams, values, opts, err) != DSQL_OK)
        return NULL;
    dsql_retry_options defaults;
    if (!opts) {
        dsql_retry_options_init(&defaults);
        opts = &defaults;
    }
    return exec_retry(conn, sql, nparams, values, opts, result, err);
}

PGresult *dsql_pq_pool_exec_with_retry(dsql_pq_pool *pool, const char *sql, int nparams,
                                       const char *const *values,
                                       const dsql_retry_options *opts,
                                       dsql_pq_txn_result *result, dsql_error *err)
{
    dsql_pq_txn_result local;
    if (!result)
        result = &local;
    memset(result, 0, sizeof *result);
    dsql_error scratch;
    if (!err)
        err = &scratch;
    if (!pool) {
        fail(err, DSQL_EINVAL, "pool is NULL");
        return NULL;
    }
    if (!opts)
        opts = &dsql__pq_pool_txn_defaults(pool)->retry;
    if (check_args(NULL, sql, nparams, values, opts, err) != DSQL_OK)
        return NULL;
    PGresult *r = NULL;
    PGconn *conn = dsql__pq_pool_acquire_until(pool, -1, opts, err);
    if (conn) {
        r = exec_retry(conn, sql, nparams, values, opts, result, err);
        dsql_pq_pool_release(pool, conn);
    }
    dsql__pq_pool_count_txn(pool, r ? DSQL_OK : err->status, result);
    return r;
}
