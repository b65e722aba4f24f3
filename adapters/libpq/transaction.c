/* libpq adapter: transactions that retry optimistic-concurrency conflicts.
 *
 * One attempt: BEGIN, the callback, COMMIT. A conflict (SQLSTATE 40001:
 * dsql_conflict_classify, which never reads DETAIL, HINT or data) at any
 * point rolls back and, while retries
 * remain, sleeps base * 2^(retry-1) (capped, jittered) and runs the
 * callback again. Once COMMIT has been sent, losing the connection (or a
 * FATAL reply) leaves the outcome unknown: DSQL_EUNKNOWN_COMMIT, never a
 * retry. Uses only the public libdsqlauth API plus libpq. */
#include "dsqlauth/adapter.h"
#include "pool_internal.h"
#include "result_status.h"
#include "txn_options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define fail dsql_error_set /* the adapter kit's */

/* The callback's error says "conflict"? Its message is its own (maybe a
 * primary message, maybe more): only the SQLSTATE counts. */
static int err_is_conflict(dsql_status st, const dsql_error *e)
{
    if (st == DSQL_ECONFLICT)
        return 1;
    return e && dsql_conflict_classify(e->sqlstate, NULL) != DSQL_CONFLICT_NONE;
}

static dsql_status exec_simple(PGconn *conn, const char *sql, dsql_error *err)
{
    PGresult *r = PQexec(conn, sql);
    dsql_status st = dsql_pq_result_status(conn, r, err);
    PQclear(r);
    return st;
}

/* Roll back what is left of an attempt; the error of the attempt stays. */
static void rollback_quietly(PGconn *conn)
{
    if (PQstatus(conn) != CONNECTION_OK)
        return;
    PGTransactionStatusType ts = PQtransactionStatus(conn);
    if (ts == PQTRANS_ACTIVE) {
        /* results left unread by the callback */
        PGresult *r;
        while ((r = PQgetResult(conn)) != NULL)
            PQclear(r);
        ts = PQtransactionStatus(conn);
    }
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
        PQclear(PQexec(conn, "ROLLBACK"));
}

/* Send COMMIT and read its outcome. */
static dsql_status commit(PGconn *conn, dsql_error *err)
{
    if (!PQsendQuery(conn, "COMMIT")) {
        /* Not sent: the server cannot have committed. */
        dsql_status st = PQstatus(conn) == CONNECTION_BAD ? DSQL_ENETWORK : DSQL_ESERVER;
        fail(err, st, "cannot send COMMIT: ");
        dsql__pq_copy_message(err, "cannot send COMMIT: ", PQerrorMessage(conn));
        rollback_quietly(conn);
        return st;
    }
    PGresult *r, *first_error = NULL;
    int got_ok = 0, rolled_back = 0;
    while ((r = PQgetResult(conn)) != NULL) {
        ExecStatusType s = PQresultStatus(r);
        if (s == PGRES_COMMAND_OK) {
            got_ok = 1;
            rolled_back = strcmp(PQcmdStatus(r), "ROLLBACK") == 0;
            PQclear(r);
        } else if (!first_error) {
            first_error = r;
        } else {
            PQclear(r);
        }
    }
    int lost = PQstatus(conn) != CONNECTION_OK;
    if (first_error) {
        const char *sqlstate = PQresultErrorField(first_error, PG_DIAG_SQLSTATE);
        const char *sev = PQresultErrorField(first_error, PG_DIAG_SEVERITY_NONLOCALIZED);
        int definite = sqlstate && sev && strcmp(sev, "ERROR") == 0;
        dsql_status st;
        if (definite) {
            /* the server answered COMMIT with an ERROR: not committed */
            st = dsql_pq_result_status(conn, first_error, err);
            if (st == DSQL_ENETWORK)
                st = DSQL_ESERVER;
            if (err)
                err->status = st;
        } else {
            /* FATAL/PANIC or a libpq-made error (connection lost) */
            dsql_pq_result_status(conn, first_error, err);
            st = DSQL_EUNKNOWN_COMMIT;
            if (err) {
                err->status = st;
                char detail[sizeof err->message];
                snprintf(detail, sizeof detail, "%s", err->message);
                snprintf(err->message, sizeof err->message,
                         "outcome unknown: the connection failed after COMMIT was sent: %.420s",
                         detail);
            }
        }
        PQclear(first_error);
        if (!lost)
            rollback_quietly(conn);
        return st;
    }
    if (lost || !got_ok) {
        fail(err, DSQL_EUNKNOWN_COMMIT,
             "outcome unknown: the connection was lost after COMMIT was sent");
        dsql__pq_copy_message(err, "outcome unknown: the connection was lost after COMMIT was sent: ",
                     PQerrorMessage(conn));
        return DSQL_EUNKNOWN_COMMIT;
    }
    if (rolled_back)
        return fail(err, DSQL_ESERVER, "COMMIT rolled the transaction back (it had failed)");
    return DSQL_OK;
}

