/* libdsqlauth libpq adapter: a thread-safe connection pool and transactions
 * that retry optimistic-concurrency conflicts.
 * Library: libdsqlauth-pq (pkg-config dsqlauth-pq, CMake dsqlauth::pq),
 *          which links libdsqlauth and libpq.
 *
 * Not included by <dsqlauth.h> because it needs <libpq-fe.h>.
 *
 * Pool. Every new connection is made through a connector; the default one
 * calls dsql_pq_connect() (or dsql_pq_connect_start/poll for the
 * non-blocking acquire) with the pool's own resolved copy of the
 * configuration and the caller's token provider, so each new connection
 * signs a fresh token: a password is never cached. Connections rotate
 * before Aurora DSQL's one-hour limit (max lifetime, default 3300 s,
 * shortened per connection by up to `lifetime_jitter` so they do not all
 * expire together), idle ones above min_size close after idle_timeout, a
 * connection that sat idle is checked on acquire (a poll of its socket, and
 * optionally a round trip), and broken ones are closed, never handed out.
 * On release an open transaction is rolled back and the session is reset to
 * the state the pool opened it in (identity, settings, prepared statements,
 * cursors, LISTEN, advisory locks, temporary objects: see reset_query); a
 * connection whose reset fails, or that is then not idle, or is broken,
 * busy or in pipeline mode, is closed, never handed out. There is no
 * thread of its own unless asked for: upkeep happens inside acquire and
 * release, or through dsql_pq_pool_maintain() from an event loop.
 *
 * Transactions. dsql_pq_run_transaction() runs a callback between BEGIN and
 * COMMIT; a conflict (SQLSTATE 40001: dsql_conflict_classify) rolls
 * back, waits (exponential backoff with jitter) and runs the callback again.
 * A connection lost after COMMIT was sent is never retried: the outcome is
 * unknown and the status is DSQL_EUNKNOWN_COMMIT. */
#ifndef DSQLAUTH_POOL_H
#define DSQLAUTH_POOL_H

#include <libpq-fe.h>

#include "conflict.h"
#include "libpq.h"
#include "retry.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Transactions with conflict retry --------------------------------- */

/* Retry policy (dsqlauth/retry.h, shared with every adapter) and how the
 * transaction opens. */
typedef struct dsql_pq_txn_options {
    int version;              /* DSQL_STRUCT_VERSION */
    dsql_retry_options retry; /* max_retries (3; 0: never retry), backoff,
                                 deadline_ms, cancelled */
    const char *begin;        /* statement that opens the transaction; NULL:
                                 "BEGIN" (e.g. "BEGIN READ ONLY") */
} dsql_pq_txn_options;

/* Fill *opts with the defaults (dsql_retry_options_init, begin NULL). */
DSQL_API void dsql_pq_txn_options_init(dsql_pq_txn_options *opts);

/* What the callback learns about the attempt it runs in: the shared
 * dsql_retry_info (retry.h), which the ODBC adapter uses too. */
typedef dsql_retry_info dsql_pq_txn_info;

/* The transaction body. Runs inside BEGIN ... COMMIT on conn (do not
 * COMMIT or ROLLBACK yourself). Return DSQL_OK to commit. Return the
 * status of a failed statement (dsql_pq_result_status() fills err for
 * you) to roll back: DSQL_ECONFLICT, or an err whose sqlstate is 40001,
 * is retried; anything else ends the call with that status and err. The
 * callback may run several times: keep side effects outside the database
 * idempotent, or keep them out. */
typedef dsql_status (*dsql_pq_txn_fn)(PGconn *conn, const dsql_pq_txn_info *info, void *arg,
                                      dsql_error *err);

/* Counts for one dsql_pq_run_transaction, dsql_pq_pool_run_transaction or
 * single statement with retry: the shared dsql_retry_result (retry.h:
 * attempts, conflicts by kind, reconnects), which the ODBC adapter fills
 * too. */
typedef dsql_retry_result dsql_pq_txn_result;

