/* libpq adapter: checking transaction options (txn_options.c), for the
 * transaction runner and the pool's defaults. Not installed. */
#ifndef DSQL_PQ_TXN_OPTIONS_H
#define DSQL_PQ_TXN_OPTIONS_H

#include "dsqlauth/pool.h"

/* Validate transaction options (NULL is valid: the defaults). */
dsql_status dsql__pq_txn_options_check(const dsql_pq_txn_options *o, dsql_error *err);

#endif