typedef struct run_ctx {
    const dsql_pq_txn_options *o;
    dsql_pq_txn_fn fn;
    void *arg;
    dsql_pq_txn_info info;
} run_ctx;

/* One attempt on conn. Returns DSQL_OK (committed), or an error with *why
 * in err; *broken_early is set when the connection broke before COMMIT
 * was sent (nothing committed). */
static dsql_status attempt(PGconn *conn, run_ctx *c, dsql_error *err, int *broken_early)
{
    *broken_early = 0;
    if (PQstatus(conn) != CONNECTION_OK) {
        *broken_early = 1;
        return fail(err, DSQL_ENETWORK, "the connection is broken");
    }
    if (PQtransactionStatus(conn) != PQTRANS_IDLE)
        return fail(err, DSQL_EINVAL, "the connection is not idle (already in a transaction?)");
    const char *begin = c->o->begin ? c->o->begin : "BEGIN";
    dsql_status st = exec_simple(conn, begin, err);
    if (st != DSQL_OK) {
        *broken_early = PQstatus(conn) != CONNECTION_OK;
        if (!*broken_early)
            rollback_quietly(conn);
        return st;
    }
    if (err) {
        err->status = DSQL_OK;
        err->sqlstate[0] = '\0';
        err->message[0] = '\0';
    }
    dsql_error local;
    dsql_error *e = err ? err : &local;
    memset(&local, 0, sizeof local);
    st = c->fn(conn, &c->info, c->arg, e);
    if (st != DSQL_OK) {
        if (err_is_conflict(st, e))
            st = e->status = DSQL_ECONFLICT;
        else if (e->status == DSQL_OK || e->status != st)
            e->status = st;
        if (!e->message[0])
            snprintf(e->message, sizeof e->message, "the transaction callback returned %s",
                     dsql_status_name(st));
        if (PQstatus(conn) != CONNECTION_OK) {
            *broken_early = 1;
            if (st != DSQL_ECONFLICT && st != DSQL_ENETWORK)
                e->status = st; /* keep the callback's own status */
        } else {
            rollback_quietly(conn);
        }
        return st;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        *broken_early = 1;
        fail(err, DSQL_ENETWORK, "the connection broke during the transaction");
        dsql__pq_copy_message(err, "the connection broke during the transaction: ", PQerrorMessage(conn));
        return DSQL_ENETWORK;
    }
    switch (PQtransactionStatus(conn)) {
    case PQTRANS_INTRANS:
        break;
    case PQTRANS_INERROR:
        rollback_quietly(conn);
        return fail(err, DSQL_ESERVER,
                    "a statement in the transaction failed but the callback returned DSQL_OK");
    case PQTRANS_ACTIVE:
        rollback_quietly(conn);
        return fail(err, DSQL_EINVAL, "the callback left a command running");
    default:
        rollback_quietly(conn);
        return fail(err, DSQL_EINVAL, "the callback ended the transaction itself");
    }
    return commit(conn, err);
}