/* Run fn on one connection of yours (connection in CONNECTION_OK, outside a
 * transaction). A connection inside a transaction or with a command
 * running (including a call from inside another run on it) is refused
 * with DSQL_EINVAL and left as it was. A PGconn must not be used by two
 * threads at once (libpq's rule): two transactions on one connection from
 * two threads would interleave; give each thread its own connection, or
 * use the pool. opts NULL: the defaults. result may be NULL.
 * Returns DSQL_OK when committed; DSQL_ECONFLICT when conflicts outlasted
 * the retries (or max_retries is 0), err keeping the server's SQLSTATE and
 * message; DSQL_EUNKNOWN_COMMIT when the connection was lost after COMMIT
 * was sent (the transaction may or may not have committed; never retried);
 * DSQL_ENETWORK when the connection broke before COMMIT (nothing
 * committed); DSQL_ESERVER for other server errors; the callback's own
 * status otherwise; DSQL_EINVAL for bad arguments or options. */
DSQL_API dsql_status dsql_pq_run_transaction(PGconn *conn, dsql_pq_txn_fn fn, void *arg,
                                             const dsql_pq_txn_options *opts,
                                             dsql_pq_txn_result *result, dsql_error *err);

/* ---- A single statement with conflict retry ---------------------------- */

/* Run one statement on conn in autocommit (conn idle: not in a transaction,
 * no command running) with PQexecParams (nparams text parameters, values
 * may hold NULLs for SQL NULL; nparams 0: values may be NULL) and return its
 * PGresult (PGRES_COMMAND_OK or PGRES_TUPLES_OK; PQclear it). A conflict
 * (SQLSTATE 40001: DDL in Aurora DSQL meets OC001 when another session
 * changed the schema) is retried as dsql_pq_run_transaction retries,
 * with the same options (opts NULL: dsql_retry_options_init's defaults):
 * backoff, max_retries, deadline_ms, cancelled. While the statement runs,
 * the deadline and the cancel callback (asked at least every 10 ms) send
 * a cancel request to the server (PQcancel) and the call returns
 * DSQL_ETIMEOUT / DSQL_ECANCELLED once the server has answered. result
 * (may be NULL) gets the attempts and conflicts by kind. NULL with err
 * on failure: DSQL_ECONFLICT when conflicts outlasted the retries,
 * DSQL_EUNKNOWN_COMMIT when the connection was lost after the statement
 * was sent (it may have taken effect; never retried), DSQL_ESERVER (the
 * server's SQLSTATE and message), DSQL_ENETWORK when it could not be sent,
 * DSQL_EINVAL for bad arguments or a connection that is not idle. */
DSQL_API PGresult *dsql_pq_exec_with_retry(PGconn *conn, const char *sql, int nparams,
                                           const char *const *values,
                                           const dsql_retry_options *opts,
                                           dsql_pq_txn_result *result, dsql_error *err);

/* Classify a result (res may be NULL, as PQexec returns on failure):
 * DSQL_OK for PGRES_COMMAND_OK, TUPLES_OK, EMPTY_QUERY, COPY_* and
 * SINGLE_TUPLE; DSQL_ECONFLICT for SQLSTATE 40001 (whatever the message,
 * DETAIL or HINT say: dsql_conflict_classify); DSQL_ENETWORK when the
 * connection is broken (or SQLSTATE class 08, 57P01..57P03); DSQL_ESERVER for other errors. Fills err with the
 * SQLSTATE and the server's message. Does not PQclear(res). */
DSQL_API dsql_status dsql_pq_result_status(PGconn *conn, const PGresult *res, dsql_error *err);

/* ---- Connector seam ---------------------------------------------------- */

/* How the pool makes connections. The default calls the dsql_pq_connect
 * family; tests and special setups supply their own. Only connect is
 * required; without the non-blocking trio, dsql_pq_pool_acquire_poll calls
 * connect (and blocks). Called from any thread, concurrently. */
