/* Shared by the libpq adapter's files (not installed, not exported). */
#ifndef DSQL_PQ_POOL_INTERNAL_H
#define DSQL_PQ_POOL_INTERNAL_H

#include "dsqlauth.h"
#include "dsqlauth/adapter.h"
#include "dsqlauth/pool.h"

#include <stdarg.h>
#include <stdint.h>

/* Set err (when not NULL) to st with a formatted message; returns st: the
 * adapter kit's dsql_error_set, under the name the adapter's files use. */
#define dsql__pq_fail dsql_error_set

/* The start of a poll function: NULL out-parameters point at the caller's
 * scratch, and both read -1 (no fd, no timeout) until the poll sets them. */
static inline void dsql__pq_poll_outs_init(int **fd, int **timeout_ms, int scratch[2])
{
    if (!*fd)
        *fd = &scratch[0];
    if (!*timeout_ms)
        *timeout_ms = &scratch[1];
    **fd = -1;
    **timeout_ms = -1;
}

/* How long a wait of timeout_ms (-1: unbounded) may last under until
 * (NULL: no limit): never past until->deadline_ms, and at most 10 ms when
 * there is a cancel callback to ask again. */
static inline int dsql__pq_wait_ms(const dsql_retry_options *until, int timeout_ms)
{
    if (!until)
        return timeout_ms;
    if (until->deadline_ms > 0) {
        int64_t left = until->deadline_ms - dsql_monotonic_ms();
        if (left < 0)
            left = 0;
        if (timeout_ms < 0 || left < timeout_ms)
            timeout_ms = left > INT32_MAX ? INT32_MAX : (int)left;
    }
    if (until->cancelled && (timeout_ms < 0 || timeout_ms > 10))
        timeout_ms = 10;
    return timeout_ms;
}

/* dsql_pq_pool_acquire bounded by until's deadline and cancel callback. */
PGconn *dsql__pq_pool_acquire_until(dsql_pq_pool *pool, int timeout_ms,
                                    const dsql_retry_options *until, dsql_error *err);

/* ---- a token signed on a helper thread (token_job.c) ---- */

typedef struct dsql__pq_token_job dsql__pq_token_job;

/* Start signing req with p on a new thread (the strings are copied); NULL
 * when no thread or pipe could be made (then sign inline). */
dsql__pq_token_job *dsql__pq_token_job_start(dsql_token_provider *p,
                                            const dsql_token_request *req);
/* Readable once the job is done. */
int dsql__pq_token_job_fd(const dsql__pq_token_job *j);
/* 1 when the job is done (finish will not wait). */
int dsql__pq_token_job_done(dsql__pq_token_job *j);
/* Wait for the thread, hand over its token (dsql_token_free) or error,
 * free j. */
dsql_status dsql__pq_token_job_finish(dsql__pq_token_job *j, char **token, dsql_error *err);

/* Validate transaction options (NULL is valid: the defaults). */
dsql_status dsql__pq_txn_options_check(const dsql_pq_txn_options *o, dsql_error *err);

/* The pool's transaction defaults. */
const dsql_pq_txn_options *dsql__pq_pool_txn_defaults(const dsql_pq_pool *pool);

/* Add one run_transaction outcome to the pool's counters. */
void dsql__pq_pool_count_txn(dsql_pq_pool *pool, dsql_status st, const dsql_pq_txn_result *r);

/* The kind of the conflict in err (message: the server's primary one). */
dsql_conflict_kind dsql__pq_conflict_kind(const dsql_error *err);

/* A uniform double in [0, 1) from a per-thread generator. */
double dsql__pq_random01(void);

/* ---- the pool's default reset on release (pool_reset.c) ---- */

/* One statement of the reset. unsupported: NULL when it must succeed, else
 * the SQLSTATEs (space-separated) with which a server says it has no such
 * statement, and so none of the state it clears. */
typedef struct dsql__pq_reset_step {
    const char *sql;
    const char *unsupported;
} dsql__pq_reset_step;

/* What the reset learned about one connection: the steps (bit i: step i)
 * its server refuses as unsupported, once learned. */
typedef struct dsql__pq_reset_memo {
    uint32_t skip;
    int learned;
} dsql__pq_reset_memo;

/* The default steps (*n of them); joined with "; " they are
 * DSQL_PQ_POOL_DEFAULT_RESET_QUERY. */
const dsql__pq_reset_step *dsql__pq_reset_default_steps(unsigned *n);

/* 1 when step may fail with sqlstate (the server has no such state). */
int dsql__pq_reset_tolerates(const dsql__pq_reset_step *step, const char *sqlstate);

/* The steps not in skip, "ROLLBACK" first when asked, joined with "; "
 * into buf; -1 when cap is too small. */
int dsql__pq_reset_join(const dsql__pq_reset_step *steps, unsigned n, uint32_t skip,
                        int rollback_first, char *buf, size_t cap);

/* Reset the idle or in-transaction connection c (at most 32 steps);
 * 0 when done, -1 when not (the caller closes c). */
int dsql__pq_reset_run(PGconn *c, const dsql__pq_reset_step *steps, unsigned n,
                       int rollback_first, dsql__pq_reset_memo *memo);

/* Tests: replace the pool's reset with steps (borrowed; before any
 * connection is released). */
void dsql__pq_pool_set_reset_steps(dsql_pq_pool *pool, const dsql__pq_reset_step *steps,
                                   unsigned n);

#endif
