/* Shared by the libpq adapter's files (not installed, not exported). */
#ifndef DSQL_PQ_POOL_INTERNAL_H
#define DSQL_PQ_POOL_INTERNAL_H

#include "dsqlauth.h"
#include "dsqlauth/pool.h"

#include <stdarg.h>

/* Set err (when not NULL) to st with a formatted message; returns st. */
dsql_status dsql__pq_fail(dsql_error *err, dsql_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

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

/* Validate transaction options (NULL is valid: the defaults). */
dsql_status dsql__pq_txn_options_check(const dsql_pq_txn_options *o, dsql_error *err);

/* The pool's transaction defaults. */
const dsql_pq_txn_options *dsql__pq_pool_txn_defaults(const dsql_pq_pool *pool);

/* Add one run_transaction outcome to the pool's counters. */
void dsql__pq_pool_count_txn(dsql_pq_pool *pool, dsql_status st, const dsql_pq_txn_result *r);

/* A uniform double in [0, 1) from a per-thread generator. */
double dsql__pq_random01(void);

#endif
