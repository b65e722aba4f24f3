/* The pool's internals that other files of the libpq adapter use: acquire
 * with a deadline, its transaction defaults and counters (transaction.c,
 * exec_retry.c), the default reset (pool_reset.c) and a test hook. Not
 * installed, not exported. */
#ifndef DSQL_PQ_POOL_INTERNAL_H
#define DSQL_PQ_POOL_INTERNAL_H

#include "dsqlauth.h"
#include "dsqlauth/pool.h"

#include <stdint.h>

/* dsql_pq_pool_acquire bounded by until's deadline and cancel callback. */
PGconn *dsql__pq_pool_acquire_until(dsql_pq_pool *pool, int timeout_ms,
                                    const dsql_retry_options *until, dsql_error *err);

/* The pool's transaction defaults. */
const dsql_pq_txn_options *dsql__pq_pool_txn_defaults(const dsql_pq_pool *pool);

/* Add one run_transaction outcome to the pool's counters. */
void dsql__pq_pool_count_txn(dsql_pq_pool *pool, dsql_status st, const dsql_pq_txn_result *r);

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