typedef struct dsql_pq_connector_vtable {
    int version; /* DSQL_STRUCT_VERSION */
    /* A new connection in CONNECTION_OK, or NULL with err set. */
    PGconn *(*connect)(void *self, dsql_error *err);
    /* Optional non-blocking connect, same contract as dsql_pq_connect_start,
     * _poll and _finish (finish also abandons an attempt). */
    void *(*connect_start)(void *self, dsql_error *err);
    dsql_pq_poll_status (*connect_poll)(void *self, void *attempt, int *fd, int *timeout_ms,
                                        dsql_error *err);
    PGconn *(*connect_finish)(void *self, void *attempt);
    /* Called once when the pool is freed (or its creation fails); may be NULL. */
    void (*destroy)(void *self);
} dsql_pq_connector_vtable;

/* ---- Pool -------------------------------------------------------------- */

typedef struct dsql_pq_pool dsql_pq_pool;

#define DSQL_PQ_POOL_DEFAULT_MAX_SIZE 10u
#define DSQL_PQ_POOL_DEFAULT_ACQUIRE_TIMEOUT_MS 30000u
#define DSQL_PQ_POOL_DEFAULT_MAX_LIFETIME_MS 3300000u
#define DSQL_PQ_POOL_DEFAULT_LIFETIME_JITTER 0.1
#define DSQL_PQ_POOL_DEFAULT_IDLE_TIMEOUT_MS 600000u
#define DSQL_PQ_POOL_DEFAULT_CHECK_IDLE_MS 0u
/* The default reset, run as one string (one round trip). The role
 * statements are first because RESET ALL does not reset them. Where a
 * server refuses one of the last five as unsupported (Aurora DSQL has no
 * temporary tables or sequences, and a server without UNLISTEN, CLOSE or
 * the advisory-lock functions has no such state), that connection learns
 * it once (the statements one by one) and leaves them out from then on;
 * any other failure closes the connection. See dsql_pq_pool_new(3). */
#define DSQL_PQ_POOL_DEFAULT_RESET_QUERY                                               \
    "SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; RESET ALL; DEALLOCATE ALL; "       \
    "CLOSE ALL; UNLISTEN *; SELECT pg_catalog.pg_advisory_unlock_all(); DISCARD TEMP; " \
    "DISCARD SEQUENCES"

typedef struct dsql_pq_pool_options {
    int version;                 /* DSQL_STRUCT_VERSION */
    unsigned min_size;           /* kept open (0); opened by dsql_pq_pool_new */
    unsigned max_size;           /* open + opening at most (10), >= 1 */
    uint32_t acquire_timeout_ms; /* longest wait in acquire (30000); 0: fail
                                    at once when the pool is exhausted */
    uint32_t max_lifetime_ms;    /* (3300000 = 55 min); 0: unlimited */
    double lifetime_jitter;      /* 0..1 (0.1): each connection's lifetime is
                                    max_lifetime * (1 - jitter * U[0,1)) */
    uint32_t idle_timeout_ms;    /* close idle connections above min_size
                                    after this long (600000); 0: never */
    uint32_t check_idle_ms;      /* socket check on acquire when idle at least
                                    this long (0: always; it costs one poll(2)
                                    and catches closed and killed
                                    connections; input that arrived while
                                    idle costs a round trip to confirm);
                                    UINT32_MAX: never */
    uint32_t ping_idle_ms;       /* also a round trip (empty query) when idle
                                    at least this long; 0: never (default) */
    const char *reset_query;     /* run on release; NULL (or equal to
                                    DSQL_PQ_POOL_DEFAULT_RESET_QUERY): the
                                    default reset; "": none (then only
                                    ROLLBACK as needed); other: yours, run as
                                    one string that must succeed */
    int background_thread;       /* 1: a thread runs dsql_pq_pool_maintain
                                    every maintain_interval_ms (0: none) */
    uint32_t maintain_interval_ms; /* for the thread (1000) */
    dsql_pq_txn_options txn;     /* defaults for dsql_pq_pool_run_transaction */
    /* Connector; NULL: the default (cfg + provider of dsql_pq_pool_new).
     * The pool owns connector_self from the call on (destroy). */
    const dsql_pq_connector_vtable *connector;
    void *connector_self;
} dsql_pq_pool_options;