/* The retry loop. With pool, conn is acquired here (and *connp unused). */
static dsql_status run(dsql_pq_pool *pool, PGconn *conn, dsql_pq_txn_fn fn, void *arg,
                       const dsql_pq_txn_options *opts, dsql_pq_txn_result *result,
                       dsql_error *err)
{
    dsql_pq_txn_result local_result;
    if (!result)
        result = &local_result;
    memset(result, 0, sizeof *result);
    if (!fn)
        return fail(err, DSQL_EINVAL, "transaction callback is NULL");
    dsql_pq_txn_options defaults;
    if (!opts) {
        if (pool) {
            opts = dsql__pq_pool_txn_defaults(pool);
        } else {
            dsql_pq_txn_options_init(&defaults);
            opts = &defaults;
        }
    }
    dsql_status st = dsql__pq_txn_options_check(opts, err);
    if (st != DSQL_OK)
        return st;
    dsql_error scratch;
    if (!err)
        err = &scratch;
    run_ctx c = {opts, fn, arg, {0, 0, DSQL_OK, "", DSQL_CONFLICT_NONE}};
    unsigned max_attempts = opts->retry.max_retries + 1;
    c.info.max_attempts = max_attempts;
    PGconn *pooled = NULL;
    for (unsigned n = 1;; n++) {
        c.info.attempt = n;
        st = dsql_retry_before_attempt(&opts->retry, n - 1, err);
        if (st == DSQL_OK && pool && !pooled) {
            if (!(pooled = dsql__pq_pool_acquire_until(pool, -1, &opts->retry, err)))
                st = err->status != DSQL_OK ? err->status : DSQL_EINTERNAL;
            conn = pooled;
        }
        if (st != DSQL_OK) {
            if (pooled)
                dsql_pq_pool_release(pool, pooled);
            return st;
        }
        int broken_early = 0;
        result->attempts = n;
        st = attempt(conn, &c, err, &broken_early);
        int conflict = st == DSQL_ECONFLICT;
        int reconnect = !conflict && pool && broken_early && st == DSQL_ENETWORK;
        dsql_conflict_kind kind = conflict ? dsql__pq_conflict_kind(err) : DSQL_CONFLICT_NONE;
        c.info.previous = st;
        c.info.previous_conflict = kind;
        memcpy(c.info.previous_sqlstate, err->sqlstate, sizeof c.info.previous_sqlstate);
        if (conflict) /* counts it; waits, unless it was the last attempt */
            st = dsql_retry_after_conflict(&opts->retry, n, kind, result, err);
        else if (reconnect && n < max_attempts)
            st = DSQL_OK;
        if (st != DSQL_OK || (!conflict && !reconnect)) {
            if (pooled)
                dsql_pq_pool_release(pool, pooled);
            return st;
        }
        if (reconnect) {
            /* broken before COMMIT: nothing committed; try a fresh one */
            result->reconnects++;
            dsql_pq_pool_release(pool, pooled);
            pooled = NULL;
        }
    }
}

dsql_status dsql_pq_run_transaction(PGconn *conn, dsql_pq_txn_fn fn, void *arg,
                                    const dsql_pq_txn_options *opts, dsql_pq_txn_result *result,
                                    dsql_error *err)
{
    if (!conn) {
        if (result)
            memset(result, 0, sizeof *result);
        return fail(err, DSQL_EINVAL, "connection is NULL");
    }
    return run(NULL, conn, fn, arg, opts, result, err);
}

dsql_status dsql_pq_pool_run_transaction(dsql_pq_pool *pool, dsql_pq_txn_fn fn, void *arg,
                                         const dsql_pq_txn_options *opts,
                                         dsql_pq_txn_result *result, dsql_error *err)
{
    if (!pool) {
        if (result)
            memset(result, 0, sizeof *result);
        return fail(err, DSQL_EINVAL, "pool is NULL");
    }
    dsql_pq_txn_result local;
    if (!result)
        result = &local;
    dsql_status st = run(pool, NULL, fn, arg, opts, result, err);
    dsql__pq_pool_count_txn(pool, st, result);
    return st;
}