/* Fill *opts with the defaults above (version included). */
DSQL_API void dsql_pq_pool_options_init(dsql_pq_pool_options *opts);

/* Create a pool and open min_size connections (blocking). With the default
 * connector cfg is copied and resolved (later changes to cfg do not
 * matter) and provider is borrowed: it must outlive the pool (NULL: the
 * process-wide dsql_token_provider_shared(cfg), as for dsql_pq_connect, so
 * warming up makes one credentials fetch). With a custom
 * connector cfg and provider may be NULL. opts NULL: the defaults. NULL
 * with err set on failure (also when a first connection fails). */
DSQL_API dsql_pq_pool *dsql_pq_pool_new(const dsql_config *cfg, dsql_token_provider *provider,
                                        const dsql_pq_pool_options *opts, dsql_error *err);

/* Take a connection, opening one when none is idle and there is room,
 * else waiting up to timeout_ms (negative: the pool's acquire_timeout_ms).
 * The connection is in CONNECTION_OK and idle (no transaction); give it
 * back with dsql_pq_pool_release (never PQfinish it). NULL with err:
 * DSQL_ETIMEOUT when exhausted for that long, the connector's status when
 * opening failed, DSQL_EINVAL when the pool is closed. */
DSQL_API PGconn *dsql_pq_pool_acquire(dsql_pq_pool *pool, int timeout_ms, dsql_error *err);

/* dsql_pq_pool_acquire that also stops at the caller's deadline and cancel
 * callback: until->deadline_ms (CLOCK_MONOTONIC ms, 0: none) shortens the
 * wait (DSQL_ETIMEOUT), until->cancelled is asked at least every 10 ms
 * while waiting (DSQL_ECANCELLED). A connection being opened for the call
 * is abandoned at the deadline or on cancel when the connector has the
 * non-blocking trio (the default one has). Only deadline_ms, cancelled and
 * cancel_arg of until are read; NULL: as dsql_pq_pool_acquire. */
DSQL_API PGconn *dsql_pq_pool_acquire_until(dsql_pq_pool *pool, int timeout_ms,
                                            const dsql_retry_options *until,
                                            dsql_error *err);

/* Give conn back (from any thread). Rolls back an open transaction, runs
 * the reset query, and closes conn instead of keeping it when it is
 * broken, busy, in pipeline mode, past its lifetime, or not idle after
 * that; then a waiter gets it. NULL conn is allowed. A connection that
 * is not from this pool is left alone (DSQL_EINVAL). */
DSQL_API dsql_status dsql_pq_pool_release(dsql_pq_pool *pool, PGconn *conn);

/* Non-blocking acquire for event loops. start never waits: with the
 * default connector the token of a new connection is signed on a helper
 * thread (dsql_pq_connect_start), so a credentials fetch does not block
 * the event loop; poll advances as
 * dsql_pq_connect_poll does: wait for *fd readable (READING) or writable
 * (WRITING), or for *timeout_ms with no fd (WAITING, *fd = -1), then call
 * poll again; *timeout_ms is the longest wait (-1: none). While the pool is
 * exhausted the fd is the pool's wake-up pipe for this waiter. finish ends
 * it: after DSQL_PQ_POLL_OK it returns the connection (release it as
 * usual), otherwise NULL, abandoning a wait or half-open connection.
 * The socket check (not the round-trip ping) applies to idle connections. */
typedef struct dsql_pq_pool_acquiring dsql_pq_pool_acquiring;
DSQL_API dsql_pq_pool_acquiring *dsql_pq_pool_acquire_start(dsql_pq_pool *pool, int timeout_ms,
                                                            dsql_error *err);
DSQL_API dsql_pq_poll_status dsql_pq_pool_acquire_poll(dsql_pq_pool_acquiring *a, int *fd,
                                                       int *timeout_ms, dsql_error *err);
DSQL_API PGconn *dsql_pq_pool_acquire_finish(dsql_pq_pool_acquiring *a);

/* Upkeep without a thread: close idle connections past their lifetime or
 * idle timeout (and broken ones), then open connections up to min_size
 * (blocking). *next_ms (may be NULL) receives the milliseconds until the
 * next connection expires (-1: none), for an event-loop timer. */
DSQL_API dsql_status dsql_pq_pool_maintain(dsql_pq_pool *pool, int *next_ms, dsql_error *err);

/* Run fn in a transaction on a pooled connection (acquired and released
 * here); conflicts are retried as in dsql_pq_run_transaction, and a
 * connection that breaks before COMMIT is replaced and the attempt retried
 * within the same retry budget. opts NULL: the pool's txn options. */
DSQL_API dsql_status dsql_pq_pool_run_transaction(dsql_pq_pool *pool, dsql_pq_txn_fn fn,
                                                  void *arg, const dsql_pq_txn_options *opts,
                                                  dsql_pq_txn_result *result, dsql_error *err);

/* dsql_pq_exec_with_retry on a connection acquired from pool (with
 * dsql_pq_pool_acquire_until: the deadline and cancel callback cover the
 * wait) and released afterwards; the result outlives the connection. The
 * pool's txn_* counters count it as one transaction. opts NULL: the
 * pool's txn.retry options. */
DSQL_API PGresult *dsql_pq_pool_exec_with_retry(dsql_pq_pool *pool, const char *sql,
                                                int nparams, const char *const *values,
                                                const dsql_retry_options *opts,
                                                dsql_pq_txn_result *result, dsql_error *err);

typedef struct dsql_pq_pool_stats {
    int version;           /* set by the caller: DSQL_STRUCT_VERSION */
    unsigned size;         /* open connections: idle + in use */
    unsigned idle;
    unsigned in_use;
    unsigned opening;      /* connections being opened */
    unsigned waiting;      /* callers waiting in acquire now */
    uint64_t acquires;     /* successful acquires */
    uint64_t waits;        /* acquires that had to wait */
    uint64_t timeouts;     /* acquires that timed out */
    uint64_t opened;       /* connections opened */
    uint64_t open_failures;
    uint64_t closed_lifetime; /* closed: past max lifetime */
    uint64_t closed_idle;     /* closed: idle timeout */
    uint64_t closed_broken;   /* closed: broken (found on acquire, release,
                                 check or in maintain) */
    uint64_t closed_dirty;    /* closed on release: busy, pipeline, or not
                                 idle after rollback/reset */
    uint64_t closed_pool;     /* closed by dsql_pq_pool_close */
    uint64_t txn_commits;     /* dsql_pq_pool_run_transaction successes */
    uint64_t txn_retries;     /* attempts retried (conflicts + reconnects) */
    uint64_t txn_conflicts;   /* attempts that hit a conflict */
    uint64_t txn_failures;    /* calls that returned an error */
    uint64_t txn_unknown_commits; /* DSQL_EUNKNOWN_COMMIT outcomes */
    uint64_t txn_conflicts_data;    /* txn_conflicts by kind: OC000 */
    uint64_t txn_conflicts_schema;  /* OC001 */
    uint64_t txn_conflicts_unknown; /* 40001 without an OCC code */
} dsql_pq_pool_stats;

/* A consistent snapshot of the counters. */
DSQL_API dsql_status dsql_pq_pool_stats_get(dsql_pq_pool *pool, dsql_pq_pool_stats *out);

/* Close the pool: stop the thread, close idle connections, wake waiters
 * (they fail with DSQL_EINVAL) and refuse new acquires; connections still
 * in use are closed when released. Idempotent. */
DSQL_API void dsql_pq_pool_close(dsql_pq_pool *pool);

/* Close (if not yet) and free. Call when no other thread is inside a pool
 * call and every connection has been released. NULL is allowed. */
DSQL_API void dsql_pq_pool_free(dsql_pq_pool *pool);

#ifdef __cplusplus
}
#endif
#endif
